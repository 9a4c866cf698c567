//! MCP 2025-11-25 sessions outlive the daemon that opened them: a session
//! opened on one daemon continues on the next one started on the same
//! store (the embedded store here; replicas on one PostgreSQL database
//! restore the same way), for its owner only, counted against the limits,
//! with tools/list_changed; a deleted session is not restored. Raw HTTP on
//! loopback.

mod common;

use std::path::Path;
use std::time::Duration;

use common::raw_mcp::{INITIALIZE, LIST, open_session as open, post, send};
use common::{Clients, admin, clients, create_user, issue_token};
use toolgate_gateway::app::{self, Listeners, Running};
use toolgate_gateway::config::Secrets;
use toolgate_proto::v1;

/// A daemon on `data_dir` whose public URL is its bound address, with at
/// most one MCP session per user.
async fn daemon(data_dir: &Path) -> (Running, Clients, String) {
    let mut config = common::config(data_dir);
    config.mcp_max_sessions_per_user = 1;
    let listeners = Listeners::bind(&config).await.unwrap();
    let bound = format!("http://{}", listeners.http.local_addr().unwrap());
    config.public_url = Some(bound.clone());
    let running = app::start(&config, &Secrets::default(), listeners)
        .await
        .unwrap();
    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    let admin = clients(running.grpc_addr, admin(token.trim())).await;
    (running, admin, format!("{bound}/mcp"))
}

