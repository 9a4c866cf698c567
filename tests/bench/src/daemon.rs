//! The gateway under test as a child process: the real `toolgated` binary
//! on loopback, with its own data directory, so `/proc/<pid>` measures the
//! gateway alone. Its ready line gives the addresses; its stderr goes to a
//! file in the data directory's parent, shown if it fails to start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `toolgated`.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Process id, for `/proc`.
    pub pid: u32,
    /// Control API address (`host:port`).
    pub grpc: String,
    /// The HTTP listener's address (`host:port`): where to send this
    /// replica's MCP requests (`http://<http>/mcp`).
    pub http: String,
    /// Public base URL (`http://127.0.0.1:<port>`), the same for every
    /// replica; MCP is at `/mcp` (on replica 0 when they share it).
    pub public_url: String,
    /// The admin token for the control API.
    pub admin_token: String,
    /// From spawn to the ready line.
    pub startup: Duration,
}

/// Finds `toolgated`: `explicit` if given, else next to this binary (same
/// target directory and profile).
///
/// Errors: it does not exist (build it with `cargo build --release -p
/// toolgate-gateway`).
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .join("toolgated"),
    };
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p toolgate-gateway -p toolgate-bench` or pass --toolgated",
            path.display()
        );
    }
    Ok(path)
}

/// How to start one `toolgated` beyond its binary and data directory.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The HTTP listener's port on loopback (fixed so the connected app's
    /// callback URL is known in advance).
    pub http_port: u16,
    /// `--public-url`; `None` means `http://127.0.0.1:<http_port>`.
    /// Replicas share one (the callback URL sfsim was started with).
    pub public_url: Option<String>,
    /// More flags, after the ones [`Daemon::spawn_with`] sets.
    pub args: Vec<String>,
    /// Environment variables, set after every inherited `TOOLGATE_*` one
    /// is removed (e.g. `TOOLGATE_MASTER_KEY`, `TOOLGATE_ADMIN_TOKEN`).
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// HTTP on `http_port`, its own public URL, nothing else.
    pub fn on_port(http_port: u16) -> Self {
        Self {
            http_port,
            ..Self::default()
        }
    }
}

impl Daemon {
    /// Starts `bin` on `data_dir` with HTTP on `http_port` (fixed so the
    /// connected app's callback URL is known in advance) and the control
    /// API on port 0, and waits (at most 120 s) for its ready line.
    ///
    /// Errors: it exits or prints something else first.
    pub async fn spawn(bin: &Path, data_dir: &Path, http_port: u16) -> anyhow::Result<Self> {
        Self::spawn_with(bin, data_dir, &Launch::on_port(http_port)).await
    }

    /// [`Daemon::spawn`] as `launch` says. The admin token comes from
    /// `TOOLGATE_ADMIN_TOKEN` in `launch.env` if set there, else from the
    /// file the ready line names.
    ///
    /// Errors: as [`Daemon::spawn`].
    pub async fn spawn_with(bin: &Path, data_dir: &Path, launch: &Launch) -> anyhow::Result<Self> {
        let log = data_dir.with_extension("stderr.log");
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)?;
        let http_port = launch.http_port;
        let public_url = launch
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{http_port}"));
        let mut command = Command::new(bin);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--grpc-addr", "127.0.0.1:0"])
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(["--public-url", &public_url])
            .args(["--log-level", "warn"])
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        // Metrics on a free port, unless `launch` says otherwise.
        if !launch.args.iter().any(|a| a.starts_with("--metrics-addr")) {
            command.args(["--metrics-addr", "127.0.0.1:0"]);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("TOOLGATE_") {
                command.env_remove(key);
            }
        }
        command.envs(launch.env.iter().map(|(k, v)| (k, v)));
        let started = Instant::now();
        let mut child = command.spawn().with_context(|| bin.display().to_string())?;
        let pid = child.id().context("no pid")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .context("toolgated did not get ready within 120 s")??
            .unwrap_or_default();
        let startup = started.elapsed();
        if !line.starts_with("toolgated ready:") {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("toolgated did not start: {line}\n{log}");
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
                .with_context(|| format!("no {name}= in {line}"))
        };
        let from_env = launch
            .env
            .iter()
            .find_map(|(k, v)| (k == "TOOLGATE_ADMIN_TOKEN").then(|| v.clone()));
        let admin_token = match from_env {
            Some(token) => token,
            None => std::fs::read_to_string(field("admin_token")?)?
                .trim()
                .to_owned(),
        };
        Ok(Self {
            child,
            pid,
            grpc: field("grpc")?,
            http: field("http")?,
            public_url: field("public_url")?,
            admin_token,
            startup,
        })
    }

    /// Sends SIGTERM (through `kill`, as this crate has no unsafe code)
    /// and waits up to 30 s for a graceful exit, then kills it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// A free loopback TCP port (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
