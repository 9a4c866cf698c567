//! Prometheus metrics: the process-global recorder, every metric's name
//! and description, and the `/metrics` listener (`--metrics-addr`).
//!
//! Metrics are recorded with the [`metrics`] crate's macros and exported
//! by [`metrics_exporter_prometheus`] in the Prometheus text exposition
//! format 0.0.4 (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//! Names follow the OpenTelemetry semantic conventions for MCP
//! (`mcp.server.operation.duration`, `mcp.server.session.duration`, with
//! attributes `mcp.method.name` and `gen_ai.tool.name`; status
//! Development, open-telemetry/semantic-conventions-genai
//! `docs/gen-ai/mcp.md`) as Prometheus
//! spells them (dots become underscores, the unit becomes a `_seconds`
//! suffix); toolgate's own are prefixed `toolgate_`.
//!
//! The recorder is **process-global**: it is installed once
//! ([`install`], behind a `OnceLock`) and every daemon started in the same
//! process (several in-process test daemons) records into it and scrapes
//! the same series. Counters and histograms then add up over those
//! daemons; gauges set at scrape time ([`ACCESS_REQUESTS_PENDING`],
//! [`HELD_CALLS_PENDING`], [`POLICY_SNAPSHOT_AGE`], [`POLICY_SNAPSHOT_BEHIND`],
//! [`STORE_CHANGE_FEED_UP`]) show the daemon scraped last. One daemon per
//! process (production) is unaffected.
//!
//! Labels hold bounded values only, never secrets, record values, user ids
//! or session ids: a tool label is a catalog tool's exposed name (a name no
//! tool has is [`OTHER`]), a reason or outcome is one of a fixed set.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::governance::Denial;
use crate::store::Store;

