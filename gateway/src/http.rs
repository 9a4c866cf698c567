//! The public HTTP listener's router: `/mcp` (see [`crate::mcp`]), the
//! Salesforce connect link `/connect/{id}` and OAuth callback
//! `/auth/callback` (see [`crate::oauth`]), the authorization server of
//! `/mcp` and the browser sign-in (see [`crate::authz`]), `/healthz` and
//! `/readyz`.
//! Pages shown to browsers are plain HTML with every dynamic value escaped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::mcp::{self, McpState};
use crate::model::{Server, User};
use crate::oauth::ConnectError;
use crate::store::Store;

/// Builds the router. `/healthz` answers 200 while the process runs;
/// `/readyz` answers 200 when the database answers reads, else 503.
pub fn router(
    state: Arc<McpState>,
    authz: Arc<crate::authz::Authz>,
    public_url: &str,
    shutdown: CancellationToken,
    sessions: mcp::sessions::SessionLimits,
) -> Router {
    let pages = Router::new()
        .route("/connect/{id}", get(connect_page).post(connect))
        .route("/auth/callback", get(callback))
        .with_state(state.clone());
    let health = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state.store.clone());
    mcp::router(state, public_url, shutdown, sessions)
        .merge(pages)
        .merge(crate::authz::router(authz))
        .merge(health)
}

async fn readyz(State(store): State<Arc<Store>>) -> (StatusCode, &'static str) {
    if store.is_healthy().await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
}

/// `text` with HTML's special characters escaped, for page bodies and
/// attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page with headers that keep it out of caches, frames and referrers
/// and allow no scripts.
pub(crate) fn page_html(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t} | toolgate</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;line-height:1.5}}</style>\
         </head><body><h1>{t}</h1>{body_html}</body></html>",
        t = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// [`page_html`] with one escaped paragraph.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_html(status, title, &format!("<p>{}</p>", escape(body)))
}

fn error_page(err: &ConnectError) -> Response {
    let status = match err {
        ConnectError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ConnectError::Exchange(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::BAD_REQUEST,
    };
    if let ConnectError::Store(e) = err {
        tracing::error!(error = %e, "connect flow failed in storage");
    }
    page(status, "Salesforce was not connected", &err.to_string())
}

/// `GET /connect/{id}`: says which toolgate user and server the link
/// connects, with a button; it does not use the link up (link previews and
/// scanners fetch links), and a user can see that a link sent to them by
/// someone else would connect *that* person's toolgate account.
async fn connect_page(State(state): State<Arc<McpState>>, Path(id): Path<String>) -> Response {
    let (user_id, server_id) = match state.oauth.link_target(&id).await {
        Ok(target) => target,
        Err(err) => return error_page(&err),
    };
    let email = state
        .store
        .get::<User>(&user_id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| "an unknown user".to_owned(), |u| u.email);
    let server = state
        .store
        .get::<Server>(&server_id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| "an unknown server".to_owned(), |s| s.name);
    page_html(
        StatusCode::OK,
        "Connect your Salesforce account",
        &format!(
            "<p>This connects the Salesforce account you sign in with next to the toolgate user \
             <strong>{}</strong>, for the server <strong>{}</strong>. Tools called by that toolgate \
             user will then run as you in Salesforce.</p><p>Continue only if that is you.</p>\
             <form method=\"post\" action=\"/connect/{}\"><button type=\"submit\">Continue to Salesforce</button></form>",
            escape(&email),
            escape(&server),
            escape(&id),
        ),
    )
}

/// `POST /connect/{id}`: consumes the link and sends the browser to the
/// Salesforce login host.
async fn connect(State(state): State<Arc<McpState>>, Path(id): Path<String>) -> Response {
    match state.oauth.start(&id).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(err) => error_page(&err),
    }
}

/// `GET /auth/callback`: finishes the web-server flow.
async fn callback(
    State(state): State<Arc<McpState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match state.oauth.callback(&params).await {
        Ok(connection) => page(
            StatusCode::OK,
            "Salesforce account connected",
            &format!(
                "Your Salesforce account (user {} in org {}) is connected to toolgate. You can close this page and return to your AI client.",
                connection.salesforce_user_id, connection.salesforce_org_id
            ),
        ),
        Err(err) => error_page(&err),
    }
}
