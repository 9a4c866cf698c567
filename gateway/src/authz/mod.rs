//! toolgated as the OAuth 2.1 authorization server of its own `/mcp`
//! resource (MCP 2025-11-25 and 2026-07-28, "Authorization").
//!
//! Owns: the metadata documents (RFC 9728 protected resource metadata,
//! RFC 8414 authorization server metadata) in [`metadata`]; the
//! authorization endpoint and the consent page in [`authorize`]; the token
//! and revocation endpoints and the access tokens themselves in [`token`];
//! OAuth clients (Dynamic Client Registration, RFC 7591, and Client ID
//! Metadata Documents) in [`clients`] and [`cimd`]; the browser sign-in
//! session in [`session`]; the built-in one-time sign-in links in
//! [`signin`]; sign-in through the company's OpenID Connect provider in
//! [`oidc`]; revoking a closed client's credentials and closing idle
//! clients in [`lifecycle`].
//!
//! Must not: decide which tools a user may call (that is
//! [`crate::governance`]), or talk to Salesforce. The tokens it issues are
//! for `<public URL>/mcp` only (RFC 8707); toolgate's Salesforce connected
//! app stays behind it and every AI client gets its own consent (MCP
//! "Security Best Practices", confused deputy).
//!
//! Secrets (tokens, codes, verifiers, client secrets) never appear in logs,
//! errors or the audit log; what the store keeps of them is a SHA-256.

pub mod authorize;
pub mod cimd;
pub mod clients;
pub mod lifecycle;
pub mod metadata;
pub mod oidc;
pub mod session;
pub mod signin;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::store::Store;

/// Default lifetime of an access token (1 h).
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Default lifetime of a grant (refresh token family): 30 days, however
/// often it is refreshed.
pub const DEFAULT_GRANT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Settings of the authorization server from the daemon's config.
#[derive(Debug, Clone)]
pub struct AuthzOptions {
    /// Lifetime of access tokens (`--oauth-access-token-ttl-secs`).
    pub access_token_ttl: Duration,
    /// Lifetime of a grant regardless of refreshes.
    pub grant_ttl: Duration,
    /// Extra trusted root certificates (PEM, `--extra-ca-file`) for
    /// outbound TLS: Client ID Metadata Documents and the identity
    /// provider.
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl Default for AuthzOptions {
    fn default() -> Self {
        Self {
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            grant_ttl: DEFAULT_GRANT_TTL,
            extra_roots: Vec::new(),
        }
    }
}

/// The authorization server's shared state.
#[derive(Debug)]
pub struct Authz {
    /// The database.
    pub store: Arc<Store>,
    /// The public URL without a trailing slash: the issuer.
    pub public_url: String,
    /// `<public URL>/mcp`: the one resource (audience) tokens are for.
    pub resource: String,
    /// Config.
    pub options: AuthzOptions,
    /// Fetches Client ID Metadata Documents.
    pub fetcher: cimd::Fetcher,
    /// Signs and checks access tokens.
    pub keys: token::Keys,
    /// Talks to the identity provider (discovery cache, HTTP client).
    pub oidc: oidc::Oidc,
}

impl Authz {
    /// Builds the state for the daemon whose public URL is `public_url`.
    pub fn new(store: Arc<Store>, public_url: &str, options: AuthzOptions) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let resource = format!("{public_url}/mcp");
        let keys = token::Keys::new(&store, &public_url, &resource);
        let fetcher = cimd::Fetcher::new(&options.extra_roots);
        let oidc = oidc::Oidc::new(&options.extra_roots);
        Self {
            store,
            public_url,
            resource,
            options,
            fetcher,
            keys,
            oidc,
        }
    }

    /// The issuer identifier (RFC 8414 section 2): the public URL.
    pub fn issuer(&self) -> &str {
        &self.public_url
    }
}

/// `GET /authorize`: the browser goes on to `/oauth/authorize` with the
/// same query (one authorization endpoint, so sign-in return paths stay
/// `/oauth/authorize?...`).
async fn authorize_at_root(uri: axum::http::Uri) -> axum::response::Redirect {
    let to = match uri.query() {
        Some(query) => format!("/oauth/authorize?{query}"),
        None => "/oauth/authorize".to_owned(),
    };
    axum::response::Redirect::temporary(&to)
}

/// The authorization server's routes (merged into the public router by
/// [`crate::http::router`]).
pub fn router(authz: Arc<Authz>) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route("/oauth/authorize", get(authorize::authorize))
        .route("/oauth/consent", post(authorize::consent))
        // The endpoints MCP 2025-03-26 clients assume at the root when they
        // find no RFC 8414 metadata (its "Fallbacks for Servers without
        // Metadata Discovery"), and DESIGN.md's port table.
        .route("/authorize", get(authorize_at_root))
        .merge(
            // Called by clients' code, also from browsers (the MCP
            // Inspector's web UI): any origin, no cookies (their answers
            // depend only on what the request carries).
            Router::new()
                .route("/oauth/token", post(token::token))
                .route("/oauth/revoke", post(token::revoke))
                .route("/oauth/register", post(clients::register))
                .route("/token", post(token::token))
                .route("/register", post(clients::register))
                .layer(
                    tower_http::cors::CorsLayer::new()
                        .allow_origin(tower_http::cors::Any)
                        .allow_methods([axum::http::Method::POST])
                        .allow_headers([
                            axum::http::header::CONTENT_TYPE,
                            axum::http::header::AUTHORIZATION,
                        ]),
                ),
        )
        .route(
            "/signin",
            get(signin::signin_page).post(signin::signin_code),
        )
        .route(
            "/signin/link/{code}",
            get(signin::link_page).post(signin::link_redeem),
        )
        .route("/signin/oidc/start", get(oidc::start))
        .route("/signin/oidc/callback", get(oidc::callback))
        .with_state(authz)
}
