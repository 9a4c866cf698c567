//! The token endpoint (`POST /oauth/token`, OAuth 2.1 section 3.2), the
//! revocation endpoint (`POST /oauth/revoke`, RFC 7009) and the access
//! tokens themselves.
//!
//! Access tokens are JWTs (RFC 9068 `at+jwt`) signed with HS256 under a key
//! derived from the master key ([`KEY_PURPOSE`]), so every replica checks
//! them without a store read for the token itself. They carry the audience
//! `<public URL>/mcp` (RFC 8707) and live `--oauth-access-token-ttl-secs`
//! (default 1 h); `/mcp` still reads the grant, the AI client and the user
//! on every call ([`crate::mcp::auth`]), so a revoked grant, a closed
//! client or a disabled user stops at the next call.
//!
//! Refresh tokens are `tgr_<grant id>.<random>`; the grant
//! ([`OAuthGrant`]) keeps only the SHA-256 of the current one. Each refresh
//! rotates it; presenting an earlier one is reuse and revokes the grant
//! (OAuth 2.1 section 4.3.1). Authorization codes are single use: a code
//! presented again revokes the grant it produced (RFC 6749 section
//! 4.1.2). Errors follow RFC 6749 section 5.2 and never echo a secret.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Authz;
use super::clients::{self, ClientCheck};
use super::metadata::SCOPE;
use crate::audit::Action;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::model::{AiClient, AuditEvent, OAuthClient, OAuthGrant, User, new_id, now_ms};
use crate::store::{Batch, Ephemeral, Store, StoreError};

/// Purpose of the access-token signing key ([`Store::derived_key`]).
pub const KEY_PURPOSE: &str = "oauth-access-token-hs256";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "tgr_";
/// The ephemeral-value kind of authorization codes.
pub const CODE_KIND: &str = "oauth_code";
/// The ephemeral-value kind of redeemed codes (code hash -> grant id), so
/// that a second redemption revokes what the first issued.
pub const USED_CODE_KIND: &str = "oauth_code_used";
/// How long a redeemed code is remembered (10 min).
const USED_CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// How many earlier refresh tokens a grant remembers for reuse detection.
const USED_REFRESH_KEPT: usize = 50;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the public URL.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Audience: `<public URL>/mcp`.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Issue time (Unix seconds).
    pub iat: u64,
    /// Token id.
    pub jti: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The grant ([`OAuthGrant::id`]).
    pub gid: String,
    /// The AI client record ([`AiClient::id`]).
    pub cid: String,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// Why an access token was refused (each says what is wrong, nothing more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    /// Past its `exp`.
    #[error("the access token has expired; refresh it or sign in again")]
    Expired,
    /// For another resource.
    #[error(
        "the access token is for another resource (audience); request a token for this server's /mcp"
    )]
    WrongAudience,
    /// Not a token this server issued.
    #[error("invalid access token")]
    Invalid,
}

/// Signs and checks access tokens.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    resource: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys for `issuer` and `resource`, derived from the store's master key.
    pub fn new(store: &Store, issuer: &str, resource: &str) -> Self {
        let secret = store.derived_key(KEY_PURPOSE);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // Audience and issuer are compared below, audience first, so that a
        // token of another server says so.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            issuer: issuer.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// A new access token for `grant`, valid for `ttl_secs`.
    pub fn issue(&self, grant: &OAuthGrant, ttl_secs: u64) -> Result<String, String> {
        let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: grant.user_id.clone(),
            aud: self.resource.clone(),
            exp: now + ttl_secs,
            iat: now,
            jti: new_id(),
            client_id: grant.client_id.clone(),
            gid: grant.id.clone(),
            cid: grant.ai_client_id.clone(),
            scope: grant.scopes.join(" "),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// The claims of `token` if this server issued it for this resource and
    /// it has not expired.
    ///
    /// Errors: [`AccessTokenError`].
    pub fn verify(&self, token: &str) -> Result<Claims, AccessTokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AccessTokenError::Expired,
                _ => AccessTokenError::Invalid,
            })?;
        if claims.aud != self.resource {
            return Err(AccessTokenError::WrongAudience);
        }
        if claims.iss != self.issuer {
            return Err(AccessTokenError::Invalid);
        }
        Ok(claims)
    }
}

