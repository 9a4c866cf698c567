//! Wiring: opens the data directory, loads keys and the admin token, runs
//! start-up discovery, serves the public HTTP and control gRPC listeners,
//! and shuts both down gracefully on one cancellation token.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use toolgate_proto::v1;

use crate::config::{Config, Secrets, default_public_url};
use crate::control::{self, AdminAuth, Control};
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// Prefix of the admin token generated on first start.
pub const ADMIN_TOKEN_PREFIX: &str = "tga_";

/// The two bound listeners the daemon serves on.
#[derive(Debug)]
pub struct Listeners {
    /// Public HTTP.
    pub http: TcpListener,
    /// Control gRPC.
    pub grpc: TcpListener,
    /// Prometheus `/metrics`, unless `--metrics-addr` is empty.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on --http-addr {}", config.http_addr))?;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on --grpc-addr {}", config.grpc_addr))?;
        let metrics = match config.metrics_addr {
            None => None,
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on --metrics-addr {addr} (an empty value turns metrics off)")
            })?),
        };
        Ok(Self {
            http,
            grpc,
            metrics,
        })
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Running {
    /// Where the public HTTP listener is bound.
    pub http_addr: SocketAddr,
    /// Where the control gRPC listener is bound.
    pub grpc_addr: SocketAddr,
    /// Where the Prometheus `/metrics` listener is bound; `None`: off.
    pub metrics_addr: Option<SocketAddr>,
    /// The public base URL in effect.
    pub public_url: String,
    /// The file holding the admin token, when it came from the data
    /// directory (not from `TOOLGATE_ADMIN_TOKEN`).
    pub admin_token_file: Option<PathBuf>,
    /// The store, for in-process inspection.
    pub store: Arc<Store>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    grace: std::time::Duration,
    /// Cancelled once the ready line is out; audit export starts then.
    export_gate: CancellationToken,
}

impl Running {
    /// A token that stops the daemon when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops both listeners, lets in-flight requests finish within the
    /// configured grace period, and returns the first server error if any.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let store = self.store.clone();
        let grace = self.grace;
        let drained = tokio::time::timeout(grace, async {
            let mut first_error = Ok(());
            while let Some(joined) = self.tasks.join_next().await {
                let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
                if first_error.is_ok() {
                    first_error = result;
                }
            }
            first_error
        })
        .await;
        let result = match drained {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "shutdown grace period over; aborting in-flight requests"
                );
                self.tasks.abort_all();
                Ok(())
            }
        };
        store.flush().await?;
        result
    }

    /// Completes when a listener's server stops on its own (it failed);
    /// never completes while both run.
    async fn failed(&mut self) -> anyhow::Error {
        match self.tasks.join_next().await {
            Some(Ok(Err(err))) => err,
            Some(Ok(Ok(()))) => anyhow::anyhow!("a listener stopped unexpectedly"),
            Some(Err(join)) => anyhow::Error::from(join).context("a listener task panicked"),
            None => std::future::pending().await,
        }
    }
}

