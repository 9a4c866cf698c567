//! The authorization endpoint (`GET /oauth/authorize`, OAuth 2.1 section
//! 4.1.1) and the consent page (`POST /oauth/consent`).
//!
//! Order of checks: the client (registered, or its metadata document), then
//! its redirect URI. Until both are trusted, errors are shown as a page and
//! never redirected (RFC 6749 section 4.1.2.1). After that, errors go back
//! to the client as `error`, `error_description`, `state` and `iss`
//! (RFC 9207): `response_type` must be `code`; PKCE with S256 is required
//! (RFC 7636; `plain` and a missing challenge are refused); `resource` is
//! required and must be `<public URL>/mcp` (RFC 8707).
//!
//! A browser without a sign-in session goes to `/signin?return=<this
//! request>`, or straight to the identity provider
//! (`/signin/oidc/start?return=...`) when one is configured
//! ([`super::signin::entry_path`]). A signed-in user sees the consent page: the client's name,
//! its redirect URI's host, and what it gets. Consent is asked per client
//! every time, before anything is granted (MCP "Security Best Practices",
//! confused deputy: toolgate's Salesforce connected app is one static
//! upstream client for every AI client). The consent form is bound to the
//! sign-in session by a CSRF token and to the request by a single-use id.
//! On Allow the AI client record is found or created ([`clients::client_for`])
//! and a single-use code valid for [`CODE_TTL`] is sent to the redirect URI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Authz;
use super::clients::{self, ClientError};
use super::session::{self, Session};
use super::signin::entry_path;
use super::token::{CODE_KIND, CodeGrant, granted_scopes};
use crate::audit::Action;
use crate::crypto::{random_token, sha256_hex};
use crate::http::{escape, page, page_html};
use crate::model::{AuditEvent, OAuthClient, User, UserStatus, now_ms};
use crate::store::Ephemeral;

/// How long an authorization code lives (60 s).
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// The ephemeral-value kind of authorization requests awaiting consent.
pub const PENDING_KIND: &str = "oauth_pending";
/// How long the consent page may stay open (10 min).
const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// A checked authorization request, kept while the user decides.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    resource: String,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An error page for a request whose redirect URI is not trusted (yet).
fn refuse_page(status: StatusCode, message: &str) -> Response {
    page(status, "This sign-in request cannot be used", message)
}

