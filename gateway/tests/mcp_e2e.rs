//! End to end, loopback only: an rmcp client talks to `toolgated` over
//! streamable HTTP, and toolgated talks to sfsim (a simulated Salesforce org)
//! under each user's own Salesforce identity. Covers authentication, the
//! tool list, the first-call connect prompt, the OAuth flow through sfsim's
//! login page, paging, Salesforce errors, refresh single-flight, rotation,
//! invalid_grant, revoked grants with tools/list_changed, the kill switch, and
//! quote/backslash/non-ASCII round trips.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Fixture, Org};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, UrlElicitationCapability,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use toolgate_proto::v1;

const ANA_SF: &str = "ana.souza@acme-demo.example";
const BEN_SF: &str = "ben.okafor@acme-demo.example";

/// An MCP client that counts list-changed notifications and records URL
/// elicitations.
#[derive(Clone, Default)]
struct TestClient {
    list_changed: Arc<AtomicUsize>,
    changed: Arc<Notify>,
    elicited: Arc<std::sync::Mutex<Vec<String>>>,
    elicit_notify: Arc<Notify>,
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation =
            Some(ElicitationCapability::new().with_url(UrlElicitationCapability::default()));
        let mut info = ClientConfig::default();
        info.capabilities = capabilities;
        info
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::UrlElicitationParams { url, .. } = request {
            self.elicited.lock().unwrap().push(url.to_string());
            self.elicit_notify.notify_one();
        }
        Ok(ElicitResult::new(ElicitationAction::Decline))
    }
}

type World = Fixture<Org>;

/// toolgated and an sfsim org (120 accounts, query batches of 150, consent
/// asked on its login page) registered as a server with every tool
/// approved.
async fn world() -> World {
    let mut w = Fixture::salesforce(|sim| {
        sim.auto_consent = false;
        sim.seed_accounts = 120;
        sim.query_batch_size = 150;
    })
    .await;
    // Many calls, and 50 at once, as one user.
    common::lift_call_limits(&mut w.admin).await;
    w
}

impl World {
    async fn client(
        &self,
        token: &str,
        handler: TestClient,
    ) -> RunningService<RoleClient, TestClient> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.mcp_url.clone()).auth_header(token),
        );
        handler.serve(transport).await.unwrap()
    }

    async fn admin_post(&self, path: &str, body: Value) {
        reqwest::Client::new()
            .post(format!("{}/_sfsim/{path}", self.sf.sim.login_url))
            .json(&body)
            .send()
            .await
            .unwrap();
    }

    /// Follows a connect link through sfsim's login page as `username`.
    async fn connect(&self, link: &str, username: &str) -> reqwest::Response {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // The link's page names the toolgate user and does not use the link up.
        let page = http.get(link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        let page = page.text().await.unwrap();
        assert!(page.contains("Continue to Salesforce"), "{page}");
        assert!(http.get(link).send().await.unwrap().status().is_success());
        let to_login = http.post(link).send().await.unwrap();
        assert!(to_login.status().is_redirection(), "{}", to_login.status());
        let authorize = to_login.headers()["location"].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&format!(
            "{}/services/oauth2/authorize?",
            self.sf.sim.login_url
        )));
        let url = url::Url::parse(&authorize).unwrap();
        let params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(
            get("scope").as_deref(),
            Some("api refresh_token offline_access")
        );
        let page = http
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(username),
            "the login page lists the org's users"
        );
        let mut form = params.clone();
        form.push(("username".into(), username.into()));
        form.push(("action".into(), "allow".into()));
        let back = http
            .post(format!(
                "{}/services/oauth2/authorize",
                self.sf.sim.login_url
            ))
            .form(&form)
            .send()
            .await
            .unwrap();
        let callback = back.headers()["location"].to_str().unwrap().to_owned();
        assert!(callback.contains("/auth/callback?code="));
        http.get(callback).send().await.unwrap()
    }
}

/// Awaits `future`, failing the test (instead of hanging) if it has not
/// completed after a generous bound. A guard, not synchronisation.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("{what} never arrived"))
}

fn args(value: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new("placeholder");
    params.arguments = value.as_object().cloned();
    params
}

