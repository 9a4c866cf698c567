//! HTTP to one Salesforce org: building REST URLs (percent-encoded path
//! segments), sending with the bearer token, reading `Sforce-Limit-Info`,
//! and turning Salesforce's error bodies into [`SfError`].
//!
//! Must not: log or format the access token (reqwest marks the bearer
//! header sensitive; errors are built without it), follow redirects to
//! other hosts on its own account, or interpret tool arguments.
//!
//! Source: REST API Developer Guide, "Status Codes and Error Responses"
//! and "Limits Info Header" (`Sforce-Limit-Info: api-usage=18/15000`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tracing::Instrument as _;
use url::Url;

use super::{Session, SfError};

/// The most response body read (bytes); a larger body is a transport
/// error rather than an unbounded allocation.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How long an unused connection to an instance stays open for reuse.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The interval of TCP keep-alive probes on connections to an instance,
/// so that a connection a middlebox dropped is noticed while pooled.
pub(crate) const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// The HTTP client settings for Salesforce instances: each request waits
/// at most `timeout`; no redirects followed; connections kept open and
/// reused ([`POOL_IDLE_TIMEOUT`], no cap on idle connections per host,
/// [`TCP_KEEPALIVE`]); `TCP_NODELAY` on (a request is written in small
/// pieces, which Nagle's algorithm would hold back for the peer's ACK);
/// HTTP/2 when the instance offers it over TLS (ALPN `h2`, which
/// Salesforce's instances do), else HTTP/1.1 with keep-alive. Several
/// calls to one instance then share one connection instead of paying a
/// TCP and TLS handshake each. Plain `http://` instances (simulators)
/// speak HTTP/1.1.
pub(crate) fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(usize::MAX)
        .tcp_keepalive(TCP_KEEPALIVE)
        .tcp_nodelay(true)
}

/// A successful Salesforce answer, its body decoded as `B` (a JSON
/// [`Value`] unless the caller decodes it another way, see
/// [`Rest::get_query`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply<B = Value> {
    /// HTTP status (2xx).
    pub status: u16,
    /// The body; as a [`Value`], `Value::Null` for 204 or an empty body.
    pub body: B,
    /// `api-usage=<used>/<max>` from `Sforce-Limit-Info`, when sent.
    pub usage: Option<String>,
}

/// A REST client bound to one session: `instance_url` and API version
/// checked once, the token kept private.
pub(crate) struct Rest<'a> {
    http: &'a reqwest::Client,
    base: String,
    version: String,
    token: &'a str,
    timeout: Duration,
    usage: Option<&'a super::ApiUsage>,
}

impl std::fmt::Debug for Rest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("base", &self.base)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<'a> Rest<'a> {
    /// Checks `session.instance_url` (`http(s)://host[:port]`, no path
    /// beyond `/`) and `session.api_version` (`NN.N`); each request waits
    /// at most `timeout` for its whole answer. Errors:
    /// [`SfError::InvalidArgument`] naming `instance_url` or `api_version`.
    pub(crate) fn new(
        http: &'a reqwest::Client,
        session: &Session<'a>,
        timeout: Duration,
    ) -> Result<Self, SfError> {
        let base = instance_base(session.instance_url)?;
        let version = session.api_version.trim_start_matches('v');
        if !is_api_version(version) {
            return Err(SfError::invalid(
                "api_version",
                format!("'{version}' is not a Salesforce API version like 66.0"),
            ));
        }
        Ok(Self {
            http,
            base,
            version: version.to_owned(),
            token: session.access_token,
            timeout,
            usage: session.api_usage,
        })
    }

    /// The instance URL without a trailing slash, e.g.
    /// `https://acme.my.salesforce.com`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The REST root path, e.g. `/services/data/v66.0`.
    pub(crate) fn data_path(&self) -> String {
        format!("/services/data/v{}", self.version)
    }

