//! Daemon configuration: command-line flags, environment variables and an
//! optional TOML file, merged once into a validated [`Config`].
//!
//! Precedence, highest first: flag, environment variable, config file,
//! built-in default. Secrets (`TOOLGATE_MASTER_KEY`, `TOOLGATE_ADMIN_TOKEN`)
//! come from the environment only, never from flags (which other users can
//! see in the process list) or the config file, and live in [`Secrets`],
//! whose `Debug` redacts them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The flags of `toolgated`; each has an environment variable too.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "toolgated",
    version,
    about = "toolgate daemon: a governed MCP gateway to Salesforce, with a gRPC control API",
    after_help = "Secrets come from the environment only: TOOLGATE_MASTER_KEY (64 hex digits; else <data-dir>/master.key is used, created on first start) and TOOLGATE_ADMIN_TOKEN (else <data-dir>/admin.token, created on first start)."
)]
pub struct Args {
    /// TOML config file; its keys are the long flag names with `_` for `-`.
    #[arg(long, env = "TOOLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database, keys and the admin token [default: ./toolgate-data].
    #[arg(long, env = "TOOLGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public HTTP listener (MCP, OAuth callback, health) [default: 127.0.0.1:8080].
    #[arg(long, env = "TOOLGATE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Control-plane gRPC listener [default: 127.0.0.1:50051].
    #[arg(long, env = "TOOLGATE_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Prometheus metrics listener serving GET /metrics; an empty value
    /// turns it off [default: 127.0.0.1:9464].
    #[arg(long, env = "TOOLGATE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Base URL that users' browsers and AI clients reach [default: http://<http-addr>].
    #[arg(long, env = "TOOLGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log filter, e.g. `info` or `toolgate_gateway=debug,info` [default: info].
    #[arg(long, env = "TOOLGATE_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "TOOLGATE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds to let in-flight requests finish on SIGINT/SIGTERM [default: 10].
    #[arg(long, env = "TOOLGATE_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Most records one tool call returns (the rest come with a cursor) [default: 200].
    #[arg(long, env = "TOOLGATE_MAX_RECORDS_PER_CALL")]
    pub max_records_per_call: Option<usize>,
    /// Most KiB of record JSON one tool call returns [default: 256].
    #[arg(long, env = "TOOLGATE_MAX_RESULT_KIB")]
    pub max_result_kib: Option<usize>,
    /// Seconds to wait for Salesforce (REST API and login host) before a
    /// call fails as timed out [default: 60].
    #[arg(long, env = "TOOLGATE_UPSTREAM_TIMEOUT_SECS")]
    pub upstream_timeout_secs: Option<u64>,
    /// More domains accepted for login hosts and instance URLs, besides
    /// Salesforce's own (comma-separated, e.g. `sfcrmproducts.cn`); a
    /// host must be a subdomain of one [default: none].
    #[arg(
        long,
        env = "TOOLGATE_ALLOWED_SALESFORCE_DOMAINS",
        value_delimiter = ','
    )]
    pub allowed_salesforce_domains: Option<Vec<String>>,
    /// Seconds an MCP session may go without traffic before it is closed [default: 300].
    #[arg(long, env = "TOOLGATE_MCP_SESSION_IDLE_SECS")]
    pub mcp_session_idle_secs: Option<u64>,
    /// Most open MCP sessions per user [default: 50].
    #[arg(long, env = "TOOLGATE_MCP_MAX_SESSIONS_PER_USER")]
    pub mcp_max_sessions_per_user: Option<usize>,
    /// Most open MCP sessions in total [default: 5000].
    #[arg(long, env = "TOOLGATE_MCP_MAX_SESSIONS")]
    pub mcp_max_sessions: Option<usize>,
    /// Seconds a client gets to send a request's headers on the public
    /// listener, counted from the connection's start or the end of its
    /// previous response [default: 10].
    #[arg(long, env = "TOOLGATE_HTTP_HEADER_READ_TIMEOUT_SECS")]
    pub http_header_read_timeout_secs: Option<u64>,
    /// Seconds a public connection may move no bytes either way before it
    /// is closed [default: 60].
    #[arg(long, env = "TOOLGATE_HTTP_IDLE_TIMEOUT_SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Most open connections on the public listener; more wait in the
    /// kernel's accept queue [default: 1024].
    #[arg(long, env = "TOOLGATE_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// Largest request body on the public listener, in KiB, on every route
    /// (MCP, OAuth, connect and sign-in forms); larger gets 413
    /// [default: 4096, at most 1048576].
    #[arg(long, env = "TOOLGATE_HTTP_MAX_BODY_KIB")]
    pub http_max_body_kib: Option<u64>,
    /// Largest request head (request line and headers) on the public
    /// listener, in KiB; larger gets 431 [default: 64, 8 to 1024].
    #[arg(long, env = "TOOLGATE_HTTP_MAX_HEADER_KIB")]
    pub http_max_header_kib: Option<u64>,
    /// Seconds a request's body may take to arrive after its headers on the
    /// public listener (a client trickling a body is cut off); responses,
    /// such as MCP event streams, are not timed [default: 30].
    #[arg(long, env = "TOOLGATE_HTTP_REQUEST_TIMEOUT_SECS")]
    pub http_request_timeout_secs: Option<u64>,
    /// PostgreSQL URL (`postgres://user@host:5432/toolgate`) to keep state
    /// in, for several replicas; without it the embedded store under
    /// --data-dir is used. Every replica gets the same URL, master key and
    /// admin token.
    #[arg(long, env = "TOOLGATE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most PostgreSQL connections each replica's pool opens (two more
    /// follow the change feed) [default: 10].
    #[arg(long, env = "TOOLGATE_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// Seconds an OAuth access token issued to an AI client for /mcp stays
    /// valid, 1 to 86400; clients refresh it with their refresh token
    /// [default: 3600].
    #[arg(long, env = "TOOLGATE_OAUTH_ACCESS_TOKEN_TTL_SECS")]
    pub oauth_access_token_ttl_secs: Option<u64>,
    /// PEM file of extra trusted root CA certificates for toolgated's
    /// outbound TLS to AI clients' metadata documents and the identity
    /// provider (a company's private CA), added to the built-in roots
    /// [default: none].
    #[arg(long, env = "TOOLGATE_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    /// Days audit events are kept; older ones are pruned in the background
    /// (the chain stays verifiable from the newest pruned event). 0 keeps
    /// them forever [default: 0].
    #[arg(long, env = "TOOLGATE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Most audit events kept; the oldest beyond it are pruned in the
    /// background. 0: no limit [default: 0].
    #[arg(long, env = "TOOLGATE_AUDIT_RETENTION_MAX_EVENTS")]
    pub audit_retention_max_events: Option<u64>,
    /// Where to export audit events as they are stored, comma-separated
    /// or repeated: `jsonl:<path>` (JSON lines appended to a file created
    /// mode 0600, resuming from `<path>.cursor`), `stdout` (JSON lines after
    /// the ready line), `otlp` (OpenTelemetry logs; endpoint and protocol
    /// from `OTEL_EXPORTER_OTLP_LOGS_*` / `OTEL_EXPORTER_OTLP_*`)
    /// [default: none].
    #[arg(long, env = "TOOLGATE_AUDIT_EXPORT", value_delimiter = ',')]
    pub audit_export: Vec<String>,
    /// Do not run the daemon: GET /healthz on the configured HTTP address
    /// (0.0.0.0 and :: mean loopback), print one line, and exit 0 if it
    /// answered `ok`, else 1. For container health checks.
    #[arg(long)]
    pub health_check: bool,
    /// A maintenance command instead of running the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `toolgated <command>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Work on a store while no daemon uses it.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `toolgated audit <command>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Walk the audit hash chain from the first kept event (or the
    /// retention anchor) to the newest, and report the first event that
    /// was altered, removed or reordered. Exits 0 when intact, 1 when
    /// broken or unreadable. A data directory needs the daemon stopped (it
    /// holds the directory's lock); on PostgreSQL it runs beside live
    /// replicas.
    Verify {
        /// The store: a data directory, a postgres:// URL, or `database`
        /// for the URL in TOOLGATE_DATABASE_URL (keeps a password off the
        /// command line).
        #[arg(long)]
        store: String,
    },
}

