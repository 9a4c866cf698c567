//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document;
//! MCP 2025-11-25 and 2026-07-28 "Authorization", "Client ID Metadata
//! Documents"): a client whose `client_id` is an `https` URL publishes its
//! metadata there; this module fetches it, checks it, and caches it.
//!
//! The fetch is the one place toolgated requests a URL a stranger chose,
//! so it is guarded against server-side request forgery:
//! - the host is resolved first, and every address must be public: no
//!   loopback, private (RFC 1918, unique local), link-local, shared
//!   (100.64/10), unspecified, multicast, broadcast or documentation
//!   addresses, unless the host (or `host:port`) is listed in
//!   `RegistrationPolicy.metadata_document_private_hosts`; the connection
//!   then goes to exactly those checked addresses (no second lookup, so no
//!   DNS rebinding);
//! - no redirects, a [`FETCH_TIMEOUT`], a [`MAX_DOCUMENT_BYTES`] cap;
//! - TLS with the built-in roots plus `--extra-ca-file`.
//!
//! The document's `client_id` must equal the URL, its `redirect_uris` must
//! be valid ([`super::clients::valid_redirect_uri`]), and it may not ask
//! for a shared secret. Documents are cached in memory for their HTTP
//! `Cache-Control: max-age`, clamped to [`CACHE_FLOOR`]..[`CACHE_CEILING`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::clients::{MAX_NAME_CHARS, MAX_REDIRECT_URIS, valid_redirect_uri};
use crate::model::{ClientOrigin, OAuthClient, now_ms};

/// Most bytes of a metadata document (64 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest time a document is cached (5 min).
pub const CACHE_FLOOR: Duration = Duration::from_secs(5 * 60);
/// Longest time a document is cached (24 h).
pub const CACHE_CEILING: Duration = Duration::from_secs(24 * 3600);
/// Most documents cached.
const CACHE_ENTRIES: usize = 1000;

