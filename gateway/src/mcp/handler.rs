//! The MCP server handler: `initialize`, `tools/list`, `tools/call`, and
//! on 2026-07-28 `subscriptions/listen` (`server/discover` is rmcp's, from
//! [`ServerHandler::get_info`]).
//! Errors become MCP results here and only here: policy denials, bad
//! arguments, a missing Salesforce connection and Salesforce errors are
//! tool errors (`isError: true`) the agent can read; only a request that
//! cannot be served at all (or a retry whose `requestState` does not open)
//! is a protocol error. A missing connection on 2026-07-28 is an
//! `input_required` result with the connect link as a URL elicitation
//! ([`super::prompt`]).

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::http::request::Parts;
use rmcp::Peer;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities,
    ContentBlock, ElicitRequest, ElicitRequestParams, Implementation, InputRequest, InputRequests,
    InputRequiredResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion, RequestId,
    RequestMetaObject, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool as McpTool,
    ToolAnnotations as McpAnnotations,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tracing::Instrument as _;
use tracing::field::Empty;

use super::McpState;
use super::auth::Caller;
use super::notify;
use super::prompt::{ELICITATION_KEY, Retry};
use super::requestable::Intercept;
use super::sessions::Handling;
use super::transport::ListenSlot;
use crate::audit::Action;
use crate::governance::{Denial, decide};
use crate::model::{AuditEvent, AuditVerbosity, HookPhase, Outcome, Tool, ToolState};
use crate::oauth::{LiveConnection, RefreshError};
use crate::salesforce::{self, Session, SfError};
use crate::telemetry::TRACES;

/// One handler per MCP session (rmcp's service factory makes them); all
/// share [`McpState`].
#[derive(Debug, Clone)]
pub struct Gateway {
    state: Arc<McpState>,
}

/// Longest tool name echoed or audited (names come from the client).
const MAX_NAME_CHARS: usize = 128;

/// A client-supplied name cut to [`MAX_NAME_CHARS`].
fn bounded(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}

/// Longest argument string kept in the audit log.
const AUDIT_STRING_CHARS: usize = 120;
/// Longest audited argument summary, in bytes of JSON.
const AUDIT_ARGUMENTS_BYTES: usize = 2048;

impl Gateway {
    /// A handler over shared state.
    pub fn new(state: Arc<McpState>) -> Self {
        Self { state }
    }
}

/// The authenticated caller and session id of a request. The transport
/// ([`super::transport::gate`], with [`super::sessions::Registry`]) lets a
/// request reach a session only with the user and token that opened it, so
/// nothing here checks ownership again.
fn caller(context: &RequestContext<RoleServer>) -> Result<(Caller, Option<String>), McpError> {
    let parts = context
        .extensions
        .get::<Parts>()
        .ok_or_else(|| McpError::internal_error("request parts missing", None))?;
    let caller = parts
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| McpError::internal_error("unauthenticated request", None))?;
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((caller, session))
}

/// What the handler needs of one request: made from rmcp's
/// [`RequestContext`] ([`Cx::of`]), or by the transport's direct path for
/// a request on a session it answers without rmcp ([`Cx::direct`]).
pub(super) struct Cx<'a> {
    /// The JSON-RPC id.
    pub(super) id: RequestId,
    /// Who sent it (the transport authenticated them).
    caller: Caller,
    /// The `mcp-session-id` it came on (2025-xx protocols), if any.
    session: Option<String>,
    /// The session's (or the stateless request's) rmcp peer: its
    /// `initialize` params, and the channel for server-to-client messages.
    peer: &'a Peer<RoleServer>,
    /// rmcp's context, when rmcp dispatched the request.
    context: Option<&'a RequestContext<RoleServer>>,
    /// The request's HTTP headers (for a `traceparent`).
    pub(super) headers: Option<&'a HeaderMap>,
}

impl<'a> Cx<'a> {
    /// The context of a request rmcp dispatched.
    fn of(context: &'a RequestContext<RoleServer>) -> Result<Self, McpError> {
        let (caller, session) = caller(context)?;
        Ok(Self {
            id: context.id.clone(),
            caller,
            session,
            peer: &context.peer,
            context: Some(context),
            headers: context.extensions.get::<Parts>().map(|p| &p.headers),
        })
    }

    /// The context of request `id` on `session`, whose client `peer`
    /// initialized it, answered by the transport itself.
    pub(super) fn direct(
        id: RequestId,
        caller: Caller,
        session: String,
        peer: &'a Peer<RoleServer>,
        headers: &'a HeaderMap,
    ) -> Self {
        Self {
            id,
            caller,
            session: Some(session),
            peer,
            context: None,
            headers: Some(headers),
        }
    }

    /// The negotiated protocol version (per request on 2026-07-28).
    pub(super) fn protocol_version(&self) -> Option<ProtocolVersion> {
        match self.context {
            Some(context) => context.protocol_version(),
            None => self.peer.peer_info().map(|i| i.protocol_version.clone()),
        }
    }

    /// What the client said it supports (per request on 2026-07-28).
    fn client_capabilities(&self) -> Option<ClientCapabilities> {
        match self.context {
            Some(context) => context.client_capabilities(),
            None => self.peer.peer_info().map(|i| i.capabilities.clone()),
        }
    }

    /// The request's own `_meta` as rmcp moved it out of the params.
    pub(super) fn meta(&self) -> Option<&RequestMetaObject> {
        self.context.map(|c| &c.meta)
    }
}

fn json_object(value: &Value) -> Arc<Map<String, Value>> {
    Arc::new(value.as_object().cloned().unwrap_or_default())
}

/// The MCP view of a tool (MCP specification 2025-11-25, "Tools").
pub(super) fn mcp_tool(tool: &Tool) -> McpTool {
    let def = &tool.definition;
    let mut out = McpTool::new(
        tool.name.clone(),
        def.description.clone(),
        json_object(&def.input_schema),
    );
    out.title = Some(def.title.clone());
    out.output_schema = def.output_schema.as_ref().map(json_object);
    let mut annotations = McpAnnotations::new();
    annotations.title = def.annotations.title.clone();
    annotations.read_only_hint = def.annotations.read_only_hint;
    annotations.destructive_hint = def.annotations.destructive_hint;
    annotations.idempotent_hint = def.annotations.idempotent_hint;
    annotations.open_world_hint = def.annotations.open_world_hint;
    out.annotations = Some(annotations);
    out
}