/// `toolgated store <command>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum StoreCommand {
    /// Copy every record, connection (tokens still sealed) and audit event
    /// into an empty store: a data directory to PostgreSQL to move onto
    /// replicas, or PostgreSQL to a data directory for a backup. The master
    /// key is TOOLGATE_MASTER_KEY, else the source data directory's
    /// master.key; the target then opens with the same key.
    Copy {
        /// Source: a data directory, a postgres:// URL, or `database` for
        /// the URL in TOOLGATE_DATABASE_URL (keeps a password off the
        /// command line).
        #[arg(long)]
        from: String,
        /// Target (must be empty): a data directory, a postgres:// URL, or
        /// `database` for the URL in TOOLGATE_DATABASE_URL.
        #[arg(long)]
        to: String,
    },
}

/// The config file: every key optional, unknown keys rejected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Args::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Args::http_addr`].
    pub http_addr: Option<SocketAddr>,
    /// See [`Args::grpc_addr`].
    pub grpc_addr: Option<SocketAddr>,
    /// See [`Args::metrics_addr`].
    pub metrics_addr: Option<String>,
    /// See [`Args::public_url`].
    pub public_url: Option<String>,
    /// See [`Args::log_level`].
    pub log_level: Option<String>,
    /// See [`Args::log_format`].
    pub log_format: Option<LogFormat>,
    /// See [`Args::shutdown_timeout_secs`].
    pub shutdown_timeout_secs: Option<u64>,
    /// See [`Args::max_records_per_call`].
    pub max_records_per_call: Option<usize>,
    /// See [`Args::max_result_kib`].
    pub max_result_kib: Option<usize>,
    /// See [`Args::upstream_timeout_secs`].
    pub upstream_timeout_secs: Option<u64>,
    /// See [`Args::allowed_salesforce_domains`].
    pub allowed_salesforce_domains: Option<Vec<String>>,
    /// See [`Args::mcp_session_idle_secs`].
    pub mcp_session_idle_secs: Option<u64>,
    /// See [`Args::mcp_max_sessions_per_user`].
    pub mcp_max_sessions_per_user: Option<usize>,
    /// See [`Args::mcp_max_sessions`].
    pub mcp_max_sessions: Option<usize>,
    /// See [`Args::http_header_read_timeout_secs`].
    pub http_header_read_timeout_secs: Option<u64>,
    /// See [`Args::http_idle_timeout_secs`].
    pub http_idle_timeout_secs: Option<u64>,
    /// See [`Args::http_max_connections`].
    pub http_max_connections: Option<usize>,
    /// See [`Args::http_max_body_kib`].
    pub http_max_body_kib: Option<u64>,
    /// See [`Args::http_max_header_kib`].
    pub http_max_header_kib: Option<u64>,
    /// See [`Args::http_request_timeout_secs`].
    pub http_request_timeout_secs: Option<u64>,
    /// See [`Args::database_url`].
    pub database_url: Option<String>,
    /// See [`Args::audit_retention_days`].
    pub audit_retention_days: Option<u64>,
    /// See [`Args::audit_retention_max_events`].
    pub audit_retention_max_events: Option<u64>,
    /// See [`Args::audit_export`] (a list of sinks).
    pub audit_export: Option<Vec<String>>,
    /// See [`Args::database_max_connections`].
    pub database_max_connections: Option<u32>,
    /// See [`Args::oauth_access_token_ttl_secs`].
    pub oauth_access_token_ttl_secs: Option<u64>,
    /// See [`Args::extra_ca_file`].
    pub extra_ca_file: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Public HTTP listen address (port 0: any free port).
    pub http_addr: SocketAddr,
    /// gRPC listen address (port 0: any free port).
    pub grpc_addr: SocketAddr,
    /// Prometheus `/metrics` listen address (port 0: any free port);
    /// `None`: no metrics listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Public base URL without a trailing slash; `None`: derived from the
    /// bound HTTP address.
    pub public_url: Option<String>,
    /// `tracing` filter directives.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Grace period for in-flight work on shutdown.
    pub shutdown_timeout: Duration,
    /// Most records one tool call returns.
    pub max_records_per_call: usize,
    /// Most bytes of record JSON one tool call returns.
    pub max_result_bytes: usize,
    /// How long to wait for one Salesforce request (REST API or login
    /// host), 1 s to 1 h.
    pub upstream_timeout: Duration,
    /// The Salesforce domains login hosts and instance URLs may be under:
    /// Salesforce's own plus `allowed_salesforce_domains`.
    pub salesforce_domains: crate::salesforce::domains::SalesforceDomains,
    /// An MCP session with no traffic for this long is closed.
    pub mcp_session_idle_timeout: Duration,
    /// Most open MCP sessions one user may hold.
    pub mcp_max_sessions_per_user: usize,
    /// Most open MCP sessions in total.
    pub mcp_max_sessions: usize,
    /// Time a client gets to send a request's headers on the public
    /// listener (also how long an idle keep-alive connection waits for its
    /// next request).
    pub http_header_read_timeout: Duration,
    /// A public connection that moves no bytes either way for this long is
    /// closed.
    pub http_idle_timeout: Duration,
    /// Most open connections on the public listener.
    pub http_max_connections: usize,
    /// Largest request body on the public listener, in bytes.
    pub http_max_body_bytes: usize,
    /// Largest request head on the public listener, in bytes.
    pub http_max_header_bytes: usize,
    /// Time a request body may take to arrive after its headers.
    pub http_request_timeout: Duration,
    /// PostgreSQL to keep state in; `None`: the embedded store.
    pub database_url: Option<DatabaseUrl>,
    /// Most pooled PostgreSQL connections per replica.
    pub database_max_connections: u32,
    /// Lifetime of OAuth access tokens for `/mcp`.
    pub oauth_access_token_ttl: Duration,
    /// The extra trusted root CA certificates (PEM, checked to parse),
    /// with the file they came from.
    pub extra_ca: Option<(PathBuf, Vec<u8>)>,
    /// How long and how many audit events are kept.
    pub audit_retention: crate::audit_retention::Retention,
    /// Where audit events are exported as they are stored (empty: nowhere).
    pub audit_export: Vec<crate::audit_export::Sink>,
}

