//! OAuth clients of the authorization server and the AI client records of
//! the users who sign in with them.
//!
//! A `client_id` is either an `https` URL, a Client ID Metadata Document
//! ([`super::cimd`], fetched and cached), or an id Dynamic Client
//! Registration issued (`POST /oauth/register`, RFC 7591, while
//! `RegistrationPolicy.dynamic_registration_enabled`), stored as an
//! [`OAuthClient`]. Redirect URIs are `https`, `http` on a loopback host
//! (RFC 8252 section 7.3, any port at use), or a private-use scheme of a
//! native app (RFC 8252 section 7.1); a presented redirect URI must equal a
//! registered one exactly, except for a loopback one's port.
//!
//! [`check`] is the one rule of who may use a client, applied at consent,
//! at the token endpoint and on every `/mcp` call: the user is active, the
//! AI client is Active or Hidden, and its type is one the registration
//! policy allows.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::Authz;
use crate::audit::Action;
use crate::crypto::{random_token, sha256_hex};
use crate::model::{
    AiClient, AuditEvent, ClientOrigin, ClientState, OAuthClient, RegistrationPolicy, User,
    UserStatus, new_id, now_ms,
};
use crate::store::{Batch, StoreError};

/// Most bytes of a registration request.
const MAX_REGISTRATION_BYTES: usize = 16 * 1024;
/// Most redirect URIs of one client.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Most characters of a redirect URI.
const MAX_URI_CHARS: usize = 2000;
/// Most characters of a client name.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a client is unknown or unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not registered and not a metadata document URL.
    #[error(
        "unknown client_id: register with Dynamic Client Registration first, or use an https URL of a Client ID Metadata Document"
    )]
    Unknown,
    /// The metadata document could not be used.
    #[error("{0}")]
    Document(#[from] super::cimd::CimdError),
    /// The store failed.
    #[error("toolgate cannot reach its database right now; try again shortly")]
    Store(#[from] StoreError),
}

/// Why a user may not use an AI client now; each says what an admin can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCheck {
    /// The user is gone.
    #[error("the toolgate user no longer exists")]
    NoUser,
    /// The user (email) is disabled. The message leaves the email out: it
    /// goes to the AI client (an OAuth error or a 401).
    #[error("this toolgate user is disabled; ask your toolgate administrator")]
    UserDisabled(String),
    /// The AI client record is gone.
    #[error("this AI client's record no longer exists; sign in again")]
    NoClient,
    /// Closed or deleted by an admin.
    #[error("the AI client {name:?} is {state}; ask your toolgate administrator to reopen it")]
    NotUsable {
        /// Its name.
        name: String,
        /// `closed` or `deleted`.
        state: &'static str,
    },
    /// Its type may not sign in.
    #[error(
        "AI clients of type {client_type} may not sign in to this toolgate (allowed: {allowed}); ask your toolgate administrator"
    )]
    TypeNotAllowed {
        /// The client's type.
        client_type: String,
        /// The allowed types.
        allowed: String,
    },
}

fn type_name(t: crate::model::ClientType) -> String {
    format!("{t:?}")
}

/// Whether `user` may use `client` under `policy`; `None`: yes.
pub fn check(
    user: Option<&User>,
    client: Option<&AiClient>,
    policy: &RegistrationPolicy,
) -> Option<ClientCheck> {
    let Some(user) = user else {
        return Some(ClientCheck::NoUser);
    };
    if user.status != UserStatus::Active {
        return Some(ClientCheck::UserDisabled(user.email.clone()));
    }
    let Some(client) = client else {
        return Some(ClientCheck::NoClient);
    };
    client_check(client, policy)
}

/// The AI client part of [`check`].
pub fn client_check(client: &AiClient, policy: &RegistrationPolicy) -> Option<ClientCheck> {
    if !client.state.is_usable() {
        return Some(ClientCheck::NotUsable {
            name: client.name.clone(),
            state: match client.state {
                ClientState::Deleted => "deleted",
                _ => "closed",
            },
        });
    }
    if !policy.allowed_types.contains(&client.client_type) {
        return Some(ClientCheck::TypeNotAllowed {
            client_type: type_name(client.client_type),
            allowed: allowed_list(policy),
        });
    }
    None
}

