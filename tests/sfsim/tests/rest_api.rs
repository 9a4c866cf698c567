//! The REST API: paging, writes and their validation, per-user access,
//! search, relationships, recent items, limits and the limit header.

mod common;

use std::collections::HashSet;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "/services/data/v66.0";

fn q(soql: &str) -> String {
    format!(
        "{V}/query?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    )
}

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn query_pages_follow_next_records_url_with_uneven_batches() {
    let sim = start_with(|c| c.seed_accounts = 120).await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, first) = json_of(
        rest(
            &sim,
            &token,
            Method::GET,
            &q("SELECT Id, Name FROM Contact ORDER BY Name"),
        )
        .header("Sforce-Query-Options", "batchSize=200"),
    )
    .await;
    assert_eq!(status, 200);
    let total = first["totalSize"].as_u64().unwrap() as usize;
    assert_eq!(total, 120 * 3 + 2);
    let mut ids = HashSet::new();
    let mut sizes = Vec::new();
    let mut page = first;
    loop {
        let records = page["records"].as_array().unwrap();
        sizes.push(records.len());
        for r in records {
            assert!(
                ids.insert(r["Id"].as_str().unwrap().to_owned()),
                "duplicate across pages"
            );
            assert_eq!(r["attributes"]["type"], "Contact");
        }
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();
        assert!(next.starts_with("/services/data/v66.0/query/01g"), "{next}");
        page = json_of(rest(&sim, &token, Method::GET, &next)).await.1;
    }
    assert_eq!(ids.len(), total);
    assert!(
        sizes.len() >= 2 && sizes.iter().all(|s| *s <= 200),
        "{sizes:?}"
    );
    assert!(
        sizes.windows(2).any(|w| w[0] != w[1]),
        "batches vary: {sizes:?}"
    );
    let (status, err) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/query/01gRO0000000000AAA-5"),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(err[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn writes_round_trip_and_deleted_records_show_only_in_query_all() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = "Ærøskøbing O'Hara \\ Søn — 東京";
    let (status, created) = json_of(
        rest(&sim, &token, Method::POST, &format!("{V}/sobjects/Account"))
            .json(&json!({"Name": name, "AnnualRevenue": 1234.5, "Industry": "Energy"})),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("001") && id.len() == 18);
    assert_eq!(sfsim::ids::to_18(&id[..15]).as_deref(), Some(id.as_str()));

    // The name with a quote and a backslash round-trips through a SOQL literal.
    let escaped = name.replace('\\', "\\\\").replace('\'', "\\'");
    let (_, found) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &q(&format!(
            "SELECT Id, Name FROM Account WHERE Name = '{escaped}'"
        )),
    ))
    .await;
    assert_eq!(found["totalSize"], 1);
    assert_eq!(found["records"][0]["Name"], name);

    let (status, _) = json_of(
        rest(
            &sim,
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Account/{}", &id[..15]),
        )
        .json(&json!({"Industry": "Retail"})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, got) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/sobjects/Account/{id}?fields=Industry"),
    ))
    .await;
    assert_eq!(got["Industry"], "Retail");

    let (status, _) = json_of(rest(
        &sim,
        &token,
        Method::DELETE,
        &format!("{V}/sobjects/Account/{id}"),
    ))
    .await;
    assert_eq!(status, 204);
    let (status, again) = json_of(rest(
        &sim,
        &token,
        Method::DELETE,
        &format!("{V}/sobjects/Account/{id}"),
    ))
    .await;
    assert_eq!(
        (status, again[0]["errorCode"].as_str()),
        (404, Some("ENTITY_IS_DELETED"))
    );
    let soql = format!("SELECT Id, IsDeleted FROM Account WHERE Id = '{id}'");
    let (_, live) = json_of(rest(&sim, &token, Method::GET, &q(&soql))).await;
    assert_eq!(live["totalSize"], 0);
    let all = format!(
        "{V}/queryAll?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    );
    let (_, with_deleted) = json_of(rest(&sim, &token, Method::GET, &all)).await;
    assert_eq!(with_deleted["totalSize"], 1);
    assert_eq!(with_deleted["records"][0]["IsDeleted"], true);
}