/// A PostgreSQL URL. Its `Debug` and `Display` hide the password, which a
/// URL may carry.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks that `url` is a `postgres://` or `postgresql://` URL.
    ///
    /// Errors: [`ConfigError::Invalid`] naming `database-url` (without the
    /// URL, which may hold a password).
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            field: "database-url",
            message: message.into(),
        };
        let parsed = Url::parse(url.trim()).map_err(|e| invalid(&format!("not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(invalid(
                "must start with postgres:// or postgresql:// (e.g. postgres://toolgate@db.internal:5432/toolgate)",
            ));
        }
        Ok(Self(url.trim().to_owned()))
    }

    /// The URL itself, password included: for the database driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("redacted"));
                }
                if url.query_pairs().any(|(k, _)| k == "password") {
                    let pairs: Vec<(String, String)> = url
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if k == "password" {
                                "redacted".into()
                            } else {
                                v.into_owned()
                            };
                            (k.into_owned(), v)
                        })
                        .collect();
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                write!(f, "{url}")
            }
            Err(_) => f.write_str("<database url>"),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Secrets from the environment.
#[derive(Clone, Default)]
pub struct Secrets {
    /// `TOOLGATE_MASTER_KEY`.
    pub master_key: Option<String>,
    /// `TOOLGATE_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Secrets {
    /// Reads `TOOLGATE_MASTER_KEY` and `TOOLGATE_ADMIN_TOKEN` (empty values
    /// count as unset).
    pub fn from_env() -> Self {
        let get = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Self {
            master_key: get("TOOLGATE_MASTER_KEY"),
            admin_token: get("TOOLGATE_ADMIN_TOKEN"),
        }
    }
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, key).
        message: String,
    },
    /// A value is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The flag or key.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

