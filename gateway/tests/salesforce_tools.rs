//! The 13 Salesforce tools against an in-process sfsim org (loopback
//! only): real values from the seeded org, paging across calls and
//! Salesforce pages, Salesforce errors kept intact, session expiry, the
//! API limit and the describe cache. The write tools' tests (escaping and
//! non-ASCII round trips, upsert, write errors) are in
//! `sf_common/write_tools.rs`; cursors (consistency, binding, forgery) in
//! `salesforce_cursors.rs`.

mod sf_common;
#[path = "sf_common/write_tools.rs"]
mod write_tools;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use sf_common::{EDGE, EDGE_OPPORTUNITY, Org, RITA, api_error, ids, invalid_field};
use toolgate_gateway::salesforce::{self, DescribeCache, Limits, SfError};

#[tokio::test]
async fn list_objects_filters_by_name_and_custom() {
    let org = Org::start().await;
    let all = org.ok("list_objects", json!({})).await;
    let objects = all.structured["objects"].as_array().unwrap();
    let account = objects.iter().find(|o| o["name"] == "Account").unwrap();
    assert_eq!(
        account,
        &json!({"name": "Account", "label": "Account", "custom": false, "key_prefix": "001",
            "queryable": true, "createable": true, "updateable": true, "deletable": true})
    );
    assert!(objects.len() >= 7, "{}", all.text);
    assert!(
        all.text
            .contains("Account (Account) [query,create,update,delete]"),
        "{}",
        all.text
    );

    let custom = org.ok("list_objects", json!({"custom_only": true})).await;
    let names: Vec<&str> = custom.structured["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Invoice__c"]);

    let by_label = org
        .ok("list_objects", json!({"name_contains": "OPPORTUNITY PROD"}))
        .await;
    assert_eq!(
        by_label.structured["objects"][0]["name"],
        "OpportunityLineItem"
    );
    assert_eq!(by_label.structured["objects"].as_array().unwrap().len(), 1);
    assert!(by_label.text.starts_with("1 object\n"), "{}", by_label.text);
}

