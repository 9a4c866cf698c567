//! Paging cursors against an in-process sfsim org: continuing never runs
//! the query again (rows inserted or deleted between calls neither repeat
//! nor vanish), and a cursor works only, unaltered, for the connection it
//! was issued to.

mod sf_common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sf_common::{Org, ids, invalid_field};
use toolgate_gateway::salesforce::cursor::{Cursor, Source, query_digest};
use toolgate_gateway::salesforce::held::HeldLimits;
use toolgate_gateway::salesforce::{self, Cursors, Limits, SfError};

const SOQL: &str = "SELECT Id, Name FROM Account ORDER BY Name, Id";

/// Every Account Id in query order, in one call.
async fn everything(org: &Org) -> Vec<String> {
    let all = org
        .call_with(
            &org.cache,
            &Limits {
                max_records: 2000,
                max_bytes: 1 << 24,
                ..Limits::default()
            },
            "query",
            json!({"soql": SOQL}),
        )
        .await
        .unwrap();
    ids(&all.structured["records"])
}

/// Inserts an Account that sorts first and deletes `victim`, through the
/// tools (as another agent of the same user would).
async fn churn(org: &Org, n: usize, victim: &str) {
    org.ok(
        "create_record",
        json!({"object_name": "Account", "fields": {"Name": format!("!!! inserted {n}")}}),
    )
    .await;
    org.ok(
        "delete_record",
        json!({"object_name": "Account", "record_id": victim}),
    )
    .await;
}

/// Pages `SOQL` with `max_records`, churning rows between calls, and
/// returns the Ids seen and the number of calls.
async fn page_with_churn(
    org: &Org,
    max_records: usize,
    snapshot: &[String],
) -> (Vec<String>, usize) {
    let mut seen: Vec<String> = Vec::new();
    let mut args = json!({"soql": SOQL, "max_records": max_records});
    let mut calls = 0;
    loop {
        let out = org.ok("query", args).await;
        calls += 1;
        let got = ids(&out.structured["records"]);
        assert!(got.len() <= max_records);
        seen.extend(got);
        let Some(cursor) = out.structured["next_cursor"].as_str() else {
            break;
        };
        // Delete a row not returned yet, insert one before everything.
        if let Some(victim) = snapshot.get(seen.len() + 1) {
            churn(org, calls, victim).await;
        }
        args = json!({"cursor": cursor});
        assert!(calls < 100, "paging does not end");
    }
    (seen, calls)
}

#[tokio::test]
async fn a_first_page_cut_by_max_records_continues_without_running_the_query_again() {
    // 60 accounts fit one Salesforce batch (done: true, no locator).
    let org = Org::start().await;
    let snapshot = everything(&org).await;
    assert!(snapshot.len() >= 60, "{}", snapshot.len());
    let queries = org.counter("query");

    let (seen, calls) = page_with_churn(&org, 5, &snapshot).await;

    assert_eq!(seen, snapshot, "every record of the query once, in order");
    assert_eq!(calls, snapshot.len().div_ceil(5));
    assert_eq!(org.counter("query"), queries + 1, "the SOQL ran once");
    // The rows changed meanwhile: a new query sees them.
    let now = everything(&org).await;
    assert!(now[0].starts_with("001") && !snapshot.contains(&now[0]));
    assert_ne!(now, snapshot);
}

#[tokio::test]
async fn cuts_inside_later_pages_follow_salesforce_locators_with_a_position() {
    // Salesforce pages of at most 10 records (uneven), calls of 7.
    let org = Org::start_with(sf_common::ANA, |c| c.query_batch_size = 10).await;
    let snapshot = everything(&org).await;
    let (queries, mores) = (org.counter("query"), org.counter("query_more"));

    let (seen, calls) = page_with_churn(&org, 7, &snapshot).await;

    assert_eq!(seen, snapshot);
    assert_eq!(calls, snapshot.len().div_ceil(7));
    assert_eq!(org.counter("query"), queries + 1, "the SOQL ran once");
    assert!(
        org.counter("query_more") > mores + snapshot.len() as u64 / 10,
        "pages came through nextRecordsUrl"
    );
}

#[tokio::test]
async fn max_records_of_200_or_more_asks_salesforce_for_that_batch_size() {
    // 250 accounts, even batches: a call of 200 asks for pages of 200.
    let org = Org::start_with(sf_common::ANA, |c| {
        c.seed_accounts = 250;
        c.uneven_batches = false;
    })
    .await;
    let limits = Limits {
        max_records: 2000,
        ..Limits::default()
    };
    let first = org
        .call_with(
            &org.cache,
            &limits,
            "query",
            json!({"soql": SOQL, "max_records": 200}),
        )
        .await
        .unwrap();
    assert_eq!(first.structured["records"].as_array().unwrap().len(), 200);
    let cursor = first.structured["next_cursor"].as_str().unwrap().to_owned();
    let (payload, _) = cursor.split_once('.').unwrap();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    // The cut fell on Salesforce's own page boundary: its locator, at 0.
    assert!(
        payload["p"].as_str().unwrap().ends_with("-200"),
        "{payload}"
    );
    assert_eq!(payload["o"], 0);
    assert!(payload.get("h").is_none());
}