impl Config {
    /// Merges flags/environment (`args`) over the config file they name
    /// over defaults, and validates the result.
    pub fn resolve(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let public_url = args
            .public_url
            .or(file.public_url)
            .map(|u| validate_public_url(&u))
            .transpose()?;
        let log_level = args
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_level).map_err(|e| ConfigError::Invalid {
            field: "log-level",
            message: e.to_string(),
        })?;
        Ok(Self {
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./toolgate-data")),
            http_addr: args
                .http_addr
                .or(file.http_addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            grpc_addr: args
                .grpc_addr
                .or(file.grpc_addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            metrics_addr: match args.metrics_addr.or(file.metrics_addr) {
                None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
                Some(value) => {
                    crate::metrics::parse_addr(&value).map_err(|message| ConfigError::Invalid {
                        field: "metrics-addr",
                        message,
                    })?
                }
            },
            public_url,
            log_level,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            shutdown_timeout: Duration::from_secs(
                args.shutdown_timeout_secs
                    .or(file.shutdown_timeout_secs)
                    .unwrap_or(10),
            ),
            max_records_per_call: positive(
                "max-records-per-call",
                args.max_records_per_call.or(file.max_records_per_call),
                200,
            )?,
            max_result_bytes: positive(
                "max-result-kib",
                args.max_result_kib.or(file.max_result_kib),
                256,
            )? * 1024,
            upstream_timeout: upstream_timeout(
                args.upstream_timeout_secs.or(file.upstream_timeout_secs),
            )?,
            salesforce_domains: crate::salesforce::domains::SalesforceDomains::with_extra(
                args.allowed_salesforce_domains
                    .or(file.allowed_salesforce_domains)
                    .unwrap_or_default(),
            )
            .map_err(|message| ConfigError::Invalid {
                field: "allowed-salesforce-domains",
                message,
            })?,
            mcp_session_idle_timeout: Duration::from_secs(positive_secs(
                "mcp-session-idle-secs",
                args.mcp_session_idle_secs.or(file.mcp_session_idle_secs),
                300,
            )?),
            mcp_max_sessions_per_user: positive(
                "mcp-max-sessions-per-user",
                args.mcp_max_sessions_per_user
                    .or(file.mcp_max_sessions_per_user),
                50,
            )?,
            mcp_max_sessions: positive(
                "mcp-max-sessions",
                args.mcp_max_sessions.or(file.mcp_max_sessions),
                5000,
            )?,
            http_header_read_timeout: Duration::from_secs(positive_secs(
                "http-header-read-timeout-secs",
                args.http_header_read_timeout_secs
                    .or(file.http_header_read_timeout_secs),
                10,
            )?),
            http_idle_timeout: http_idle_timeout(
                args.http_idle_timeout_secs.or(file.http_idle_timeout_secs),
            )?,
            http_max_connections: positive(
                "http-max-connections",
                args.http_max_connections.or(file.http_max_connections),
                1024,
            )?,
            http_max_body_bytes: kib_in(
                "http-max-body-kib",
                args.http_max_body_kib.or(file.http_max_body_kib),
                4096,
                1..=1_048_576,
            )?,
            http_max_header_bytes: kib_in(
                "http-max-header-kib",
                args.http_max_header_kib.or(file.http_max_header_kib),
                64,
                8..=1024,
            )?,
            http_request_timeout: Duration::from_secs(positive_secs(
                "http-request-timeout-secs",
                args.http_request_timeout_secs
                    .or(file.http_request_timeout_secs),
                30,
            )?),
            database_url: args
                .database_url
                .or(file.database_url)
                .filter(|u| !u.trim().is_empty())
                .map(|u| DatabaseUrl::parse(&u))
                .transpose()?,
            database_max_connections: u32::try_from(positive(
                "database-max-connections",
                args.database_max_connections
                    .or(file.database_max_connections)
                    .map(|n| n as usize),
                10,
            )?)
            .unwrap_or(u32::MAX),
            oauth_access_token_ttl: match args
                .oauth_access_token_ttl_secs
                .or(file.oauth_access_token_ttl_secs)
            {
                None => crate::authz::DEFAULT_ACCESS_TOKEN_TTL,
                Some(n @ 1..=86_400) => Duration::from_secs(n),
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        field: "oauth-access-token-ttl-secs",
                        message: "must be from 1 to 86400 seconds".into(),
                    });
                }
            },
            extra_ca: args
                .extra_ca_file
                .or(file.extra_ca_file)
                .map(|path| extra_ca(&path).map(|pem| (path, pem)))
                .transpose()?,
            audit_retention: crate::audit_retention::Retention {
                max_age: match args.audit_retention_days.or(file.audit_retention_days) {
                    None | Some(0) => None,
                    Some(days @ 1..=36_500) => Some(Duration::from_secs(days * 86_400)),
                    Some(_) => {
                        return Err(ConfigError::Invalid {
                            field: "audit-retention-days",
                            message: "must be from 0 (keep forever) to 36500 days".into(),
                        });
                    }
                },
                max_events: args
                    .audit_retention_max_events
                    .or(file.audit_retention_max_events)
                    .filter(|n| *n > 0),
            },
            audit_export: crate::audit_export::Sink::parse_all(
                &if args.audit_export.is_empty() {
                    file.audit_export.unwrap_or_default()
                } else {
                    args.audit_export
                },
                |name| std::env::var(name).ok(),
            )
            .map_err(|message| ConfigError::Invalid {
                field: "audit-export",
                message,
            })?,
        })
    }

    /// The authorization server's settings from this config.
    pub fn authz_options(&self) -> crate::authz::AuthzOptions {
        crate::authz::AuthzOptions {
            access_token_ttl: self.oauth_access_token_ttl,
            extra_roots: self
                .extra_ca
                .as_ref()
                .and_then(|(_, pem)| reqwest::Certificate::from_pem_bundle(pem).ok())
                .unwrap_or_default(),
            ..crate::authz::AuthzOptions::default()
        }
    }
}

