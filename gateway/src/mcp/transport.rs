//! The HTTP side of `/mcp`, in front of rmcp's streamable-HTTP service
//! (MCP 2025-11-25, "Transports"; JSON-RPC 2.0, section 5.1 for the error
//! codes): which methods are served, what a bad body is answered with, and
//! the session binding and limits of [`super::sessions`].
//!
//! - Methods other than GET, POST and DELETE get 405 with `Allow`.
//! - A POST body that cannot be read (a malformed chunked encoding) gets
//!   400; one over the public listener's body limit gets 413 (`RequestBodyLimit`
//!   in [`crate::listener::bound`] with a `Content-Length`, here without);
//!   one still arriving at the request timeout gets 408; JSON that does not parse
//!   gets 400 with JSON-RPC `-32700`; JSON that is not one JSON-RPC 2.0
//!   request, notification or response object gets 400 with `-32600`;
//!   params of an MCP method that do not fit its schema get `-32602`.
//!   A request on a session held here is first offered to the direct path
//!   ([`super::direct`]), which answers plain `tools/call`, `tools/list`
//!   and `ping` itself; anything else on a session is parsed by rmcp
//!   alone, its errors classified after rmcp refused the body. A request without a session (`initialize`, the stateless
//!   2026-07-28 protocol) has its envelope read first (`jsonrpc`,
//!   `method`, `id`, whether `result` or `error` is present) with borrowed
//!   strings, the rest skipped, not built: about 0.5 to 2 µs for a
//!   225-byte call.
//! - A request carrying an `mcp-session-id` that is not the caller's (same
//!   user and token) goes on with an id no session has, so rmcp answers it
//!   exactly as an unknown session (404). An id this replica does not hold
//!   is looked up in the store ([`super::persist`]): the caller's live
//!   session is restored by rmcp with a slot of the caller (429 or 503 at
//!   a limit, as for `initialize`); anything else is unknown. A store that
//!   cannot be read then gets 503 with JSON-RPC `-32603`. A session held
//!   here whose record another replica deleted (a DELETE there) is closed
//!   here too, at its next record refresh, and answered as unknown.
//! - An `initialize` takes a session slot first; at a limit it gets 429
//!   (the user's limit) or 503 (the gateway's) with a JSON-RPC error. The
//!   slot passes to the session rmcp creates ([`with_reservation`]).
//! - A `subscriptions/listen` (2026-07-28) takes a slot the same way, from
//!   the same per-user and gateway limits: a listen stream holds one open
//!   connection for as long as a session would. The slot rides in the
//!   request's extensions ([`ListenSlot`]) to the handler, which holds it
//!   until the stream ends; a request rmcp refuses before the handler
//!   drops it with the request.
//! - A request that reaches the gate without an authenticated caller (a
//!   wiring fault) gets 500 with JSON-RPC `-32603` and is logged; it never
//!   reaches rmcp.
//! - A successful `DELETE` of a session answers 204 (rmcp says 202, which
//!   the Python MCP SDK reports as "Session termination failed").
//!
//! It must not look at tool arguments or decide policy.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};

use super::auth::Caller;
use super::persist::{Restoring, SessionStates, with_restoring};
use super::sessions::{
    GatedSessionManager, Lookup, Refusal, Registry, Reservation, with_reservation,
};
use crate::model::now_ms;

/// Largest POST body read here: a backstop, as the public listener bounds
/// every body to `--http-max-body-kib` before it gets here
/// ([`crate::listener::bound`]; default 4 MiB, rmcp's own default too).
pub const MAX_BODY_BYTES: usize = 1024 * 1024 * 1024;

/// The session header (MCP 2025-11-25, "Session Management").
const SESSION_HEADER: &str = "mcp-session-id";

/// The 2026-07-28 request that opens a notification stream (MCP 2026-07-28,
/// "Subscriptions").
const LISTEN_METHOD: &str = "subscriptions/listen";

/// What a `subscriptions/listen` stream starts with, taken by [`gate`]
/// before rmcp acknowledges the stream.
#[derive(Debug)]
pub(crate) struct ListenStart {
    /// The session slot the stream holds while it lasts.
    pub(crate) slot: Reservation,
    /// The caller's tool list when the request arrived: a change after it
    /// (even one landing between the acknowledgment and the handler's
    /// registration) is told to the stream.
    pub(crate) tools: Vec<String>,
}

