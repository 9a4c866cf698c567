//! The login host: the OAuth 2.0 web-server flow with PKCE, the token,
//! revoke and userinfo endpoints, and the identity URL.
//!
//! Shapes follow the Salesforce Help pages "OAuth 2.0 Web Server Flow for
//! Web App Integration", "OAuth Endpoints" and "Identity URLs", and the
//! reference files in `../shared/salesforce/` (no `expires_in`; `issued_at`
//! in milliseconds as a string; `id` on the login host; no `refresh_token`
//! on refresh unless rotation is on).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::OAuthError;
use crate::seed;
use crate::state::{AccessGrant, AuthCode, CODE_TTL_SECS, RefreshGrant, Sim};

type Params = HashMap<String, String>;

/// `len` random characters from `[A-Za-z0-9]`.
pub fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Error</title></head><body><h1>OAuth error</h1>\
         <p>error={}</p><p>error_description={}</p></body></html>",
        html_escape(error),
        html_escape(description)
    );
    (status, Html(body)).into_response()
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in params {
                    query.append_pair(k, v);
                }
            }
            // Salesforce answers the authorize endpoint with 302 Found.
            (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ),
    }
}

/// The validated part of an authorize request.
struct AuthorizeRequest {
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
    code_challenge: Option<String>,
}

/// Checks an authorize request. `Err` is the response to send.
fn check_authorize(sim: &Sim, p: &Params) -> Result<AuthorizeRequest, Box<Response>> {
    let app = &sim.config.connected_app;
    match p.get("client_id") {
        Some(id) if *id == app.consumer_key => {}
        _ => {
            return Err(Box::new(error_page(
                StatusCode::BAD_REQUEST,
                "invalid_client_id",
                "client identifier invalid",
            )));
        }
    }
    let redirect_uri = match p.get("redirect_uri") {
        Some(uri) if *uri == app.callback_url => uri.clone(),
        _ => {
            return Err(Box::new(error_page(
                StatusCode::BAD_REQUEST,
                "redirect_uri_mismatch",
                "redirect_uri must match configuration",
            )));
        }
    };
    let state = p.get("state").cloned();
    let with_state = |error: &'static str, description: &'static str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = &state {
            params.push(("state", s.as_str()));
        }
        redirect_with(&redirect_uri, &params)
    };
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(Box::new(with_state(
            "unsupported_response_type",
            "response type not supported",
        )));
    }
    let code_challenge = p.get("code_challenge").cloned();
    if code_challenge.is_some()
        && p.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return Err(Box::new(with_state(
            "invalid_request",
            "code challenge method not supported",
        )));
    }
    let scopes: Vec<String> = p
        .get("scope")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_else(|| vec!["api".into()]);
    if scopes.iter().any(|s| !app.scopes.contains(s)) {
        return Err(Box::new(with_state(
            "invalid_scope",
            "the requested scope is not allowed",
        )));
    }
    Ok(AuthorizeRequest {
        redirect_uri,
        state,
        scopes,
        code_challenge,
    })
}

fn issue_code(sim: &Sim, req: &AuthorizeRequest, user: usize) -> Response {
    let code = format!("aPrx{}", random_string(60));
    let now = Utc::now();
    let mut state = sim.lock();
    // Codes nobody exchanged must not pile up.
    state.codes.retain(|_, c| c.expires_at > now);
    state.codes.insert(
        code.clone(),
        AuthCode {
            user,
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            scopes: req.scopes.clone(),
            expires_at: now + Duration::seconds(CODE_TTL_SECS),
        },
    );
    drop(state);
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s.as_str()));
    }
    redirect_with(&req.redirect_uri, &params)
}

