//! The PostgreSQL store for a run: a fresh, empty database
//! ([`toolgate_pgtemp::TestDatabase`]: on the server
//! `TOOLGATE_TEST_DATABASE_URL` names, else on a private server this
//! process starts on loopback with trust authentication), the master key
//! and admin token every replica must share (README "Run several
//! replicas"), and the server's CPU time (its postmaster and backends,
//! from `/proc`).
//!
//! The private server runs with the test settings `fsync`,
//! `synchronous_commit` and `full_page_writes` off (set on its command
//! line, so they cannot be changed from SQL); for figures with durable
//! commits, point `TOOLGATE_TEST_DATABASE_URL` at a server started with
//! them on (BENCHMARKS.md). The section headers print what is in effect.

use std::time::Duration;

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use toolgate_pgtemp::TestDatabase;

use crate::daemon::Launch;
use crate::procfs;

/// One database for one part of the run; dropped (with its connections)
/// when this drops, so stop the daemons first.
#[derive(Debug)]
pub struct Postgres {
    db: TestDatabase,
    /// `TOOLGATE_MASTER_KEY`: 64 hex digits.
    master_key: String,
    /// `TOOLGATE_ADMIN_TOKEN`.
    admin_token: String,
    /// The postmaster's pid, if `/proc` shows it (a local server).
    postmaster: Option<u32>,
    /// What the headers print: `PostgreSQL 15.18 (fsync=on
    /// synchronous_commit=on full_page_writes=on)`.
    pub label: String,
}

/// The durability settings the headers print (PostgreSQL docs, "Write
/// Ahead Log" settings).
const DURABLE: [&str; 3] = ["fsync", "synchronous_commit", "full_page_writes"];

impl Postgres {
    /// Creates the database and new secrets.
    ///
    /// Errors: no random bytes, or the database cannot be reached.
    /// # Panics
    /// As [`TestDatabase::create`]: no server can be started or reached.
    pub async fn create() -> anyhow::Result<Self> {
        let db = TestDatabase::create().await;
        let mut conn = PgConnection::connect(db.url())
            .await
            .context("connecting to the benchmark database")?;
        let (backend,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        let version = show(&mut conn, "server_version").await?;
        let mut settings = Vec::new();
        for name in DURABLE {
            settings.push(format!("{name}={}", show(&mut conn, name).await?));
        }
        let label = format!(
            "PostgreSQL {} ({})",
            version.split_whitespace().next().unwrap_or_default(),
            settings.join(" ")
        );
        // Every backend is a child of the postmaster (read while this
        // backend still runs). A server on another
        // machine (or in another PID namespace) has no entry here.
        let postmaster = std::fs::read_to_string(format!("/proc/{backend}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("PPid:"))
                    .and_then(|v| v.trim().parse().ok())
            });
        let _ = conn.close().await;
        Ok(Self {
            db,
            master_key: random_hex(32)?,
            admin_token: format!("tga_{}", random_hex(24)?),
            postmaster,
            label,
        })
    }

    /// How to start a replica on this database: HTTP on `http_port`,
    /// `public_url` if given (replicas share replica 0's), the database URL
    /// as `--database-url`, the shared secrets in the environment.
    pub fn launch(&self, http_port: u16, public_url: Option<String>) -> Launch {
        Launch {
            http_port,
            public_url,
            args: vec!["--database-url".into(), self.db.url().into()],
            env: vec![
                ("TOOLGATE_MASTER_KEY".into(), self.master_key.clone()),
                ("TOOLGATE_ADMIN_TOKEN".into(), self.admin_token.clone()),
            ],
        }
    }

    /// The server's CPU time so far (postmaster, backends, reaped
    /// backends), or `None` if the server is not a local process. It serves
    /// only this run's databases unless `TOOLGATE_TEST_DATABASE_URL` names
    /// a shared one.
    pub fn cpu(&self, ticks: u64) -> Option<Duration> {
        self.postmaster
            .and_then(|pid| procfs::tree_cpu(pid, ticks).ok())
    }
}

/// `SHOW name`.
async fn show(conn: &mut PgConnection, name: &str) -> anyhow::Result<String> {
    let (value,): (String,) = sqlx::query_as(&format!("SHOW {name}"))
        .fetch_one(conn)
        .await
        .with_context(|| format!("SHOW {name}"))?;
    Ok(value)
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no random bytes from the OS: {e}"))?;
    Ok(hex::encode(buf))
}