/// A bounded, redacted copy of tool arguments for the audit log: record
/// field values are replaced by their names, long strings are cut.
fn redact_arguments(args: &Value) -> Value {
    fn redact(key: &str, v: &Value) -> Value {
        match v {
            // Query text keeps its shape, not its literal values.
            Value::String(s) if key == "soql" || key == "sosl" => {
                Value::String(cut(&mask_literals(s)))
            }
            // Free text and external ids are often personal data.
            Value::String(s) if key == "text" || key == "external_id" || key == "reason" => {
                Value::String(format!("<{} characters>", s.chars().count()))
            }
            Value::Object(map) if key == "fields" => {
                json!({"field_names": map.keys().collect::<Vec<_>>()})
            }
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(k, v))).collect())
            }
            Value::Array(items) => {
                Value::Array(items.iter().take(20).map(|v| redact(key, v)).collect())
            }
            Value::String(s) => Value::String(cut(s)),
            other => other.clone(),
        }
    }
    let redacted = redact("", args);
    if redacted.to_string().len() > AUDIT_ARGUMENTS_BYTES {
        let keys: Vec<&String> = args
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        json!({"truncated": true, "keys": keys})
    } else {
        redacted
    }
}

/// A string cut to [`AUDIT_STRING_CHARS`] characters (with an ellipsis).
fn cut(s: &str) -> String {
    if s.chars().count() > AUDIT_STRING_CHARS {
        let head: String = s.chars().take(AUDIT_STRING_CHARS).collect();
        format!("{head}…")
    } else {
        s.to_owned()
    }
}

/// Replaces the contents of quoted literals (`'...'` in SOQL, `{...}` in
/// SOSL) with `?`, honouring backslash escapes.
fn mask_literals(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut close = None;
    let mut escaped = false;
    for c in query.chars() {
        match close {
            Some(end) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == end {
                    out.push('?');
                    out.push(c);
                    close = None;
                }
            }
            None => {
                out.push(c);
                close = match c {
                    '\'' => Some('\''),
                    '{' => Some('}'),
                    _ => None,
                };
            }
        }
    }
    if close.is_some() {
        out.push('?');
    }
    out
}

/// Fills a tool-call audit event's `details` for `verbosity`
/// ([`AuditVerbosity`]): MINIMAL adds the call's own facts (an access
/// request, a held call) but no arguments and no hook runs; STANDARD adds
/// the redacted arguments ([`redact_arguments`]: record values by field
/// name only, query literals masked, free text by length) and the hook
/// runs; FULL adds the result's size. Every argument string kept goes
/// through PII redaction ([`crate::hooks::pii::scrub`]) too. Arguments are audited as the
/// client sent them.
fn audit_details(
    details: &mut Map<String, Value>,
    verbosity: AuditVerbosity,
    args: &Value,
    ending: &Ending,
) {
    details.extend(ending.details.clone());
    match verbosity {
        AuditVerbosity::Minimal => {
            details.remove("hooks");
        }
        AuditVerbosity::Standard => {
            let mut summary = redact_arguments(args);
            crate::hooks::pii::scrub(&mut summary);
            details.insert("arguments".into(), summary);
        }
        AuditVerbosity::Full => {
            let mut summary = redact_arguments(args);
            crate::hooks::pii::scrub(&mut summary);
            details.insert("arguments".into(), summary);
            details.insert("result".into(), result_size(&ending.result));
        }
    }
}

/// A tool call's reason as the audit log keeps it: a Salesforce error
/// that echoes the call's query (`INVALID_FIELD` does) gets the query with
/// its literals masked ([`mask_literals`]), and PII patterns are scrubbed
/// ([`crate::hooks::pii::scrub`]), so the reason keeps no more than the
/// audited arguments do.
fn audit_reason(reason: &str, args: &Value) -> String {
    if reason.is_empty() {
        return String::new();
    }
    let mut kept = reason.to_owned();
    for key in ["soql", "sosl"] {
        if let Some(query) = args.get(key).and_then(Value::as_str)
            && !query.is_empty()
            && kept.contains(query)
        {
            kept = kept.replace(query, &mask_literals(query));
        }
    }
    let mut value = Value::String(kept);
    crate::hooks::pii::scrub(&mut value);
    match value {
        Value::String(kept) => kept,
        _ => String::new(),
    }
}

/// The size of a tool result for the audit log: `bytes` of its JSON
/// (structured content, or the text when there is none) and `records`, the
/// length of a `records` array in the structured content when it has one.
fn result_size(result: &CallToolResult) -> Value {
    let bytes = match &result.structured_content {
        Some(structured) => structured.to_string().len(),
        None => result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.len()))
            .sum(),
    };
    let records = result
        .structured_content
        .as_ref()
        .and_then(|s| s.get("records"))
        .and_then(Value::as_array)
        .map(Vec::len);
    json!({"bytes": bytes, "records": records})
}

fn text_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// What one call ended in, for the audit log and the answer.
struct Ending {
    outcome: Outcome,
    reason: String,
    result: CallToolResult,
    /// Sent instead of `result` when set: the 2026-07-28 connect prompt.
    input: Option<InputRequiredResult>,
    /// Added to the audit event's details (hook outcomes, an access
    /// request or held call id, result size); never secrets or PII.
    details: Map<String, Value>,
    /// The call made a grant (an automatically approved access request):
    /// run it again on a policy snapshot that has the grant, so hooks
    /// filtered by profile and the per-call approval see it.
    rerun: bool,
    /// Why it was denied, a bounded label for
    /// [`crate::metrics::DENIED_CALLS`] (a `REASON_*` constant).
    denial: &'static str,
}