#[tokio::test]
async fn describe_object_maps_fields_and_child_relationships() {
    let org = Org::start().await;
    let out = org
        .ok("describe_object", json!({"object_name": "opportunity"}))
        .await;
    let d = &out.structured;
    assert_eq!(
        (d["name"].as_str(), d["key_prefix"].as_str()),
        (Some("Opportunity"), Some("006"))
    );
    let field = |name: &str| {
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let stage = field("StageName");
    assert_eq!(stage["type"], "picklist");
    assert_eq!(stage["required"], true);
    assert_eq!(stage["nillable"], false);
    let values = stage["picklist_values"].as_array().unwrap();
    assert_eq!(values.first().unwrap(), "Prospecting");
    assert!(values.contains(&json!("Closed Won")));
    let account = field("AccountId");
    assert_eq!(account["reference_to"], json!(["Account"]));
    assert_eq!(account["relationship_name"], "Account");
    assert_eq!(account["required"], false);
    assert_eq!(field("Legacy_Key__c")["external_id"], true);
    assert_eq!(field("Name")["length"], 120);
    let id = field("Id");
    assert_eq!(
        (id["createable"].clone(), id["updateable"].clone()),
        (json!(false), json!(false))
    );
    assert!(
        out.text
            .starts_with("Opportunity (Opportunity), key prefix 006, "),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("AccountId reference(18) -> Account via Account"),
        "{}",
        out.text
    );

    let account = org
        .ok("describe_object", json!({"object_name": "Account"}))
        .await;
    let children = account.structured["child_relationships"]
        .as_array()
        .unwrap();
    assert!(children.contains(
        &json!({"relationship_name": "Contacts", "child_object": "Contact", "field": "AccountId"})
    ));
    assert!(
        account.text.contains("Contacts (Contact.AccountId)"),
        "{}",
        account.text
    );

    let (field, message) = invalid_field(
        org.call("describe_object", json!({"object_name": "Invoce__c"}))
            .await,
    );
    assert_eq!(field, "object_name");
    assert!(message.contains("did you mean Invoice__c"), "{message}");
}

#[tokio::test]
async fn describe_results_are_cached_and_invalidated() {
    let org = Org::start().await;
    org.ok("describe_object", json!({"object_name": "Account"}))
        .await;
    org.ok("describe_object", json!({"object_name": "Account"}))
        .await;
    org.ok("list_objects", json!({})).await;
    org.ok(
        "get_record",
        json!({"object_name": "Account", "record_id": EDGE, "fields": ["Name"]}),
    )
    .await;
    assert_eq!(
        org.counter("describe_global"),
        1,
        "the sObject list is fetched once"
    );
    assert_eq!(org.counter("describe"), 1, "Account is described once");
    assert!(org.cache.contains("Account"));

    org.cache.invalidate("account");
    org.ok("describe_object", json!({"object_name": "Account"}))
        .await;
    assert_eq!(org.counter("describe"), 2);

    // Salesforce saying INVALID_FIELD drops the entry of the object it names.
    let (status, code, message, _) = api_error(
        org.call("query", json!({"soql": "SELECT Id, Nme FROM Account"}))
            .await,
    );
    assert_eq!((status, code.as_str()), (400, "INVALID_FIELD"));
    assert!(message.contains("No such column 'Nme'"), "{message}");
    assert!(!org.cache.contains("Account"));
    org.ok("describe_object", json!({"object_name": "Account"}))
        .await;
    assert_eq!(org.counter("describe"), 3);

    // A name missing from a cached describe is re-checked once, then rejected.
    let (field, message) = invalid_field(
        org.call(
            "get_record",
            json!({"object_name": "Account", "record_id": EDGE, "fields": ["Nme"]}),
        )
        .await,
    );
    assert_eq!(field, "fields");
    assert!(message.contains("did you mean Name"), "{message}");
    assert_eq!(org.counter("describe"), 4);

    org.cache.invalidate_all();
    org.ok("list_objects", json!({})).await;
    assert_eq!(org.counter("describe_global"), 2);

    // A zero time limit never reuses an entry.
    let expiring = DescribeCache::new(Duration::ZERO);
    for _ in 0..2 {
        org.call_with(
            &expiring,
            &org.limits,
            "describe_object",
            json!({"object_name": "Lead"}),
        )
        .await
        .unwrap();
    }
    assert_eq!(org.counter("describe"), 6);
}

#[tokio::test]
async fn query_shapes_parents_and_child_subqueries() {
    let org = Org::start().await;
    let soql = format!(
        "SELECT Id, Name, Account.Name, (SELECT Id, Subject FROM Cases) FROM Contact WHERE Id = '{RITA}'"
    );
    let out = org.ok("query", json!({"soql": soql})).await;
    assert_eq!(out.structured["total_size"], 1);
    assert_eq!(out.structured["done"], true);
    assert_eq!(out.structured["next_cursor"], Value::Null);
    let rita = &out.structured["records"][0];
    assert_eq!(rita["type"], "Contact");
    assert_eq!(rita["Id"], RITA);
    assert_eq!(rita["Name"], "Rita Souza");
    assert!(rita.get("attributes").is_none());
    assert_eq!(rita["Account"]["type"], "Account");
    assert_eq!(
        rita["Account"]["Id"], EDGE,
        "the parent's Id comes from its attributes"
    );
    assert_eq!(rita["Account"]["Name"], "Edge Communications");
    assert_eq!(rita["Cases"]["total_size"], 1);
    assert_eq!(rita["Cases"]["done"], true);
    assert_eq!(
        rita["Cases"]["records"][0],
        json!({"type": "Case", "Id": "5005g00000A1b2cAAB", "Subject": "Router keeps rebooting"})
    );
    assert!(
        out.text
            .starts_with("1 of 1 record\nContact 0035g00000K9xYzAAJ "),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("Account.Name=Edge Communications"),
        "{}",
        out.text
    );

    let aggregate = org
        .ok(
            "query",
            json!({"soql": format!("SELECT COUNT(Id) n FROM Contact WHERE AccountId = '{EDGE}'")}),
        )
        .await;
    assert_eq!(
        aggregate.structured["records"][0]["type"],
        "AggregateResult"
    );
    assert!(aggregate.structured["records"][0]["n"].as_u64().unwrap() >= 1);

    let (_, code, _, _) = api_error(
        org.call("query", json!({"soql": "SELEC Id FROM Account"}))
            .await,
    );
    assert_eq!(code, "MALFORMED_QUERY");
    let (field, _) = invalid_field(org.call("query", json!({})).await);
    assert_eq!(field, "soql");
}

#[tokio::test]
async fn paging_spans_calls_and_salesforce_pages() {
    // Pages of at most 10 records, some shorter (uneven batches).
    let org = Org::start_with(sf_common::ANA, |c| c.query_batch_size = 10).await;
    let soql = "SELECT Id, Name FROM Account ORDER BY Name, Id";
    let everything = org
        .call_with(
            &org.cache,
            &Limits {
                max_records: 2000,
                max_bytes: 1 << 24,
                ..Limits::default()
            },
            "query",
            json!({"soql": soql}),
        )
        .await
        .unwrap();
    let total = everything.structured["total_size"].as_u64().unwrap() as usize;
    let all_ids = ids(&everything.structured["records"]);
    assert_eq!(
        all_ids.len(),
        total,
        "one call follows every nextRecordsUrl"
    );
    assert!(total > 60, "{total}");
    let pages_for_one_call = org.counter("query_more");
    assert!(pages_for_one_call >= 6, "{pages_for_one_call}");

    let mut seen = Vec::new();
    let mut calls = 0;
    let mut args = json!({"soql": soql, "max_records": 7});
    loop {
        let out = org.ok("query", args).await;
        calls += 1;
        let got = ids(&out.structured["records"]);
        assert!(got.len() <= 7);
        assert_eq!(
            out.structured["total_size"].as_u64().unwrap() as usize,
            total
        );
        seen.extend(got);
        match out.structured["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(out.structured["done"], false);
                assert!(
                    out.text.contains(&format!("pass cursor \"{cursor}\"")),
                    "{}",
                    out.text
                );
                args = json!({"cursor": cursor});
            }
            None => {
                assert_eq!(out.structured["done"], true);
                break;
            }
        }
        assert!(calls < 100, "paging does not end");
    }
    assert_eq!(seen, all_ids, "every record once, in order");
    assert_eq!(calls, total.div_ceil(7));
    assert!(org.counter("query_more") > pages_for_one_call);

    // The byte cap: one record per call, never zero.
    let tiny = Limits {
        max_records: 200,
        max_bytes: 1,
        ..Limits::default()
    };
    let first = org
        .call_with(&org.cache, &tiny, "query", json!({"soql": soql}))
        .await
        .unwrap();
    assert_eq!(ids(&first.structured["records"]), all_ids[..1]);
    let cursor = first.structured["next_cursor"].as_str().unwrap();
    let second = org
        .call_with(&org.cache, &tiny, "query", json!({"cursor": cursor}))
        .await
        .unwrap();
    assert_eq!(ids(&second.structured["records"]), all_ids[1..2]);
    assert!(
        second.text.starts_with(&format!("records 2-2 of {total} ")),
        "{}",
        second.text
    );
}

