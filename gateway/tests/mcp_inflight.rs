//! Two requests in flight on one MCP session with the same JSON-RPC id:
//! the second is refused with `-32600` and the first gets its own result
//! (rmcp routes answers by id, so the second used to receive the first's).
//! toolgated calls a slow sfsim so the first call is still in flight.

mod common;

use common::Fixture;
use serde_json::{Value, json};
use toolgate_proto::v1;

fn post(url: &str, token: &str, session: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(id) = session {
        request = request
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request
}

/// [`post`], sent, and its whole body as text.
async fn post_text(url: &str, token: &str, session: Option<&str>, body: &Value) -> String {
    post(url, token, session, body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The JSON-RPC messages of an SSE body.
fn messages(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_id_in_flight_is_refused_not_answered_with_the_others_result() {
    // One server with every tool approved, one user granted all of them.
    let mut gate = Fixture::salesforce(|_| {}).await;
    let all = gate.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = gate.user("ana@example.com", &all).await;

    let url = gate.mcp_url.clone();
    let init = post(
        &url,
        &token,
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    init.text().await.unwrap();
    let initialized = post(
        &url,
        &token,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(initialized.status(), 202);

    // Connect Ana's Salesforce account: the first call answers with the
    // connect link; sfsim consents at once for a login hint.
    let query = |id: i64, soql: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "salesforce_query", "arguments": {"soql": soql}}})
    };
    let first = post_text(
        &url,
        &token,
        Some(&session),
        &query(1, "SELECT Id FROM Account LIMIT 1"),
    )
    .await;
    let prompt = messages(&first)[0]["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = prompt
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap()
        .trim_end_matches([',', '.'])
        .to_owned();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let to_login = browser.post(&link).send().await.unwrap();
    let authorize = to_login.headers()["location"].to_str().unwrap().to_owned();
    let consent = browser
        .get(format!(
            "{authorize}&login_hint=ana.souza%40acme-demo.example"
        ))
        .send()
        .await
        .unwrap();
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(browser.get(callback).send().await.unwrap().status(), 200);

    // Every REST call now takes 3 s.
    let faults = reqwest::Client::new()
        .post(format!("{}/_sfsim/faults", gate.sf.sim.login_url))
        .json(&json!({"latency_ms": 3000, "latency_every": 1}))
        .send()
        .await
        .unwrap();
    assert!(faults.status().is_success());

    // The first request's answer stream is open (its headers arrived) and
    // its call is waiting on Salesforce; the second reuses its id.
    let slow = post(
        &url,
        &token,
        Some(&session),
        &query(7, "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(slow.status(), 200);
    let reused = post(
        &url,
        &token,
        Some(&session),
        &query(7, "SELECT Id FROM Contact LIMIT 1"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(reused.status(), 200);
    let reused = messages(&reused.text().await.unwrap());
    assert_eq!(reused.len(), 1, "{reused:?}");
    assert_eq!(reused[0]["id"], 7);
    assert_eq!(reused[0]["error"]["code"], -32600, "{reused:?}");
    assert!(reused[0].get("result").is_none());

    let slow = messages(&slow.text().await.unwrap());
    let answer = slow
        .iter()
        .find(|m| m["id"] == 7)
        .unwrap_or_else(|| panic!("{slow:?}"));
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("GenePoint"),
        "{answer}"
    );

    // Once answered, the id is free again.
    let again = post_text(
        &url,
        &token,
        Some(&session),
        &query(7, "SELECT Id FROM Account LIMIT 1"),
    )
    .await;
    assert!(messages(&again)[0].get("result").is_some(), "{again}");

    // A stream dropped before its answer: the call goes on in Salesforce,
    // and its id stays taken until that call has finished and its answer
    // is gone, so a request reusing the id is refused meanwhile and then
    // gets its own answer, never the abandoned call's.
    let abandoned = post(
        &url,
        &token,
        Some(&session),
        &query(8, "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(abandoned.status(), 200);
    drop(abandoned);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut refusals = 0;
    let reused = loop {
        let answer = post_text(
            &url,
            &token,
            Some(&session),
            &query(8, "SELECT Id, LastName FROM Contact LIMIT 1"),
        )
        .await;
        let answer = messages(&answer)
            .into_iter()
            .find(|m| m["id"] == 8)
            .unwrap_or_else(|| panic!("{answer}"));
        if answer["error"]["code"] != -32600 {
            break answer;
        }
        refusals += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the abandoned id was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let text = reused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{reused}"));
    assert!(!text.contains("GenePoint"), "{text}");
    assert!(text.contains("Contact"), "{text}");
    eprintln!("the reused id was refused {refusals} times first");

    gate.daemon.stop().await.unwrap();
    gate.sf.sim.stop().await;
}