/// Sends the browser back to the client with `params` plus `iss`.
fn back_to_client(authz: &Authz, redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return refuse_page(
            StatusCode::BAD_REQUEST,
            "the redirect URI is not a valid URI",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        query.append_pair("iss", authz.issuer());
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

fn error_to_client(
    authz: &Authz,
    redirect_uri: &str,
    state: Option<&str>,
    code: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", code), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    back_to_client(authz, redirect_uri, &params)
}

/// `GET /oauth/authorize`.
pub(super) async fn authorize(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let Some(client_id) = get("client_id") else {
        return refuse_page(
            StatusCode::BAD_REQUEST,
            "client_id is missing from the authorization request.",
        );
    };
    let client = match clients::resolve(&authz, client_id).await {
        Ok(client) => client,
        Err(ClientError::Store(err)) => {
            tracing::error!(error = %err, "authorize cannot reach the store");
            return refuse_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "toolgate cannot reach its database right now; try again shortly.",
            );
        }
        Err(err) => return refuse_page(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let redirect_uri = match get("redirect_uri") {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| clients::redirect_matches(r, uri)) =>
        {
            uri.to_owned()
        }
        Some(uri) => {
            return refuse_page(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the redirect URI {uri:?} is not one the client {:?} registered ({}); toolgate sends codes only to registered redirect URIs.",
                    client.name,
                    client.redirect_uris.join(", ")
                ),
            );
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return refuse_page(
                StatusCode::BAD_REQUEST,
                "redirect_uri is missing and the client registered several.",
            );
        }
    };
    // From here on the redirect URI is trusted: errors go back to it.
    let state = get("state");
    let fail = |code: &str, description: &str| {
        error_to_client(&authz, &redirect_uri, state, code, description)
    };
    match get("response_type") {
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
        None => return fail("invalid_request", "response_type is required (code)"),
    }
    let Some(challenge) = get("code_challenge") else {
        return fail(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        );
    };
    match get("code_challenge_method") {
        Some("S256") => {}
        Some(_) | None => {
            return fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            );
        }
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return fail(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        );
    }
    match get("resource") {
        Some(r) if r.trim_end_matches('/') == authz.resource => {}
        Some(_) => {
            return fail(
                "invalid_target",
                &format!(
                    "resource must be {} (this server issues tokens for its /mcp endpoint only)",
                    authz.resource
                ),
            );
        }
        None => {
            return fail(
                "invalid_request",
                &format!(
                    "resource is required (RFC 8707): send resource={}",
                    authz.resource
                ),
            );
        }
    }
    let session = match session::session(&authz.store, &headers).await {
        Ok(session) => session,
        Err(err) => {
            tracing::error!(error = %err, "authorize cannot read the sign-in session");
            return refuse_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "toolgate cannot reach its database right now; try again shortly.",
            );
        }
    };
    let Some(session) = session else {
        let here = uri
            .path_and_query()
            .map_or("/oauth/authorize", |p| p.as_str());
        return Redirect::to(&entry_path(&authz.store, here).await).into_response();
    };
    let user = match authz.store.get::<User>(&session.user_id).await {
        Ok(Some(user)) if user.status == UserStatus::Active => user,
        Ok(Some(_)) => {
            return fail(
                "access_denied",
                "this toolgate user is disabled; ask your toolgate administrator",
            );
        }
        Ok(None) => {
            let here = uri
                .path_and_query()
                .map_or("/oauth/authorize", |p| p.as_str());
            return Redirect::to(&entry_path(&authz.store, here).await).into_response();
        }
        Err(err) => {
            tracing::error!(error = %err, "authorize cannot read the user");
            return refuse_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "toolgate cannot reach its database right now; try again shortly.",
            );
        }
    };
    // A closed client, or a type the policy refuses, is told so now rather
    // than after the user allowed it.
    match super::clients::refusal_before_consent(&authz, &user, &client).await {
        Ok(Some(refusal)) => return fail("access_denied", &refusal.to_string()),
        Ok(None) => {}
        Err(err) => {
            tracing::error!(error = %err, "authorize cannot read the AI client");
            return refuse_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "toolgate cannot reach its database right now; try again shortly.",
            );
        }
    }
    let pending = Pending {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        resource: authz.resource.clone(),
    };
    let Ok(request_id) = random_token("") else {
        return refuse_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot make a consent request",
        );
    };
    let stored = authz
        .store
        .put_ephemeral(
            PENDING_KIND,
            &sha256_hex(request_id.as_bytes()),
            &Ephemeral {
                owner: user.id.clone(),
                value: serde_json::to_vec(&pending).unwrap_or_default(),
                expires_at: now_ms() + ms(PENDING_TTL),
            },
        )
        .await;
    if let Err(err) = stored {
        tracing::error!(error = %err, "authorize cannot store the consent request");
        return refuse_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "toolgate cannot reach its database right now; try again shortly.",
        );
    }
    consent_page(&client, &redirect_uri, &user, &session, &request_id)
}

/// The consent page.
fn consent_page(
    client: &OAuthClient,
    redirect_uri: &str,
    user: &User,
    session: &Session,
    request_id: &str,
) -> Response {
    let redirect = url::Url::parse(redirect_uri).ok();
    let host = redirect
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| redirect_uri.to_owned());
    let kind = match client.origin {
        crate::model::ClientOrigin::MetadataDocument => format!("identified by {}", client.id),
        _ => "registered with toolgate by the client itself".to_owned(),
    };
    let mut response = page_html(
        StatusCode::OK,
        "Allow this AI client?",
        &format!(
            "<p><strong>{name}</strong> ({kind}) asks to use toolgate as you, <strong>{email}</strong>.</p>\
             <p>If you allow it, it may list and call the Salesforce tools your toolgate administrator granted you, \
             as you, until you or an administrator revoke it. After you choose, your browser goes to \
             <strong>{host}</strong>.</p>\
             <p>Allow only if you started this sign-in from that AI client just now.</p>\
             <form method=\"post\" action=\"/oauth/consent\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            name = escape(&client.name),
            kind = escape(&kind),
            email = escape(&user.email),
            host = escape(&host),
            request = escape(request_id),
            csrf = escape(&session.csrf),
        ),
    );
    // The form posts here and is then redirected to the client, whose
    // scheme (a loopback http, a native app's own) the policy must allow.
    let target = redirect.map_or_else(String::new, |u| match u.scheme() {
        "https" | "http" => format!(" {}", u.origin().ascii_serialization()),
        scheme => format!(" {scheme}:"),
    });
    if let Ok(value) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{target}; frame-ancestors 'none'"
    )) {
        response
            .headers_mut()
            .insert("content-security-policy", value);
    }
    response
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub(super) struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

