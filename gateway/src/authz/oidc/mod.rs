//! Signing users in through the company's OpenID Connect provider
//! (`Settings.sign_in.identity_provider`): the authorization code flow of
//! OpenID Connect Core 1.0 section 3.1 with PKCE S256 (RFC 7636), `state`
//! and `nonce`, on the `openidconnect` crate, whose HTTP client here is
//! toolgate's reqwest client (the `--extra-ca-file` roots, no redirects
//! followed, a timeout and a size cap on answers).
//!
//! Routes:
//! - `GET /signin/oidc/start?return=<path>`: reads the provider's discovery
//!   document (OpenID Connect Discovery 1.0 section 4, cached for
//!   [`DISCOVERY_TTL`]; read again when an ID token's signature does not
//!   verify against its keys, and after a token request that failed),
//!   keeps the PKCE verifier, nonce and return path in the store's
//!   ephemeral values under the SHA-256 of `state` (kind [`PENDING_KIND`],
//!   [`PENDING_TTL`]), binds them to this browser with the cookie
//!   [`BROWSER_COOKIE`], and redirects to the provider.
//! - `GET /signin/oidc/callback`: takes the pending sign-in by `state`
//!   (single use; refused when the browser cookie does not match), answers
//!   a provider `error` as such, exchanges the code (client secret by HTTP
//!   Basic, RFC 6749 section 2.3.1, or none for a public client), and has
//!   the crate verify the ID token: signature against the provider's JWKS,
//!   `iss`, `aud`, `exp`, `nonce` (OpenID Connect Core 3.1.3.7). The email
//!   comes from `email_claim` in the ID token or else from userinfo (whose
//!   `sub` must be the ID token's, Core 5.3.2); `email_verified: false` is
//!   refused; then [`check_claims`] (allowed domains and groups), the user
//!   by email (case-insensitive), created or refused per `unknown_users`,
//!   refused when disabled; then a browser session
//!   ([`super::session::start`]) and a redirect to the return path.
//!
//! Every outcome writes an audit event (`signin.complete`, allowed or
//! denied with the reason, `method: oidc`; not `/signin/oidc/start` without
//! a provider, where nothing was attempted) and gives the browser a page
//! that says what happened; tokens, codes and the client secret never
//! appear in pages, logs or the audit log. Failures on the provider's side
//! (unreachable, refused exchange, bad ID token) are also logged as
//! warnings.
//!
//! Layout: [`provider`] (HTTP client, discovery cache), [`claims`] (what
//! is read from the claims and the pure check of it), this file (routes,
//! the pending sign-in, users, audit, pages).
//!
//! Must not: issue toolgate tokens (that is [`super::authorize`] and
//! [`super::token`] after the session exists) or trust anything from the
//! provider that the crate did not verify.

pub mod claims;
pub mod provider;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, SubjectIdentifier,
    TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::claims::{Identity, check_claims, identity_of};
use self::provider::chain;
pub use self::provider::{DISCOVERY_TTL, HttpError, Oidc};
use super::Authz;
use super::session;
use super::signin::valid_return;
use crate::audit::Action;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::http::{escape, page_html};
use crate::model::{
    AuditEvent, IdentityProvider, Outcome, UnknownUsers, User, UserStatus, new_id, now_ms,
};
use crate::store::{Batch, Ephemeral, StoreError};

/// The ephemeral-value kind of sign-ins waiting for the provider's answer.
pub const PENDING_KIND: &str = "oidc_pending";
/// How long a sign-in may take at the provider (10 min).
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// The cookie that binds a pending sign-in to the browser that started it
/// (`Path=/signin/oidc`, `HttpOnly`, `SameSite=Lax`): a callback URL
/// carried to another browser (login CSRF) is refused.
pub const BROWSER_COOKIE: &str = "toolgate_oidc";

/// The client type: discovery sets the authorization URL; the token and
/// userinfo endpoints may be absent from it.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Every claim outside the standard ones (the groups claim, an email
/// claim other than `email`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims(HashMap<String, Value>);
impl AdditionalClaims for OtherClaims {}

type FullIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Why a sign-in through the identity provider did not complete. The
/// message is for the person at the browser and the audit log: no tokens,
/// codes or secrets.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// No identity provider is configured.
    #[error(
        "this toolgate has no identity provider configured; sign in with a sign-in link from your administrator"
    )]
    NotConfigured,
    /// The configured provider cannot be used (bad issuer URL, unreadable
    /// client secret).
    #[error(
        "the identity provider is not configured correctly ({0}); tell your toolgate administrator"
    )]
    Misconfigured(String),
    /// Discovery, the token endpoint or userinfo could not be reached or
    /// answered badly.
    #[error(
        "toolgate cannot reach the identity provider at {issuer}: {cause}; try again shortly, or tell your toolgate administrator"
    )]
    Unreachable {
        /// The issuer URL.
        issuer: String,
        /// What failed (no secrets).
        cause: String,
    },
    /// Unknown, used or expired `state`, or another browser's.
    #[error(
        "this sign-in attempt is not valid: it was already used, took longer than 10 minutes, or was started in another browser; start again from your AI client"
    )]
    InvalidState,
    /// The provider answered the authorization request with an error
    /// (OAuth 2.0, RFC 6749 section 4.1.2.1), e.g. `access_denied`.
    #[error("the identity provider did not sign you in ({error}{}); start again from your AI client", if .description.is_empty() { String::new() } else { format!(": {}", .description) })]
    Provider {
        /// The `error` code.
        error: String,
        /// `error_description`, if any.
        description: String,
    },
    /// The code exchange was refused by the provider.
    #[error(
        "the identity provider refused to complete the sign-in ({0}); start again from your AI client"
    )]
    Exchange(String),
    /// The ID token is missing or failed verification.
    #[error(
        "the identity provider's ID token could not be verified ({0}); tell your toolgate administrator"
    )]
    IdToken(String),
    /// Neither the ID token nor userinfo has the email claim.
    #[error(
        "the identity provider did not say your email (claim {0}); tell your toolgate administrator"
    )]
    NoEmail(String),
    /// `email_verified` is false.
    #[error("your email {0} is not verified at the identity provider; verify it there first")]
    EmailNotVerified(String),
    /// The email's domain is not allowed.
    #[error("{0} may not sign in to this toolgate: its email domain is not allowed")]
    DomainNotAllowed(String),
    /// None of the user's groups is allowed.
    #[error("{0} may not sign in to this toolgate: none of your groups is allowed")]
    GroupNotAllowed(String),
    /// No user has the email and unknown users are refused.
    #[error("{0} is not a toolgate user; ask your toolgate administrator to add you")]
    UnknownUser(String),
    /// The user is disabled.
    #[error("the toolgate user {0} is disabled; ask your toolgate administrator")]
    Disabled(String),
    /// The store failed.
    #[error("toolgate cannot reach its database right now; try again shortly")]
    Store(#[from] StoreError),
}

impl OidcError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotConfigured => StatusCode::NOT_FOUND,
            Self::Misconfigured(_) | Self::Unreachable { .. } | Self::IdToken(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Exchange(_) | Self::NoEmail(_) => StatusCode::BAD_GATEWAY,
            Self::InvalidState => StatusCode::BAD_REQUEST,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Provider { .. }
            | Self::EmailNotVerified(_)
            | Self::DomainNotAllowed(_)
            | Self::GroupNotAllowed(_)
            | Self::UnknownUser(_)
            | Self::Disabled(_) => StatusCode::FORBIDDEN,
        }
    }

    /// A short code for the audit details.
    fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Misconfigured(_) => "misconfigured",
            Self::Unreachable { .. } => "provider_unreachable",
            Self::InvalidState => "invalid_state",
            Self::Provider { .. } => "provider_error",
            Self::Exchange(_) => "code_exchange_failed",
            Self::IdToken(_) => "id_token_invalid",
            Self::NoEmail(_) => "no_email",
            Self::EmailNotVerified(_) => "email_not_verified",
            Self::DomainNotAllowed(_) => "email_domain_not_allowed",
            Self::GroupNotAllowed(_) => "group_not_allowed",
            Self::UnknownUser(_) => "unknown_user",
            Self::Disabled(_) => "user_disabled",
            Self::Store(_) => "store_unavailable",
        }
    }
}

/// What the store keeps of a sign-in waiting at the provider.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// PKCE verifier (RFC 7636): sealed in the store.
    verifier: String,
    /// The nonce the ID token must carry.
    nonce: String,
    /// Where to go after sign-in (already [`valid_return`]).
    return_to: Option<String>,
    /// SHA-256 (hex) of the [`BROWSER_COOKIE`] value.
    browser: String,
    /// The issuer the flow started with.
    issuer_url: String,
}