/// Histogram `mcp_server_operation_duration_seconds`: time to handle one
/// MCP request, seconds (OTel `mcp.server.operation.duration`). Labels
/// [`LABEL_METHOD`] (`initialize`, `ping`, `tools/list`, `tools/call`, or
/// `other` for anything else rmcp hands toolgate), [`LABEL_TOOL`]
/// (`tools/call` only: the tool's exposed name, [`OTHER`] for a name no
/// tool has; empty for other methods) and [`LABEL_OUTCOME`] ([`OK`],
/// [`DENIED`], [`ERROR`], or [`JSONRPC_ERROR`] when the request was
/// answered with a JSON-RPC error).
pub const MCP_OPERATION_DURATION: &str = "mcp_server_operation_duration_seconds";
/// Histogram `mcp_server_session_duration_seconds`: how long an MCP
/// session (MCP 2025-11-25 stateful, `mcp-session-id`) stayed open, from
/// its creation to its close (DELETE, idle timeout, worker end), seconds
/// (OTel `mcp.server.session.duration`). No labels.
pub const MCP_SESSION_DURATION: &str = "mcp_server_session_duration_seconds";
/// Histogram `toolgate_salesforce_request_duration_seconds`: one HTTP
/// request to a Salesforce REST API, seconds, from sending to the body
/// read. Labels [`LABEL_TOOL`] (the tool whose call made it) and
/// [`LABEL_STATUS`] (the HTTP status code, e.g. `200`; `none` when no
/// answer came: timeout, connection failure).
pub const SALESFORCE_REQUEST_DURATION: &str = "toolgate_salesforce_request_duration_seconds";
/// Counter `toolgate_token_refreshes_total`: Salesforce access-token
/// refreshes (OAuth 2.0 refresh token grant, RFC 6749 section 6) this
/// replica attempted. Label [`LABEL_OUTCOME`]: `ok`, `invalid_grant`
/// (the refresh token was revoked or expired; the connection is dropped)
/// or `error` (any other failure).
pub const TOKEN_REFRESHES: &str = "toolgate_token_refreshes_total";
/// Counter `toolgate_denied_calls_total`: `tools/call` requests refused,
/// by [`LABEL_REASON`] (see [`denial_reason`] and the `REASON_*`
/// constants).
pub const DENIED_CALLS: &str = "toolgate_denied_calls_total";
/// Gauge `toolgate_access_requests_pending`: access requests waiting for
/// an admin, counted from the store at each scrape.
pub const ACCESS_REQUESTS_PENDING: &str = "toolgate_access_requests_pending";
/// Gauge `toolgate_held_calls_pending`: tool calls held for an admin's
/// approval, counted from the store at each scrape.
pub const HELD_CALLS_PENDING: &str = "toolgate_held_calls_pending";
/// Gauge `toolgate_mcp_sessions_active`: MCP sessions this process holds
/// open.
pub const MCP_SESSIONS_ACTIVE: &str = "toolgate_mcp_sessions_active";
/// Gauge `toolgate_mcp_streams_open`: open long-lived server-to-client
/// streams: `GET /mcp` SSE streams of sessions and 2026-07-28
/// `subscriptions/listen` streams.
pub const MCP_STREAMS_OPEN: &str = "toolgate_mcp_streams_open";
/// Gauge `toolgate_audit_queue_depth`: audit events accepted but not yet
/// durable: on the embedded store, written but not yet flushed to disk; on
/// PostgreSQL, queued for the group-commit appender and not yet committed.
pub const AUDIT_QUEUE_DEPTH: &str = "toolgate_audit_queue_depth";
/// Histogram `toolgate_audit_flush_duration_seconds`: one background
/// flush of audit events to disk (embedded store) or one group commit
/// (PostgreSQL), seconds.
pub const AUDIT_FLUSH_DURATION: &str = "toolgate_audit_flush_duration_seconds";
/// Histogram `toolgate_store_operation_duration_seconds`: one call of the
/// store, seconds, measured at the [`Store`] facade whatever the backend.
/// Label [`LABEL_OPERATION`]: `write`, `append_audit`, `snapshot`, `get`,
/// `list`.
pub const STORE_OPERATION_DURATION: &str = "toolgate_store_operation_duration_seconds";
/// Gauge `toolgate_policy_snapshot_age_seconds`: seconds since the policy
/// snapshot this replica serves MCP requests from was read from the
/// store (0 before the first request). It is read again after every
/// policy change this replica hears of, so a replica whose age stays far
/// above the other replicas' missed changes (or serves no traffic).
pub const POLICY_SNAPSHOT_AGE: &str = "toolgate_policy_snapshot_age_seconds";
/// Gauge `toolgate_policy_snapshot_behind`: 1 when policy changed in
/// the store since this replica's snapshot was read (the next MCP request
/// reads it again), else 0. Behind for minutes while the replica serves
/// traffic means it cannot read the new policy.
pub const POLICY_SNAPSHOT_BEHIND: &str = "toolgate_policy_snapshot_behind";
/// Gauge `toolgate_store_change_feed_up`: 1 while this replica hears of
/// other replicas' policy changes (PostgreSQL `LISTEN` feed up; always 1
/// on the embedded store), 0 while the feed is down (every request then
/// reads policy from the database).
pub const STORE_CHANGE_FEED_UP: &str = "toolgate_store_change_feed_up";
/// Counter `toolgate_rate_limited_calls_total`: calls refused by a rate
/// or concurrency limit. Labels [`LABEL_SCOPE`] (`user`, `tool`,
/// `server`, `org`) and [`LABEL_LIMIT`] (`rate`, `concurrency`,
/// `org_api_usage`). Incremented by the rate limiter with
/// `metrics::counter!` and exactly this name and these labels.
pub const RATE_LIMITED_CALLS: &str = "toolgate_rate_limited_calls_total";
/// Gauge `toolgate_build_info`: always 1, label [`LABEL_VERSION`] the
/// toolgated version.
pub const BUILD_INFO: &str = "toolgate_build_info";

/// Every metric name toolgated exports.
pub const ALL: &[&str] = &[
    MCP_OPERATION_DURATION,
    MCP_SESSION_DURATION,
    SALESFORCE_REQUEST_DURATION,
    TOKEN_REFRESHES,
    DENIED_CALLS,
    ACCESS_REQUESTS_PENDING,
    HELD_CALLS_PENDING,
    MCP_SESSIONS_ACTIVE,
    MCP_STREAMS_OPEN,
    AUDIT_QUEUE_DEPTH,
    AUDIT_FLUSH_DURATION,
    STORE_OPERATION_DURATION,
    POLICY_SNAPSHOT_AGE,
    POLICY_SNAPSHOT_BEHIND,
    STORE_CHANGE_FEED_UP,
    RATE_LIMITED_CALLS,
    BUILD_INFO,
];