fn allowed_list(policy: &RegistrationPolicy) -> String {
    if policy.allowed_types.is_empty() {
        return "none".into();
    }
    policy
        .allowed_types
        .iter()
        .map(|t| type_name(*t))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The client with `client_id`: a registered one, or the metadata
/// document at that https URL.
///
/// Errors: [`ClientError`].
pub async fn resolve(authz: &Authz, client_id: &str) -> Result<OAuthClient, ClientError> {
    if client_id.starts_with("https://") {
        let settings = authz.store.settings().await?;
        return Ok(authz
            .fetcher
            .client(
                client_id,
                &settings
                    .sign_in
                    .registration
                    .metadata_document_private_hosts,
            )
            .await?);
    }
    if client_id.is_empty() || client_id.len() > 128 {
        return Err(ClientError::Unknown);
    }
    match authz.store.get::<OAuthClient>(client_id).await? {
        Some(client) if client.origin == ClientOrigin::DynamicRegistration => Ok(client),
        _ => Err(ClientError::Unknown),
    }
}

/// Whether `uri` may be registered as a redirect URI: an absolute URI
/// without a fragment that is `https`, `http` on a loopback host, or a
/// private-use scheme (not one a browser runs, such as `javascript:`).
///
/// Errors: what is wrong, naming the URI.
pub fn valid_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_CHARS {
        return Err(format!(
            "redirect URI longer than {MAX_URI_CHARS} characters"
        ));
    }
    let parsed = url::Url::parse(uri)
        .map_err(|e| format!("redirect URI {uri:?} is not an absolute URI ({e})"))?;
    if parsed.fragment().is_some() {
        return Err(format!(
            "redirect URI {uri:?} has a fragment (RFC 6749 section 3.1.2)"
        ));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?} uses http on a host that is not loopback; use https (or http://127.0.0.1 for a native app)"
        )),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            Err(format!(
                "redirect URI {uri:?} uses a scheme that cannot be a redirect URI"
            ))
        }
        _ => Ok(()),
    }
}

/// Whether `url`'s host is `localhost` or a loopback IP literal.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether the presented `uri` matches the registered `registered`:
/// exactly, or, for an `http` loopback URI, in everything but the port
/// (RFC 8252 section 7.3).
pub fn redirect_matches(registered: &str, uri: &str) -> bool {
    if registered == uri {
        return true;
    }
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(uri)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && is_loopback(&a)
        && a.host() == b.host()
        && a.path() == b.path()
        && a.query() == b.query()
        && a.username() == b.username()
        && a.password().is_none()
        && b.password().is_none()
        && b.fragment().is_none()
}

/// Whether `user` would be refused the AI client of `client` before the
/// consent page is shown: its record closed or deleted, or its type (or,
/// for a first sign-in, the policy's default type) not allowed. Reads
/// only; [`client_for`] decides again when the user consents.
///
/// Errors: [`StoreError`].
pub async fn refusal_before_consent(
    authz: &Authz,
    user: &User,
    client: &OAuthClient,
) -> Result<Option<ClientCheck>, StoreError> {
    let settings = authz.store.settings().await?;
    let policy = &settings.sign_in.registration;
    let existing = authz.store.list::<AiClient>().await?.into_iter().find(|c| {
        c.owner_user_id == user.id
            && c.origin != ClientOrigin::AccessToken
            && c.client_id.as_deref() == Some(client.id.as_str())
    });
    Ok(match existing {
        Some(found) => client_check(&found, policy),
        None if !policy.allowed_types.contains(&policy.default_type) => {
            Some(ClientCheck::TypeNotAllowed {
                client_type: type_name(policy.default_type),
                allowed: allowed_list(policy),
            })
        }
        None => None,
    })
}

/// The AI client of `user_id` with `client` (found, or created with the
/// policy's default type), checked with [`check`]. The OAuth client record
/// is stored (or refreshed) in the same write.
///
/// Errors: `Ok(Err(_))` when the user may not use it; [`StoreError`].
pub async fn client_for(
    authz: &Authz,
    user_id: &str,
    client: &OAuthClient,
) -> Result<Result<AiClient, ClientCheck>, StoreError> {
    let settings = authz.store.settings().await?;
    let policy = &settings.sign_in.registration;
    authz
        .store
        .write(|tx| async move {
            let mut batch = Batch::default();
            let user = tx.get::<User>(user_id).await?;
            let existing = tx.list::<AiClient>().await?.into_iter().find(|c| {
                c.owner_user_id == user_id
                    && c.origin != ClientOrigin::AccessToken
                    && c.client_id.as_deref() == Some(client.id.as_str())
            });
            let now = now_ms();
            let ai = match existing {
                Some(found) => found,
                None => {
                    let created = AiClient {
                        id: new_id(),
                        name: client.name.clone(),
                        origin: client.origin,
                        client_id: Some(client.id.clone()),
                        token_id: None,
                        owner_user_id: user_id.to_owned(),
                        client_type: policy.default_type,
                        state: ClientState::Active,
                        traffic_enabled: true,
                        close_after_idle_days: None,
                        last_used_at: None,
                        created_at: now,
                        updated_at: now,
                        revision: 0,
                    };
                    if check(user.as_ref(), Some(&created), policy).is_none() {
                        batch.put(&created);
                    }
                    created
                }
            };
            if let Some(refusal) = check(user.as_ref(), Some(&ai), policy) {
                return Ok((Batch::default(), Err(refusal)));
            }
            if client.origin == ClientOrigin::MetadataDocument {
                batch.put(client);
            }
            Ok::<_, StoreError>((batch, Ok(ai)))
        })
        .await
}

/// A registration request (RFC 7591 section 2); unknown fields ignored.
#[derive(Debug, Deserialize)]
struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    client_uri: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
}

