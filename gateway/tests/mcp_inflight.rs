//! Two requests in flight on one MCP session with the same JSON-RPC id:
//! the second is refused with `-32600` and the first gets its own result
//! (rmcp routes answers by id, so the second used to receive the first's).
//! toolgated calls a slow sfsim so the first call is still in flight; sfsim
//! counts a REST call when it arrives, before its delay, which says when the
//! first call has reached it. Run on both paths of a `tools/call`: the
//! direct one (a JSON answer, `Accept` naming both media types plainly) and
//! rmcp's (an SSE answer, here by an `Accept` with parameters).

mod common;

use common::Fixture;
use serde_json::{Value, json};
use toolgate_proto::v1;

/// The `Accept` of the direct path.
const DIRECT: &str = "application/json, text/event-stream";
/// An `Accept` the direct path leaves to rmcp.
const VIA_RMCP: &str = "application/json;q=0.9, text/event-stream;q=1";

fn post(url: &str, token: &str, session: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
    post_as(url, token, session, body, DIRECT)
}

fn post_as(
    url: &str,
    token: &str,
    session: Option<&str>,
    body: &Value,
    accept: &str,
) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", accept)
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
    post_text_as(url, token, session, body, DIRECT).await
}

/// [`post_as`], sent, and its whole body as text.
async fn post_text_as(
    url: &str,
    token: &str,
    session: Option<&str>,
    body: &Value,
    accept: &str,
) -> String {
    post_as(url, token, session, body, accept)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The JSON-RPC messages of a JSON or SSE body.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(message) = serde_json::from_str(body) {
        return vec![message];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

/// REST calls sfsim has seen so far.
async fn rest_calls(login_url: &str) -> u64 {
    let state: Value = reqwest::get(format!("{login_url}/_sfsim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["counters"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

/// Waits (bounded) until sfsim has seen more than `before` REST calls.
async fn until_rest_call(login_url: &str, before: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while rest_calls(login_url).await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never reached sfsim"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_id_in_flight_is_refused_on_the_direct_path() {
    request_ids_in_flight(DIRECT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_id_in_flight_is_refused_on_rmcps_path() {
    request_ids_in_flight(VIA_RMCP).await;
}

async fn request_ids_in_flight(accept: &'static str) {
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

    // The first request's call is waiting on Salesforce; the second
    // reuses its id.
    let login_url = gate.sf.sim.login_url.clone();
    let before = rest_calls(&login_url).await;
    let slow = tokio::spawn({
        let (url, token, session) = (url.clone(), token.clone(), session.clone());
        let body = query(7, "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'");
        async move {
            let answer = post_as(&url, &token, Some(&session), &body, accept)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            let json = answer.headers()["content-type"] == "application/json";
            (json, answer.text().await.unwrap())
        }
    });
    until_rest_call(&login_url, before).await;
    let reused = post_as(
        &url,
        &token,
        Some(&session),
        &query(7, "SELECT Id FROM Contact LIMIT 1"),
        accept,
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

    let (json, slow) = slow.await.unwrap();
    // Which path answered: JSON from the direct one, SSE from rmcp's.
    assert_eq!(json, accept == DIRECT, "{slow}");
    let slow = messages(&slow);
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
    let again = post_text_as(
        &url,
        &token,
        Some(&session),
        &query(7, "SELECT Id FROM Account LIMIT 1"),
        accept,
    )
    .await;
    assert!(messages(&again)[0].get("result").is_some(), "{again}");

    // A stream dropped before its answer: the call goes on in Salesforce,
    // and its id stays taken until that call has finished and its answer
    // is gone, so a request reusing the id is refused meanwhile and then
    // gets its own answer, never the abandoned call's.
    let before = rest_calls(&login_url).await;
    let abandoned = tokio::spawn({
        let (url, token, session) = (url.clone(), token.clone(), session.clone());
        let body = query(8, "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'");
        async move {
            post_as(&url, &token, Some(&session), &body, accept)
                .send()
                .await
                .unwrap()
                .text()
                .await
        }
    });
    until_rest_call(&login_url, before).await;
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut refusals = 0;
    let reused = loop {
        let answer = post_text_as(
            &url,
            &token,
            Some(&session),
            &query(8, "SELECT Id, LastName FROM Contact LIMIT 1"),
            accept,
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
