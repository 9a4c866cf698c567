//! A minimal MCP client over streamable HTTP (MCP 2025-06-18, "Transports"):
//! raw JSON-RPC POSTs with reqwest, the `mcp-session-id` header, and the
//! `data:` lines of an SSE answer. Small and allocation-light so the load
//! generator, not the client library, sets the pace.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The protocol version this client speaks.
pub const PROTOCOL: &str = "2025-06-18";

/// One MCP session of one user.
#[derive(Debug, Clone)]
pub struct Session {
    http: reqwest::Client,
    url: String,
    auth: String,
    /// The session id the server assigned.
    pub id: String,
}

/// The JSON-RPC message of an SSE (or plain JSON) answer that carries a
/// `result` or `error`.
fn message(body: &str) -> anyhow::Result<Value> {
    if body.trim_start().starts_with('{') {
        return Ok(serde_json::from_str(body)?);
    }
    for line in body.lines() {
        if let Some(data) = line.strip_prefix("data:") {
            let data = data.trim();
            if data.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(data)?;
            if v.get("result").is_some() || v.get("error").is_some() {
                return Ok(v);
            }
        }
    }
    bail!("no JSON-RPC answer in {body:?}")
}

impl Session {
    /// `initialize` then `notifications/initialized` as `token` at `url`
    /// (`<public URL>/mcp`).
    ///
    /// Errors: HTTP or protocol errors, or no session id.
    pub async fn open(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Self> {
        let auth = format!("Bearer {token}");
        let body = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "toolgate-bench", "version": "1"}
            }
        });
        let response = http
            .post(url)
            .header("authorization", &auth)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let Some(id) = id else {
            bail!("initialize: {status} without a session id: {text}");
        };
        message(&text).context("initialize")?;
        let session = Self {
            http: http.clone(),
            url: url.to_owned(),
            auth,
            id,
        };
        let response = session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await?;
        if !response.status().is_success() {
            bail!("notifications/initialized: {}", response.status());
        }
        Ok(session)
    }

    async fn post(&self, body: &str) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(&self.url)
            .header("authorization", &self.auth)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", PROTOCOL)
            .body(body.to_owned())
            .send()
            .await
    }

    /// Sends a request whose JSON text is `body` and returns its `result`.
    ///
    /// Errors: HTTP errors, a JSON-RPC error.
    pub async fn request(&self, body: &str) -> anyhow::Result<Value> {
        let response = self.post(body).await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{status}: {text}");
        }
        let mut v = message(&text)?;
        if let Some(err) = v.get("error") {
            bail!("JSON-RPC error: {err}");
        }
        Ok(v["result"].take())
    }

    /// `tools/call` of `name` with `arguments`; the result.
    pub async fn call_tool(&self, name: &str, arguments: &Value) -> anyhow::Result<Value> {
        self.request(&with_id(&call_body(name, arguments))).await
    }

    /// `tools/list`; the number of tools listed.
    ///
    /// The answer is read for the tools' names only (every other field is
    /// skipped, not built): with 1,000 tools it is about 1 MB, and building
    /// it as `serde_json::Value` took several milliseconds of the measured
    /// round trip on the client's side.
    ///
    /// Errors: HTTP errors, a JSON-RPC error, a tool without a name.
    pub async fn list_tools(&self) -> anyhow::Result<usize> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/list","params":{{}}}}"#,
            next_id()
        );
        let response = self.post(&body).await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{status}: {text}");
        }
        count_tools(&text)
    }

    /// Ends the session (`DELETE` with its id).
    pub async fn close(&self) {
        let _ = self
            .http
            .delete(&self.url)
            .header("authorization", &self.auth)
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", PROTOCOL)
            .send()
            .await;
    }
}

/// The names of a `tools/list` answer; nothing else is built.
#[derive(serde::Deserialize)]
struct ListAnswer<'a> {
    #[serde(borrow)]
    result: Option<Listed<'a>>,
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct Listed<'a> {
    #[serde(borrow)]
    tools: Vec<Named<'a>>,
}

#[derive(serde::Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    name: std::borrow::Cow<'a, str>,
}

/// The number of tools in a `tools/list` answer (plain JSON, or the SSE
/// `data:` line that holds it), each with a name.
///
/// Errors: no answer, a JSON-RPC error, a malformed list.
pub fn count_tools(body: &str) -> anyhow::Result<usize> {
    let json = if body.trim_start().starts_with('{') {
        body
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| d.contains("\"result\"") || d.contains("\"error\""))
            .context("no JSON-RPC answer")?
    };
    let answer: ListAnswer<'_> = serde_json::from_str(json)?;
    if let Some(err) = answer.error {
        bail!("JSON-RPC error: {err}");
    }
    Ok(answer.result.context("no result")?.tools.len())
}

/// Request ids: unique per process, as a session's requests in flight must
/// not share an id (JSON-RPC 2.0 section 4).
static NEXT_ID: AtomicU64 = AtomicU64::new(100);

/// A fresh request id.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The JSON text of a `tools/call` request after its id: prepend
/// `{"jsonrpc":"2.0","id":<n>,` with [`with_id`].
pub fn call_body(name: &str, arguments: &Value) -> String {
    let full = json!({
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments}
    })
    .to_string();
    full[1..].to_owned()
}

/// A request from a body made by [`call_body`] and a fresh id.
pub fn with_id(rest: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{},{rest}", next_id())
}

/// The text content of a tool result.
pub fn result_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Whether a tool result is an error result (`isError: true`).
pub fn is_error(result: &Value) -> bool {
    result["isError"].as_bool().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_counted_in_json_and_sse_answers() {
        let json = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"b\"c"}]}}"#;
        assert_eq!(count_tools(json).unwrap(), 2);
        let sse = format!("id: 0\nretry: 3000\ndata:\n\nid: 1\ndata: {json}\n\n");
        assert_eq!(count_tools(&sse).unwrap(), 2);
        let error = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x"}}"#;
        assert!(count_tools(error).is_err());
        assert!(count_tools(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{}]}}"#).is_err());
    }
}
