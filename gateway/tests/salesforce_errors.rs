//! Errors the Salesforce tools must get right, against an in-process sfsim
//! org: a record Id of another object is refused before Salesforce
//! answers a bare `NOT_FOUND`; a timeout reads as a timeout; a create or
//! upsert whose answer was lost says the record may exist.

mod sf_common;

use std::time::Duration;

use serde_json::json;
use sf_common::{EDGE, EDGE_OPPORTUNITY, Org, RITA, invalid_field};
use toolgate_gateway::salesforce::{Limits, SfError};

#[tokio::test]
async fn every_tool_that_takes_a_record_id_names_the_expected_prefix() {
    let org = Org::start().await;
    let contact_for_account = json!({"object_name": "Account", "record_id": RITA});
    let cases = [
        ("get_record", contact_for_account.clone()),
        (
            "get_related_records",
            json!({"object_name": "Account", "record_id": RITA, "relationship_name": "Contacts"}),
        ),
        (
            "update_record",
            json!({"object_name": "Account", "record_id": RITA, "fields": {"Name": "x"}}),
        ),
        ("delete_record", contact_for_account.clone()),
    ];
    for (tool, args) in cases {
        let (field, message) = invalid_field(org.call(tool, args).await);
        assert_eq!(field, "record_id", "{tool}");
        assert_eq!(
            message,
            format!(
                "{RITA} is a Contact Id, not an Account Id (Account Ids start with 001); pass an Id of the object you name, or name the object this Id belongs to"
            ),
            "{tool}"
        );
    }
    let (field, message) = invalid_field(
        org.call(
            "get_record",
            json!({"object_name": "Contact", "record_id": EDGE_OPPORTUNITY, "fields": ["Name"]}),
        )
        .await,
    );
    assert_eq!(field, "record_id");
    assert!(
        message.starts_with(&format!(
            "{EDGE_OPPORTUNITY} is an Opportunity Id, not a Contact Id (Contact Ids start with 003)"
        )),
        "{message}"
    );
    // Upsert by Id: the external Id is a record Id.
    let (field, message) = invalid_field(
        org.call(
            "upsert_record",
            json!({"object_name": "Account", "external_id_field": "Id", "external_id": RITA, "fields": {"Name": "x"}}),
        )
        .await,
    );
    assert_eq!(field, "external_id");
    assert!(
        message.starts_with(&format!("{RITA} is a Contact Id, not an Account Id")),
        "{message}"
    );
    assert_eq!(
        org.counter("record_get")
            + org.counter("record_update")
            + org.counter("record_delete")
            + org.counter("record_upsert"),
        0,
        "refused before any record request"
    );
    // The Id of the named object still works.
    let edge = org
        .ok(
            "get_record",
            json!({"object_name": "Account", "record_id": EDGE}),
        )
        .await;
    assert_eq!(edge.structured["record"]["Id"], EDGE);
}

/// An org whose every REST answer takes 5 s, called with a 300 ms
/// timeout, with the sObject list already cached.
async fn slow_org() -> Org {
    let mut org = Org::start().await;
    org.limits = Limits {
        upstream_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    org.ok("list_objects", json!({})).await;
    org.ok("describe_object", json!({"object_name": "Account"}))
        .await;
    org.admin("faults", json!({"latency_ms": 5000, "latency_every": 1}))
        .await;
    org
}

#[tokio::test]
async fn a_timeout_reads_as_a_timeout() {
    let org = slow_org().await;
    let err = org
        .call("query", json!({"soql": "SELECT Id FROM Account"}))
        .await
        .unwrap_err();
    assert!(matches!(err, SfError::Timeout(_)), "{err:?}");
    assert_eq!(err.to_string(), "Salesforce did not answer within 300 ms");
}

#[tokio::test]
async fn a_create_or_upsert_whose_answer_was_lost_says_the_record_may_exist() {
    let org = slow_org().await;
    let err = org
        .call(
            "create_record",
            json!({"object_name": "Account", "fields": {"Name": "Lost answer Ltd"}}),
        )
        .await
        .unwrap_err();
    match &err {
        SfError::OutcomeUnknown {
            operation,
            object,
            cause,
        } => {
            assert_eq!((*operation, object.as_str()), ("create", "Account"));
            assert!(matches!(**cause, SfError::Timeout(_)), "{cause:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the outcome of this create is unknown: Salesforce did not answer within 300 ms. Salesforce may have saved it, so the record may exist; search for it (e.g. query Account by a field you set) before retrying, or a retry may create a duplicate"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );

    let err = org
        .call(
            "upsert_record",
            json!({"object_name": "Opportunity", "external_id_field": "Legacy_Key__c",
                "external_id": "LOST-1", "fields": {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-12-31"}}),
        )
        .await
        .unwrap_err();
    // The Opportunity describe was not cached: that request timed out
    // before any write was sent, so it is a plain timeout.
    assert!(matches!(err, SfError::Timeout(_)), "{err:?}");

    // A read that times out is a timeout, never an unknown outcome.
    let err = org
        .call(
            "get_record",
            json!({"object_name": "Account", "record_id": EDGE}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SfError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn an_upsert_whose_answer_was_lost_says_the_record_may_exist() {
    let mut org = Org::start().await;
    org.ok("list_objects", json!({})).await;
    org.ok("describe_object", json!({"object_name": "Opportunity"}))
        .await;
    org.limits = Limits {
        upstream_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    org.admin("faults", json!({"latency_ms": 5000, "latency_every": 1}))
        .await;
    let err = org
        .call(
            "upsert_record",
            json!({"object_name": "Opportunity", "external_id_field": "Legacy_Key__c",
                "external_id": "LOST-1", "fields": {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-12-31"}}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::OutcomeUnknown { operation: "upsert", object, .. } if object == "Opportunity"),
        "{err:?}"
    );
    assert!(err.to_string().contains("the record may exist"), "{err}");
}

/// A one-route Salesforce stand-in on loopback: answers describe global
/// (`GET .../sobjects`) with Account, and reads a `POST` whole, then
/// closes the connection without answering (the answer is lost after the
/// request reached it).
async fn org_that_drops_writes() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and, for a POST, its body (Content-Length).
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                if request.starts_with(b"POST") {
                    seen.fetch_add(1, Ordering::SeqCst);
                    return; // Drop the connection: no answer.
                }
                let body =
                    r#"{"sobjects":[{"name":"Account","keyPrefix":"001","label":"Account"}]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, posts)
}

#[tokio::test]
async fn a_create_whose_connection_breaks_after_sending_says_the_record_may_exist() {
    use toolgate_gateway::salesforce::{self, Cursors, DescribeCache, Session};
    let (url, posts) = org_that_drops_writes().await;
    let session = Session {
        connection_id: "u.s",
        instance_url: &url,
        access_token: "00D!token",
        api_version: "66.0",
        api_usage: None,
    };
    let err = salesforce::call_tool(
        &reqwest::Client::new(),
        &session,
        &DescribeCache::default(),
        &Cursors::new([0; 32]),
        &Limits::default(),
        "create_record",
        &json!({"object_name": "Account", "fields": {"Name": "Reset Ltd"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        posts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the create reached the org"
    );
    match &err {
        SfError::OutcomeUnknown { cause, .. } => {
            assert!(matches!(**cause, SfError::Interrupted(_)), "{cause:?}")
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("the outcome of this create is unknown: the connection to Salesforce broke before its answer arrived"),
        "{text}"
    );
    assert!(
        text.contains("the record may exist") && !text.contains("00D!token"),
        "{text}"
    );
}