/// The identity provider settings, or [`OidcError::NotConfigured`].
async fn provider(authz: &Authz) -> Result<IdentityProvider, OidcError> {
    authz
        .store
        .settings()
        .await?
        .sign_in
        .identity_provider
        .ok_or(OidcError::NotConfigured)
}

/// The crate's client for `idp` from `metadata`, with the client secret
/// from the store (none: a public client).
async fn client(
    authz: &Authz,
    idp: &IdentityProvider,
    metadata: CoreProviderMetadata,
) -> Result<Client, OidcError> {
    let secret = match authz.store.secret(IdentityProvider::SECRET_KEY).await? {
        Some(bytes) => Some(ClientSecret::new(String::from_utf8(bytes).map_err(
            |_| OidcError::Misconfigured("the client secret is not text".into()),
        )?)),
        None => None,
    };
    let redirect = RedirectUrl::new(callback_url(&authz.public_url))
        .map_err(|e| OidcError::Misconfigured(format!("public URL: {e}")))?;
    Ok(
        CoreClient::from_provider_metadata(metadata, ClientId::new(idp.client_id.clone()), secret)
            .set_redirect_uri(redirect),
    )
}

/// `<public URL>/signin/oidc/callback`: the redirect URI to register at
/// the provider.
pub fn callback_url(public_url: &str) -> String {
    format!("{}/signin/oidc/callback", public_url.trim_end_matches('/'))
}

/// `/signin/oidc/start?return=<return_to>`.
pub fn start_path(return_to: Option<&str>) -> String {
    match return_to {
        Some(r) => format!(
            "/signin/oidc/start?return={}",
            url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
        ),
        None => "/signin/oidc/start".to_owned(),
    }
}