/// What an authorization code is bound to (RFC 6749 section 4.1.3, RFC 7636,
/// RFC 8707), sealed in the ephemeral store under the code's SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The OAuth client id.
    pub client_id: String,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The resource (`<public URL>/mcp`).
    pub resource: String,
    /// The signed-in user.
    pub user_id: String,
    /// The AI client record.
    pub ai_client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

/// An RFC 6749 section 5.2 error answer.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    /// A 400 error with `code` and a description for the client's developer.
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
            basic_challenge: basic,
        }
    }

    fn unavailable(err: &StoreError) -> Self {
        tracing::error!(error = %err, "token endpoint cannot reach the store");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: "toolgate cannot reach its database right now; try again shortly".into(),
            basic_challenge: false,
        }
    }

    /// The error code (`invalid_grant`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        no_store(response.headers_mut());
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"toolgate\""),
            );
        }
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The client credentials of a token or revocation request: `client_id`
/// and secret from HTTP Basic (RFC 6749 section 2.3.1) or the form.
struct ClientAuth {
    client_id: String,
    secret: Option<String>,
    basic: bool,
}

fn client_auth(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientAuth, OAuthError> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
    {
        let decoded = STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_client("malformed HTTP Basic credentials", true))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client("malformed HTTP Basic credentials", true))?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Ok(ClientAuth {
            client_id: decode(id),
            secret: Some(decode(secret)),
            basic: true,
        });
    }
    let client_id = form
        .get("client_id")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| {
            OAuthError::invalid_client(
                "client_id is required (public clients send it in the form)",
                false,
            )
        })?;
    Ok(ClientAuth {
        client_id,
        secret: form.get("client_secret").cloned(),
        basic: false,
    })
}

/// Checks the client's credentials against its registration: a public
/// client (`none`) sends none; a DCR client with a secret sends it the way
/// it registered.
fn authenticate_client(client: &OAuthClient, auth: &ClientAuth) -> Result<(), OAuthError> {
    match (&client.secret_hash, &auth.secret) {
        (None, None) => Ok(()),
        (None, Some(_)) if !auth.basic => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "this client registered without a secret (token_endpoint_auth_method none); send no credentials",
            true,
        )),
        (Some(_), None) => Err(OAuthError::invalid_client(
            format!(
                "this client registered with token_endpoint_auth_method {}; send its client secret",
                client.token_endpoint_auth_method
            ),
            auth.basic,
        )),
        (Some(hash), Some(secret)) => {
            if constant_time_eq(hash.as_bytes(), sha256_hex(secret.as_bytes()).as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::invalid_client(
                    "client authentication failed",
                    auth.basic,
                ))
            }
        }
    }
}

/// The client of a token request: a registered (DCR) client, or a fetched
/// Client ID Metadata Document.
async fn find_client(authz: &Authz, client_id: &str) -> Result<OAuthClient, OAuthError> {
    clients::resolve(authz, client_id)
        .await
        .map_err(|e| match e {
            clients::ClientError::Store(err) => OAuthError::unavailable(&err),
            other => OAuthError::invalid_client(other.to_string(), false),
        })
}

/// `POST /oauth/token` (form-encoded).
pub(super) async fn token(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&authz, &headers, &form).await,
        Some("refresh_token") => refresh(&authz, &headers, &form).await,
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            format!(
                "grant_type {:?} is not supported; use authorization_code or refresh_token",
                other.chars().take(64).collect::<String>()
            ),
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type is required")),
    };
    match result {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(err) => err.into_response(),
    }
}

