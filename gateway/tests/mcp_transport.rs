//! The `/mcp` transport, raw HTTP against an in-process daemon on loopback:
//! sessions bound to the user and token that opened them, session limits
//! and their audit, the idle timeout, DELETE's status, HTTP and JSON-RPC
//! codes for bad methods and bodies, and a public URL with a non-default
//! port.

mod common;

use std::time::Duration;

use common::Fixture;
use common::raw_mcp::{Answer, INITIALIZE, LIST, open_session as open, post, send};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toolgate_proto::v1;

async fn get(url: &str, token: &str, session: &str) -> Answer {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    // A live GET is an endless SSE stream: read the status only.
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: if response.status() == 200 {
            String::new()
        } else {
            response.text().await.unwrap()
        },
    }
}

async fn delete(url: &str, token: &str, session: &str) -> Answer {
    send(
        reqwest::Client::new()
            .delete(url)
            .bearer_auth(token)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25"),
    )
    .await
}

#[tokio::test]
async fn a_session_answers_only_the_user_and_token_that_opened_it() {
    let mut w = Fixture::start().await;
    let ana = w.create_user("ana@example.com").await;
    let ana_token = w.issue_token(&ana, "transport").await;
    let ana_laptop = w.issue_token(&ana, "transport").await;
    let ben = w.create_user("ben@example.com").await;
    let ben_token = w.issue_token(&ben, "transport").await;
    let url = w.mcp_url.clone();

    let session = open(&url, &ana_token).await;
    let listed = send(post(&url, &ana_token, Some(&session), LIST)).await;
    assert_eq!(listed.status, 200);
    assert!(
        listed.message()["result"]["tools"].is_array(),
        "{}",
        listed.body
    );

    // What an unknown session gets, for each method.
    let unknown = "0b6f7e53-2f3e-4d3a-9c1e-6f1d2a3b4c5d";
    let unknown_post = send(post(&url, &ben_token, Some(unknown), LIST)).await;
    let unknown_get = get(&url, &ben_token, unknown).await;
    let unknown_delete = delete(&url, &ben_token, unknown).await;
    assert_eq!(unknown_post.status, 404);
    assert_eq!(unknown_get.status, 404);
    assert_eq!(unknown_delete.status, 404);

    // Another user, and the same user with another token, get exactly that.
    for other in [&ben_token, &ana_laptop] {
        let p = send(post(&url, other, Some(&session), LIST)).await;
        assert_eq!((p.status, &p.body), (404, &unknown_post.body));
        let call = send(post(
            &url,
            other,
            Some(&session),
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"salesforce_query","arguments":{}}}"#,
        ))
        .await;
        assert_eq!((call.status, &call.body), (404, &unknown_post.body));
        let g = get(&url, other, &session).await;
        assert_eq!((g.status, &g.body), (404, &unknown_get.body));
        let d = delete(&url, other, &session).await;
        assert_eq!((d.status, &d.body), (404, &unknown_delete.body));
    }

    // The owner's session survived all of that, and its own DELETE answers
    // 204 and ends it.
    let listed = send(post(&url, &ana_token, Some(&session), LIST)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(get(&url, &ana_token, &session).await.status, 200);
    let deleted = delete(&url, &ana_token, &session).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let after = send(post(&url, &ana_token, Some(&session), LIST)).await;
    assert_eq!(after.status, 404);
    w.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn sessions_are_capped_per_user_and_in_total_and_refusals_are_audited() {
    let mut w = Fixture::start_with(|c| {
        c.mcp_max_sessions_per_user = 2;
        c.mcp_max_sessions = 3;
    })
    .await;
    let ana = w.create_user("ana@example.com").await;
    let ana_token = w.issue_token(&ana, "transport").await;
    let ben = w.create_user("ben@example.com").await;
    let ben_token = w.issue_token(&ben, "transport").await;
    let url = w.mcp_url.clone();

    let first = open(&url, &ana_token).await;
    open(&url, &ana_token).await;
    let refused = send(post(&url, &ana_token, None, INITIALIZE)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.error_code(), -32000);
    let message = refused.message();
    assert_eq!(message["id"], 1);
    assert_eq!(
        message["error"]["data"],
        json!({"limit": 2, "scope": "user"})
    );
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("you have 2 open MCP sessions"),
        "{message}"
    );
    assert!(refused.headers.get("mcp-session-id").is_none());

    // Ben may open one more: then the gateway's limit of 3 is reached.
    open(&url, &ben_token).await;
    let full = send(post(&url, &ben_token, None, INITIALIZE)).await;
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(full.message()["error"]["data"]["scope"], "gateway");

    // A closed session gives its slot back.
    assert_eq!(delete(&url, &ana_token, &first).await.status, 204);
    open(&url, &ana_token).await;

    let events = w
        .admin
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: "mcp.session".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == i32::from(v1::Outcome::Denied))
        .collect();
    assert_eq!(denied.len(), 2, "{events:?}");
    assert!(denied.iter().any(|e| e.actor == "user:ana@example.com"
        && e.target == "user/ana@example.com"
        && e.details_json.contains("\"scope\":\"user\"")));
    assert!(
        denied.iter().any(|e| e.actor == "user:ben@example.com"
            && e.details_json.contains("\"scope\":\"gateway\""))
    );
    w.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn idle_sessions_close_and_give_their_slot_back() {
    let mut w = Fixture::start_with(|c| {
        c.mcp_session_idle_timeout = Duration::from_secs(1);
        c.mcp_max_sessions_per_user = 1;
    })
    .await;
    let ana = w.create_user("ana@example.com").await;
    let token = w.issue_token(&ana, "transport").await;
    let url = w.mcp_url.clone();
    let session = open(&url, &token).await;
    assert_eq!(send(post(&url, &token, None, INITIALIZE)).await.status, 429);
    // The idle timeout is what is tested: poll (bounded) with initialize,
    // which does not touch the open session, until its slot is free.
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
    let gone = send(post(&url, &token, Some(&session), LIST)).await;
    assert_eq!(gone.status, 404);
    w.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn bad_methods_and_bodies_get_their_http_and_json_rpc_codes() {
    let mut w = Fixture::start().await;
    let ana = w.create_user("ana@example.com").await;
    let token = w.issue_token(&ana, "transport").await;
    let url = w.mcp_url.clone();
    let http = reqwest::Client::new();

    for method in ["HEAD", "PUT", "PATCH", "OPTIONS"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = send(http.request(method.clone(), &url).bearer_auth(&token)).await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "GET, POST, DELETE", "{method}");
    }

    for (body, code) in [
        ("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ", -32700),
        ("not json at all", -32700),
        ("", -32700),
        ("[]", -32600),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
        ("42", -32600),
        (r#"{"hello":"world"}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
        (r#"{"jsonrpc":"1.0","id":1,"method":"initialize"}"#, -32600),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"initialize"}"#,
            -32600,
        ),
    ] {
        let answer = send(post(&url, &token, None, body)).await;
        assert_eq!(answer.status, 400, "{body:?}: {}", answer.body);
        assert_eq!(answer.error_code(), code, "{body:?}: {}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/json");
    }

    // Bad params for a known method are invalid params, not an unknown
    // method; an unknown method stays -32601.
    let session = open(&url, &token).await;
    // The same on a session, where rmcp reads the body first.
    for (body, code) in [
        ("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ", -32700),
        ("[]", -32600),
        (r#"{"hello":"world"}"#, -32600),
    ] {
        let answer = send(post(&url, &token, Some(&session), body)).await;
        assert_eq!(answer.status, 400, "{body:?}: {}", answer.body);
        assert_eq!(answer.error_code(), code, "{body:?}: {}", answer.body);
    }
    for (params, code) in [
        (r#""params":5"#, -32602),
        (r#""params":{"arguments":{}}"#, -32602),
        (r#""params":{"name":7}"#, -32602),
    ] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call",{params}}}"#);
        let answer = send(post(&url, &token, Some(&session), &body)).await;
        assert_eq!(answer.error_code(), code, "{body}: {}", answer.body);
        assert_eq!(answer.message()["id"], 9);
        // One wording, whichever layer found the bad params.
        assert_eq!(
            answer.message()["error"]["message"],
            "Invalid params: the params of tools/call do not match its MCP schema",
            "{body}"
        );
    }
    // Without a session the transport reads the envelope first.
    let answer = send(post(
        &url,
        &token,
        None,
        r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":5}"#,
    ))
    .await;
    assert_eq!(answer.error_code(), -32602, "{}", answer.body);
    assert_eq!(
        answer.message()["error"]["message"],
        "Invalid params: the params of initialize do not match its MCP schema"
    );
    let unknown = send(post(
        &url,
        &token,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":10,"method":"no/such/method"}"#,
    ))
    .await;
    assert_eq!(unknown.error_code(), -32601);

    // A malformed chunked body: 400, not 500.
    let addr = w.daemon.http_addr;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{{\"a\":\r\nzz\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("-32700"), "{response}");
    w.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_public_url_with_a_non_default_port_accepts_its_own_origin() {
    for public in ["https://gw.example.com:8443", "http://gw.example.com:8080"] {
        let mut w = Fixture::start_with(|c| c.public_url = Some(public.into())).await;
        let ana = w.create_user("ana@example.com").await;
        let token = w.issue_token(&ana, "transport").await;
        let host = public.split("//").nth(1).unwrap();
        let answer = send(
            post(&w.mcp_url, &token, None, INITIALIZE)
                .header("host", host)
                .header("origin", public),
        )
        .await;
        assert_eq!(answer.status, 200, "{public}: {}", answer.body);
        assert_eq!(
            answer.message()["result"]["serverInfo"]["name"],
            "toolgate",
            "{public}"
        );
        // Another port of the same host is still refused.
        let other = send(
            post(&w.mcp_url, &token, None, INITIALIZE)
                .header("host", host)
                .header("origin", "https://gw.example.com:9999"),
        )
        .await;
        assert_eq!(other.status, 403, "{public}");
        w.daemon.stop().await.unwrap();
    }
}

/// Reads one HTTP/1.1 response with a `content-length` body off `tcp`.
async fn read_response(tcp: &mut tokio::net::TcpStream) -> String {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "the server closed the connection: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn a_refused_request_leaves_its_keep_alive_connection_usable() {
    // Every OAuth client's first request is refused (401) and followed at
    // once by more on the same connection. The body arrives after the
    // headers here, as it may on a busy machine: toolgate reads it before
    // answering, so the connection serves the next request.
    let w = Fixture::start().await;
    let addr = w.daemon.http_addr;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = INITIALIZE;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.flush().await.unwrap();
    // No answer before the body: toolgate waits for it (an answer now
    // would leave the body unread, and hyper would close the connection).
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), tcp.peek(&mut byte)).await;
    assert!(early.is_err(), "answered before reading the request body");
    tcp.write_all(body.as_bytes()).await.unwrap();
    let refused = read_response(&mut tcp).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("resource_metadata="), "{refused}");
    assert!(
        !refused.to_ascii_lowercase().contains("connection: close"),
        "{refused}"
    );
    let next =
        format!("GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(next.as_bytes()).await.unwrap();
    let metadata = read_response(&mut tcp).await;
    assert!(metadata.starts_with("HTTP/1.1 200"), "{metadata}");
    assert!(
        metadata.contains(&format!("\"resource\":\"{}\"", w.mcp_url)),
        "{metadata}"
    );
}
