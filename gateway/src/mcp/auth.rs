//! Authentication of MCP requests: the user's personal access token
//! (`Authorization: Bearer tgp_...`, issued by `UserService.IssueToken`), or
//! an OAuth access token toolgate's authorization server issued for this
//! `/mcp` ([`crate::authz`]). Missing, unknown, revoked, expired tokens,
//! tokens for another audience, disabled users, closed or deleted AI
//! clients and client types the registration policy no longer allows get
//! HTTP 401 with a `WWW-Authenticate` challenge (RFC 6750 section 3) naming
//! the protected resource metadata (RFC 9728 section 5.1) and a body that
//! says what to do; nothing else is revealed.
//!
//! Store reads per request: personal access token: the token hash index,
//! the token, the user, the AI client (4); OAuth access token (a JWT whose
//! signature, audience and expiry are checked in memory): the grant, the AI
//! client, the user (3). The registration policy is read from a copy kept
//! until the next policy write (settings are a policy record).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::authz::clients::{self, ClientCheck};
use crate::authz::metadata::resource_metadata_url;
use crate::authz::token::{AccessTokenError, Keys};
use crate::crypto::sha256_hex;
use crate::model::{AiClient, ClientOrigin, OAuthGrant, Settings, Token, User, UserStatus, now_ms};
use crate::store::{Batch, Store, StoreError};

/// The authenticated user of an MCP request, put in the request extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// The token used. For an OAuth access token this is a stand-in, not a
    /// stored record: its id is the grant's id (so a session stays with
    /// its sign-in across refreshes), its name the client's, its prefix
    /// `oauth`, its hash empty and its expiry the access token's.
    pub token: Token,
    /// The AI client the request comes from (the token's own for a
    /// personal access token).
    pub client: AiClient,
}

/// How often a token's `last_used_at` is written at most (ms): saves a
/// database write per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Shared state of the middleware.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<Store>,
    /// Checks OAuth access tokens.
    keys: Keys,
    /// `resource_metadata` of the 401 challenge.
    metadata_url: String,
    /// token or AI client id -> last `last_used_at` written, to throttle
    /// writes.
    last_written: Mutex<HashMap<String, i64>>,
    /// Settings with the store generation they were read at: the
    /// registration policy is checked on every call.
    settings: Mutex<Option<(u64, Arc<Settings>)>>,
}

/// Why [`Authenticator::authenticate`] let a request through no further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential (HTTP 401 without an error code, RFC 6750 section 3.1).
    Missing,
    /// The credential is not valid, or its user or AI client may not call
    /// (HTTP 401 `invalid_token`), with a phrase safe to show.
    Refused(String),
    /// The store could not be read (HTTP 503, retry later).
    Unavailable,
}