/// Label: the MCP method (OTel `mcp.method.name`).
pub const LABEL_METHOD: &str = "mcp_method_name";
/// Label: the tool's exposed name (OTel `gen_ai.tool.name`).
pub const LABEL_TOOL: &str = "gen_ai_tool_name";
/// Label: how a request ended.
pub const LABEL_OUTCOME: &str = "outcome";
/// Label: why a call was denied.
pub const LABEL_REASON: &str = "reason";
/// Label: an HTTP status code (OTel `http.response.status_code`).
pub const LABEL_STATUS: &str = "http_response_status_code";
/// Label: a store operation.
pub const LABEL_OPERATION: &str = "operation";
/// Label: what a rate limit counts per.
pub const LABEL_SCOPE: &str = "scope";
/// Label: which kind of limit.
pub const LABEL_LIMIT: &str = "limit";
/// Label: the toolgated version.
pub const LABEL_VERSION: &str = "version";

/// Outcome: done.
pub const OK: &str = "ok";
/// Outcome: refused by policy.
pub const DENIED: &str = "denied";
/// Outcome: allowed but failed (tool error, Salesforce error).
pub const ERROR: &str = "error";
/// Outcome: answered with a JSON-RPC error (JSON-RPC 2.0 section 5.1).
pub const JSONRPC_ERROR: &str = "jsonrpc_error";
/// A tool or method label for a name outside the known set.
pub const OTHER: &str = "other";

/// Denial reason: MCP traffic turned off gateway-wide (kill switch).
pub const REASON_KILL_SWITCH: &str = "kill_switch";
/// Denial reason: the AI client's kill switch is on.
pub const REASON_CLIENT_DISABLED: &str = "client_disabled";
/// Denial reason: no tool by that name is in the caller's list.
pub const REASON_NOT_LISTED: &str = "not_listed";
/// Denial reason: the hook refused it.
pub const REASON_HOOK: &str = "hook";
/// Denial reason: held for, or refused at, per-call approval.
pub const REASON_CALL_APPROVAL: &str = "call_approval";
/// Denial reason: answered with an access request (opened, pending or
/// refused).
pub const REASON_ACCESS_REQUEST: &str = "access_request";
/// Denial reason: the user has not connected Salesforce.
pub const REASON_NOT_CONNECTED: &str = "not_connected";
/// Denial reason: over a call rate or concurrency limit, or the org's
/// API-usage guard ([`crate::limits`]; also counted in
/// [`RATE_LIMITED_CALLS`] by scope and limit).
pub const REASON_RATE_LIMITED: &str = "rate_limited";
/// Denial reason: anything else.
pub const REASON_OTHER: &str = "other";

/// The [`LABEL_REASON`] of a policy denial: one per
/// [`crate::governance::Denial`] variant.
pub fn denial_reason(denial: &Denial) -> &'static str {
    match denial {
        Denial::TrafficDisabled => REASON_KILL_SWITCH,
        Denial::UserDisabled => "user_disabled",
        Denial::TokenRevoked => "token_revoked",
        Denial::TokenExpired => "token_expired",
        Denial::ServerDisabled { .. } => "server_disabled",
        Denial::ToolNotApproved { .. } => "tool_not_approved",
        Denial::NotGranted { .. } => "not_granted",
        Denial::GrantExpired { .. } => "grant_expired",
    }
}