/// The [`ListenStart`] of a `subscriptions/listen` request, carried in the
/// request's extensions to the handler, which takes it out and holds it
/// while the stream lasts (request extensions must be `Clone`, hence the
/// shared cell; a request rmcp refuses drops it with the request).
#[derive(Debug, Clone)]
pub(crate) struct ListenSlot(Arc<std::sync::Mutex<Option<ListenStart>>>);

impl ListenSlot {
    /// The start, once: `None` if it was taken already.
    pub(crate) fn take(&self) -> Option<ListenStart> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The methods `/mcp` serves.
const ALLOWED_METHODS: &str = "GET, POST, DELETE";

/// An id no session has: rmcp's ids are UUIDv4, whose version digit is 4.
const NO_SESSION: HeaderValue = HeaderValue::from_static("00000000-0000-0000-0000-000000000000");

/// The client-to-server request methods of MCP 2025-11-25 ("Schema
/// Reference"), and those 2026-07-28 adds. A request for one of them whose `params` do not fit its
/// schema is an invalid-params error (`-32602`), not an unknown method.
pub(super) const MCP_REQUEST_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "server/discover",
    "subscriptions/listen",
];

/// Methods of [`MCP_REQUEST_METHODS`] that protocol 2026-07-28 removed
/// (SEP-2575: no handshake, no session-scoped state). A 2026-07-28 request
/// for one is an unknown method (`-32601`, HTTP 404), whatever its params.
pub(super) const REMOVED_IN_2026_07_28: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The message of the invalid-params error (`-32602`) for MCP method
/// `method`, one of [`MCP_REQUEST_METHODS`]: the same whether the
/// transport or the handler ([`super::Gateway`]) found the bad params.
pub(super) fn invalid_params_message(method: &str) -> String {
    format!("Invalid params: the params of {method} do not match its MCP schema")
}

/// JSON-RPC 2.0 "Parse error".
const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0 "Invalid Request".
const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC 2.0 "Invalid params".
const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC 2.0 "Internal error".
const INTERNAL_ERROR: i32 = -32603;
/// toolgate's server error (JSON-RPC 2.0 reserves -32000 to -32099 for
/// implementation-defined server errors): a session limit is reached.
pub const SESSION_LIMIT: i32 = -32000;

/// State of [`gate`].
#[derive(Debug)]
pub struct Gate {
    registry: Arc<Registry>,
    states: Arc<SessionStates>,
    manager: Arc<GatedSessionManager>,
    /// For the tool list a listen stream starts from.
    state: Arc<super::McpState>,
    /// The `Host` and `Origin` values the direct path answers; any other
    /// request goes to rmcp, whose check refuses what these do not allow.
    rebinding: super::direct::Rebinding,
}

impl Gate {
    /// A gate over the sessions `manager` keeps.
    /// Only requests whose `Host` (and `Origin`, when sent) `public_url`
    /// allows ([`super::allowed_hosts`], [`super::allowed_origins`]) take
    /// the direct path.
    pub fn new(manager: &Arc<GatedSessionManager>, public_url: &str) -> Self {
        Self {
            registry: manager.registry().clone(),
            states: manager.states().clone(),
            manager: manager.clone(),
            state: manager.state().clone(),
            rebinding: super::direct::Rebinding::new(public_url),
        }
    }
}

/// What the gate does with a request's session id.
enum Admit {
    /// On to rmcp as it is.
    Pass,
    /// On to rmcp, which restores the session from the store.
    Restore(Box<Restoring>),
    /// On to rmcp with an id no session has (404).
    Unknown,
}

