//! Protocol 2026-07-28 (stateless) end to end, loopback only: an rmcp
//! client in discover mode and raw HTTP requests against `toolgated`, with
//! sfsim as the Salesforce org. Covers `subscriptions/listen` (list changes
//! of the listener's own user, session limits, release on disconnect), the
//! connect prompt as an `input_required` result with a URL elicitation and
//! its sealed `requestState`, `server/discover`, header mirroring, caching
//! hints on tools/list, and 405 for GET and DELETE without a session.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw_mcp::{self, Answer};
use common::{Fixture, Org};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, InputRequest, ProtocolVersion,
    ServerNotification, SubscriptionFilter, UrlElicitationCapability,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};
use toolgate_proto::v1;

const ANA_SF: &str = "ana.souza@acme-demo.example";

type World = Fixture<Org>;

/// What the test client does with a URL elicitation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConnect {
    /// Follows the link through sfsim's login page as [`ANA_SF`], then
    /// accepts.
    Connect,
    /// Declines without opening the link.
    Decline,
}

/// A 2026-07-28 client that takes URL elicitations.
#[derive(Clone)]
struct Modern {
    login_url: String,
    on_connect: OnConnect,
    elicited: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Modern {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation =
            Some(ElicitationCapability::new().with_url(UrlElicitationCapability::default()));
        let mut info = ClientConfig::default();
        info.capabilities = capabilities;
        info
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::UrlElicitationParams { url, .. } = request else {
            panic!("toolgate asks only URL elicitations: {request:?}");
        };
        self.elicited.lock().unwrap().push(url.clone());
        match self.on_connect {
            OnConnect::Connect => {
                connect(&self.login_url, &url, ANA_SF).await;
                Ok(ElicitResult::new(ElicitationAction::Accept))
            }
            OnConnect::Decline => Ok(ElicitResult::new(ElicitationAction::Decline)),
        }
    }
}

/// Follows a connect link through sfsim's login page (`login_url`) as
/// `username`, like a browser: the link's page, its form, the login page,
/// the consent, the callback.
async fn connect(login_url: &str, link: &str, username: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let to_login = http.post(link).send().await.unwrap();
    assert!(to_login.status().is_redirection(), "{}", to_login.status());
    let authorize = to_login.headers()["location"].to_str().unwrap().to_owned();
    let mut form: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    form.push(("username".into(), username.into()));
    form.push(("action".into(), "allow".into()));
    let back = http
        .post(format!("{login_url}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.contains("/auth/callback?code="), "{callback}");
    let done = http.get(callback).send().await.unwrap();
    assert!(done.status().is_success(), "{}", done.status());
}

async fn world_with(tune: impl FnOnce(&mut toolgate_gateway::config::Config)) -> World {
    let mut gate = Fixture::start_with(tune).await;
    let public = format!("http://{}", gate.daemon.http_addr);
    let mut sim_config = sfsim::SimConfig::for_tests(&format!("{public}/auth/callback"));
    sim_config.auto_consent = false;
    let sim = sfsim::start(sim_config).await.unwrap();
    let server_id = Fixture::<()>::register_sfsim(&mut gate.admin, &sim).await;
    Fixture::<()>::configure_sfsim_app(&mut gate.admin, &server_id, &sim).await;
    gate.with(Org { sim, server_id })
}

async fn modern(
    w: &World,
    token: &str,
    on_connect: OnConnect,
) -> RunningService<RoleClient, Modern> {
    let handler = Modern {
        login_url: w.sf.sim.login_url.clone(),
        on_connect,
        elicited: Arc::default(),
    };
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(w.mcp_url.clone()).auth_header(token),
    );
    handler
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap()
}

/// Awaits `future`, failing the test (instead of hanging) if it has not
/// completed after a generous bound. A guard, not synchronisation.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("{what} never arrived"))
}

fn call_params(name: &str, arguments: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments.as_object().cloned();
    params
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `_meta` every 2026-07-28 request carries.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}},
    })
}