/// Loads the admin token: `TOOLGATE_ADMIN_TOKEN` wins; else
/// `<data_dir>/admin.token` is read, or created (mode 0600) with a new
/// random token. Returns the token and the file it came from.
fn load_admin_token(
    env_value: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<PathBuf>)> {
    if let Some(token) = env_value {
        let token = token.trim();
        anyhow::ensure!(
            token.len() >= 16,
            "TOOLGATE_ADMIN_TOKEN must be at least 16 characters"
        );
        return Ok((token.to_owned(), None));
    }
    let path = data_dir.join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            anyhow::ensure!(
                token.len() >= 16,
                "{} holds no usable admin token (at least 16 characters)",
                path.display()
            );
            Ok((token, Some(path)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let token = crypto::random_token(ADMIN_TOKEN_PREFIX)?;
            crypto::write_private_file(&path, format!("{token}\n").as_bytes())
                .with_context(|| format!("cannot create {}", path.display()))?;
            Ok((token, Some(path)))
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn create_data_dir(path: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .with_context(|| format!("cannot create data directory {}", path.display()))
}

/// Starts the daemon on bound listeners. Returns once both servers accept
/// connections.
pub async fn start(
    config: &Config,
    secrets: &Secrets,
    listeners: Listeners,
) -> anyhow::Result<Running> {
    let state = open(config, secrets).await?;
    let running = serve(config, state, listeners).await?;
    running.export_gate.cancel();
    Ok(running)
}

/// The opened store (holding the data directory's lock when it is the
/// embedded one) and the admin token.
#[derive(Debug)]
pub struct Opened {
    store: Arc<Store>,
    admin_token: String,
    admin_token_file: Option<PathBuf>,
}

/// Opens the store: the embedded one under the data directory (taking its
/// lock, so a second daemon fails here, before touching ports) or
/// PostgreSQL when `database_url` is set; loads the master key and checks
/// it against the store, loads the admin token, and rediscovers tools if an
/// upgrade changed their definitions.
///
/// On PostgreSQL every replica must hold the same master key and admin
/// token: they come from `TOOLGATE_MASTER_KEY` and `TOOLGATE_ADMIN_TOKEN`
/// (or files already in the data directory), and are never made up here,
/// since a key made up by one replica could not open what another sealed.
pub async fn open(config: &Config, secrets: &Secrets) -> anyhow::Result<Opened> {
    create_data_dir(&config.data_dir)?;
    let store = match &config.database_url {
        None => {
            let lock = crate::store::DirLock::acquire(&config.data_dir)?;
            let key = MasterKey::load_or_create(secrets.master_key.as_deref(), &config.data_dir)?;
            Store::open(&config.data_dir, key, lock)?
        }
        Some(url) => {
            anyhow::ensure!(
                secrets.master_key.is_some() || config.data_dir.join("master.key").exists(),
                "with --database-url every replica needs the same master key: set TOOLGATE_MASTER_KEY (64 hex digits, e.g. from `openssl rand -hex 32`, or 43 unpadded base64url characters) on each, or put the same master.key in each --data-dir"
            );
            anyhow::ensure!(
                secrets.admin_token.is_some() || config.data_dir.join("admin.token").exists(),
                "with --database-url every replica needs the same admin token: set TOOLGATE_ADMIN_TOKEN (at least 16 characters) on each, or put the same admin.token in each --data-dir"
            );
            let key = MasterKey::load_or_create(secrets.master_key.as_deref(), &config.data_dir)?;
            let options = crate::store::PgOptions {
                max_connections: config.database_max_connections,
                ..crate::store::PgOptions::default()
            };
            let store = Store::open_postgres(url.expose(), key, options)
                .await
                .with_context(|| format!("cannot open the database at {url}"))?;
            tracing::info!(database = %url, "state is kept in PostgreSQL");
            store
        }
    };
    let store = Arc::new(store);
    store.check_master_key().await?;
    let (admin_token, admin_token_file) =
        load_admin_token(secrets.admin_token.as_deref(), &config.data_dir)?;
    let rediscovered = control::rediscover_after_upgrade(&store).await?;
    if rediscovered > 0 {
        tracing::info!(
            servers = rediscovered,
            "tool definitions changed since the last start; rediscovered"
        );
    }
    Ok(Opened {
        store,
        admin_token,
        admin_token_file,
    })
}

/// Where a store is, for `toolgated store copy`.
enum Location {
    Dir(PathBuf),
    Postgres(crate::config::DatabaseUrl),
}

impl Location {
    /// A `postgres://` URL, `database` (the URL in `TOOLGATE_DATABASE_URL`,
    /// so a password stays off the command line), or a data directory.
    fn parse(text: &str) -> anyhow::Result<Self> {
        if text == "database" {
            let url = std::env::var("TOOLGATE_DATABASE_URL").map_err(|_| {
                anyhow::anyhow!(
                    "`database` means the URL in TOOLGATE_DATABASE_URL, which is not set"
                )
            })?;
            return Ok(Self::Postgres(crate::config::DatabaseUrl::parse(&url)?));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self::Postgres(crate::config::DatabaseUrl::parse(text)?))
        } else {
            Ok(Self::Dir(PathBuf::from(text)))
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Dir(dir) => dir.display().to_string(),
            Self::Postgres(url) => url.to_string(),
        }
    }

    async fn open(&self, key: MasterKey, target: bool) -> anyhow::Result<Store> {
        match self {
            Self::Dir(dir) => {
                if !target {
                    anyhow::ensure!(
                        dir.join("db").exists(),
                        "{} holds no toolgate store",
                        dir.display()
                    );
                }
                create_data_dir(dir)?;
                let lock = crate::store::DirLock::acquire(dir)?;
                Ok(Store::open(dir, key, lock)?)
            }
            Self::Postgres(url) => {
                Ok(
                    Store::open_postgres(url.expose(), key, crate::store::PgOptions::default())
                        .await
                        .with_context(|| format!("cannot open the database at {url}"))?,
                )
            }
        }
    }
}

/// `toolgated store copy --from <from> --to <to>`: copies every record,
/// sealed secret and audit event into an empty store; see
/// [`crate::store::copy`]. The master key is `TOOLGATE_MASTER_KEY`, else
/// the source data directory's `master.key` (written next to a target data
/// directory that has none, so the copy opens on its own).
///
/// Errors: the source cannot be opened or its secrets do not open under
/// the key; the target is not empty; any database error.
pub async fn store_copy(
    from: &str,
    to: &str,
    secrets: &Secrets,
) -> anyhow::Result<(crate::store::CopyReport, String, String)> {
    let (from, to) = (Location::parse(from)?, Location::parse(to)?);
    let key = match (&secrets.master_key, &from) {
        (Some(value), _) => MasterKey::parse(value, "TOOLGATE_MASTER_KEY")?,
        (None, Location::Dir(dir)) => {
            let path = dir.join("master.key");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            MasterKey::parse(&text, &path.display().to_string())?
        }
        (None, Location::Postgres(_)) => anyhow::bail!(
            "set TOOLGATE_MASTER_KEY to the replicas' master key to copy from PostgreSQL"
        ),
    };
    let source = from.open(key.clone(), false).await?;
    let target = to.open(key.clone(), true).await?;
    let report = crate::store::copy(&source, &target).await?;
    if let (Location::Dir(dir), None) = (&to, &secrets.master_key) {
        let path = dir.join("master.key");
        if !path.exists() {
            crypto::write_private_file(&path, key.to_hex().as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok((report, from.describe(), to.describe()))
}

/// `toolgated audit verify --store <store>`: walks the audit hash chain
/// ([`Store::verify_audit_chain`]) and returns the report and the store's
/// description. Reading the audit log needs no secret: the master key is
/// `TOOLGATE_MASTER_KEY` or the data directory's `master.key` when there,
/// else a throwaway one (nothing is sealed or opened).
///
/// Errors: the store cannot be opened (a data directory in use by a
/// running daemon among them) or read.
pub async fn audit_verify(
    store: &str,
    secrets: &Secrets,
) -> anyhow::Result<(crate::store::ChainReport, String)> {
    let location = Location::parse(store)?;
    let key = match (&secrets.master_key, &location) {
        (Some(value), _) => MasterKey::parse(value, "TOOLGATE_MASTER_KEY")?,
        (None, Location::Dir(dir)) if dir.join("master.key").exists() => {
            let path = dir.join("master.key");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            MasterKey::parse(&text, &path.display().to_string())?
        }
        _ => MasterKey::generate()?,
    };
    let opened = location.open(key, false).await?;
    let report = opened.verify_audit_chain().await?;
    Ok((report, location.describe()))
}

/// Serves an opened data directory on bound listeners. Returns once both
/// servers accept connections.
pub async fn serve(
    config: &Config,
    opened: Opened,
    listeners: Listeners,
) -> anyhow::Result<Running> {
    let Opened {
        store,
        admin_token,
        admin_token_file,
    } = opened;

    let http_addr = listeners.http.local_addr()?;
    let grpc_addr = listeners.grpc.local_addr()?;
    let metrics_addr = match &listeners.metrics {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    // Process-global, and only with the listener on: with `--metrics-addr
    // ""` the `metrics` macros reach no recorder and cost next to nothing
    // (BENCHMARKS.md, section 8).
    if metrics_addr.is_some() {
        crate::metrics::install();
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| default_public_url(http_addr));
    let shutdown = CancellationToken::new();
    let control = Control::new(store.clone(), &public_url, shutdown.clone())
        .with_salesforce_domains(config.salesforce_domains.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    for name in control::SERVICE_NAMES {
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let oauth = Arc::new(
        crate::oauth::OAuth::new(store.clone(), &public_url)
            .with_upstream(config.upstream_timeout, config.salesforce_domains.clone()),
    );
    let limits = crate::salesforce::Limits {
        max_records: config.max_records_per_call,
        max_bytes: config.max_result_bytes,
        upstream_timeout: config.upstream_timeout,
    };
    let mcp_state = Arc::new(crate::mcp::McpState::new(
        store.clone(),
        oauth.clone(),
        limits,
    ));
    let mut tasks = JoinSet::new();
    let grpc_shutdown = shutdown.clone();
    let routes = control.routes_with(
        AdminAuth::new(&admin_token),
        control::Connections::new(store.clone(), oauth),
    );
    tasks.spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            // No Nagle delay: small replies (one tool, one page) otherwise
            // wait for the peer's delayed ACK (~40 ms).
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listeners.grpc)
                    .with_nodelay(Some(true)),
                async move {
                    grpc_shutdown.cancelled().await;
                    for name in control::SERVICE_NAMES {
                        health
                            .set_service_status(name, tonic_health::ServingStatus::NotServing)
                            .await;
                    }
                },
            )
            .await
            .context("gRPC server failed")
    });

    tasks.spawn({
        let (store, stop) = (store.clone(), shutdown.clone());
        async move {
            crate::authz::lifecycle::run_sweeper(
                store,
                crate::authz::lifecycle::SWEEP_INTERVAL,
                stop,
            )
            .await;
            Ok(())
        }
    });
    tasks.spawn({
        let (store, stop) = (store.clone(), shutdown.clone());
        async move {
            crate::mcp::held_calls::run_sweeper(
                store,
                crate::mcp::held_calls::SWEEP_INTERVAL,
                stop,
            )
            .await;
            Ok(())
        }
    });
    // Only with retention on: a task of this set that ends before the
    // shutdown counts as a failed listener ([`Running::failed`]).
    if config.audit_retention.is_enabled() {
        tasks.spawn({
            let (store, stop) = (store.clone(), shutdown.clone());
            let retention = config.audit_retention;
            async move {
                crate::audit_retention::run_sweeper(
                    store,
                    retention,
                    crate::audit_retention::SWEEP_INTERVAL,
                    stop,
                )
                .await;
                Ok(())
            }
        });
    }
    tasks.spawn({
        let (store, stop) = (store.clone(), shutdown.clone());
        async move {
            crate::access_requests::run_sweeper(
                store,
                crate::access_requests::SWEEP_INTERVAL,
                stop,
            )
            .await;
            Ok(())
        }
    });
    tasks.spawn({
        let state = mcp_state.clone();
        let stop = shutdown.clone();
        async move {
            crate::mcp::notify::watch(state, stop).await;
            Ok(())
        }
    });
    tasks.spawn({
        let limiter = mcp_state.limiter.clone();
        let stop = shutdown.clone();
        async move {
            crate::limits::run_evictor(limiter, crate::limits::EVICT_EVERY, stop).await;
            Ok(())
        }
    });
    let export_gate = CancellationToken::new();
    for sink in &config.audit_export {
        let export = crate::audit_export::exporter(
            store.clone(),
            sink,
            export_gate.clone(),
            shutdown.clone(),
        )?;
        tasks.spawn(async move {
            export.await;
            Ok(())
        });
    }
    let http_shutdown = shutdown.clone();
    let sessions = crate::mcp::sessions::SessionLimits {
        idle_timeout: config.mcp_session_idle_timeout,
        per_user: config.mcp_max_sessions_per_user,
        total: config.mcp_max_sessions,
    };
    let authz = Arc::new(crate::authz::Authz::new(
        store.clone(),
        &public_url,
        config.authz_options(),
    ));
    if let Some(listener) = listeners.metrics {
        let scrape = crate::metrics::Scrape {
            store: store.clone(),
            mcp: mcp_state.clone(),
        };
        let stop = shutdown.clone();
        tasks.spawn(async move {
            crate::metrics::serve(listener, scrape, stop)
                .await
                .context("metrics server failed")
        });
    }
    let router = crate::http::router(
        mcp_state,
        authz,
        &public_url,
        shutdown.child_token(),
        sessions,
    );
    let limits = crate::listener::ListenerLimits {
        header_read_timeout: config.http_header_read_timeout,
        idle_timeout: config.http_idle_timeout,
        max_connections: config.http_max_connections,
        max_body_bytes: config.http_max_body_bytes,
        max_header_bytes: config.http_max_header_bytes,
        request_timeout: config.http_request_timeout,
    };
    tasks.spawn(async move {
        crate::listener::serve(listeners.http, router, limits, http_shutdown)
            .await
            .context("HTTP server failed")
    });

    tracing::info!(%http_addr, %grpc_addr, ?metrics_addr, %public_url, "toolgated started");
    Ok(Running {
        http_addr,
        grpc_addr,
        metrics_addr,
        public_url,
        admin_token_file,
        store,
        shutdown,
        tasks,
        grace: config.shutdown_timeout,
        export_gate,
    })
}

/// Runs the daemon until `signal` completes, then shuts down gracefully.
/// Prints one line to stdout once ready:
/// `toolgated ready: grpc=<addr> http=<addr> metrics=<addr or off> public_url=<url> admin_token=<file or env>`.
pub async fn run(
    config: Config,
    secrets: Secrets,
    signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let opened = open(&config, &secrets).await?;
    let listeners = Listeners::bind(&config).await?;
    let running = serve(&config, opened, listeners).await?;
    let token_source = running.admin_token_file.as_ref().map_or_else(
        || "TOOLGATE_ADMIN_TOKEN".to_owned(),
        |p| p.display().to_string(),
    );
    let metrics = running
        .metrics_addr
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    println!(
        "toolgated ready: grpc={} http={} metrics={} public_url={} admin_token={}",
        running.grpc_addr, running.http_addr, metrics, running.public_url, token_source
    );
    // Audit events on stdout (`--audit-export stdout`) follow the ready line.
    running.export_gate.cancel();
    let mut running = running;
    let stopped = running.shutdown_token();
    tokio::select! {
        () = signal => tracing::info!("shutdown signal received; draining"),
        () = stopped.cancelled() => {}
        err = running.failed() => {
            running.stop().await?;
            return Err(err);
        }
    }
    running.stop().await?;
    tracing::info!("toolgated stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
