//! Tool-call hooks end to end (issue 15): `HookService` over gRPC
//! (validation naming fields, the secret never answered or audited, run
//! order, revisions, the dry run) and hooks on real MCP calls through an
//! rmcp client against sfsim: PII redacted in results (structured and
//! text) and never in the audit log; a query over a denied object refused
//! before it reaches sfsim (its request counter proves it); a write outside
//! its window refused; a webhook (a local axum server checking the HMAC
//! signature) that allows, denies, mutates, errors and times out. Daemon
//! in-process on port 0.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Fixture, Org};
use hmac::{Hmac, Mac};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use toolgate_proto::v1;
use v1::hook::Config;
use v1::hook_service_client::HookServiceClient;

const ANA_SF: &str = "ana.souza@acme-demo.example";
const SECRET: &str = "a-webhook-secret-of-32-characters";

type Hooks = HookServiceClient<InterceptedService<Channel, common::AdminToken>>;
type Client = RunningService<RoleClient, ClientConfig>;

async fn hook_client(f: &Fixture<Org>) -> Hooks {
    let channel = toolgate_proto::admin::endpoint(&f.daemon.grpc_addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    HookServiceClient::with_interceptor(channel, common::admin(&f.admin_token))
}

fn hook(name: &str, phase: v1::HookPhase, config: Config) -> v1::Hook {
    v1::Hook {
        name: name.into(),
        phase: phase.into(),
        enabled: true,
        config: Some(config),
        ..Default::default()
    }
}

async fn create(hooks: &mut Hooks, hook: v1::Hook, secret: Option<&str>) -> v1::Hook {
    hooks
        .create_hook(v1::CreateHookRequest {
            hook: Some(hook),
            webhook_secret: secret.map(str::to_owned),
        })
        .await
        .unwrap()
        .into_inner()
        .hook
        .unwrap()
}

async fn create_err(hooks: &mut Hooks, hook: v1::Hook, secret: Option<&str>) -> tonic::Status {
    hooks
        .create_hook(v1::CreateHookRequest {
            hook: Some(hook),
            webhook_secret: secret.map(str::to_owned),
        })
        .await
        .unwrap_err()
}

/// Every audit event (newest first) whose action starts with `action`.
async fn audit(f: &mut Fixture<Org>, action: &str) -> Vec<(v1::AuditEvent, Value)> {
    f.admin
        .audit
        .list_events(v1::ListEventsRequest {
            action_prefix: action.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .map(|e| {
            let d = serde_json::from_str(&e.details_json).unwrap_or(Value::Null);
            (e, d)
        })
        .collect()
}

/// The `details.hooks` of the newest tool-call audit event.
async fn last_hooks(f: &mut Fixture<Org>) -> Value {
    let events = audit(f, "tool.call").await;
    events[0].1["hooks"].clone()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn call(client: &Client, name: &str, arguments: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments.as_object().cloned();
    client.call_tool(params).await.unwrap()
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
    let done = http.get(callback).send().await.unwrap();
    assert!(done.status().is_success(), "{}", done.status());
}

/// A daemon with sfsim, a user granted every tool and connected to
/// Salesforce as Ana, and an MCP client of theirs.
async fn connected() -> (Fixture<Org>, Client) {
    let mut f = Fixture::salesforce(|sim| sim.auto_consent = false).await;
    let all = f.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = f.user("ana@example.com", &all).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(f.mcp_url.clone()).auth_header(token),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let first = call(&client, "salesforce_get_user_info", json!({})).await;
    let message = text(&first);
    let link = message
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap()
        .trim_end_matches([',', '.']);
    connect(&f.sf.sim.login_url, link, ANA_SF).await;
    let me = call(&client, "salesforce_get_user_info", json!({})).await;
    assert_ne!(me.is_error, Some(true), "{}", text(&me));
    (f, client)
}

/// What the test webhook answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Allow,
    Deny,
    Mutate,
    MutateResult,
    Fail,
    Hang,
}

#[derive(Clone)]
struct Receiver {
    mode: Arc<Mutex<Mode>>,
    /// Each request: (signature valid, payload).
    seen: Arc<Mutex<Vec<(bool, Value)>>>,
    /// Held by the test: a hanging answer waits for it (never sent while
    /// the hook is waiting, so the hook times out).
    release: Arc<Notify>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let ts = headers["x-toolgate-timestamp"].to_str().unwrap().to_owned();
    let sig = headers["x-toolgate-signature"].to_str().unwrap().to_owned();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let expected = hex::decode(sig.trim_start_matches("sha256=")).unwrap_or_default();
    let valid = mac.verify_slice(&expected).is_ok();
    let payload: Value = serde_json::from_str(&body).unwrap();
    r.seen.lock().unwrap().push((valid, payload.clone()));
    let mode = *r.mode.lock().unwrap();
    match mode {
        Mode::Allow => (StatusCode::OK, json!({"decision": "allow"}).to_string()),
        Mode::Deny => (
            StatusCode::OK,
            json!({"decision": "deny", "reason": "change freeze until Friday"}).to_string(),
        ),
        Mode::Mutate => {
            let mut arguments = payload["arguments"].clone();
            arguments["soql"] = json!("SELECT Id, Name FROM Account ORDER BY Name LIMIT 1");
            (
                StatusCode::OK,
                json!({"decision": "mutate", "arguments": arguments}).to_string(),
            )
        }
        Mode::MutateResult => (
            StatusCode::OK,
            json!({"decision": "mutate", "result": {"total_size": 0, "done": true, "records": []}})
                .to_string(),
        ),
        Mode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
        Mode::Hang => {
            r.release.notified().await;
            (StatusCode::OK, json!({"decision": "allow"}).to_string())
        }
    }
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver {
        mode: Arc::new(Mutex::new(Mode::Allow)),
        seen: Arc::default(),
        release: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hook_service_validates_stores_and_dry_runs() {
    let mut f = Fixture::salesforce(|_| {}).await;
    let mut hooks = hook_client(&f).await;
    let (rx, url) = receiver().await;

    // Validation names the field.
    let cases: Vec<(v1::Hook, Option<&str>, &str)> = vec![
        (
            hook(
                "pii",
                v1::HookPhase::Before,
                Config::PiiRedaction(v1::PiiRedactionConfig {
                    fields: vec!["Email".into()],
                    ..Default::default()
                }),
            ),
            None,
            "hook.phase: a PII redaction hook runs AFTER only",
        ),
        (
            hook(
                "ww",
                v1::HookPhase::Before,
                Config::WriteWindow(v1::WriteWindowConfig {
                    start_minute: 540,
                    end_minute: 1020,
                    time_zone: "Europe/Atlantis".into(),
                    ..Default::default()
                }),
            ),
            None,
            "hook.write_window.time_zone:",
        ),
        (
            hook(
                "ww",
                v1::HookPhase::Before,
                Config::WriteWindow(v1::WriteWindowConfig {
                    start_minute: 1440,
                    end_minute: 1440,
                    time_zone: "UTC".into(),
                    ..Default::default()
                }),
            ),
            None,
            "hook.write_window.start_minute:",
        ),
        (
            hook(
                "wh",
                v1::HookPhase::Before,
                Config::Webhook(v1::WebhookConfig {
                    url: "http://hooks.example.com/x".into(),
                    ..Default::default()
                }),
            ),
            Some(SECRET),
            "hook.webhook.url: must use https://",
        ),
        (
            hook(
                "wh",
                v1::HookPhase::Before,
                Config::Webhook(v1::WebhookConfig {
                    url: url.clone(),
                    ..Default::default()
                }),
            ),
            Some("too-short"),
            "webhook_secret: must be 16 to 256 characters",
        ),
        (
            hook(
                "wh",
                v1::HookPhase::Before,
                Config::Webhook(v1::WebhookConfig {
                    url: url.clone(),
                    ..Default::default()
                }),
            ),
            None,
            "webhook_secret: is required for a webhook hook",
        ),
        (
            hook(
                "cards",
                v1::HookPhase::Before,
                Config::CardBlocking(v1::CardBlockingConfig {}),
            ),
            Some(SECRET),
            "webhook_secret: only a webhook hook has a secret",
        ),
        (
            v1::Hook {
                filter: Some(v1::HookFilter {
                    server_ids: vec!["no-such-server".into()],
                    ..Default::default()
                }),
                ..hook(
                    "cards",
                    v1::HookPhase::Before,
                    Config::CardBlocking(v1::CardBlockingConfig {}),
                )
            },
            None,
            "hook.filter.server_ids[0]: no server no-such-server",
        ),
        (
            v1::Hook {
                timeout_ms: 60_000,
                ..hook(
                    "cards",
                    v1::HookPhase::Before,
                    Config::CardBlocking(v1::CardBlockingConfig {}),
                )
            },
            None,
            "hook.timeout_ms:",
        ),
    ];
    for (h, secret, message) in cases {
        let err = create_err(&mut hooks, h, secret).await;
        assert_eq!(err.code(), Code::InvalidArgument, "{message}: {err:?}");
        assert!(err.message().starts_with(message), "{}", err.message());
    }

    // Create: defaults filled, the secret never answered.
    let scope = create(
        &mut hooks,
        v1::Hook {
            priority: 5,
            ..hook(
                "scope",
                v1::HookPhase::Before,
                Config::QueryScope(v1::QueryScopeConfig {
                    deny_objects: vec!["Lead".into()],
                    max_limit: Some(100),
                    ..Default::default()
                }),
            )
        },
        None,
    )
    .await;
    assert_eq!(scope.timeout_ms, 2000);
    assert_eq!(scope.revision, 1);
    let web = create(
        &mut hooks,
        v1::Hook {
            priority: 1,
            filter: Some(v1::HookFilter {
                tools: vec!["salesforce_query".into()],
                ..Default::default()
            }),
            ..hook(
                "gate",
                v1::HookPhase::Before,
                Config::Webhook(v1::WebhookConfig {
                    url: url.clone(),
                    ..Default::default()
                }),
            )
        },
        Some(SECRET),
    )
    .await;
    let Some(Config::Webhook(w)) = &web.config else {
        panic!("{web:?}")
    };
    assert!(w.secret_set_at.is_some());
    assert_eq!(w.secret_fingerprint.len(), 8);
    let pii = create(
        &mut hooks,
        hook(
            "pii",
            v1::HookPhase::After,
            Config::PiiRedaction(v1::PiiRedactionConfig {
                fields: vec!["Email".into()],
                patterns: vec![v1::PiiPattern::Phone.into()],
                ..Default::default()
            }),
        ),
        None,
    )
    .await;
    let dup = create_err(
        &mut hooks,
        hook(
            "PII",
            v1::HookPhase::Before,
            Config::CardBlocking(v1::CardBlockingConfig {}),
        ),
        None,
    )
    .await;
    assert_eq!(dup.code(), Code::AlreadyExists);

    // Listed in run order: BEFORE by priority, then AFTER.
    let listed: Vec<String> = hooks
        .list_hooks(v1::ListHooksRequest {})
        .await
        .unwrap()
        .into_inner()
        .hooks
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(listed, ["gate", "scope", "pii"]);

    // Update: revision checked, secret kept unless given.
    let stale = hooks
        .update_hook(v1::UpdateHookRequest {
            hook: Some(v1::Hook {
                priority: 9,
                ..scope.clone()
            }),
            webhook_secret: None,
            expected_revision: Some(7),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let updated = hooks
        .update_hook(v1::UpdateHookRequest {
            hook: Some(v1::Hook {
                priority: 9,
                ..web.clone()
            }),
            webhook_secret: None,
            expected_revision: Some(1),
        })
        .await
        .unwrap()
        .into_inner()
        .hook
        .unwrap();
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.config, web.config, "the secret was kept");

    // The secret is in no answer and no audit event.
    let events = audit(&mut f, "hook.").await;
    assert_eq!(events.len(), 4, "3 creates and 1 update");
    for (e, d) in &events {
        assert!(!e.details_json.contains(SECRET), "{}", e.details_json);
        assert!(e.target.starts_with("hook/"));
        assert!(d["name"].is_string());
    }
    let got = hooks
        .get_hook(v1::GetHookRequest { id: web.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{got:?}").contains(SECRET));

    // Dry runs: a stored PII hook on a sample result.
    let run = hooks
        .test_hook(v1::TestHookRequest {
            id: pii.id.clone(),
            tool: "salesforce_query".into(),
            result_json:
                json!({"records": [{"Email": "x@y.example", "Note": "call 415-555-0100"}]})
                    .to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(run.matches);
    assert_eq!(run.outcome(), v1::HookOutcome::Mutated);
    let out: Value = serde_json::from_str(&run.output_json).unwrap();
    assert_eq!(
        out["records"][0],
        json!({"Email": "[REDACTED]", "Note": "call [REDACTED]"})
    );
    assert_eq!(run.redactions["Email"], 1);
    assert_eq!(run.redactions["pattern:PHONE"], 1);

    // A stored query scope on a query over a denied object.
    let run = hooks
        .test_hook(v1::TestHookRequest {
            id: scope.id.clone(),
            tool: "salesforce_query".into(),
            arguments_json: json!({"soql": "SELECT Id FROM Lead LIMIT 5"}).to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.outcome(), v1::HookOutcome::Denied);
    assert!(run.reason.contains("Lead"), "{}", run.reason);

    // An inline webhook: called with dry_run, signed.
    *rx.mode.lock().unwrap() = Mode::Deny;
    let run = hooks
        .test_hook(v1::TestHookRequest {
            hook: Some(hook(
                "try",
                v1::HookPhase::Before,
                Config::Webhook(v1::WebhookConfig {
                    url: url.clone(),
                    ..Default::default()
                }),
            )),
            webhook_secret: Some(SECRET.into()),
            tool: "salesforce_create_record".into(),
            arguments_json: json!({"object_name": "Account", "fields": {"Name": "X"}}).to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.outcome(), v1::HookOutcome::Denied);
    assert_eq!(run.reason, "change freeze until Friday");
    {
        let seen = rx.seen.lock().unwrap();
        let (valid, payload) = seen.last().unwrap();
        assert!(valid, "the signature verifies");
        assert_eq!(payload["dry_run"], true);
        assert_eq!(payload["phase"], "before");
        assert_eq!(payload["tool"]["name"], "salesforce_create_record");
        assert_eq!(payload["arguments"]["fields"]["Name"], "X");
    }

    // An inline card-blocking hook: the reason names the argument, not
    // the number.
    let run = hooks
        .test_hook(v1::TestHookRequest {
            hook: Some(hook(
                "cards",
                v1::HookPhase::Before,
                Config::CardBlocking(v1::CardBlockingConfig {}),
            )),
            tool: "salesforce_create_record".into(),
            arguments_json: json!({"object_name": "Case", "fields": {
                "Subject": "refund", "Description": "card 4111-1111-1111-1111 exp 12/29"}})
            .to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.outcome(), v1::HookOutcome::Denied);
    assert!(run.reason.contains("fields.Description"), "{}", run.reason);
    assert!(!run.reason.contains("4111"), "{}", run.reason);

    // Dry-run errors.
    let both = hooks
        .test_hook(v1::TestHookRequest {
            id: scope.id.clone(),
            hook: Some(scope.clone()),
            tool: "salesforce_query".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument);
    let bad_json = hooks
        .test_hook(v1::TestHookRequest {
            id: scope.id.clone(),
            tool: "salesforce_query".into(),
            arguments_json: "[1]".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        bad_json
            .message()
            .starts_with("arguments_json: must be a JSON object")
    );
    let no_tool = hooks
        .test_hook(v1::TestHookRequest {
            id: scope.id.clone(),
            tool: "salesforce_nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_tool.code(), Code::NotFound);

    // Delete.
    hooks
        .delete_hook(v1::DeleteHookRequest { id: web.id.clone() })
        .await
        .unwrap();
    let gone = hooks
        .get_hook(v1::GetHookRequest { id: web.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let events = audit(&mut f, "hook.delete").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["kind"], "webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hooks_on_mcp_calls_against_sfsim() {
    let (mut f, client) = connected().await;
    let mut hooks = hook_client(&f).await;

    // PII: a contact with an email, a phone and an SSN in its title.
    let created = call(
        &client,
        "salesforce_create_record",
        json!({"object_name": "Contact", "fields": {
            "LastName": "Pii", "Email": "zoe.pii@example.com",
            "Phone": "(415) 555-0142", "Title": "SSN 123-45-6789"}}),
    )
    .await;
    assert_ne!(created.is_error, Some(true), "{}", text(&created));
    let pii = create(
        &mut hooks,
        hook(
            "redact contacts",
            v1::HookPhase::After,
            Config::PiiRedaction(v1::PiiRedactionConfig {
                fields: vec!["email".into()],
                patterns: vec![
                    v1::PiiPattern::Phone.into(),
                    v1::PiiPattern::NationalId.into(),
                ],
                ..Default::default()
            }),
        ),
        None,
    )
    .await;
    let result = call(
        &client,
        "salesforce_query",
        json!({"soql": "SELECT Id, Email, Phone, Title FROM Contact WHERE LastName = 'Pii' LIMIT 5"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let record = &result.structured_content.as_ref().unwrap()["records"][0];
    assert_eq!(record["Email"], "[REDACTED]");
    assert_eq!(record["Phone"], "[REDACTED]");
    assert_eq!(record["Title"], "SSN [REDACTED]");
    let shown = text(&result);
    for secret in ["zoe.pii@example.com", "555-0142", "123-45-6789"] {
        assert!(
            !shown.contains(secret),
            "{secret} leaked in the text: {shown}"
        );
    }
    assert!(shown.contains("[REDACTED]"), "{shown}");
    assert_eq!(
        last_hooks(&mut f).await,
        json!([{"name": "redact contacts", "phase": "AFTER", "outcome": "MUTATED", "reason": "",
                "redactions": {"email": 1, "pattern:PHONE": 1, "pattern:NATIONAL_ID": 1}}])
    );
    for (e, _) in audit(&mut f, "").await {
        for secret in ["zoe.pii@example.com", "555-0142", "123-45-6789"] {
            assert!(
                !e.details_json.contains(secret),
                "{secret} in the audit log: {}",
                e.details_json
            );
            assert!(!e.reason.contains(secret));
        }
    }
    hooks
        .delete_hook(v1::DeleteHookRequest { id: pii.id })
        .await
        .unwrap();

    // Query scope: refused before sfsim sees it.
    let scope = create(
        &mut hooks,
        hook(
            "no leads",
            v1::HookPhase::Before,
            Config::QueryScope(v1::QueryScopeConfig {
                deny_objects: vec!["Lead".into()],
                max_limit: Some(50),
                ..Default::default()
            }),
        ),
        None,
    )
    .await;
    let before = f.sf.sim.counter("query");
    let refused = call(
        &client,
        "salesforce_query",
        json!({"soql": "SELECT Id FROM Account WHERE Id IN (SELECT ConvertedAccountId FROM Lead) LIMIT 5"}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).starts_with("toolgate hook \"no leads\" refused this call: it touches Lead"),
        "{}",
        text(&refused)
    );
    let unlimited = call(
        &client,
        "salesforce_query",
        json!({"soql": "SELECT Id FROM Account"}),
    )
    .await;
    assert!(
        text(&unlimited).contains("needs LIMIT 50 or lower"),
        "{}",
        text(&unlimited)
    );
    assert_eq!(f.sf.sim.counter("query"), before, "sfsim saw no query");
    let denied = audit(&mut f, "tool.call").await;
    assert_eq!(denied[0].0.outcome(), v1::Outcome::Denied);
    assert_eq!(denied[0].1["hooks"][0]["outcome"], "DENIED");
    assert_eq!(denied[0].1["hooks"][0]["name"], "no leads");
    let fine = call(
        &client,
        "salesforce_query",
        json!({"soql": "SELECT Id FROM Account LIMIT 3"}),
    )
    .await;
    assert_ne!(fine.is_error, Some(true), "{}", text(&fine));
    assert_eq!(f.sf.sim.counter("query"), before + 1);
    hooks
        .delete_hook(v1::DeleteHookRequest { id: scope.id })
        .await
        .unwrap();

    // Write window: closed today (every day but today, UTC).
    let today = chrono::Utc::now().date_naive().format("%u").to_string();
    let days: Vec<i32> = (1..=7).filter(|d| d.to_string() != today).collect();
    let window = create(
        &mut hooks,
        hook(
            "office hours",
            v1::HookPhase::Before,
            Config::WriteWindow(v1::WriteWindowConfig {
                days,
                start_minute: 0,
                end_minute: 1440,
                time_zone: "UTC".into(),
            }),
        ),
        None,
    )
    .await;
    let creates = f.sf.sim.counter("record_create");
    let refused = call(
        &client,
        "salesforce_create_record",
        json!({"object_name": "Account", "fields": {"Name": "After hours"}}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("write and delete tools may run only")
            && text(&refused).contains("it opens next at"),
        "{}",
        text(&refused)
    );
    assert_eq!(f.sf.sim.counter("record_create"), creates);
    // Reads pass the window.
    let read = call(
        &client,
        "salesforce_query",
        json!({"soql": "SELECT Id FROM Account LIMIT 1"}),
    )
    .await;
    assert_ne!(read.is_error, Some(true), "{}", text(&read));
    hooks
        .delete_hook(v1::DeleteHookRequest { id: window.id })
        .await
        .unwrap();

    // Webhook: allow, deny, mutate, error, timeout.
    let (rx, url) = receiver().await;
    let web = create(
        &mut hooks,
        v1::Hook {
            timeout_ms: 1500,
            filter: Some(v1::HookFilter {
                tools: vec!["salesforce_q*".into()],
                ..Default::default()
            }),
            ..hook(
                "freeze",
                v1::HookPhase::Before,
                Config::Webhook(v1::WebhookConfig {
                    url,
                    ..Default::default()
                }),
            )
        },
        Some(SECRET),
    )
    .await;
    let q = json!({"soql": "SELECT Id, Name FROM Account ORDER BY Name LIMIT 4"});
    let records = |r: &CallToolResult| {
        r.structured_content.as_ref().unwrap()["records"]
            .as_array()
            .unwrap()
            .len()
    };

    *rx.mode.lock().unwrap() = Mode::Allow;
    let allowed = call(&client, "salesforce_query", q.clone()).await;
    assert_ne!(allowed.is_error, Some(true), "{}", text(&allowed));
    assert_eq!(records(&allowed), 4);
    assert_eq!(last_hooks(&mut f).await[0]["outcome"], "ALLOWED");
    {
        let seen = rx.seen.lock().unwrap();
        let (valid, payload) = seen.last().unwrap();
        assert!(valid);
        assert_eq!(payload["dry_run"], false);
        assert_eq!(payload["user"]["email"], "ana@example.com");
        assert_eq!(payload["arguments"], q);
        assert_eq!(payload["hook"]["name"], "freeze");
    }

    *rx.mode.lock().unwrap() = Mode::Deny;
    let denied = call(&client, "salesforce_query", q.clone()).await;
    assert_eq!(denied.is_error, Some(true));
    assert_eq!(
        text(&denied),
        "toolgate hook \"freeze\" refused this call: change freeze until Friday"
    );

    *rx.mode.lock().unwrap() = Mode::Mutate;
    let mutated = call(&client, "salesforce_query", q.clone()).await;
    assert_ne!(mutated.is_error, Some(true), "{}", text(&mutated));
    assert_eq!(records(&mutated), 1, "the webhook's LIMIT 1 ran");
    assert_eq!(last_hooks(&mut f).await[0]["outcome"], "MUTATED");

    *rx.mode.lock().unwrap() = Mode::Fail;
    let before = f.sf.sim.counter("query");
    let failed = call(&client, "salesforce_query", q.clone()).await;
    assert_eq!(failed.is_error, Some(true));
    assert!(
        text(&failed).contains("failed (the webhook answered HTTP 500)"),
        "{}",
        text(&failed)
    );
    let hooks_audit = last_hooks(&mut f).await;
    assert_eq!(hooks_audit[0]["outcome"], "ERROR");
    assert_eq!(hooks_audit[0]["reason"], "the webhook answered HTTP 500");

    *rx.mode.lock().unwrap() = Mode::Hang;
    let late = call(&client, "salesforce_query", q.clone()).await;
    assert_eq!(late.is_error, Some(true));
    assert!(
        text(&late).contains("did not answer in time"),
        "{}",
        text(&late)
    );
    let hooks_audit = last_hooks(&mut f).await;
    assert_eq!(hooks_audit[0]["outcome"], "TIMEOUT");
    assert_eq!(f.sf.sim.counter("query"), before, "neither reached sfsim");
    rx.release.notify_waiters();

    // The same webhook AFTER the call (its secret kept by the update):
    // it rewrites the result, then blocks one.
    let after = hooks
        .update_hook(v1::UpdateHookRequest {
            hook: Some(v1::Hook {
                phase: v1::HookPhase::After.into(),
                ..web.clone()
            }),
            webhook_secret: None,
            expected_revision: Some(web.revision),
        })
        .await
        .unwrap()
        .into_inner()
        .hook
        .unwrap();
    assert_eq!(after.phase(), v1::HookPhase::After);
    *rx.mode.lock().unwrap() = Mode::MutateResult;
    let rewritten = call(&client, "salesforce_query", q.clone()).await;
    assert_ne!(rewritten.is_error, Some(true), "{}", text(&rewritten));
    assert_eq!(records(&rewritten), 0);
    assert!(
        text(&rewritten).contains(r#""records":[]"#),
        "{}",
        text(&rewritten)
    );
    {
        let seen = rx.seen.lock().unwrap();
        let (valid, payload) = seen.last().unwrap();
        assert!(valid);
        assert_eq!(payload["phase"], "after");
        assert_eq!(payload["result"]["records"].as_array().unwrap().len(), 4);
        assert!(payload.get("arguments").is_none());
    }
    assert_eq!(last_hooks(&mut f).await[0]["outcome"], "MUTATED");
    *rx.mode.lock().unwrap() = Mode::Deny;
    let ran = f.sf.sim.counter("query");
    let blocked = call(&client, "salesforce_query", q.clone()).await;
    assert_eq!(blocked.is_error, Some(true));
    assert!(
        text(&blocked).starts_with(
            "toolgate hook \"freeze\" refused this result: change freeze until Friday"
        ) && text(&blocked).contains("the tool did run in Salesforce"),
        "{}",
        text(&blocked)
    );
    assert_eq!(
        f.sf.sim.counter("query"),
        ran + 1,
        "the call ran; its result was withheld"
    );
    let last = audit(&mut f, "tool.call").await;
    assert_eq!(last[0].0.outcome(), v1::Outcome::Denied);
    assert_eq!(last[0].1["hooks"][0]["phase"], "AFTER");
    assert_eq!(last[0].1["hooks"][0]["outcome"], "DENIED");

    // Every webhook request was signed.
    assert!(rx.seen.lock().unwrap().iter().all(|(valid, _)| *valid));
    // Other tools are outside its filter.
    let me = call(&client, "salesforce_get_user_info", json!({})).await;
    assert_ne!(me.is_error, Some(true));
    assert_eq!(audit(&mut f, "tool.call").await[0].1.get("hooks"), None);
    hooks
        .delete_hook(v1::DeleteHookRequest { id: web.id })
        .await
        .unwrap();
    client.cancel().await.unwrap();
}
