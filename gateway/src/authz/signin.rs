//! The built-in sign-in, for installs without an identity provider: an
//! admin issues a one-time sign-in link (`UserService.IssueSignInLink`,
//! [`issue_link`]); the user opens it (or types its code on `/signin`) in
//! the browser their AI client sent to toolgate, and gets a browser sign-in
//! session ([`super::session`]).
//!
//! Routes:
//! - `GET /signin?return=<path>`: the sign-in page: a sign-in code form,
//!   and a "Sign in with <provider>" link to `/signin/oidc/start` when
//!   `Settings.sign_in.identity_provider` is set. `return` (a relative
//!   `/oauth/authorize?...` path only, [`valid_return`]) is where the
//!   browser goes after signing in; it is also kept for 15 minutes in the
//!   cookie [`RETURN_COOKIE`] so a link opened later in the same browser
//!   goes on to it.
//! - `POST /signin` (form `code`, `return`): redeems a code.
//! - `GET /signin/link/{code}`: says whose link it is, with a button; it
//!   does not use the link up (link previews and mail scanners fetch
//!   links). `POST /signin/link/{code}`: redeems it.
//!
//! A link is single use, valid for [`LINK_TTL`], kept in the store's
//! ephemeral values under the SHA-256 of its code (kind [`LINK_KIND`]);
//! redeeming it is refused for a disabled user. Codes never appear in logs,
//! errors or the audit log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::Authz;
use super::session;
use crate::audit::Action;
use crate::crypto::{random_token, sha256_hex};
use crate::http::{escape, page, page_html};
use crate::model::{AuditEvent, User, UserStatus, now_ms};
use crate::store::{Ephemeral, Store, StoreError};

/// The ephemeral-value kind of one-time sign-in links.
pub const LINK_KIND: &str = "signin_link";
/// How long a sign-in link stays valid (15 min).
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// The cookie keeping the sign-in page's `return` path for a link opened
/// later in the same browser.
pub const RETURN_COOKIE: &str = "toolgate_signin_return";

/// Why a sign-in link could not be issued or redeemed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No such user.
    #[error("no user has id {0}")]
    UnknownUser(String),
    /// The user is disabled.
    #[error("user {0} is disabled; enable the user first")]
    Disabled(String),
    /// The link or code is unknown, used or expired.
    #[error(
        "this sign-in link or code is not valid: it was already used, has expired (links last 15 minutes), or was mistyped; ask your toolgate administrator for a new one"
    )]
    InvalidLink,
    /// The store failed.
    #[error("toolgate cannot reach its database right now; try again shortly")]
    Store(#[from] StoreError),
    /// No random bytes.
    #[error("cannot make a sign-in link: {0}")]
    Random(String),
}

/// A one-time sign-in link.
#[derive(Debug, Clone)]
pub struct SignInLink {
    /// `<public URL>/signin/link/<code>`: a bearer secret until used.
    pub url: String,
    /// Unix ms after which it no longer works.
    pub expires_at: i64,
}

/// Issues a one-time sign-in link for `user_id`, valid for [`LINK_TTL`].
///
/// Errors: [`SignInError::UnknownUser`], [`SignInError::Disabled`],
/// [`SignInError::Store`].
pub async fn issue_link(
    store: &Store,
    public_url: &str,
    user_id: &str,
) -> Result<(SignInLink, User), SignInError> {
    let user = store
        .get::<User>(user_id)
        .await?
        .ok_or_else(|| SignInError::UnknownUser(user_id.to_owned()))?;
    if user.status != UserStatus::Active {
        return Err(SignInError::Disabled(user.email));
    }
    let code = random_token("").map_err(|e| SignInError::Random(e.to_string()))?;
    let expires_at = now_ms() + i64::try_from(LINK_TTL.as_millis()).unwrap_or(i64::MAX);
    store
        .put_ephemeral(
            LINK_KIND,
            &sha256_hex(code.as_bytes()),
            &Ephemeral {
                owner: user.id.clone(),
                value: user.id.as_bytes().to_vec(),
                expires_at,
            },
        )
        .await?;
    Ok((
        SignInLink {
            url: format!("{}/signin/link/{code}", public_url.trim_end_matches('/')),
            expires_at,
        },
        user,
    ))
}

/// Whether `path` may be gone on to after sign-in: a relative path to the
/// authorization endpoint (`/oauth/authorize` or `/oauth/authorize?...`),
/// nothing that a browser could read as another host.
pub fn valid_return(path: &str) -> bool {
    (path == "/oauth/authorize" || path.starts_with("/oauth/authorize?"))
        && path.len() <= 8 * 1024
        && !path.contains(['\\', '\r', '\n', '#'])
}