/// Decides on session `id` for `caller` (see the module docs); `Err` is
/// the answer to send instead.
async fn admit(gate: &Gate, id: &str, caller: &Caller, delete: bool) -> Result<Admit, Response> {
    match gate.registry.lookup(id, caller, now_ms()) {
        Lookup::Owned { refresh: None } => Ok(Admit::Pass),
        Lookup::Owned {
            refresh: Some(known),
        } => match gate.states.refresh(id, known).await {
            Ok(true) => Ok(Admit::Pass),
            Ok(false) => {
                // Deleted on another replica: it ended there.
                if let Err(err) = gate.manager.close_session(&SessionId::from(id)).await {
                    tracing::warn!(error = %err, "cannot close an MCP session ended elsewhere");
                }
                Ok(Admit::Unknown)
            }
            Err(err) => {
                // Held here: serve it; the next request tries again.
                tracing::warn!(error = %err, "cannot refresh an MCP session in the store");
                Ok(Admit::Pass)
            }
        },
        Lookup::NotOwned => Ok(Admit::Unknown),
        Lookup::Unknown => match gate.states.find(id, caller).await {
            Ok(None) => Ok(Admit::Unknown),
            // rmcp deletes the record; nothing to restore for that.
            Ok(Some(_)) if delete => Ok(Admit::Pass),
            Ok(Some(found)) => match gate.registry.reserve(caller) {
                Ok(slot) => Ok(Admit::Restore(Box::new(found.restoring(slot)))),
                Err(refusal) => Err(refused(refusal, None)),
            },
            Err(err) => {
                tracing::error!(error = %err, "cannot read an MCP session from the store");
                Err(jsonrpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    INTERNAL_ERROR,
                    "Internal error: the MCP session store cannot be read; try again",
                    None,
                ))
            }
        },
    }
}

/// A JSON-RPC error response with HTTP `status`.
fn jsonrpc_error(
    status: StatusCode,
    id: Option<&Value>,
    code: i32,
    message: &str,
    data: Option<Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    let body = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The parts of a JSON-RPC message the transport needs; the rest of the
/// body is skipped, not built.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// Why a body is not a JSON-RPC message.
#[derive(Debug, PartialEq, Eq)]
enum BadBody {
    /// Not JSON (`-32700`).
    Parse(String),
    /// JSON, but not one JSON-RPC 2.0 message object (`-32600`).
    Invalid(&'static str),
}

impl<'a> Envelope<'a> {
    /// Reads the envelope of `body`.
    fn parse(body: &'a [u8]) -> Result<Self, BadBody> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return match serde_json::from_slice::<IgnoredAny>(body) {
                Err(e) => Err(BadBody::Parse(e.to_string())),
                Ok(_) if first == Some(&b'[') => Err(BadBody::Invalid(
                    "JSON-RPC batches are not supported: send one message per request",
                )),
                Ok(_) => Err(BadBody::Invalid(
                    "the body must be a JSON-RPC 2.0 message object",
                )),
            };
        }
        let envelope: Envelope<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                BadBody::Invalid("the body is not a JSON-RPC 2.0 message object")
            } else {
                BadBody::Parse(e.to_string())
            }
        })?;
        if envelope.jsonrpc.as_deref() != Some("2.0") {
            return Err(BadBody::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        if envelope
            .id
            .as_ref()
            .is_some_and(|id| !(id.is_string() || id.is_i64()))
        {
            return Err(BadBody::Invalid("\"id\" must be a string or an integer"));
        }
        let answer = envelope.result.is_some() || envelope.error.is_some();
        match (&envelope.method, answer) {
            (Some(_), false) => Ok(envelope),
            (None, true) if envelope.id.is_some() => Ok(envelope),
            (Some(_), true) => Err(BadBody::Invalid(
                "a message has either \"method\" or \"result\"/\"error\", not both",
            )),
            _ => Err(BadBody::Invalid(
                "a message needs \"method\" (a request or notification) or \"id\" with \"result\" or \"error\" (a response)",
            )),
        }
    }

    /// The id, when it is a valid JSON-RPC id.
    fn id(&self) -> Option<&Value> {
        self.id.as_ref()
    }
}

/// Outermost on `/mcp`: methods other than GET, POST and DELETE get 405
/// with `Allow` (before authentication: the answer reveals nothing). GET
/// and DELETE of a 2026-07-28 request (no session) get 405 `Allow: POST`
/// from rmcp.
pub async fn allow_methods(request: Request, next: Next) -> Response {
    let method = request.method();
    if method == Method::GET || method == Method::POST || method == Method::DELETE {
        return next.run(request).await;
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, ALLOWED_METHODS)],
        "Method Not Allowed: /mcp serves GET, POST and DELETE\n",
    )
        .into_response()
}