/// Why a metadata document could not be used (shown to the user on the
/// authorization page, and to the client at the token endpoint).
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    /// The client_id is not a URL the draft allows.
    #[error("client_id {url:?} is not a valid Client ID Metadata Document URL: {reason}")]
    BadUrl {
        /// The client_id.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The host resolves to an address toolgate will not fetch from.
    #[error(
        "client_id {url:?}: its host resolves to a non-public address ({addr}); toolgate fetches metadata documents only from public addresses unless an administrator lists the host in the registration policy's metadata_document_private_hosts"
    )]
    PrivateAddress {
        /// The client_id.
        url: String,
        /// The refused address.
        addr: IpAddr,
    },
    /// The fetch failed.
    #[error("cannot fetch the Client ID Metadata Document at {url:?}: {reason}")]
    Fetch {
        /// The client_id.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The document is not acceptable.
    #[error("the Client ID Metadata Document at {url:?} is not acceptable: {reason}")]
    Invalid {
        /// The client_id.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The fields of a metadata document toolgate reads (RFC 7591 section 2
/// names); others are ignored.
#[derive(Debug, Deserialize)]
struct Document {
    client_id: Option<String>,
    client_name: Option<String>,
    client_uri: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
}

/// Fetches and caches metadata documents.
#[derive(Debug)]
pub struct Fetcher {
    roots: Vec<reqwest::Certificate>,
    cache: Mutex<HashMap<String, (OAuthClient, Instant)>>,
}

impl Fetcher {
    /// A fetcher trusting the built-in roots plus `extra_roots`.
    pub fn new(extra_roots: &[reqwest::Certificate]) -> Self {
        Self {
            roots: extra_roots.to_vec(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client described by the document at `url` (cached, or fetched
    /// now). `private_hosts` are the SSRF guard's exceptions.
    ///
    /// Errors: [`CimdError`], saying what is wrong.
    pub async fn client(
        &self,
        url: &str,
        private_hosts: &[String],
    ) -> Result<OAuthClient, CimdError> {
        if let Some((client, until)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            && *until > Instant::now()
        {
            return Ok(client.clone());
        }
        let (client, ttl) = self.fetch(url, private_hosts).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(url.to_owned(), (client.clone(), Instant::now() + ttl));
        Ok(client)
    }

    async fn fetch(
        &self,
        url: &str,
        private_hosts: &[String],
    ) -> Result<(OAuthClient, Duration), CimdError> {
        let bad = |reason: &str| CimdError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "https" {
            return Err(bad("it must use https"));
        }
        if parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(bad("it may not have a fragment or credentials"));
        }
        if parsed.path() == "/" || parsed.path().is_empty() {
            return Err(bad(
                "it must have a path (e.g. https://app.example/oauth/client.json)",
            ));
        }
        if parsed.path().split('/').any(|s| s == "." || s == "..") || url.len() > 2000 {
            return Err(bad(
                "it may not have dot segments or exceed 2000 characters",
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| bad("it has no host"))?
            .to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let bare_host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let exempt = private_hosts.iter().any(|h| {
            let h = h.trim().to_ascii_lowercase();
            h == bare_host || h == format!("{bare_host}:{port}") || h == format!("{host}:{port}")
        });
        let addrs: Vec<SocketAddr> = match bare_host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                FETCH_TIMEOUT,
                tokio::net::lookup_host((bare_host.as_str(), port)),
            )
            .await
            .map_err(|_| CimdError::Fetch {
                url: url.to_owned(),
                reason: "resolving the host timed out".into(),
            })?
            .map_err(|e| CimdError::Fetch {
                url: url.to_owned(),
                reason: format!("cannot resolve the host: {e}"),
            })?
            .collect(),
        };
        if addrs.is_empty() {
            return Err(CimdError::Fetch {
                url: url.to_owned(),
                reason: "the host has no address".into(),
            });
        }
        if !exempt && let Some(addr) = addrs.iter().map(SocketAddr::ip).find(|ip| !is_public(*ip)) {
            return Err(CimdError::PrivateAddress {
                url: url.to_owned(),
                addr,
            });
        }
        let fetch_err = |reason: String| CimdError::Fetch {
            url: url.to_owned(),
            reason,
        };
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .no_proxy()
            .tls_certs_merge(self.roots.iter().cloned());
        if bare_host.parse::<IpAddr>().is_err() {
            builder = builder.resolve_to_addrs(&bare_host, &addrs);
        }
        let http = builder
            .build()
            .map_err(|e| fetch_err(format!("cannot set up TLS: {e}")))?;
        let mut response = http
            .get(parsed.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fetch_err(describe(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(fetch_err(format!(
                "it answered a redirect ({status}); redirects are not followed"
            )));
        }
        if !status.is_success() {
            return Err(fetch_err(format!("it answered HTTP {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(fetch_err(format!(
                "it is larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        let ttl = cache_ttl(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fetch_err(describe(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(fetch_err(format!(
                    "it is larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((parse(url, &body)?, ttl))
    }
}

/// Checks a fetched document and makes the client of `url` from it.
fn parse(url: &str, body: &[u8]) -> Result<OAuthClient, CimdError> {
    let invalid = |reason: String| CimdError::Invalid {
        url: url.to_owned(),
        reason,
    };
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("it is not a JSON object of client metadata ({e})")))?;
    match doc.client_id.as_deref() {
        Some(id) if id == url => {}
        Some(id) => {
            return Err(invalid(format!(
                "its client_id {:?} differs from the URL it was fetched from; they must be equal",
                id.chars().take(200).collect::<String>()
            )));
        }
        None => return Err(invalid("it has no client_id".into())),
    }
    if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid(format!(
            "redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"
        )));
    }
    for uri in &doc.redirect_uris {
        valid_redirect_uri(uri).map_err(invalid)?;
    }
    let method = doc
        .token_endpoint_auth_method
        .unwrap_or_else(|| "none".into());
    if method != "none" {
        return Err(invalid(format!(
            "token_endpoint_auth_method {method:?} is not supported for metadata document clients (use none, with PKCE)"
        )));
    }
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let name = doc
        .client_name
        .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or(host);
    let now = now_ms();
    Ok(OAuthClient {
        id: url.to_owned(),
        name,
        origin: ClientOrigin::MetadataDocument,
        redirect_uris: doc.redirect_uris,
        client_uri: doc
            .client_uri
            .filter(|u| u.starts_with("https://") && u.len() <= 2000),
        token_endpoint_auth_method: method,
        secret_hash: None,
        created_at: now,
        fetched_at: Some(now),
    })
}

/// How long to cache a document given its `Cache-Control`.
fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let max_age = cache_control.and_then(|cc| {
        if cc
            .split(',')
            .any(|d| matches!(d.trim(), "no-store" | "no-cache"))
        {
            return Some(0);
        }
        cc.split(',')
            .filter_map(|d| d.trim().strip_prefix("max-age="))
            .find_map(|v| v.trim_matches('"').parse::<u64>().ok())
    });
    Duration::from_secs(max_age.unwrap_or(0)).clamp(CACHE_FLOOR, CACHE_CEILING)
}

/// A reqwest error's cause chain, one line, no URL query.
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        format!("no answer within {} seconds", FETCH_TIMEOUT.as_secs())
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(blocked.parse().unwrap()), "{blocked}");
        }
        for open in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "1.1.1.1",
        ] {
            assert!(is_public(open.parse().unwrap()), "{open}");
        }
    }

    #[test]
    fn cache_lifetimes_are_clamped() {
        assert_eq!(cache_ttl(None), CACHE_FLOOR);
        assert_eq!(cache_ttl(Some("no-store")), CACHE_FLOOR);
        assert_eq!(
            cache_ttl(Some("public, max-age=3600")),
            Duration::from_secs(3600)
        );
        assert_eq!(cache_ttl(Some("max-age=999999999")), CACHE_CEILING);
    }

    #[test]
    fn the_document_must_name_its_own_url() {
        let url = "https://app.example/client.json";
        let good = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["http://127.0.0.1/cb"]}"#;
        let client = parse(url, good).unwrap();
        assert_eq!(
            (client.name.as_str(), client.redirect_uris.len()),
            ("App", 1)
        );
        let other = br#"{"client_id":"https://evil.example/client.json","redirect_uris":["http://127.0.0.1/cb"]}"#;
        assert!(
            parse(url, other)
                .unwrap_err()
                .to_string()
                .contains("differs from the URL")
        );
        let secret = br#"{"client_id":"https://app.example/client.json","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#;
        assert!(parse(url, secret).is_err());
    }
}