/// Reads the extra CA file and checks it holds at least one PEM
/// certificate.
fn extra_ca(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        field: "extra-ca-file",
        message,
    };
    let pem =
        std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        invalid(format!(
            "{} is not a PEM certificate bundle: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        )));
    }
    Ok(pem)
}

/// The upstream timeout: 1 to 3600 seconds, default
/// [`crate::salesforce::DEFAULT_UPSTREAM_TIMEOUT`].
fn upstream_timeout(value: Option<u64>) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(crate::salesforce::DEFAULT_UPSTREAM_TIMEOUT),
        Some(n @ 1..=3600) => Ok(Duration::from_secs(n)),
        Some(_) => Err(ConfigError::Invalid {
            field: "upstream-timeout-secs",
            message: "must be from 1 to 3600 seconds".into(),
        }),
    }
}

/// A value that must be at least 1, or its default.
fn positive(
    field: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::Invalid {
            field,
            message: "must be at least 1".into(),
        }),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// A size in KiB within `range` (or `default`), in bytes.
fn kib_in(
    field: &'static str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<usize, ConfigError> {
    let kib = value.unwrap_or(default);
    if !range.contains(&kib) {
        return Err(ConfigError::Invalid {
            field,
            message: format!(
                "must be {} to {} (KiB); got {kib}",
                range.start(),
                range.end()
            ),
        });
    }
    Ok(usize::try_from(kib * 1024).unwrap_or(usize::MAX))
}