#[tokio::test]
async fn cursors_bind_to_their_connection_and_refuse_edits_without_a_request() {
    let org = Org::start().await;
    let first = org
        .ok("query", json!({"soql": SOQL, "max_records": 3}))
        .await;
    let cursor = first.structured["next_cursor"].as_str().unwrap().to_owned();
    let before = (org.counter("query"), org.counter("query_more"));

    // Another connection (another user, or the same user's other server).
    for other in ["user-ben.server-sf", "user-ana.server-sandbox"] {
        let session = salesforce::Session {
            connection_id: other,
            ..org.session()
        };
        let err = salesforce::call_tool(
            &org.http,
            &session,
            &org.cache,
            &org.cursors,
            &org.limits,
            "query",
            &json!({"cursor": cursor}),
        )
        .await;
        let (field, message) = invalid_field(err);
        assert_eq!(field, "cursor");
        assert!(
            message.contains("issued to another user or Salesforce connection"),
            "{message}"
        );
    }

    // The same payload with another query under the old MAC.
    let (payload, tag) = cursor.split_once('.').unwrap();
    let mut p: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    p.as_object_mut().unwrap().remove("h");
    p["p"] = json!("/services/data/v66.0/query?q=SELECT+Id,Email,Phone+FROM+Contact");
    let edited = format!(
        "{}.{tag}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&p).unwrap())
    );
    let (field, message) = invalid_field(org.call("query", json!({"cursor": edited})).await);
    assert_eq!(field, "cursor");
    assert!(message.contains("altered"), "{message}");

    // The format before cursors were signed, and junk.
    let unsigned = URL_SAFE_NO_PAD.encode(
        json!({"p": "/services/data/v66.0/query?q=SELECT+Id+FROM+Contact", "o": 0}).to_string(),
    );
    for text in [unsigned.as_str(), "garbage!", ""] {
        let (field, message) = invalid_field(org.call("query", json!({"cursor": text})).await);
        assert_eq!(field, "cursor", "{text}");
        assert!(message.contains("next_cursor"), "{text}: {message}");
    }

    // A cursor signed with another gateway's key.
    let foreign = Cursors::new([1; 32]).encode(
        sf_common::CONNECTION,
        &Cursor {
            source: Source::Locator("/services/data/v66.0/query/01gRO0000000001AAA-3".into()),
            offset: 0,
            returned: 3,
            max_records: None,
            query: query_digest("query", SOQL),
        },
    );
    let (field, _) = invalid_field(org.call("query", json!({"cursor": foreign})).await);
    assert_eq!(field, "cursor");

    // A correctly signed cursor must still point at a query path.
    let signed_elsewhere = org.cursors.encode(
        sf_common::CONNECTION,
        &Cursor {
            source: Source::Locator(
                "/services/data/v66.0/sobjects/Account/0015g00000Q1aACAAZ".into(),
            ),
            offset: 0,
            returned: 0,
            max_records: None,
            query: query_digest("query", SOQL),
        },
    );
    let (field, _) = invalid_field(org.call("query", json!({"cursor": signed_elsewhere})).await);
    assert_eq!(field, "cursor");
    let (field, _) = invalid_field(
        org.call("query", json!({"soql": SOQL, "cursor": cursor}))
            .await,
    );
    assert_eq!(field, "cursor");

    assert_eq!(
        (
            org.counter("query"),
            org.counter("query_more"),
            org.counter("record_get")
        ),
        (before.0, before.1, 0),
        "nothing reached Salesforce"
    );
    // The untouched cursor still works for its own connection.
    let next = org.ok("query", json!({"cursor": cursor})).await;
    assert_eq!(next.structured["records"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_held_first_page_expires_with_a_clear_error() {
    let mut org = Org::start().await;
    org.cursors = Cursors::with_limits(
        [42; 32],
        HeldLimits {
            ttl: std::time::Duration::ZERO,
            ..HeldLimits::default()
        },
    );
    let first = org
        .ok("query", json!({"soql": SOQL, "max_records": 2}))
        .await;
    let cursor = first.structured["next_cursor"].as_str().unwrap();
    match org.call("query", json!({"cursor": cursor})).await {
        Err(SfError::InvalidArgument { field, message }) => {
            assert_eq!(field, "cursor");
            assert!(
                message.contains("expired") && message.contains("run the query again"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}
