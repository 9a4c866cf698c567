//! A fresh, empty PostgreSQL database for each test ([`TestDatabase`]).
//!
//! Where the server comes from:
//! - `TOOLGATE_TEST_DATABASE_URL` set (CI: `.ci/run` starts one server for
//!   the whole run): the URL of a server and a database on it to connect
//!   to for `CREATE DATABASE`; every test database is created there;
//! - unset: the first test of the process starts a private server with
//!   `pg-start.sh` (PostgreSQL's `initdb` and `pg_ctl` from `PATH`, a
//!   directory `toolgate-pg-<pid>-<random>` under the temp dir, a free
//!   loopback port, run as an unprivileged user when the process is root)
//!   under a supervisor process that stops it and deletes the directory
//!   (`pg-stop.sh`) within a second of this process ending, however it
//!   ends.
//!
//! Each database is named `toolgate_test_<random>` and dropped (with
//! `WITH (FORCE)`) when its [`TestDatabase`] drops. Nothing here is for
//! production: trust authentication, fsync off.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sqlx::{Connection, PgConnection};

/// The environment variable naming a server to create test databases on.
pub const SERVER_URL_ENV: &str = "TOOLGATE_TEST_DATABASE_URL";

/// The private server of this process: its URL, or why it did not start.
static PRIVATE: OnceLock<Result<String, String>> = OnceLock::new();

/// An empty database that lives as long as this value.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    server_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database (starting the private server first if this
    /// is the first in the process and no server is named).
    ///
    /// # Panics
    /// If no server can be started or reached, or the database cannot be
    /// created: the test cannot run.
    pub async fn create() -> Self {
        let server_url = tokio::task::spawn_blocking(server_url)
            .await
            .expect("starting PostgreSQL panicked");
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("the OS gives random bytes");
        let name = format!("toolgate_test_{}", hex::encode(random));
        let mut admin = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&server_url).expect("the server URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            url: url.to_string(),
            server_url,
            name,
        }
    }

    /// The database's URL (`postgres://...`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the server's maintenance database, for what a test does
    /// from outside its database (e.g. terminating connections).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }
}

impl Drop for TestDatabase {
    /// Drops the database, closing whatever connections are left; best
    /// effort (a leftover database dies with the test server).
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // A thread with its own runtime: drop may run inside a runtime,
        // which cannot block on another future itself.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server_url).await.ok()?;
                sqlx::query(&sql).execute(&mut admin).await.ok()?;
                admin.close().await.ok()
            })
        });
        let _ = dropper.join();
    }
}

/// The server URL: [`SERVER_URL_ENV`], else the private server's.
fn server_url() -> String {
    if let Ok(url) = std::env::var(SERVER_URL_ENV)
        && !url.is_empty()
    {
        return url;
    }
    PRIVATE
        .get_or_init(start_private)
        .clone()
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL server for tests: {e}"))
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn start_private() -> Result<String, String> {
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!(
        "toolgate-pg-{}-{}",
        std::process::id(),
        hex::encode(random)
    ));
    // One supervisor process starts the server, prints its URL, lets go of
    // this process's output, and stops the server and deletes the
    // directory within a second of this process ending, however it ends
    // (even while the server is still starting).
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(
            r#"url="$("$2" "$3")" || { "$4" "$3"; exit 1; }
# This process may have ended meanwhile: a write to its pipe must not
# end the supervisor.
trap '' PIPE
echo "$url"
exec >/dev/null 2>&1 </dev/null
while kill -0 "$1"; do sleep 1; done
exec "$4" "$3""#,
        )
        .arg("pgtemp-supervisor")
        .arg(std::process::id().to_string())
        .arg(scripts().join("pg-start.sh"))
        .arg(&dir)
        .arg(scripts().join("pg-stop.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run pg-start.sh: {e}"))?;
    let mut url = String::new();
    let read = supervisor
        .stdout
        .take()
        .map(|out| std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut url));
    let url = url.trim().to_owned();
    if url.is_empty() {
        let status = supervisor.wait().map_err(|e| e.to_string())?;
        return Err(format!(
            "pg-start.sh printed no URL ({status}, {read:?}); its error is above"
        ));
    }
    Ok(url)
}