#[tokio::test]
async fn search_runs_sosl_and_parameterized_text() {
    let org = Org::start().await;
    let sosl = org
        .ok(
            "search",
            json!({"sosl": "FIND {Souza} IN NAME FIELDS RETURNING Contact(Id, Name)"}),
        )
        .await;
    let records = sosl.structured["records"].as_array().unwrap();
    let rita = records.iter().find(|r| r["Id"] == RITA).unwrap();
    assert_eq!(
        rita,
        &json!({"type": "Contact", "Id": RITA, "Name": "Rita Souza"})
    );
    assert!(
        records
            .iter()
            .all(|r| r["Name"].as_str().unwrap().contains("Souza"))
    );

    let text = org
        .ok(
            "search",
            json!({"text": "Edge Communications", "objects": [{"name": "account", "fields": ["Name", "BillingCity"]}], "limit": 5}),
        )
        .await;
    let edge = text.structured["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Id"] == EDGE)
        .unwrap_or_else(|| panic!("{}", text.text));
    assert_eq!(edge["type"], "Account");
    assert_eq!(edge["BillingCity"], "Austin");
    assert_eq!(org.counter("parameterized_search"), 1);

    let (field, message) = invalid_field(
        org.call(
            "search",
            json!({"text": "Edge", "objects": [{"name": "Account", "fields": ["Nme"]}]}),
        )
        .await,
    );
    assert_eq!(field, "objects[0].fields");
    assert!(message.contains("Name"), "{message}");
    let (field, _) = invalid_field(
        org.call(
            "search",
            json!({"text": "Edge", "objects": [{"name": "Acount"}]}),
        )
        .await,
    );
    assert_eq!(field, "objects[0].name");
}