/// `GET /services/oauth2/authorize`: the login and consent page, or (with
/// auto-consent and a `login_hint` naming a user) a redirect with a code.
pub async fn authorize_page(State(sim): State<Arc<Sim>>, Query(p): Query<Params>) -> Response {
    sim.lock().count("authorize");
    let req = match check_authorize(&sim, &p) {
        Ok(req) => req,
        Err(response) => return *response,
    };
    let hinted = p.get("login_hint").and_then(|h| sim.config.user_index(h));
    if sim.config.auto_consent
        && let Some(user) = hinted
    {
        return issue_code(&sim, &req, user);
    }
    let hidden: String = p
        .iter()
        .filter(|(k, _)| k.as_str() != "username" && k.as_str() != "action")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    let users: String = sim
        .config
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let checked = if Some(i) == hinted || (hinted.is_none() && i == 0) {
                " checked"
            } else {
                ""
            };
            format!(
                "<label><input type=\"radio\" name=\"username\" value=\"{}\"{checked}> {} ({})</label><br>",
                html_escape(&u.username),
                html_escape(&u.display_name),
                html_escape(&u.username)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Login | {org}</title></head><body>\
         <h1>Log in to {org} (sfsim)</h1>\
         <form method=\"post\" action=\"/services/oauth2/authorize\">{hidden}\
         <p>Choose a user:</p>{users}\
         <p>Allow access to your data by the connected app? Scopes: {scopes}</p>\
         <button type=\"submit\" name=\"action\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
         </form></body></html>",
        org = html_escape(&sim.config.org_name),
        scopes = html_escape(&req.scopes.join(" ")),
    ))
    .into_response()
}

