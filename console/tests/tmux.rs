//! The console in a real terminal: runs the `toolgate` binary under tmux
//! against a daemon started in this process, types into it with
//! `tmux send-keys`, reads the screen with `tmux capture-pane`, and checks
//! through the control API that approvals made with the keyboard reach the
//! daemon: tools from the review queue, an access request and a held call
//! (issue 15). Needs `tmux` on the PATH (CI installs it); without it the test
//! fails rather than skips.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use toolgate_console::client::Clients;
use toolgate_proto::v1;

/// The tmux session (and window) the console runs in.
const SESSION: &str = "console";
/// The actor the console reports, so the test can tell its changes apart.
const ACTOR: &str = "tmux-test";
/// How long the console may take to show what a step expects.
const DEADLINE: Duration = Duration::from_secs(20);
/// What the shell prints, with the exit status, when the console exits.
const EXITED: &str = "toolgate exited with status";
/// The whole Salesforce catalog, discovered at registration.
const CATALOG_TOOLS: usize = 13;

/// A private tmux server (its own socket and config in a temp directory),
/// killed when dropped, also when the test panics.
struct Tmux {
    socket: PathBuf,
    config: PathBuf,
}

impl Tmux {
    /// A server whose panes stay after their process exits (to read what
    /// it left on the screen), without a status line (the pane is the whole
    /// window), running commands with `/bin/sh` (not the user's shell), and
    /// without the user's `~/.tmux.conf`.
    fn new(dir: &Path) -> Self {
        let config = dir.join("tmux.conf");
        std::fs::write(
            &config,
            "set -g remain-on-exit on\nset -g status off\nset -g default-shell /bin/sh\n",
        )
        .unwrap();
        Self {
            socket: dir.join("tmux.sock"),
            config,
        }
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("tmux");
        // -u: UTF-8 capture output whatever the locale.
        command
            .arg("-u")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            // The server (and so the console) inherits this environment: an
            // admin token from the caller's shell would beat --data-dir.
            .env_remove("TOOLGATE_ADMIN_TOKEN")
            .env_remove("TMUX")
            .kill_on_drop(true);
        command
    }

    /// Runs a tmux command; returns its stdout, panics when it fails.
    async fn run(&self, args: &[&str]) -> String {
        let output = match self.command().args(args).output().await {
            Ok(output) => output,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
                "tmux is not installed: this test runs the console in a real terminal under \
                 tmux (apt-get install tmux / brew install tmux)"
            ),
            Err(err) => panic!("cannot run tmux: {err}"),
        };
        assert!(
            output.status.success(),
            "tmux {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts `shell_command` in a detached `cols` x `rows` session.
    async fn start(&self, cols: u16, rows: u16, shell_command: &str) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.run(&[
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            &cols,
            "-y",
            &rows,
            shell_command,
        ])
        .await;
    }