fn check_resource(authz: &Authz, form: &HashMap<String, String>) -> Result<(), OAuthError> {
    match form.get("resource") {
        Some(r) if r.trim_end_matches('/') != authz.resource => Err(OAuthError::new(
            "invalid_target",
            format!(
                "resource must be {} (the MCP endpoint this server issues tokens for)",
                authz.resource
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether `verifier` (RFC 7636 section 4.1: 43 to 128 unreserved
/// characters) hashes to `challenge` (S256).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed
        && constant_time_eq(
            URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                .as_bytes(),
            challenge.as_bytes(),
        )
}

async fn authorization_code(
    authz: &Authz,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let auth = client_auth(headers, form)?;
    let code = form
        .get("code")
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .ok_or_else(|| OAuthError::new("invalid_request", "code is required"))?;
    check_resource(authz, form)?;
    let store = &authz.store;
    let code_hash = sha256_hex(code.as_bytes());
    let Some(stored) = store
        .take_ephemeral(CODE_KIND, &code_hash)
        .await
        .map_err(|e| OAuthError::unavailable(&e))?
    else {
        // A second redemption: revoke what the first one issued.
        if let Some(used) = store
            .get_ephemeral(USED_CODE_KIND, &code_hash)
            .await
            .map_err(|e| OAuthError::unavailable(&e))?
        {
            let grant_id = String::from_utf8_lossy(&used.value).into_owned();
            revoke_grant(store, &grant_id, "authorization code reused")
                .await
                .map_err(|e| OAuthError::unavailable(&e))?;
            return Err(OAuthError::new(
                "invalid_grant",
                "this authorization code was already used; the tokens issued for it are revoked; sign in again",
            ));
        }
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code is unknown or expired (codes last 60 seconds and work once); sign in again",
        ));
    };
    let bound: CodeGrant = serde_json::from_slice(&stored.value)
        .map_err(|_| OAuthError::new("invalid_grant", "the authorization code is unreadable"))?;
    if bound.client_id != auth.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code was issued to another client",
        ));
    }
    let client = find_client(authz, &auth.client_id).await?;
    authenticate_client(&client, &auth)?;
    match form.get("redirect_uri") {
        Some(uri) if *uri == bound.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::new(
                "invalid_grant",
                "redirect_uri differs from the one the authorization request used",
            ));
        }
        None => {
            return Err(OAuthError::new(
                "invalid_request",
                "redirect_uri is required (the one the authorization request used)",
            ));
        }
    }
    let verifier = form.get("code_verifier").ok_or_else(|| {
        OAuthError::new(
            "invalid_request",
            "code_verifier is required (PKCE, RFC 7636)",
        )
    })?;
    if !pkce_matches(verifier, &bound.code_challenge) {
        return Err(OAuthError::new(
            "invalid_grant",
            "code_verifier does not match the code_challenge (PKCE S256)",
        ));
    }
    let refresh_secret = random_token("")
        .map_err(|_| OAuthError::new("server_error", "cannot make a refresh token"))?;
    let now = now_ms();
    let grant = OAuthGrant {
        id: new_id(),
        ai_client_id: bound.ai_client_id.clone(),
        client_id: bound.client_id.clone(),
        user_id: bound.user_id.clone(),
        resource: bound.resource.clone(),
        scopes: bound.scopes.clone(),
        refresh_hash: String::new(),
        used_refresh_hashes: Vec::new(),
        created_at: now,
        refreshed_at: None,
        expires_at: now + i64::try_from(authz.options.grant_ttl.as_millis()).unwrap_or(i64::MAX),
        revoked_at: None,
        revoked_reason: String::new(),
    };
    let refresh_token = format!("{REFRESH_PREFIX}{}.{refresh_secret}", grant.id);
    let grant = OAuthGrant {
        refresh_hash: sha256_hex(refresh_token.as_bytes()),
        ..grant
    };
    let grant_ref = &grant;
    let settings = store
        .settings()
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    let policy = &settings.sign_in.registration;
    store
        .write(|tx| async move {
            let user = tx.get::<User>(&grant_ref.user_id).await?;
            let client = tx.get::<AiClient>(&grant_ref.ai_client_id).await?;
            if let Some(refusal) = clients::check(user.as_ref(), client.as_ref(), policy) {
                return Ok((Batch::default(), Err(refusal)));
            }
            let mut batch = Batch::default();
            batch.put(grant_ref);
            Ok::<_, StoreError>((batch, Ok(())))
        })
        .await
        .map_err(|e| OAuthError::unavailable(&e))?
        .map_err(|refusal: ClientCheck| OAuthError::new("invalid_grant", refusal.to_string()))?;
    store
        .put_ephemeral(
            USED_CODE_KIND,
            &code_hash,
            &Ephemeral {
                owner: grant.id.clone(),
                value: grant.id.as_bytes().to_vec(),
                expires_at: now + USED_CODE_TTL_MS,
            },
        )
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    token_answer(authz, &grant, &refresh_token)
}