impl Ending {
    fn denied(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            outcome: Outcome::Denied,
            result: text_error(reason.clone()),
            reason,
            input: None,
            details: Map::new(),
            rerun: false,
            denial: crate::metrics::REASON_OTHER,
        }
    }

    /// This ending, its denial counted under `reason`.
    fn because(mut self, reason: &'static str) -> Self {
        self.denial = reason;
        self
    }

    /// A call refused by a limit ([`crate::limits`]): the message as a
    /// tool error with `_meta["toolgate/rate_limit"]`, audited with
    /// `details.rate_limit`, and counted in the rate-limited metric.
    fn limited(refusal: &crate::limits::Refusal) -> Self {
        refusal.count();
        let details = refusal.details();
        let mut result = text_error(refusal.message.clone());
        let mut meta = Map::new();
        meta.insert(crate::limits::META_KEY.into(), details.clone());
        result.meta = Some(rmcp::model::MetaObject(meta));
        let mut ending = Self {
            outcome: Outcome::Denied,
            reason: refusal.reason(),
            result,
            input: None,
            details: Map::new(),
            rerun: false,
            denial: crate::metrics::REASON_RATE_LIMITED,
        };
        ending.details.insert("rate_limit".into(), details);
        ending
    }

    fn error(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Error,
            reason: reason.into(),
            result: text_error(message),
            input: None,
            details: Map::new(),
            rerun: false,
            denial: crate::metrics::REASON_OTHER,
        }
    }

    /// The answer to the client.
    fn response(self) -> CallToolResponse {
        match self.input {
            Some(input) => input.into(),
            None => self.result.into(),
        }
    }
}

impl From<super::requestable::Answer> for Ending {
    fn from(answer: super::requestable::Answer) -> Self {
        Self {
            outcome: answer.outcome,
            reason: answer.reason,
            result: answer.result,
            input: None,
            details: answer.details,
            rerun: false,
            denial: crate::metrics::REASON_ACCESS_REQUEST,
        }
    }
}