/// Bucket upper bounds of every histogram, seconds: 1 ms to 30 s for
/// requests, flushes and store calls.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket upper bounds of [`MCP_SESSION_DURATION`], seconds: 1 s to 1 day.
pub const SESSION_BUCKETS: &[f64] = &[
    1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global `metrics`
/// recorder (once; later calls return the same handle), describes every
/// metric and sets the series that must exist from the start (build info,
/// gauges at 0). `None` when another global recorder was installed first
/// (nothing is exported then; logged once).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(MCP_SESSION_DURATION.into()),
                        SESSION_BUCKETS,
                    )
                })
                .map(PrometheusBuilder::build_recorder);
            let recorder = match recorder {
                Ok(recorder) => recorder,
                Err(err) => {
                    tracing::error!(error = %err, "cannot build the Prometheus recorder");
                    return None;
                }
            };
            let handle = recorder.handle();
            if let Err(err) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %err, "another metrics recorder is installed; /metrics exports nothing");
                return None;
            }
            describe();
            register();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_histogram!(
        MCP_OPERATION_DURATION,
        Unit::Seconds,
        "Time to handle one MCP request, by method, tool (tools/call) and outcome."
    );
    describe_histogram!(
        MCP_SESSION_DURATION,
        Unit::Seconds,
        "How long an MCP session stayed open, from creation to close."
    );
    describe_histogram!(
        SALESFORCE_REQUEST_DURATION,
        Unit::Seconds,
        "One HTTP request to Salesforce, by tool and HTTP status code (none: no answer)."
    );
    describe_counter!(
        TOKEN_REFRESHES,
        Unit::Count,
        "Salesforce access-token refreshes, by outcome (ok, invalid_grant, error)."
    );
    describe_counter!(
        DENIED_CALLS,
        Unit::Count,
        "tools/call requests refused, by reason."
    );
    describe_gauge!(
        ACCESS_REQUESTS_PENDING,
        Unit::Count,
        "Access requests waiting for an admin."
    );
    describe_gauge!(
        HELD_CALLS_PENDING,
        Unit::Count,
        "Tool calls held for an admin's approval."
    );
    describe_gauge!(
        MCP_SESSIONS_ACTIVE,
        Unit::Count,
        "MCP sessions this process holds open."
    );
    describe_gauge!(
        MCP_STREAMS_OPEN,
        Unit::Count,
        "Open GET /mcp and subscriptions/listen streams."
    );
    describe_gauge!(
        AUDIT_QUEUE_DEPTH,
        Unit::Count,
        "Audit events accepted but not yet durable (unflushed or uncommitted)."
    );
    describe_histogram!(
        AUDIT_FLUSH_DURATION,
        Unit::Seconds,
        "One audit flush to disk (embedded store) or group commit (PostgreSQL)."
    );
    describe_histogram!(
        STORE_OPERATION_DURATION,
        Unit::Seconds,
        "One store call, by operation."
    );
    describe_gauge!(
        POLICY_SNAPSHOT_AGE,
        Unit::Seconds,
        "Seconds since the policy snapshot this replica serves was read."
    );
    describe_gauge!(
        POLICY_SNAPSHOT_BEHIND,
        Unit::Count,
        "1 when policy changed in the store since this replica's snapshot was read, else 0."
    );
    describe_gauge!(
        STORE_CHANGE_FEED_UP,
        Unit::Count,
        "1 while this replica hears of policy changes made elsewhere, else 0."
    );
    describe_counter!(
        RATE_LIMITED_CALLS,
        Unit::Count,
        "Calls refused by a rate or concurrency limit, by scope and limit."
    );
    describe_gauge!(
        BUILD_INFO,
        Unit::Count,
        "Always 1; the version label is toolgated's version."
    );
}

/// Series that exist from start-up, so dashboards and alerts see 0 rather
/// than nothing.
fn register() {
    metrics::gauge!(BUILD_INFO, LABEL_VERSION => env!("CARGO_PKG_VERSION")).set(1.0);
    for gauge in [
        ACCESS_REQUESTS_PENDING,
        HELD_CALLS_PENDING,
        MCP_SESSIONS_ACTIVE,
        MCP_STREAMS_OPEN,
        AUDIT_QUEUE_DEPTH,
        POLICY_SNAPSHOT_AGE,
        POLICY_SNAPSHOT_BEHIND,
    ] {
        metrics::gauge!(gauge).increment(0.0);
    }
    metrics::gauge!(STORE_CHANGE_FEED_UP).set(1.0);
    // Unlabelled histograms: registered, they show with zero counts.
    let _ = metrics::histogram!(MCP_SESSION_DURATION);
    let _ = metrics::histogram!(AUDIT_FLUSH_DURATION);
    for outcome in [OK, "invalid_grant", ERROR] {
        metrics::counter!(TOKEN_REFRESHES, LABEL_OUTCOME => outcome).absolute(0);
    }
    metrics::counter!(DENIED_CALLS, LABEL_REASON => REASON_KILL_SWITCH).absolute(0);
    metrics::counter!(RATE_LIMITED_CALLS, LABEL_SCOPE => "user", LABEL_LIMIT => "rate").absolute(0);
}

/// Records one MCP request of `method` that ended in `outcome`, for
/// `tool` (`tools/call`) or `""`.
pub fn mcp_operation(
    method: &'static str,
    tool: impl Into<metrics::SharedString>,
    outcome: &'static str,
    took: Duration,
) {
    metrics::histogram!(
        MCP_OPERATION_DURATION,
        LABEL_METHOD => method,
        LABEL_TOOL => tool,
        LABEL_OUTCOME => outcome
    )
    .record(took.as_secs_f64());
}