/// Where the authorization endpoint sends a browser that is not signed
/// in: straight to the identity provider
/// (`/signin/oidc/start?return=...`) when one is configured, so users of
/// a company provider see no toolgate page before it; else the sign-in
/// page ([`signin_path`]). The sign-in page stays reachable for one-time
/// links either way (an admin's way in when the provider is down).
pub async fn entry_path(store: &Store, return_to: &str) -> String {
    match store.settings().await {
        Ok(settings) if settings.sign_in.identity_provider.is_some() => {
            super::oidc::start_path(Some(return_to))
        }
        Ok(_) => signin_path(return_to),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read settings; sending the browser to the sign-in page");
            signin_path(return_to)
        }
    }
}

/// The sign-in page's address going on to `return_to`.
pub fn signin_path(return_to: &str) -> String {
    format!(
        "/signin?return={}",
        url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    )
}

fn error_page(err: &SignInError) -> Response {
    let status = match err {
        SignInError::Store(e) => {
            tracing::error!(error = %e, "sign-in failed in storage");
            StatusCode::SERVICE_UNAVAILABLE
        }
        SignInError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SignInError::Disabled(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    page(status, "Not signed in", &err.to_string())
}

/// `GET /signin`.
pub(super) async fn signin_page(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let return_to = params.get("return").filter(|r| valid_return(r)).cloned();
    if let (Some(to), Ok(Some(_))) = (&return_to, session::current(&authz.store, &headers).await) {
        return Redirect::to(to).into_response();
    }
    let hidden = return_to.as_deref().map_or_else(String::new, |r| {
        format!(
            "<input type=\"hidden\" name=\"return\" value=\"{}\">",
            escape(r)
        )
    });
    // The identity provider's button (i14-oidc): shown when one is set.
    let provider = match authz.store.settings().await {
        Ok(settings) => settings.sign_in.identity_provider.map(|idp| {
            let start = super::oidc::start_path(return_to.as_deref());
            let host = url::Url::parse(&idp.issuer_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or(idp.issuer_url);
            format!(
                "<p><a href=\"{}\">Sign in with {}</a></p><p>or</p>",
                escape(&start),
                escape(&host)
            )
        }),
        Err(err) => {
            tracing::error!(error = %err, "cannot read settings for the sign-in page");
            None
        }
    };
    let mut response = page_html(
        StatusCode::OK,
        "Sign in to toolgate",
        &format!(
            "{}<p>Open the sign-in link your toolgate administrator gave you in this browser, \
             or enter its code (the last part of the link) here.</p>\
             <form method=\"post\" action=\"/signin\">{hidden}\
             <label>Sign-in code <input name=\"code\" autocomplete=\"one-time-code\" size=\"44\" required></label> \
             <button type=\"submit\">Sign in</button></form>",
            provider.unwrap_or_default()
        ),
    );
    if let Some(r) = &return_to {
        let value = format!(
            "{RETURN_COOKIE}={}; Path=/signin; HttpOnly; SameSite=Lax; Max-Age={}",
            url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>(),
            LINK_TTL.as_secs()
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Whether a sign-in form was posted from another site (login CSRF: a
/// page elsewhere signing this browser in as its author). Browsers send
/// `Origin` on every form POST (Fetch standard, "append a request `Origin`
/// header") and `Sec-Fetch-Site` where supported; a request without
/// either (a script, an old browser) is let through, as it carries no
/// victim's cookies.
fn cross_site(authz: &Authz, headers: &HeaderMap) -> bool {
    let own = url::Url::parse(&authz.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let origin_elsewhere = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| origin != own);
    let fetched_cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site");
    origin_elsewhere || fetched_cross_site
}

/// The answer to a sign-in form posted from another site.
fn cross_site_page() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Not signed in",
        "this sign-in form was sent from another site, so toolgate did not use it; open your sign-in link again in this browser",
    )
}

/// `POST /signin`: form `code` (the link's last part) and `return`.
pub(super) async fn signin_code(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if cross_site(&authz, &headers) {
        return cross_site_page();
    }
    let code = form.get("code").map(|c| c.trim()).unwrap_or_default();
    // A pasted link works as well as its code.
    let code = code.rsplit('/').next().unwrap_or_default();
    redeem(
        &authz,
        &headers,
        code,
        form.get("return").map(String::as_str),
    )
    .await
}

/// `GET /signin/link/{code}`: a confirmation page (does not use the link).
pub(super) async fn link_page(
    State(authz): State<Arc<Authz>>,
    Path(code): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let user = match authz
        .store
        .get_ephemeral(LINK_KIND, &sha256_hex(code.as_bytes()))
        .await
    {
        Ok(Some(link)) => authz.store.get::<User>(&link.owner).await.ok().flatten(),
        Ok(None) => return error_page(&SignInError::InvalidLink),
        Err(err) => return error_page(&SignInError::Store(err)),
    };
    let Some(user) = user else {
        return error_page(&SignInError::InvalidLink);
    };
    let hidden = params
        .get("return")
        .filter(|r| valid_return(r))
        .map_or_else(String::new, |r| {
            format!(
                "<input type=\"hidden\" name=\"return\" value=\"{}\">",
                escape(r)
            )
        });
    page_html(
        StatusCode::OK,
        "Sign in to toolgate",
        &format!(
            "<p>This link signs this browser in to toolgate as <strong>{}</strong>. \
             Continue only if that is you.</p>\
             <form method=\"post\" action=\"/signin/link/{}\">{hidden}\
             <button type=\"submit\">Sign in as {}</button></form>",
            escape(&user.email),
            escape(&code),
            escape(&user.email),
        ),
    )
}

/// `POST /signin/link/{code}`: redeems the link.
pub(super) async fn link_redeem(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if cross_site(&authz, &headers) {
        return cross_site_page();
    }
    redeem(
        &authz,
        &headers,
        &code,
        form.get("return").map(String::as_str),
    )
    .await
}

/// Uses up `code`, starts the session and goes on to `return_to` (or the
/// return path kept in [`RETURN_COOKIE`]), else says to go back to the AI
/// client.
async fn redeem(
    authz: &Authz,
    headers: &HeaderMap,
    code: &str,
    return_to: Option<&str>,
) -> Response {
    let user = match take_link(&authz.store, code).await {
        Ok(user) => user,
        Err(err) => return error_page(&err),
    };
    let cookie = match session::start(&authz.store, &authz.public_url, &user.id).await {
        Ok(cookie) => cookie,
        Err(err) => {
            tracing::error!(error = %err, "cannot start a sign-in session");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not signed in",
                "toolgate cannot reach its database right now; try again shortly",
            );
        }
    };
    let event = AuditEvent::allowed(
        &format!("user:{}", user.email),
        Action::SignIn,
        format!("user/{}", user.id),
    )
    .with_reason(format!(
        "{} signed in with a one-time sign-in link",
        user.email
    ))
    .with_details(json!({ "user_id": user.id, "method": "sign_in_link" }));
    if let Err(err) = authz.store.append_audit(vec![event]).await {
        tracing::warn!(error = %err, "cannot audit a sign-in");
    }
    let kept = return_cookie(headers);
    let target = return_to
        .filter(|r| valid_return(r))
        .map(str::to_owned)
        .or(kept.filter(|r| valid_return(r)));
    let mut response = match target {
        Some(to) => Redirect::to(&to).into_response(),
        None => page(
            StatusCode::OK,
            "Signed in",
            &format!(
                "You are signed in to toolgate as {}. Go back to your AI client and sign in there again (or retry): it continues from here.",
                user.email
            ),
        ),
    };
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("toolgate_signin_return=; Path=/signin; Max-Age=0"),
    );
    response
}

/// Takes the link with `code` and returns its active user.
async fn take_link(store: &Store, code: &str) -> Result<User, SignInError> {
    if code.is_empty() || code.len() > 128 {
        return Err(SignInError::InvalidLink);
    }
    let link = store
        .take_ephemeral(LINK_KIND, &sha256_hex(code.as_bytes()))
        .await?
        .ok_or(SignInError::InvalidLink)?;
    let user = store
        .get::<User>(&link.owner)
        .await?
        .ok_or(SignInError::InvalidLink)?;
    if user.status != UserStatus::Active {
        return Err(SignInError::Disabled(user.email));
    }
    Ok(user)
}

/// The return path kept by the sign-in page.
fn return_cookie(headers: &HeaderMap) -> Option<String> {
    session::request_cookie(headers, RETURN_COOKIE).and_then(|value| {
        url::form_urlencoded::parse(format!("r={value}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    })
}

/// The audit event of an issued sign-in link (never its code).
pub fn issued_event(actor: &str, user: &User, expires_at: i64) -> AuditEvent {
    AuditEvent::allowed(actor, Action::SignInLinkIssue, format!("user/{}", user.id))
        .with_reason(format!("issued a one-time sign-in link to {}", user.email))
        .with_details(json!({ "user_id": user.id, "email": user.email, "expires_at": expires_at }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_authorize_paths_are_returned_to() {
        assert!(valid_return("/oauth/authorize?client_id=x&state=y"));
        assert!(valid_return("/oauth/authorize"));
        for bad in [
            "https://evil.example/oauth/authorize?",
            "//evil.example/oauth/authorize?",
            "/oauth/authorizex",
            "/oauth/token?",
            "/oauth/authorize?\r\nSet-Cookie: x",
            "/\\evil.example",
        ] {
            assert!(!valid_return(bad), "{bad}");
        }
    }
}
