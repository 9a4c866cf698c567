//! The write tools against sfsim: values with quotes, backslashes and
//! non-ASCII round-trip through create, update and query; upsert by an
//! external Id that needs percent-encoding; Salesforce's write errors
//! (required fields, read-only users) reach the caller intact; delete goes
//! to the recycle bin.

use serde_json::json;
use toolgate_gateway::salesforce::soql::quote_literal;

use crate::sf_common::{BEN_READ_ONLY, EDGE, Org, api_error, ids, invalid_field};

#[tokio::test]
async fn quotes_backslashes_and_non_ascii_round_trip() {
    let org = Org::start().await;
    let name = "O'Brien \\ Ålesund – \"Zoë\" 株式会社";
    let description = "line one\nline 'two'\ttabbed \\ end";
    // Control characters in a filterable field (text areas cannot be
    // filtered in SOQL).
    let city = "Ålesund\t'Nord'\r\n\\ \"Øst\"";
    let created = org
        .ok(
            "create_record",
            json!({"object_name": "Account",
                "fields": {"Name": name, "Description": description, "BillingCity": city}}),
        )
        .await;
    assert_eq!(created.structured["success"], true);
    let id = created.structured["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("001") && id.len() == 18, "{id}");
    assert_eq!(
        created.text,
        format!("Created Account {id} (BillingCity, Description, Name)")
    );

    let got = org
        .ok(
            "get_record",
            json!({"object_name": "Account", "record_id": id, "fields": ["Name", "Description", "BillingCity"]}),
        )
        .await;
    assert_eq!(got.structured["record"]["Name"], name);
    assert_eq!(got.structured["record"]["Description"], description);
    assert_eq!(got.structured["record"]["BillingCity"], city);
    assert_eq!(got.structured["record"]["type"], "Account");

    for (field, value) in [("Name", name), ("BillingCity", city)] {
        let soql = format!(
            "SELECT Id, Name FROM Account WHERE {field} = {}",
            quote_literal(value)
        );
        let found = org.ok("query", json!({"soql": soql})).await;
        assert_eq!(
            ids(&found.structured["records"]),
            std::slice::from_ref(&id),
            "{field}"
        );
        assert_eq!(found.structured["records"][0]["Name"], name);
    }

    let renamed = format!("{name} \\' 2");
    let updated = org
        .ok(
            "update_record",
            json!({"object_name": "Account", "record_id": id, "fields": {"Name": renamed}}),
        )
        .await;
    assert_eq!(updated.structured, json!({"id": id, "success": true}));
    let soql = format!(
        "SELECT Name FROM Account WHERE Name = {}",
        quote_literal(&renamed)
    );
    let found = org.ok("query", json!({"soql": soql})).await;
    assert_eq!(found.structured["records"][0]["Name"], renamed.as_str());
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let org = Org::start().await;
    let external = "ERP/2026 Ø-1 #x?";
    let args = |amount: f64| {
        json!({"object_name": "Invoice__c", "external_id_field": "external_id__c", "external_id": external,
            "fields": {"Name": "INV-ÆØÅ", "Amount__c": amount, "Account__c": EDGE}})
    };
    let first = org.ok("upsert_record", args(10.5)).await;
    assert_eq!(first.structured["created"], true);
    assert_eq!(first.structured["success"], true);
    let id = first.structured["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("a01"), "{id}");
    assert!(
        first
            .text
            .starts_with(&format!("Created Invoice__c {id} (External_Id__c = ")),
        "{}",
        first.text
    );

    let second = org.ok("upsert_record", args(99.0)).await;
    assert_eq!(
        second.structured,
        json!({"id": id, "created": false, "success": true})
    );

    let soql = format!(
        "SELECT Id, Name, Amount__c, External_Id__c FROM Invoice__c WHERE External_Id__c = {}",
        quote_literal(external)
    );
    let found = org.ok("query", json!({"soql": soql})).await;
    let record = &found.structured["records"][0];
    assert_eq!(
        (record["Id"].as_str(), record["External_Id__c"].as_str()),
        (Some(id.as_str()), Some(external))
    );
    assert_eq!(record["Amount__c"], 99.0);
    assert_eq!(record["Name"], "INV-ÆØÅ");

    // The seeded invoice with External_Id__c ERP-100000 is updated, not duplicated.
    let seeded = org
        .ok(
            "upsert_record",
            json!({"object_name": "Invoice__c", "external_id_field": "External_Id__c",
                "external_id": "ERP-100000", "fields": {"Status__c": "Paid"}}),
        )
        .await;
    assert_eq!(seeded.structured["created"], false);

    let (field, message) = invalid_field(
        org.call(
            "upsert_record",
            json!({"object_name": "Invoice__c", "external_id_field": "Name", "external_id": "x", "fields": {"Amount__c": 1}}),
        )
        .await,
    );
    assert_eq!(field, "external_id_field");
    assert!(message.contains("External_Id__c"), "{message}");
    let (field, _) = invalid_field(
        org.call(
            "upsert_record",
            json!({"object_name": "Invoice__c", "external_id_field": "External_Id__c", "external_id": "x",
                "fields": {"External_Id__c": "y"}}),
        )
        .await,
    );
    assert_eq!(field, "fields");
}

#[tokio::test]
async fn writes_keep_salesforce_errors_and_delete_goes_to_the_recycle_bin() {
    let org = Org::start().await;
    let (status, code, message, fields) = api_error(
        org.call(
            "create_record",
            json!({"object_name": "Opportunity", "fields": {"Name": "x"}}),
        )
        .await,
    );
    assert_eq!((status, code.as_str()), (400, "REQUIRED_FIELD_MISSING"));
    assert!(message.contains("StageName"), "{message}");
    assert!(fields.contains(&"StageName".to_owned()) && fields.contains(&"CloseDate".to_owned()));

    let err = org
        .call(
            "create_record",
            json!({"object_name": "Account", "fields": {"Nme": "x"}}),
        )
        .await;
    let (_, code, _, _) = api_error(err);
    assert_eq!(code, "INVALID_FIELD");

    let created = org
        .ok("create_record", json!({"object_name": "Contact", "fields": {"LastName": "Ephemeral", "AccountId": EDGE}}))
        .await;
    let id = created.structured["id"].as_str().unwrap().to_owned();
    let deleted = org
        .ok(
            "delete_record",
            json!({"object_name": "Contact", "record_id": id}),
        )
        .await;
    assert_eq!(deleted.structured, json!({"id": id, "deleted": true}));
    let (status, code, _, _) = api_error(
        org.call(
            "get_record",
            json!({"object_name": "Contact", "record_id": id}),
        )
        .await,
    );
    assert_eq!((status, code.as_str()), (404, "NOT_FOUND"));
    let soql = format!("SELECT Id, IsDeleted FROM Contact WHERE Id = '{id}'");
    let live = org.ok("query", json!({"soql": soql})).await;
    assert_eq!(live.structured["total_size"], 0);
    let all = org
        .ok("query", json!({"soql": soql, "include_deleted": true}))
        .await;
    assert_eq!(all.structured["records"][0]["IsDeleted"], true);
    assert_eq!(org.counter("queryAll"), 1);

    let reader = Org::start_with(BEN_READ_ONLY, |_| {}).await;
    let err = reader
        .call(
            "update_record",
            json!({"object_name": "Account", "record_id": EDGE, "fields": {"Name": "Mine"}}),
        )
        .await;
    let (status, code, message, _) = api_error(err);
    assert_eq!(
        (status, code.as_str()),
        (400, "INSUFFICIENT_ACCESS_OR_READONLY")
    );
    assert_eq!(message, "insufficient access rights on object id");
    let err = reader
        .call(
            "delete_record",
            json!({"object_name": "Account", "record_id": EDGE}),
        )
        .await;
    assert!(
        err.unwrap_err()
            .to_string()
            .starts_with("Salesforce error INSUFFICIENT_ACCESS_OR_READONLY: ")
    );
}