/// `GET /signin/oidc/start?return=<path>`.
pub(super) async fn start(
    State(authz): State<Arc<Authz>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let return_to = params
        .get("return")
        .filter(|r| valid_return(r))
        .map(String::to_owned);
    match begin(&authz, return_to.clone()).await {
        Ok((to, cookie)) => {
            let mut response = Redirect::to(&to).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        // Nothing was attempted without a provider: not audited (anyone
        // can fetch this URL).
        Err(OidcError::NotConfigured) => {
            error_page(&OidcError::NotConfigured, return_to.as_deref())
        }
        Err(err) => {
            audit_refusal(&authz, None, &err).await;
            error_page(&err, return_to.as_deref())
        }
    }
}

/// Discovery, PKCE, state, nonce; the pending sign-in stored. Returns the
/// provider's authorization URL and the browser cookie.
async fn begin(
    authz: &Authz,
    return_to: Option<String>,
) -> Result<(String, HeaderValue), OidcError> {
    let idp = provider(authz).await?;
    let metadata = authz.oidc.metadata(&idp, false).await?;
    let client = client(authz, &idp, metadata).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in idp
        .scopes
        .iter()
        .filter(|s| *s != "openid" && !s.is_empty())
    {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    let browser = random_token("").map_err(|e| OidcError::Misconfigured(e.to_string()))?;
    let pending = Pending {
        verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
        return_to,
        browser: sha256_hex(browser.as_bytes()),
        issuer_url: idp.issuer_url.clone(),
    };
    let expires_at = now_ms() + i64::try_from(PENDING_TTL.as_millis()).unwrap_or(i64::MAX);
    authz
        .store
        .put_ephemeral(
            PENDING_KIND,
            &sha256_hex(state.secret().as_bytes()),
            &Ephemeral {
                owner: String::new(),
                value: serde_json::to_vec(&pending).unwrap_or_default(),
                expires_at,
            },
        )
        .await?;
    let secure = if authz.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = HeaderValue::from_str(&format!(
        "{BROWSER_COOKIE}={browser}; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        PENDING_TTL.as_secs()
    ))
    .map_err(|e| OidcError::Misconfigured(e.to_string()))?;
    Ok((url.to_string(), cookie))
}

/// `GET /signin/oidc/callback`.
pub(super) async fn callback(
    State(authz): State<Arc<Authz>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let outcome = finish(&authz, &headers, &params).await;
    let mut response = match &outcome {
        Ok(done) => {
            audit_success(&authz, &done.user, done.created).await;
            let mut response = match &done.return_to {
                Some(to) => Redirect::to(to).into_response(),
                None => page_html(
                    StatusCode::OK,
                    "Signed in",
                    &format!(
                        "<p>You are signed in to toolgate as {}. Go back to your AI client and sign in there again (or retry): it continues from here.</p>",
                        escape(&done.user.email)
                    ),
                ),
            };
            response
                .headers_mut()
                .append(header::SET_COOKIE, done.cookie.clone());
            response
        }
        Err((err, email, return_to)) => {
            audit_refusal(&authz, email.as_deref(), err).await;
            error_page(err, return_to.as_deref())
        }
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("toolgate_oidc=; Path=/signin/oidc; Max-Age=0"),
    );
    response
}

/// A completed sign-in.
struct Done {
    user: User,
    /// Whether the user was created by this sign-in.
    created: bool,
    return_to: Option<String>,
    cookie: HeaderValue,
}

/// A refusal with the email (when known) and the return path (when known).
type Refusal = (OidcError, Option<String>, Option<String>);

async fn finish(
    authz: &Authz,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Done, Refusal> {
    let state = params
        .get("state")
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or((OidcError::InvalidState, None, None))?;
    let pending = authz
        .store
        .take_ephemeral(PENDING_KIND, &sha256_hex(state.as_bytes()))
        .await
        .map_err(|e| (OidcError::Store(e), None, None))?
        .and_then(|p| serde_json::from_slice::<Pending>(&p.value).ok())
        .ok_or((OidcError::InvalidState, None, None))?;
    let return_to = pending.return_to.clone();
    let fail = |err: OidcError, email: Option<String>| (err, email, return_to.clone());
    let browser = browser_cookie(headers).map(|v| sha256_hex(v.as_bytes()));
    if !browser.is_some_and(|b| constant_time_eq(b.as_bytes(), pending.browser.as_bytes())) {
        return Err(fail(OidcError::InvalidState, None));
    }
    if let Some(error) = params.get("error") {
        return Err(fail(
            OidcError::Provider {
                error: printable(error),
                description: printable(params.get("error_description").map_or("", String::as_str)),
            },
            None,
        ));
    }
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| fail(OidcError::InvalidState, None))?;
    let idp = provider(authz).await.map_err(|e| fail(e, None))?;
    if idp.issuer_url != pending.issuer_url {
        return Err(fail(OidcError::InvalidState, None));
    }
    let identity = exchange(authz, &idp, code, &pending)
        .await
        .map_err(|e| fail(e, None))?;
    let email = check_claims(&idp, &identity).map_err(|e| {
        let email = identity.email.clone();
        fail(e, email)
    })?;
    let (user, created) = user_for(authz, &idp, &email, identity.name.as_deref())
        .await
        .map_err(|e| fail(e, Some(email.clone())))?;
    let cookie = session::start(&authz.store, &authz.public_url, &user.id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot start a sign-in session");
            fail(
                OidcError::Store(StoreError::Unavailable(e.to_string())),
                Some(email.clone()),
            )
        })?;
    Ok(Done {
        user,
        created,
        return_to,
        cookie,
    })
}

/// Text from the provider for a page: printable ASCII only, 200 characters
/// at most.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

/// Code exchange, ID token verification (again with a fresh discovery if
/// the signature does not verify: the provider may have rotated its keys),
/// and the identity from the ID token and userinfo.
async fn exchange(
    authz: &Authz,
    idp: &IdentityProvider,
    code: &str,
    pending: &Pending,
) -> Result<Identity, OidcError> {
    let metadata = authz.oidc.metadata(idp, false).await?;
    let algs = signing_algs(&metadata);
    let client = client(authz, idp, metadata).await?;
    let http = authz.oidc.client_fn();
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| OidcError::Misconfigured(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(answer) => OidcError::Exchange(format!(
                "{}{}",
                answer.error(),
                answer
                    .error_description()
                    .map(|d| format!(": {}", printable(d)))
                    .unwrap_or_default()
            )),
            RequestTokenError::Request(e) => {
                authz.oidc.forget();
                OidcError::Unreachable {
                    issuer: idp.issuer_url.clone(),
                    cause: format!("token request failed: {}", chain(&e)),
                }
            }
            RequestTokenError::Parse(_, _) => {
                OidcError::Exchange("its token endpoint answered with no token response".into())
            }
            RequestTokenError::Other(e) => OidcError::Exchange(printable(&e)),
        })?;
    let raw = response
        .id_token()
        .ok_or_else(|| OidcError::IdToken("the token response has no id_token".into()))?
        .to_string();
    let token: FullIdToken = raw
        .parse()
        .map_err(|_| OidcError::IdToken("it is not a JWT".into()))?;
    let nonce = Nonce::new(pending.nonce.clone());
    let verified = match verify(&client, &algs, &token, &nonce) {
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
            let metadata = authz.oidc.metadata(idp, true).await?;
            let algs = signing_algs(&metadata);
            let fresh = self::client(authz, idp, metadata).await?;
            verify(&fresh, &algs, &token, &nonce)
        }
        other => other,
    }
    .map_err(|e| OidcError::IdToken(chain(&e)))?;
    let mut identity = identity_of(
        idp,
        verified.email().map(|e| e.to_string()),
        verified.email_verified(),
        verified
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        &verified.additional_claims().0,
    );
    let wants_groups = !idp.allowed_groups.is_empty() && identity.groups.is_none();
    if (identity.email.is_none() || wants_groups)
        && let Some(info) = userinfo(
            &client,
            &http,
            response.access_token().clone(),
            verified.subject().clone(),
            idp,
        )
        .await?
    {
        let from_info = identity_of(
            idp,
            info.email().map(|e| e.to_string()),
            info.email_verified(),
            info.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
            &info.additional_claims().0,
        );
        if identity.email.is_none() {
            identity.email = from_info.email;
            identity.email_verified = from_info.email_verified;
        }
        if identity.groups.is_none() {
            identity.groups = from_info.groups;
        }
        if identity.name.is_none() {
            identity.name = from_info.name;
        }
    }
    Ok(identity)
}

