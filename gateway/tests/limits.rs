//! Tool-call limits end to end, against sfsim: a call over a rate or
//! concurrency limit, or in an org over the API-usage guard, is refused
//! with a tool error saying which limit and when to retry, audited, and
//! never reaches Salesforce (sfsim's API usage does not move); per-profile
//! overrides; and the limits' validation through gRPC.

mod common;

use std::collections::HashMap;

use common::raw_mcp;
use common::{Fixture, Org};
use serde_json::{Value, json};
use tonic::Code;
use toolgate_proto::v1;

type World = Fixture<Org>;

const ANA_SF: &str = "ana.souza@acme-demo.example";
const Q1: &str = "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'";

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

fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {result}"))
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
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
    let done = http.get(callback).send().await.unwrap();
    assert!(done.status().is_success(), "{}", done.status());
}

/// A daemon and sfsim, and user ana (every approved tool, through her own
/// profile) connected to Salesforce; answers ana's token and profile id.
async fn world() -> (World, String, String) {
    let mut w = Fixture::salesforce(|sim| sim.auto_consent = false).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, profile_id, token) = w.user("ana@example.com", &all).await;
    let mut session = Session::open(&w.mcp_url, &token).await;
    let prompt = session.call("salesforce_get_limits", json!({})).await;
    connect(&w.sf.sim.login_url, &link_in(&text(&prompt)), ANA_SF).await;
    (w, token, profile_id)
}

fn rate(calls_per_minute: u32, burst: u32, max_concurrent: u32) -> v1::CallLimit {
    v1::CallLimit {
        rate: Some(v1::RateLimit {
            calls_per_minute,
            burst,
        }),
        max_concurrent,
    }
}

fn unlimited() -> v1::LimitSettings {
    v1::LimitSettings {
        per_user: Some(rate(0, 0, 0)),
        per_tool: Some(rate(0, 0, 0)),
        per_server: Some(rate(0, 0, 0)),
        ..Default::default()
    }
}

async fn set_limits(
    w: &mut World,
    limits: v1::LimitSettings,
) -> Result<v1::Settings, tonic::Status> {
    w.admin
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            limits: Some(limits),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().settings.unwrap())
}

/// sfsim's count of REST calls against its daily API limit.
fn api_usage(w: &World) -> u64 {
    w.sf.sim.sim.lock().api_usage
}

/// The newest `tool.call` audit event.
async fn last_call_event(w: &mut World) -> v1::AuditEvent {
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
        .into_iter()
        .filter(|e| e.action == "tool.call")
        .max_by_key(|e| e.sequence)
        .expect("a tool.call event")
}