async fn call(
    client: &RunningService<RoleClient, TestClient>,
    name: &str,
    arguments: Value,
) -> CallToolResult {
    let mut params = args(arguments);
    params.name = name.to_owned().into();
    client.call_tool(params).await.unwrap()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn link_in(message: &str) -> String {
    message
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap()
        .trim_end_matches([',', '.'])
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mcp_gateway_end_to_end() {
    let mut w = world().await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let read_only = w.toolset(v1::ToolsetKind::ReadOnly).await;

    // Unauthenticated: 401 with a challenge and a body that says what to do.
    let response = reqwest::Client::new()
        .post(&w.mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"toolgate\"")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Authorization: Bearer")
    );

    // An entitled user sees exactly the granted tools.
    let (_ana_id, ana_profile, ana_token) = w.user("ana@example.com", &all).await;
    let (_ben_id, _, ben_token) = w.user("ben@example.com", &read_only).await;
    let handler = TestClient::default();
    let ana = w.client(&ana_token, handler.clone()).await;
    let listed = ana.list_tools(None).await.unwrap().tools;
    assert_eq!(listed.len(), 13);
    let query_tool = listed
        .iter()
        .find(|t| t.name == "salesforce_query")
        .unwrap();
    assert_eq!(
        query_tool.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
    assert!(query_tool.output_schema.is_some());
    let ben = w.client(&ben_token, TestClient::default()).await;
    let ben_tools: Vec<String> = ben
        .list_tools(None)
        .await
        .unwrap()
        .tools
        .into_iter()
        .map(|t| t.name.into())
        .collect();
    assert!(ben_tools.contains(&"salesforce_query".to_string()));
    assert!(!ben_tools.contains(&"salesforce_create_record".to_string()));
    let denied = call(
        &ben,
        "salesforce_create_record",
        json!({"object_name": "Account", "fields": {"Name": "x"}}),
    )
    .await;
    assert_eq!(denied.is_error, Some(true));
    assert_eq!(
        text(&denied),
        "tool salesforce_create_record is not in your tool list"
    );

    // First call: a connect prompt with a link, and a URL elicitation.
    let first = call(
        &ana,
        "salesforce_query",
        json!({"soql": "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"}),
    )
    .await;
    assert_eq!(first.is_error, Some(true));
    let prompt = text(&first);
    assert!(
        prompt.starts_with("Connect your Salesforce account to use salesforce_query"),
        "{prompt}"
    );
    let link = link_in(&prompt);
    within("the URL elicitation", handler.elicit_notify.notified()).await;
    assert!(handler.elicited.lock().unwrap()[0].contains("/connect/"));

    // Bad arguments name the field.
    let bad = call(
        &ana,
        "salesforce_get_record",
        json!({"object_name": "Account"}),
    )
    .await;
    assert!(text(&bad).contains("record_id"), "{}", text(&bad));

    // The OAuth flow through sfsim's login page; the link is single-use.
    let done = w.connect(&link, ANA_SF).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("connected"));
    let reused = reqwest::get(&link).await.unwrap();
    assert_eq!(reused.status(), 400);
    let connections = w
        .admin
        .connections
        .list_connections(v1::ListConnectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .connections;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].salesforce_org_id, w.sf.sim.sim.org_id);

    // The retried call returns records.
    let found = call(
        &ana,
        "salesforce_query",
        json!({"soql": "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"}),
    )
    .await;
    assert_eq!(found.is_error, Some(false), "{}", text(&found));
    let structured = found.structured_content.unwrap();
    assert_eq!(structured["records"][0]["Id"], "0015g00000Q1aADAAZ");
    assert_eq!(structured["records"][0]["type"], "Account");
    assert!(structured["records"][0].get("attributes").is_none());

    // Paging with a cursor across Salesforce pages.
    let mut seen = std::collections::HashSet::new();
    let mut page = call(
        &ana,
        "salesforce_query",
        json!({"soql": "SELECT Id, Name FROM Contact", "max_records": 100}),
    )
    .await;
    let total = page.structured_content.as_ref().unwrap()["total_size"]
        .as_u64()
        .unwrap();
    loop {
        let s = page.structured_content.clone().unwrap();
        for r in s["records"].as_array().unwrap() {
            assert!(seen.insert(r["Id"].as_str().unwrap().to_owned()));
        }
        match s["next_cursor"].as_str() {
            Some(cursor) => page = call(&ana, "salesforce_query", json!({"cursor": cursor})).await,
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total);
    assert!(total > 300);

    // Quote, backslash and non-ASCII round-trip.
    let name = "O'Brien \\ Ærøskøbing 東京";
    let created = call(
        &ana,
        "salesforce_create_record",
        json!({"object_name": "Account", "fields": {"Name": name}}),
    )
    .await;
    assert_eq!(created.is_error, Some(false), "{}", text(&created));
    let id = created.structured_content.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let literal = name.replace('\\', "\\\\").replace('\'', "\\'");
    let back = call(
        &ana,
        "salesforce_query",
        json!({"soql": format!("SELECT Id, Name FROM Account WHERE Name = '{literal}'")}),
    )
    .await;
    let back = back.structured_content.unwrap();
    assert_eq!(back["records"][0]["Id"], id.as_str());
    assert_eq!(back["records"][0]["Name"], name);

    // A read-only Salesforce user's write returns Salesforce's error.
    let (carl_id, _, carl_token) = w.user("carl@example.com", &all).await;
    let carl = w.client(&carl_token, TestClient::default()).await;
    let prompt = text(&call(&carl, "salesforce_get_limits", json!({})).await);
    assert_eq!(w.connect(&link_in(&prompt), BEN_SF).await.status(), 200);
    let refused = call(&carl, "salesforce_update_record", json!({"object_name": "Account", "record_id": "0015g00000Q1aACAAZ", "fields": {"Name": "x"}})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("INSUFFICIENT_ACCESS_OR_READONLY"),
        "{}",
        text(&refused)
    );

    // Token expiry: 50 concurrent calls, exactly one refresh.
    w.admin_post("expire-access-tokens", json!({})).await;
    let before = w.sf.sim.counter("token:refresh_token");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let peer = ana.peer().clone();
        tasks.spawn(async move {
            let mut params = args(json!({}));
            params.name = "salesforce_get_limits".into();
            peer.call_tool(params).await.unwrap()
        });
    }
    let results: Vec<CallToolResult> = tasks.join_all().await;
    assert!(
        results.iter().all(|r| r.is_error == Some(false)),
        "{:?}",
        results.iter().map(text).collect::<Vec<_>>()
    );
    assert_eq!(w.sf.sim.counter("token:refresh_token") - before, 1);

    // Rotation keeps the new refresh token.
    w.admin_post("faults", json!({"refresh_token_rotation": true}))
        .await;
    for _ in 0..2 {
        w.admin_post("expire-access-tokens", json!({})).await;
        let ok = call(&ana, "salesforce_get_user_info", json!({})).await;
        assert_eq!(ok.is_error, Some(false), "{}", text(&ok));
        assert_eq!(
            ok.structured_content.unwrap()["user_id"]
                .as_str()
                .unwrap()
                .len(),
            18
        );
    }

    // REQUEST_LIMIT_EXCEEDED is reported with usage and never re-authenticates.
    w.admin_post("faults", json!({"api_limit_exhausted": true}))
        .await;
    let refreshes = w.sf.sim.counter("token:refresh_token");
    let limited = call(&ana, "salesforce_get_limits", json!({})).await;
    assert_eq!(limited.is_error, Some(true));
    assert!(
        text(&limited).contains("REQUEST_LIMIT_EXCEEDED"),
        "{}",
        text(&limited)
    );
    assert!(text(&limited).contains("api-usage="), "{}", text(&limited));
    assert_eq!(w.sf.sim.counter("token:refresh_token"), refreshes);
    w.admin_post("faults", json!({"api_limit_exhausted": false}))
        .await;

    // A rotated consumer secret is used from the next token request on;
    // existing sessions keep working until then.
    let app = w.sf.sim.sim.config.connected_app.clone();
    let set_secret = |secret: String| {
        let mut servers = w.admin.servers.clone();
        let request = v1::ConfigureAuthenticationRequest {
            server_id: w.sf.server_id.clone(),
            client_id: app.consumer_key.clone(),
            client_secret: secret,
            ..Default::default()
        };
        async move { servers.configure_authentication(request).await.unwrap() }
    };
    set_secret("a-wrong-rotated-secret".into()).await;
    let still = call(&ana, "salesforce_get_limits", json!({})).await;
    assert_eq!(
        still.is_error,
        Some(false),
        "existing access token still works"
    );
    w.admin_post("expire-access-tokens", json!({})).await;
    let refused = call(&ana, "salesforce_get_limits", json!({})).await;
    assert!(
        text(&refused).contains("invalid_client"),
        "{}",
        text(&refused)
    );
    set_secret(app.consumer_secret.clone()).await;
    let back = call(&ana, "salesforce_get_limits", json!({})).await;
    assert_eq!(back.is_error, Some(false), "{}", text(&back));

    // invalid_grant drops the connection and prompts again.
    w.admin_post("revoke-refresh-tokens", json!({"username": ANA_SF}))
        .await;
    w.admin_post("expire-access-tokens", json!({})).await;
    let again = call(&ana, "salesforce_get_limits", json!({})).await;
    assert!(
        text(&again).starts_with("Connect your Salesforce account"),
        "{}",
        text(&again)
    );

    // A revoked grant stops the next call and emits tools/list_changed.
    let notices = handler.list_changed.load(Ordering::SeqCst);
    w.admin
        .profiles
        .revoke_user(v1::RevokeUserRequest {
            expected_revision: None,
            profile_id: ana_profile.clone(),
            user_id: _ana_id.clone(),
        })
        .await
        .unwrap();
    within("tools/list_changed", handler.changed.notified()).await;
    assert!(handler.list_changed.load(Ordering::SeqCst) > notices);
    let stopped = call(&ana, "salesforce_get_limits", json!({})).await;
    assert_eq!(
        text(&stopped),
        "tool salesforce_get_limits is not in your tool list"
    );
    assert!(ana.list_tools(None).await.unwrap().tools.is_empty());

    // An admin disconnects carl: revoked at Salesforce, and carl is asked to connect again.
    let revokes = w.sf.sim.counter("revoke");
    let carls = w
        .admin
        .connections
        .list_connections(v1::ListConnectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .connections;
    let carl_connection = carls.iter().find(|c| c.user_id == carl_id).cloned();
    let deleted = w
        .admin
        .connections
        .delete_connection(v1::DeleteConnectionRequest {
            id: carl_connection.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.revoked_at_salesforce);
    assert_eq!(w.sf.sim.counter("revoke"), revokes + 1);
    let again = call(&carl, "salesforce_get_limits", json!({})).await;
    assert!(
        text(&again).starts_with("Connect your Salesforce account"),
        "{}",
        text(&again)
    );

    // The kill switch blocks every call, and is audited.
    w.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let blocked = call(&carl, "salesforce_get_limits", json!({})).await;
    assert!(
        text(&blocked).contains("MCP traffic is turned off"),
        "{}",
        text(&blocked)
    );
    let audit = w
        .admin
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: "tool.call".into(),
            page_size: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(audit[0].outcome, i32::from(v1::Outcome::Denied));
    assert_eq!(audit[0].actor, "user:carl@example.com");
    assert!(audit[0].reason.contains("turned off"));
    // No token of any kind ever reaches the audit log.
    let everything = w
        .admin
        .audit
        .list_events(v1::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(everything.len() > 100);
    // Connecting is recorded under the user's email, as tool calls are.
    let connected: Vec<&str> = everything
        .iter()
        .filter(|e| e.action == "connection.create")
        .map(|e| e.actor.as_str())
        .collect();
    assert!(connected.contains(&"user:ana@example.com"), "{connected:?}");
    assert!(connected.iter().all(|a| a.contains('@')), "{connected:?}");
    let dump = format!("{everything:?}");
    for marker in [
        ana_token.as_str(),
        ben_token.as_str(),
        carl_token.as_str(),
        "!AQ0AQ",
        "5Aep861",
        &app.consumer_secret,
    ] {
        assert!(!dump.contains(marker), "audit log contains {marker}");
    }

    ana.cancel().await.unwrap();
    ben.cancel().await.unwrap();
    carl.cancel().await.unwrap();
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

/// Every tool-call audit event names its tool and server the same way,
/// whatever the outcome, and a connection records the Salesforce username
/// (or says why it could not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_events_name_the_tool_and_server_and_connections_the_username() {
    let mut w = world().await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let read_only = w.toolset(v1::ToolsetKind::ReadOnly).await;
    let (_, _, ana_token) = w.user("ana@example.com", &all).await;
    let (_, _, ben_token) = w.user("ben@example.com", &read_only).await;
    let ana = w.client(&ana_token, TestClient::default()).await;
    let ben = w.client(&ben_token, TestClient::default()).await;
    let on = |tool: &str| format!("tool/{tool} on Acme (sfsim)");

    // Denied by policy, unknown, connect prompt, bad arguments, allowed,
    // and refused by the kill switch before any lookup.
    let mut expected = Vec::new();
    call(&ben, "salesforce_create_record", json!({})).await;
    expected.push((on("salesforce_create_record"), v1::Outcome::Denied));
    call(&ana, "salesforce_no_such_tool", json!({})).await;
    expected.push((
        "tool/salesforce_no_such_tool".to_owned(),
        v1::Outcome::Denied,
    ));
    let prompt = text(&call(&ana, "salesforce_get_user_info", json!({})).await);
    expected.push((on("salesforce_get_user_info"), v1::Outcome::Denied));
    call(
        &ana,
        "salesforce_get_record",
        json!({"object_name": "Account"}),
    )
    .await;
    expected.push((on("salesforce_get_record"), v1::Outcome::Error));
    assert_eq!(w.connect(&link_in(&prompt), ANA_SF).await.status(), 200);
    let ok = call(&ana, "salesforce_get_user_info", json!({})).await;
    assert_eq!(ok.is_error, Some(false), "{}", text(&ok));
    expected.push((on("salesforce_get_user_info"), v1::Outcome::Allowed));

    // The username comes from the identity URL; when Salesforce cannot
    // answer it, the connection is made without it and the audit says so.
    w.admin_post("faults", json!({"identity_unavailable": true}))
        .await;
    let prompt = text(&call(&ben, "salesforce_get_user_info", json!({})).await);
    expected.push((on("salesforce_get_user_info"), v1::Outcome::Denied));
    assert_eq!(w.connect(&link_in(&prompt), BEN_SF).await.status(), 200);
    let ok = call(&ben, "salesforce_get_user_info", json!({})).await;
    assert_eq!(ok.is_error, Some(false), "{}", text(&ok));
    expected.push((on("salesforce_get_user_info"), v1::Outcome::Allowed));
    let connections = w
        .admin
        .connections
        .list_connections(v1::ListConnectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .connections;
    let mut usernames: Vec<(String, String)> = connections
        .iter()
        .map(|c| (c.salesforce_username.clone(), c.salesforce_org_id.clone()))
        .collect();
    usernames.sort();
    assert_eq!(
        usernames,
        [
            (String::new(), w.sf.sim.sim.org_id.clone()),
            (ANA_SF.to_owned(), w.sf.sim.sim.org_id.clone()),
        ]
    );

    w.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    call(
        &ana,
        "salesforce_query",
        json!({"soql": "SELECT Id FROM Account"}),
    )
    .await;
    expected.push((on("salesforce_query"), v1::Outcome::Denied));

    let list = |action_prefix: &str, target_prefix: &str| {
        let mut audit = w.admin.audit.clone();
        let request = v1::ListEventsRequest {
            action_prefix: action_prefix.into(),
            target_prefix: target_prefix.into(),
            page_size: 100,
            ..Default::default()
        };
        async move {
            audit
                .list_events(request)
                .await
                .unwrap()
                .into_inner()
                .events
        }
    };
    let mut calls: Vec<(String, v1::Outcome)> = list("tool.call", "")
        .await
        .into_iter()
        .map(|e| (e.target, v1::Outcome::try_from(e.outcome).unwrap()))
        .collect();
    calls.reverse();
    assert_eq!(calls, expected);
    // A target filter finds a tool's calls whatever their outcome.
    let user_info = list("", "tool/salesforce_get_user_info").await;
    assert_eq!(user_info.len(), 4, "{user_info:?}");
    let created: Vec<(String, String)> = list("connection.create", "")
        .await
        .into_iter()
        .map(|e| (e.actor, e.reason))
        .collect();
    assert_eq!(
        created,
        [
            (
                "user:ben@example.com".to_owned(),
                "connected a Salesforce account; its username could not be read: the identity URL answered HTTP 503".to_owned()
            ),
            (
                "user:ana@example.com".to_owned(),
                "connected a Salesforce account".to_owned()
            ),
        ]
    );

    ana.cancel().await.unwrap();
    ben.cancel().await.unwrap();
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

async fn raw_post(url: &str, token: &str, headers: &[(&str, &str)], body: Value) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.body(body.to_string()).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn protocol_versions_and_host_checks() {
    let mut w = world().await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("dora@example.com", &all).await;
    for version in ["2025-06-18", "2025-11-25"] {
        let (status, body) = raw_post(
            &w.mcp_url,
            &token,
            &[],
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            body.contains(&format!("\"protocolVersion\":\"{version}\"")),
            "{body}"
        );
    }
    // The stateless 2026-07-28 protocol: no initialize, metadata per request.
    let (status, body) = raw_post(
        &w.mcp_url,
        &token,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("salesforce_query"), "{body}");
    // DNS rebinding: a Host that is not the public URL's is refused.
    let (status, _) = raw_post(
        &w.mcp_url,
        &token,
        &[("host", "attacker.example.com")],
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await;
    assert_eq!(status, 403);
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}