/// The ID token signing algorithms accepted: the asymmetric ones the
/// provider lists in `id_token_signing_alg_values_supported` (Discovery
/// section 3), never `none` and no HMAC; RS256 (OpenID Connect Core
/// 3.1.3.7, the default) when it lists none of those.
fn signing_algs(metadata: &CoreProviderMetadata) -> Vec<CoreJwsSigningAlgorithm> {
    let algs: Vec<CoreJwsSigningAlgorithm> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|a| {
            !matches!(
                a,
                CoreJwsSigningAlgorithm::None
                    | CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
            )
        })
        .cloned()
        .collect();
    if algs.is_empty() {
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
    } else {
        algs
    }
}

/// The ID token's claims, verified by the crate: signature (one of
/// `algs`, against the provider's JWKS), `iss`, `aud`, `exp`, `nonce`.
fn verify(
    client: &Client,
    algs: &[CoreJwsSigningAlgorithm],
    token: &FullIdToken,
    nonce: &Nonce,
) -> Result<
    openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>,
    openidconnect::ClaimsVerificationError,
> {
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(algs.iter().cloned());
    token.claims(&verifier, nonce).cloned()
}

/// The userinfo claims (OpenID Connect Core 5.3), `None` when the provider
/// has no userinfo endpoint. The crate checks that `sub` is the ID token's.
async fn userinfo<C>(
    client: &Client,
    http: &C,
    access_token: AccessToken,
    subject: SubjectIdentifier,
    idp: &IdentityProvider,
) -> Result<Option<UserInfoClaims<OtherClaims, CoreGenderClaim>>, OidcError>
where
    C: for<'c> openidconnect::AsyncHttpClient<'c>,
{
    let Ok(request) = client.user_info(access_token, Some(subject)) else {
        return Ok(None);
    };
    request
        .request_async(http)
        .await
        .map(Some)
        .map_err(|e| OidcError::Unreachable {
            issuer: idp.issuer_url.clone(),
            cause: format!("userinfo failed: {}", chain(&e)),
        })
}

