//! The server span of an MCP request, exported as an OpenTelemetry trace
//! when traces are on ([`crate::telemetry`]). Names and attributes follow
//! the OpenTelemetry semantic conventions for MCP ("Semantic conventions
//! for Model Context Protocol (MCP)", gen-ai/mcp.md, status Development):
//! span name `{mcp.method.name} {target}` (the tool name for `tools/call`),
//! kind SERVER, and `mcp.method.name`, `mcp.protocol.version`,
//! `jsonrpc.request.id`, `jsonrpc.protocol.version`, `network.transport`,
//! `network.protocol.name`, `gen_ai.tool.name`, `gen_ai.operation.name`
//! (`execute_tool`), `error.type` and `rpc.response.status_code`; plus
//! toolgate's own `toolgate.outcome` (`allowed`, `denied` or `error`, as
//! the call's audit event has it).
//!
//! `tools/call` and `tools/list` have spans; other methods do not.
//! Never recorded: the session id, the token, the arguments, the result.

use rmcp::model::CallToolResponse;
use rmcp::{ErrorData as McpError, model::RequestMetaObject};

use super::handler::Cx;
use tracing::field::Empty;

use crate::model::Outcome;
use crate::telemetry::{self, TRACES};

/// The server span of one MCP request for `method` (`tools/call`,
/// `tools/list`) on `tool` (as the client sent it; cut to
/// [`MAX_TOOL_CHARS`]), its parent taken from the request's `params._meta`
/// or HTTP headers ([`telemetry::remote_parent`]). `meta` is the request's
/// own `_meta` when rmcp left it in the params; rmcp moves it to
/// `context.meta`, which is read too. A disabled span (traces off) costs
/// one check.
pub(super) fn request_span(
    method: &'static str,
    tool: Option<&str>,
    cx: &Cx<'_>,
    meta: Option<&RequestMetaObject>,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: TRACES,
        "mcp request",
        otel.name = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
        mcp.method.name = method,
        mcp.protocol.version = Empty,
        jsonrpc.request.id = %cx.id,
        jsonrpc.protocol.version = "2.0",
        network.transport = "tcp",
        network.protocol.name = "http",
        gen_ai.tool.name = Empty,
        gen_ai.operation.name = Empty,
        error.type = Empty,
        rpc.response.status_code = Empty,
        toolgate.outcome = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    match tool {
        Some(tool) => {
            let tool: String = tool.chars().take(MAX_TOOL_CHARS).collect();
            span.record("otel.name", format!("{method} {tool}"));
            span.record("gen_ai.tool.name", tool);
            span.record("gen_ai.operation.name", "execute_tool");
        }
        None => {
            span.record("otel.name", method);
        }
    }
    if let Some(version) = cx.protocol_version() {
        span.record("mcp.protocol.version", version.as_str());
    }
    let meta = meta.filter(|m| m.get_traceparent().is_some()).or(cx.meta());
    telemetry::set_remote_parent(
        &span,
        telemetry::remote_parent(cx.headers, meta.map(|m| &m.0.0)),
    );
    span
}

/// Longest tool name in a span name or attribute (names come from the
/// client).
const MAX_TOOL_CHARS: usize = 128;

/// Records how a `tools/call` ended on its span: `toolgate.outcome`.
pub(super) fn record_outcome(outcome: Outcome) {
    tracing::Span::current().record(
        "toolgate.outcome",
        match outcome {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        },
    );
}

/// Records the answer to a `tools/call` on its span: a tool error
/// (`isError: true`) is `error.type` `tool_error`, as the MCP conventions
/// say; a JSON-RPC error as [`record_error`]. Either sets the span status
/// to error.
pub(super) fn record_answer(span: &tracing::Span, answer: &Result<CallToolResponse, McpError>) {
    match answer {
        Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "error");
        }
        Ok(_) => {}
        Err(err) => record_error(span, Some(err)),
    }
}

/// Records a JSON-RPC error answer, if any, on its request's span: its
/// code in `error.type` and `rpc.response.status_code`, and status error.
pub(super) fn record_error(span: &tracing::Span, error: Option<&McpError>) {
    if let Some(err) = error
        && !span.is_disabled()
    {
        let code = err.code.0.to_string();
        span.record("error.type", code.as_str());
        span.record("rpc.response.status_code", code.as_str());
        span.record("otel.status_code", "error");
    }
}
