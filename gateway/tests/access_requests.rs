//! Access requests and just-in-time grants end to end, through MCP (rmcp's
//! client) and the control API, against sfsim: requestable tools are
//! listed and marked, a call opens (then reuses) a request without
//! reaching Salesforce, an admin approves for a shorter time, the client
//! hears tools/list_changed, the call runs, the grant expires and the next
//! call opens a new request, a denial is shown with its reason, an
//! auto-approved profile runs at once, an undecided request expires, and
//! bad input is refused naming the field. Daemon in-process on port 0.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Fixture, Org, admin};
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool as McpTool};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use toolgate_proto::AdminToken;
use toolgate_proto::v1;
use v1::access_request_service_client::AccessRequestServiceClient;

const ANA_SF: &str = "ana.souza@acme-demo.example";

type Requests = AccessRequestServiceClient<InterceptedService<Channel, AdminToken>>;

/// An MCP client that counts list-changed notifications.
#[derive(Clone, Default)]
struct Listener {
    changed_count: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl ClientHandler for Listener {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed_count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

/// Awaits `future`, failing the test (instead of hanging) after a generous
/// bound. A guard, not synchronisation.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("{what} never arrived"))
}

async fn call(
    client: &RunningService<RoleClient, Listener>,
    name: &str,
    args: Value,
) -> CallToolResult {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = args.as_object().cloned();
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

/// The `_meta` access request of a call result.
fn request_meta(result: &CallToolResult) -> Value {
    let meta = result
        .meta
        .as_ref()
        .unwrap_or_else(|| panic!("no _meta in {result:?}"));
    meta.0
        .get("toolgate/access_request")
        .cloned()
        .unwrap_or_else(|| panic!("no access request in {meta:?}"))
}

fn find<'t>(tools: &'t [McpTool], name: &str) -> &'t McpTool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

fn requestable_marker(tool: &McpTool) -> Option<Value> {
    tool.meta
        .as_ref()
        .and_then(|m| m.0.get("toolgate/requestable").cloned())
}

const QUERY: &str = "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'";

struct World {
    fx: Fixture<Org>,
    requests: Requests,
}

impl World {
    async fn start() -> Self {
        let fx = Fixture::salesforce(|_| {}).await;
        let channel = toolgate_proto::admin::endpoint(&fx.daemon.grpc_addr.to_string())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let requests = AccessRequestServiceClient::new(InterceptedService::new(
            channel,
            admin(&fx.admin_token),
        ));
        Self { fx, requests }
    }

