//! Several `toolgated` replicas on one PostgreSQL: three real daemon
//! processes, one sfsim org, a client spreading MCP and gRPC requests over
//! them. Checks what an ordinary load balancer without session affinity
//! needs: changes made on one replica are enforced on all (and how fast),
//! one token refresh across replicas, a connect link made on one replica
//! and completed through others, a 2025-11-25 session that outlives its
//! replica, a 2026-07-28 listen stream told of a change made on another
//! replica, and no acknowledged write or audit event lost to `kill -9`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::process::Spawned;
use common::{Clients, admin, clients, configure_sfsim_app, create_user, register_sfsim, toolset};
use serde_json::{Value, json};
use tokio::process::Command;
use toolgate_proto::v1;

const MASTER_KEY: &str = "3c1e5a7b9d0f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c";
const ADMIN_TOKEN: &str = "tga_replica-test-admin-token-0123456789";
const ANA_SF: &str = "ana.souza@acme-demo.example";
/// How long a change may take to reach every replica before the test
/// fails. The product's bound is 1 s (README, "Run several replicas"); the
/// figures printed are the measurement, this is only a guard against a
/// loaded machine.
const GUARD: Duration = Duration::from_secs(5);

/// One `toolgated` process on the shared database.
struct Replica {
    process: Spawned,
}

impl Replica {
    async fn start(database_url: &str, data_dir: &std::path::Path, public_url: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_toolgated"));
        command
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--public-url", public_url, "--log-level", "info"])
            .env("TOOLGATE_DATABASE_URL", database_url)
            .env("TOOLGATE_MASTER_KEY", MASTER_KEY)
            .env("TOOLGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("TOOLGATE_CONFIG");
        Self {
            process: Spawned::start(command).await,
        }
    }

    async fn admin(&self) -> Clients {
        clients(self.process.grpc, admin(ADMIN_TOKEN)).await
    }

    fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.process.http)
    }

    async fn kill_9(&mut self) {
        self.process.child.start_kill().unwrap();
        self.process.child.wait().await.unwrap();
    }
}

/// A 2025-11-25 MCP session opened with raw JSON-RPC posts.
struct Session {
    token: String,
    id: String,
}

async fn post(url: &str, token: &str, session: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(id) = session {
        request = request.header("mcp-session-id", id);
    }
    let response = request.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    let session_id = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    // An SSE answer: the JSON-RPC message is the `data:` line.
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .map_or_else(
            || serde_json::from_str(&text).unwrap_or(Value::Null),
            |d| serde_json::from_str(d).unwrap(),
        );
    let mut json = json;
    if let Some(id) = session_id {
        json["_session"] = Value::String(id);
    }
    (status, json)
}

/// Opens a 2026-07-28 `subscriptions/listen` stream (tools only) on
/// `replica` and reads it up to its acknowledgment.
async fn listen(replica: &Replica, token: &str) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "replicas", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mut response = reqwest::Client::new()
        .post(replica.mcp_url())
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.contains("notifications/subscriptions/acknowledged") {
        let chunk = tokio::time::timeout(GUARD, response.chunk())
            .await
            .expect("no listen acknowledgment")
            .unwrap()
            .expect("listen stream ended before its acknowledgment");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    response
}

impl Session {
    async fn open(replica: &Replica, token: &str) -> Self {
        let (status, answer) = post(
            &replica.mcp_url(),
            token,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "replicas-test", "version": "1"}}}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["_session"].as_str().unwrap().to_owned();
        let (status, _) = post(
            &replica.mcp_url(),
            token,
            Some(&id),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert_eq!(status, 202);
        Self {
            token: token.to_owned(),
            id,
        }
    }

    /// `tools/call` of `name` on `replica`: (HTTP status, JSON-RPC answer).
    async fn call(&self, replica: &Replica, name: &str) -> (u16, Value) {
        post(
            &replica.mcp_url(),
            &self.token,
            Some(&self.id),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": name, "arguments": {}}}),
        )
        .await
    }
}