/// Whether the request is on protocol 2026-07-28 or later (stateless: no
/// server-to-client requests, multi round-trip results instead).
fn is_modern(cx: &Cx<'_>) -> bool {
    cx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

impl Gateway {
    /// The answer to a call of `tool` by `user_id`, who has no Salesforce
    /// connection to its server: on 2026-07-28 with a client that takes URL
    /// elicitations, `input_required` with the connect link (asked again on
    /// a retry the user accepted, the text below once they declined);
    /// otherwise a tool error whose text holds the link, and on a session
    /// whose client takes URL elicitations an `elicitation/create` too.
    async fn connect_prompt(
        &self,
        tool: &Tool,
        user_id: &str,
        retry: Option<&Retry>,
        cx: &Cx<'_>,
    ) -> Ending {
        let link = match self
            .state
            .oauth
            .connect_link(user_id, &tool.server_id)
            .await
        {
            Ok(link) => link,
            Err(err) => {
                tracing::error!(error = %err, "cannot make a connect link");
                return Ending::error(
                    "storage error",
                    "toolgate could not make a connect link; try again",
                );
            }
        };
        let message = format!(
            "Connect your Salesforce account to use {}: open {link} in your browser, sign in to Salesforce and allow access, then call the tool again. The link works once and expires in 10 minutes.",
            tool.name
        );
        if is_modern(cx) {
            let supports_url = cx
                .client_capabilities()
                .and_then(|c| c.elicitation)
                .is_some_and(|e| e.url.is_some());
            if retry.is_some_and(|r| r.declined) {
                return Ending {
                    outcome: Outcome::Denied,
                    reason: "no Salesforce connection; connect prompt declined".into(),
                    result: text_error(message),
                    input: None,
                    details: Map::new(),
                    rerun: false,
                    denial: crate::metrics::REASON_NOT_CONNECTED,
                };
            }
            let input = supports_url.then(|| {
                let elicit = ElicitRequest::new(ElicitRequestParams::UrlElicitationParams {
                    meta: None,
                    message: format!("Connect your Salesforce account to use {}", tool.name),
                    url: link.clone(),
                    elicitation_id: crate::model::new_id(),
                });
                let requests = InputRequests::from([(
                    ELICITATION_KEY.to_owned(),
                    InputRequest::Elicitation(elicit),
                )]);
                let state = self
                    .state
                    .prompts
                    .seal(user_id, &tool.name, &tool.server_id);
                InputRequiredResult::new(Some(requests), Some(state))
            });
            return Ending {
                outcome: Outcome::Denied,
                reason: "no Salesforce connection; connect link sent".into(),
                result: text_error(message),
                input,
                details: Map::new(),
                rerun: false,
                denial: crate::metrics::REASON_NOT_CONNECTED,
            };
        }
        let supports_url = cx
            .peer
            .peer_info()
            .and_then(|info| {
                info.capabilities
                    .elicitation
                    .as_ref()
                    .map(|e| e.url.is_some())
            })
            .unwrap_or(false);
        if supports_url && let Ok(url) = url::Url::parse(&link) {
            let peer = cx.peer.clone();
            let elicitation_id = crate::model::new_id();
            let text = format!("Connect your Salesforce account to use {}", tool.name);
            tokio::spawn(async move {
                let asked = peer.elicit_url(text, url, elicitation_id);
                if let Ok(Err(err)) = tokio::time::timeout(crate::oauth::LINK_TTL, asked).await {
                    tracing::debug!(error = %err, "URL elicitation not delivered");
                }
            });
        }
        Ending {
            outcome: Outcome::Denied,
            reason: "no Salesforce connection; connect link sent".into(),
            result: text_error(message),
            input: None,
            details: Map::new(),
            rerun: false,
            denial: crate::metrics::REASON_NOT_CONNECTED,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        tool: &Tool,
        api_version: &str,
        live: LiveConnection,
        args: &Value,
        caller: &Caller,
        cx: &Cx<'_>,
        usage: &salesforce::ApiUsage,
    ) -> Ending {
        // Per connection: describe results reflect the user's own access
        // (and org), so they are never shared between users.
        let cache = self.state.describe_cache(&live.connection.id);
        let call = |live: LiveConnection| {
            let cache = cache.clone();
            async move {
                let session = Session {
                    connection_id: &live.connection.id,
                    instance_url: &live.connection.instance_url,
                    access_token: &live.access_token,
                    api_version,
                    api_usage: Some(usage),
                };
                salesforce::call_tool(
                    &self.state.http,
                    &session,
                    &cache,
                    &self.state.cursors,
                    &self.state.limits,
                    &tool.definition.name,
                    args,
                )
                .await
            }
        };
        // Salesforce requests are timed under this tool's name.
        let label: Arc<str> = Arc::from(tool.name.as_str());
        let first = crate::metrics::CURRENT_TOOL
            .scope(label.clone(), call(live.clone()))
            .await;
        let result = match first {
            Err(SfError::InvalidSession) => {
                match self
                    .state
                    .oauth
                    .refresh(&caller.user.id, &tool.server_id, &live.access_token)
                    .await
                {
                    Ok(fresh) => crate::metrics::CURRENT_TOOL.scope(label, call(fresh)).await,
                    Err(RefreshError::Revoked | RefreshError::NotConnected) => {
                        return self.connect_prompt(tool, &caller.user.id, None, cx).await;
                    }
                    Err(err) => {
                        return Ending::error(err.to_string(), err.to_string());
                    }
                }
            }
            other => other,
        };
        match result {
            Ok(output) => Ending {
                outcome: Outcome::Allowed,
                reason: String::new(),
                result: {
                    let mut r = CallToolResult::success(vec![ContentBlock::text(output.text)]);
                    r.structured_content = Some(output.structured);
                    r
                },
                input: None,
                details: Map::new(),
                rerun: false,
                denial: crate::metrics::REASON_OTHER,
            },
            Err(SfError::InvalidSession) => Ending::error(
                "session refused after refresh",
                "Salesforce refused the session even after a refresh; call the tool again",
            ),
            Err(err) => Ending::error(err.to_string(), err.to_string()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn call<'w>(
        &self,
        request: &CallToolRequestParams,
        args: &Value,
        caller: &Caller,
        retry: Option<&Retry>,
        cx: &Cx<'_>,
        world: &'w super::World,
    ) -> (Option<&'w Tool>, Ending) {
        if !world.settings.mcp_traffic_enabled {
            return (
                None,
                Ending::denied(crate::governance::Denial::TrafficDisabled.to_string())
                    .because(crate::metrics::REASON_KILL_SWITCH),
            );
        }
        if !caller.client.traffic_enabled {
            let name = &caller.client.name;
            return (
                None,
                Ending::denied(format!(
                    "tool calls of the AI client {name:?} are turned off by its kill switch; ask your toolgate administrator"
                ))
                .because(crate::metrics::REASON_CLIENT_DISABLED),
            );
        }
        if request.name == super::requestable::REQUEST_TOOL {
            let subject = world.subject(&caller.user, Some(&caller.token));
            if let Some(answer) =
                super::requestable::request_access(&self.state.store, world, &subject, args).await
            {
                return (None, answer.into());
            }
        }
        let name = bounded(request.name.as_ref());
        let not_listed = || {
            Ending::denied(format!("tool {name} is not in your tool list"))
                .because(crate::metrics::REASON_NOT_LISTED)
        };
        let Some(tool) = world
            .index
            .named(request.name.as_ref())
            .iter()
            .map(|&i| &world.tools[i])
            .find(|t| t.state != ToolState::Removed)
        else {
            return (None, not_listed());
        };
        let Some(server) = world.servers.iter().find(|s| s.id == tool.server_id) else {
            return (Some(tool), not_listed());
        };
        let subject = world.subject(&caller.user, Some(&caller.token));
        let policy = tracing::info_span!(
            target: TRACES,
            "policy decision",
            otel.name = "policy decision",
            toolgate.decision = Empty,
        );
        let decided = policy.in_scope(|| decide(&world.settings, server, tool, &subject));
        policy.record(
            "toolgate.decision",
            if decided.is_ok() { "allow" } else { "deny" },
        );
        if let Err(denial) = decided {
            if !matches!(
                denial,
                Denial::NotGranted { .. } | Denial::GrantExpired { .. }
            ) {
                let reason = crate::metrics::denial_reason(&denial);
                return (
                    Some(tool),
                    Ending::denied(denial.to_string()).because(reason),
                );
            }
            match super::requestable::intercept(&self.state.store, world, &subject, tool).await {
                Intercept::Refused => {
                    let reason = crate::metrics::denial_reason(&denial);
                    return (
                        Some(tool),
                        Ending::denied(denial.to_string()).because(reason),
                    );
                }
                Intercept::Granted { details } => {
                    // The grant is in the store, not in this snapshot:
                    // the call runs again on one that has it.
                    let mut ending = Ending::denied("access granted automatically");
                    ending.details = details;
                    ending.rerun = true;
                    return (Some(tool), ending);
                }
                Intercept::Answer(answer) => return (Some(tool), answer.into()),
            }
        }
        if let Some(problems) = self.invalid_arguments(tool, args) {
            let message = format!("invalid arguments for {}: {problems}", tool.name);
            return (Some(tool), Ending::error("invalid arguments", message));
        }
        // Call limits (crate::limits): after policy and argument checks,
        // before hooks, held-call approval and Salesforce, so a refused
        // call costs nothing upstream and uses no approval. The admission
        // holds the call's places in the concurrency limits until it ends.
        let _admission = match self.state.limiter.admit(
            &world.settings.limits,
            crate::limits::CallKeys {
                user_id: &caller.user.id,
                tool_id: &tool.id,
                tool_name: &tool.name,
                server_id: &server.id,
                server_name: &server.name,
                profiles: &world.profiles,
                now: crate::model::now_ms(),
            },
        ) {
            Ok(admission) => admission,
            Err(refusal) => return (Some(tool), Ending::limited(&refusal)),
        };
        // Tool-call hooks (crate::hooks); nothing is allocated unless one
        // matches.
        let probe = crate::hooks::Call {
            tool,
            server_name: &server.name,
            user_id: Some(&caller.user.id),
            user_email: &caller.user.email,
            client_id: &caller.client.id,
            client_name: &caller.client.name,
            profiles: &world.profiles,
            now: crate::model::now_ms(),
            call_id: "",
            dry_run: false,
        };
        let hooked = !world.hooks.is_empty()
            && (crate::hooks::any_match(&world.hooks, HookPhase::Before, &probe)
                || crate::hooks::any_match(&world.hooks, HookPhase::After, &probe));
        let call_id = if hooked {
            crate::model::new_id()
        } else {
            String::new()
        };
        let hook_call = crate::hooks::Call {
            call_id: &call_id,
            ..probe
        };
        let mut runs = Vec::new();
        let mut rewritten = None;
        if hooked && crate::hooks::any_match(&world.hooks, HookPhase::Before, &hook_call) {
            let mut value = args.clone();
            let report = crate::hooks::run_phase(
                &world.hooks,
                &world.hook_secrets,
                HookPhase::Before,
                &hook_call,
                &mut value,
                &self.state.http,
            )
            .await;
            runs.extend(report.runs.iter().cloned());
            if let Some(stop) = report.stopped() {
                let mut ending =
                    Ending::denied(stop.refusal()).because(crate::metrics::REASON_HOOK);
                crate::hooks::record(&mut ending.details, &runs);
                return (Some(tool), ending);
            }
            if report.mutated {
                // A rewrite must still fit the tool's input schema.
                if let Some(problems) = self.invalid_arguments(tool, &value) {
                    let mut ending = Ending::denied(format!(
                        "toolgate hooks rewrote the arguments of {} into ones it does not accept ({problems}), so the call was refused; ask your toolgate administrator",
                        tool.name
                    ))
                    .because(crate::metrics::REASON_HOOK);
                    crate::hooks::record(&mut ending.details, &runs);
                    return (Some(tool), ending);
                }
                rewritten = Some(value);
            }
        }
        let args = rewritten.as_ref().unwrap_or(args);
        // Approval of a single call, on the arguments as they will be
        // sent (after BEFORE hooks): held unless an approval of exactly
        // these arguments is waiting ([`super::held_calls`]).
        let approved = if crate::governance::needs_call_approval(
            &world.settings.governance.call_approval,
            tool,
        ) {
            match self
                .hold(tool, server, args, caller, retry, cx, world)
                .await
            {
                Ok(id) => Some(id),
                Err(mut ending) => {
                    crate::hooks::record(&mut ending.details, &runs);
                    return (Some(tool), ending);
                }
            }
        } else {
            None
        };
        let mut ending = self
            .connect_and_run(
                tool,
                server,
                args,
                caller,
                retry,
                approved.as_deref(),
                cx,
                &world.settings.limits,
            )
            .await;
        if hooked
            && ending.outcome == Outcome::Allowed
            && crate::hooks::any_match(&world.hooks, HookPhase::After, &hook_call)
            && let Some(structured) = ending.result.structured_content.as_mut()
        {
            let report = crate::hooks::run_phase(
                &world.hooks,
                &world.hook_secrets,
                HookPhase::After,
                &hook_call,
                structured,
                &self.state.http,
            )
            .await;
            runs.extend(report.runs.iter().cloned());
            if let Some(stop) = report.stopped() {
                // The result is withheld; the call did run in Salesforce.
                let details = std::mem::take(&mut ending.details);
                ending = Ending::denied(format!(
                    "{} (the tool did run in Salesforce; only its result is withheld)",
                    stop.refusal()
                ))
                .because(crate::metrics::REASON_HOOK);
                ending.details = details;
            } else if report.mutated {
                ending.result.content =
                    vec![ContentBlock::text(crate::hooks::render_text(structured))];
            }
        }
        if hooked {
            crate::hooks::record(&mut ending.details, &runs);
        }
        (Some(tool), ending)
    }

    /// Problems of `args` under `tool`'s input schema (up to five, joined
    /// by `; `), or `None` when they fit.
    fn invalid_arguments(&self, tool: &Tool, args: &Value) -> Option<String> {
        let validator = self.state.validator(tool)?;
        let problems: Vec<String> = validator
            .iter_errors(args)
            .take(5)
            .map(|e| {
                let path = e.instance_path().to_string();
                let field = path.trim_start_matches('/').replace('/', ".");
                let message = e.masked().to_string();
                if field.is_empty() {
                    message
                } else {
                    format!("{field}: {message}")
                }
            })
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// The user's Salesforce connection (or the connect prompt), then the
    /// call itself; `approved` names the held call whose approval this call
    /// uses (consumed once the connection is there, just before the run).
    #[allow(clippy::too_many_arguments)]
    async fn connect_and_run(
        &self,
        tool: &Tool,
        server: &crate::model::Server,
        args: &Value,
        caller: &Caller,
        retry: Option<&Retry>,
        approved: Option<&str>,
        cx: &Cx<'_>,
        limits: &crate::model::LimitSettings,
    ) -> Ending {
        let live = match self
            .state
            .oauth
            .connection(&caller.user.id, &tool.server_id)
            .await
        {
            Ok(Some(live)) => live,
            Ok(None) => {
                // A retry's state names the server it asked about; a state
                // for another server (the tool moved) or of a held call
                // counts as none.
                let retry =
                    retry.filter(|r| r.server_id == tool.server_id && r.held_call.is_none());
                return self.connect_prompt(tool, &caller.user.id, retry, cx).await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read the connection");
                return Ending::error(
                    "storage error",
                    "toolgate could not read your connection; try again",
                );
            }
        };
        // The org API-usage guard, before the approval is used and
        // before Salesforce: the org is known once the connection is.
        let usage = self
            .state
            .limiter
            .org_usage(&live.connection.salesforce_org_id);
        if let Err(refusal) = self.state.limiter.org_guard(limits, &usage, &tool.name) {
            let mut ending = Ending::limited(&refusal);
            if let Some(id) = approved {
                ending.details.insert("held_call".into(), json!(id));
            }
            return ending;
        }
        if let Some(id) = approved
            && let Err(err) = super::held_calls::consume(&self.state.store, id).await
        {
            let mut ending = match err {
                super::held_calls::ConsumeError::Gone(_) => {
                    Ending::denied(err.to_string()).because(crate::metrics::REASON_CALL_APPROVAL)
                }
                super::held_calls::ConsumeError::Store(err) => {
                    tracing::error!(error = %err, "cannot use a held call's approval");
                    Ending::error(
                        "storage error",
                        "toolgate could not record the approval's use, so the call was not run; try again",
                    )
                }
            };
            ending.details.insert("held_call".into(), json!(id));
            return ending;
        }
        let api_version = server.api_version.clone();
        let mut ending = self
            .run(tool, &api_version, live, args, caller, cx, &usage)
            .await;
        if let Some(id) = approved {
            ending.details.insert("held_call".into(), json!(id));
        }
        ending
    }

    /// The approval gate of a call whose tool needs one
    /// ([`super::held_calls::gate`]): `Ok` with the approved held call's id
    /// to run it on, or the answer that holds (or refuses) it.
    #[allow(clippy::too_many_arguments)]
    async fn hold(
        &self,
        tool: &Tool,
        server: &crate::model::Server,
        args: &Value,
        caller: &Caller,
        retry: Option<&Retry>,
        cx: &Cx<'_>,
        world: &super::World,
    ) -> Result<String, Ending> {
        use super::held_calls::{Call, Client, Gate, gate};
        let form = cx
            .client_capabilities()
            .and_then(|c| c.elicitation)
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        let client = Client {
            input_required: is_modern(cx) && form,
        };
        let call = Call {
            caller,
            tool,
            server,
            args,
            world,
            retry,
        };
        match gate(&self.state.store, &self.state.prompts, call, client).await {
            Ok(Gate::Approved(id)) => Ok(id),
            Ok(Gate::Held(notice)) => {
                let mut result = text_error(notice.message.clone());
                result.meta = Some(rmcp::model::MetaObject(notice.meta()));
                Err(Ending {
                    outcome: Outcome::Denied,
                    reason: notice.reason.clone(),
                    result,
                    details: notice.details(),
                    input: notice.input,
                    rerun: false,
                    denial: crate::metrics::REASON_CALL_APPROVAL,
                })
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read or hold held calls");
                Err(Ending::error(
                    "storage error",
                    "toolgate could not check this call's approval, so it was not run; try again",
                ))
            }
        }
    }

    /// `tools/call`; fills `seen` with the metric labels of how it ended.
    async fn handle_call(
        &self,
        request: CallToolRequestParams,
        cx: &Cx<'_>,
        started: Instant,
        seen: &mut CallSeen,
    ) -> Result<CallToolResponse, McpError> {
        let caller = &cx.caller;
        // Until this call is done (returned or dropped), its request id
        // stays taken even if the client drops the request's stream.
        let _handling = cx
            .session
            .as_deref()
            .map(|s| Handling::new(&self.state.in_flight, s, cx.id.clone()));
        // A retry after a connect prompt (2026-07-28): its state must be
        // one toolgate sealed for this user and tool.
        let retry = match &request.request_state {
            None => None,
            Some(state) => match self.state.prompts.open(
                state,
                &caller.user.id,
                &request.name,
                request.input_responses.as_ref(),
            ) {
                Ok(retry) => retry,
                Err(err) => {
                    tracing::debug!(error = %err, cause = ?std::error::Error::source(&err), "refused requestState");
                    return Err(McpError::invalid_params(err.to_string(), None));
                }
            },
        };
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let (target, ending, verbosity) = match self.state.world().await {
            Ok(world) => {
                let (tool, mut ending) = self
                    .call(&request, &args, caller, retry.as_ref(), cx, &world)
                    .await;
                let mut target = call_target(&world, tool, &request.name);
                let mut verbosity = world.settings.governance.audit_verbosity;
                if ending.rerun {
                    // An automatic grant was just written: once more, on a
                    // snapshot that has it (the store's generation moved).
                    let granted = std::mem::take(&mut ending.details);
                    match self.state.world().await {
                        Ok(fresh) => {
                            let (tool, again) = self
                                .call(&request, &args, caller, retry.as_ref(), cx, &fresh)
                                .await;
                            target = call_target(&fresh, tool, &request.name);
                            verbosity = fresh.settings.governance.audit_verbosity;
                            ending = again;
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "cannot read policy state");
                            ending = Ending::error(
                                "storage error",
                                "toolgate granted your access request but could not read its state; call the tool again",
                            );
                        }
                    }
                    ending.details.extend(granted);
                }
                (target, ending, verbosity)
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read policy state");
                let ending = Ending::error(
                    "storage error",
                    "toolgate could not read its state; try again",
                );
                let verbosity = AuditVerbosity::Standard;
                (CallTarget::unknown(&request.name), ending, verbosity)
            }
        };
        let mut details = json!({
            "tool": target.tool,
            "tool_id": target.tool_id,
            "server": target.server,
            "server_id": target.server_id,
            "token_id": caller.token.id,
            "client": {
                "id": caller.client.id,
                "name": caller.client.name,
                "type": caller.client.client_type,
            },
        });
        if let Value::Object(details) = &mut details {
            audit_details(details, verbosity, &args, &ending);
        }
        let mut event = AuditEvent::allowed(
            &format!("user:{}", caller.user.email),
            Action::ToolCall,
            target.describe(),
        )
        .with_reason(audit_reason(&ending.reason, &args))
        .with_details(details);
        event.outcome = ending.outcome;
        super::spans::record_outcome(ending.outcome);
        if target.tool_id.is_some() {
            seen.tool = target.tool.into();
        }
        seen.outcome = match ending.outcome {
            Outcome::Allowed => crate::metrics::OK,
            Outcome::Denied => {
                metrics::counter!(crate::metrics::DENIED_CALLS, crate::metrics::LABEL_REASON => ending.denial)
                    .increment(1);
                crate::metrics::DENIED
            }
            Outcome::Error => crate::metrics::ERROR,
        };
        event.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let written = self
            .state
            .store
            .append_audit(vec![event])
            .instrument(
                tracing::info_span!(target: TRACES, "audit write", otel.name = "audit write"),
            )
            .await;
        if let Err(err) = written {
            // Fail closed: no result leaves without its audit event.
            tracing::error!(error = %err, "cannot write the audit event of a tool call");
            seen.outcome = crate::metrics::ERROR;
            return Ok(Ending::error(
                "audit log unavailable",
                "toolgate could not record this call in its audit log, so its result is withheld; if the tool changes data, the change may have been applied: check before retrying",
            )
            .result
            .into());
        }
        Ok(ending.response())
    }

    /// The policy snapshot a `tools/list` is answered from.
    async fn snapshot(&self, cx: &Cx<'_>) -> Result<Arc<super::World>, McpError> {
        // Its span lasts until this returns; only the state read awaits.
        let span = super::spans::request_span("tools/list", None, cx, None);
        let world = self
            .state
            .world()
            .instrument(span.clone())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot read policy state");
                McpError::internal_error("toolgate could not read its state; try again", None)
            });
        super::spans::record_error(&span, world.as_ref().err());
        world
    }

    /// Registers what a session was just listed, for list-changed
    /// notifications ([`notify`]).
    fn seen(&self, cx: &Cx<'_>, listing: &super::requestable::Listing<'_>, world: &super::World) {
        if let Some(session) = &cx.session {
            self.state.sessions.seen(
                session,
                &cx.caller.user.id,
                cx.peer.clone(),
                listing.names(world),
            );
        }
    }

    /// `tools/list` as rmcp's typed result.
    async fn list(&self, cx: &Cx<'_>) -> Result<ListToolsResult, McpError> {
        let _handling = cx
            .session
            .as_deref()
            .map(|s| Handling::new(&self.state.in_flight, s, cx.id.clone()));
        let world = self.snapshot(cx).await?;
        let subject = world.subject(&cx.caller.user, Some(&cx.caller.token));
        let listing = world.listing(&subject);
        self.seen(cx, &listing, &world);
        let mut result = ListToolsResult {
            tools: listing.tools(&world),
            ..Default::default()
        };
        // A session means 2025-xx: no caching hints (and no version lookup).
        if cx.session.is_none() && is_modern(cx) {
            result.ttl_ms = Some(super::TOOLS_TTL_MS);
            result.cache_scope = Some(CacheScope::Private);
        }
        Ok(result)
    }

    /// `tools/list` on a session, answered by the transport's direct path:
    /// the JSON of the `result` object (`{"tools":[...]}`, as rmcp would
    /// write [`ListToolsResult`]), written from each tool's JSON made once
    /// per policy snapshot ([`super::World::listed_json`]).
    pub(super) async fn list_json(&self, cx: &Cx<'_>) -> Result<Vec<u8>, McpError> {
        let started = Instant::now();
        let world = match self.snapshot(cx).await {
            Ok(world) => world,
            Err(err) => {
                crate::metrics::mcp_operation(
                    "tools/list",
                    "",
                    crate::metrics::JSONRPC_ERROR,
                    started.elapsed(),
                );
                return Err(err);
            }
        };
        let subject = world.subject(&cx.caller.user, Some(&cx.caller.token));
        let listing = world.listing(&subject);
        self.seen(cx, &listing, &world);
        let mut out = Vec::with_capacity(16 + listing.allowed.len() * 1024);
        out.extend_from_slice(b"{\"tools\":");
        listing.write_json(&world, &mut out);
        out.push(b'}');
        crate::metrics::mcp_operation("tools/list", "", crate::metrics::OK, started.elapsed());
        Ok(out)
    }

    /// `tools/call` timed and traced, for rmcp and the direct path alike.
    pub(super) async fn call_tool_with(
        &self,
        request: CallToolRequestParams,
        cx: &Cx<'_>,
    ) -> Result<CallToolResponse, McpError> {
        let started = Instant::now();
        let mut seen = CallSeen {
            tool: crate::metrics::OTHER.into(),
            outcome: crate::metrics::JSONRPC_ERROR,
        };
        let span = super::spans::request_span(
            "tools/call",
            Some(bounded(&request.name).as_str()),
            cx,
            request.meta.as_ref(),
        );
        let result = self
            .handle_call(request, cx, started, &mut seen)
            .instrument(span.clone())
            .await;
        super::spans::record_answer(&span, &result);
        crate::metrics::mcp_operation("tools/call", seen.tool, seen.outcome, started.elapsed());
        result
    }
}

impl ServerHandler for Gateway {
    /// rmcp hands a request for an MCP method whose `params` do not fit
    /// its schema (and any unknown method) to this hook.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        // Always a JSON-RPC error; the method as sent is not a label (it
        // is unbounded).
        crate::metrics::mcp_operation(
            crate::metrics::OTHER,
            "",
            crate::metrics::JSONRPC_ERROR,
            std::time::Duration::ZERO,
        );
        let _handling = caller(&context).ok().and_then(|(_, session)| {
            session.map(|s| Handling::new(&self.state.in_flight, &s, context.id.clone()))
        });
        let method = bounded(&request.method);
        let removed = Cx::of(&context).is_ok_and(|cx| is_modern(&cx))
            && super::transport::REMOVED_IN_2026_07_28.contains(&request.method.as_str());
        if !removed && super::transport::MCP_REQUEST_METHODS.contains(&request.method.as_str()) {
            Err(McpError::invalid_params(
                super::transport::invalid_params_message(&method),
                None,
            ))
        } else {
            Err(McpError::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!("method not found: {method}"),
                None,
            ))
        }
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("toolgate", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Salesforce tools governed by toolgate. Each call runs as your own Salesforce user; \
             the first call asks you to connect your Salesforce account.",
        )
    }

    /// `initialize` as rmcp does it (the peer's info kept, the version
    /// negotiated), timed.
    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, McpError> {
        let started = Instant::now();
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request);
        let outcome = crate::metrics::outcome_of(&result);
        crate::metrics::mcp_operation("initialize", "", outcome, started.elapsed());
        result
    }

    async fn ping(&self, _context: RequestContext<RoleServer>) -> Result<(), McpError> {
        crate::metrics::mcp_operation("ping", "", crate::metrics::OK, std::time::Duration::ZERO);
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let started = Instant::now();
        let _ = request;
        let result = match Cx::of(&context) {
            Ok(cx) => self.list(&cx).await,
            Err(err) => Err(err),
        };
        let outcome = crate::metrics::outcome_of(&result);
        crate::metrics::mcp_operation("tools/list", "", outcome, started.elapsed());
        result
    }

    /// toolgate has tools only: of a `subscriptions/listen` filter it
    /// accepts `toolsListChanged` alone (rmcp acknowledges the accepted
    /// part, MCP 2026-07-28 "Subscriptions").
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(if requested.tools_list_changed == Some(true) {
            SubscriptionFilter::builder().tools_list_changed().build()
        } else {
            SubscriptionFilter::new()
        })
    }

    /// Holds one acknowledged `subscriptions/listen` stream: registered
    /// with [`notify`] (which sends `notifications/tools/list_changed` when
    /// the caller's list changes) until the client cancels the request or
    /// its connection drops, holding the session slot the transport took
    /// ([`ListenSlot`]). A stream that accepted nothing ends at once.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let start = context
            .request_context()
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<ListenSlot>())
            .and_then(ListenSlot::take)
            .ok_or_else(|| {
                McpError::internal_error("listen stream without a session slot", None)
            })?;
        if context.accepted().tools_list_changed != Some(true) {
            return Ok(());
        }
        let (caller, _) = caller(context.request_context())?;
        let _open = crate::metrics::Open::new(crate::metrics::MCP_STREAMS_OPEN);
        let listening = notify::Sessions::listen(
            &self.state,
            &caller.user.id,
            context.sink().clone(),
            start.tools,
        );
        notify::catch_up(&self.state, &listening).await;
        context.cancelled().await;
        drop(listening);
        drop(start.slot);
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match Cx::of(&context) {
            Ok(cx) => self.call_tool_with(request, &cx).await,
            Err(err) => {
                crate::metrics::mcp_operation(
                    "tools/call",
                    crate::metrics::OTHER,
                    crate::metrics::JSONRPC_ERROR,
                    std::time::Duration::ZERO,
                );
                Err(err)
            }
        }
    }

    /// Records the session's peer once its client is initialized, for the
    /// transport's direct path ([`super::sessions::Peers`]).
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        let session = context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok());
        if let Some(session) = session {
            self.state
                .peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session.into(), context.peer);
        }
    }
}

