//! The direct path: `tools/call`, `tools/list` and `ping` on a session held
//! here, answered by the transport itself with `Content-Type:
//! application/json` instead of through rmcp's session worker and an SSE
//! stream (MCP 2025-11-25, "Transports", "Sending Messages to the Server":
//! the server answers a POSTed request with either one JSON object or an
//! SSE stream, the client accepting both).
//!
//! rmcp's path costs a task and channel hop per request (HTTP service,
//! session worker, handler and back), a per-request SSE stream, and a
//! typed `tools/list` result serialized anew each time. Here the request is
//! parsed once, handed to the same [`Gateway`] code, and its answer
//! written out; `tools/list` from the JSON each tool got once per policy
//! snapshot. `tools/call` runs in its own task, as under rmcp, so a
//! client that goes away does not cut a call short of its audit event; its
//! request id stays taken until then ([`Served`]).
//!
//! Only plain requests take this path; anything else goes on to rmcp
//! unchanged and is answered exactly as before: another method, a body
//! that is not a single request with valid params, an `Accept` with
//! parameters or without both media types, an `MCP-Protocol-Version`
//! other than the session's, SEP-2243 `Mcp-*` headers, per-request
//! `_meta` beyond trace context and a progress token, or a session whose
//! client has not sent `notifications/initialized` yet (its peer is not
//! known here).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, ErrorData, RequestId, ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Gateway;
use super::McpState;
use super::auth::Caller;
use super::handler::Cx;
use super::sessions::Served;

/// `tools/call`, answered by the direct path.
const TOOLS_CALL: &str = "tools/call";
/// `tools/list`, answered by the direct path.
const TOOLS_LIST: &str = "tools/list";
/// `ping`, answered by the direct path.
const PING: &str = "ping";

/// `_meta` keys a direct request may carry: trace context (W3C Trace
/// Context, SEP-414) and a progress token (toolgate sends no progress).
const PLAIN_META: &[&str] = &["traceparent", "tracestate", "baggage", "progressToken"];

/// One JSON-RPC request, its params left as JSON text.
#[derive(Debug, Deserialize)]
struct Request<'a> {
    jsonrpc: &'a str,
    id: RequestId,
    method: &'a str,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// The keys of a params object's `_meta`, without building its values.
#[derive(Debug, Deserialize)]
struct Params<'a> {
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<std::collections::HashMap<&'a str, &'a RawValue>>,
}

/// The `Host` and `Origin` values the direct path answers (DNS-rebinding
/// protection, MCP 2025-11-25 "Transports", "Security Warning"): exactly
/// the public URL's ([`super::allowed_hosts`], [`super::allowed_origins`];
/// an origin entry ending in `:*` takes any port). A request with anything
/// else, or without `Host`, is left to rmcp, which refuses what these do
/// not allow (403) and checks the rest as it always did.
#[derive(Debug, Clone)]
pub(super) struct Rebinding {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Rebinding {
    /// The values `public_url` allows.
    pub(super) fn new(public_url: &str) -> Self {
        Self {
            hosts: super::allowed_hosts(public_url),
            origins: super::allowed_origins(public_url),
        }
    }

    /// Whether `headers` name an allowed `Host` and no or an allowed
    /// `Origin`.
    pub(super) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return false;
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        origins.next().is_none()
            && self
                .origins
                .iter()
                .any(|allowed| match allowed.strip_suffix('*') {
                    Some(prefix) => origin.strip_prefix(prefix).is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    }),
                    None => allowed == origin,
                })
    }
}

