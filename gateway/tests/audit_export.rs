//! Audit export as it happens (`--audit-export`): the JSON lines file gets
//! every stored event of tool calls and admin changes, in order, with no
//! gap; a file that cannot be written loses nothing (calls go on, and the
//! events arrive once it can); a restart resumes from the cursor; OTLP log
//! records reach a loopback collector with the JSON line as body and the
//! event's fields as attributes.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{Clients, Fixture, raw_mcp};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use toolgate_gateway::app::{self, Listeners, Running};
use toolgate_gateway::audit_export::{OtlpLogs, Sink, json_line};
use toolgate_gateway::config::Secrets;
use toolgate_gateway::store::Store;
use toolgate_gateway::telemetry::TraceProtocol;
use toolgate_proto::v1;

/// Polls `check` every 20 ms until it answers, for at most 60 s.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON lines of `path` (none when it is missing or not a file).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect()
}

/// Every stored event, as exported.
async fn stored(store: &Store) -> Vec<Value> {
    store
        .audit_forward(1, store.last_audit_sequence(), usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&json_line(e)).unwrap())
        .collect()
}

/// Waits until `path` holds every stored event, and returns its lines.
async fn exported_all(path: &Path, store: &Store) -> Vec<Value> {
    until("the file holds every stored event", async || {
        let got = lines(path);
        let last = store.last_audit_sequence();
        (got.last().and_then(|e| e["sequence"].as_u64()) == Some(last)).then_some(got)
    })
    .await
}

/// An in-process daemon on `data_dir` exporting to `sinks`, with its admin clients.
async fn daemon(data_dir: &Path, sinks: Vec<Sink>) -> (Running, Clients) {
    let mut config = common::config(data_dir);
    config.audit_export = sinks;
    let listeners = Listeners::bind(&config).await.unwrap();
    let running = app::start(&config, &Secrets::default(), listeners)
        .await
        .unwrap();
    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    let clients = common::clients(running.grpc_addr, common::admin(token.trim())).await;
    (running, clients)
}

/// An MCP `tools/call` of `name` as the holder of `token` (a session of its own).
async fn call_tool(url: &str, token: &str, name: &str) -> Value {
    let answer = raw_mcp::send(raw_mcp::post(url, token, None, raw_mcp::INITIALIZE)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let id = answer.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let done = raw_mcp::send(raw_mcp::post(
        url,
        token,
        Some(&id),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await;
    assert_eq!(done.status, 202);
    let body = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": name, "arguments": {}},
    });
    let answer = raw_mcp::send(raw_mcp::post(url, token, Some(&id), &body.to_string())).await;
    let message = answer.message();
    assert!(message.get("result").is_some(), "{message}");
    message["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jsonl_file_receives_every_event_of_calls_and_admin_changes_in_order() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("audit.jsonl");
    let sink = Sink::Jsonl(path.clone());
    let mut w = Fixture::salesforce_with(|_| {}, |c| c.audit_export = vec![sink]).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("ana@example.com", &all).await;
    for _ in 0..3 {
        call_tool(&w.mcp_url, &token, "salesforce_get_limits").await;
    }
    let store = w.daemon.store.clone();
    let got = exported_all(&path, &store).await;
    let want = stored(&store).await;
    // Every stored event, field for field (sequence, time, hash, ...), in
    // order from the first, no gap.
    assert_eq!(got, want);
    assert_eq!(
        sequences(&got),
        (1..=store.last_audit_sequence()).collect::<Vec<_>>()
    );
    let actions: Vec<&str> = got.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "tool.call").count(), 3);
    assert!(actions.contains(&"user.create"), "{actions:?}");
    assert!(got.iter().all(|e| e["hash"].as_str().unwrap().len() == 64));
    // The hashes the control API shows are the exported ones.
    let listed = w
        .admin
        .audit
        .list_events(v1::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let by_seq: HashMap<u64, &str> = got
        .iter()
        .map(|e| (e["sequence"].as_u64().unwrap(), e["hash"].as_str().unwrap()))
        .collect();
    assert!(!listed.is_empty());
    for event in &listed {
        assert_eq!(by_seq[&event.sequence], event.hash, "#{}", event.sequence);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cursor = until("the cursor reaches the newest event", async || {
        let text = std::fs::read_to_string(out.path().join("audit.jsonl.cursor")).ok()?;
        (text.trim() == store.last_audit_sequence().to_string()).then_some(text)
    })
    .await;
    assert_eq!(cursor, format!("{}\n", store.last_audit_sequence()));
}

async fn create_users(clients: &mut Clients, prefix: &str, n: usize) {
    for i in 0..n {
        common::create_user(clients, &format!("{prefix}{i}@example.com")).await;
    }
}

/// The audit exporter's log lines of this test process, collected from
/// the first call on.
fn export_logs() -> String {
    static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "toolgate_gateway::audit_export=info",
            ))
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    });
    String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
}

struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_while_the_file_is_unwritable_arrive_once_it_is_fixed() {
    export_logs();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink_name = format!("sink=jsonl:{}", path.display());
    let (running, mut clients) =
        daemon(&dir.path().join("data"), vec![Sink::Jsonl(path.clone())]).await;
    create_users(&mut clients, "before", 2).await;
    let first = exported_all(&path, &running.store).await;
    // Rotated away, and a directory where the file goes: no write can work.
    let rotated = dir.path().join("audit.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    std::fs::create_dir(&path).unwrap();
    // Admin changes still succeed and are stored.
    create_users(&mut clients, "during", 3).await;
    let last = running.store.last_audit_sequence();
    assert!(last >= sequences(&first).last().unwrap() + 3);
    // The sink failed, and said so once.
    let failed = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains(&sink_name) && l.contains("cannot export audit events"))
            .count()
    };
    until("the sink reports the failure", async || {
        (failed(&export_logs()) > 0).then_some(())
    })
    .await;
    assert!(path.is_dir());
    std::fs::remove_dir(&path).unwrap();
    let second = exported_all(&path, &running.store).await;
    until("the sink reports it resumed", async || {
        export_logs()
            .lines()
            .any(|l| l.contains(&sink_name) && l.contains("audit export resumed"))
            .then_some(())
    })
    .await;
    let logs = export_logs();
    assert_eq!(failed(&logs), 1, "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    // Together, every stored event once, in order.
    let mut both = lines(&rotated);
    both.extend(second);
    assert_eq!(both, stored(&running.store).await);
    assert_eq!(sequences(&both), (1..=last).collect::<Vec<_>>());
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_cursor_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("audit.jsonl");
    let sinks = vec![Sink::Jsonl(path.clone())];
    let (running, mut clients) = daemon(&data, sinks.clone()).await;
    create_users(&mut clients, "one", 2).await;
    // Stopping flushes what is pending.
    let last = running.store.last_audit_sequence();
    running.stop().await.unwrap();
    assert_eq!(sequences(&lines(&path)).last(), Some(&last));
    // Events stored while nothing exports...
    let (running, mut clients) = daemon(&data, vec![]).await;
    create_users(&mut clients, "two", 2).await;
    running.stop().await.unwrap();
    // ... are exported after the next start, after the cursor.
    let (running, mut clients) = daemon(&data, sinks).await;
    create_users(&mut clients, "three", 1).await;
    let got = exported_all(&path, &running.store).await;
    assert_eq!(got, stored(&running.store).await);
    assert_eq!(
        sequences(&got),
        (1..=running.store.last_audit_sequence()).collect::<Vec<_>>()
    );
    running.stop().await.unwrap();
}

/// One received OTLP log record, flattened.
#[derive(Debug)]
struct Got {
    event_name: String,
    body: String,
    severity: i32,
    attributes: HashMap<String, String>,
    resource: HashMap<String, String>,
}

