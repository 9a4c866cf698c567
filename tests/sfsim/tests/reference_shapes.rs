//! Fidelity: for every recorded response in `../shared/salesforce/`, send
//! the file's request to sfsim and check the same status and shape (same
//! keys, same JSON types, integer vs float) and the same error codes. Where
//! sfsim holds the very records of the file (the seed includes them), the
//! values must match too.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn reference_dir() -> PathBuf {
    std::env::var_os("SFSIM_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/salesforce"
            ))
        })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks that `actual` has the shape of `reference`. `subset`: the
/// reference is an excerpt, so `actual` may have more keys.
fn same_shape(
    reference: &Value,
    actual: &Value,
    path: &str,
    subset: bool,
    errors: &mut Vec<String>,
) {
    if reference.is_null() {
        return; // A recorded null says nothing about the type.
    }
    if kind(reference) != kind(actual) {
        errors.push(format!(
            "{path}: expected {} ({reference}), got {} ({actual})",
            kind(reference),
            kind(actual)
        ));
        return;
    }
    match (reference, actual) {
        (Value::Object(r), Value::Object(a)) => {
            for key in r.keys() {
                match a.get(key) {
                    Some(v) => same_shape(&r[key], v, &format!("{path}.{key}"), subset, errors),
                    None => errors.push(format!("{path}: missing key {key}")),
                }
            }
            if !subset {
                for key in a.keys().filter(|k| !r.contains_key(*k)) {
                    errors.push(format!("{path}: unexpected key {key}"));
                }
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            if r.is_empty() {
                return;
            }
            if a.is_empty() {
                errors.push(format!(
                    "{path}: empty array, expected elements like {}",
                    r[0]
                ));
            }
            for (i, item) in a.iter().enumerate() {
                // Match describe fields and the like by name where possible.
                let by_name = item
                    .get("name")
                    .and_then(|n| r.iter().find(|x| x.get("name") == Some(n)));
                let model = by_name.unwrap_or(&r[i.min(r.len() - 1)]);
                if by_name.is_none() && item.get("name").is_some() && subset {
                    continue; // An element the excerpt does not show.
                }
                same_shape(model, item, &format!("{path}[{i}]"), subset, errors);
            }
        }
        _ => {}
    }
}

struct Case {
    status: u16,
    body: Value,
    /// The values must equal the reference's, except these keys anywhere.
    exact_except: Option<&'static [&'static str]>,
}

