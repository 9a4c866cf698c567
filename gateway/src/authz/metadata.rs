//! The discovery documents AI clients read before they sign in:
//! - RFC 9728 protected resource metadata for `/mcp`, at
//!   `/.well-known/oauth-protected-resource/mcp` (the path-suffixed form the
//!   MCP specification's clients try first) and at the root form;
//! - RFC 8414 authorization server metadata at
//!   `/.well-known/oauth-authorization-server` and, for clients that look
//!   for OpenID Connect discovery, `/.well-known/openid-configuration`.
//!
//! What they say follows what this server does: the authorization code
//! grant with PKCE S256 only (OAuth 2.1), refresh tokens, public clients
//! (`none`) and DCR clients with a secret, Client ID Metadata Documents
//! (draft-ietf-oauth-client-id-metadata-document), the `iss` parameter in
//! authorization responses (RFC 9207), revocation (RFC 7009), and the
//! registration endpoint only while Dynamic Client Registration is on.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Authz;

/// The scope AI clients get: calling the user's granted tools at `/mcp`.
pub const SCOPE: &str = "mcp";

/// The RFC 9728 metadata URL of `/mcp` for the daemon at `public_url`: the
/// `resource_metadata` of every 401 challenge.
pub fn resource_metadata_url(public_url: &str) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        public_url.trim_end_matches('/')
    )
}

/// `GET /.well-known/oauth-protected-resource[/mcp]` (RFC 9728 section 3).
pub(super) async fn protected_resource(State(authz): State<Arc<Authz>>) -> Response {
    cached(json!({
        "resource": authz.resource,
        "authorization_servers": [authz.issuer()],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [SCOPE],
        "resource_name": "toolgate MCP gateway",
        "resource_documentation": format!("{}/signin", authz.public_url),
    }))
}

/// `GET /.well-known/oauth-authorization-server` and
/// `/.well-known/openid-configuration` (RFC 8414 section 2).
pub(super) async fn authorization_server(State(authz): State<Arc<Authz>>) -> Response {
    let registration = match authz.store.settings().await {
        Ok(settings) => settings.sign_in.registration.dynamic_registration_enabled,
        Err(err) => {
            tracing::error!(error = %err, "cannot read settings for the metadata");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "temporarily_unavailable", "error_description": "toolgate cannot reach its database right now"})),
            )
                .into_response();
        }
    };
    // Not cached: `registration_endpoint` follows an admin's switch.
    let mut response = cached(document(&authz.public_url, registration));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The authorization server metadata of the issuer `issuer`.
pub fn document(issuer: &str, registration_enabled: bool) -> Value {
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": [SCOPE],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{issuer}/signin"),
    });
    if registration_enabled {
        doc["registration_endpoint"] = json!(format!("{issuer}/oauth/register"));
    }
    doc
}

/// A JSON answer clients may cache for 5 minutes.
fn cached(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
        .headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response
}