/// 503 with a JSON-RPC error and `Retry-After`: the database is down, the
/// client's token may well be fine.
fn unavailable() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32603,
            "message": "toolgate cannot reach its database right now; nothing was done, try again shortly",
        },
    });
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// 401 with the RFC 9728 `resource_metadata` challenge; `description` is
/// `None` when no token was presented.
fn unauthorized(metadata_url: &str, description: Option<&str>) -> Response {
    let challenge = match description {
        Some(description) => format!(
            "Bearer realm=\"toolgate\", resource_metadata=\"{metadata_url}\", error=\"invalid_token\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ),
        None => format!("Bearer realm=\"toolgate\", resource_metadata=\"{metadata_url}\""),
    };
    let description = description.unwrap_or("missing access token");
    let mut response = (
        StatusCode::UNAUTHORIZED,
        format!(
            "toolgate: {description}. Sign in with an MCP client that supports OAuth (it needs only this URL), \
             or send `Authorization: Bearer <your toolgate access token>`; \
             ask your toolgate administrator for a token or a sign-in link if you have none.\n"
        ),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl Authenticator {
    /// Builds the authenticator of the `/mcp` at `<public_url>/mcp`.
    pub fn new(store: Arc<Store>, public_url: &str) -> Self {
        let issuer = public_url.trim_end_matches('/');
        let keys = Keys::new(&store, issuer, &format!("{issuer}/mcp"));
        Self {
            store,
            keys,
            metadata_url: resource_metadata_url(issuer),
            last_written: Mutex::new(HashMap::new()),
            settings: Mutex::new(None),
        }
    }

    /// The settings, read again only after a policy write.
    async fn settings(&self) -> Result<Arc<Settings>, StoreError> {
        let generation = self.store.generation();
        if let Some((at, settings)) = &*self.settings.lock().unwrap_or_else(|p| p.into_inner())
            && *at == generation
        {
            return Ok(settings.clone());
        }
        let settings = Arc::new(self.store.settings().await?);
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((generation, settings.clone()));
        Ok(settings)
    }

    /// The caller of a bearer token, or why it is refused.
    ///
    /// Errors: [`AuthFailure::Missing`]; [`AuthFailure::Refused`] with a
    /// short phrase that is safe to show (it never says whether a token
    /// exists); [`AuthFailure::Unavailable`] when the store cannot be read
    /// (the request fails closed, but the client is not told its token is
    /// bad).
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, AuthFailure> {
        let presented = bearer.ok_or(AuthFailure::Missing)?;
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "token lookup failed");
            AuthFailure::Unavailable
        };
        let caller = if presented.starts_with(crate::control::TOKEN_PREFIX) {
            self.personal(presented).await.map_err(unavailable)??
        } else {
            self.oauth(presented).await.map_err(unavailable)??
        };
        let settings = self.settings().await.map_err(unavailable)?;
        if let Some(refusal) = clients::client_check(&caller.client, &settings.sign_in.registration)
        {
            return Err(AuthFailure::Refused(refusal.to_string()));
        }
        Ok(caller)
    }

    /// A personal access token's caller; its AI client is created on first
    /// use for tokens issued before AI clients existed.
    async fn personal(&self, presented: &str) -> Result<Result<Caller, AuthFailure>, StoreError> {
        let invalid = || {
            Err(AuthFailure::Refused(
                "invalid, expired or revoked access token".into(),
            ))
        };
        let hash = sha256_hex(presented.as_bytes());
        let Some(id) = self.store.token_id_by_hash(&hash).await? else {
            return Ok(invalid());
        };
        let Some(token) = self.store.get::<Token>(&id).await? else {
            return Ok(invalid());
        };
        // The user and the AI client at once (two round trips on
        // PostgreSQL otherwise).
        let (user, client) = tokio::join!(
            self.store.get::<User>(&token.user_id),
            self.store.get::<AiClient>(&token.id)
        );
        let (Some(user), client) = (user?, client?) else {
            return Ok(invalid());
        };
        let now = now_ms();
        if token.revoked_at.is_some()
            || token.expires_at.is_some_and(|end| end <= now)
            || user.status != UserStatus::Active
        {
            return Ok(invalid());
        }
        let client = match client {
            Some(client) => client,
            None => self.backfill(&token).await?,
        };
        Ok(Ok(Caller {
            user,
            token,
            client,
        }))
    }

    /// Creates the AI client of a token issued before AI clients existed
    /// (once: a concurrent first use finds the other's record).
    async fn backfill(&self, token: &Token) -> Result<AiClient, StoreError> {
        self.store
            .write(|tx| async move {
                let mut batch = Batch::default();
                if let Some(existing) = tx.get::<AiClient>(&token.id).await? {
                    return Ok((batch, existing));
                }
                let client = crate::control::token_client(token);
                batch.put(&client);
                Ok::<_, StoreError>((batch, client))
            })
            .await
    }

    /// An OAuth access token's caller.
    async fn oauth(&self, presented: &str) -> Result<Result<Caller, AuthFailure>, StoreError> {
        let claims = match self.keys.verify(presented) {
            Ok(claims) => claims,
            Err(err @ (AccessTokenError::Expired | AccessTokenError::WrongAudience)) => {
                return Ok(Err(AuthFailure::Refused(err.to_string())));
            }
            Err(AccessTokenError::Invalid) => {
                return Ok(Err(AuthFailure::Refused(
                    "invalid, expired or revoked access token".into(),
                )));
            }
        };
        let revoked = || {
            Err(AuthFailure::Refused(
                "this sign-in was revoked; sign in again".into(),
            ))
        };
        let Some(grant) = self.store.get::<OAuthGrant>(&claims.gid).await? else {
            return Ok(revoked());
        };
        if grant.revoked_at.is_some()
            || grant.user_id != claims.sub
            || grant.ai_client_id != claims.cid
        {
            return Ok(revoked());
        }
        let (client, user) = tokio::join!(
            self.store.get::<AiClient>(&grant.ai_client_id),
            self.store.get::<User>(&grant.user_id)
        );
        let (Some(user), Some(client)) = (user?, client?) else {
            return Ok(revoked());
        };
        if user.status != UserStatus::Active {
            return Ok(Err(AuthFailure::Refused(
                ClientCheck::UserDisabled(user.email).to_string(),
            )));
        }
        let token = Token {
            id: grant.id.clone(),
            user_id: user.id.clone(),
            name: client.name.clone(),
            prefix: "oauth".into(),
            hash: String::new(),
            created_at: grant.created_at,
            expires_at: i64::try_from(claims.exp)
                .ok()
                .map(|s| s.saturating_mul(1000)),
            last_used_at: None,
            revoked_at: None,
        };
        Ok(Ok(Caller {
            user,
            token,
            client,
        }))
    }

    /// What to record of a caller's use now: its token's and its AI
    /// client's last use are written at most once a minute each; `None`:
    /// nothing is due (most calls), so no task is spawned.
    fn use_due(&self, caller: &Caller) -> Option<UseRecord> {
        let now = now_ms();
        let personal = caller.client.origin == ClientOrigin::AccessToken;
        let (write_token, write_client) = {
            let mut last = self.last_written.lock().unwrap_or_else(|p| p.into_inner());
            let mut due = |key: String, stored: Option<i64>| {
                let previous = last.get(&key).copied().or(stored).unwrap_or(0);
                if now - previous < LAST_USED_RESOLUTION_MS {
                    return false;
                }
                last.insert(key, now);
                true
            };
            (
                personal
                    && due(
                        format!("token/{}", caller.token.id),
                        caller.token.last_used_at,
                    ),
                due(
                    format!("client/{}", caller.client.id),
                    caller.client.last_used_at,
                ),
            )
        };
        (write_token || write_client).then(|| UseRecord {
            now,
            token_id: write_token.then(|| caller.token.id.clone()),
            client_id: write_client.then(|| caller.client.id.clone()),
        })
    }

    /// Writes a [`UseRecord`] (an admin write: it waits for the change
    /// lock, so it runs off the request path).
    async fn record_use(&self, record: UseRecord) {
        let UseRecord {
            now,
            token_id,
            client_id,
        } = record;
        let result = self
            .store
            .write(|store| async move {
                let mut batch = Batch::default();
                if let Some(id) = &token_id
                    && let Some(mut current) = store.get::<Token>(id).await?
                {
                    current.last_used_at = Some(now);
                    batch.put(&current);
                }
                if let Some(id) = &client_id
                    && let Some(mut current) = store.get::<AiClient>(id).await?
                {
                    current.last_used_at = Some(now);
                    batch.put(&current);
                }
                Ok::<_, StoreError>((batch, ()))
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot record token use");
        }
    }
}

/// Last-use times due to be written (see [`Authenticator::use_due`]).
#[derive(Debug)]
struct UseRecord {
    /// The time to record (Unix milliseconds).
    now: i64,
    /// The personal access token to stamp, if due.
    token_id: Option<String>,
    /// The AI client to stamp, if due.
    client_id: Option<String>,
}

/// Axum middleware in front of `/mcp`.
pub async fn require_token(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match auth.authenticate(bearer).await {
        Ok(caller) => {
            if let Some(record) = auth.use_due(&caller) {
                let auth = auth.clone();
                tokio::spawn(async move { auth.record_use(record).await });
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(failure) => {
            let mut response = match failure {
                AuthFailure::Missing => unauthorized(&auth.metadata_url, None),
                AuthFailure::Refused(reason) => unauthorized(&auth.metadata_url, Some(&reason)),
                AuthFailure::Unavailable => unavailable(),
            };
            if !drain(request).await {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

/// Most bytes of a refused request's body read before answering.
const DRAIN_LIMIT: usize = 256 * 1024;

/// Reads the rest of a refused request's body (up to [`DRAIN_LIMIT`]) so
/// the client's keep-alive connection stays usable. hyper closes a
/// connection whose request body was left unread, and a client that reuses
/// it in the meantime (every OAuth client does: the 401 is followed at once
/// by metadata requests) sees "server disconnected without sending a
/// response". Returns false when the body was larger or broken: the answer
/// then says `Connection: close`.
async fn drain(request: Request) -> bool {
    axum::body::to_bytes(request.into_body(), DRAIN_LIMIT)
        .await
        .is_ok()
}
