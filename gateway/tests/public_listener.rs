//! The public listener under clients that stall: the connection cap, the
//! header-read and idle timeouts, the control API staying reachable while
//! the public port is flooded; and, on the real binary, the raised
//! open-files limit and logs free of MCP session ids.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::Spawned;
use common::{admin, clients};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use toolgate_gateway::app::{self, Listeners, Running};
use toolgate_gateway::config::{Config, Secrets};

async fn daemon(dir: &std::path::Path, tune: impl FnOnce(&mut Config)) -> Running {
    let mut config = common::config(&dir.join("data"));
    tune(&mut config);
    let listeners = Listeners::bind(&config).await.unwrap();
    app::start(&config, &Secrets::default(), listeners)
        .await
        .unwrap()
}

/// A connection that sent half a request head and stopped.
async fn half_header(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    tcp
}

/// Reads until the server closes the connection; fails the test if it
/// has not within `bound` (a guard, not synchronisation).
async fn closed_by_server(tcp: &mut TcpStream, bound: Duration) {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(bound, tcp.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the server kept the connection open");
}

async fn healthz(addr: SocketAddr, bound: Duration) -> Option<u16> {
    let client = reqwest::Client::builder().timeout(bound).build().unwrap();
    match client.get(format!("http://{addr}/healthz")).send().await {
        Ok(r) => Some(r.status().as_u16()),
        Err(e) if e.is_timeout() => None,
        Err(e) => panic!("{e}"),
    }
}

async fn grpc_health(addr: SocketAddr) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_frees_its_slots() {
    let dir = tempfile::tempdir().unwrap();
    let running = daemon(dir.path(), |c| {
        c.http_max_connections = 4;
        c.http_header_read_timeout = Duration::from_secs(300);
    })
    .await;
    let addr = running.http_addr;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(half_header(addr).await);
    }
    // Every slot is taken: a fifth client waits in the accept queue...
    assert_eq!(healthz(addr, Duration::from_millis(1500)).await, None);
    // ... while the control listener answers.
    assert_eq!(grpc_health(running.grpc_addr).await, 1);
    // One stalled client goes away: its slot serves the next one.
    drop(stalled.pop());
    assert_eq!(healthz(addr, Duration::from_secs(20)).await, Some(200));
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_headers_time_out_and_a_flood_does_not_reach_the_control_api() {
    let dir = tempfile::tempdir().unwrap();
    let running = daemon(dir.path(), |c| {
        c.http_max_connections = 16;
        c.http_header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = running.http_addr;
    // Far more than the cap: the rest wait in the kernel's queue.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(half_header(addr).await);
    }
    assert_eq!(grpc_health(running.grpc_addr).await, 1);
    // The header-read timeout closes them, 16 at a time, and /healthz gets
    // its turn.
    assert_eq!(healthz(addr, Duration::from_secs(60)).await, Some(200));
    for tcp in flood.iter_mut().take(16) {
        closed_by_server(tcp, Duration::from_secs(30)).await;
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let running = daemon(dir.path(), |c| {
        c.http_header_read_timeout = Duration::from_secs(300);
        c.http_idle_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = running.http_addr;
    // A keep-alive connection after its answer...
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // ... and a request whose body stalls (the header-read timeout does
    // not apply to either).
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(
            b"POST /connect/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"a\"",
        )
        .await
        .unwrap();
    closed_by_server(&mut kept, Duration::from_secs(20)).await;
    closed_by_server(&mut stalled, Duration::from_secs(20)).await;
    running.stop().await.unwrap();
}

/// A normal MCP request (`initialize` with a user's token) is answered 200.
async fn mcp_still_answers(f: &mut common::Fixture) {
    let user = f.create_user("after@example.com").await;
    let token = f.issue_token(&user, "after").await;
    let answer = common::raw_mcp::send(common::raw_mcp::post(
        &f.mcp_url,
        &token,
        None,
        common::raw_mcp::INITIALIZE,
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Writes `bytes` one at a time, `every` apart, until the server closes
/// the connection (a slow-loris client; the pauses are the scenario, not
/// synchronisation).
fn trickle(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    bytes: Vec<u8>,
    every: Duration,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut sent = 0;
        for b in bytes {
            if writer.write_all(&[b]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(every).await;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_headers_and_bodies_are_cut_off_without_harm() {
    let mut f = common::Fixture::start_with(|c| {
        c.http_header_read_timeout = Duration::from_secs(1);
        c.http_request_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = f.daemon.http_addr;
    let every = Duration::from_millis(200);

    // Headers trickled a byte every 200 ms: cut off by the header timeout.
    let started = std::time::Instant::now();
    let (mut read, write) = TcpStream::connect(addr).await.unwrap().into_split();
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let writer = trickle(write, head.to_vec(), every);
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the server kept a trickling head open");
    let sent = writer.await.unwrap();
    assert!(sent < head.len(), "the whole head got through");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // A body trickled a byte every 200 ms (well under the 60 s idle
    // timeout): cut off by the 1 s request timeout, long before its 200
    // bytes (40 s) are in.
    let started = std::time::Instant::now();
    let (mut read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    write
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n")
        .await
        .unwrap();
    let writer = trickle(write, vec![b'a'; 200], every);
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the server kept a trickling body open");
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(writer.await.unwrap() < 200);

    // No harm done.
    assert_eq!(healthz(addr, Duration::from_secs(10)).await, Some(200));
    mcp_still_answers(&mut f).await;
    f.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_headers_are_refused_without_harm() {
    let mut f = common::Fixture::start_with(|c| {
        c.http_max_body_bytes = 1024;
        c.http_max_header_bytes = 8 * 1024;
    })
    .await;
    let addr = f.daemon.http_addr;
    let http = reqwest::Client::new();

    // A body over the limit, with its length announced: 413 on the OAuth
    // token endpoint, on client registration and on /mcp.
    let big = "a".repeat(4096);
    for path in ["/oauth/token", "/oauth/register", "/mcp"] {
        let answer = http
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 413, "{path}");
    }

    // A chunked body (no length) that grows past the limit: 413 once read.
    let user = f.create_user("big@example.com").await;
    let token = f.issue_token(&user, "big").await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let chunk = "b".repeat(2048);
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");

    // A head over 8 KiB: 431 (or the connection closed), never served.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "c".repeat(16 * 1024)
    );
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // A body within the limit still works, and so does everything else.
    let small = http
        .post(format!("http://{addr}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status().as_u16(), 400);
    assert_eq!(healthz(addr, Duration::from_secs(10)).await, Some(200));
    mcp_still_answers(&mut f).await;
    f.daemon.stop().await.unwrap();
}

/// The real binary, started through `sh` with a low soft open-files limit
/// and `--log-level info`.
async fn spawn_binary(data: &std::path::Path) -> Spawned {
    let script = format!(
        "ulimit -Sn 512 && exec '{}' --data-dir '{}' --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --log-level info",
        env!("CARGO_BIN_EXE_toolgated"),
        data.display()
    );
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", &script])
        .env_remove("TOOLGATE_ADMIN_TOKEN")
        .env_remove("TOOLGATE_MASTER_KEY")
        .env_remove("TOOLGATE_CONFIG")
        .env_remove("TOOLGATE_LOG_LEVEL");
    Spawned::start(command).await
}

/// (soft, hard) "Max open files" of a process, from /proc/<pid>/limits.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_binary_raises_its_open_files_limit_and_keeps_session_ids_out_of_info_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = spawn_binary(&data).await;
    let (http, grpc) = (daemon.http, daemon.grpc);
    let (soft, hard) = open_files_limits(daemon.child.id().unwrap());
    assert_eq!(
        soft, hard,
        "the soft limit (started at 512) was raised to the hard one"
    );

    // Open an MCP session at info level.
    let admin_token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let mut admin = clients(grpc, admin(&admin_token)).await;
    let user_id = common::create_user(&mut admin, "ana@example.com").await;
    let token = common::issue_token(&mut admin, &user_id, "logs").await;
    let response = reqwest::Client::new()
        .post(format!("http://{http}/mcp"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.text().await.unwrap();
    let listed = reqwest::Client::new()
        .post(format!("http://{http}/mcp"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    listed.text().await.unwrap();

    // Stop it (SIGTERM through kill(1)) so every line is written.
    let pid = daemon.child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), daemon.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let logs = daemon.logs_after_exit().await;
    assert!(logs.contains("toolgated started"), "{logs}");
    assert!(
        !logs.contains(&session),
        "a session id is in the info log: {logs}"
    );
}