/// The metric labels of one `tools/call`: the tool's exposed name (when a
/// tool has the name called) and the outcome.
struct CallSeen {
    tool: metrics::SharedString,
    outcome: &'static str,
}

/// What a tool call was aimed at, by name, for its audit event. Every
/// outcome names it the same way, so a target filter finds a tool's allowed
/// and denied calls alike (ids of tools discovered in the same second look
/// alike, names do not).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallTarget {
    /// The tool's exposed name, or the name as sent (bounded) when no tool
    /// has it.
    tool: String,
    tool_id: Option<String>,
    /// The server's name, when the tool is known.
    server: Option<String>,
    server_id: Option<String>,
}

impl CallTarget {
    fn unknown(requested: &str) -> Self {
        Self {
            tool: bounded(requested),
            tool_id: None,
            server: None,
            server_id: None,
        }
    }

    /// The audit target: `tool/<exposed name> on <server name>`, or
    /// `tool/<name as sent>` when no tool has that name.
    fn describe(&self) -> String {
        match &self.server {
            Some(server) => format!("tool/{} on {server}", self.tool),
            None => format!("tool/{}", self.tool),
        }
    }
}

/// The target of a call to `requested`: the tool the call reached, else the
/// tool listed under that name (a call refused before the lookup, e.g. by
/// the kill switch, names it too), else the name as sent.
fn call_target(world: &super::World, reached: Option<&Tool>, requested: &str) -> CallTarget {
    let tool = reached.or_else(|| {
        world
            .index
            .named(requested)
            .iter()
            .map(|&i| &world.tools[i])
            .find(|t| t.state != ToolState::Removed)
    });
    let Some(tool) = tool else {
        return CallTarget::unknown(requested);
    };
    let server = world.servers.iter().find(|s| s.id == tool.server_id);
    CallTarget {
        tool: tool.name.clone(),
        tool_id: Some(tool.id.clone()),
        server: server.map(|s| s.name.clone()),
        server_id: Some(tool.server_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_echoing_the_query_is_audited_with_its_literals_masked() {
        let soql = "SELECT Id, Nope__c FROM Contact WHERE LastName = 'Souza' LIMIT 1";
        let args = json!({"soql": soql});
        let reason = format!(
            "Salesforce error INVALID_FIELD: \n{soql}\n       ^\nERROR at Row:1:Column:8\nNo such column 'Nope__c' on entity 'Contact'; call ana@acme.example"
        );
        let kept = audit_reason(&reason, &args);
        assert!(!kept.contains("Souza"), "{kept}");
        assert!(kept.contains("WHERE LastName = '?' LIMIT 1"), "{kept}");
        assert!(kept.contains("No such column 'Nope__c'"), "{kept}");
        assert!(kept.ends_with("call [REDACTED]"), "{kept}");
        assert_eq!(audit_reason("", &args), "");
    }

    #[test]
    fn audit_verbosity_decides_what_a_tool_call_event_keeps() {
        let args = json!({
            "object_name": "Contact",
            "fields": {"Email": "ana@acme.example", "Phone": "+1 415 555 0100"},
            "note": "card 4111 1111 1111 1111",
        });
        let mut result = CallToolResult::success(vec![ContentBlock::text("2 records")]);
        result.structured_content = Some(json!({"records": [{"Id": "1"}, {"Id": "2"}]}));
        let mut ending = Ending {
            outcome: Outcome::Allowed,
            reason: String::new(),
            result,
            input: None,
            details: Map::new(),
            rerun: false,
            denial: crate::metrics::REASON_OTHER,
        };
        ending.details.insert("held_call".into(), json!("h-1"));
        ending.details.insert(
            "hooks".into(),
            json!([{"name": "pii", "outcome": "MUTATED"}]),
        );
        let details = |verbosity| {
            let mut d = Map::new();
            audit_details(&mut d, verbosity, &args, &ending);
            Value::Object(d)
        };

        let minimal = details(AuditVerbosity::Minimal);
        assert_eq!(minimal, json!({"held_call": "h-1"}));

        let standard = details(AuditVerbosity::Standard);
        assert_eq!(standard["hooks"][0]["outcome"], "MUTATED");
        assert_eq!(
            standard["arguments"]["fields"]["field_names"],
            json!(["Email", "Phone"])
        );
        assert_eq!(standard["arguments"]["note"], "card [REDACTED]");
        assert!(standard.get("result").is_none());

        let full = details(AuditVerbosity::Full);
        assert_eq!(full["arguments"], standard["arguments"]);
        assert_eq!(full["hooks"], standard["hooks"]);
        assert_eq!(full["result"]["records"], 2);
        assert_eq!(
            full["result"]["bytes"],
            json!({"records": [{"Id": "1"}, {"Id": "2"}]})
                .to_string()
                .len()
        );
        for d in [&minimal, &standard, &full] {
            let text = d.to_string();
            assert!(!text.contains("ana@acme.example"), "{text}");
            assert!(!text.contains("4111"), "{text}");
            assert!(!text.contains("555 0100"), "{text}");
        }
    }

    #[test]
    fn audited_arguments_are_bounded_and_hide_record_values() {
        let args = json!({
            "object_name": "Contact",
            "fields": {"Email": "private@example.com", "LastName": "Souza"},
            "soql": "x".repeat(500),
        });
        let redacted = redact_arguments(&args);
        assert_eq!(redacted["object_name"], "Contact");
        assert_eq!(
            redacted["fields"]["field_names"],
            json!(["Email", "LastName"])
        );
        assert!(!redacted.to_string().contains("private@example.com"));
        assert_eq!(
            redacted["soql"].as_str().unwrap().chars().count(),
            AUDIT_STRING_CHARS + 1
        );
        let huge = json!({"a": vec!["y".repeat(100); 20], "b": vec!["z".repeat(100); 20]});
        assert_eq!(redact_arguments(&huge)["truncated"], true);
    }
}