/// A number of seconds that must be at least 1, or its default.
fn positive_secs(
    field: &'static str,
    value: Option<u64>,
    default: u64,
) -> Result<u64, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::Invalid {
            field,
            message: "must be at least 1 (seconds)".into(),
        }),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// How often rmcp sends a keep-alive comment on an open MCP event stream
/// (rmcp 3.11 `StreamableHttpServerConfig::sse_keep_alive` default), in
/// seconds.
pub const SSE_KEEP_ALIVE_SECS: u64 = 15;

/// The public listener's idle timeout: more than [`SSE_KEEP_ALIVE_SECS`]
/// (an idle event stream moves bytes only that often, and a shorter
/// timeout would cut every idle stream), default 60 seconds.
fn http_idle_timeout(value: Option<u64>) -> Result<Duration, ConfigError> {
    match value {
        Some(n) if n <= SSE_KEEP_ALIVE_SECS => Err(ConfigError::Invalid {
            field: "http-idle-timeout-secs",
            message: format!(
                "must be more than {SSE_KEEP_ALIVE_SECS} (seconds): open MCP event streams send a keep-alive only every {SSE_KEEP_ALIVE_SECS} seconds, so a shorter idle timeout cuts every idle stream; got {n}"
            ),
        }),
        Some(n) => Ok(Duration::from_secs(n)),
        None => Ok(Duration::from_secs(60)),
    }
}