/// `POST /oauth/consent`.
pub(super) async fn consent(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let unavailable = || {
        refuse_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "toolgate cannot reach its database right now; try again shortly.",
        )
    };
    let session = match session::session(&authz.store, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return refuse_page(
                StatusCode::UNAUTHORIZED,
                "your toolgate sign-in has ended; start the sign-in from your AI client again.",
            );
        }
        Err(_) => return unavailable(),
    };
    if !session::csrf_matches(&session, &form.csrf) {
        return refuse_page(
            StatusCode::FORBIDDEN,
            "this consent form did not come from your toolgate sign-in (CSRF check failed); start the sign-in from your AI client again.",
        );
    }
    let taken = match authz
        .store
        .take_ephemeral(PENDING_KIND, &sha256_hex(form.request.as_bytes()))
        .await
    {
        Ok(taken) => taken,
        Err(_) => return unavailable(),
    };
    let Some(taken) = taken.filter(|t| t.owner == session.user_id) else {
        return refuse_page(
            StatusCode::BAD_REQUEST,
            "this consent request was already answered or has expired (10 minutes); start the sign-in from your AI client again.",
        );
    };
    let Ok(pending) = serde_json::from_slice::<Pending>(&taken.value) else {
        return refuse_page(
            StatusCode::BAD_REQUEST,
            "this consent request is unreadable; start again.",
        );
    };
    let state = pending.state.as_deref();
    let user = match authz.store.get::<User>(&session.user_id).await {
        Ok(user) => user,
        Err(_) => return unavailable(),
    };
    let email = user.as_ref().map_or_else(String::new, |u| u.email.clone());
    let audit = |allowed: bool, reason: String, ai_client_id: Option<&str>| {
        let mut event = AuditEvent::allowed(
            &format!("user:{email}"),
            Action::ClientConsent,
            format!("oauthclient/{}", pending.client_id),
        )
        .with_reason(reason)
        .with_details(json!({
            "client_id": pending.client_id,
            "client_name": pending.client_name,
            "redirect_uri": pending.redirect_uri,
            "ai_client_id": ai_client_id,
            "user_id": session.user_id,
        }));
        if !allowed {
            event.outcome = crate::model::Outcome::Denied;
        }
        event
    };
    if form.decision != "allow" {
        let _ = authz
            .store
            .append_audit(vec![audit(
                false,
                format!("{email} denied the AI client {:?}", pending.client_name),
                None,
            )])
            .await;
        return error_to_client(
            &authz,
            &pending.redirect_uri,
            state,
            "access_denied",
            "the user denied access",
        );
    }
    // The client again (its document may have changed since).
    let client = match clients::resolve(&authz, &pending.client_id).await {
        Ok(client) => client,
        Err(ClientError::Store(_)) => return unavailable(),
        Err(err) => return refuse_page(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| clients::redirect_matches(r, &pending.redirect_uri))
    {
        return refuse_page(
            StatusCode::BAD_REQUEST,
            "the client no longer lists this redirect URI; start again.",
        );
    }
    let ai = match clients::client_for(&authz, &session.user_id, &client).await {
        Ok(Ok(ai)) => ai,
        Ok(Err(refusal)) => {
            let _ = authz
                .store
                .append_audit(vec![audit(
                    false,
                    format!(
                        "the AI client {:?} was refused for {email}: {refusal}",
                        client.name
                    ),
                    None,
                )])
                .await;
            return error_to_client(
                &authz,
                &pending.redirect_uri,
                state,
                "access_denied",
                &refusal.to_string(),
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "consent cannot store the AI client");
            return unavailable();
        }
    };
    let Ok(code) = random_token("") else {
        return refuse_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot make an authorization code",
        );
    };
    let bound = CodeGrant {
        client_id: client.id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        resource: pending.resource.clone(),
        user_id: session.user_id.clone(),
        ai_client_id: ai.id.clone(),
        scopes: granted_scopes(),
    };
    let stored = authz
        .store
        .put_ephemeral(
            CODE_KIND,
            &sha256_hex(code.as_bytes()),
            &Ephemeral {
                owner: session.user_id.clone(),
                value: serde_json::to_vec(&bound).unwrap_or_default(),
                expires_at: now_ms() + ms(CODE_TTL),
            },
        )
        .await;
    if stored.is_err() {
        return unavailable();
    }
    let _ = authz
        .store
        .append_audit(vec![audit(
            true,
            format!("{email} allowed the AI client {:?}", client.name),
            Some(&ai.id),
        )])
        .await;
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = state {
        params.push(("state", state));
    }
    back_to_client(&authz, &pending.redirect_uri, &params)
}