#[tokio::test]
async fn get_record_and_list_recent() {
    let org = Org::start().await;
    let out = org
        .ok(
            "get_record",
            json!({"object_name": "Opportunity", "record_id": EDGE_OPPORTUNITY,
                "fields": ["name", "StageName", "Amount", "CloseDate"]}),
        )
        .await;
    let record = &out.structured["record"];
    assert_eq!(record["type"], "Opportunity");
    assert_eq!(record["Id"], EDGE_OPPORTUNITY);
    assert_eq!(record["Name"], "Edge – SLA renewal 2027");
    assert_eq!(record["StageName"], "Prospecting");
    assert_eq!(record["Amount"], 48000.0);
    assert_eq!(record["CloseDate"], "2027-01-31");
    assert!(
        out.text.starts_with("Opportunity 0065g00000B7c8dAAB\n"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("Name=Edge – SLA renewal 2027"),
        "{}",
        out.text
    );

    let full = org
        .ok(
            "get_record",
            json!({"object_name": "Contact", "record_id": RITA}),
        )
        .await;
    assert_eq!(
        full.structured["record"]["Email"],
        "rita.souza@edge.example"
    );
    assert_eq!(full.structured["record"]["AccountId"], EDGE);

    let (status, code, _, _) = api_error(
        org.call(
            "get_record",
            json!({"object_name": "Contact", "record_id": "0035g00000ZZZZZAAA"}),
        )
        .await,
    );
    assert_eq!((status, code.as_str()), (404, "NOT_FOUND"));

    let recent = org.ok("list_recent", json!({"limit": 2})).await;
    let records = recent.structured["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["Id"], RITA, "newest first");
    assert_eq!(records[0]["type"], "Contact");
    assert_eq!(records[1]["Id"], EDGE_OPPORTUNITY);
    assert!(
        recent
            .text
            .starts_with("2 recently viewed records\nContact 0035g00000K9xYzAAJ"),
        "{}",
        recent.text
    );
}

#[tokio::test]
async fn get_related_records_composes_a_checked_query() {
    let org = Org::start().await;
    let out = org
        .ok(
            "get_related_records",
            json!({"object_name": "Account", "record_id": EDGE, "relationship_name": "contacts"}),
        )
        .await;
    let count = org
        .ok("query", json!({"soql": format!("SELECT Id FROM Contact WHERE AccountId = '{EDGE}' ORDER BY Id")}))
        .await;
    assert_eq!(out.structured["total_size"], count.structured["total_size"]);
    assert_eq!(
        ids(&out.structured["records"]),
        ids(&count.structured["records"])
    );
    let rita = out.structured["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Id"] == RITA)
        .unwrap();
    assert_eq!(
        rita,
        &json!({"type": "Contact", "Id": RITA, "Name": "Rita Souza"})
    );
    assert!(
        out.text
            .starts_with("Contacts of Account 0015g00000Q1aACAAZ: "),
        "{}",
        out.text
    );

    let cases = org
        .ok(
            "get_related_records",
            json!({"object_name": "Account", "record_id": EDGE, "relationship_name": "Cases", "fields": ["Subject", "Status"]}),
        )
        .await;
    let case = cases.structured["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Id"] == "5005g00000A1b2cAAB")
        .unwrap();
    assert_eq!(case["Subject"], "Router keeps rebooting");
    assert_eq!(case["Status"], "Working");

    // Small per-call caps page through the query tool's cursor.
    let small = Limits {
        max_records: 1,
        ..Limits::default()
    };
    let first = org
        .call_with(&org.cache, &small, "get_related_records",
            json!({"object_name": "Account", "record_id": EDGE, "relationship_name": "Contacts", "limit": 2}))
        .await
        .unwrap();
    let total = first.structured["total_size"].as_u64().unwrap();
    assert_eq!(first.structured["records"].as_array().unwrap().len(), 1);
    if total > 1 {
        let cursor = first.structured["next_cursor"].as_str().unwrap();
        let next = org
            .call_with(&org.cache, &small, "query", json!({"cursor": cursor}))
            .await
            .unwrap();
        assert_eq!(
            ids(&next.structured["records"]),
            ids(&count.structured["records"])[1..2]
        );
    }

    let (field, message) = invalid_field(
        org.call(
            "get_related_records",
            json!({"object_name": "Account", "record_id": EDGE, "relationship_name": "Contactz"}),
        )
        .await,
    );
    assert_eq!(field, "relationship_name");
    assert!(message.contains("did you mean Contacts"), "{message}");
    let (field, _) = invalid_field(
        org.call(
            "get_related_records",
            json!({"object_name": "Account", "record_id": RITA, "relationship_name": "Contacts"}),
        )
        .await,
    );
    assert_eq!(field, "record_id");
    let (field, _) = invalid_field(
        org.call("get_related_records",
            json!({"object_name": "Account", "record_id": EDGE, "relationship_name": "Contacts", "fields": ["Id' OR Name != '"]}))
            .await,
    );
    assert_eq!(field, "fields");
}