fn text_of(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_ok(status: u16, answer: &Value) -> bool {
    status == 200 && answer["result"]["isError"] == json!(false)
}

/// Polls `check` on every replica until it holds on all of them, and
/// returns how long the slowest took, counted from `since`.
async fn until_all(
    what: &str,
    replicas: &[&Replica],
    since: Instant,
    check: impl AsyncFn(&Replica) -> bool,
) -> Duration {
    let mut slowest = Duration::ZERO;
    for replica in replicas {
        loop {
            if check(replica).await {
                slowest = slowest.max(since.elapsed());
                break;
            }
            assert!(
                since.elapsed() < GUARD,
                "{what}: not enforced on {} after {GUARD:?}",
                replica.process.http
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eprintln!("{what}: enforced on every replica after {slowest:?}");
    slowest
}

struct Cluster {
    replicas: Vec<Replica>,
    sim: sfsim::Running,
    public: String,
    server_id: String,
    db: toolgate_pgtemp::TestDatabase,
    _public_port: std::net::TcpListener,
    dirs: Vec<tempfile::TempDir>,
}

/// Starts sfsim and three replicas together on one new database (the
/// replicas race to create the schema), registers the sfsim org on replica
/// 0 and configures its External Client App on replica 1.
async fn cluster() -> Cluster {
    let db = toolgate_pgtemp::TestDatabase::create().await;
    // The public URL a load balancer would have. Nothing answers on it:
    // the test sends each request to the replica it picks, with the same
    // path.
    let public_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let public = format!("http://{}", public_port.local_addr().unwrap());
    let mut sim_config = sfsim::SimConfig::for_tests(&format!("{public}/auth/callback"));
    sim_config.auto_consent = false;
    let sim = sfsim::start(sim_config).await.unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Started together: they race to create the schema.
    let replicas = futures_util::future::join_all(
        dirs.iter()
            .map(|d| Replica::start(db.url(), d.path(), &public)),
    )
    .await;
    // Registered on replica 0, its connected app configured on replica 1.
    let server_id = register_sfsim(&mut replicas[0].admin().await, &sim).await;
    // 50 calls at once and eight callers in a loop, as one user; the
    // limits are per replica and have their own tests (limits.rs).
    common::lift_call_limits(&mut replicas[0].admin().await).await;
    configure_sfsim_app(&mut replicas[1].admin().await, &server_id, &sim).await;
    Cluster {
        replicas,
        sim,
        public,
        server_id,
        db,
        _public_port: public_port,
        dirs,
    }
}

impl Cluster {
    /// `url` (a public URL) on replica `i`.
    fn on(&self, i: usize, url: &str) -> String {
        url.replace(
            &self.public,
            &format!("http://{}", self.replicas[i].process.http),
        )
    }

    async fn sim_post(&self, path: &str, body: Value) {
        let status = reqwest::Client::new()
            .post(format!("{}/_sfsim/{path}", self.sim.login_url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }

    /// A user granted every tool of the server, made across the replicas;
    /// returns (user id, profile id, MCP token, token id).
    async fn user(&self, email: &str) -> (String, String, String, String) {
        let mut a = self.replicas[0].admin().await;
        let mut b = self.replicas[1].admin().await;
        let mut c = self.replicas[2].admin().await;
        let user_id = create_user(&mut a, email).await;
        let all = toolset(&mut b, &self.server_id, v1::ToolsetKind::AllApproved).await;
        let profile = c
            .profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: format!("profile for {email}"),
                description: String::new(),
                toolset_ids: vec![all],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
        a.profiles
            .grant_user(v1::GrantUserRequest {
                expected_revision: None,
                profile_id: profile.id.clone(),
                user_id: user_id.clone(),
                expires_at: None,
            })
            .await
            .unwrap();
        let issued = b
            .users
            .issue_token(v1::IssueTokenRequest {
                user_id: user_id.clone(),
                name: "replicas".into(),
                expires_at: None,
            })
            .await
            .unwrap()
            .into_inner();
        (user_id, profile.id, issued.secret, issued.token.unwrap().id)
    }

    /// Follows a connect link through sfsim's login page as `username`:
    /// the link page and its button on replica `link_on`, the OAuth
    /// callback on replica `callback_on`.
    async fn connect(&self, link: &str, username: &str, link_on: usize, callback_on: usize) -> u16 {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let link = self.on(link_on, link);
        assert_eq!(http.get(&link).send().await.unwrap().status(), 200);
        let to_login = http.post(&link).send().await.unwrap();
        assert!(to_login.status().is_redirection(), "{}", to_login.status());
        let authorize = to_login.headers()["location"].to_str().unwrap().to_owned();
        let url = url::Url::parse(&authorize).unwrap();
        let mut form: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        form.push(("username".into(), username.into()));
        form.push(("action".into(), "allow".into()));
        let back = http
            .post(format!("{}/services/oauth2/authorize", self.sim.login_url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let callback = back.headers()["location"].to_str().unwrap().to_owned();
        assert!(callback.starts_with(&format!("{}/auth/callback?", self.public)));
        http.get(self.on(callback_on, &callback))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Tool-call audit events, newest first, read through replica `i`.
    async fn tool_calls(&self, i: usize) -> Vec<v1::AuditEvent> {
        let mut admin = self.replicas[i].admin().await;
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = admin
                .audit
                .list_events(v1::ListEventsRequest {
                    action_prefix: "tool.call".into(),
                    page_size: 1000,
                    page_token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            out.extend(page.events);
            if page.next_page_token.is_empty() {
                return out;
            }
            page_token = page.next_page_token;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_one_postgresql_behave_as_one_gateway() {
    let mut cl = cluster().await;
    let (_user_id, profile_id, token, token_id) = cl.user("ana@example.com").await;
    let session = Session::open(&cl.replicas[0], &token).await;

    // A connect link made on replica 0, opened on 1, its callback on 2.
    let (status, prompt) = session.call(&cl.replicas[0], "salesforce_get_limits").await;
    assert_eq!(status, 200);
    let link = text_of(&prompt)
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap()
        .trim_end_matches(['.', ','])
        .to_owned();
    assert!(link.starts_with(&cl.public), "{link}");
    assert_eq!(cl.connect(&link, ANA_SF, 1, 2).await, 200);

    // Round robin: the session opened on replica 0 is used on all three.
    let before = cl.tool_calls(0).await.len();
    for i in 0..9 {
        let (status, answer) = session
            .call(&cl.replicas[i % 3], "salesforce_get_limits")
            .await;
        assert!(is_ok(status, &answer), "call {i}: {status} {answer}");
    }
    // StreamEvents-equivalent order: one log, read through any replica.
    let events = cl.tool_calls(2).await;
    assert_eq!(events.len(), before + 9);
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");

    // 50 concurrent calls with an expired access token, spread over the
    // replicas, with refresh token rotation on: exactly one refresh.
    cl.sim_post("faults", json!({"refresh_token_rotation": true}))
        .await;
    cl.sim_post("expire-access-tokens", json!({})).await;
    let refreshes = cl.sim.counter("token:refresh_token");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (url, token, id) = (
            cl.replicas[i % 3].mcp_url(),
            session.token.clone(),
            session.id.clone(),
        );
        tasks.spawn(async move {
            post(
                &url,
                &token,
                Some(&id),
                json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                       "params": {"name": "salesforce_get_limits", "arguments": {}}}),
            )
            .await
        });
    }
    for (status, answer) in tasks.join_all().await {
        assert!(is_ok(status, &answer), "{status} {answer}");
    }
    assert_eq!(cl.sim.counter("token:refresh_token") - refreshes, 1);

    let all: Vec<&Replica> = cl.replicas.iter().collect();
    // A 2026-07-28 listen stream held on replica 2 hears a change made on 1.
    let mut listening = listen(&cl.replicas[2], &token).await;
    // The kill switch flipped on replica 1 holds on every replica.
    let mut b = cl.replicas[1].admin().await;
    b.settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let off = Instant::now();
    tokio::time::timeout(GUARD, async {
        let mut seen = String::new();
        while !seen.contains("notifications/tools/list_changed") {
            let chunk = listening
                .chunk()
                .await
                .unwrap()
                .expect("listen stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the listen stream on replica 2 never heard the kill switch");
    println!(
        "listen stream on another replica told in {:?}",
        off.elapsed()
    );
    drop(listening);
    let kill_switch = until_all("kill switch", &all, off, async |r| {
        let (status, answer) = session.call(r, "salesforce_get_limits").await;
        status == 200 && text_of(&answer).contains("traffic")
    })
    .await;
    b.settings
        .update_settings(v1::UpdateSettingsRequest {
            mcp_traffic_enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let on = Instant::now();
    until_all("traffic back on", &all, on, async |r| {
        let (status, answer) = session.call(r, "salesforce_get_limits").await;
        is_ok(status, &answer)
    })
    .await;

    // A grant revoked on replica 2 is enforced everywhere; a new grant too.
    let mut c = cl.replicas[2].admin().await;
    let user_id = _user_id.clone();
    c.profiles
        .revoke_user(v1::RevokeUserRequest {
            expected_revision: None,
            profile_id: profile_id.clone(),
            user_id: user_id.clone(),
        })
        .await
        .unwrap();
    let revoked = Instant::now();
    let grant_revoked = until_all("grant revoked", &all, revoked, async |r| {
        let (status, answer) = session.call(r, "salesforce_get_limits").await;
        status == 200 && answer["result"]["isError"] == json!(true)
    })
    .await;
    c.profiles
        .grant_user(v1::GrantUserRequest {
            expected_revision: None,
            profile_id: profile_id.clone(),
            user_id: user_id.clone(),
            expires_at: None,
        })
        .await
        .unwrap();
    let granted = Instant::now();
    let new_grant = until_all("new grant", &all, granted, async |r| {
        let (status, answer) = session.call(r, "salesforce_get_limits").await;
        is_ok(status, &answer)
    })
    .await;

    // A 2025-11-25 session opened on replica 0 continues on replica 1
    // after replica 0 is killed with SIGKILL.
    let second = Session::open(&cl.replicas[0], &token).await;
    let (status, answer) = second.call(&cl.replicas[0], "salesforce_get_limits").await;
    assert!(is_ok(status, &answer), "{answer}");
    cl.replicas[0].kill_9().await;
    let (status, answer) = second.call(&cl.replicas[1], "salesforce_get_limits").await;
    assert!(is_ok(status, &answer), "{status} {answer}");
    // A replica started again joins as any other.
    cl.replicas[0] = Replica::start(cl.db.url(), cl.dirs[0].path(), &cl.public).await;

    // kill -9 of replica 0 during a batch change of every tool: all or
    // nothing, read through replica 2.
    let tool_ids: Vec<String> = c
        .tools
        .list_tools(v1::ListToolsRequest {
            server_id: cl.server_id.clone(),
            page_size: 1000,
            omit_schemas: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tools
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(tool_ids.len(), 13);
    // Round 1 kills replica 0 while the batch is on its way; round 2 kills
    // it right after the answer (an acknowledged batch must be there).
    for round in 0..2 {
        if round == 1 {
            cl.replicas[0] = Replica::start(cl.db.url(), cl.dirs[0].path(), &cl.public).await;
        }
        let mut tools = cl.replicas[0].admin().await.tools;
        let batch = tool_ids.clone();
        let target = if round == 0 {
            v1::ToolState::Disabled
        } else {
            v1::ToolState::Approved
        };
        let call = tokio::spawn(async move {
            tools
                .batch_update_tools(v1::BatchUpdateToolsRequest {
                    ids: batch,
                    state: target.into(),
                })
                .await
        });
        let acknowledged = if round == 0 {
            for _ in 0..500 {
                tokio::task::yield_now().await;
            }
            cl.replicas[0].kill_9().await;
            call.await.unwrap().is_ok()
        } else {
            call.await.unwrap().unwrap();
            cl.replicas[0].kill_9().await;
            true
        };
        let applied = c
            .tools
            .list_tools(v1::ListToolsRequest {
                server_id: cl.server_id.clone(),
                state: target.into(),
                page_size: 1000,
                omit_schemas: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .tools
            .len();
        assert!(
            applied == 0 || applied == 13,
            "round {round}: {applied} of 13 changed"
        );
        if acknowledged {
            assert_eq!(applied, 13, "an acknowledged batch must survive kill -9");
        }
        eprintln!(
            "kill -9 during a batch, round {round}: acknowledged {acknowledged}, {applied} of 13 in the target state"
        );
    }
    let disabled = c
        .tools
        .list_tools(v1::ListToolsRequest {
            server_id: cl.server_id.clone(),
            state: v1::ToolState::Disabled.into(),
            page_size: 1000,
            omit_schemas: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tools
        .len();
    if disabled == 13 {
        c.tools
            .batch_update_tools(v1::BatchUpdateToolsRequest {
                ids: tool_ids,
                state: v1::ToolState::Approved.into(),
            })
            .await
            .unwrap();
    }

    // kill -9 of replica 1 during tool-call load: every answered call has
    // its audit event.
    // Eight callers call in a loop; replica 1 is killed once 20 calls have
    // been answered, with more in flight.
    let before = cl.tool_calls(2).await.len();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8u64 {
        let (url, token, id) = (
            cl.replicas[1].mcp_url(),
            second.token.clone(),
            second.id.clone(),
        );
        let (answered, enough) = (answered.clone(), enough.clone());
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            for n in 0.. {
                let body = json!({"jsonrpc": "2.0", "id": 1000 * (worker + 1) + n,
                    "method": "tools/call",
                    "params": {"name": "salesforce_get_limits", "arguments": {}}});
                let sent = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-session-id", &id)
                    .body(body.to_string())
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let ok = match sent {
                    Ok(r) if r.status() == 200 => r
                        .text()
                        .await
                        .is_ok_and(|t| t.contains("\"isError\":false")),
                    _ => false,
                };
                if !ok {
                    return;
                }
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == 20 {
                    enough.notify_one();
                }
            }
        });
    }
    enough.notified().await;
    cl.replicas[1].kill_9().await;
    tasks.join_all().await;
    let answered = answered.load(Ordering::SeqCst);
    let after = cl.tool_calls(2).await.len();
    assert!(answered >= 20);
    assert!(
        after - before >= answered,
        "{answered} calls were answered but only {} audit events were written",
        after - before
    );
    eprintln!(
        "kill -9 under load: {answered} calls answered before the kill, {} audit events",
        after - before
    );

    // The token revoked on the last replica standing is refused there.
    c.users
        .revoke_token(v1::RevokeTokenRequest { id: token_id })
        .await
        .unwrap();
    let (status, _) = post(
        &cl.replicas[2].mcp_url(),
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "replicas-test", "version": "1"}}}),
    )
    .await;
    assert_eq!(status, 401);

    eprintln!(
        "enforcement on every replica: kill switch {kill_switch:?}, grant revoked {grant_revoked:?}, new grant {new_grant:?}"
    );
    for r in &cl.replicas {
        let log = r.process.output.lock().unwrap();
        assert!(!log.contains(MASTER_KEY) && !log.contains(ADMIN_TOKEN));
    }
}
