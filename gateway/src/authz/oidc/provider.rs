//! The HTTP side of the identity provider: toolgate's reqwest client as
//! the `openidconnect` crate's HTTP client (the `--extra-ca-file` roots,
//! no redirects, a timeout and a 1 MiB cap on answers), and the discovery
//! document (OpenID Connect Discovery 1.0 section 4) with its JWKS, cached
//! for [`DISCOVERY_TTL`].
//!
//! Must not: decide who signs in (that is [`super::claims`] and
//! [`super`]), or quote answers' bodies in errors (they may hold tokens).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;

use super::OidcError;
use crate::model::IdentityProvider;

/// How long a discovery document (and its JWKS) is used before it is read
/// again (1 h).
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Timeout of each request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider (1 MiB).
const MAX_ANSWER: usize = 1 << 20;

/// The HTTP side of the provider: the client and the discovery cache.
#[derive(Debug)]
pub struct Oidc {
    /// The client; `Err`: it could not be built (the TLS setup failed),
    /// said on every use.
    http: Result<reqwest::Client, String>,
    /// Discovery of one issuer; a std mutex, never held across an await.
    discovered: Mutex<Option<Discovered>>,
}

#[derive(Debug, Clone)]
struct Discovered {
    issuer_url: String,
    metadata: CoreProviderMetadata,
    at: Instant,
}

/// What failed on the way to or from the provider (no secrets: bodies are
/// not quoted).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Sending or reading failed (timeout, connect, reset, TLS).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The answer is larger than 1 MiB.
    #[error("the answer is larger than 1 MiB")]
    TooLarge,
    /// The HTTP client could not be built.
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

impl Oidc {
    /// A client trusting the platform roots and `extra_roots`, following
    /// no redirects (RFC 6749 section 10.12: the code and the client
    /// secret must not go elsewhere).
    pub fn new(extra_roots: &[reqwest::Certificate]) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .tls_certs_merge(extra_roots.iter().cloned())
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot build the identity provider's HTTP client");
                e.to_string()
            });
        Self {
            http,
            discovered: Mutex::new(None),
        }
    }

    /// The adapter `openidconnect` calls: `http` request in, `http`
    /// response out, over our reqwest client with the size cap.
    #[allow(clippy::type_complexity)]
    pub(super) fn client_fn(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send,
        >,
    > + use<> {
        let http = self.http.clone();
        move |request| {
            let http = http.clone();
            Box::pin(async move {
                let http = http.map_err(HttpError::Setup)?;
                let request = reqwest::Request::try_from(request)?;
                let mut response = http.execute(request).await?;
                let mut builder =
                    openidconnect::http::Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    builder = builder.header(name, value);
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_ANSWER {
                        return Err(HttpError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(builder
                    .body(body)
                    .unwrap_or_else(|_| openidconnect::http::Response::new(Vec::new())))
            })
        }
    }

    /// The provider's discovery document and keys: cached for
    /// [`DISCOVERY_TTL`], read again when `fresh` or the issuer changed.
    pub(super) async fn metadata(
        &self,
        idp: &IdentityProvider,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, OidcError> {
        if !fresh {
            let cached = self.discovered.lock().expect("discovery lock").clone();
            if let Some(d) = cached
                && d.issuer_url == idp.issuer_url
                && d.at.elapsed() < DISCOVERY_TTL
            {
                return Ok(d.metadata);
            }
        }
        let issuer = issuer_url(&idp.issuer_url)?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.client_fn())
            .await
            .map_err(|e| OidcError::Unreachable {
                issuer: idp.issuer_url.clone(),
                cause: format!("discovery failed: {}", chain(&e)),
            })?;
        *self.discovered.lock().expect("discovery lock") = Some(Discovered {
            issuer_url: idp.issuer_url.clone(),
            metadata: metadata.clone(),
            at: Instant::now(),
        });
        Ok(metadata)
    }

    /// Forgets the discovery document (after the provider failed us).
    pub(super) fn forget(&self) {
        *self.discovered.lock().expect("discovery lock") = None;
    }
}

/// `error` and its sources, joined (the crate's errors say little alone).
pub(super) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The issuer URL, `https`, or `http` on a loopback host only.
fn issuer_url(raw: &str) -> Result<IssuerUrl, OidcError> {
    let url = url::Url::parse(raw)
        .map_err(|e| OidcError::Misconfigured(format!("issuer URL {raw}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(OidcError::Misconfigured(format!(
            "issuer URL {raw} must be https"
        )));
    }
    IssuerUrl::new(raw.to_owned())
        .map_err(|e| OidcError::Misconfigured(format!("issuer URL {raw}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_loopback_http() {
        assert!(issuer_url("https://login.acme.example").is_ok());
        assert!(issuer_url("http://127.0.0.1:8080").is_ok());
        assert!(issuer_url("http://localhost:8080/realms/x").is_ok());
        assert!(issuer_url("http://login.acme.example").is_err());
        assert!(issuer_url("ftp://127.0.0.1").is_err());
        assert!(issuer_url("not a url").is_err());
    }
}