/// The public URL: http or https, no query, fragment or credentials; a path
/// is allowed (for a reverse proxy prefix). Returned without a trailing slash.
fn validate_public_url(value: &str) -> Result<String, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        field: "public-url",
        message,
    };
    let url = Url::parse(value.trim()).map_err(|e| {
        invalid(format!(
            "{e}; expected a base URL such as https://toolgate.example.com"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL".into()));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "must not have a query, fragment or credentials".into(),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The public URL to use when none is configured: `http://<bound addr>`,
/// with an unspecified IP (0.0.0.0, ::) shown as `localhost`.
pub fn default_public_url(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("http://localhost:{}", bound.port())
    } else {
        format!("http://{bound}")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_database_url_never_shows_its_password() {
        for (url, shown) in [
            (
                "postgres://toolgate:s3cr3t-pw@db.internal:5432/toolgate",
                "postgres://toolgate:redacted@db.internal:5432/toolgate",
            ),
            (
                "postgresql://db.internal/toolgate?user=tg&password=s3cr3t-pw&sslmode=require",
                "postgresql://db.internal/toolgate?user=tg&password=redacted&sslmode=require",
            ),
            ("postgres://tg@db/toolgate", "postgres://tg@db/toolgate"),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert!(!format!("{parsed:?}").contains("s3cr3t-pw"));
            assert_eq!(parsed.expose(), url);
        }
        let err = DatabaseUrl::parse("mysql://u:s3cr3t-pw@db/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("database-url: must start with postgres://"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t-pw"));
    }

    #[test]
    fn an_empty_metrics_addr_turns_the_listener_off_and_a_bad_one_is_named() {
        let with = |value: &str| {
            Config::resolve(Args {
                metrics_addr: Some(value.into()),
                ..Args::default()
            })
        };
        assert_eq!(with("").unwrap().metrics_addr, None);
        assert_eq!(with("  ").unwrap().metrics_addr, None);
        assert_eq!(
            with("0.0.0.0:9100").unwrap().metrics_addr,
            Some("0.0.0.0:9100".parse().unwrap())
        );
        let err = with("localhost").unwrap_err().to_string();
        assert!(
            err.starts_with("metrics-addr: \"localhost\" is not an address"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toolgate.toml");
        std::fs::write(&path, "metrics_addr = \"\"\n").unwrap();
        let from_file = Config::resolve(Args {
            config: Some(path),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(from_file.metrics_addr, None);
    }

    #[test]
    fn audit_export_sinks_are_comma_separated_or_repeated_and_checked() {
        use crate::audit_export::Sink;
        let resolve = |flags: &[&str]| {
            let mut argv = vec!["toolgated"];
            argv.extend_from_slice(flags);
            Config::resolve(Args::try_parse_from(argv).unwrap())
        };
        assert!(resolve(&[]).unwrap().audit_export.is_empty());
        let sinks = resolve(&[
            "--audit-export",
            "jsonl:/var/log/a.jsonl,stdout",
            "--audit-export",
            "jsonl:/var/log/b.jsonl",
        ])
        .unwrap()
        .audit_export;
        assert_eq!(
            sinks,
            vec![
                Sink::Jsonl("/var/log/a.jsonl".into()),
                Sink::Stdout,
                Sink::Jsonl("/var/log/b.jsonl".into()),
            ]
        );
        let err = resolve(&["--audit-export", "syslog"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "audit-export: \"syslog\" is not a sink; use jsonl:<path>, stdout or otlp"
        );
    }

    #[test]
    fn audit_retention_is_off_by_default_and_bounded() {
        let resolve = |flags: &[&str]| {
            let mut argv = vec!["toolgated"];
            argv.extend_from_slice(flags);
            Config::resolve(Args::try_parse_from(argv).unwrap())
        };
        let off = resolve(&[]).unwrap().audit_retention;
        assert!(!off.is_enabled());
        let zero = resolve(&[
            "--audit-retention-days",
            "0",
            "--audit-retention-max-events",
            "0",
        ])
        .unwrap()
        .audit_retention;
        assert!(!zero.is_enabled());
        let on = resolve(&[
            "--audit-retention-days",
            "30",
            "--audit-retention-max-events",
            "1000000",
        ])
        .unwrap()
        .audit_retention;
        assert_eq!(on.max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(on.max_events, Some(1_000_000));
        let err = resolve(&["--audit-retention-days", "36501"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("audit-retention-days: must be from 0"),
            "{err}"
        );
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toolgate.toml");
        std::fs::write(
            &path,
            "data_dir = \"/var/lib/toolgate\"\nhttp_addr = \"0.0.0.0:9000\"\npublic_url = \"https://gw.example.com/\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        let args = Args::try_parse_from([
            "toolgated",
            "--config",
            path.to_str().unwrap(),
            "--http-addr",
            "127.0.0.1:9100",
        ])
        .unwrap();
        let config = Config::resolve(args).unwrap();
        assert_eq!(config.http_addr, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/toolgate"));
        assert_eq!(config.public_url.as_deref(), Some("https://gw.example.com"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.grpc_addr, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(config.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(config.upstream_timeout, Duration::from_secs(60));
        assert!(config.salesforce_domains.extra().is_empty());
    }

    #[test]
    fn upstream_timeout_and_extra_domains_come_from_file_flag_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toolgate.toml");
        std::fs::write(
            &path,
            "upstream_timeout_secs = 15\nallowed_salesforce_domains = [\"sfcrmproducts.cn\"]\n",
        )
        .unwrap();
        let file_only =
            Args::try_parse_from(["toolgated", "--config", path.to_str().unwrap()]).unwrap();
        let config = Config::resolve(file_only).unwrap();
        assert_eq!(config.upstream_timeout, Duration::from_secs(15));
        assert_eq!(config.salesforce_domains.extra(), ["sfcrmproducts.cn"]);
        let flags = Args::try_parse_from([
            "toolgated",
            "--config",
            path.to_str().unwrap(),
            "--upstream-timeout-secs",
            "90",
            "--allowed-salesforce-domains",
            "*.Example.cn,corp-proxy.example",
        ])
        .unwrap();
        let config = Config::resolve(flags).unwrap();
        assert_eq!(config.upstream_timeout, Duration::from_secs(90));
        assert_eq!(
            config.salesforce_domains.extra(),
            ["example.cn", "corp-proxy.example"]
        );
        for (flag, value, field) in [
            ("--upstream-timeout-secs", "0", "upstream-timeout-secs"),
            (
                "--allowed-salesforce-domains",
                "https://x.example/",
                "allowed-salesforce-domains",
            ),
            (
                "--allowed-salesforce-domains",
                "com",
                "allowed-salesforce-domains",
            ),
        ] {
            let args = Args::try_parse_from(["toolgated", flag, value]).unwrap();
            let err = Config::resolve(args).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{field}:")), "{err}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "http_port = 1\n").unwrap();
        let args = Args {
            config: Some(path),
            ..Args::default()
        };
        let err = Config::resolve(args).unwrap_err().to_string();
        assert!(err.contains("http_port"), "{err}");
        let args = Args {
            public_url: Some("ftp://x".into()),
            ..Args::default()
        };
        let err = Config::resolve(args).unwrap_err().to_string();
        assert!(err.starts_with("public-url:"), "{err}");
    }

    #[test]
    fn an_idle_timeout_that_would_cut_idle_event_streams_is_refused() {
        for secs in [1, 15] {
            let args = Args {
                http_idle_timeout_secs: Some(secs),
                ..Args::default()
            };
            let err = Config::resolve(args).unwrap_err().to_string();
            assert!(err.contains("http-idle-timeout-secs"), "{err}");
            assert!(err.contains("must be more than 15"), "{err}");
        }
        let args = Args {
            http_idle_timeout_secs: Some(16),
            ..Args::default()
        };
        assert_eq!(
            Config::resolve(args).unwrap().http_idle_timeout,
            Duration::from_secs(16)
        );
        assert_eq!(
            Config::resolve(Args::default()).unwrap().http_idle_timeout,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn default_public_url_follows_the_bound_address() {
        assert_eq!(
            default_public_url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            default_public_url("0.0.0.0:8080".parse().unwrap()),
            "http://localhost:8080"
        );
    }

    #[test]
    fn secrets_debug_is_redacted() {
        let secrets = Secrets {
            master_key: Some("deadbeef".into()),
            admin_token: Some("tga_xyz".into()),
        };
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("deadbeef") && !shown.contains("tga_xyz"),
            "{shown}"
        );
    }
}
