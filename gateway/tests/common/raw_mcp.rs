//! Raw streamable-HTTP MCP requests for transport tests: a POST with the
//! headers a client sends, and what came back.

use serde_json::Value;

/// What came back: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The JSON-RPC message in the body (plain JSON, or the first SSE
    /// `data:` line that holds one).
    pub fn message(&self) -> Value {
        if let Ok(v) = serde_json::from_str(&self.body) {
            return v;
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(|d| serde_json::from_str(d.trim()).ok())
            .unwrap_or_else(|| panic!("no JSON-RPC message in {:?}", self.body))
    }

    /// The names in a tools/list result.
    pub fn tool_names(&self) -> Vec<String> {
        let message = self.message();
        message["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {message}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The JSON-RPC error code of the message.
    pub fn error_code(&self) -> i64 {
        self.message()["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error in {}", self.body))
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

pub fn post(url: &str, token: &str, session: Option<&str>, body: &str) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(id) = session {
        request = request
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request
}

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
pub const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

/// Opens a 2025-11-25 session (initialize, then notifications/initialized)
/// as `token`; returns its id.
pub async fn open_session(mcp_url: &str, token: &str) -> String {
    let answer = send(post(mcp_url, token, None, INITIALIZE)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = answer.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let done = send(post(
        mcp_url,
        token,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await;
    assert_eq!(done.status, 202, "{}", done.body);
    session
}

/// Tool names `token` sees, sorted: a new 2025-11-25 session is opened
/// ([`open_session`]) and asked for tools/list.
pub async fn list_tools(mcp_url: &str, token: &str) -> Vec<String> {
    let session = open_session(mcp_url, token).await;
    let mut names = send(post(mcp_url, token, Some(&session), LIST))
        .await
        .tool_names();
    names.sort();
    names
}