fn details(event: &v1::AuditEvent) -> Value {
    serde_json::from_str(&event.details_json).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_users_rate_is_refused_audited_and_never_reaches_salesforce() {
    let (mut w, token, profile_id) = world().await;
    set_limits(
        &mut w,
        v1::LimitSettings {
            per_user: Some(rate(1, 1, 0)),
            ..unlimited()
        },
    )
    .await
    .unwrap();
    let mut s = Session::open(&w.mcp_url, &token).await;
    let first = s.call("salesforce_get_limits", json!({})).await;
    assert_ne!(first["isError"], true, "{first}");

    // The bucket of one is empty: the next call waits about a minute.
    let before = api_usage(&w);
    let refused = s.call("salesforce_query", json!({"soql": Q1})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    let message = text(&refused);
    assert!(
        message.starts_with(
            "rate limit reached: you may make at most 1 calls per minute (bursts of 1) through toolgate; retry after "
        ),
        "{message}"
    );
    let secs: u64 = message
        .rsplit("retry after ")
        .next()
        .and_then(|t| t.strip_suffix(" s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!((50..=60).contains(&secs), "{message}");
    let meta = &refused["_meta"]["toolgate/rate_limit"];
    assert_eq!(meta["scope"], "user", "{refused}");
    assert_eq!(meta["limit"], "rate");
    assert_eq!(meta["code"], 429);
    let retry_ms = meta["retry_after_ms"].as_u64().unwrap();
    assert!((50_000..=60_000).contains(&retry_ms), "{retry_ms}");
    assert_eq!(api_usage(&w), before, "the refused call reached sfsim");

    let event = last_call_event(&mut w).await;
    assert_eq!(event.outcome, v1::Outcome::Denied as i32);
    assert_eq!(
        event.reason,
        "user rate limit: 1 calls per minute (bursts of 1)"
    );
    assert!(
        event.target.contains("salesforce_query"),
        "{}",
        event.target
    );
    let rate_limit = &details(&event)["rate_limit"];
    assert_eq!(rate_limit["scope"], "user");
    assert_eq!(rate_limit["limit"], "rate");
    assert_eq!(rate_limit["retry_after_ms"].as_u64(), Some(retry_ms));
    assert!(
        !event.details_json.contains("GenePoint"),
        "{}",
        event.details_json
    );

    // A profile override replaces the gateway-wide per-user limit for its
    // holders (the change takes effect on the next call).
    let mut limits = v1::LimitSettings {
        per_user: Some(rate(1, 1, 0)),
        ..unlimited()
    };
    limits
        .profile_overrides
        .insert(profile_id.clone(), rate(2, 3, 0));
    set_limits(&mut w, limits).await.unwrap();
    for _ in 0..3 {
        let ok = s.call("salesforce_query", json!({"soql": Q1})).await;
        assert_ne!(ok["isError"], true, "{ok}");
    }
    assert!(api_usage(&w) > before);
    let fourth = s.call("salesforce_query", json!({"soql": Q1})).await;
    assert!(
        text(&fourth).contains("at most 2 calls per minute (bursts of 3)"),
        "{fourth}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_concurrency_limit_is_refused_while_another_runs() {
    let (mut w, token, _) = world().await;
    set_limits(
        &mut w,
        v1::LimitSettings {
            per_user: Some(rate(0, 0, 1)),
            ..unlimited()
        },
    )
    .await
    .unwrap();
    // Every sfsim REST call takes 3 s: the first call stays in flight.
    {
        let mut state = w.sf.sim.sim.lock();
        state.faults.latency_ms = 3000;
        state.faults.latency_every = 1;
    }
    let queries = w.sf.sim.counter("query");
    let mut first_session = Session::open(&w.mcp_url, &token).await;
    let first = tokio::spawn(async move {
        first_session
            .call("salesforce_query", json!({"soql": Q1}))
            .await
    });
    // Wait (bounded) until the first call has reached sfsim.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while w.sf.sim.counter("query") == queries {
        assert!(
            std::time::Instant::now() < deadline,
            "the first call never reached sfsim"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = api_usage(&w);
    let mut s = Session::open(&w.mcp_url, &token).await;
    let refused = s.call("salesforce_get_limits", json!({})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(
        text(&refused),
        "concurrency limit reached: you may have at most 1 tool calls running at once through toolgate; retry when one of your calls finishes"
    );
    let meta = &refused["_meta"]["toolgate/rate_limit"];
    assert_eq!(meta["scope"], "user");
    assert_eq!(meta["limit"], "concurrency");
    assert_eq!(meta["retry_after_ms"], Value::Null);
    assert_eq!(api_usage(&w), before);
    let event = last_call_event(&mut w).await;
    assert_eq!(event.outcome, v1::Outcome::Denied as i32);
    assert_eq!(event.reason, "user concurrency limit: 1 calls at once");

    let done = first.await.unwrap();
    assert_ne!(done["isError"], true, "{done}");
    w.sf.sim.sim.lock().faults.latency_ms = 0;
    // The slot is free again.
    let again = s.call("salesforce_get_limits", json!({})).await;
    assert_ne!(again["isError"], true, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_org_guard_keeps_the_last_api_requests_for_essential_tools() {
    let (mut w, token, _) = world().await;
    set_limits(
        &mut w,
        v1::LimitSettings {
            org_api_usage_max_percent: 90,
            ..unlimited()
        },
    )
    .await
    .unwrap();
    // The org is one request short of 91% of its 15,000 daily requests.
    w.sf.sim.sim.lock().api_usage = 13_649;
    let mut s = Session::open(&w.mcp_url, &token).await;
    // toolgate learns the usage from this call's Sforce-Limit-Info.
    let learn = s.call("salesforce_get_limits", json!({})).await;
    assert_ne!(learn["isError"], true, "{learn}");
    let used = api_usage(&w);
    assert!(used >= 13_650, "{used}");

    let refused = s.call("salesforce_query", json!({"soql": Q1})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    let message = text(&refused);
    let shown = format!("({},{:03} of 15,000)", used / 1000, used % 1000);
    assert!(
        message.starts_with("the Salesforce org has used 91% of its daily API requests ")
            && message.contains(&shown)
            && message.contains("toolgate keeps the rest for essential tools"),
        "{message}"
    );
    assert_eq!(refused["_meta"]["toolgate/rate_limit"]["scope"], "org");
    assert_eq!(
        refused["_meta"]["toolgate/rate_limit"]["limit"],
        "org_api_usage"
    );
    assert_eq!(api_usage(&w), used, "the refused call reached sfsim");
    let event = last_call_event(&mut w).await;
    assert_eq!(event.outcome, v1::Outcome::Denied as i32);
    assert!(
        event.reason.starts_with("org API usage guard: 91%"),
        "{}",
        event.reason
    );
    assert_eq!(details(&event)["rate_limit"]["scope"], "org");

    // An essential tool still runs.
    set_limits(
        &mut w,
        v1::LimitSettings {
            org_api_usage_max_percent: 90,
            essential_tools: vec!["salesforce_get_*".into()],
            ..unlimited()
        },
    )
    .await
    .unwrap();
    let essential = s.call("salesforce_get_limits", json!({})).await;
    assert_ne!(essential["isError"], true, "{essential}");
    assert!(api_usage(&w) > used);
    let still = s.call("salesforce_query", json!({"soql": Q1})).await;
    assert_eq!(still["isError"], true, "{still}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_validated_audited_and_answered_through_grpc() {
    let mut w = Fixture::salesforce(|_| {}).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, profile_id, _) = w.user("ana@example.com", &all).await;

    let defaults = w
        .admin
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(defaults.per_user, Some(rate(120, 30, 8)));
    assert_eq!(defaults.per_tool, Some(rate(0, 0, 0)));
    assert_eq!(defaults.org_api_usage_max_percent, 90);

    let bad: Vec<(v1::LimitSettings, &str)> = vec![
        (
            v1::LimitSettings {
                per_user: Some(rate(60, 0, 0)),
                ..unlimited()
            },
            "limits.per_user.rate.burst",
        ),
        (
            v1::LimitSettings {
                per_server: Some(rate(0, 0, 200_000)),
                ..unlimited()
            },
            "limits.per_server.max_concurrent",
        ),
        (
            v1::LimitSettings {
                profile_overrides: HashMap::from([("no-such-profile".to_owned(), rate(1, 1, 0))]),
                ..unlimited()
            },
            "limits.profile_overrides[\"no-such-profile\"]",
        ),
        (
            v1::LimitSettings {
                org_api_usage_max_percent: 150,
                ..unlimited()
            },
            "limits.org_api_usage_max_percent",
        ),
    ];
    for (limits, field) in bad {
        let err = set_limits(&mut w, limits).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let unchanged = w
        .admin
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(unchanged, defaults);

    let mut good = v1::LimitSettings {
        per_user: Some(rate(60, 10, 4)),
        tool_overrides: HashMap::from([("salesforce_query".to_owned(), rate(30, 5, 2))]),
        org_api_usage_max_percent: 95,
        essential_tools: vec!["salesforce_get_limits".into()],
        ..unlimited()
    };
    good.profile_overrides
        .insert(profile_id.clone(), rate(600, 100, 0));
    let settings = set_limits(&mut w, good.clone()).await.unwrap();
    assert_eq!(settings.limits, Some(good));
    let events = w
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
    let update = events
        .iter()
        .filter(|e| e.action == "settings.update")
        .max_by_key(|e| e.sequence)
        .unwrap();
    assert!(
        update
            .reason
            .contains("per-user limit 60/min burst 10, 4 at once"),
        "{}",
        update.reason
    );
    assert!(
        update.reason.contains("org API usage guard at 95%"),
        "{}",
        update.reason
    );
}