#[tokio::test]
async fn user_info_limits_and_versions() {
    let org = Org::start().await;
    let me = org.ok("get_user_info", json!({})).await;
    let expected_user = sfsim::seed::user_id(&org.sim.sim.config, 0);
    assert_eq!(me.structured["user_id"], expected_user.as_str());
    assert_eq!(
        me.structured["organization_id"],
        org.sim.sim.org_id.as_str()
    );
    assert_eq!(me.structured["username"], sf_common::ANA);
    assert_eq!(me.structured["name"], "Ana Souza");
    assert_eq!(me.structured["email"], sf_common::ANA);
    assert_eq!(me.structured["time_zone"], "Europe/Lisbon");
    assert!(
        me.text
            .starts_with("Ana Souza <ana.souza@acme-demo.example> user "),
        "{}",
        me.text
    );

    let limits = org.ok("get_limits", json!({})).await;
    let daily = &limits.structured["limits"]["DailyApiRequests"];
    assert_eq!(daily["Max"], 15000);
    let remaining = daily["Remaining"].as_u64().unwrap();
    assert!(remaining < 15000 && remaining > 14900, "{remaining}");
    assert!(
        limits
            .text
            .contains(&format!("DailyApiRequests: {remaining} of 15000 remaining")),
        "{}",
        limits.text
    );

    // `GET /services/data/` (REST API Developer Guide, "Versions").
    let list: Vec<Value> = org
        .http
        .get(format!("{}/services/data/", org.sim.instance_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions: Vec<&str> = list
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    // A real org serves every version from 31.0 to the current one.
    assert_eq!(versions.len(), 68 - 31 + 1);
    assert_eq!(versions.first(), Some(&"31.0"));
    assert_eq!(versions.last(), Some(&"68.0"));
    assert!(versions.contains(&"66.0"));

    let (field, _) = invalid_field(org.call("no_such_tool", json!({})).await);
    assert_eq!(field, "name");
}

#[tokio::test]
async fn expired_sessions_limits_and_outages_map_to_their_errors() {
    let org = Org::start().await;
    org.admin("expire-access-tokens", json!({})).await;
    let err = org.call("get_limits", json!({})).await.unwrap_err();
    assert!(matches!(err, SfError::InvalidSession), "{err:?}");
    assert!(err.to_string().starts_with("INVALID_SESSION_ID"));
    let err = org.call("get_user_info", json!({})).await.unwrap_err();
    assert!(matches!(err, SfError::InvalidSession), "userinfo: {err:?}");

    let org = Org::start().await;
    org.admin("faults", json!({"api_limit_exhausted": true}))
        .await;
    let err = org
        .call("query", json!({"soql": "SELECT Id FROM Account"}))
        .await
        .unwrap_err();
    match &err {
        SfError::RequestLimit { usage: Some(usage) } => {
            assert!(
                usage.starts_with("api-usage=") && usage.ends_with("/15000"),
                "{usage}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent (api-usage=")
    );
    assert!(
        !format!("{err:?} {err}").contains(&org.token),
        "no token in errors"
    );

    // Nothing listens: a transport error, not a Salesforce one.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let session = salesforce::Session {
        instance_url: &url,
        ..org.session()
    };
    let err = salesforce::call_tool(
        &org.http,
        &session,
        &org.cache,
        &org.cursors,
        &org.limits,
        "get_limits",
        &json!({}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SfError::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains(&org.token));
}

#[tokio::test]
async fn concurrent_calls_share_one_cache() {
    let org = Org::start().await;
    let org = std::sync::Arc::new(org);
    let mut tasks = tokio::task::JoinSet::new();
    for object in ["Account", "Contact", "Lead", "Case"] {
        let org = org.clone();
        tasks.spawn(async move {
            let session = org.session();
            salesforce::call_tool(
                &org.http,
                &session,
                &org.cache,
                &org.cursors,
                &org.limits,
                "describe_object",
                &json!({"object_name": object}),
            )
            .await
            .map(|out| out.structured["name"].as_str().unwrap().to_owned())
        });
    }
    let mut names = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        names.insert(done.unwrap().unwrap());
    }
    assert_eq!(
        names,
        HashSet::from(["Account", "Contact", "Lead", "Case"].map(String::from))
    );
    for object in ["Account", "Contact", "Lead", "Case"] {
        assert!(org.cache.contains(object), "{object}");
    }
}
