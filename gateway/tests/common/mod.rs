//! Helpers shared by the integration tests: start a daemon in-process on
//! port 0 with a temp data directory, and tonic clients that carry the admin
//! token.

#![allow(dead_code, missing_docs)]

use std::path::Path;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use toolgate_gateway::app::{self, Listeners, Running};
use toolgate_gateway::config::{Args, Config, Secrets};
pub use toolgate_proto::AdminToken;
use toolgate_proto::v1;

/// One client per service, sharing a channel, every request carrying the
/// admin token.
pub type Clients = toolgate_proto::AdminClients;

/// The interceptor for admin `token` (no actor).
pub fn admin(token: &str) -> AdminToken {
    AdminToken::new(token).unwrap()
}

/// Connects to the control API at `addr`, every request passing through
/// `interceptor` (an [`AdminToken`], or anything else a test needs to send).
pub async fn clients<I: Interceptor + Clone>(
    addr: std::net::SocketAddr,
    interceptor: I,
) -> toolgate_proto::Clients<InterceptedService<Channel, I>> {
    let channel = toolgate_proto::admin::endpoint(&addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    toolgate_proto::Clients::new(InterceptedService::new(channel, interceptor))
}

/// The daemon's defaults, on loopback port 0 in `data_dir`, with a public
/// URL of https://toolgate.example.com.
pub fn config(data_dir: &Path) -> Config {
    Config::resolve(Args {
        data_dir: Some(data_dir.to_owned()),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
        public_url: Some("https://toolgate.example.com".into()),
        log_level: Some("warn".into()),
        shutdown_timeout_secs: Some(5),
        ..Args::default()
    })
    .unwrap()
}

/// Starts a daemon on port 0 in `data_dir`; returns it and its admin token.
pub async fn start(data_dir: &Path) -> (Running, String) {
    let config = config(data_dir);
    let listeners = Listeners::bind(&config).await.unwrap();
    let running = app::start(&config, &Secrets::default(), listeners)
        .await
        .unwrap();
    let token = std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    (running, token)
}

/// Registers a Salesforce server named `name` with prefix `prefix`.
pub async fn register(
    clients: &mut Clients,
    name: &str,
    prefix: &str,
) -> v1::RegisterServerResponse {
    clients
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: name.into(),
            tool_prefix: prefix.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Whether any file under `dir` contains `needle`.
pub fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    files_under(dir).into_iter().find(|path| {
        std::fs::read(path)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}