/// The user with `email` (case-insensitive); created when unknown and
/// `unknown_users` is `Create`. Returns the user and whether it was
/// created.
///
/// Errors: [`OidcError::UnknownUser`], [`OidcError::Disabled`],
/// [`OidcError::Store`].
async fn user_for(
    authz: &Authz,
    idp: &IdentityProvider,
    email: &str,
    name: Option<&str>,
) -> Result<(User, bool), OidcError> {
    let existing = authz
        .store
        .list::<User>()
        .await?
        .into_iter()
        .find(|u| u.email.eq_ignore_ascii_case(email));
    let (user, created) = match existing {
        Some(user) => (user, false),
        None if idp.unknown_users == UnknownUsers::Create => {
            let email = email.to_owned();
            let display_name = name
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.len() <= 200)
                .map_or_else(
                    || email.split('@').next().unwrap_or_default().to_owned(),
                    str::to_owned,
                );
            let issuer = idp.issuer_url.clone();
            authz
                .store
                .write(|tx| async move {
                    // Two first sign-ins at once: the second finds the first's user.
                    if let Some(user) = tx
                        .list::<User>()
                        .await?
                        .into_iter()
                        .find(|u| u.email.eq_ignore_ascii_case(&email))
                    {
                        return Ok::<_, StoreError>((Batch::default(), (user, false)));
                    }
                    let now = now_ms();
                    let user = User {
                        id: new_id(),
                        email: email.clone(),
                        display_name: display_name.clone(),
                        status: UserStatus::Active,
                        created_at: now,
                        updated_at: now,
                    };
                    let mut batch = Batch::default();
                    batch.put(&user);
                    batch.audit(
                        AuditEvent::allowed(
                            &format!("user:{email}"),
                            Action::UserCreate,
                            format!("user/{}", user.id),
                        )
                        .with_reason(format!(
                            "created user {email} at their first sign-in through the identity provider"
                        ))
                        .with_details(json!({
                            "email": email,
                            "display_name": display_name,
                            "method": "oidc",
                            "issuer": issuer,
                        })),
                    );
                    Ok((batch, (user, true)))
                })
                .await?
        }
        None => return Err(OidcError::UnknownUser(email.to_owned())),
    };
    if user.status != UserStatus::Active {
        return Err(OidcError::Disabled(user.email));
    }
    Ok((user, created))
}

/// The [`BROWSER_COOKIE`] value among the request's cookies.
fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    super::session::request_cookie(headers, BROWSER_COOKIE).filter(|v| v.len() <= 128)
}

/// Audits a completed sign-in of `user` (`created`: by this sign-in).
async fn audit_success(authz: &Authz, user: &User, created: bool) {
    let event = AuditEvent::allowed(
        &format!("user:{}", user.email),
        Action::SignIn,
        format!("user/{}", user.id),
    )
    .with_reason(format!(
        "{} signed in through the identity provider",
        user.email
    ))
    .with_details(json!({
        "user_id": user.id,
        "method": "oidc",
        "user_created": created,
    }));
    append(authz, event).await;
}

/// Audits a refused sign-in: denied, with the reason and its code.
async fn audit_refusal(authz: &Authz, email: Option<&str>, err: &OidcError) {
    match err {
        OidcError::Store(e) => {
            tracing::error!(error = %e, "identity provider sign-in failed in storage");
        }
        e if e.status().is_server_error() => {
            tracing::warn!(error = %e, "identity provider sign-in failed");
        }
        _ => {}
    }
    let actor = email.map_or_else(|| "anonymous".to_owned(), |e| format!("user:{e}"));
    let mut event = AuditEvent::allowed(&actor, Action::SignIn, "identity_provider")
        .with_reason(err.to_string())
        .with_details(json!({
            "method": "oidc",
            "refused": err.code(),
            "email": email,
        }));
    event.outcome = Outcome::Denied;
    append(authz, event).await;
}

async fn append(authz: &Authz, event: AuditEvent) {
    if let Err(err) = authz.store.append_audit(vec![event]).await {
        tracing::warn!(error = %err, "cannot audit a sign-in");
    }
}

/// The page of a refused sign-in: what happened, and where to start again.
fn error_page(err: &OidcError, return_to: Option<&str>) -> Response {
    let again = match return_to {
        Some(r) => format!(
            "<p><a href=\"{}\">Sign in again</a> (or with a sign-in link from your administrator: <a href=\"{}\">other ways to sign in</a>).</p>",
            escape(&start_path(Some(r))),
            escape(&super::signin::signin_path(r)),
        ),
        None => String::new(),
    };
    page_html(
        err.status(),
        "Not signed in",
        &format!("<p>{}</p>{again}", escape(&err.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_tokens_are_verified_with_the_providers_asymmetric_algorithms_only() {
        let metadata = |algs: Value| -> CoreProviderMetadata {
            serde_json::from_value(json!({
                "issuer": "https://login.acme.example",
                "authorization_endpoint": "https://login.acme.example/auth",
                "jwks_uri": "https://login.acme.example/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": algs,
            }))
            .unwrap()
        };
        assert_eq!(
            signing_algs(&metadata(json!(["none", "HS256", "ES256", "RS256"]))),
            vec![
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
            ]
        );
        assert_eq!(
            signing_algs(&metadata(json!(["none", "HS512"]))),
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        );
    }

    #[test]
    fn provider_text_is_printable_and_short() {
        assert_eq!(printable("access_denied\r\n<b>"), "access_denied<b>");
        assert_eq!(printable(&"x".repeat(300)).len(), 200);
    }
}