    /// Presses keys by tmux name (`Enter`, `Escape`, `Space`, `a` ...).
    async fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.run(&args).await;
    }

    /// Types `text` character by character.
    async fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", SESSION, "-l", text]).await;
    }

    /// The visible screen as text; with `history`, the lines scrolled off
    /// the top too.
    async fn screen(&self, history: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", SESSION];
        if history {
            args.extend(["-S", "-"]);
        }
        self.run(&args).await
    }

    /// Polls the screen until `done` holds; returns that screen. Panics
    /// after [`DEADLINE`] with the last screen.
    async fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for_in(false, what, done).await
    }

    /// [`Tmux::wait_for`], on the screen and, with `history`, the lines
    /// scrolled off it.
    async fn wait_for_in(&self, history: bool, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(history).await;
            if done(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out after {DEADLINE:?} waiting for {what}; screen:\n{screen}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .env_remove("TMUX")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `text` as one word for `sh -c`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Every tool by exposed name, as the daemon has it.
async fn tools_by_name(clients: &mut Clients) -> BTreeMap<String, v1::Tool> {
    let mut tools = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .tools
            .list_tools(v1::ListToolsRequest {
                page_size: 1000,
                page_token,
                omit_schemas: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        tools.extend(page.tools.into_iter().map(|t| (t.name.clone(), t)));
        if page.next_page_token.is_empty() {
            return tools;
        }
        page_token = page.next_page_token;
    }
}

/// The names of the tools in `state`.
fn names_in(tools: &BTreeMap<String, v1::Tool>, state: v1::ToolState) -> Vec<String> {
    tools
        .values()
        .filter(|t| t.state == state as i32)
        .map(|t| t.name.clone())
        .collect()
}

/// The tool names on the list rows marked `✓`.
fn marked_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|line| line.contains('✓'))
        .filter_map(|line| {
            line.split(|c: char| c.is_whitespace() || c == '│')
                .find(|word| word.starts_with("salesforce_"))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_tmux_shows_the_review_queue_and_approves_tools() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let (running, token) = common::start_daemon(&data_dir).await;
    let addr = running.grpc_addr;
    let mut clients = common::clients(addr, &token);
    let registered = clients
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Salesforce".into(),
            tool_prefix: "salesforce".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let discovered = registered.discovery.unwrap_or_default().added.len();
    assert_eq!(
        discovered, CATALOG_TOOLS,
        "tools discovered at registration"
    );
    let tools = tools_by_name(&mut clients).await;
    assert_eq!(
        names_in(&tools, v1::ToolState::PendingReview).len(),
        CATALOG_TOOLS,
        "every new tool waits for review: {tools:?}"
    );
    assert!(tools.contains_key("salesforce_get_limits"), "{tools:?}");

    let tmux = Tmux::new(dir.path());
    // The shell reports the exit status on the screen: tmux's own
    // `#{pane_dead_status}` is unreliable where tmux is built with
    // libutempter (it can miss the SIGCHLD; tmux issues 311 and 4559).
    let console = format!(
        "{} --grpc-addr {} --data-dir {} --actor {ACTOR}; echo \"{EXITED} $?\"",
        shell_quote(env!("CARGO_BIN_EXE_toolgate")),
        shell_quote(&format!("http://{addr}")),
        shell_quote(data_dir.to_str().unwrap()),
    );
    let started = Instant::now();
    tmux.start(100, 30, &console).await;

    // It opens on the review queue, loaded from the daemon.
    let pending = format!("Review queue: {CATALOG_TOOLS} pending");
    let screen = tmux
        .wait_for("the review queue", |s| {
            s.contains(&pending)
                && s.contains("salesforce_query")
                && s.contains("Pending review")
                && s.contains("● connected")
                && !s.contains("loading")
        })
        .await;
    assert!(screen.contains(" 2 Tools "), "{screen}");

    // `/` narrows the queue to one tool; `a` approves it without asking
    // (a read tool no one would gain).
    tmux.keys(&["/"]).await;
    tmux.type_text("get_limits").await;
    tmux.wait_for("the search text", |s| s.contains("/get_limits"))
        .await;
    tmux.keys(&["Enter"]).await;
    tmux.wait_for("the queue filtered to get_limits", |s| {
        s.contains(&format!("Review queue: 1 of {CATALOG_TOOLS} pending"))
            && s.contains("/get_limits")
            && s.contains("salesforce_get_limits")
            && !s.contains("salesforce_query")
    })
    .await;
    tmux.keys(&["a"]).await;
    let screen = tmux
        .wait_for("the approval to be reported", |s| {
            s.contains("• 1 tool approved")
                && s.contains(&format!("Review queue: 0 of {} pending", CATALOG_TOOLS - 1))
                && s.contains("No pending tool matches")
        })
        .await;
    assert!(
        !screen.contains("Approve 1 tool"),
        "no confirmation for one tool:\n{screen}"
    );
    let tools = tools_by_name(&mut clients).await;
    assert_eq!(
        names_in(&tools, v1::ToolState::Approved),
        ["salesforce_get_limits"],
        "{tools:?}"
    );
    assert_eq!(
        names_in(&tools, v1::ToolState::PendingReview).len(),
        CATALOG_TOOLS - 1
    );
    assert_eq!(
        tools["salesforce_get_limits"].updated_by,
        format!("admin:{ACTOR}")
    );

    // Esc clears the search; Space marks two rows; `a` asks first.
    tmux.keys(&["Escape"]).await;
    let pending = format!("Review queue: {} pending", CATALOG_TOOLS - 1);
    tmux.wait_for("the whole queue again", |s| {
        s.contains(&pending) && !s.contains("salesforce_get_limits")
    })
    .await;
    tmux.keys(&["Space"]).await;
    tmux.wait_for("one marked row", |s| s.contains("· 1 marked"))
        .await;
    tmux.keys(&["Space"]).await;
    let screen = tmux
        .wait_for("two marked rows", |s| s.contains("· 2 marked"))
        .await;
    let marked = marked_rows(&screen);
    assert_eq!(marked.len(), 2, "two rows show ✓:\n{screen}");
    tmux.keys(&["a"]).await;
    let screen = tmux
        .wait_for("the confirmation with its access preview", |s| {
            // `y` waits for the daemon's preview, so wait for it too.
            s.contains("Approve 2 tools?") && s.contains("No one gains access.")
        })
        .await;
    for name in &marked {
        assert!(
            screen.contains(name),
            "the confirmation names {name}:\n{screen}"
        );
    }
    assert!(
        tools_by_name(&mut clients)
            .await
            .values()
            .all(|t| !marked.contains(&t.name) || t.state == v1::ToolState::PendingReview as i32),
        "nothing changes before y"
    );
    tmux.keys(&["y"]).await;
    let pending = format!("Review queue: {} pending", CATALOG_TOOLS - 3);
    tmux.wait_for("the bulk approval to be reported", |s| {
        s.contains("• 2 tools approved") && s.contains(&pending) && !s.contains("· 2 marked")
    })
    .await;
    let tools = tools_by_name(&mut clients).await;
    let mut expected = marked;
    expected.push("salesforce_get_limits".into());
    expected.sort();
    assert_eq!(
        names_in(&tools, v1::ToolState::Approved),
        expected,
        "{tools:?}"
    );
    assert_eq!(
        names_in(&tools, v1::ToolState::PendingReview).len(),
        CATALOG_TOOLS - 3,
        "{tools:?}"
    );

    // `q` quits cleanly and leaves the alternate screen.
    tmux.keys(&["q"]).await;
    // History too: tmux scrolls the screen up a line to say the pane died.
    let screen = tmux
        .wait_for_in(true, "the console to exit", |s| s.contains(EXITED))
        .await;
    let status = screen
        .lines()
        .find_map(|line| line.trim().strip_prefix(EXITED))
        .map(str::trim);
    assert_eq!(
        status,
        Some("0"),
        "exit status; screen left behind:\n{screen}"
    );
    assert!(
        !screen.contains("Review queue"),
        "the console's screen is gone after exit:\n{screen}"
    );
    eprintln!("console session took {:?}", started.elapsed());

    drop(tmux);
    running.stop().await.unwrap();
}

/// Approves `names` (exposed tool names) at the daemon; returns their ids.
async fn approve_tools(clients: &mut Clients, names: &[&str]) -> Vec<String> {
    let tools = tools_by_name(clients).await;
    let mut ids = Vec::new();
    for name in names {
        let id = tools[*name].id.clone();
        clients
            .tools
            .update_tool(v1::UpdateToolRequest {
                id: id.clone(),
                state: Some(v1::ToolState::Approved.into()),
                classification: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// A toolset of `tool_ids` bound to a new profile obtained by `obtain`;
/// returns the profile's id.
async fn profile_with(
    clients: &mut Clients,
    name: &str,
    tool_ids: Vec<String>,
    obtain: v1::ProfileObtain,
    max_request_duration_secs: Option<u64>,
) -> String {
    let toolset = clients
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: format!("{name} tools"),
            description: String::new(),
            tool_ids,
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    clients
        .profiles
        .create_access_profile(v1::CreateAccessProfileRequest {
            name: name.into(),
            description: String::new(),
            toolset_ids: vec![toolset.id],
            obtain: obtain.into(),
            max_request_duration_secs,
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_tmux_approves_an_access_request_and_a_held_call() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let (running, token) = common::start_daemon(&data_dir).await;
    let addr = running.grpc_addr;
    let mut clients = common::clients(addr, &token);
    clients
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Salesforce".into(),
            tool_prefix: "salesforce".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids = approve_tools(&mut clients, &["salesforce_get_limits", "salesforce_query"]).await;
    let ana = clients
        .users
        .create_user(v1::CreateUserRequest {
            email: "ana@example.com".into(),
            display_name: "Ana".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    // Ana holds get_limits by an admin's grant, and may request query.
    let everyday = profile_with(
        &mut clients,
        "Everyday",
        vec![ids[0].clone()],
        v1::ProfileObtain::AdminGrant,
        None,
    )
    .await;
    clients
        .profiles
        .grant_user(v1::GrantUserRequest {
            profile_id: everyday,
            user_id: ana.id.clone(),
            expires_at: None,
            expected_revision: None,
        })
        .await
        .unwrap();
    let sales = profile_with(
        &mut clients,
        "Sales",
        vec![ids[1].clone()],
        v1::ProfileObtain::RequestWithApproval,
        Some(86_400),
    )
    .await;
    let opened = clients
        .access_requests
        .create_access_request(v1::CreateAccessRequestRequest {
            user_id: ana.id.clone(),
            profile_id: sales.clone(),
            reason: "pipeline review".into(),
            duration_secs: Some(28_800),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(opened.created);
    let request = opened.request.unwrap();
    assert_eq!(request.state, v1::AccessRequestState::Pending as i32);

    // Every call of get_limits waits for a person.
    let mut governance = clients
        .settings
        .get_settings(v1::GetSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap()
        .governance
        .unwrap_or_default();
    governance.call_approval = Some(v1::CallApprovalRule {
        tools: vec!["salesforce_get_limits".into()],
        classifications: vec![],
    });
    clients
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            governance: Some(governance),
            ..Default::default()
        })
        .await
        .unwrap();
    let issued = clients
        .users
        .issue_token(v1::IssueTokenRequest {
            user_id: ana.id.clone(),
            name: "laptop".into(),
            expires_at: None,
        })
        .await
        .unwrap()
        .into_inner();
    let answer =
        common::mcp_tool_call(running.http_addr, &issued.secret, "salesforce_get_limits").await;
    let held = clients
        .held_calls
        .list_held_calls(v1::ListHeldCallsRequest {
            state: v1::HeldCallState::Pending.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .held_calls;
    let [held] = &held[..] else {
        panic!("one held call: {held:?}; the call answered {answer}");
    };
    assert!(
        answer.contains(&held.id),
        "the client is told the id: {answer}"
    );

    let tmux = Tmux::new(dir.path());
    let console = format!(
        "{} --grpc-addr {} --data-dir {} --actor {ACTOR}; echo \"{EXITED} $?\"",
        shell_quote(env!("CARGO_BIN_EXE_toolgate")),
        shell_quote(&format!("http://{addr}")),
        shell_quote(data_dir.to_str().unwrap()),
    );
    tmux.start(100, 30, &console).await;
    tmux.wait_for("the console to connect", |s| s.contains("● connected"))
        .await;

    // 9: the access request queue, its count on the tab.
    tmux.keys(&["9"]).await;
    tmux.wait_for("the pending access request", |s| {
        s.contains("Requests (1)")
            && s.contains("Access requests pending: 1")
            && s.contains("ana@example.com")
            && s.contains("pipeline review")
    })
    .await;
    // `a` approves for a shorter time than asked (2h of the 8h).
    tmux.keys(&["a"]).await;
    tmux.wait_for("the approve form", |s| {
        s.contains("Approve ana@example.com's request") && s.contains("Asked for: 8h")
    })
    .await;
    tmux.type_text("2h").await;
    tmux.keys(&["Enter"]).await;
    tmux.wait_for("the approval to be reported", |s| {
        s.contains("access request approved: ana@example.com holds Sales for 2h")
            && s.contains("No pending access requests")
    })
    .await;
    let decided = clients
        .access_requests
        .get_access_request(v1::GetAccessRequestRequest {
            id: request.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    assert_eq!(decided.state, v1::AccessRequestState::Approved as i32);
    assert_eq!(decided.granted_duration_secs, Some(7_200));
    assert_eq!(decided.decided_by, format!("admin:{ACTOR}"));
    let tools = clients
        .users
        .list_user_tools(v1::ListUserToolsRequest {
            user_id: ana.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tool_names;
    assert!(
        tools.contains(&"salesforce_query".to_owned()),
        "the grant was made: {tools:?}"
    );

    // 0: the held call, with its arguments; `a` shows them before `y`.
    tmux.keys(&["0"]).await;
    tmux.wait_for("the held call and its arguments", |s| {
        s.contains("Held calls (1)")
            && s.contains("salesforce_get_limits")
            && s.contains("Arguments, exactly as they will be sent")
            && s.contains("{}")
    })
    .await;
    tmux.keys(&["a"]).await;
    tmux.wait_for("the confirmation with the arguments", |s| {
        s.contains("Approve this call of salesforce_get_limits?") && s.contains("runs once")
    })
    .await;
    let still = clients
        .held_calls
        .get_held_call(v1::GetHeldCallRequest {
            id: held.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .held_call
        .unwrap();
    assert_eq!(
        still.state,
        v1::HeldCallState::Pending as i32,
        "nothing changes before y"
    );
    tmux.keys(&["y"]).await;
    tmux.wait_for("the held call approval to be reported", |s| {
        s.contains("held call approved") && s.contains("No call waits for approval")
    })
    .await;
    let approved = clients
        .held_calls
        .get_held_call(v1::GetHeldCallRequest {
            id: held.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .held_call
        .unwrap();
    assert_eq!(approved.state, v1::HeldCallState::Approved as i32);
    assert_eq!(approved.decided_by, format!("admin:{ACTOR}"));

    tmux.keys(&["q"]).await;
    let screen = tmux
        .wait_for_in(true, "the console to exit", |s| s.contains(EXITED))
        .await;
    let status = screen
        .lines()
        .find_map(|line| line.trim().strip_prefix(EXITED))
        .map(str::trim);
    assert_eq!(
        status,
        Some("0"),
        "exit status; screen left behind:\n{screen}"
    );

    drop(tmux);
    running.stop().await.unwrap();
}