/// Whether `headers` accept both `application/json` and
/// `text/event-stream`, named plainly (no parameters, no wildcards).
fn accepts_both(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for entry in value.split(',') {
            let entry = entry.trim();
            if entry.contains(';') {
                return false;
            }
            json |= entry.eq_ignore_ascii_case("application/json");
            sse |= entry.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// Whether `headers` hold nothing the direct path would have to check
/// like rmcp does: no `Mcp-*` header besides the session id and a protocol
/// version equal to the session's (`negotiated`).
fn plain_headers(headers: &HeaderMap, negotiated: &str) -> bool {
    headers.iter().all(|(name, value)| {
        let name = name.as_str();
        if !name.starts_with("mcp-") || name == "mcp-session-id" {
            return true;
        }
        name == "mcp-protocol-version" && value.as_bytes() == negotiated.as_bytes()
    })
}

/// A JSON-RPC answer as an `application/json` response.
fn json_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The JSON of a JSON-RPC message rmcp would have sent.
fn message(message: &ServerJsonRpcMessage) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}` around a result's JSON.
fn wrap_result(id: &RequestId, result: &[u8]) -> Vec<u8> {
    let id = serde_json::to_vec(id).unwrap_or_default();
    let mut out = Vec::with_capacity(result.len() + id.len() + 32);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(&id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

/// A `tools/call` answer in the shape rmcp gives a peer on a protocol
/// before 2026-07-28 (rmcp 3.11 `ServerHandler::handle_request`): no
/// `resultType: "complete"`, object-only structured content, and an
/// `input_required` result refused as an invalid request.
fn legacy(
    answer: Result<rmcp::model::CallToolResponse, ErrorData>,
) -> Result<ServerResult, ErrorData> {
    let mut result = ServerResult::from(answer?);
    if matches!(result, ServerResult::InputRequiredResult(_)) {
        return Err(ErrorData::invalid_request(
            "InputRequiredResult requires negotiated protocol version 2026-07-28 or newer",
            None,
        ));
    }
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    Ok(result)
}

/// Answers `body`, a POST on `session` (held here and the caller's), if it
/// is a plain `tools/call`, `tools/list` or `ping` (see the module docs);
/// `None` leaves the request to rmcp untouched. Takes the caller out of
/// `parts` only when it answers.
pub(super) async fn serve(
    state: &Arc<McpState>,
    parts: &mut Parts,
    session: &str,
    body: &Bytes,
) -> Option<Response> {
    if !accepts_both(&parts.headers) {
        return None;
    }
    let request: Request<'_> = serde_json::from_slice(body).ok()?;
    if request.jsonrpc != "2.0" || ![TOOLS_CALL, TOOLS_LIST, PING].contains(&request.method) {
        return None;
    }
    let params = match request.params {
        Some(raw) => Some((raw, serde_json::from_str::<Params<'_>>(raw.get()).ok()?)),
        None => None,
    };
    if params
        .as_ref()
        .and_then(|(_, p)| p.meta.as_ref())
        .is_some_and(|meta| meta.keys().any(|k| !PLAIN_META.contains(k)))
    {
        return None;
    }
    let peer = state
        .peers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(session)
        .cloned()?;
    let negotiated = peer.peer_info()?.protocol_version.clone();
    // Sessions are 2025-xx (2026-07-28 has none); checked all the same, as
    // the legacy result shape below depends on it.
    if negotiated.as_str() >= rmcp::model::ProtocolVersion::V_2026_07_28.as_str()
        || !plain_headers(&parts.headers, negotiated.as_str())
    {
        return None;
    }
    // Params parsed as rmcp would; anything off is rmcp's to answer.
    let call = match request.method {
        TOOLS_CALL => {
            Some(serde_json::from_str::<CallToolRequestParams>(params.as_ref()?.0.get()).ok()?)
        }
        TOOLS_LIST => {
            if let Some((raw, _)) = &params {
                serde_json::from_str::<rmcp::model::PaginatedRequestParams>(raw.get()).ok()?;
            }
            None
        }
        _ => None,
    };
    let id = request.id;
    let Some(served) = Served::take(&state.in_flight, session, id.clone()) else {
        let refusal = ServerJsonRpcMessage::error(
            ErrorData::invalid_request(
                format!(
                    "request id {id} is already in use by a request in flight on this session; use a new id"
                ),
                None,
            ),
            Some(id),
        );
        return Some(json_response(message(&refusal)));
    };
    let caller = parts.extensions.remove::<Caller>()?;
    let headers = std::mem::take(&mut parts.headers);
    let gateway = Gateway::new(state.clone());
    let session = session.to_owned();
    if request.method == PING {
        drop(served);
        crate::metrics::mcp_operation(PING, "", crate::metrics::OK, std::time::Duration::ZERO);
        return Some(json_response(wrap_result(&id, b"{}")));
    }
    if let Some(call) = call {
        let answer = tokio::spawn(async move {
            let cx = Cx::direct(id.clone(), caller, session, &peer, &headers);
            let answer = match legacy(gateway.call_tool_with(call, &cx).await) {
                Ok(result) => ServerJsonRpcMessage::response(result, id),
                Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
            };
            drop(served);
            message(&answer)
        })
        .await;
        return Some(match answer {
            Ok(body) => json_response(body),
            Err(err) => {
                tracing::error!(error = %err, "a direct tools/call task failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response()
            }
        });
    }
    let cx = Cx::direct(id.clone(), caller, session, &peer, &headers);
    let body = match gateway.list_json(&cx).await {
        Ok(result) => wrap_result(&id, &result),
        Err(error) => message(&ServerJsonRpcMessage::error(error, Some(id))),
    };
    drop(served);
    Some(json_response(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_plain_accept_and_mcp_headers_take_the_direct_path() {
        assert!(accepts_both(&headers(&[(
            "accept",
            "application/json, text/event-stream"
        )])));
        assert!(accepts_both(&headers(&[
            ("accept", "text/event-stream"),
            ("accept", "Application/JSON")
        ])));
        assert!(!accepts_both(&headers(&[("accept", "application/json")])));
        assert!(!accepts_both(&headers(&[(
            "accept",
            "application/json;q=0, text/event-stream"
        )])));
        assert!(!accepts_both(&headers(&[("accept", "*/*")])));
        assert!(!accepts_both(&HeaderMap::new()));

        let v = "2025-06-18";
        assert!(plain_headers(&headers(&[("mcp-session-id", "x")]), v));
        assert!(plain_headers(
            &headers(&[("mcp-protocol-version", "2025-06-18")]),
            v
        ));
        assert!(!plain_headers(
            &headers(&[("mcp-protocol-version", "2025-11-25")]),
            v
        ));
        assert!(!plain_headers(&headers(&[("mcp-method", "tools/call")]), v));
        assert!(!plain_headers(&headers(&[("mcp-name", "x")]), v));
    }

    #[test]
    fn only_the_public_urls_host_and_origin_take_the_direct_path() {
        let public = Rebinding::new("https://gw.example.com:8443");
        assert!(public.allows(&headers(&[("host", "gw.example.com:8443")])));
        assert!(public.allows(&headers(&[
            ("host", "GW.example.com:8443"),
            ("origin", "https://gw.example.com:8443")
        ])));
        assert!(!public.allows(&headers(&[("host", "attacker.example.com")])));
        assert!(!public.allows(&headers(&[
            ("host", "gw.example.com:8443"),
            ("origin", "https://attacker.example.com")
        ])));
        assert!(!public.allows(&HeaderMap::new()));
        let local = Rebinding::new("http://127.0.0.1:8080");
        assert!(local.allows(&headers(&[
            ("host", "localhost"),
            ("origin", "http://localhost:5173")
        ])));
        assert!(!local.allows(&headers(&[
            ("host", "localhost"),
            ("origin", "http://localhost:")
        ])));
        assert!(!local.allows(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example:80")
        ])));
    }

    #[test]
    fn a_wrapped_result_is_the_json_rpc_response_rmcp_writes() {
        let result = ServerResult::empty(());
        for id in [RequestId::Number(7), RequestId::String("a\"b".into())] {
            let ours: serde_json::Value = serde_json::from_slice(&wrap_result(&id, b"{}")).unwrap();
            let theirs =
                serde_json::to_value(ServerJsonRpcMessage::response(result.clone(), id)).unwrap();
            assert_eq!(ours, theirs);
        }
    }
}
