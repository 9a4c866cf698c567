//! Runs the real `toolgated` binary: start-up files and permissions, the
//! data-directory lock, graceful shutdown, logs free of secrets, health
//! endpoints, and crash safety of batch approval under `kill -9`.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::process::Spawned;
use common::{admin, clients, register};
use tokio::process::Command;
use toolgate_proto::v1;

fn command(data_dir: &Path) -> Command {
    command_on(data_dir, "127.0.0.1:0", "127.0.0.1:0")
}

fn command_on(data_dir: &Path, http: &str, grpc: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_toolgated"));
    cmd.args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--http-addr", http, "--grpc-addr", grpc])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--log-level", "debug"])
        .env_remove("TOOLGATE_ADMIN_TOKEN")
        .env_remove("TOOLGATE_MASTER_KEY")
        .env_remove("TOOLGATE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts the binary and waits for its ready line on stdout.
async fn spawn(data_dir: &Path) -> Spawned {
    Spawned::start(command(data_dir)).await
}

fn admin_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn starts_with_private_files_refuses_a_second_daemon_and_stops_on_sigterm_without_leaking_secrets()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = spawn(&data).await;
    assert_eq!(mode(&data.join("admin.token")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data), 0o700);
    let token = admin_token(&data);
    assert!(token.starts_with("tga_"));

    // Health endpoints on the public listener.
    let http = reqwest::Client::new();
    for path in ["healthz", "readyz"] {
        let response = http
            .get(format!("http://{}/{path}", daemon.http))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }

    // A second daemon on the same directory (even on the same ports) fails
    // at once, naming the directory, before it touches the ports.
    let second = command_on(&data, &daemon.http.to_string(), &daemon.grpc.to_string())
        .output()
        .await
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another toolgated process"),
        "{stderr}"
    );

    // Use secrets, then stop gracefully.
    let mut c = clients(daemon.grpc, admin(&token)).await;
    let server = register(&mut c, "Salesforce", "").await.server.unwrap();
    let secret = "LOGCHECK-CONSUMER-SECRET-9d8e";
    c.servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server.id,
            client_id: "3MVG9key".into(),
            client_secret: secret.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let user_id = common::create_user(&mut c, "dee@example.com").await;
    let pat = common::issue_token(&mut c, &user_id, "").await;
    let mut wrong = clients(daemon.grpc, admin("tga_not-the-token-000000")).await;
    assert!(
        wrong
            .servers
            .list_servers(v1::ListServersRequest {})
            .await
            .is_err()
    );
    drop(c);
    drop(wrong);

    let pid = daemon.child.id().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = daemon.child.wait().await.unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    let logs = daemon.logs_after_exit().await;
    assert!(logs.contains("toolgated stopped"), "{logs}");
    assert!(logs.contains("missing or wrong admin token"), "{logs}");
    for needle in [secret, token.as_str(), pat.as_str()] {
        assert!(!logs.contains(needle), "a secret appears in the logs");
    }
    assert_eq!(common::any_file_contains(&data, secret.as_bytes()), None);
    assert_eq!(common::any_file_contains(&data, pat.as_bytes()), None);
}

/// Approves a large batch and kills the daemon with SIGKILL while the
/// request is in flight; after a restart either every tool of the batch is
/// approved or none is. Repeated with the kill landing at different points.
#[cfg(unix)]
#[tokio::test]
async fn kill_9_during_batch_approval_applies_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = spawn(&data).await;
    let token = admin_token(&data);
    let mut c = clients(daemon.grpc, admin(&token)).await;
    for i in 0..40 {
        register(&mut c, &format!("Org {i}"), &format!("org{i}")).await;
    }
    let ids: Vec<String> = c
        .tools
        .list_tools(v1::ListToolsRequest {
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
    assert_eq!(ids.len(), 40 * 13);

    let mut outcomes = Vec::new();
    // The last round waits for the answer: an acknowledged batch must
    // survive the kill (it was flushed before the answer).
    for round in 0..9u32 {
        let target = if round % 2 == 0 {
            v1::ToolState::Approved
        } else {
            v1::ToolState::Disabled
        };
        let mut tools = c.tools.clone();
        let batch = ids.clone();
        let call = tokio::spawn(async move {
            tools
                .batch_update_tools(v1::BatchUpdateToolsRequest {
                    ids: batch,
                    state: target.into(),
                })
                .await
        });
        // Let the request get under way by a growing amount, then SIGKILL.
        let answered = if round == 8 {
            call.await.unwrap().unwrap();
            daemon.child.start_kill().unwrap();
            daemon.child.wait().await.unwrap();
            true
        } else {
            for _ in 0..(1u32 << round) * 2000 {
                tokio::task::yield_now().await;
            }
            daemon.child.start_kill().unwrap();
            daemon.child.wait().await.unwrap();
            call.await.unwrap().is_ok()
        };

        daemon = spawn(&data).await;
        c = clients(daemon.grpc, admin(&token)).await;
        let states: Vec<i32> = c
            .tools
            .list_tools(v1::ListToolsRequest {
                page_size: 1000,
                omit_schemas: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .tools
            .into_iter()
            .map(|t| t.state)
            .collect();
        let applied = states.iter().filter(|s| **s == i32::from(target)).count();
        assert!(
            applied == 0 || applied == states.len(),
            "round {round}: {applied} of {} tools changed",
            states.len()
        );
        if answered {
            assert_eq!(
                applied,
                states.len(),
                "an acknowledged batch must survive kill -9"
            );
        }
        outcomes.push(applied == states.len());
    }
    eprintln!("batch applied per round: {outcomes:?}");
}