/// The parameters of an `application/x-www-form-urlencoded` body. Any
/// other body (JSON, say) yields parameters no endpoint knows, so the
/// endpoint answers with its own error rather than a 415.
fn form(body: &Bytes) -> Params {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /services/oauth2/authorize`: the login form's submission.
pub async fn authorize_submit(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let p = form(&body);
    sim.lock().count("authorize_submit");
    let req = match check_authorize(&sim, &p) {
        Ok(req) => req,
        Err(response) => return *response,
    };
    if p.get("action").map(String::as_str) != Some("allow") {
        let mut params = vec![
            ("error", "access_denied"),
            ("error_description", "end-user denied authorization"),
        ];
        if let Some(s) = &req.state {
            params.push(("state", s.as_str()));
        }
        return redirect_with(&req.redirect_uri, &params);
    }
    match p.get("username").and_then(|u| sim.config.user_index(u)) {
        Some(user) => issue_code(&sim, &req, user),
        None => error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown username",
        ),
    }
}

fn token_body(
    sim: &Sim,
    user: usize,
    scopes: &[String],
    access_token: &str,
    refresh_token: Option<&str>,
    instance_url: &str,
) -> serde_json::Value {
    let id = sim.identity_url(user);
    let issued_at = Utc::now().timestamp_millis().to_string();
    let signature = STANDARD.encode(Sha256::digest(
        format!(
            "{id}{issued_at}{}",
            sim.config.connected_app.consumer_secret
        )
        .as_bytes(),
    ));
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), json!(access_token));
    if let Some(rt) = refresh_token {
        body.insert("refresh_token".into(), json!(rt));
    }
    body.insert("signature".into(), json!(signature));
    body.insert("scope".into(), json!(scopes.join(" ")));
    body.insert("instance_url".into(), json!(instance_url));
    body.insert("id".into(), json!(id));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("issued_at".into(), json!(issued_at));
    serde_json::Value::Object(body)
}

fn new_access_token(sim: &Sim) -> String {
    format!("{}!AQ0AQ{}", &sim.org_id[..15], random_string(72))
}

fn new_refresh_token() -> String {
    format!("5Aep861{}==", random_string(80))
}

/// `POST /services/oauth2/token`: `authorization_code` and `refresh_token`
/// grants, client authenticated by `client_id` and `client_secret` in the
/// body.
pub async fn token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let p = form(&body);
    let grant = p.get("grant_type").cloned().unwrap_or_default();
    // Only known grant types get their own counter: the key set must not
    // grow with what clients send.
    sim.lock().count(match grant.as_str() {
        "authorization_code" => "token:authorization_code",
        "refresh_token" => "token:refresh_token",
        _ => "token:other",
    });
    let app = &sim.config.connected_app;
    if grant != "authorization_code" && grant != "refresh_token" {
        return OAuthError::new("unsupported_grant_type", "grant type not supported")
            .into_response();
    }
    match p.get("client_id") {
        Some(id) if *id == app.consumer_key => {}
        Some(_) => {
            return OAuthError::new("invalid_client_id", "client identifier invalid")
                .into_response();
        }
        None => {
            return OAuthError::new("invalid_request", "missing client_id parameter")
                .into_response();
        }
    }
    if p.get("client_secret") != Some(&app.consumer_secret) {
        return OAuthError::new("invalid_client", "invalid client credentials").into_response();
    }
    if grant == "authorization_code" {
        authorization_code_grant(&sim, &p).unwrap_or_else(IntoResponse::into_response)
    } else {
        refresh_grant(&sim, &p)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    }
}

fn authorization_code_grant(sim: &Sim, p: &Params) -> Result<Response, OAuthError> {
    let code = p
        .get("code")
        .ok_or(OAuthError::new("invalid_request", "missing code parameter"))?;
    let redirect_uri = p.get("redirect_uri").ok_or(OAuthError::new(
        "invalid_request",
        "missing redirect_uri parameter",
    ))?;
    let mut state = sim.lock();
    // A code is single-use: it is gone whether the exchange succeeds or not.
    let grant = state.codes.remove(code).ok_or(OAuthError::new(
        "invalid_grant",
        "invalid authorization code",
    ))?;
    if grant.expires_at < Utc::now() {
        return Err(OAuthError::new(
            "invalid_grant",
            "expired authorization code",
        ));
    }
    if *redirect_uri != grant.redirect_uri {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri must match configuration",
        ));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = p
            .get("code_verifier")
            .ok_or(OAuthError::new("invalid_grant", "invalid code verifier"))?;
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if !(43..=128).contains(&verifier.len()) || computed != *challenge {
            return Err(OAuthError::new("invalid_grant", "invalid code verifier"));
        }
    }
    let access = new_access_token(sim);
    let refresh = grant
        .scopes
        .iter()
        .any(|s| s == "refresh_token" || s == "offline_access")
        .then(new_refresh_token);
    state.access_tokens.insert(
        access.clone(),
        AccessGrant {
            user: grant.user,
            refresh_token: refresh.clone(),
        },
    );
    if let Some(rt) = &refresh {
        state.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                user: grant.user,
                scopes: grant.scopes.clone(),
            },
        );
    }
    let instance_url = current_instance_url(sim, &mut state);
    drop(state);
    Ok(Json(token_body(
        sim,
        grant.user,
        &grant.scopes,
        &access,
        refresh.as_deref(),
        &instance_url,
    ))
    .into_response())
}

fn current_instance_url(sim: &Sim, state: &mut crate::state::State) -> String {
    if state.faults.change_instance_url {
        state.instance_url = sim.alt_instance_url.clone();
    }
    state.instance_url.clone()
}

/// Marks a refresh token as being refreshed; the mark goes when this is
/// dropped, also when the client disconnects and the handler is dropped
/// mid-way.
struct InFlight<'a> {
    sim: &'a Sim,
    token: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.sim.lock().refreshing.remove(&self.token);
    }
}

async fn refresh_grant(sim: &Sim, p: &Params) -> Result<Response, OAuthError> {
    let old = p
        .get("refresh_token")
        .ok_or(OAuthError::new(
            "invalid_request",
            "missing refresh_token parameter",
        ))?
        .clone();
    let expired = || OAuthError::new("invalid_grant", "expired access/refresh token");
    let (in_flight, hold_ms) = {
        let mut state = sim.lock();
        if !state.refresh_tokens.contains_key(&old) {
            return Err(expired());
        }
        if state.refreshing.contains(&old) && state.faults.reject_concurrent_refresh {
            state.count("token:refresh_token:rejected_concurrent");
            return Err(expired());
        }
        state.refreshing.insert(old.clone());
        let in_flight = InFlight {
            sim,
            token: old.clone(),
        };
        (in_flight, state.faults.refresh_hold_ms)
    };
    if hold_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(hold_ms)).await;
    }
    drop(in_flight);
    let mut state = sim.lock();
    let grant = state
        .refresh_tokens
        .get(&old)
        .cloned()
        .ok_or_else(expired)?;
    let access = new_access_token(sim);
    let rotated = state.faults.refresh_token_rotation.then(new_refresh_token);
    let live_refresh = match &rotated {
        Some(new) => {
            // The old refresh token dies; access tokens already issued live
            // on, now tied to the new refresh token.
            state.refresh_tokens.remove(&old);
            for access in state.access_tokens.values_mut() {
                if access.refresh_token.as_deref() == Some(old.as_str()) {
                    access.refresh_token = Some(new.clone());
                }
            }
            state.refresh_tokens.insert(new.clone(), grant.clone());
            new.clone()
        }
        None => old.clone(),
    };
    state.access_tokens.insert(
        access.clone(),
        AccessGrant {
            user: grant.user,
            refresh_token: Some(live_refresh),
        },
    );
    let instance_url = current_instance_url(sim, &mut state);
    drop(state);
    Ok(Json(token_body(
        sim,
        grant.user,
        &grant.scopes,
        &access,
        rotated.as_deref(),
        &instance_url,
    ))
    .into_response())
}

/// `POST /services/oauth2/revoke` (form `token=`): revokes a refresh token
/// (and its access tokens) or one access token.
pub async fn revoke(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let p = form(&body);
    let mut state = sim.lock();
    state.count("revoke");
    let token = p.get("token").cloned().unwrap_or_default();
    if state.refresh_tokens.remove(&token).is_some() {
        state
            .access_tokens
            .retain(|_, a| a.refresh_token.as_deref() != Some(token.as_str()));
        StatusCode::OK.into_response()
    } else if state.access_tokens.remove(&token).is_some() {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_token", "error_description": "invalid token"})),
        )
            .into_response()
    }
}

/// The access token of an `Authorization: Bearer <token>` (or the older
/// `OAuth <token>`) header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// The user behind a bearer access token, if it is live.
pub fn bearer_user(sim: &Sim, headers: &HeaderMap) -> Option<usize> {
    let token = bearer_token(headers)?;
    sim.lock().access_tokens.get(token).map(|a| a.user)
}

fn unauthorized_identity() -> Response {
    (StatusCode::FORBIDDEN, Json(json!("Bad_OAuth_Token"))).into_response()
}

/// `GET /services/oauth2/userinfo`: OpenID Connect claims of the token's user.
pub async fn userinfo(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    sim.lock().count("userinfo");
    let Some(user) = bearer_user(&sim, &headers) else {
        return unauthorized_identity();
    };
    let u = &sim.config.users[user];
    let email = u.email.clone().unwrap_or_else(|| u.username.clone());
    let (given, family) = u
        .display_name
        .split_once(' ')
        .unwrap_or((&u.display_name, ""));
    Json(json!({
        "sub": sim.identity_url(user),
        "user_id": seed::user_id(&sim.config, user),
        "organization_id": sim.org_id,
        "preferred_username": u.username,
        "nickname": u.username.split('@').next().unwrap_or_default(),
        "name": u.display_name,
        "email": email,
        "email_verified": true,
        "given_name": given,
        "family_name": family,
        "zoneinfo": "Europe/Lisbon",
        "locale": "en_US",
        "user_type": "STANDARD",
        "active": true,
        "is_app_installed": true,
    }))
    .into_response()
}

/// `GET /id/{org}/{user}`: the identity URL (see `identity.json`).
pub async fn identity(
    State(sim): State<Arc<Sim>>,
    Path((org, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let unavailable = {
        let mut s = sim.lock();
        s.count("identity");
        s.faults.identity_unavailable
    };
    if unavailable {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "identity service unavailable",
        )
            .into_response();
    }
    let Some(user) = bearer_user(&sim, &headers) else {
        return unauthorized_identity();
    };
    if org != sim.org_id || user_id != seed::user_id(&sim.config, user) {
        return (StatusCode::FORBIDDEN, Json(json!("Bad_Id"))).into_response();
    }
    let u = &sim.config.users[user];
    let email = u.email.clone().unwrap_or_else(|| u.username.clone());
    let (first, last) = u
        .display_name
        .split_once(' ')
        .unwrap_or((&u.display_name, ""));
    let instance = sim.lock().instance_url.clone();
    let data = |path: &str| format!("{instance}/services/data/v{{version}}/{path}");
    Json(json!({
        "id": sim.identity_url(user),
        "asserted_user": true,
        "user_id": user_id,
        "organization_id": org,
        "username": u.username,
        "nick_name": u.username.split('@').next().unwrap_or_default(),
        "display_name": u.display_name,
        "email": email,
        "email_verified": true,
        "first_name": first,
        "last_name": last,
        "timezone": "Europe/Lisbon",
        "active": true,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "last_modified_date": "2026-09-02T10:11:12.000+0000",
        "is_app_installed": true,
        "urls": {
            "rest": data(""),
            "query": data("query/"),
            "sobjects": data("sobjects/"),
            "search": data("search/"),
            "recent": data("recent/"),
            "profile": format!("{instance}/{user_id}"),
        },
    }))
    .into_response()
}
