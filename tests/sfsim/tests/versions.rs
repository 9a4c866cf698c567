//! API versions: the org lists and serves every version from 31.0 through
//! the current one on every endpoint it implements, with URLs in the
//! answers on the version asked for; retired and unknown versions answer
//! as a real org does.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_versions_resource_lists_31_through_the_current_one() {
    let sim = start().await;
    // No authentication needed, as on a real org.
    let (status, list) =
        json_of(client().get(format!("{}/services/data/", sim.instance_url))).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 68 - 31 + 1);
    for (entry, major) in list.iter().zip(31..) {
        assert_eq!(entry["version"], format!("{major}.0"));
        assert_eq!(entry["url"], format!("/services/data/v{major}.0"));
    }
    let by_version = |v: &str| {
        list.iter()
            .find(|e| e["version"] == v)
            .map(|e| e["label"].as_str().unwrap().to_owned())
    };
    assert_eq!(by_version("31.0").as_deref(), Some("Summer '14"));
    assert_eq!(by_version("50.0").as_deref(), Some("Winter '21"));
    assert_eq!(by_version("59.0").as_deref(), Some("Winter '24"));
    assert_eq!(by_version("65.0").as_deref(), Some("Winter '26"));
    assert_eq!(by_version("66.0").as_deref(), Some("Spring '26"));
    assert_eq!(by_version("68.0").as_deref(), Some("Winter '27"));
    assert_eq!(by_version("30.0"), None);
    sim.stop().await;
}

