//! Shared by the console's integration tests: a real daemon on port 0 in a
//! temp data directory, and a harness that runs the console's update step
//! against a real worker until every request has been answered.

#![allow(dead_code, missing_docs)]

use std::path::Path;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use tokio::sync::mpsc;
use toolgate_console::action::Action;
use toolgate_console::client::{AdminToken, Clients};
use toolgate_console::state::App;
use toolgate_console::ui::{self, Theme};
use toolgate_console::worker::Worker;
use toolgate_gateway::app::Running;

// The gateway's tests start their daemons with this too.
#[path = "../../../gateway/tests/common/daemon.rs"]
mod daemon;

/// Starts a daemon on 127.0.0.1:0 in `data_dir` (public URL
/// https://toolgate.example.com); returns it and its admin token.
pub async fn start_daemon(data_dir: &Path) -> (Running, String) {
    daemon::start(data_dir).await
}

/// Console clients for a daemon at `addr` with `token`.
pub fn clients(addr: std::net::SocketAddr, token: &str) -> Clients {
    toolgate_console::client::connect(
        &format!("http://{addr}"),
        AdminToken::new(token)
            .unwrap()
            .with_actor("console-test")
            .unwrap(),
    )
    .unwrap()
}

/// The console's model wired to a real worker, driven by hand.
pub struct Harness {
    pub app: App,
    worker: Worker,
    replies: mpsc::Receiver<Action>,
}

impl Harness {
    /// A console of `width` x `height` talking to `clients`; the first
    /// loads have completed when this returns.
    pub async fn new(clients: Clients, addr: &str, width: u16, height: u16) -> Self {
        let (tx, replies) = mpsc::channel(1024);
        let worker = Worker::start(clients, tx);
        let app = App::new(addr, Rect::new(0, 0, width, height));
        let mut harness = Self {
            app,
            worker,
            replies,
        };
        harness.settle().await;
        harness
    }

    /// Sends queued requests and applies replies until nothing but the
    /// audit tail is in flight.
    pub async fn settle(&mut self) {
        loop {
            for request in self.app.take_requests() {
                self.worker.send(request);
            }
            if self.app.busy() == 0 {
                return;
            }
            let action =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.replies.recv())
                    .await
                    .expect("the daemon answers within 30 s")
                    .expect("the worker runs");
            self.app.update(action);
        }
    }

    /// Applies replies (settling after each) until `done` holds; the audit
    /// tail's backlog, for one, arrives after [`Harness::settle`] returns.
    pub async fn until(&mut self, done: impl Fn(&App) -> bool) {
        while !done(&self.app) {
            let action =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.replies.recv())
                    .await
                    .expect("the daemon answers within 30 s")
                    .expect("the worker runs");
            self.act(action).await;
        }
    }

    /// Applies one action, then settles.
    pub async fn act(&mut self, action: Action) {
        self.app.update(action);
        self.settle().await;
    }

    /// Presses keys given as text: each char is a key, except `<Name>`
    /// sequences (`<Enter>`, `<Esc>`, `<Tab>`, `<BackTab>`, `<Space>`,
    /// `<Down>`, `<Up>`, `<Left>`, `<Right>`, `<Backspace>`, `<C-c>`).
    /// Settles after each key.
    pub async fn keys(&mut self, script: &str) {
        for key in parse_keys(script) {
            self.act(Action::Key(key)).await;
        }
    }

    /// Draws the console into a test backend and returns the text.
    pub fn render(&self, theme: Theme) -> String {
        render(&self.app, theme)
    }
}

/// Calls `tool` once through the daemon's MCP endpoint at `http_addr` as the
/// holder of `token` (streamable HTTP, MCP 2025-06-18: initialize, the
/// initialized notification, tools/call), so the daemon audits a real tool
/// call. Returns the tools/call response body.
pub async fn mcp_tool_call(http_addr: std::net::SocketAddr, token: &str, tool: &str) -> String {
    let http = reqwest::Client::new();
    let url = format!("http://{http_addr}/mcp");
    let post = |body: serde_json::Value, session: Option<&str>| {
        let mut request = http
            .post(&url)
            .bearer_auth(token)
            // The daemon's public URL is https://toolgate.example.com.
            .header("host", "toolgate.example.com")
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let init = post(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "console-test", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    init.text().await.unwrap();
    let initialized = post(
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(&session),
    )
    .await
    .unwrap();
    assert!(
        initialized.status().is_success(),
        "{}",
        initialized.status()
    );
    let called = post(
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}}),
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(called.status(), 200);
    called.text().await.unwrap()
}

/// Draws `app` at its size into a `TestBackend` and returns the screen as
/// lines of text.
pub fn render(app: &App, theme: Theme) -> String {
    let backend = TestBackend::new(app.size.width, app.size.height);
    let mut terminal = Terminal::new(backend).unwrap();
    terminal.draw(|frame| ui::draw(frame, app, theme)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Parses a key script (see [`Harness::keys`]).
pub fn parse_keys(script: &str) -> Vec<crossterm::event::KeyEvent> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut keys = Vec::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<' && chars.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
            let (code, modifiers) = match name.as_str() {
                "Enter" => (KeyCode::Enter, KeyModifiers::NONE),
                "Esc" => (KeyCode::Esc, KeyModifiers::NONE),
                "Tab" => (KeyCode::Tab, KeyModifiers::NONE),
                "BackTab" => (KeyCode::BackTab, KeyModifiers::SHIFT),
                "Space" => (KeyCode::Char(' '), KeyModifiers::NONE),
                "Down" => (KeyCode::Down, KeyModifiers::NONE),
                "Up" => (KeyCode::Up, KeyModifiers::NONE),
                "Left" => (KeyCode::Left, KeyModifiers::NONE),
                "Right" => (KeyCode::Right, KeyModifiers::NONE),
                "Backspace" => (KeyCode::Backspace, KeyModifiers::NONE),
                "C-c" => (KeyCode::Char('c'), KeyModifiers::CONTROL),
                other => panic!("unknown key <{other}>"),
            };
            keys.push(KeyEvent::new(code, modifiers));
        } else {
            let modifiers = if c.is_ascii_uppercase() {
                KeyModifiers::SHIFT
            } else {
                KeyModifiers::NONE
            };
            keys.push(KeyEvent::new(KeyCode::Char(c), modifiers));
        }
    }
    keys
}