/// Whether the request says its body is JSON (rmcp answers anything else
/// 415 itself).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// The whole body, or the response for a body that cannot be read.
async fn read_body(body: Body) -> Result<Bytes, Response> {
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(bytes),
        Err(err) => {
            let mut too_large = false;
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
            while let Some(e) = cause {
                too_large |= e.is::<http_body_util::LengthLimitError>();
                cause = e.source();
            }
            if too_large {
                Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload Too Large: the body exceeds the public listener's limit (http_max_body_kib)\n",
                )
                    .into_response())
            } else if crate::listener::RequestTimedOut::is_cause_of(&err) {
                Err((
                    StatusCode::REQUEST_TIMEOUT,
                    format!("Request Timeout: {err}\n"),
                )
                    .into_response())
            } else {
                Err(jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    PARSE_ERROR,
                    &format!("Parse error: the request body could not be read: {err}"),
                    None,
                ))
            }
        }
    }
}

fn refused(refusal: Refusal, id: Option<&Value>) -> Response {
    let (status, scope, limit) = match refusal {
        Refusal::User { limit } => (StatusCode::TOO_MANY_REQUESTS, "user", limit),
        Refusal::Total { limit } => (StatusCode::SERVICE_UNAVAILABLE, "gateway", limit),
    };
    jsonrpc_error(
        status,
        id,
        SESSION_LIMIT,
        &refusal.to_string(),
        Some(json!({"limit": limit, "scope": scope})),
    )
}

/// The answer to a body that is not a JSON-RPC message.
fn bad_body(bad: BadBody) -> Response {
    match bad {
        BadBody::Parse(detail) => jsonrpc_error(
            StatusCode::BAD_REQUEST,
            None,
            PARSE_ERROR,
            &format!("Parse error: the body is not valid JSON: {detail}"),
            None,
        ),
        BadBody::Invalid(why) => jsonrpc_error(
            StatusCode::BAD_REQUEST,
            None,
            INVALID_REQUEST,
            &format!("Invalid Request: {why}"),
            None,
        ),
    }
}

/// The answer to a body rmcp could not read (it says 415): not JSON, not
/// a JSON-RPC message, or, for an MCP method, params that do not fit the
/// method's schema. Parsed here only on that error path.
fn unreadable(bytes: &[u8]) -> Response {
    let envelope = match Envelope::parse(bytes) {
        Ok(envelope) => envelope,
        Err(bad) => return bad_body(bad),
    };
    let id = envelope.id();
    match envelope.method.as_deref() {
        Some(method) if MCP_REQUEST_METHODS.contains(&method) => jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_PARAMS,
            &invalid_params_message(method),
            None,
        ),
        _ => jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_REQUEST,
            "Invalid Request: the body is not a JSON-RPC message this server understands",
            None,
        ),
    }
}

/// The answer to a request without an authenticated caller. Authentication
/// runs first and always sets the caller; without one nothing here can be
/// checked, so nothing goes on to rmcp.
fn unauthenticated() -> Response {
    tracing::error!("an /mcp request reached the session gate unauthenticated");
    jsonrpc_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        INTERNAL_ERROR,
        "Internal error: the request could not be authenticated",
        None,
    )
}