fn token_answer(
    authz: &Authz,
    grant: &OAuthGrant,
    refresh_token: &str,
) -> Result<serde_json::Value, OAuthError> {
    let ttl = authz.options.access_token_ttl.as_secs().max(1);
    let access_token = authz
        .keys
        .issue(grant, ttl)
        .map_err(|_| OAuthError::new("server_error", "cannot sign an access token"))?;
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh_token,
        "scope": grant.scopes.join(" "),
    }))
}

/// The grant id in a refresh token `tgr_<grant id>.<secret>`.
fn refresh_grant_id(token: &str) -> Option<&str> {
    token
        .strip_prefix(REFRESH_PREFIX)?
        .split_once('.')
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty() && id.len() <= 64)
}

/// What a refresh found.
enum Rotation {
    Rotated(Box<OAuthGrant>),
    Reused,
    Refused(String),
}

async fn refresh(
    authz: &Authz,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let auth = client_auth(headers, form)?;
    check_resource(authz, form)?;
    let presented = form
        .get("refresh_token")
        .filter(|t| t.len() <= 512)
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
    let invalid = || {
        OAuthError::new(
            "invalid_grant",
            "the refresh token is unknown, expired or revoked; sign in again",
        )
    };
    let grant_id = refresh_grant_id(presented).ok_or_else(invalid)?.to_owned();
    let client = find_client(authz, &auth.client_id).await?;
    authenticate_client(&client, &auth)?;
    let store = &authz.store;
    let settings = store
        .settings()
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    let policy = &settings.sign_in.registration;
    let hash = sha256_hex(presented.as_bytes());
    let secret = random_token("")
        .map_err(|_| OAuthError::new("server_error", "cannot make a refresh token"))?;
    let new_token = format!("{REFRESH_PREFIX}{grant_id}.{secret}");
    let (new_ref, hash_ref, grant_id_ref, client_id) =
        (&new_token, &hash, &grant_id, auth.client_id.as_str());
    let rotation = store
        .write(|tx| async move {
            let now = now_ms();
            let Some(mut grant) = tx.get::<OAuthGrant>(grant_id_ref).await? else {
                return Ok((Batch::default(), Rotation::Refused(String::new())));
            };
            if grant.client_id != client_id {
                return Ok((Batch::default(), Rotation::Refused(String::new())));
            }
            if grant.revoked_at.is_some() || grant.expires_at <= now {
                return Ok((Batch::default(), Rotation::Refused(String::new())));
            }
            let mut batch = Batch::default();
            if grant.refresh_hash != *hash_ref {
                if grant.used_refresh_hashes.iter().any(|h| h == hash_ref) {
                    grant.revoked_at = Some(now);
                    grant.revoked_reason = "refresh token reuse".into();
                    batch.put(&grant);
                    batch.audit(revoked_event(&grant));
                    return Ok((batch, Rotation::Reused));
                }
                return Ok((batch, Rotation::Refused(String::new())));
            }
            let user = tx.get::<User>(&grant.user_id).await?;
            let client = tx.get::<AiClient>(&grant.ai_client_id).await?;
            if let Some(refusal) = clients::check(user.as_ref(), client.as_ref(), policy) {
                return Ok((batch, Rotation::Refused(refusal.to_string())));
            }
            let old = std::mem::replace(&mut grant.refresh_hash, sha256_hex(new_ref.as_bytes()));
            grant.used_refresh_hashes.push(old);
            let excess = grant
                .used_refresh_hashes
                .len()
                .saturating_sub(USED_REFRESH_KEPT);
            grant.used_refresh_hashes.drain(..excess);
            grant.refreshed_at = Some(now);
            batch.put(&grant);
            Ok::<_, StoreError>((batch, Rotation::Rotated(Box::new(grant))))
        })
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    match rotation {
        Rotation::Rotated(grant) => token_answer(authz, &grant, &new_token),
        Rotation::Reused => Err(OAuthError::new(
            "invalid_grant",
            "this refresh token was already used, so this sign-in is revoked (refresh token reuse); sign in again",
        )),
        Rotation::Refused(reason) if reason.is_empty() => Err(invalid()),
        Rotation::Refused(reason) => Err(OAuthError::new("invalid_grant", reason)),
    }
}