/// Calls every endpoint sfsim implements on version `v` (`v50.0`) and
/// checks each answers as on the default version, with `expect` (`50.0`)
/// in the URLs it returns.
async fn every_endpoint_on(sim: &sfsim::Running, token: &str, v: &str, expect: &str) {
    let base = format!("/services/data/{v}");
    let get = |path: String| rest(sim, token, Method::GET, &path);

    let (status, resources) = json_of(get(base.clone())).await;
    assert_eq!(status, 200, "{v} resources");
    assert_eq!(
        resources["sobjects"],
        format!("/services/data/v{expect}/sobjects")
    );

    let (status, global) = json_of(get(format!("{base}/sobjects"))).await;
    assert_eq!(status, 200, "{v} describe global");
    assert!(global["sobjects"].as_array().unwrap().len() >= 7);

    let (status, describe) = json_of(get(format!("{base}/sobjects/Account/describe"))).await;
    assert_eq!(
        (status, describe["name"].as_str()),
        (200, Some("Account")),
        "{v}"
    );
    assert_eq!(
        describe["urls"]["describe"],
        format!("/services/data/v{expect}/sobjects/Account/describe")
    );

    let (status, record) = json_of(get(format!(
        "{base}/sobjects/Opportunity/0065g00000B7c8dAAB?fields=Name"
    )))
    .await;
    assert_eq!(status, 200, "{v} record get");
    assert_eq!(
        record["attributes"]["url"],
        format!("/services/data/v{expect}/sobjects/Opportunity/0065g00000B7c8dAAB")
    );

    let soql = |q: &str| url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let (status, page) = json_of(
        get(format!(
            "{base}/query?q={}",
            soql("SELECT Id, Name FROM Contact ORDER BY Name")
        ))
        .header("Sforce-Query-Options", "batchSize=200"),
    )
    .await;
    assert_eq!(
        (status, page["done"].as_bool()),
        (200, Some(false)),
        "{v} query"
    );
    let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with(&format!("/services/data/v{expect}/query/")),
        "{next}"
    );
    let (status, more) = json_of(get(next)).await;
    assert_eq!(status, 200, "{v} query more");
    assert!(!more["records"].as_array().unwrap().is_empty());
    let (status, all) = json_of(get(format!(
        "{base}/queryAll?q={}",
        soql("SELECT COUNT() FROM Lead")
    )))
    .await;
    assert_eq!(status, 200, "{v} queryAll");
    assert!(all["totalSize"].as_u64().is_some());

    let (status, found) = json_of(get(format!(
        "{base}/search?q={}",
        soql("FIND {Souza} IN NAME FIELDS RETURNING Contact(Id, Name)")
    )))
    .await;
    assert_eq!(status, 200, "{v} search");
    let hit = &found["searchRecords"][0];
    assert!(
        hit["attributes"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/services/data/v{expect}/sobjects/Contact/")),
        "{hit}"
    );
    let (status, _) = json_of(get(format!(
        "{base}/parameterizedSearch?q=Souza&sobject=Contact&Contact.fields=Id,Name"
    )))
    .await;
    assert_eq!(status, 200, "{v} parameterizedSearch GET");
    let (status, _) = json_of(
        rest(
            sim,
            token,
            Method::POST,
            &format!("{base}/parameterizedSearch"),
        )
        .json(&json!({
            "q": "Souza",
            "sobjects": [{"name": "Contact", "fields": ["Id", "Name"]}],
        })),
    )
    .await;
    assert_eq!(status, 200, "{v} parameterizedSearch POST");

    let (status, children) = json_of(get(format!(
        "{base}/sobjects/Account/0015g00000Q1aACAAZ/Contacts?fields=Id,Name"
    )))
    .await;
    assert_eq!(status, 200, "{v} relationship");
    assert!(!children["records"].as_array().unwrap().is_empty());
    let (status, _) = json_of(get(format!("{base}/recent?limit=5"))).await;
    assert_eq!(status, 200, "{v} recent");
    let (status, limits) = json_of(get(format!("{base}/limits"))).await;
    assert_eq!(status, 200, "{v} limits");
    assert!(limits["DailyApiRequests"]["Max"].as_u64().is_some());

    // Writes: create, update, delete.
    let (status, created) = json_of(
        rest(
            sim,
            token,
            Method::POST,
            &format!("{base}/sobjects/Contact"),
        )
        .json(&json!({"LastName": format!("Version {v}")})),
    )
    .await;
    assert_eq!(status, 201, "{v} create: {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let response = rest(
        sim,
        token,
        Method::PATCH,
        &format!("{base}/sobjects/Contact/{id}"),
    )
    .json(&json!({"Title": "Pinned"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 204, "{v} update");
    let response = rest(
        sim,
        token,
        Method::DELETE,
        &format!("{base}/sobjects/Contact/{id}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 204, "{v} delete");
}

#[tokio::test]
async fn every_endpoint_answers_on_old_pinned_and_latest_versions() {
    // Enough Contacts (3 per Account) for a second query page of 200.
    let sim = start_with(|c| c.seed_accounts = 120).await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // 31.0 the oldest served; jsforce pins 50.0, simple-salesforce 59.0;
    // 66.0 toolgate's default; 68.0 the newest; `latest` its alias.
    for (v, expect) in [
        ("v31.0", "31.0"),
        ("v50.0", "50.0"),
        ("v59.0", "59.0"),
        ("v66.0", "66.0"),
        ("v68.0", "68.0"),
        ("latest", "68.0"),
    ] {
        every_endpoint_on(&sim, &token, v, expect).await;
    }
    sim.stop().await;
}

#[tokio::test]
async fn upsert_answers_in_the_shape_of_the_version_asked_for() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (v, ext) in [("v45.0", "ERP-451001"), ("v46.0", "ERP-461001")] {
        let path = format!("/services/data/{v}/sobjects/Invoice__c/External_Id__c/{ext}");
        let (status, created) = json_of(
            rest(&sim, &token, Method::PATCH, &path).json(&json!({"Name": format!("INV {v}")})),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(created["success"], true);
        let response = rest(&sim, &token, Method::PATCH, &path)
            .json(&json!({"Amount__c": 7.0}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        if v == "v45.0" {
            // Before 46.0: no `created` on creation, 204 and no body on update.
            assert_eq!(created.get("created"), None, "{created}");
            assert_eq!((status, body.as_str()), (204, ""));
        } else {
            assert_eq!(created["created"], true);
            let updated: Value = serde_json::from_str(&body).unwrap();
            assert_eq!((status, &updated["created"]), (200, &json!(false)));
            assert_eq!(updated["id"], created["id"]);
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn retired_and_unknown_versions_answer_as_a_real_org() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // As recorded in shared/salesforce/error_not_found.json.
    let not_found = json!([{
        "message": "The requested resource does not exist",
        "errorCode": "NOT_FOUND"
    }]);
    for path in [
        "/services/data/v99.0/limits",
        "/services/data/v69.0/sobjects",
        "/services/data/v66/limits",
        "/services/data/v6.0/limits",
        "/services/data/v99.0",
    ] {
        let (status, body) = json_of(rest(&sim, &token, Method::GET, path)).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, not_found, "{path}");
    }
    for path in [
        "/services/data/v30.0/limits",
        "/services/data/v21.0/query?q=SELECT+Id+FROM+Account",
        "/services/data/v20.0/sobjects",
    ] {
        let (status, body) = json_of(rest(&sim, &token, Method::GET, path)).await;
        assert_eq!(status, 410, "{path}");
        let error = &body.as_array().unwrap()[0];
        assert_eq!(error["errorCode"], "GONE");
        assert!(
            error["message"].as_str().unwrap().contains("is retired"),
            "{body}"
        );
    }
    sim.stop().await;
}
