//! The browser sign-in session: after a user proved who they are (a
//! one-time sign-in link, or the company's identity provider), the browser
//! holds the cookie [`COOKIE`], an opaque random value whose SHA-256 keys an
//! ephemeral store record (kind [`KIND`], [`TTL`]) holding the user id. The
//! authorization endpoint reads it to know who is consenting.
//!
//! The cookie is `HttpOnly`, `SameSite=Lax` (it comes along when an AI
//! client's browser lands on `/oauth/authorize` from elsewhere, never on a
//! cross-site POST), `Path=/`, and `Secure` when the public URL is https.
//! The store never sees the cookie's value unhashed. Forms posted within
//! the session carry [`csrf_token`], a MAC of the cookie value under a key
//! derived from the master key: another site cannot read it.
//!
//! This module must not decide anything about AI clients or tokens.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::model::now_ms;
use crate::store::{Ephemeral, Store, StoreError};

/// The cookie's name.
pub const COOKIE: &str = "toolgate_signin";
/// The ephemeral-value kind of sign-in sessions.
pub const KIND: &str = "signin_session";
/// How long a sign-in session lasts (12 h).
pub const TTL: Duration = Duration::from_secs(12 * 3600);
/// Purpose of the key that MACs CSRF tokens ([`Store::derived_key`]).
const CSRF_KEY_PURPOSE: &str = "signin-session-csrf";

/// Why a sign-in session could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store failed.
    #[error("cannot reach the session store: {0}")]
    Store(#[from] StoreError),
    /// No random bytes.
    #[error("cannot make a session value: {0}")]
    Random(String),
}

/// A live sign-in session of a browser request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user's id.
    pub user_id: String,
    /// The CSRF token forms in this session must echo ([`csrf_token`]).
    pub csrf: String,
}

/// Starts a session for `user_id` and returns the `Set-Cookie` header value
/// to send with the response. `public_url` says whether the cookie is
/// `Secure` (https). The caller has already checked who the user is.
///
/// Errors: [`SessionError::Store`] when the session cannot be stored.
pub async fn start(
    store: &Store,
    public_url: &str,
    user_id: &str,
) -> Result<HeaderValue, SessionError> {
    let value = random_token("").map_err(|e| SessionError::Random(e.to_string()))?;
    let expires_at = now_ms() + i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX);
    store
        .put_ephemeral(
            KIND,
            &sha256_hex(value.as_bytes()),
            &Ephemeral {
                owner: user_id.to_owned(),
                value: user_id.as_bytes().to_vec(),
                expires_at,
            },
        )
        .await?;
    let secure = if public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        TTL.as_secs()
    );
    // The value is base64url: always a valid header value.
    HeaderValue::from_str(&cookie).map_err(|e| SessionError::Random(e.to_string()))
}

/// The user id of the request's live sign-in session, if any.
///
/// Errors: [`SessionError::Store`] when the store cannot be read.
pub async fn current(store: &Store, headers: &HeaderMap) -> Result<Option<String>, SessionError> {
    Ok(session(store, headers).await?.map(|s| s.user_id))
}

/// The request's live sign-in session with its CSRF token, if any.
///
/// Errors: [`SessionError::Store`] when the store cannot be read.
pub async fn session(store: &Store, headers: &HeaderMap) -> Result<Option<Session>, SessionError> {
    let Some(value) = cookie_value(headers) else {
        return Ok(None);
    };
    let Some(record) = store
        .get_ephemeral(KIND, &sha256_hex(value.as_bytes()))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Session {
        user_id: record.owner,
        csrf: csrf_token(store, &value),
    }))
}

/// Whether `presented` is the CSRF token of `session` (constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    constant_time_eq(session.csrf.as_bytes(), presented.as_bytes())
}

/// Ends the request's session (sign out); no error if there is none.
///
/// Errors: [`SessionError::Store`] when the store cannot be written.
pub async fn end(store: &Store, headers: &HeaderMap) -> Result<(), SessionError> {
    if let Some(value) = cookie_value(headers) {
        store
            .delete_ephemeral(KIND, &sha256_hex(value.as_bytes()))
            .await?;
    }
    Ok(())
}

/// The CSRF token of the session whose cookie value is `value`: HMAC-SHA256
/// under a key derived from the master key, hex.
fn csrf_token(store: &Store, value: &str) -> String {
    let key = store.derived_key(CSRF_KEY_PURPOSE);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The value of the [`COOKIE`] cookie among the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    request_cookie(headers, COOKIE).filter(|v| v.len() <= 128)
}

/// The raw value of the cookie `name` among the request's `Cookie` headers
/// (RFC 6265 section 5.4: `name=value` pairs separated by `;`); `None`
/// when absent or empty.
pub(super) fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; toolgate_signin=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("toolgate_signinx=1"),
        );
        assert_eq!(cookie_value(&headers), None);
    }
}