/// Registers a server whose tools are approved, and grants `user_id` its
/// first toolset through a new profile; returns the profile id.
async fn grant_tools(admin: &mut Clients, user_id: &str) -> String {
    let server = admin
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Acme".into(),
            tool_prefix: "salesforce".into(),
            tool_enablement: v1::ToolEnablement::AutoApprove.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap();
    let toolset = admin
        .toolsets
        .list_toolsets(v1::ListToolsetsRequest {
            server_id: server.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .toolsets
        .into_iter()
        .next()
        .unwrap()
        .id;
    let profile = admin
        .profiles
        .create_access_profile(v1::CreateAccessProfileRequest {
            name: "restore".into(),
            description: String::new(),
            toolset_ids: vec![toolset],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    admin
        .profiles
        .grant_user(v1::GrantUserRequest {
            expected_revision: None,
            profile_id: profile.id.clone(),
            user_id: user_id.into(),
            expires_at: None,
        })
        .await
        .unwrap();
    profile.id
}

fn delete(url: &str, token: &str, session: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .delete(url)
        .bearer_auth(token)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
}

/// Opens the session's GET stream; panics unless it is 200.
async fn stream(url: &str, token: &str, session: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads `stream` until a message with `method` arrives (at most 10 s).
async fn receive(stream: &mut reqwest::Response, method: &str) {
    let needle = format!("\"method\":\"{method}\"");
    let mut seen = String::new();
    let read = async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&needle) {
                return;
            }
        }
        panic!("the stream ended before {method}: {seen:?}");
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("no {method} within 10 s"));
}

#[tokio::test]
async fn a_session_continues_on_the_next_daemon_for_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, mut admin, url_a) = daemon(&data).await;
    let ana = create_user(&mut admin, "ana@example.com").await;
    let ana_token = issue_token(&mut admin, &ana, "restore").await;
    let ana_laptop = issue_token(&mut admin, &ana, "restore").await;
    let ben = create_user(&mut admin, "ben@example.com").await;
    let ben_token = issue_token(&mut admin, &ben, "restore").await;
    let profile = grant_tools(&mut admin, &ana).await;

    let session = open(&url_a, &ana_token).await;
    let listed = send(post(&url_a, &ana_token, Some(&session), LIST)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let tools = listed.tool_names();
    assert!(!tools.is_empty());
    drop(admin);
    a.stop().await.unwrap();
    // The store holds the session under a hash of its id, sealed.
    assert_eq!(
        common::any_file_contains(&data, session.as_bytes()),
        None,
        "the session id is stored in the clear"
    );

    let (b, mut admin, url_b) = daemon(&data).await;
    // Another user, or the owner with another token: an unknown session,
    // and nothing restored for them.
    let unknown = send(post(
        &url_b,
        &ben_token,
        Some("0b6f7e53-2f3e-4d3a-9c1e-6f1d2a3b4c5d"),
        LIST,
    ))
    .await;
    assert_eq!(unknown.status, 404);
    for other in [&ben_token, &ana_laptop] {
        let refused = send(post(&url_b, other, Some(&session), LIST)).await;
        assert_eq!((refused.status, &refused.body), (404, &unknown.body));
        let gone = send(delete(&url_b, other, &session)).await;
        assert_eq!(gone.status, 404);
    }

    // The owner's next request just works, on the same session id.
    let listed = send(post(&url_b, &ana_token, Some(&session), LIST)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.tool_names(), tools);
    assert!(listed.headers.get("mcp-session-id").is_none());
    // Restored, it is the owner's only, as before.
    for other in [&ben_token, &ana_laptop] {
        let refused = send(post(&url_b, other, Some(&session), LIST)).await;
        assert_eq!((refused.status, &refused.body), (404, &unknown.body));
    }
    // And it takes Ana's one session slot.
    let full = send(post(&url_b, &ana_token, None, INITIALIZE)).await;
    assert_eq!(full.status, 429, "{}", full.body);

    // It hears tools/list_changed when Ana's list changes.
    let mut notices = stream(&url_b, &ana_token, &session).await;
    admin
        .profiles
        .revoke_user(v1::RevokeUserRequest {
            expected_revision: None,
            profile_id: profile,
            user_id: ana.clone(),
        })
        .await
        .unwrap();
    receive(&mut notices, "notifications/tools/list_changed").await;
    let listed = send(post(&url_b, &ana_token, Some(&session), LIST)).await;
    assert_eq!(listed.tool_names(), Vec::<String>::new());
    drop(notices);

    // Deleted, it is gone for good: here, and on the next daemon.
    let deleted = send(delete(&url_b, &ana_token, &session)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let after = send(post(&url_b, &ana_token, Some(&session), LIST)).await;
    assert_eq!(after.status, 404);
    drop(admin);
    b.stop().await.unwrap();
    let (c, admin, url_c) = daemon(&data).await;
    let after = send(post(&url_c, &ana_token, Some(&session), LIST)).await;
    assert_eq!(after.status, 404, "{}", after.body);
    drop(admin);
    c.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_deleted_through_another_daemon_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, mut admin, url_a) = daemon(&data).await;
    let ana = create_user(&mut admin, "ana@example.com").await;
    let ana_token = issue_token(&mut admin, &ana, "restore").await;
    let session = open(&url_a, &ana_token).await;
    drop(admin);
    a.stop().await.unwrap();

    // Deleted on B before any other request there: B never held it.
    let (b, admin, url_b) = daemon(&data).await;
    let deleted = send(delete(&url_b, &ana_token, &session)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let after = send(post(&url_b, &ana_token, Some(&session), LIST)).await;
    assert_eq!(after.status, 404, "{}", after.body);
    // Ana's slot is free: nothing was restored for the DELETE.
    let again = send(post(&url_b, &ana_token, None, INITIALIZE)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    drop(admin);
    b.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_session_leaves_the_store_when_it_closes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = common::config(&data);
    config.mcp_max_sessions_per_user = 1;
    // Its record lives 5 s after the last write (4 s plus a quarter):
    // a second longer than the session, so only the close removes it
    // in that second.
    config.mcp_session_idle_timeout = Duration::from_secs(4);
    let listeners = Listeners::bind(&config).await.unwrap();
    let bound = format!("http://{}", listeners.http.local_addr().unwrap());
    config.public_url = Some(bound.clone());
    let daemon = app::start(&config, &Secrets::default(), listeners)
        .await
        .unwrap();
    let admin_token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let mut admin = clients(daemon.grpc_addr, admin(admin_token.trim())).await;
    let url = format!("{bound}/mcp");
    let ana = create_user(&mut admin, "ana@example.com").await;
    let ana_token = issue_token(&mut admin, &ana, "restore").await;
    let session = open(&url, &ana_token).await;
    let key = toolgate_gateway::crypto::sha256_hex(session.as_bytes());
    let record = daemon
        .store
        .get_ephemeral(toolgate_gateway::mcp::persist::KIND, &key)
        .await
        .unwrap()
        .expect("the session is stored");
    assert_eq!(record.owner, ana);

    // Poll (bounded) with initialize, which does not touch the session,
    // until its slot is free: it has closed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = send(post(&url, &ana_token, None, INITIALIZE)).await;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session never idled out"
        );
    }
    // Its record went with it (it would have lived a second longer).
    let stored = daemon
        .store
        .get_ephemeral(toolgate_gateway::mcp::persist::KIND, &key)
        .await
        .unwrap();
    assert_eq!(stored, None);
    let gone = send(post(&url, &ana_token, Some(&session), LIST)).await;
    assert_eq!(gone.status, 404);
    drop(admin);
    daemon.stop().await.unwrap();
}
