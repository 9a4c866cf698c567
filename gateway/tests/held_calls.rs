//! Approval of a single call end to end, against sfsim: raw MCP on
//! 2025-11-25 (a session) and 2026-07-28 (stateless, `input_required`),
//! and `toolgate.v1.HeldCallService` over gRPC. sfsim's `query` counter
//! proves what reached Salesforce.

mod common;

use common::raw_mcp;
use common::{Fixture, Org};
use serde_json::{Value, json};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use toolgate_proto::v1;
use v1::held_call_service_client::HeldCallServiceClient;

type World = Fixture<Org>;
type Held = HeldCallServiceClient<InterceptedService<Channel, common::AdminToken>>;

const ANA_SF: &str = "ana.souza@acme-demo.example";
const Q1: &str = "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'";

async fn held_client(w: &World) -> Held {
    let channel = toolgate_proto::admin::endpoint(&w.daemon.grpc_addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    HeldCallServiceClient::new(InterceptedService::new(
        channel,
        common::admin(&w.admin_token),
    ))
}

/// A 2025-11-25 session of one token, speaking raw JSON-RPC.
struct Session {
    url: String,
    token: String,
    id: String,
    next: u64,
}

impl Session {
    async fn open(url: &str, token: &str) -> Self {
        let answer = raw_mcp::send(raw_mcp::post(url, token, None, raw_mcp::INITIALIZE)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let id = answer.headers["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let done = raw_mcp::send(raw_mcp::post(
            url,
            token,
            Some(&id),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ))
        .await;
        assert_eq!(done.status, 202);
        Self {
            url: url.to_owned(),
            token: token.to_owned(),
            id,
            next: 10,
        }
    }

    /// The result of `tools/call` of `name` with `arguments`.
    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        self.next += 1;
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.next,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        });
        let answer = raw_mcp::send(raw_mcp::post(
            &self.url,
            &self.token,
            Some(&self.id),
            &body.to_string(),
        ))
        .await;
        let message = answer.message();
        assert!(message.get("result").is_some(), "{message}");
        message["result"].clone()
    }
}

/// A raw 2026-07-28 `tools/call` with `params` and the client
/// `capabilities` in `_meta`, with the mirrored headers; the whole answer.
async fn modern_call(w: &World, token: &str, capabilities: &Value, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let name = params["name"].as_str().unwrap().to_owned();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let request = raw_mcp::post(&w.mcp_url, token, None, &body.to_string())
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name);
    raw_mcp::send(request).await.message()
}

fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {result}"))
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The held call id a tool result names in `_meta`.
fn held_id(result: &Value) -> String {
    result["_meta"]["toolgate/held_call"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no held call in {result}"))
        .to_owned()
}

fn link_in(message: &str) -> String {
    message
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap_or_else(|| panic!("no connect link in {message}"))
        .trim_end_matches([',', '.'])
        .to_owned()
}

/// Follows a connect link through sfsim's login page as `username`.
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

/// A daemon and sfsim, and user ana (every approved tool) connected to
/// Salesforce; answers ana's token and user id.
async fn world() -> (World, String, String) {
    let mut w = Fixture::salesforce(|sim| sim.auto_consent = false).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (user_id, _, token) = w.user("ana@example.com", &all).await;
    let mut session = Session::open(&w.mcp_url, &token).await;
    let prompt = session.call("salesforce_get_limits", json!({})).await;
    connect(&w.sf.sim.login_url, &link_in(&text(&prompt)), ANA_SF).await;
    (w, token, user_id)
}

/// Sets the per-call approval rule (and the held-call TTL).
async fn rule(w: &mut World, tools: &[&str], tags: &[v1::ClassificationTag], ttl_secs: u64) {
    w.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            governance: Some(v1::GovernanceSettings {
                show_requestable_tools: true,
                access_request_ttl_secs: 604_800,
                held_call_ttl_secs: ttl_secs,
                call_approval: Some(v1::CallApprovalRule {
                    tools: tools.iter().map(|t| (*t).to_owned()).collect(),
                    classifications: tags.iter().map(|t| (*t).into()).collect(),
                }),
                audit_verbosity: v1::AuditVerbosity::Standard.into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn get(held: &mut Held, id: &str) -> v1::HeldCall {
    held.get_held_call(v1::GetHeldCallRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .held_call
        .unwrap()
}

async fn approve(held: &mut Held, id: &str) -> Result<v1::HeldCall, tonic::Status> {
    held.approve_held_call(v1::ApproveHeldCallRequest {
        id: id.into(),
        expected_revision: None,
    })
    .await
    .map(|r| r.into_inner().held_call.unwrap())
}

async fn deny(held: &mut Held, id: &str, reason: &str) -> Result<v1::HeldCall, tonic::Status> {
    held.deny_held_call(v1::DenyHeldCallRequest {
        id: id.into(),
        reason: reason.into(),
        expected_revision: None,
    })
    .await
    .map(|r| r.into_inner().held_call.unwrap())
}

async fn events(w: &mut World) -> Vec<v1::AuditEvent> {
    w.admin
        .audit
        .list_events(v1::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

fn details(event: &v1::AuditEvent) -> Value {
    serde_json::from_str(&event.details_json).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_call_runs_once_and_only_with_its_arguments() {
    let (mut w, token, user_id) = world().await;
    let mut held = held_client(&w).await;
    rule(&mut w, &["salesforce_q*"], &[], 3600).await;
    let mut s = Session::open(&w.mcp_url, &token).await;
    let q1 = json!({"soql": Q1});
    let before = w.sf.sim.counter("query");

    // Held: a clear tool error with the id, and nothing reaches Salesforce.
    let first = s.call("salesforce_query", q1.clone()).await;
    assert_eq!(first["isError"], true, "{first}");
    let message = text(&first);
    assert!(
        message.contains("needs an administrator's approval before it runs"),
        "{message}"
    );
    let id = held_id(&first);
    assert!(message.contains(&id), "{message}");
    assert_eq!(first["_meta"]["toolgate/held_call"]["state"], "PENDING");
    // Asking again answers with the same held call.
    let again = s.call("salesforce_query", q1.clone()).await;
    assert_eq!(held_id(&again), id);
    let list = held
        .list_held_calls(v1::ListHeldCallsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.pending_count, 1);
    assert_eq!(list.held_calls.len(), 1);
    assert_eq!(list.held_calls[0].id, id);
    assert_eq!(
        list.held_calls[0].arguments_json, "",
        "lists carry no arguments"
    );

    // The admin sees the user, the tool and the arguments exactly as sent.
    let pending = get(&mut held, &id).await;
    assert_eq!(pending.user_id, user_id);
    assert_eq!(pending.user_email, "ana@example.com");
    assert_eq!(pending.tool, "salesforce_query");
    assert_eq!(pending.server_id, w.sf.server_id);
    assert!(!pending.client_name.is_empty());
    assert_eq!(
        serde_json::from_str::<Value>(&pending.arguments_json).unwrap(),
        q1
    );
    assert_eq!(pending.arguments_digest.len(), 64);
    assert_eq!(pending.state(), v1::HeldCallState::Pending);
    assert_eq!(w.sf.sim.counter("query"), before, "nothing reached sfsim");

    let approved = held
        .approve_held_call(v1::ApproveHeldCallRequest {
            id: id.clone(),
            expected_revision: Some(pending.revision),
        })
        .await
        .unwrap()
        .into_inner()
        .held_call
        .unwrap();
    assert_eq!(approved.state(), v1::HeldCallState::Approved);
    assert!(!approved.decided_by.is_empty());
    assert_eq!(approved.revision, pending.revision + 1);

    // Other arguments do not run on the approval; they are held anew.
    let other = s
        .call(
            "salesforce_query",
            json!({"soql": "SELECT Id FROM Account"}),
        )
        .await;
    assert_eq!(other["isError"], true, "{other}");
    assert!(
        text(&other).contains(&format!(
            "the approval of held call {id} was for other arguments"
        )),
        "{other}"
    );
    assert_ne!(held_id(&other), id);
    assert_eq!(w.sf.sim.counter("query"), before);

    // Two retries at once with the approved arguments: exactly one runs.
    let mut s2 = Session::open(&w.mcp_url, &token).await;
    let (a, b) = tokio::join!(
        s.call("salesforce_query", q1.clone()),
        s2.call("salesforce_query", q1.clone())
    );
    let ran: Vec<&Value> = [&a, &b]
        .into_iter()
        .filter(|r| r["isError"] != true)
        .collect();
    assert_eq!(ran.len(), 1, "{a}\n{b}");
    assert!(text(ran[0]).contains("GenePoint"), "{}", ran[0]);
    let refused = if std::ptr::eq(ran[0], &a) { &b } else { &a };
    assert!(text(refused).contains(&id), "{refused}");
    assert_eq!(w.sf.sim.counter("query"), before + 1, "run exactly once");
    let used = get(&mut held, &id).await;
    assert_eq!(used.state(), v1::HeldCallState::Used);
    assert!(used.used_at.is_some());
    assert_eq!(
        used.arguments_json, "",
        "sealed arguments dropped once used"
    );

    // The used approval cannot be used again, whoever asks.
    assert!(matches!(
        toolgate_gateway::mcp::held_calls::consume(&w.daemon.store, &id).await,
        Err(toolgate_gateway::mcp::held_calls::ConsumeError::Gone(_))
    ));

    // A later retry does not run either.
    let third = s.call("salesforce_query", q1.clone()).await;
    assert_eq!(third["isError"], true, "{third}");
    assert_ne!(held_id(&third), id);
    assert_eq!(w.sf.sim.counter("query"), before + 1);

    // Audited: one held_call.hold and one approve for the call, the run as
    // a tool.call naming it, and no held-call event carries the arguments.
    let log = events(&mut w).await;
    let target = format!("held_call/{id}");
    let count = |action: &str| {
        log.iter()
            .filter(|e| e.action == action && e.target == target)
            .count()
    };
    assert_eq!(count("held_call.hold"), 1);
    assert_eq!(count("held_call.approve"), 1);
    let runs: Vec<_> = log
        .iter()
        .filter(|e| e.action == "tool.call" && details(e)["held_call"] == json!(id))
        .filter(|e| e.outcome() == v1::Outcome::Allowed)
        .collect();
    assert_eq!(runs.len(), 1);
    for e in log.iter().filter(|e| e.action.starts_with("held_call.")) {
        assert!(!e.details_json.contains("GenePoint"), "{e:?}");
        assert!(!e.reason.contains("GenePoint"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_voids_an_approval_a_denial_shows_its_reason_and_calls_expire() {
    let (mut w, token, _) = world().await;
    let mut held = held_client(&w).await;
    // By classification: every READ tool (the query tool is one).
    rule(&mut w, &[], &[v1::ClassificationTag::Read], 3600).await;
    let mut s = Session::open(&w.mcp_url, &token).await;
    let q1 = json!({"soql": Q1});
    let before = w.sf.sim.counter("query");

    let id = held_id(&s.call("salesforce_query", q1.clone()).await);
    approve(&mut held, &id).await.unwrap();
    // A settings change after the approval voids it.
    rule(&mut w, &[], &[v1::ClassificationTag::Read], 7200).await;
    let voided = s.call("salesforce_query", q1.clone()).await;
    assert_eq!(voided["isError"], true, "{voided}");
    assert!(
        text(&voided).contains(&format!(
            "the approval of held call {id} no longer applies: the policy for this tool changed"
        )),
        "{voided}"
    );
    let id2 = held_id(&voided);
    assert_ne!(id2, id);
    assert_eq!(w.sf.sim.counter("query"), before);

    // Denials need a reason of at most 500 characters.
    for bad in ["", "   ", &"x".repeat(501)] {
        let err = deny(&mut held, &id2, bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("reason:"), "{}", err.message());
    }
    let reason = "Account queries are frozen during the audit";
    let denied = deny(&mut held, &id2, reason).await.unwrap();
    assert_eq!(denied.state(), v1::HeldCallState::Denied);
    assert_eq!(denied.decision_reason, reason);
    assert_eq!(
        serde_json::from_str::<Value>(&denied.arguments_json).unwrap(),
        q1
    );
    assert_eq!(get(&mut held, &id2).await.arguments_json, "");
    // The retry hears the denial and its reason; nothing is held anew.
    let refused = s.call("salesforce_query", q1.clone()).await;
    assert_eq!(refused["isError"], true);
    assert!(text(&refused).contains("denied"), "{refused}");
    assert!(text(&refused).contains(reason), "{refused}");
    assert_eq!(held_id(&refused), id2);
    assert_eq!(refused["_meta"]["toolgate/held_call"]["state"], "DENIED");
    assert_eq!(w.sf.sim.counter("query"), before);

    // Decided calls cannot be decided again.
    let err = approve(&mut held, &id2).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("DENIED"), "{}", err.message());
    let err = deny(&mut held, &id, "no").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Bad requests name their field.
    let err = held
        .get_held_call(v1::GetHeldCallRequest { id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("id:"), "{}", err.message());
    let err = held
        .get_held_call(v1::GetHeldCallRequest {
            id: "no-such-call".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    for (request, field) in [
        (
            v1::ListHeldCallsRequest {
                page_size: 1001,
                ..Default::default()
            },
            "page_size:",
        ),
        (
            v1::ListHeldCallsRequest {
                state: 42,
                ..Default::default()
            },
            "state:",
        ),
        (
            v1::ListHeldCallsRequest {
                page_token: "!!!".into(),
                ..Default::default()
            },
            "page_token:",
        ),
    ] {
        let err = held.list_held_calls(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with(field), "{}", err.message());
    }

    // A pending call pinned to a stale revision is not approved.
    let q3 = json!({"soql": "SELECT Name FROM Contact"});
    let id3 = held_id(&s.call("salesforce_query", q3).await);
    let err = held
        .approve_held_call(v1::ApproveHeldCallRequest {
            id: id3.clone(),
            expected_revision: Some(99),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let listed = held
        .list_held_calls(v1::ListHeldCallsRequest {
            state: v1::HeldCallState::Pending.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.held_calls.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&id3]
    );
    assert_eq!(listed.pending_count, 1);

    // Past their expiry the pending call and the unused approval expire.
    let later = toolgate_gateway::model::now_ms() + 3 * 3600 * 1000;
    let expired = toolgate_gateway::mcp::held_calls::sweep(&w.daemon.store, later)
        .await
        .unwrap();
    assert!(
        expired.contains(&id3) && expired.contains(&id),
        "{expired:?}"
    );
    assert!(!expired.contains(&id2), "a denied call stays denied");
    let gone = get(&mut held, &id3).await;
    assert_eq!(gone.state(), v1::HeldCallState::Expired);
    assert_eq!(gone.arguments_json, "");
    assert_eq!(
        get(&mut held, &id).await.state(),
        v1::HeldCallState::Expired
    );
    let err = approve(&mut held, &id3).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let log = events(&mut w).await;
    let expiry = log
        .iter()
        .find(|e| e.action == "held_call.expire" && e.target == format!("held_call/{id3}"))
        .expect("an expiry event");
    assert_eq!(expiry.actor, "system");
    assert!(
        log.iter()
            .any(|e| e.action == "held_call.deny" && e.reason.contains(reason))
    );
    // A second sweep finds nothing more.
    assert!(
        toolgate_gateway::mcp::held_calls::sweep(&w.daemon.store, later)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_2026_07_28_a_held_call_is_input_required_and_the_approved_retry_runs_once() {
    let (mut w, token, _) = world().await;
    let mut held = held_client(&w).await;
    rule(&mut w, &["salesforce_query"], &[], 3600).await;
    let q1 = json!({"soql": Q1});
    let before = w.sf.sim.counter("query");
    let form = json!({"elicitation": {"form": {}}});
    let call = |state: Option<&str>, action: Option<&str>| {
        let mut params = json!({"name": "salesforce_query", "arguments": q1.clone()});
        if let Some(state) = state {
            params["requestState"] = json!(state);
        }
        if let Some(action) = action {
            params["inputResponses"] = json!({"await_approval": {"action": action}});
        }
        params
    };

    let first = modern_call(&w, &token, &form, call(None, None)).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let ask = &result["inputRequests"]["await_approval"];
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    assert_eq!(ask["params"]["mode"], "form");
    let listed = held
        .list_held_calls(v1::ListHeldCallsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.held_calls.len(), 1);
    let id = listed.held_calls[0].id.clone();
    assert!(
        ask["params"]["message"].as_str().unwrap().contains(&id),
        "{ask}"
    );
    let state = result["requestState"].as_str().unwrap().to_owned();

    // Retried before anyone decided: asked again, nothing runs.
    let wait = modern_call(&w, &token, &form, call(Some(&state), Some("accept"))).await;
    assert_eq!(wait["result"]["resultType"], "input_required", "{wait}");
    assert_eq!(w.sf.sim.counter("query"), before);
    let state = wait["result"]["requestState"].as_str().unwrap().to_owned();

    approve(&mut held, &id).await.unwrap();
    let ran = modern_call(&w, &token, &form, call(Some(&state), Some("accept"))).await;
    assert_ne!(ran["result"]["isError"], true, "{ran}");
    assert!(text(&ran["result"]).contains("GenePoint"), "{ran}");
    assert_eq!(w.sf.sim.counter("query"), before + 1);
    assert_eq!(get(&mut held, &id).await.state(), v1::HeldCallState::Used);

    // The same retry again does not run: a new notice says why.
    let again = modern_call(&w, &token, &form, call(Some(&state), Some("accept"))).await;
    assert_eq!(again["result"]["resultType"], "input_required", "{again}");
    let message = again["result"]["inputRequests"]["await_approval"]["params"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!("the approval of held call {id} was already used")),
        "{message}"
    );
    assert_eq!(w.sf.sim.counter("query"), before + 1);

    // Declining stops waiting: a tool error naming the held call.
    let state = again["result"]["requestState"].as_str().unwrap().to_owned();
    let stop = modern_call(&w, &token, &form, call(Some(&state), Some("decline"))).await;
    assert_eq!(stop["result"]["isError"], true, "{stop}");
    assert_ne!(stop["result"]["resultType"], "input_required");
    let new_id = held_id(&stop["result"]);
    assert_ne!(new_id, id);
    assert!(text(&stop["result"]).contains(&new_id));

    // A client without form elicitation gets the text notice.
    let url_only = json!({"elicitation": {"url": {}}});
    let plain = modern_call(&w, &token, &url_only, call(None, None)).await;
    assert_eq!(plain["result"]["isError"], true, "{plain}");
    assert_eq!(held_id(&plain["result"]), new_id);
    assert_eq!(w.sf.sim.counter("query"), before + 1);
}

/// A held call of user `u` in `state`, expiring at `expires_at`.
fn stored(
    id: &str,
    state: toolgate_gateway::model::HeldCallState,
    expires_at: i64,
) -> toolgate_gateway::model::HeldCall {
    toolgate_gateway::model::HeldCall {
        id: id.into(),
        user_id: "u".into(),
        ai_client_id: "c".into(),
        tool_id: "t".into(),
        tool: "salesforce_delete_record".into(),
        server_id: "s".into(),
        arguments_digest: "d".repeat(64),
        policy_revision: "r".repeat(64),
        state,
        created_at: 1,
        expires_at,
        decided_at: None,
        decided_by: String::new(),
        decision_reason: String::new(),
        used_at: None,
        revision: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_use_an_approval_once_and_expire_a_call_once() {
    use toolgate_gateway::crypto::MasterKey;
    use toolgate_gateway::mcp::held_calls::{ConsumeError, consume, sweep};
    use toolgate_gateway::model::{HeldCall, HeldCallState, User, UserStatus, now_ms};
    use toolgate_gateway::store::{Batch, PgOptions, Store, StoreError};

    let db = toolgate_pgtemp::TestDatabase::create().await;
    let key = || MasterKey::parse(&"11".repeat(32), "test").unwrap();
    let a = Store::open_postgres(db.url(), key(), PgOptions::default())
        .await
        .unwrap();
    let b = Store::open_postgres(db.url(), key(), PgOptions::default())
        .await
        .unwrap();
    let now = now_ms();
    let approved = stored("h1", HeldCallState::Approved, now + 3_600_000);
    let pending = stored("h2", HeldCallState::Pending, now + 3_600_000);
    let user = User {
        id: "u".into(),
        email: "u@example.com".into(),
        display_name: "U".into(),
        status: UserStatus::Active,
        created_at: 1,
        updated_at: 1,
    };
    a.write(|_| async {
        let mut batch = Batch::default();
        batch.put(&user);
        for call in [&approved, &pending] {
            batch.put(call);
            batch.put_secret(&HeldCall::arguments_key(&call.id), br#"{"record_id":"x"}"#);
        }
        Ok::<_, StoreError>((batch, ()))
    })
    .await
    .unwrap();

    // Both replicas try to use the approval at once: one does.
    let (x, y) = tokio::join!(consume(&a, "h1"), consume(&b, "h1"));
    let used: Vec<_> = [&x, &y].into_iter().filter(|r| r.is_ok()).collect();
    assert_eq!(used.len(), 1, "{x:?} {y:?}");
    assert!(
        [&x, &y]
            .into_iter()
            .any(|r| matches!(r, Err(ConsumeError::Gone(id)) if id == "h1"))
    );
    let after = b.get::<HeldCall>("h1").await.unwrap().unwrap();
    assert_eq!(after.state, HeldCallState::Used);
    assert!(after.used_at.is_some());
    assert_eq!(after.revision, 3);
    assert!(
        b.secret(&HeldCall::arguments_key("h1"))
            .await
            .unwrap()
            .is_none()
    );

    // Both replicas sweep at once past the expiry: the pending call expires once.
    let later = now + 2 * 3_600_000;
    let (ea, eb) = tokio::join!(sweep(&a, later), sweep(&b, later));
    let mut expired = ea.unwrap();
    expired.extend(eb.unwrap());
    assert_eq!(expired, ["h2"]);
    let gone = a.get::<HeldCall>("h2").await.unwrap().unwrap();
    assert_eq!(gone.state, HeldCallState::Expired);
    assert!(
        a.secret(&HeldCall::arguments_key("h2"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        a.get::<HeldCall>("h1").await.unwrap().unwrap().state,
        HeldCallState::Used,
        "a used call stays used"
    );
}