    /// `{instance}/services/data/vNN.N/{segments...}`, each segment
    /// percent-encoded (`/`, space, `%` and non-ASCII included). Errors:
    /// [`SfError::InvalidArgument`] naming `field` for an empty, `.` or `..`
    /// segment (URLs cannot carry those as data).
    pub(crate) fn data_url(&self, segments: &[(&str, &str)]) -> Result<Url, SfError> {
        let mut path = self.data_path();
        for (field, segment) in segments {
            if segment.is_empty() || segment.chars().all(|c| c == '.') {
                return Err(SfError::invalid(
                    field,
                    format!("'{segment}' cannot be used in a Salesforce URL"),
                ));
            }
            path.push('/');
            path.push_str(&encode_segment(segment));
        }
        self.url_for_path(&path)
    }

    /// `{instance}{path}` for a path that starts with `/` (already
    /// encoded, e.g. a `nextRecordsUrl`), checked to stay on the instance.
    pub(crate) fn url_for_path(&self, path: &str) -> Result<Url, SfError> {
        if !path.starts_with('/') {
            return Err(SfError::invalid("cursor", "the path must start with /"));
        }
        let url = parse_url(&format!("{}{path}", self.base))?;
        let base = parse_url(&self.base)?;
        if url.origin() != base.origin() {
            return Err(SfError::invalid("cursor", "the path leaves the instance"));
        }
        Ok(url)
    }

    /// Sends `method url` with the bearer token, `Accept: application/json`
    /// and `body` as JSON, within the session's timeout. Errors: as
    /// [`interpret`]; [`SfError::Timeout`] without an answer in time,
    /// [`SfError::Interrupted`] when the connection broke after sending.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, SfError> {
        self.send_with(method, url, body, None, json_value).await
    }

    /// `GET url` of a query resource with `Sforce-Query-Options:
    /// batchSize=<batch>` (REST API Developer Guide, "Query Options
    /// Header"; Salesforce takes 200 to 2,000 and may send fewer). The
    /// body is decoded by `decode` (`None`: not the JSON it should be,
    /// which is a [`SfError::Transport`] error like any body that is not
    /// JSON), so that a query page is read once, as records to shape,
    /// rather than as a [`Value`] first.
    pub(crate) async fn get_query<B>(
        &self,
        url: Url,
        batch: usize,
        decode: fn(bytes::Bytes) -> Option<B>,
    ) -> Result<Reply<B>, SfError> {
        let value = format!("batchSize={batch}");
        self.send_with(
            Method::GET,
            url,
            None,
            Some(("sforce-query-options", &value)),
            decode,
        )
        .await
    }

    async fn send_with<B>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        header: Option<(&str, &str)>,
        decode: fn(bytes::Bytes) -> Option<B>,
    ) -> Result<Reply<B>, SfError> {
        let path = url.path().to_owned();
        let span = request_span(&method, &url);
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(self.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in crate::telemetry::trace_headers(&span) {
            request = request.header(name, value);
        }
        let started = std::time::Instant::now();
        let sent = request.send().instrument(span.clone()).await;
        let status = sent.as_ref().map_or(0, |r| r.status().as_u16());
        let result = read(sent, self.timeout, decode)
            .instrument(span.clone())
            .await;
        crate::metrics::salesforce_request(status, started.elapsed());
        record_reply(&span, &result);
        if let Some(keep) = self.usage {
            let reported = match &result {
                Ok(reply) => reply.usage.as_deref(),
                Err(SfError::RequestLimit { usage }) => usage.as_deref(),
                Err(_) => None,
            };
            if let Some(reported) = reported {
                keep.record(reported);
            }
        }
        match &result {
            Ok(reply) => {
                tracing::debug!(%method, %path, status = reply.status, usage = ?reply.usage, "salesforce call")
            }
            Err(e) => tracing::debug!(%method, %path, error = %e, "salesforce call failed"),
        }
        result
    }

    /// `GET url`.
    pub(crate) async fn get(&self, url: Url) -> Result<Reply, SfError> {
        self.send(Method::GET, url, None).await
    }
}

