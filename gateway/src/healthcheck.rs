//! `toolgated --health-check`: a probe for container health checks, where
//! the runtime image has no curl. It resolves the configuration exactly as
//! the daemon does (flags, `TOOLGATE_*` environment, `--config` file),
//! sends `GET /healthz` to the public HTTP listener and reports in one line.
//!
//! It must stay a pure client: it never opens the data directory, binds a
//! port or starts logging, so it can run beside the daemon it checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::{Args, Config, ConfigError};

/// How long the probe waits for the whole answer. Docker's `HEALTHCHECK
/// --timeout` should be longer, so that a slow daemon is reported by this
/// probe (with a reason) rather than killed by Docker (without one).
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Longest part of an unexpected body shown in a report.
const SHOWN_BODY_CHARS: usize = 60;

/// Why the daemon is not healthy (or cannot be checked). Each message is
/// one line an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    /// The configuration does not resolve (the daemon would not start either).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The configured HTTP address has port 0, so the bound port is unknown.
    #[error(
        "the HTTP address {0} has port 0 (any free port), so there is nothing to check; set the real port with --http-addr, TOOLGATE_HTTP_ADDR or http_addr"
    )]
    NoPort(SocketAddr),
    /// Nothing answered: refused, reset, timed out.
    #[error("GET {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong, innermost cause first.
        reason: String,
    },
    /// An HTTP answer other than 200.
    #[error("GET {url}: answered HTTP {status}, expected 200")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// 200, but not the body `/healthz` sends (another service on the port?).
    #[error("GET {url}: answered {body:?}, expected \"ok\" (is another service on this port?)")]
    Body {
        /// The URL asked.
        url: String,
        /// The start of the body.
        body: String,
    },
}

/// The URL the probe asks for a listener configured at `http_addr`:
/// `http://<addr>/healthz`, where an unspecified address (`0.0.0.0`, `::`)
/// becomes the loopback address of its family (`127.0.0.1`, `::1`).
///
/// Errors: [`HealthCheckError::NoPort`] for port 0.
pub fn healthz_url(http_addr: SocketAddr) -> Result<String, HealthCheckError> {
    if http_addr.port() == 0 {
        return Err(HealthCheckError::NoPort(http_addr));
    }
    let ip = match http_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(format!(
        "http://{}/healthz",
        SocketAddr::new(ip, http_addr.port())
    ))
}

/// Sends `GET /healthz` to the listener configured at `http_addr` (see
/// [`healthz_url`]), ignoring proxy settings, and waits at most `timeout`.
/// Returns the URL asked when it answered 200 with the body `ok`.
pub async fn probe(http_addr: SocketAddr, timeout: Duration) -> Result<String, HealthCheckError> {
    let url = healthz_url(http_addr)?;
    let unreachable = |err: reqwest::Error| HealthCheckError::Unreachable {
        url: url.clone(),
        reason: describe(&err, timeout),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(unreachable)?;
    let response = client.get(&url).send().await.map_err(unreachable)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(HealthCheckError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let body = response.text().await.map_err(unreachable)?;
    if body.trim() != "ok" {
        return Err(HealthCheckError::Body {
            url,
            body: body.trim().chars().take(SHOWN_BODY_CHARS).collect(),
        });
    }
    Ok(url)
}

/// What `toolgated --health-check` does: resolves `args` like the daemon
/// and probes its public listener with [`TIMEOUT`]. Returns the line to
/// print on success, e.g. `healthy: http://127.0.0.1:8080/healthz answered ok`.
pub async fn run(args: Args) -> Result<String, HealthCheckError> {
    let config = Config::resolve(args)?;
    let url = probe(config.http_addr, TIMEOUT).await?;
    Ok(format!("healthy: {url} answered ok"))
}

/// A reqwest error as one short line: a timeout says so; otherwise the
/// innermost cause (e.g. `Connection refused (os error 111)`), which is the
/// part an operator can act on.
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs_f32());
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{what}: {cause}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        let url = |addr: &str| healthz_url(addr.parse().unwrap()).unwrap();
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/healthz");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/healthz");
        assert_eq!(url("10.1.2.3:9000"), "http://10.1.2.3:9000/healthz");
        assert_eq!(url("[fd00::1]:80"), "http://[fd00::1]:80/healthz");
        let err = healthz_url("127.0.0.1:0".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("port 0"), "{err}");
    }
}
