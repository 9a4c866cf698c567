//! `toolgated --health-check` (the Docker HEALTHCHECK): the probe against a
//! real daemon on port 0 and against listeners that answer wrongly, then
//! the binary itself, resolving the address from a flag, the environment
//! and a config file, with Docker's exit codes.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use toolgate_gateway::healthcheck::{self, HealthCheckError};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `router` on a loopback port 0 for the rest of the test.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A port that accepts connections and closes them without answering.
async fn hang_up() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    addr
}

/// Runs `toolgated --health-check <args>` with only `env` in its environment.
async fn health_check(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_toolgated"))
        .arg("--health-check")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_probe_passes_on_a_running_daemon_and_names_what_is_wrong_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (running, _token) = common::start(dir.path()).await;
    let port = running.http_addr.port();

    let url = healthcheck::probe(running.http_addr, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}/healthz"));
    // A daemon listening on 0.0.0.0 is probed on loopback.
    let any: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    healthcheck::probe(any, TIMEOUT).await.unwrap();

    let unavailable = serve(Router::new().route(
        "/healthz",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down\n") }),
    ))
    .await;
    let err = healthcheck::probe(unavailable, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, HealthCheckError::Status { status: 503, .. }),
        "{err:?}"
    );

    let other =
        serve(Router::new().route("/healthz", get(|| async { "<html>hello</html>" }))).await;
    let err = healthcheck::probe(other, TIMEOUT).await.unwrap_err();
    assert!(matches!(err, HealthCheckError::Body { .. }), "{err:?}");
    assert!(err.to_string().contains("<html>hello</html>"), "{err}");

    let silent = hang_up().await;
    let err = healthcheck::probe(silent, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, HealthCheckError::Unreachable { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("GET http://{silent}/healthz: ")) && !message.contains('\n'),
        "{message}"
    );

    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_binary_resolves_the_address_like_the_daemon_and_exits_0_or_1() {
    let dir = tempfile::tempdir().unwrap();
    let (running, _token) = common::start(&dir.path().join("data")).await;
    let port = running.http_addr.port();
    let addr = running.http_addr.to_string();
    let any = format!("0.0.0.0:{port}");

    let healthy = |out: &Output| {
        assert!(
            out.status.success(),
            "exit {:?}: {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            format!("healthy: http://127.0.0.1:{port}/healthz answered ok\n")
        );
    };
    // From the flag, from TOOLGATE_HTTP_ADDR (as the Docker image sets it),
    // and from the config file that TOOLGATE_CONFIG names.
    healthy(&health_check(&["--http-addr", &addr], &[]).await);
    healthy(&health_check(&[], &[("TOOLGATE_HTTP_ADDR", &any)]).await);
    let config = dir.path().join("toolgate.toml");
    std::fs::write(&config, format!("http_addr = \"{any}\"\n")).unwrap();
    healthy(&health_check(&[], &[("TOOLGATE_CONFIG", config.to_str().unwrap())]).await);
    // The flag wins over the environment, as for the daemon.
    healthy(
        &health_check(
            &["--http-addr", &addr],
            &[("TOOLGATE_HTTP_ADDR", "127.0.0.1:1")],
        )
        .await,
    );

    // Unhealthy: exit 1 with one line on stderr saying why.
    let unhealthy = |out: &Output, reason: &str| {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("unhealthy: ") && stderr.contains(reason),
            "{stderr}"
        );
    };
    let silent = hang_up().await.to_string();
    unhealthy(
        &health_check(&["--http-addr", &silent], &[]).await,
        &format!("GET http://{silent}/healthz: "),
    );
    // A config the daemon would refuse is unhealthy too (not Docker's
    // reserved exit code 2).
    unhealthy(
        &health_check(&["--http-addr", "127.0.0.1:0"], &[]).await,
        "port 0",
    );
    unhealthy(
        &health_check(&["--public-url", "ftp://x", "--http-addr", &addr], &[]).await,
        "public-url",
    );

    running.stop().await.unwrap();
}