/// The client span of one Salesforce REST request (OpenTelemetry semantic
/// conventions, "HTTP client spans"): name `{method} {url.template}`, kind
/// CLIENT, `http.request.method`, `url.template` ([`url_template`]: no
/// record ids, external ids or query strings), `server.address`,
/// `server.port`; `http.response.status_code` and `error.type` once
/// answered ([`record_reply`]). Never the full URL, a header or a body.
fn request_span(method: &Method, url: &Url) -> tracing::Span {
    let span = tracing::info_span!(
        target: crate::telemetry::TRACES,
        "salesforce request",
        otel.name = tracing::field::Empty,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.template = tracing::field::Empty,
        server.address = url.host_str(),
        server.port = url.port_or_known_default(),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if !span.is_disabled() {
        let template = url_template(url.path());
        span.record("otel.name", format!("{method} {template}"));
        span.record("url.template", template);
    }
    span
}

/// Records a Salesforce answer on its span: the status code, and for a
/// failure `error.type`: the status code of an error body,
/// `INVALID_SESSION_ID`, `REQUEST_LIMIT_EXCEEDED`, `timeout`, or
/// `transport` (no answer, or one that is not Salesforce's).
fn record_reply<B>(span: &tracing::Span, result: &Result<Reply<B>, SfError>) {
    if span.is_disabled() {
        return;
    }
    let status = match result {
        Ok(reply) => Some(reply.status),
        Err(SfError::Api { status, .. }) => Some(*status),
        Err(_) => None,
    };
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    let error = match result {
        Ok(_) => return,
        Err(SfError::Api { status, .. }) => status.to_string(),
        Err(SfError::InvalidSession) => "INVALID_SESSION_ID".to_owned(),
        Err(SfError::RequestLimit { .. }) => "REQUEST_LIMIT_EXCEEDED".to_owned(),
        Err(SfError::Timeout(_)) => "timeout".to_owned(),
        Err(_) => "transport".to_owned(),
    };
    span.record("error.type", error.as_str());
    span.record("otel.status_code", "error");
}

/// A REST path with its values replaced by placeholders, for traces
/// (`url.template`): the resource words of the REST API (`sobjects`,
/// `query`, `describe`, ...) and sObject API names stay; a record id, an
/// external id field and value, or a query cursor become `{id}`,
/// `{field}`, `{value}` and `{cursor}`; anything else unknown becomes
/// `{segment}`. The query string is never part of it. Source: REST API
/// Developer Guide, "Reference" (resource URIs).
pub(crate) fn url_template(path: &str) -> String {
    const WORDS: &[&str] = &[
        "services",
        "data",
        "oauth2",
        "userinfo",
        "sobjects",
        "describe",
        "query",
        "queryAll",
        "search",
        "parameterizedSearch",
        "recent",
        "limits",
    ];
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = String::new();
    let mut i = 0;
    while i < segments.len() {
        let segment = segments[i];
        let previous = i.checked_sub(1).map(|p| segments[p]);
        let word = match previous {
            Some("data") if is_version(segment) => segment.to_owned(),
            Some("sobjects") if is_api_name(segment) => segment.to_owned(),
            Some("query" | "queryAll") => "{cursor}".to_owned(),
            _ if WORDS.contains(&segment) => segment.to_owned(),
            // sobjects/{object}/{id}, or /{field}/{value} for an external id.
            _ if i >= 2 && segments[i - 2] == "sobjects" => {
                if i + 1 < segments.len() {
                    i += 1;
                    out.push_str("/{field}");
                    "{value}".to_owned()
                } else {
                    "{id}".to_owned()
                }
            }
            _ => "{segment}".to_owned(),
        };
        out.push('/');
        out.push_str(&word);
        i += 1;
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `vNN.N`.
fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(is_api_version)
}

/// An sObject API name: a letter, then letters, digits and underscores
/// (`Account`, `Invoice__c`, `ns__Thing__c`).
fn is_api_name(segment: &str) -> bool {
    segment
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn read<B>(
    sent: Result<reqwest::Response, reqwest::Error>,
    timeout: Duration,
    decode: fn(bytes::Bytes) -> Option<B>,
) -> Result<Reply<B>, SfError> {
    let transport = |e: reqwest::Error| transport(e, timeout);
    let response = sent.map_err(transport)?;
    let status = response.status();
    let usage = response
        .headers()
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_limit_info);
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(SfError::Transport(format!(
            "the response is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let bytes = response.bytes().await.map_err(transport)?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(SfError::Transport(format!(
            "the response is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    interpret_with(status, bytes, usage, decode)
}

/// A reqwest failure as an [`SfError`]: a timeout as
/// [`SfError::Timeout`]; a failure to connect (nothing was sent) as
/// [`SfError::Transport`]; anything else (reset or closed after sending,
/// a body cut short) as [`SfError::Interrupted`].
fn transport(e: reqwest::Error, timeout: Duration) -> SfError {
    if e.is_timeout() {
        SfError::Timeout(timeout)
    } else if e.is_connect() {
        SfError::Transport(format!(
            "cannot connect to the Salesforce instance ({})",
            e.without_url()
        ))
    } else {
        SfError::Interrupted(e.without_url().to_string())
    }
}

/// A body as a JSON [`Value`]: `Value::Null` when empty (or only
/// whitespace), `None` when it is not JSON.
pub(crate) fn json_value(bytes: bytes::Bytes) -> Option<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Some(Value::Null)
    } else {
        serde_json::from_slice(&bytes).ok()
    }
}

/// Turns a status and body into a [`Reply`] or the matching [`SfError`].
#[cfg(test)]
pub(crate) fn interpret(
    status: StatusCode,
    bytes: &[u8],
    usage: Option<String>,
) -> Result<Reply, SfError> {
    interpret_with(
        status,
        bytes::Bytes::copy_from_slice(bytes),
        usage,
        json_value,
    )
}

/// As [`interpret`], a successful body decoded by `decode`.
fn interpret_with<B>(
    status: StatusCode,
    bytes: bytes::Bytes,
    usage: Option<String>,
    decode: fn(bytes::Bytes) -> Option<B>,
) -> Result<Reply<B>, SfError> {
    let code = status.as_u16();
    if status.is_success() {
        let body = decode(bytes).ok_or_else(|| {
            SfError::Transport(format!(
                "Salesforce answered HTTP {code} with a body that is not JSON"
            ))
        })?;
        return Ok(Reply {
            status: code,
            body,
            usage,
        });
    }
    let parsed = json_value(bytes.clone());
    let bytes = &bytes[..];
    if let Some(errors) = parsed.as_ref().and_then(salesforce_errors) {
        let first = &errors[0];
        return Err(match first.0.as_str() {
            "INVALID_SESSION_ID" => SfError::InvalidSession,
            "REQUEST_LIMIT_EXCEEDED" => SfError::RequestLimit { usage },
            _ => SfError::Api {
                status: code,
                error_code: first.0.clone(),
                message: errors
                    .iter()
                    .map(|e| e.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                fields: errors.iter().flat_map(|e| e.2.clone()).collect(),
            },
        });
    }
    // The userinfo endpoint answers a bad token with 403 "Bad_OAuth_Token".
    if code == 401 || parsed.as_ref().and_then(Value::as_str) == Some("Bad_OAuth_Token") {
        return Err(SfError::InvalidSession);
    }
    if !status.is_server_error() && parsed.as_ref().is_some_and(|v| !v.is_null()) {
        let excerpt: String = String::from_utf8_lossy(bytes).chars().take(300).collect();
        return Err(SfError::Api {
            status: code,
            error_code: format!("HTTP_{code}"),
            message: excerpt,
            fields: Vec::new(),
        });
    }
    Err(SfError::Transport(format!(
        "Salesforce answered HTTP {code} without a Salesforce error body"
    )))
}

/// `(errorCode, message, fields)` of a REST error array
/// (`[{message, errorCode, fields?}]`) or an OAuth error object
/// (`{error, error_description}`).
fn salesforce_errors(body: &Value) -> Option<Vec<(String, String, Vec<String>)>> {
    if let Some(list) = body.as_array() {
        let errors: Vec<_> = list
            .iter()
            .filter_map(|e| {
                let code = e.get("errorCode")?.as_str()?.to_owned();
                let message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let fields = e
                    .get("fields")
                    .and_then(Value::as_array)
                    .map(|f| {
                        f.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                Some((code, message, fields))
            })
            .collect();
        return (!errors.is_empty()).then_some(errors);
    }
    let code = body.get("error")?.as_str()?.to_owned();
    let message = body
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(vec![(code, message, Vec::new())])
}

/// `api-usage=<used>/<max>` out of a `Sforce-Limit-Info` value (which may
/// carry other comma-separated entries such as `per-app-api-usage=...`).
pub(crate) fn parse_limit_info(header: &str) -> Option<String> {
    header
        .split(',')
        .map(str::trim)
        .find(|part| part.starts_with("api-usage="))
        .map(str::to_owned)
}

/// The instance URL without a trailing slash, checked to be
/// `http(s)://host[:port]` with no path, query or credentials.
pub(crate) fn instance_base(instance_url: &str) -> Result<String, SfError> {
    let bad = |why: &str| {
        SfError::invalid(
            "instance_url",
            format!("'{instance_url}' is not a Salesforce instance URL: {why}"),
        )
    };
    let url = Url::parse(instance_url).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad("it must be http(s)://host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a path"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Parses a URL this module built; a failure is a transport error.
pub(crate) fn parse_url(text: &str) -> Result<Url, SfError> {
    Url::parse(text).map_err(|e| SfError::Transport(format!("cannot build the request URL: {e}")))
}

fn is_api_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && a.len() <= 3
            && b.len() == 1
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

/// Percent-encodes one path segment: everything but `A-Z a-z 0-9 - _ . ~`
/// becomes `%XX` of its UTF-8 bytes (RFC 3986 unreserved characters).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_templates_keep_resources_and_drop_values() {
        for (path, template) in [
            (
                "/services/data/v66.0/sobjects/Account/001xx000003DGb2AAG",
                "/services/data/v66.0/sobjects/Account/{id}",
            ),
            (
                "/services/data/v66.0/sobjects/Account/describe",
                "/services/data/v66.0/sobjects/Account/describe",
            ),
            (
                "/services/data/v66.0/sobjects/Invoice__c/ERP_Id__c/ERP%2F1%20x",
                "/services/data/v66.0/sobjects/Invoice__c/{field}/{value}",
            ),
            (
                "/services/data/v66.0/sobjects/Contact",
                "/services/data/v66.0/sobjects/Contact",
            ),
            ("/services/data/v66.0/query", "/services/data/v66.0/query"),
            (
                "/services/data/v66.0/queryAll/01gxx0000002-2000",
                "/services/data/v66.0/queryAll/{cursor}",
            ),
            (
                "/services/data/v66.0/sobjects/a%20b/x",
                "/services/data/v66.0/sobjects/{segment}/{id}",
            ),
            ("/services/oauth2/userinfo", "/services/oauth2/userinfo"),
            ("/services/data/v66.0/limits", "/services/data/v66.0/limits"),
            ("/", "/"),
        ] {
            assert_eq!(url_template(path), template, "{path}");
        }
    }
    use crate::salesforce::DEFAULT_UPSTREAM_TIMEOUT;
    use serde_json::json;

    /// An https instance on loopback (certificate from a throwaway CA)
    /// offering `alpn` and answering every request with a one-record
    /// query page; returns its port, the CA and the HTTP versions of the
    /// connections it accepted, one entry per connection (per request's
    /// version, pushed by the handler).
    async fn https_instance(
        alpn: &[&[u8]],
    ) -> (
        u16,
        reqwest::Certificate,
        std::sync::Arc<std::sync::Mutex<Vec<Vec<reqwest::Version>>>>,
    ) {
        use std::sync::{Arc, Mutex};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Vec<reqwest::Version>>>> = Arc::default();
        let connections = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let index = {
                    let mut seen = connections.lock().unwrap();
                    seen.push(Vec::new());
                    seen.len() - 1
                };
                let versions = connections.clone();
                let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
                    versions.lock().unwrap()[index].push(request.version());
                    async {
                        (
                            [("sforce-limit-info", "api-usage=7/15000")],
                            r#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/0015g00000Q1aACAAZ"},"Name":"Edge"}]}"#,
                        )
                    }
                });
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        let ca = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();
        (port, ca, seen)
    }

    /// Three queries through the gateway's client settings to an https
    /// instance offering `alpn`: the HTTP versions each connection served.
    async fn three_queries(alpn: &[&[u8]]) -> Vec<Vec<reqwest::Version>> {
        let (port, ca, seen) = https_instance(alpn).await;
        let http = client_builder(DEFAULT_UPSTREAM_TIMEOUT)
            .tls_certs_merge([ca])
            .build()
            .unwrap();
        let instance = format!("https://localhost:{port}");
        let session = Session {
            connection_id: "u.s",
            instance_url: &instance,
            access_token: "t",
            api_version: "66.0",
            api_usage: None,
        };
        let rest = Rest::new(&http, &session, DEFAULT_UPSTREAM_TIMEOUT).unwrap();
        for _ in 0..3 {
            let url = rest.data_url(&[("soql", "query")]).unwrap();
            let reply = rest
                .get_query(url, 200, crate::salesforce::paging::decode_page)
                .await
                .unwrap();
            assert_eq!(reply.usage.as_deref(), Some("api-usage=7/15000"));
        }
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn calls_share_one_http2_connection_when_the_instance_offers_h2() {
        let seen = three_queries(&[b"h2", b"http/1.1"]).await;
        assert_eq!(seen, [vec![reqwest::Version::HTTP_2; 3]]);
    }

    #[tokio::test]
    async fn calls_share_one_http1_connection_when_the_instance_offers_only_http1() {
        let seen = three_queries(&[b"http/1.1"]).await;
        assert_eq!(seen, [vec![reqwest::Version::HTTP_11; 3]]);
    }

    fn err(status: u16, body: &str) -> SfError {
        interpret(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            Some("api-usage=15000/15000".into()),
        )
        .unwrap_err()
    }

    #[test]
    fn salesforce_error_bodies_keep_their_code_message_and_fields() {
        let e = err(
            400,
            r#"[{"message":"Required fields are missing: [StageName, CloseDate]","errorCode":"REQUIRED_FIELD_MISSING","fields":["StageName","CloseDate"]}]"#,
        );
        match e {
            SfError::Api {
                status,
                error_code,
                message,
                fields,
            } => {
                assert_eq!(status, 400);
                assert_eq!(error_code, "REQUIRED_FIELD_MISSING");
                assert_eq!(
                    message,
                    "Required fields are missing: [StageName, CloseDate]"
                );
                assert_eq!(fields, ["StageName", "CloseDate"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn session_limit_and_transport_errors_are_told_apart() {
        assert!(matches!(
            err(
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            ),
            SfError::InvalidSession
        ));
        assert!(matches!(err(401, ""), SfError::InvalidSession));
        assert!(matches!(
            err(403, r#""Bad_OAuth_Token""#),
            SfError::InvalidSession
        ));
        match err(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        ) {
            SfError::RequestLimit { usage } => {
                assert_eq!(usage.as_deref(), Some("api-usage=15000/15000"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            err(502, "<html>Bad gateway</html>"),
            SfError::Transport(_)
        ));
        assert!(matches!(err(500, ""), SfError::Transport(_)));
        match err(
            503,
            r#"[{"message":"try again","errorCode":"SERVER_UNAVAILABLE"}]"#,
        ) {
            SfError::Api {
                status, error_code, ..
            } => {
                assert_eq!((status, error_code.as_str()), (503, "SERVER_UNAVAILABLE"))
            }
            other => panic!("{other:?}"),
        }
        match err(300, r#"["/services/data/v66.0/sobjects/Invoice__c/a01"]"#) {
            SfError::Api { error_code, .. } => assert_eq!(error_code, "HTTP_300"),
            other => panic!("{other:?}"),
        }
        match err(
            400,
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
        ) {
            SfError::Api {
                error_code,
                message,
                ..
            } => {
                assert_eq!(
                    (error_code.as_str(), message.as_str()),
                    ("invalid_grant", "expired")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn success_bodies_parse_and_204_is_null() {
        let r = interpret(StatusCode::NO_CONTENT, b"", None).unwrap();
        assert_eq!((r.status, r.body), (204, Value::Null));
        let r = interpret(StatusCode::OK, br#"{"a":1}"#, None).unwrap();
        assert_eq!(r.body, json!({"a": 1}));
        assert!(matches!(
            interpret(StatusCode::OK, b"<html>", None),
            Err(SfError::Transport(_))
        ));
    }

    #[test]
    fn limit_info_header_yields_api_usage() {
        assert_eq!(
            parse_limit_info("api-usage=18/15000").as_deref(),
            Some("api-usage=18/15000")
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=2/250(appName=x), api-usage=19/15000").as_deref(),
            Some("api-usage=19/15000")
        );
        assert_eq!(parse_limit_info("nothing"), None);
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("ERP/42 Å"), "ERP%2F42%20%C3%85");
        assert_eq!(encode_segment("a%b?c#d"), "a%25b%3Fc%23d");
        assert_eq!(encode_segment("Invoice__c"), "Invoice__c");
    }

    #[test]
    fn rest_urls_stay_on_the_instance_and_reject_dot_segments() {
        let http = reqwest::Client::new();
        let session = Session {
            connection_id: "u.s",
            instance_url: "https://acme.my.salesforce.com/",
            access_token: "t",
            api_version: "66.0",
            api_usage: None,
        };
        let rest = Rest::new(&http, &session, DEFAULT_UPSTREAM_TIMEOUT).unwrap();
        let url = rest
            .data_url(&[("object_name", "Invoice__c"), ("external_id", "ERP/1 x")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://acme.my.salesforce.com/services/data/v66.0/Invoice__c/ERP%2F1%20x"
        );
        assert!(matches!(
            rest.data_url(&[("external_id", "..")]),
            Err(SfError::InvalidArgument { field, .. }) if field == "external_id"
        ));
        assert!(rest.url_for_path("@evil.example/x").is_err());
        for bad in ["ftp://x", "https://x/path", "https://u:p@x", "not a url"] {
            let s = Session {
                instance_url: bad,
                ..session
            };
            assert!(
                Rest::new(&http, &s, DEFAULT_UPSTREAM_TIMEOUT).is_err(),
                "{bad}"
            );
        }
        let s = Session {
            api_version: "66",
            ..session
        };
        assert!(Rest::new(&http, &s, DEFAULT_UPSTREAM_TIMEOUT).is_err());
        let s = Session {
            api_version: "v66.0",
            ..session
        };
        assert_eq!(
            Rest::new(&http, &s, DEFAULT_UPSTREAM_TIMEOUT)
                .unwrap()
                .data_path(),
            "/services/data/v66.0"
        );
    }
}
