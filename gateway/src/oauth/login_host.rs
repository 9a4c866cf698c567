//! Talking to a Salesforce login host's token endpoint: the oauth2 HTTP
//! adapter (reqwest, no redirects, the upstream timeout), and the errors
//! a user reads when a token request fails: the HTTP status and what the
//! login host said, a timeout as a timeout, no connection as such.
//!
//! Must not: put a secret in an error. Bodies are quoted only for non-200
//! answers that are no OAuth error object, with every secret of the
//! request (consumer secret, code, verifier, refresh token; raw or
//! form-encoded) blanked out first; a 200 answer that is no token response
//! is never quoted (it may hold tokens).
//!
//! Source: RFC 6749 section 5.2 (error responses); Salesforce Help, "OAuth
//! 2.0 Web Server Flow for Web App Integration" and "OAuth 2.0 Refresh
//! Token Flow".

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use oauth2::RequestTokenError;
use oauth2::basic::BasicErrorResponse;

use crate::salesforce::seconds;

/// What the login host's HTTP exchange can fail with, before oauth2
/// reads the answer.
#[derive(Debug, thiserror::Error)]
pub enum LoginHostError {
    /// Sending or reading failed (timeout, connect, reset).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A non-200 answer that is not an OAuth 2.0 error object (RFC 6749
    /// 5.2), e.g. a 503 page: its status and a short, secret-free excerpt.
    #[error("HTTP {status}: {excerpt}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Up to 200 characters of the body, tags and secrets removed.
        excerpt: String,
    },
}

/// The OAuth 2.0 HTTP client adapter: oauth2 5 speaks `http` types; this
/// sends them with reqwest 0.13, notes the answer's status in `status`,
/// and turns a non-200 answer that is not an OAuth error object into
/// [`LoginHostError::Status`] (oauth2 alone would report it as "unexpected
/// token response"). `secrets` are blanked out of quoted bodies.
pub(super) async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
    status: &AtomicU16,
    secrets: &[String],
) -> Result<oauth2::HttpResponse, LoginHostError> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let code = response.status();
    status.store(code.as_u16(), Ordering::Relaxed);
    let mut builder = oauth2::http::Response::builder().status(code);
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    if code != reqwest::StatusCode::OK
        && serde_json::from_slice::<BasicErrorResponse>(&body).is_err()
    {
        return Err(LoginHostError::Status {
            status: code.as_u16(),
            excerpt: excerpt(&body, secrets),
        });
    }
    Ok(builder
        .body(body)
        .unwrap_or_else(|_| oauth2::http::Response::new(Vec::new())))
}

/// Up to 200 characters of `body` for an error message: every one of
/// `secrets` (raw or form-encoded) blanked out first, then markup tags
/// dropped and whitespace collapsed; `(empty body)` when nothing is left.
fn excerpt(body: &[u8], secrets: &[String]) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        text = text.replace(secret.as_str(), "[redacted]");
        text = text.replace(&encoded, "[redacted]");
    }
    let mut plain = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if in_tag => {}
            c if c.is_control() => plain.push(' '),
            c => plain.push(c),
        }
    }
    let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = plain.chars().take(200).collect();
    if cut.is_empty() {
        "(empty body)".into()
    } else if plain.chars().count() > 200 {
        format!("{cut}…")
    } else {
        cut
    }
}

/// What went wrong with a token request, for the user: the login host's
/// HTTP status and what it said, or that it did not answer within
/// `timeout`, or could not be reached. Never contains a secret: bodies are
/// quoted only for non-200 answers, with the request's secrets blanked.
pub(super) fn describe_token_error(
    err: &RequestTokenError<LoginHostError, BasicErrorResponse>,
    status: u16,
    timeout: Duration,
) -> String {
    let status = match status {
        0 => String::new(),
        s => format!("HTTP {s} "),
    };
    match err {
        RequestTokenError::ServerResponse(r) => {
            let said = match r.error_description() {
                Some(d) => format!("{} ({d})", r.error().as_ref()),
                None => r.error().as_ref().to_owned(),
            };
            format!("the login host answered {status}{said}")
        }
        RequestTokenError::Request(LoginHostError::Http(e)) if e.is_timeout() => {
            format!(
                "Salesforce's login host did not answer within {}",
                seconds(timeout)
            )
        }
        RequestTokenError::Request(LoginHostError::Http(e)) if e.is_connect() => {
            format!("cannot reach the login host ({e})")
        }
        RequestTokenError::Request(LoginHostError::Http(e)) => {
            format!("the connection to the login host broke before its answer arrived ({e})")
        }
        RequestTokenError::Request(LoginHostError::Status { status, excerpt }) => {
            let reason = reqwest::StatusCode::from_u16(*status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map_or(String::new(), |r| format!(" {r}"));
            format!("the login host answered HTTP {status}{reason}: {excerpt}")
        }
        // A 200 answer that is not a token response; its body may hold
        // tokens, so only the parser's message (a field path) is shown.
        RequestTokenError::Parse(e, _) => {
            format!("the login host answered {status}with an unreadable token response ({e})")
        }
        RequestTokenError::Other(e) => format!("the login host answered {status}{e}"),
    }
}

/// The reqwest client for the login host: no redirects, `timeout` per
/// request.
pub(super) fn token_http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_drop_tags_and_blank_secrets() {
        let secrets = vec!["s3cr+t/x".to_owned(), "code-123".to_owned()];
        let body = b"<html><body><h1>Service\n Unavailable</h1><!-- client_secret=s3cr%2Bt%2Fx&code=code-123 --></body></html>";
        let text = excerpt(body, &secrets);
        assert!(
            !text.contains("s3cr") && !text.contains("code-123"),
            "{text}"
        );
        assert!(text.starts_with("Service Unavailable"), "{text}");
        assert_eq!(excerpt(b"", &secrets), "(empty body)");
        let long = "x".repeat(500);
        assert_eq!(excerpt(long.as_bytes(), &[]).chars().count(), 201);
    }
}