#[tokio::test]
async fn validation_errors_and_read_only_users() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ben = login(&sim, BEN_READ_ONLY).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |t: &str, obj: &str, body: Value| {
        rest(&sim, t, Method::POST, &format!("{V}/sobjects/{obj}")).json(&body)
    };
    let cases = [
        (
            post(&ben, "Account", json!({"Name": "x"})),
            400,
            "INSUFFICIENT_ACCESS_OR_READONLY",
        ),
        (
            post(&token, "Account", json!({"Nmae": "x"})),
            400,
            "INVALID_FIELD",
        ),
        (
            post(
                &token,
                "Account",
                json!({"Name": "x", "CreatedDate": "2020-01-01T00:00:00Z"}),
            ),
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            post(
                &token,
                "Opportunity",
                json!({"Name": "x", "StageName": "Dreaming", "CloseDate": "2027-01-01"}),
            ),
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            post(
                &token,
                "Account",
                json!({"Name": "x", "AnnualRevenue": "lots"}),
            ),
            400,
            "JSON_PARSER_ERROR",
        ),
        (
            post(
                &token,
                "Contact",
                json!({"LastName": "x", "AccountId": "001000000000000"}),
            ),
            400,
            "INVALID_CROSS_REFERENCE_KEY",
        ),
        (
            post(&token, "Account", json!({"Name": "x".repeat(256)})),
            400,
            "STRING_TOO_LONG",
        ),
        (
            post(&token, "NoSuchThing", json!({"Name": "x"})),
            404,
            "NOT_FOUND",
        ),
    ];
    for (request, status, code) in cases {
        let (got_status, body) = json_of(request).await;
        assert_eq!(
            (got_status, body[0]["errorCode"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (status, body) = json_of(rest(
        &sim,
        &ben,
        Method::GET,
        &q("SELECT Id FROM Account LIMIT 1"),
    ))
    .await;
    assert_eq!(
        (status, body["totalSize"].as_u64()),
        (200, Some(1)),
        "read-only users read"
    );
    let (status, _) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        "/services/data/v12.0/limits",
    ))
    .await;
    assert_eq!(status, 410, "a retired API version");
}

#[tokio::test]
async fn upsert_creates_then_updates_by_external_id() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{V}/sobjects/Invoice__c/External_Id__c/ERP-999001");
    let (status, body) = json_of(
        rest(&sim, &token, Method::PATCH, &path).json(&json!({"Name": "INV-X", "Amount__c": 10.0})),
    )
    .await;
    assert_eq!((status, body["created"].as_bool()), (201, Some(true)));
    let (status, again) =
        json_of(rest(&sim, &token, Method::PATCH, &path).json(&json!({"Amount__c": 20.0}))).await;
    assert_eq!((status, again["created"].as_bool()), (200, Some(false)));
    assert_eq!(again["id"], body["id"]);
    let (status, err) = json_of(
        rest(
            &sim,
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Invoice__c/Name/INV-X"),
        )
        .json(&json!({})),
    )
    .await;
    assert_eq!(
        (status, err[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn search_relationships_recent_limits_and_the_limit_header() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, children) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/sobjects/Account/0015g00000Q1aACAAZ/Contacts?fields=Id,Name"),
    ))
    .await;
    assert!(
        children["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["Name"] == "Rita Souza")
    );
    let (_, parent) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/sobjects/Contact/0035g00000K9xYzAAJ/Account?fields=Name"),
    ))
    .await;
    assert_eq!(parent["Name"], "Edge Communications");

    let (_, found) = json_of(
        rest(
            &sim,
            &token,
            Method::POST,
            &format!("{V}/parameterizedSearch"),
        )
        .json(&json!({
            "q": "O'Brien & Sons \\ Logistics",
            "sobjects": [{"name": "Account", "fields": ["Id", "Name"]}],
        })),
    )
    .await;
    assert_eq!(
        found["searchRecords"][0]["Name"],
        "O'Brien & Sons \\ Logistics"
    );
    let (_, found) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/parameterizedSearch?q=Souza&sobject=Contact&Contact.fields=Id,Name"),
    ))
    .await;
    let names: Vec<&str> = found["searchRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Rita Souza") && names.contains(&"João Souza"),
        "{names:?}"
    );
    assert!(names.iter().all(|n| n.contains("Souza")), "{names:?}");

    rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/sobjects/Case/5005g00000A1b2cAAB"),
    )
    .send()
    .await
    .unwrap();
    let (_, recent) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/recent?limit=5"),
    ))
    .await;
    assert_eq!(recent[0]["Id"], "5005g00000A1b2cAAB");
    assert_eq!(recent[0]["attributes"]["type"], "Case");

    let response = rest(&sim, &token, Method::GET, &format!("{V}/limits"))
        .send()
        .await
        .unwrap();
    let header = response.headers()["sforce-limit-info"]
        .to_str()
        .unwrap()
        .to_owned();
    let limits: Value = response.json().await.unwrap();
    let used: u64 = header
        .trim_start_matches("api-usage=")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(header, format!("api-usage={used}/15000"));
    assert_eq!(
        limits["DailyApiRequests"]["Remaining"].as_u64().unwrap(),
        15000 - used
    );
}