fn revoked_event(grant: &OAuthGrant) -> AuditEvent {
    AuditEvent::allowed("system", Action::GrantRevoke, format!("grant/{}", grant.id))
        .with_reason(format!("OAuth grant revoked: {}", grant.revoked_reason))
        .with_details(json!({
            "grant_id": grant.id,
            "ai_client_id": grant.ai_client_id,
            "client_id": grant.client_id,
            "user_id": grant.user_id,
        }))
}

/// Revokes grant `grant_id` (no error if it is gone or already revoked).
///
/// Errors: [`StoreError`] when the store cannot be written.
pub async fn revoke_grant(store: &Store, grant_id: &str, reason: &str) -> Result<(), StoreError> {
    store
        .write(|tx| async move {
            let mut batch = Batch::default();
            if let Some(mut grant) = tx.get::<OAuthGrant>(grant_id).await?
                && grant.revoked_at.is_none()
            {
                grant.revoked_at = Some(now_ms());
                grant.revoked_reason = reason.to_owned();
                batch.put(&grant);
                batch.audit(revoked_event(&grant));
            }
            Ok::<_, StoreError>((batch, ()))
        })
        .await
}

/// `POST /oauth/revoke` (RFC 7009): revokes the grant of a refresh token or
/// an access token. Answers 200 for unknown tokens too (section 2.2).
pub(super) async fn revoke(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let auth = match client_auth(&headers, &form) {
        Ok(auth) => auth,
        Err(err) => return err.into_response(),
    };
    let client = match find_client(&authz, &auth.client_id).await {
        Ok(client) => client,
        Err(err) => return err.into_response(),
    };
    if let Err(err) = authenticate_client(&client, &auth) {
        return err.into_response();
    }
    let Some(token) = form.get("token").filter(|t| t.len() <= 4096) else {
        return OAuthError::new("invalid_request", "token is required").into_response();
    };
    // A refresh token names its grant in clear (`tgr_<grant id>.<secret>`):
    // only the whole token, matching the grant's current or an earlier
    // refresh token's SHA-256, revokes it. An access token is checked by
    // its signature.
    let (grant_id, presented_hash) = if token.starts_with(REFRESH_PREFIX) {
        (
            refresh_grant_id(token).map(str::to_owned),
            Some(sha256_hex(token.as_bytes())),
        )
    } else {
        (authz.keys.verify(token).ok().map(|claims| claims.gid), None)
    };
    if let Some(grant_id) = grant_id {
        let owned = match authz.store.get::<OAuthGrant>(&grant_id).await {
            Ok(grant) => grant.filter(|g| {
                g.client_id == auth.client_id
                    && presented_hash.as_ref().is_none_or(|hash| {
                        g.refresh_hash == *hash || g.used_refresh_hashes.contains(hash)
                    })
            }),
            Err(err) => return OAuthError::unavailable(&err).into_response(),
        };
        if owned.is_some()
            && let Err(err) = revoke_grant(&authz.store, &grant_id, "revoked by the client").await
        {
            return OAuthError::unavailable(&err).into_response();
        }
    }
    let mut response = StatusCode::OK.into_response();
    no_store(response.headers_mut());
    response
}

/// The scopes granted: always [`SCOPE`].
pub fn granted_scopes() -> Vec<String> {
    vec![SCOPE.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_an_independently_computed_challenge() {
        // Computed with Python: base64url(sha256(verifier)) without padding.
        let verifier = "dBjftJeZ4CVP-mJ92IZqpw_Bd1aTuxY-ViEbHbwHl3o";
        let challenge = "WqHDp5fhPMBnTGZRZuG-Br7GlqPBaTe7S9lNU8x-a2Q";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            verifier,
            "WqHDp5fhPMBnTGZRZuG-Br7GlqPBaTe7S9lNU8x-a2R"
        ));
        // Too short to be a verifier, even if it matched.
        assert!(!pkce_matches(
            "abc",
            &URL_SAFE_NO_PAD.encode(Sha256::digest(b"abc"))
        ));
    }

    #[test]
    fn refresh_tokens_name_their_grant() {
        assert_eq!(refresh_grant_id("tgr_0193-ab.secret"), Some("0193-ab"));
        assert_eq!(refresh_grant_id("tgr_.secret"), None);
        assert_eq!(refresh_grant_id("tgp_x.y"), None);
    }
}
