//! Record writes: case-insensitive external Ids and uniqueness, upsert by
//! Id, non-finite numbers, and datetimes stored to the second.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "/services/data/v66.0";

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn token(sim: &sfsim::Running) -> String {
    login(sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn external_ids_match_and_stay_unique_case_insensitively() {
    let sim = start().await;
    let token = token(&sim).await;
    let upsert = |ext: &str, body: Value| {
        rest(
            &sim,
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Invoice__c/External_Id__c/{ext}"),
        )
        .json(&body)
    };
    let (status, created) = json_of(upsert("erp-777001", json!({"Name": "INV-777001"}))).await;
    assert_eq!((status, created["created"].as_bool()), (201, Some(true)));
    // The same external Id in other case updates that record.
    let (status, updated) = json_of(upsert("ERP-777001", json!({"Amount__c": 42.5}))).await;
    assert_eq!(
        (status, updated["created"].as_bool(), &updated["id"]),
        (200, Some(false), &created["id"])
    );
    let id = created["id"].as_str().unwrap();
    let (_, record) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/sobjects/Invoice__c/{id}?fields=Amount__c,External_Id__c"),
    ))
    .await;
    assert_eq!(record["Amount__c"], 42.5);
    assert_eq!(record["External_Id__c"], "erp-777001");
    // A create with the same value in other case is a duplicate.
    let (status, err) = json_of(
        rest(
            &sim,
            &token,
            Method::POST,
            &format!("{V}/sobjects/Invoice__c"),
        )
        .json(&json!({"Name": "INV-777002", "External_Id__c": "Erp-777001"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err[0]["errorCode"], "DUPLICATE_VALUE");
    assert_eq!(
        err[0]["message"],
        format!("duplicate value found: External_Id__c duplicates value on record with id: {id}")
    );
}

#[tokio::test]
async fn upsert_by_id_accepts_fifteen_characters() {
    let sim = start().await;
    let token = token(&sim).await;
    let (_, found) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!(
            "{V}/query?q={}",
            url::form_urlencoded::byte_serialize(b"SELECT Id FROM Account ORDER BY Id LIMIT 1")
                .collect::<String>()
        ),
    ))
    .await;
    let id18 = found["records"][0]["Id"].as_str().unwrap().to_owned();
    let id15 = &id18[..15];
    let (status, body) = json_of(
        rest(
            &sim,
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Account/Id/{id15}"),
        )
        .json(&json!({"BillingCity": "Porto"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id18.as_str());
    assert_eq!(body["created"], false);
    let (_, record) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &format!("{V}/sobjects/Account/{id18}?fields=BillingCity"),
    ))
    .await;
    assert_eq!(record["BillingCity"], "Porto");
    // An Id that names no record is not found (nothing to create).
    let (status, err) = json_of(
        rest(
            &sim,
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Account/Id/001000000000000"),
        )
        .json(&json!({"BillingCity": "Porto"})),
    )
    .await;
    assert_eq!(
        (status, err[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn non_finite_numbers_are_json_parser_errors() {
    let sim = start().await;
    let token = token(&sim).await;
    for bad in ["NaN", "nan", "inf", "-inf", "Infinity", "1e400"] {
        for (object, body) in [
            ("Account", json!({"Name": "x", "AnnualRevenue": bad})),
            (
                "OpportunityLineItem",
                json!({"OpportunityId": null, "Quantity": bad}),
            ),
        ] {
            let (status, err) = json_of(
                rest(
                    &sim,
                    &token,
                    Method::POST,
                    &format!("{V}/sobjects/{object}"),
                )
                .json(&body),
            )
            .await;
            assert_eq!(
                (status, err[0]["errorCode"].as_str()),
                (400, Some("JSON_PARSER_ERROR")),
                "{object} {bad}: {err}"
            );
        }
    }
    let (status, _) = json_of(
        rest(&sim, &token, Method::POST, &format!("{V}/sobjects/Account"))
            .json(&json!({"Name": "x", "AnnualRevenue": "1.5e3"})),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn written_datetimes_are_whole_seconds() {
    let sim = start().await;
    let token = token(&sim).await;
    let (status, created) = json_of(
        rest(&sim, &token, Method::POST, &format!("{V}/sobjects/Account"))
            .json(&json!({"Name": "Seconds Ltd"})),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    let get = || {
        rest(
            &sim,
            &token,
            Method::GET,
            &format!("{V}/sobjects/Account/{id}?fields=CreatedDate,LastModifiedDate"),
        )
    };
    let (_, record) = json_of(get()).await;
    for field in ["CreatedDate", "LastModifiedDate"] {
        let value = record[field].as_str().unwrap();
        assert!(value.ends_with(".000+0000"), "{field}: {value}");
        assert_eq!(value.len(), "2026-03-04T17:21:09.000+0000".len());
    }
    let (status, _) = json_of(
        rest(
            &sim,
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Account/{id}"),
        )
        .json(&json!({"Phone": "1"})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, record) = json_of(get()).await;
    assert!(
        record["LastModifiedDate"]
            .as_str()
            .unwrap()
            .ends_with(".000+0000")
    );
    // The seeded records too.
    let state = sim.sim.lock();
    assert!(state.records.iter().all(|r| {
        ["CreatedDate", "LastModifiedDate"]
            .iter()
            .all(|f| r.get(f).as_str().is_none_or(|v| v.ends_with(".000+0000")))
    }));
}