fn text(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

struct Collector(mpsc::UnboundedSender<Got>);

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        for resource_logs in request.into_inner().resource_logs {
            let resource: HashMap<String, String> = resource_logs
                .resource
                .map(|r| {
                    r.attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(&kv.value)))
                        .collect()
                })
                .unwrap_or_default();
            for scope in resource_logs.scope_logs {
                for record in scope.log_records {
                    let _ = self.0.send(Got {
                        event_name: record.event_name,
                        body: text(&record.body),
                        severity: record.severity_number,
                        attributes: record
                            .attributes
                            .into_iter()
                            .map(|kv| (kv.key, text(&kv.value)))
                            .collect(),
                        resource: resource.clone(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_log_records_carry_the_json_line_and_the_events_fields() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LogsServiceServer::new(Collector(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Otlp(OtlpLogs {
        endpoint: format!("http://{addr}"),
        protocol: TraceProtocol::Grpc,
    });
    let (running, mut clients) = daemon(&dir.path().join("data"), vec![sink]).await;
    // OTLP starts after the newest event at start-up.
    let start = running.store.last_audit_sequence();
    create_users(&mut clients, "otlp", 3).await;
    let last = running.store.last_audit_sequence();
    let want = running
        .store
        .audit_forward(start + 1, last, usize::MAX)
        .await
        .unwrap();
    assert!(want.len() >= 3);
    let mut got = Vec::new();
    while got.len() < want.len() {
        let record = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a log record within 60 s")
            .unwrap();
        got.push(record);
    }
    for (record, event) in got.iter().zip(&want) {
        assert_eq!(record.event_name, "toolgate.audit");
        assert_eq!(record.body, json_line(event));
        assert_eq!(record.severity, 9, "INFO");
        assert_eq!(
            record.attributes,
            HashMap::from([
                (
                    "toolgate.audit.sequence".to_owned(),
                    event.sequence.to_string()
                ),
                ("toolgate.audit.action".to_owned(), event.action.clone()),
                ("toolgate.audit.actor".to_owned(), event.actor.clone()),
                ("toolgate.audit.target".to_owned(), event.target.clone()),
                ("toolgate.audit.outcome".to_owned(), "ALLOWED".to_owned()),
            ])
        );
        assert_eq!(record.resource["service.name"], "toolgated");
    }
    running.stop().await.unwrap();
    assert!(rx.try_recv().is_err(), "nothing beyond the stored events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_gets_json_lines_after_the_ready_line() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_toolgated"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--metrics-addr", "", "--log-level", "warn"])
        .args(["--audit-export", "stdout"])
        .env_remove("TOOLGATE_ADMIN_TOKEN")
        .env_remove("TOOLGATE_MASTER_KEY")
        .env_remove("TOOLGATE_CONFIG")
        .env_remove("TOOLGATE_AUDIT_EXPORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let next = async |lines: &mut tokio::io::Lines<_>| {
        tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("a line within 60 s")
            .unwrap()
            .expect("stdout open")
    };
    // The ready line comes first.
    let ready: String = next(&mut lines).await;
    assert!(ready.starts_with("toolgated ready: "), "{ready}");
    let grpc: std::net::SocketAddr = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap()
        .parse()
        .unwrap();
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let mut clients = common::clients(grpc, common::admin(token.trim())).await;
    create_users(&mut clients, "out", 2).await;
    let mut got: Vec<Value> = Vec::new();
    while got.len() < 2 {
        let line: String = next(&mut lines).await;
        got.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
    let listed = clients
        .audit
        .list_events(v1::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    // Only what was stored after start-up, as stored, in order.
    let mut want: Vec<&v1::AuditEvent> = listed
        .iter()
        .filter(|e| e.action == "user.create")
        .collect();
    want.sort_by_key(|e| e.sequence);
    assert_eq!(want.len(), 2);
    for (line, event) in got.iter().zip(want) {
        assert_eq!(line["sequence"].as_u64(), Some(event.sequence));
        assert_eq!(line["action"], "user.create");
        assert_eq!(line["hash"].as_str(), Some(event.hash.as_str()));
        assert_eq!(line["outcome"], "ALLOWED");
        assert!(line["time_rfc3339"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(
        got[1]["sequence"].as_u64(),
        got[0]["sequence"].as_u64().map(|s| s + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_http_protobuf_posts_the_records_to_v1_logs() {
    use prost::Message as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = std::sync::Arc::new(Collector(tx));
    let app = axum::Router::new().route(
        "/v1/logs",
        axum::routing::post(move |body: axum::body::Bytes| {
            let collector = collector.clone();
            async move {
                let request = ExportLogsServiceRequest::decode(body).unwrap();
                collector
                    .export(tonic::Request::new(request))
                    .await
                    .unwrap();
                (
                    [("content-type", "application/x-protobuf")],
                    ExportLogsServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Otlp(OtlpLogs {
        endpoint: format!("http://{addr}/v1/logs"),
        protocol: TraceProtocol::HttpProtobuf,
    });
    let (running, mut clients) = daemon(&dir.path().join("data"), vec![sink]).await;
    let start = running.store.last_audit_sequence();
    create_users(&mut clients, "http", 2).await;
    let want = running
        .store
        .audit_forward(start + 1, running.store.last_audit_sequence(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(want.len(), 2);
    for event in &want {
        let record = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a log record within 60 s")
            .unwrap();
        assert_eq!(record.event_name, "toolgate.audit");
        assert_eq!(record.body, json_line(event));
        assert_eq!(
            record.attributes["toolgate.audit.sequence"],
            event.sequence.to_string()
        );
    }
    running.stop().await.unwrap();
}