fn registration_error(code: &'static str, description: impl Into<String>) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": code, "error_description": description.into() })),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /oauth/register` (RFC 7591 section 3): registers a client while
/// Dynamic Client Registration is on; 404 with an explanation when an admin
/// turned it off.
pub(super) async fn register(State(authz): State<Arc<Authz>>, body: Bytes) -> Response {
    let settings = match authz.store.settings().await {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "cannot read settings for a registration");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "temporarily_unavailable", "error_description": "toolgate cannot reach its database right now; try again shortly"})),
            )
                .into_response();
        }
    };
    if !settings.sign_in.registration.dynamic_registration_enabled {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "error": "registration_disabled",
                "error_description": "Dynamic Client Registration is turned off on this toolgate; use a Client ID Metadata Document (an https client_id) or ask your toolgate administrator",
            })),
        )
            .into_response();
    }
    if body.len() > MAX_REGISTRATION_BYTES {
        return registration_error(
            "invalid_client_metadata",
            format!("the registration request is larger than {MAX_REGISTRATION_BYTES} bytes"),
        );
    }
    let request: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return registration_error(
                "invalid_client_metadata",
                format!("the registration request is not the JSON object RFC 7591 describes: {e}"),
            );
        }
    };
    if request.redirect_uris.is_empty() || request.redirect_uris.len() > MAX_REDIRECT_URIS {
        return registration_error(
            "invalid_redirect_uri",
            format!("redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"),
        );
    }
    for uri in &request.redirect_uris {
        if let Err(message) = valid_redirect_uri(uri) {
            return registration_error("invalid_redirect_uri", message);
        }
    }
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return registration_error(
            "invalid_client_metadata",
            format!(
                "grant type {bad:?} is not supported (authorization_code and refresh_token are)"
            ),
        );
    }
    let response_types = request
        .response_types
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return registration_error(
            "invalid_client_metadata",
            "only the response type \"code\" is supported",
        );
    }
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "none".into());
    if !matches!(
        method.as_str(),
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return registration_error(
            "invalid_client_metadata",
            format!(
                "token_endpoint_auth_method {method:?} is not supported (none, client_secret_basic, client_secret_post are)"
            ),
        );
    }
    let name = request
        .client_name
        .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
        .filter(|n| !n.is_empty());
    let client_uri = request
        .client_uri
        .filter(|u| u.len() <= MAX_URI_CHARS && u.starts_with("https://"));
    let secret = if method == "none" {
        None
    } else {
        match random_token("tgs_") {
            Ok(s) => Some(s),
            Err(_) => return registration_error("server_error", "cannot make a client secret"),
        }
    };
    let now = now_ms();
    let client = OAuthClient {
        id: new_id(),
        name: name.clone().unwrap_or_else(|| {
            url::Url::parse(&request.redirect_uris[0])
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "unnamed client".into())
        }),
        origin: ClientOrigin::DynamicRegistration,
        redirect_uris: request.redirect_uris.clone(),
        client_uri: client_uri.clone(),
        token_endpoint_auth_method: method.clone(),
        secret_hash: secret.as_deref().map(|s| sha256_hex(s.as_bytes())),
        created_at: now,
        fetched_at: None,
    };
    let client_ref = &client;
    let written = authz
        .store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(client_ref);
            batch.audit(
                AuditEvent::allowed(
                    "system",
                    Action::ClientRegister,
                    format!("oauthclient/{}", client_ref.id),
                )
                .with_reason(format!(
                    "OAuth client {:?} registered (Dynamic Client Registration)",
                    client_ref.name
                ))
                .with_details(json!({
                    "client_id": client_ref.id,
                    "client_name": client_ref.name,
                    "redirect_uris": client_ref.redirect_uris,
                    "token_endpoint_auth_method": client_ref.token_endpoint_auth_method,
                })),
            );
            Ok::<_, StoreError>((batch, ()))
        })
        .await;
    if let Err(err) = written {
        tracing::error!(error = %err, "cannot store a registration");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": "temporarily_unavailable", "error_description": "toolgate cannot reach its database right now; try again shortly"})),
        )
            .into_response();
    }
    let mut body = json!({
        "client_id": client.id,
        "client_id_issued_at": now / 1000,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": method,
    });
    if let Some(uri) = client_uri {
        body["client_uri"] = json!(uri);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53123/cb"
        ));
        assert!(redirect_matches(
            "http://localhost:3000/cb",
            "http://localhost:4000/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://localhost:5/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
    }

    #[test]
    fn redirect_uris_must_be_https_loopback_or_private_use() {
        assert!(valid_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(valid_redirect_uri("http://127.0.0.1:33418/").is_ok());
        assert!(valid_redirect_uri("http://[::1]/cb").is_ok());
        assert!(valid_redirect_uri("cursor://anysphere.cursor-mcp/oauth/callback").is_ok());
        assert!(valid_redirect_uri("http://app.example/cb").is_err());
        assert!(valid_redirect_uri("javascript:alert(1)").is_err());
        assert!(valid_redirect_uri("https://app.example/cb#x").is_err());
        assert!(valid_redirect_uri("/relative").is_err());
    }
}