/// [`LABEL_OUTCOME`] of a handler's result: [`OK`] or [`JSONRPC_ERROR`].
pub fn outcome_of<T, E>(result: &Result<T, E>) -> &'static str {
    if result.is_ok() { OK } else { JSONRPC_ERROR }
}

/// Time one store call of `operation`.
pub fn store_operation(operation: &'static str, took: Duration) {
    metrics::histogram!(STORE_OPERATION_DURATION, LABEL_OPERATION => operation)
        .record(took.as_secs_f64());
}

/// An open stream counted in a gauge: incremented when made, decremented
/// when dropped.
#[derive(Debug)]
pub struct Open(&'static str);

impl Open {
    /// Counts one more in `gauge` until dropped.
    pub fn new(gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

tokio::task_local! {
    /// The exposed name of the tool whose call the current task runs, for
    /// [`SALESFORCE_REQUEST_DURATION`].
    pub static CURRENT_TOOL: Arc<str>;
}

/// [`LABEL_STATUS`] of an HTTP status: the code (`"200"`), `"none"` for
/// none (0).
pub fn status_label(status: u16) -> metrics::SharedString {
    match status {
        0 => "none".into(),
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        500 => "500".into(),
        503 => "503".into(),
        code => code.to_string().into(),
    }
}

/// Records one Salesforce request answered with `status` (0: no answer),
/// labelled with the tool of [`CURRENT_TOOL`] (else [`OTHER`]).
pub fn salesforce_request(status: u16, took: Duration) {
    let tool: metrics::SharedString = CURRENT_TOOL
        .try_with(|t| metrics::SharedString::from(t.clone()))
        .unwrap_or_else(|_| OTHER.into());
    metrics::histogram!(
        SALESFORCE_REQUEST_DURATION,
        LABEL_TOOL => tool,
        LABEL_STATUS => status_label(status)
    )
    .record(took.as_secs_f64());
}

/// What the `/metrics` handler reads at each scrape.
#[derive(Clone)]
pub struct Scrape {
    /// The store, for the pending counts and the change feed.
    pub store: Arc<Store>,
    /// The MCP state, for the policy snapshot's age.
    pub mcp: Arc<crate::mcp::McpState>,
}

impl Scrape {
    async fn refresh_gauges(&self) {
        use crate::model::{AccessRequest, AccessRequestState, HeldCall, HeldCallState};
        match self.store.list::<AccessRequest>().await {
            Ok(all) => {
                let pending = all
                    .iter()
                    .filter(|r| r.state == AccessRequestState::Pending)
                    .count();
                metrics::gauge!(ACCESS_REQUESTS_PENDING).set(pending as f64);
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot count access requests"),
        }
        match self.store.list::<HeldCall>().await {
            Ok(all) => {
                let pending = all
                    .iter()
                    .filter(|c| c.state == HeldCallState::Pending)
                    .count();
                metrics::gauge!(HELD_CALLS_PENDING).set(pending as f64);
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot count held calls"),
        }
        let (age, behind) = match self.mcp.policy_snapshot() {
            Some((generation, at)) => (
                at.elapsed().as_secs_f64(),
                generation != self.store.generation(),
            ),
            None => (0.0, false),
        };
        metrics::gauge!(POLICY_SNAPSHOT_AGE).set(age);
        metrics::gauge!(POLICY_SNAPSHOT_BEHIND).set(if behind { 1.0 } else { 0.0 });
        let up = if self.store.change_feed_ok() {
            1.0
        } else {
            0.0
        };
        metrics::gauge!(STORE_CHANGE_FEED_UP).set(up);
    }
}

/// `GET /metrics`: the Prometheus text exposition.
async fn scrape(State(scrape): State<Scrape>) -> Response {
    let Some(handle) = install() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process\n",
        )
            .into_response();
    };
    scrape.refresh_gauges().await;
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Serves `GET /metrics` on `listener` until `stop`; any other path is
/// 404.
///
/// Errors: the listener fails.
pub async fn serve(
    listener: TcpListener,
    state: Scrape,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

/// Parses `--metrics-addr`: an address, or empty for no listener.
///
/// Errors: a message naming the expected form.
pub fn parse_addr(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        format!("{value:?} is not an address (expected e.g. 127.0.0.1:9464, or empty for off)")
    })
}
