//! The direct path of `/mcp` (gateway/src/mcp/direct.rs): plain
//! `tools/list`, `tools/call` and `ping` on a session, answered as JSON
//! without rmcp's session worker. It must answer exactly what rmcp's path
//! answers, and its traffic must count for the session's idle timeout.

mod common;

use std::time::Duration;

use common::Fixture;
use common::raw_mcp::{Answer, INITIALIZE, open_session as open, post, send};
use serde_json::Value;
use toolgate_proto::v1;

/// An `Accept` the direct path leaves to rmcp (it takes only plain ones).
const VIA_RMCP: &str = "application/json;q=0.9, text/event-stream;q=1";

fn content_type(answer: &Answer) -> &str {
    answer.headers["content-type"].to_str().unwrap()
}

#[tokio::test]
async fn tools_list_ping_and_call_answer_the_same_on_both_paths() {
    let mut fx = Fixture::salesforce(|_| {}).await;
    let reads = fx.toolset(v1::ToolsetKind::ReadOnly).await;
    let all = fx.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = fx.user("ana@example.com", &reads).await;
    // The write tools are requestable: listed marked, with the request tool.
    fx.admin
        .profiles
        .create_access_profile(v1::CreateAccessProfileRequest {
            name: "Sales writers".into(),
            description: "write for a while".into(),
            toolset_ids: vec![all],
            obtain: v1::ProfileObtain::RequestWithApproval.into(),
            max_request_duration_secs: Some(3600),
        })
        .await
        .unwrap();
    let url = fx.mcp_url.clone();
    let session = open(&url, &token).await;

    for body in [
        r#"{"jsonrpc":"2.0","id":"list","method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#,
        // No Salesforce connection yet: a tool error with the connect link
        // (a new link each time, so only its shape is compared).
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"salesforce_query","arguments":{"soql":"SELECT Id FROM Account"}}}"#,
        // Unknown tool: a tool error naming it.
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope","arguments":{}}}"#,
    ] {
        let direct = send(post(&url, &token, Some(&session), body)).await;
        let rmcp = send(post(&url, &token, Some(&session), body).header("accept", VIA_RMCP)).await;
        assert_eq!(direct.status, 200, "{}", direct.body);
        assert_eq!(rmcp.status, 200, "{}", rmcp.body);
        assert_eq!(content_type(&direct), "application/json", "{body}");
        assert_eq!(content_type(&rmcp), "text/event-stream", "{body}");
        let (mut direct, mut rmcp) = (direct.message(), rmcp.message());
        if body.contains("salesforce_query") {
            for m in [&mut direct, &mut rmcp] {
                let text = m["result"]["content"][0]["text"].as_str().unwrap();
                assert!(text.contains("/connect/"), "{text}");
                m["result"]["content"][0]["text"] = Value::Null;
            }
        }
        assert_eq!(direct, rmcp, "{body}");
    }

    // DNS-rebinding protection holds on the direct path too: a foreign
    // `Host` or `Origin` is refused (by rmcp, as before).
    let list = r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#;
    let foreign_host =
        send(post(&url, &token, Some(&session), list).header("host", "attacker.example.com")).await;
    assert_eq!(foreign_host.status, 403, "{}", foreign_host.body);
    let foreign_origin = send(
        post(&url, &token, Some(&session), list).header("origin", "https://attacker.example.com"),
    )
    .await;
    assert_eq!(foreign_origin.status, 403, "{}", foreign_origin.body);

    // The listing itself: the read tools plainly, the write tools marked
    // requestable, and the request tool.
    let list = send(post(
        &url,
        &token,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#,
    ))
    .await
    .message();
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert!(names.contains(&"salesforce_query"), "{names:?}");
    assert!(names.contains(&"toolgate_request_access"), "{names:?}");
    let marked = tools
        .iter()
        .filter(|t| t["_meta"]["toolgate/requestable"].is_object())
        .count();
    assert!(marked >= 1, "{list}");
    fx.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn direct_traffic_keeps_a_session_open_and_idleness_closes_it() {
    let mut fx = Fixture::start_with(|c| {
        c.mcp_session_idle_timeout = Duration::from_secs(1);
        c.mcp_max_sessions_per_user = 1;
    })
    .await;
    let ana = fx.create_user("ana@example.com").await;
    let token = fx.issue_token(&ana, "direct").await;
    let url = fx.mcp_url.clone();
    let session = open(&url, &token).await;
    assert_eq!(send(post(&url, &token, None, INITIALIZE)).await.status, 429);
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    // Three idle timeouts of pings on the direct path: still open.
    for _ in 0..12 {
        let answer = send(post(&url, &token, Some(&session), ping)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(content_type(&answer), "application/json");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Then silence: it closes, giving its slot back (polled, bounded, with
    // initialize, which does not touch it), and answers 404.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let answer = send(post(&url, &token, None, INITIALIZE)).await;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session never idled out"
        );
    }
    let gone = send(post(&url, &token, Some(&session), ping)).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    fx.daemon.stop().await.unwrap();
}