/// A raw 2026-07-28 POST of `method` with `params` (plus `_meta`), with the
/// mirrored headers, each of which `headers` may replace.
fn modern_post(
    url: &str,
    token: &str,
    method: &str,
    mut params: Value,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    params["_meta"] = meta();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let mut mirrored = reqwest::header::HeaderMap::new();
    let mut set = |k: &str, v: &str| {
        mirrored.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    };
    set("mcp-protocol-version", "2026-07-28");
    set("mcp-method", method);
    if let Some(name) = body["params"]["name"].as_str() {
        set("mcp-name", name);
    }
    // Replaced, not added: a second value would hide behind the first.
    for (k, v) in headers {
        set(k, v);
    }
    raw_mcp::post(url, token, None, &body.to_string()).headers(mirrored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_hears_the_listeners_own_list_changes() {
    let mut w = world_with(|_| {}).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (ana_id, ana_profile, ana_token) = w.user("ana@example.com", &all).await;
    let (_, _, ben_token) = w.user("ben@example.com", &all).await;
    let ana = modern(&w, &ana_token, OnConnect::Decline).await;
    let ben = modern(&w, &ben_token, OnConnect::Decline).await;

    // Of a filter asking for everything, toolgate accepts toolsListChanged.
    let everything = SubscriptionFilter::builder()
        .tools_list_changed()
        .prompts_list_changed()
        .resources_list_changed()
        .resource_subscriptions(["salesforce://x"])
        .build();
    let mut heard = within("ana's listen ack", ana.peer().listen(everything))
        .await
        .unwrap();
    assert_eq!(
        heard.acknowledged(),
        &SubscriptionFilter::builder().tools_list_changed().build()
    );
    let mut ben_heard = within(
        "ben's listen ack",
        ben.peer()
            .listen(SubscriptionFilter::builder().tools_list_changed().build()),
    )
    .await
    .unwrap();

    // An admin revokes ana's grant: ana's stream hears it.
    w.admin
        .profiles
        .revoke_user(v1::RevokeUserRequest {
            expected_revision: None,
            profile_id: ana_profile.clone(),
            user_id: ana_id.clone(),
        })
        .await
        .unwrap();
    let notice = within("tools/list_changed", heard.next()).await.unwrap();
    assert!(
        matches!(
            notice,
            Some(ServerNotification::ToolListChangedNotification(_))
        ),
        "{notice:?}"
    );
    assert!(ana.list_tools(None).await.unwrap().tools.is_empty());

    // The kill switch changes everyone's list: ben (whose list the
    // revocation left alone) hears it too.
    w.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let notice = within("ben's tools/list_changed", ben_heard.next())
        .await
        .unwrap();
    assert!(
        matches!(
            notice,
            Some(ServerNotification::ToolListChangedNotification(_))
        ),
        "{notice:?}"
    );
    // Ana's list was empty already: the kill switch does not change it.
    // A grant again (traffic back on first) does.
    w.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    w.admin
        .profiles
        .grant_user(v1::GrantUserRequest {
            profile_id: ana_profile,
            user_id: ana_id,
            expires_at: None,
            expected_revision: None,
        })
        .await
        .unwrap();
    let notice = within("ana's second tools/list_changed", heard.next())
        .await
        .unwrap();
    assert!(
        matches!(
            notice,
            Some(ServerNotification::ToolListChangedNotification(_))
        ),
        "{notice:?}"
    );
    assert!(!ana.list_tools(None).await.unwrap().tools.is_empty());

    heard.cancel().await.unwrap();
    ben_heard.cancel().await.unwrap();
    ana.cancel().await.unwrap();
    ben.cancel().await.unwrap();
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

/// Opens a raw listen stream and reads it up to its acknowledgment; the
/// response stays open while the returned value lives.
async fn raw_listen(url: &str, token: &str) -> Result<reqwest::Response, Answer> {
    let mut response = modern_post(
        url,
        token,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        &[],
    )
    .send()
    .await
    .unwrap();
    if response.status() != 200 {
        return Err(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        });
    }
    let mut seen = String::new();
    while !seen.contains("notifications/subscriptions/acknowledged") {
        let chunk = within("the listen ack", response.chunk()).await.unwrap();
        seen.push_str(&String::from_utf8_lossy(
            &chunk.expect("stream ended before the ack"),
        ));
    }
    assert!(seen.contains(r#""toolsListChanged":true"#), "{seen}");
    Ok(response)
}

/// Opens a listen stream once the slot a closed one held is given back:
/// the server learns of the close asynchronously, so this tries again
/// (bounded) while the answer is the per-user limit.
async fn listen_when_released(url: &str, token: &str) -> reqwest::Response {
    for _ in 0..200 {
        match raw_listen(url, token).await {
            Ok(open) => return open,
            Err(refused) => assert_eq!(refused.status, 429, "{}", refused.body),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the closed listen stream's slot was never given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_streams_count_against_the_session_limits_and_end_with_their_connection() {
    let mut w = world_with(|c| c.mcp_max_sessions_per_user = 1).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("ana@example.com", &all).await;
    let url = w.mcp_url.clone();

    let open = raw_listen(&url, &token)
        .await
        .unwrap_or_else(|a| panic!("{}: {}", a.status, a.body));
    // The user's one slot is taken: another stream, or a session, is refused.
    let refused = raw_listen(&url, &token).await.unwrap_err();
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.error_code(), -32000);
    assert_eq!(
        refused.message()["error"]["data"],
        json!({"limit": 1, "scope": "user"})
    );
    let session = raw_mcp::send(raw_mcp::post(&url, &token, None, raw_mcp::INITIALIZE)).await;
    assert_eq!(session.status, 429, "{}", session.body);

    // The client drops the connection: the stream ends and its slot is back.
    drop(open);
    let again = listen_when_released(&url, &token).await;
    drop(again);
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_listener_that_cancels_gives_its_slot_back() {
    let mut w = world_with(|c| c.mcp_max_sessions_per_user = 1).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("ana@example.com", &all).await;
    let client = modern(&w, &token, OnConnect::Decline).await;
    let mut stream = within(
        "listen ack",
        client
            .peer()
            .listen(SubscriptionFilter::builder().tools_list_changed().build()),
    )
    .await
    .unwrap();
    assert_eq!(
        raw_listen(&w.mcp_url, &token).await.unwrap_err().status,
        429
    );
    stream.cancel().await.unwrap();
    let _ = listen_when_released(&w.mcp_url, &token).await;
    client.cancel().await.unwrap();
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_prompt_is_an_input_required_result_and_the_retry_runs_the_tool() {
    let mut w = world_with(|_| {}).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, ana_token) = w.user("ana@example.com", &all).await;
    let (_, _, ben_token) = w.user("ben@example.com", &all).await;
    let ana = modern(&w, &ana_token, OnConnect::Connect).await;

    // One round by hand: input_required with the connect link as a URL
    // elicitation, and a requestState.
    let query = json!({"soql": "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"});
    let first = ana
        .peer()
        .call_tool_once(call_params("salesforce_query", query.clone()))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(prompt) = first else {
        panic!("not input_required: {first:?}");
    };
    let state = prompt.request_state.clone().expect("a requestState");
    let requests = prompt.input_requests.clone().expect("input requests");
    let Some(InputRequest::Elicitation(elicit)) = requests.get("connect_salesforce") else {
        panic!("no connect elicitation: {requests:?}");
    };
    let ElicitRequestParams::UrlElicitationParams { url, message, .. } = &elicit.params else {
        panic!("not a URL elicitation: {elicit:?}");
    };
    assert!(url.contains("/connect/"), "{url}");
    assert_eq!(
        message,
        "Connect your Salesforce account to use salesforce_query"
    );

    // The state is bound to its user and tool, and cannot be edited.
    let ben_retry = modern_post(
        &w.mcp_url,
        &ben_token,
        "tools/call",
        json!({"name": "salesforce_query", "arguments": query, "requestState": state}),
        &[],
    );
    let refused = raw_mcp::send(ben_retry).await;
    assert_eq!(refused.error_code(), -32602, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("requestState was not issued by toolgate for this call"),
        "{}",
        refused.body
    );
    let other_tool = raw_mcp::send(modern_post(
        &w.mcp_url,
        &ana_token,
        "tools/call",
        json!({"name": "salesforce_get_limits", "arguments": {}, "requestState": state}),
        &[],
    ))
    .await;
    assert_eq!(other_tool.error_code(), -32602, "{}", other_tool.body);
    let mut edited = state.clone();
    edited.insert(edited.len() / 2, 'x');
    let forged = raw_mcp::send(modern_post(
        &w.mcp_url,
        &ana_token,
        "tools/call",
        json!({"name": "salesforce_query", "arguments": query, "requestState": edited}),
        &[],
    ))
    .await;
    assert_eq!(forged.error_code(), -32602, "{}", forged.body);

    // A retry that declined, while still not connected: the text prompt.
    let declined = raw_mcp::send(modern_post(
        &w.mcp_url,
        &ana_token,
        "tools/call",
        json!({"name": "salesforce_query", "arguments": query, "requestState": state,
               "inputResponses": {"connect_salesforce": {"action": "decline"}}}),
        &[],
    ))
    .await;
    let result = &declined.message()["result"];
    assert_eq!(result["isError"], true, "{}", declined.body);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Connect your Salesforce account to use salesforce_query: open "),
        "{result}"
    );
    // Accepted but still not connected: asked again.
    let again = raw_mcp::send(modern_post(
        &w.mcp_url,
        &ana_token,
        "tools/call",
        json!({"name": "salesforce_query", "arguments": query, "requestState": state,
               "inputResponses": {"connect_salesforce": {"action": "accept"}}}),
        &[],
    ))
    .await;
    let result = &again.message()["result"];
    assert_eq!(result["resultType"], "input_required", "{}", again.body);
    assert_eq!(
        result["inputRequests"]["connect_salesforce"]["params"]["mode"],
        "url"
    );

    // rmcp's own driver: the elicitation follows the link through sfsim,
    // accepts, and the retry runs the tool.
    let found = within(
        "the retried call",
        ana.call_tool(call_params("salesforce_query", query)),
    )
    .await
    .unwrap();
    assert_eq!(found.is_error, Some(false), "{}", text(&found));
    let records = &found.structured_content.as_ref().unwrap()["records"];
    assert_eq!(records[0]["Name"], "GenePoint");
    assert_eq!(ana.service().elicited.lock().unwrap().len(), 1);

    // The prompts are audited as denied calls, the run as allowed.
    let events = w
        .admin
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: "tool.call".into(),
            page_size: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.contains(&"no Salesforce connection; connect link sent"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"no Salesforce connection; connect prompt declined"),
        "{reasons:?}"
    );
    ana.cancel().await.unwrap();
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_header_mirroring_caching_hints_and_methods_without_a_session() {
    let mut w = world_with(|_| {}).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("dora@example.com", &all).await;
    let url = w.mcp_url.clone();

    // server/discover names the versions and the capabilities.
    let discover =
        raw_mcp::send(modern_post(&url, &token, "server/discover", json!({}), &[])).await;
    assert_eq!(discover.status, 200, "{}", discover.body);
    let result = &discover.message()["result"];
    let versions: Vec<&str> = result["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{result}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(versions.contains(&"2026-07-28"), "{versions:?}");
    assert!(versions.contains(&"2025-11-25"), "{versions:?}");
    assert_eq!(
        result["capabilities"]["tools"]["listChanged"], true,
        "{result}"
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "toolgate",
        "{result}"
    );

    // tools/list carries ttlMs and cacheScope private.
    let listed = raw_mcp::send(modern_post(&url, &token, "tools/list", json!({}), &[])).await;
    let result = &listed.message()["result"];
    assert_eq!(result["ttlMs"], 60_000, "{result}");
    assert_eq!(result["cacheScope"], "private", "{result}");
    assert!(!listed.tool_names().is_empty());

    // On a 2025-11-25 session the result has neither.
    let opened = raw_mcp::send(raw_mcp::post(&url, &token, None, raw_mcp::INITIALIZE)).await;
    let session = opened.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let legacy = raw_mcp::send(raw_mcp::post(&url, &token, Some(&session), raw_mcp::LIST)).await;
    let result = &legacy.message()["result"];
    assert!(result.get("ttlMs").is_none(), "{result}");
    assert!(result.get("cacheScope").is_none(), "{result}");

    // Mirrored headers that contradict the body: 400.
    for (header, value) in [
        ("mcp-method", "tools/call"),
        ("mcp-protocol-version", "2025-11-25"),
    ] {
        let mismatch = raw_mcp::send(modern_post(
            &url,
            &token,
            "tools/list",
            json!({}),
            &[(header, value)],
        ))
        .await;
        assert_eq!(mismatch.status, 400, "{header}: {}", mismatch.body);
    }
    let wrong_name = raw_mcp::send(modern_post(
        &url,
        &token,
        "tools/call",
        json!({"name": "salesforce_get_limits", "arguments": {}}),
        &[("mcp-name", "salesforce_query")],
    ))
    .await;
    assert_eq!(wrong_name.status, 400, "{}", wrong_name.body);
    let missing_name = {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "salesforce_get_limits", "arguments": {}, "_meta": meta()}});
        raw_mcp::send(
            raw_mcp::post(&url, &token, None, &body.to_string())
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call"),
        )
        .await
    };
    assert_eq!(missing_name.status, 400, "{}", missing_name.body);

    // Methods 2026-07-28 removed are unknown there (404, -32601), even
    // with params that would not fit them.
    for method in ["initialize", "logging/setLevel", "resources/subscribe"] {
        let removed = raw_mcp::send(modern_post(&url, &token, method, json!({}), &[])).await;
        assert_eq!(removed.status, 404, "{method}: {}", removed.body);
        assert_eq!(removed.error_code(), -32601, "{method}: {}", removed.body);
    }

    // GET and DELETE without a session: 405, Allow POST.
    let http = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let answer = http
            .request(method.clone(), &url)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method}");
        assert_eq!(answer.headers()["allow"], "POST", "{method}");
    }
    w.daemon.stop().await.unwrap();
    w.sf.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_listen_stream_ends_when_the_daemon_stops() {
    let mut w = world_with(|_| {}).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("ana@example.com", &all).await;
    let mut open = raw_listen(&w.mcp_url, &token)
        .await
        .unwrap_or_else(|a| panic!("{}: {}", a.status, a.body));
    // The stop does not wait out the grace period for the stream, and the
    // stream ends (it does not hang the client).
    let started = std::time::Instant::now();
    within("the daemon's stop", w.daemon.stop()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    within("the end of the listen stream", async {
        while let Ok(Some(_)) = open.chunk().await {}
    })
    .await;
    w.sf.sim.stop().await;
}