async fn response(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn strip(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            for k in keys {
                m.remove(*k);
            }
            m.values_mut().for_each(|x| strip(x, keys));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, keys)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_file_matches_sfsim() {
    // Only the reference records, 3 per query page, as in query_page1/2.
    let sim = start_with(|c| {
        c.seed_accounts = 0;
        c.query_batch_size = 3;
        c.uneven_batches = false;
    })
    .await;
    let ana = login(&sim, ANA).await;
    let token = ana["access_token"].as_str().unwrap().to_owned();
    let ben = login(&sim, BEN_READ_ONLY).await;
    let ben_token = ben["access_token"].as_str().unwrap().to_owned();
    let v = "/services/data/v66.0";
    let get = |path: String| rest(&sim, &token, Method::GET, &path);
    let q = |soql: &str| {
        format!(
            "{v}/query?q={}",
            url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
        )
    };

    let mut cases: BTreeMap<&str, Case> = BTreeMap::new();
    let mut add = |name, (status, body): (u16, Value), exact_except| {
        cases.insert(
            name,
            Case {
                status,
                body,
                exact_except,
            },
        );
    };
    add(
        "versions.json",
        response(client().get(format!("{}/services/data/", sim.instance_url))).await,
        None,
    );
    add(
        "describe_global_excerpt.json",
        response(get(format!("{v}/sobjects"))).await,
        None,
    );
    add(
        "describe_opportunity_excerpt.json",
        response(get(format!("{v}/sobjects/Opportunity/describe"))).await,
        None,
    );
    add(
        "identity.json",
        response(
            client()
                .get(ana["id"].as_str().unwrap())
                .bearer_auth(&token),
        )
        .await,
        None,
    );
    add(
        "limits_excerpt.json",
        response(get(format!("{v}/limits"))).await,
        None,
    );
    let page1 = response(get(q(
        "SELECT Id,Name,BillingCity,Industry,AnnualRevenue FROM Account ORDER BY Name",
    )))
    .await;
    let next = page1.1["nextRecordsUrl"].as_str().unwrap().to_owned();
    add("query_page1.json", page1, Some(&["nextRecordsUrl"]));
    add("query_page2.json", response(get(next)).await, Some(&[]));
    add(
        "query_aggregate.json",
        response(get(q(
            "SELECT StageName,COUNT(Id) n,SUM(Amount) FROM Opportunity GROUP BY StageName",
        )))
        .await,
        None,
    );
    add(
        "query_relationships.json",
        response(get(q("SELECT Id,Name,Account.Name,(SELECT Id,Subject FROM Cases) FROM Contact WHERE LastName='Souza'"))).await,
        Some(&[]),
    );
    add(
        "search_sosl.json",
        response(get(format!(
            "{v}/search?q={}",
            url::form_urlencoded::byte_serialize(
                b"FIND {Souza} IN NAME FIELDS RETURNING Contact(Id,Name)"
            )
            .collect::<String>()
        )))
        .await,
        Some(&[]),
    );
    add(
        "record_get.json",
        response(get(format!("{v}/sobjects/Opportunity/0065g00000B7c8dAAB?fields=Name,StageName,Amount,CloseDate,CreatedDate"))).await,
        Some(&["CreatedDate"]),
    );
    add(
        "record_create.json",
        response(
            rest(&sim, &token, Method::POST, &format!("{v}/sobjects/Contact"))
                .json(&json!({"LastName": "Souza", "FirstName": "Ana"})),
        )
        .await,
        None,
    );
    add(
        "record_upsert_created.json",
        response(
            rest(
                &sim,
                &token,
                Method::PATCH,
                &format!("{v}/sobjects/Opportunity/Legacy_Key__c/LK-0042"),
            )
            .json(
                &json!({"Name": "Upserted", "StageName": "Prospecting", "CloseDate": "2027-01-31"}),
            ),
        )
        .await,
        None,
    );
    add(
        "error_insufficient_access.json",
        response(
            rest(
                &sim,
                &ben_token,
                Method::PATCH,
                &format!("{v}/sobjects/Account/0015g00000Q1aACAAZ"),
            )
            .json(&json!({"Name": "x"})),
        )
        .await,
        Some(&[]),
    );
    add(
        "error_invalid_field.json",
        response(get(q("SELECT Id,Nme FROM Account"))).await,
        Some(&[]),
    );
    add(
        "error_invalid_type.json",
        response(get(q("SELECT Id FROM Invoce__c"))).await,
        Some(&[]),
    );
    add(
        "error_malformed_query.json",
        response(get(q("SELEC Id FROM Account"))).await,
        Some(&[]),
    );
    add(
        "error_not_found.json",
        response(get(format!("{v}/sobjects/Invoce__c/describe"))).await,
        Some(&[]),
    );
    add(
        "error_required_field.json",
        response(
            rest(
                &sim,
                &token,
                Method::POST,
                &format!("{v}/sobjects/Opportunity"),
            )
            .json(&json!({"Name": "x"})),
        )
        .await,
        Some(&[]),
    );
    add(
        "error_invalid_session.json",
        response(rest(
            &sim,
            "00Dbogus!AQ0AQnot-a-token",
            Method::GET,
            &format!("{v}/limits"),
        ))
        .await,
        Some(&[]),
    );
    let rt = ana["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = refresh(&sim, &rt).await;
    add(
        "oauth_token_refresh.json",
        (refreshed.status().as_u16(), refreshed.json().await.unwrap()),
        None,
    );
    add(
        "oauth_token_authorization_code.json",
        (200, ana.clone()),
        None,
    );
    post_admin(&sim, "faults", json!({"refresh_token_rotation": true})).await;
    let rotated = refresh(&sim, &rt).await;
    add(
        "oauth_token_refresh_rotated.json",
        (rotated.status().as_u16(), rotated.json().await.unwrap()),
        None,
    );
    let dead = refresh(&sim, &rt).await;
    add(
        "oauth_error_invalid_grant.json",
        (dead.status().as_u16(), dead.json().await.unwrap()),
        Some(&[]),
    );
    let app = sim.sim.config.connected_app.clone();
    let bad_client = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &app.consumer_key),
            ("client_secret", "wrong"),
        ]);
    add(
        "oauth_error_invalid_client.json",
        response(bad_client).await,
        Some(&[]),
    );
    post_admin(&sim, "faults", json!({"api_limit_exhausted": true})).await;
    add(
        "error_request_limit.json",
        response(get(format!("{v}/limits"))).await,
        Some(&[]),
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(reference_dir())
        .unwrap_or_else(|e| panic!("reference files at {}: {e}", reference_dir().display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let reference: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(case) = cases.remove(name.as_str()) else {
            failures.push(format!(
                "{name}: no sfsim request is mapped to this reference file"
            ));
            continue;
        };
        checked += 1;
        if reference["_status"] != json!(case.status) {
            failures.push(format!(
                "{name}: status {} != {}: {}",
                case.status, reference["_status"], case.body
            ));
            continue;
        }
        let mut errors = Vec::new();
        same_shape(
            &reference["body"],
            &case.body,
            "body",
            name.contains("excerpt"),
            &mut errors,
        );
        if let Some(except) = case.exact_except {
            let (mut want, mut got) = (reference["body"].clone(), case.body.clone());
            strip(&mut want, except);
            strip(&mut got, except);
            if want != got {
                errors.push(format!("values differ:\n want {want}\n  got {got}"));
            }
        }
        failures.extend(errors.into_iter().map(|e| format!("{name}: {e}")));
    }
    assert!(checked >= 26, "only {checked} reference files found");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
