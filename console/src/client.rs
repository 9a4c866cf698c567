//! The gRPC client of the daemon's control API: one lazily connected channel
//! shared by a client per `toolgate.v1` service, every request carrying the
//! admin token (and the console user's name as the audit actor).
//!
//! This module owns no state of the console and never touches the terminal.

use std::time::Duration;

use tonic::{Code, Status};
pub use toolgate_proto::AdminToken;

/// Why the console cannot build a client.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `--grpc-addr` is not a URL tonic can dial.
    #[error("--grpc-addr {addr:?} is not a valid address (expected e.g. http://127.0.0.1:50051)")]
    BadAddress {
        /// The address as given.
        addr: String,
    },
}

/// One client per control service, sharing one channel. Cloning is cheap.
pub type Clients = toolgate_proto::AdminClients;

/// Builds the clients over a channel that connects on first use and
/// reconnects after failures, so a daemon that is down at start (or
/// restarts) only fails the requests made meanwhile.
///
/// `addr` is `http://host:port`; a bare `host:port` gets `http://`.
pub fn connect(addr: &str, auth: AdminToken) -> Result<Clients, ConnectError> {
    let endpoint = toolgate_proto::admin::endpoint(addr).map_err(|_| ConnectError::BadAddress {
        addr: addr.to_owned(),
    })?;
    let channel = endpoint
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(Clients::with_admin_token(channel, auth))
}

/// A failed control API call, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The gRPC status code.
    pub code: Code,
    /// The daemon's message (field first for INVALID_ARGUMENT), or a
    /// transport description.
    pub message: String,
}

impl ApiError {
    /// Whether the daemon could not be reached at all (as opposed to
    /// answering with an error).
    pub fn is_connection(&self) -> bool {
        matches!(
            self.code,
            Code::Unavailable | Code::Unauthenticated | Code::DeadlineExceeded
        )
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        let message = match status.code() {
            Code::Unauthenticated => {
                "the daemon refused the admin token (check --token, TOOLGATE_ADMIN_TOKEN or --data-dir)"
                    .to_owned()
            }
            Code::Unavailable => {
                let detail = status.message().trim();
                let source = std::error::Error::source(&status)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let reason = [detail, source.as_str()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ");
                if reason.is_empty() {
                    "daemon unreachable".to_owned()
                } else {
                    format!("daemon unreachable ({reason})")
                }
            }
            _ => status.message().to_owned(),
        };
        Self {
            code: status.code(),
            message,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