/// Inside authentication on `/mcp`: checks POST bodies, binds sessions to
/// their caller and enforces the session limits (see the module docs).
pub async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(caller) = parts.extensions.get::<Caller>() else {
        return unauthenticated();
    };
    let delete = parts.method == Method::DELETE;
    let mut restoring = None;
    // A session held here and the caller's: its plain requests may take
    // the direct path.
    let mut held = None;
    let has_session = match parts.headers.get(SESSION_HEADER) {
        Some(value) => {
            let admitted = match value.to_str() {
                Ok(id) => match admit(&gate, id, caller, delete).await {
                    Ok(admitted) => admitted,
                    Err(response) => return response,
                },
                Err(_) => Admit::Unknown,
            };
            match admitted {
                Admit::Pass => held = value.to_str().ok().map(str::to_owned),
                Admit::Restore(r) => restoring = Some(*r),
                Admit::Unknown => {
                    parts.headers.insert(SESSION_HEADER, NO_SESSION);
                }
            }
            true
        }
        None => false,
    };
    let json_post = parts.method == Method::POST && is_json(&parts.headers);
    let mut reservation = None;
    let mut listen_slot = None;
    // The body again (a reference count, not a copy), for the rare answer
    // that needs its envelope after rmcp had it.
    let mut kept = None;
    let body = if json_post {
        let bytes = match read_body(body).await {
            Ok(bytes) => bytes,
            Err(response) => return response,
        };
        // Requests on a session (every tools/call of a 2025-xx client) go
        // to rmcp unparsed: a bad one comes back 415 and is classified
        // then. Without a session the envelope says whether an
        // `initialize` needs a session slot.
        if let Some(session) = &held
            && gate.rebinding.allows(&parts.headers)
            && let Some(response) =
                super::direct::serve(&gate.state, &mut parts, session, &bytes).await
        {
            // The answer counts as traffic too (a long call must not leave
            // its session idle from its start).
            gate.registry.touch(session, now_ms());
            return response;
        }
        if !has_session {
            // Still there: only an answer of the direct path takes it.
            let Some(caller) = parts.extensions.get::<Caller>() else {
                return unauthenticated();
            };
            match Envelope::parse(&bytes) {
                Ok(envelope) => match envelope.method.as_deref() {
                    Some("initialize") => match gate.registry.reserve(caller) {
                        Ok(slot) => reservation = Some(slot),
                        Err(refusal) => return refused(refusal, envelope.id()),
                    },
                    Some(LISTEN_METHOD) => {
                        let slot = match gate.registry.reserve(caller) {
                            Ok(slot) => slot,
                            Err(refusal) => return refused(refusal, envelope.id()),
                        };
                        let tools = match gate.state.world().await {
                            Ok(world) => world.allowed_names(&caller.user.id),
                            Err(err) => {
                                tracing::error!(error = %err, "cannot read policy state");
                                return jsonrpc_error(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    envelope.id(),
                                    INTERNAL_ERROR,
                                    "Internal error: toolgate could not read its state; try again",
                                    None,
                                );
                            }
                        };
                        listen_slot = Some(ListenStart { slot, tools });
                    }
                    _ => {}
                },
                Err(bad) => return bad_body(bad),
            }
        }
        kept = Some(bytes.clone());
        Body::from(bytes)
    } else {
        body
    };
    if delete && has_session && parts.headers.get(SESSION_HEADER) == Some(&NO_SESSION) {
        // rmcp answers a DELETE of any unknown session 202; MCP 2025-11-25
        // says 404, and another caller's session must look unknown.
        return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
    }
    if let Some(start) = listen_slot {
        parts
            .extensions
            .insert(ListenSlot(Arc::new(std::sync::Mutex::new(Some(start)))));
    }
    let request = Request::from_parts(parts, body);
    let mut response = match (reservation, restoring) {
        // rmcp's create_session takes the slot (see sessions::with_reservation).
        (Some(slot), _) => with_reservation(slot, next.run(request)).await,
        // rmcp's restore takes it (see persist::with_restoring).
        (None, Some(restoring)) => with_restoring(restoring, next.run(request)).await,
        (None, None) => next.run(request).await,
    };
    let status = response.status();
    if delete && status == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    } else if status == StatusCode::UNSUPPORTED_MEDIA_TYPE
        && let Some(bytes) = kept
    {
        // rmcp could not read a message whose envelope is valid: for an MCP
        // method its params do not fit the method's schema.
        return unreadable(&bytes);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Option<String>, BadBody> {
        Envelope::parse(body.as_bytes()).map(|e| e.method.map(Cow::into_owned))
    }

    #[test]
    fn envelopes_are_classified_like_json_rpc_says() {
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#),
            Ok(Some("tools/call".into()))
        );
        assert_eq!(
            parse(r#" {"method":"tools\/list","jsonrpc":"2.0","id":"a"}"#),
            Ok(Some("tools/list".into()))
        );
        assert_eq!(parse(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#), Ok(None));
        assert!(matches!(parse("{\"jsonrpc\":"), Err(BadBody::Parse(_))));
        assert!(matches!(parse("not json"), Err(BadBody::Parse(_))));
        assert!(matches!(parse(""), Err(BadBody::Parse(_))));
        for invalid in [
            "[]",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            "5",
            "\"x\"",
            "null",
            "{}",
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":2,"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
        ] {
            assert!(
                matches!(parse(invalid), Err(BadBody::Invalid(_))),
                "{invalid}: {:?}",
                parse(invalid)
            );
        }
    }
}