    async fn client(&self, token: &str, handler: Listener) -> RunningService<RoleClient, Listener> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.fx.mcp_url.clone())
                .auth_header(token),
        );
        handler.serve(transport).await.unwrap()
    }

    /// REST calls sfsim has served (its API usage counter).
    async fn sf_calls(&self) -> u64 {
        let state: Value = reqwest::get(format!("{}/_sfsim/state", self.fx.sf.sim.login_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["api_usage"]
            .as_u64()
            .unwrap_or_else(|| panic!("no api_usage in {state}"))
    }

    async fn profile(
        &mut self,
        name: &str,
        toolset: &str,
        obtain: v1::ProfileObtain,
        max: Option<u64>,
    ) -> v1::AccessProfile {
        self.fx
            .admin
            .profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: name.into(),
                description: format!("{name} for a while"),
                toolset_ids: vec![toolset.into()],
                obtain: obtain.into(),
                max_request_duration_secs: max,
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap()
    }

    async fn get(&mut self, id: &str) -> v1::AccessRequest {
        self.requests
            .get_access_request(v1::GetAccessRequestRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap()
    }

    async fn list(&mut self, req: v1::ListAccessRequestsRequest) -> v1::ListAccessRequestsResponse {
        self.requests
            .list_access_requests(req)
            .await
            .unwrap()
            .into_inner()
    }

    /// Audit events whose action starts with `prefix`, newest first.
    async fn audit(&mut self, prefix: &str) -> Vec<v1::AuditEvent> {
        self.fx
            .admin
            .audit
            .list_events(v1::ListEventsRequest {
                action_prefix: prefix.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events
    }

    /// Follows a connect link through sfsim's login page as `username`.
    async fn connect(&self, link: &str, username: &str) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let to_login = http.post(link).send().await.unwrap();
        assert!(to_login.status().is_redirection(), "{}", to_login.status());
        let authorize = to_login.headers()["location"].to_str().unwrap().to_owned();
        let url = url::Url::parse(&authorize).unwrap();
        let mut form: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        form.push(("username".into(), username.into()));
        form.push(("action".into(), "allow".into()));
        let back = http
            .post(format!(
                "{}/services/oauth2/authorize",
                self.fx.sf.sim.login_url
            ))
            .form(&form)
            .send()
            .await
            .unwrap();
        let callback = back.headers()["location"].to_str().unwrap().to_owned();
        let done = http.get(callback).send().await.unwrap();
        assert!(done.status().is_success(), "{}", done.status());
    }
}

fn link_in(message: &str) -> String {
    message
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap_or_else(|| panic!("no connect link in {message}"))
        .trim_end_matches([',', '.'])
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_approve_run_expire_deny_and_auto_approve() {
    let mut w = World::start().await;
    let read_only = w.fx.toolset(v1::ToolsetKind::ReadOnly).await;
    let tools =
        w.fx.admin
            .tools
            .list_tools(v1::ListToolsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .tools;
    let id_of = |name: &str| tools.iter().find(|t| t.name == name).unwrap().id.clone();
    let create_id = id_of("salesforce_create_record");
    let basics =
        w.fx.admin
            .toolsets
            .create_toolset(v1::CreateToolsetRequest {
                name: "Basics".into(),
                description: String::new(),
                tool_ids: vec![id_of("salesforce_get_user_info")],
            })
            .await
            .unwrap()
            .into_inner()
            .toolset
            .unwrap()
            .id;
    let writers =
        w.fx.admin
            .toolsets
            .create_toolset(v1::CreateToolsetRequest {
                name: "Record creation".into(),
                description: String::new(),
                tool_ids: vec![create_id],
            })
            .await
            .unwrap()
            .into_inner()
            .toolset
            .unwrap()
            .id;
    let reads = w
        .profile(
            "Sales reads",
            &read_only,
            v1::ProfileObtain::RequestWithApproval,
            Some(3600),
        )
        .await;
    assert_eq!(
        reads.obtain,
        i32::from(v1::ProfileObtain::RequestWithApproval)
    );
    assert_eq!(reads.max_request_duration_secs, Some(3600));
    let creates = w
        .profile(
            "Quick create",
            &writers,
            v1::ProfileObtain::RequestAutoApprove,
            Some(600),
        )
        .await;
    // An admin-grant profile is never offered.
    let _hidden = w
        .profile("Admins only", &writers, v1::ProfileObtain::AdminGrant, None)
        .await;
    let basic = w
        .profile("Basics", &basics, v1::ProfileObtain::AdminGrant, None)
        .await;
    let ana_id = w.fx.create_user("ana@example.com").await;
    w.fx.admin
        .profiles
        .grant_user(v1::GrantUserRequest {
            profile_id: basic.id.clone(),
            user_id: ana_id.clone(),
            expires_at: None,
            expected_revision: None,
        })
        .await
        .unwrap();
    let token = w.fx.issue_token(&ana_id, "test").await;

    // Ana connects Salesforce through the tool she holds.
    let listener = Listener::default();
    let ana = w.client(&token, listener.clone()).await;
    let prompt = call(&ana, "salesforce_get_user_info", json!({})).await;
    w.connect(&link_in(&text(&prompt)), ANA_SF).await;

    // tools/list offers what Ana could request, marked, and the request tool.
    let listed = ana.list_tools(None).await.unwrap().tools;
    let query = find(&listed, "salesforce_query");
    assert!(
        query.description.as_deref().unwrap().starts_with(
            "[Requestable] You do not have access to this tool yet. Calling it does not run it"
        ),
        "{:?}",
        query.description
    );
    assert_eq!(
        requestable_marker(query).unwrap(),
        json!({"profile_id": reads.id, "profile": "Sales reads", "approval": "admin", "max_duration_secs": 3600})
    );
    let create = find(&listed, "salesforce_create_record");
    assert_eq!(requestable_marker(create).unwrap()["approval"], "automatic");
    let request_tool = find(&listed, "toolgate_request_access");
    let about = request_tool.description.as_deref().unwrap();
    assert!(
        about.contains("\"Sales reads\" (an administrator approves, for up to 1 hour(s))"),
        "{about}"
    );
    assert!(
        about.contains("\"Quick create\" (granted at once, for up to 10 minute(s))"),
        "{about}"
    );
    assert!(!about.contains("Admins only"), "{about}");
    assert_eq!(
        requestable_marker(find(&listed, "salesforce_get_user_info")),
        None
    );
    assert!(listed.iter().all(|t| requestable_marker(t).is_some()
        || ["toolgate_request_access", "salesforce_get_user_info"].contains(&t.name.as_ref())));

    // Calling a requestable tool opens a request; Salesforce is not called.
    let sf_before = w.sf_calls().await;
    let first = call(&ana, "salesforce_query", json!({"soql": QUERY})).await;
    assert_eq!(first.is_error, Some(true));
    let opened = request_meta(&first);
    let request_id = opened["id"].as_str().unwrap().to_owned();
    assert_eq!(opened["state"], "PENDING");
    assert_eq!(opened["created"], true);
    assert_eq!(opened["profile"], "Sales reads");
    let message = text(&first);
    assert!(
        message.contains(&format!(
            "Access request {request_id} for access profile \"Sales reads\" opened"
        )),
        "{message}"
    );
    assert!(
        message.contains("then call salesforce_query again"),
        "{message}"
    );
    // Called again: the same request, reused.
    let again = call(&ana, "salesforce_query", json!({"soql": QUERY})).await;
    assert_eq!(request_meta(&again)["id"], request_id.as_str());
    assert_eq!(request_meta(&again)["created"], false);
    assert_eq!(w.sf_calls().await, sf_before, "sfsim was called");

    let pending = w
        .list(v1::ListAccessRequestsRequest {
            state: v1::AccessRequestState::Pending.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(pending.pending_count, 1);
    assert_eq!(pending.requests.len(), 1);
    let got = &pending.requests[0];
    assert_eq!(got.id, request_id);
    assert_eq!(got.user_email, "ana@example.com");
    assert_eq!(got.profile_name, "Sales reads");
    assert_eq!(got.tool, "salesforce_query");
    assert_eq!(got.requested_duration_secs, None);
    let created = w.audit("access_request.create").await;
    assert_eq!(created.len(), 1, "one request opened, once");
    assert_eq!(created[0].target, format!("access_request/{request_id}"));
    assert_eq!(created[0].actor, "user:ana@example.com");
    let calls = w.audit("tool.call").await;
    assert!(
        calls[0].details_json.contains(&request_id),
        "{}",
        calls[0].details_json
    );
    assert_eq!(calls[0].outcome, i32::from(v1::Outcome::Denied));

    // An admin may only shorten: longer than the profile allows is refused.
    let err = w
        .requests
        .approve_access_request(v1::ApproveAccessRequestRequest {
            id: request_id.clone(),
            duration_secs: Some(7200),
            expected_revision: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("duration_secs: must be at most 3600"),
        "{}",
        err.message()
    );
    let err = w
        .requests
        .approve_access_request(v1::ApproveAccessRequestRequest {
            id: request_id.clone(),
            duration_secs: Some(3),
            expected_revision: Some(got.revision + 5),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let changes = listener.changed_count.load(Ordering::SeqCst);
    let approved = w
        .requests
        .approve_access_request(v1::ApproveAccessRequestRequest {
            id: request_id.clone(),
            duration_secs: Some(4),
            expected_revision: Some(got.revision),
        })
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    assert_eq!(approved.state, i32::from(v1::AccessRequestState::Approved));
    assert_eq!(approved.granted_duration_secs, Some(4));
    assert!(
        approved.decided_by.starts_with("admin"),
        "{}",
        approved.decided_by
    );
    let err = w
        .requests
        .approve_access_request(v1::ApproveAccessRequestRequest {
            id: request_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // The client hears the change; the tool is now plain.
    within("tools/list_changed", async {
        while listener.changed_count.load(Ordering::SeqCst) == changes {
            listener.changed.notified().await;
        }
    })
    .await;
    let listed = ana.list_tools(None).await.unwrap().tools;
    assert_eq!(requestable_marker(find(&listed, "salesforce_query")), None);
    let granted =
        w.fx.admin
            .profiles
            .get_access_profile(v1::GetAccessProfileRequest {
                id: reads.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
    let grant = granted.grants.iter().find(|g| g.user_id == ana_id).unwrap();
    let ends = grant.expires_at.unwrap();
    let starts = grant.granted_at.unwrap();
    assert_eq!(
        (ends.seconds * 1000 + i64::from(ends.nanos / 1_000_000))
            - (starts.seconds * 1000 + i64::from(starts.nanos / 1_000_000)),
        4000
    );

    // The call runs.
    let ran = call(&ana, "salesforce_query", json!({"soql": QUERY})).await;
    assert_eq!(ran.is_error, Some(false), "{}", text(&ran));
    assert!(text(&ran).contains("GenePoint"));
    let sf_after_run = w.sf_calls().await;
    assert!(sf_after_run > sf_before);

    // The grant expires by itself: the next call opens a new request and
    // does not reach Salesforce.
    let before_end = listener.changed_count.load(Ordering::SeqCst);
    let end_ms = ends.seconds * 1000 + i64::from(ends.nanos / 1_000_000);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while toolgate_gateway::model::now_ms() <= end_ms {
        assert!(
            std::time::Instant::now() < deadline,
            "the grant never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its end is heard as a list change, well before the minute's re-check.
    within("tools/list_changed at the grant's end", async {
        while listener.changed_count.load(Ordering::SeqCst) == before_end {
            listener.changed.notified().await;
        }
    })
    .await;
    let relisted = ana.list_tools(None).await.unwrap().tools;
    assert_eq!(
        requestable_marker(find(&relisted, "salesforce_query")).unwrap()["profile"],
        "Sales reads"
    );
    let after = call(&ana, "salesforce_query", json!({"soql": QUERY})).await;
    assert_eq!(after.is_error, Some(true));
    let second = request_meta(&after);
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, request_id);
    assert_eq!(second["created"], true);
    assert_eq!(w.sf_calls().await, sf_after_run, "sfsim was called");

    // Deny: a reason is required; the user is shown it.
    let err = w
        .requests
        .deny_access_request(v1::DenyAccessRequestRequest {
            id: second_id.clone(),
            reason: "  ".into(),
            expected_revision: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("reason:"), "{}", err.message());
    let denied = w
        .requests
        .deny_access_request(v1::DenyAccessRequestRequest {
            id: second_id.clone(),
            reason: "not during the audit freeze".into(),
            expected_revision: None,
        })
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    assert_eq!(denied.state, i32::from(v1::AccessRequestState::Denied));
    assert_eq!(denied.decision_reason, "not during the audit freeze");
    let refused = call(&ana, "salesforce_query", json!({"soql": QUERY})).await;
    let message = text(&refused);
    assert!(
        message.contains("was denied by an administrator: not during the audit freeze"),
        "{message}"
    );
    assert!(
        message.contains("call toolgate_request_access"),
        "{message}"
    );
    assert_eq!(request_meta(&refused)["id"], second_id.as_str());
    assert_eq!(
        w.list(v1::ListAccessRequestsRequest::default())
            .await
            .pending_count,
        0
    );
    assert_eq!(w.sf_calls().await, sf_after_run, "sfsim was called");
    let denials = w.audit("access_request.deny").await;
    assert_eq!(denials.len(), 1);
    assert!(denials[0].reason.contains("not during the audit freeze"));

    // An auto-approved profile: granted at once, the call runs.
    let made = call(
        &ana,
        "salesforce_create_record",
        json!({"object_name": "Account", "fields": {"Name": "Requested Co"}}),
    )
    .await;
    assert_eq!(made.is_error, Some(false), "{}", text(&made));
    assert!(w.sf_calls().await > sf_after_run);
    let auto = w
        .list(v1::ListAccessRequestsRequest {
            profile_id: creates.id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(auto.requests.len(), 1);
    assert_eq!(
        auto.requests[0].state,
        i32::from(v1::AccessRequestState::Approved)
    );
    assert_eq!(auto.requests[0].decided_by, "system");
    assert_eq!(auto.requests[0].granted_duration_secs, Some(600));
    let approvals = w.audit("access_request.approve").await;
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[0].actor, "system");

    // Ahead of time, over MCP: the request tool opens a request with the
    // reason and duration asked for.
    let bad = call(&ana, "toolgate_request_access", json!({"profile": "Nope"})).await;
    assert!(
        text(&bad)
            .contains("profile: \"Nope\" is not a profile you can request; one of Sales reads"),
        "{}",
        text(&bad)
    );
    let bad = call(
        &ana,
        "toolgate_request_access",
        json!({"profile": "Sales reads", "duration_secs": 0}),
    )
    .await;
    assert!(
        text(&bad).contains("duration_secs: must be 1 to 31536000 seconds"),
        "{}",
        text(&bad)
    );
    let asked = call(
        &ana,
        "toolgate_request_access",
        json!({"profile": "Sales reads", "reason": "quarter close", "duration_secs": 900}),
    )
    .await;
    assert_eq!(asked.is_error, Some(true));
    let third_id = request_meta(&asked)["id"].as_str().unwrap().to_owned();
    let third = w.get(&third_id).await;
    assert_eq!(third.reason, "quarter close");
    assert_eq!(third.requested_duration_secs, Some(900));
    assert_eq!(third.tool, "");
    // The user's reason stays out of the audit log.
    let created = w.audit("access_request.create").await;
    assert!(
        created
            .iter()
            .all(|e| !e.details_json.contains("quarter close"))
    );

    // Nobody decides: the sweep expires it (audited), and approval is
    // refused.
    // Two sweeps at once (as on two replicas): one expires it, once.
    let later = toolgate_gateway::model::now_ms() + 8 * 24 * 3600 * 1000;
    let store = &w.fx.daemon.store;
    let (a, b) = tokio::join!(
        toolgate_gateway::access_requests::sweep(store, later),
        toolgate_gateway::access_requests::sweep(store, later),
    );
    let mut expired = a.unwrap();
    expired.extend(b.unwrap());
    assert_eq!(expired, vec![third_id.clone()]);
    let third = w.get(&third_id).await;
    assert_eq!(third.state, i32::from(v1::AccessRequestState::Expired));
    assert_eq!(third.decided_by, "system");
    let expiries = w.audit("access_request.expire").await;
    assert_eq!(expiries.len(), 1);
    assert_eq!(expiries[0].target, format!("access_request/{third_id}"));
    let err = w
        .requests
        .approve_access_request(v1::ApproveAccessRequestRequest {
            id: third_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Paging, newest first.
    let page = w
        .list(v1::ListAccessRequestsRequest {
            user_id: ana_id.clone(),
            page_size: 2,
            ..Default::default()
        })
        .await;
    assert_eq!(page.requests.len(), 2);
    assert_eq!(page.requests[0].id, third_id);
    let rest = w
        .list(v1::ListAccessRequestsRequest {
            user_id: ana_id.clone(),
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(rest.requests.len(), 2);
    assert!(rest.next_page_token.is_empty());
    assert_eq!(rest.requests[1].id, request_id);
    drop(ana);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_the_setting_hides_requestables() {
    let mut w = World::start().await;
    let read_only = w.fx.toolset(v1::ToolsetKind::ReadOnly).await;
    let err =
        w.fx.admin
            .profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: "Zero".into(),
                toolset_ids: vec![read_only.clone()],
                obtain: v1::ProfileObtain::RequestWithApproval.into(),
                max_request_duration_secs: Some(0),
                ..Default::default()
            })
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("max_request_duration_secs:"),
        "{}",
        err.message()
    );
    let err =
        w.fx.admin
            .profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: "Odd".into(),
                obtain: 42,
                ..Default::default()
            })
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("obtain:"), "{}", err.message());
    let plain = w
        .profile("Plain", &read_only, v1::ProfileObtain::AdminGrant, None)
        .await;
    let err =
        w.fx.admin
            .profiles
            .update_access_profile(v1::UpdateAccessProfileRequest {
                id: plain.id.clone(),
                max_request_duration_secs: Some(60),
                clear_max_request_duration: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("clear_max_request_duration:"),
        "{}",
        err.message()
    );
    let ana_id = w.fx.create_user("ana@example.com").await;
    let token = w.fx.issue_token(&ana_id, "test").await;

    // Not requestable: refused, and nothing is offered over MCP.
    let err = w
        .requests
        .create_access_request(v1::CreateAccessRequestRequest {
            user_id: ana_id.clone(),
            profile_id: plain.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("not requestable"),
        "{}",
        err.message()
    );
    let ana = w.client(&token, Listener::default()).await;
    assert!(ana.list_tools(None).await.unwrap().tools.is_empty());

    // Made requestable (audited), it is offered.
    let updated =
        w.fx.admin
            .profiles
            .update_access_profile(v1::UpdateAccessProfileRequest {
                id: plain.id.clone(),
                obtain: v1::ProfileObtain::RequestWithApproval.into(),
                max_request_duration_secs: Some(3600),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
    assert_eq!(
        updated.obtain,
        i32::from(v1::ProfileObtain::RequestWithApproval)
    );
    let update = &w.audit("profile.update").await[0];
    assert!(
        update.details_json.contains("REQUEST_WITH_APPROVAL"),
        "{}",
        update.details_json
    );
    assert!(!ana.list_tools(None).await.unwrap().tools.is_empty());
    let cleared =
        w.fx.admin
            .profiles
            .update_access_profile(v1::UpdateAccessProfileRequest {
                id: plain.id.clone(),
                clear_max_request_duration: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
    assert_eq!(cleared.max_request_duration_secs, None);

    // Created on the user's behalf, then reused.
    let err = w
        .requests
        .create_access_request(v1::CreateAccessRequestRequest {
            user_id: ana_id.clone(),
            profile_id: plain.id.clone(),
            duration_secs: Some(40_000_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("duration_secs:"),
        "{}",
        err.message()
    );
    let made = w
        .requests
        .create_access_request(v1::CreateAccessRequestRequest {
            user_id: ana_id.clone(),
            profile_id: plain.id.clone(),
            reason: "on behalf".into(),
            duration_secs: Some(60),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(made.created);
    let reused = w
        .requests
        .create_access_request(v1::CreateAccessRequestRequest {
            user_id: ana_id.clone(),
            profile_id: plain.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!reused.created);
    assert_eq!(reused.request.unwrap().id, made.request.unwrap().id);

    // Bad list and get arguments.
    let err = w
        .requests
        .list_access_requests(v1::ListAccessRequestsRequest {
            page_size: 1001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("page_size:"), "{}", err.message());
    let err = w
        .requests
        .list_access_requests(v1::ListAccessRequestsRequest {
            page_token: "!!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.message().starts_with("page_token:"),
        "{}",
        err.message()
    );
    let err = w
        .requests
        .get_access_request(v1::GetAccessRequestRequest { id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = w
        .requests
        .get_access_request(v1::GetAccessRequestRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // The setting off: nothing requestable is listed, and a call is a plain
    // denial that opens nothing.
    let settings =
        w.fx.admin
            .settings
            .get_settings(v1::GetSettingsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .settings
            .unwrap();
    let mut governance = settings.governance.unwrap();
    governance.show_requestable_tools = false;
    w.fx.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            governance: Some(governance),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ana.list_tools(None).await.unwrap().tools.is_empty());
    let refused = call(&ana, "salesforce_query", json!({"soql": QUERY})).await;
    assert_eq!(
        text(&refused),
        "tool salesforce_query is not in your tool list"
    );
    assert_eq!(
        w.list(v1::ListAccessRequestsRequest::default())
            .await
            .requests
            .len(),
        1
    );
    drop(ana);
}
