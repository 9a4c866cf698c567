//! Authentication of MCP requests: the user's personal access token
//! (`Authorization: Bearer tgp_...`, issued by `UserService.IssueToken`).
//! Missing, unknown, revoked, expired tokens and disabled users get HTTP 401
//! with a `WWW-Authenticate` challenge (RFC 6750, section 3) and a body that
//! says what to do; nothing else is revealed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::crypto::sha256_hex;
use crate::model::{Token, User, UserStatus, now_ms};
use crate::store::{Batch, Store, StoreError};

/// The authenticated user of an MCP request, put in the request extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// The token used.
    pub token: Token,
}

/// How often a token's `last_used_at` is written at most (ms): saves a
/// database write per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Shared state of the middleware.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<Store>,
    /// token id -> last `last_used_at` written, to throttle writes.
    last_written: Mutex<HashMap<String, i64>>,
}

/// Why [`Authenticator::authenticate`] let a request through no further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// The credential is missing or not valid (HTTP 401).
    Refused(&'static str),
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

fn unauthorized(description: &str) -> Response {
    let challenge = format!(
        "Bearer realm=\"toolgate\", error=\"invalid_token\", error_description=\"{description}\""
    );
    let mut response = (
        StatusCode::UNAUTHORIZED,
        format!(
            "toolgate: {description}. Send `Authorization: Bearer <your toolgate access token>`; \
             ask your toolgate administrator for a token if you have none.\n"
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
    /// Builds the authenticator.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            last_written: Mutex::new(HashMap::new()),
        }
    }

    /// The caller of a bearer token, or why it is refused.
    ///
    /// Errors: [`AuthFailure::Refused`] with a short phrase that is safe to
    /// show (it never says whether a token exists);
    /// [`AuthFailure::Unavailable`] when the store cannot be read (the
    /// request fails closed, but the client is not told its token is bad).
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, AuthFailure> {
        let presented = bearer.ok_or(AuthFailure::Refused("missing access token"))?;
        let invalid = AuthFailure::Refused("invalid, expired or revoked access token");
        let hash = sha256_hex(presented.as_bytes());
        let lookup = async || -> Result<Option<Caller>, StoreError> {
            let Some(id) = self.store.token_id_by_hash(&hash).await? else {
                return Ok(None);
            };
            let Some(token) = self.store.get::<Token>(&id).await? else {
                return Ok(None);
            };
            let Some(user) = self.store.get::<User>(&token.user_id).await? else {
                return Ok(None);
            };
            Ok(Some(Caller { user, token }))
        };
        let caller = lookup()
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "token lookup failed");
                AuthFailure::Unavailable
            })?
            .ok_or(invalid)?;
        let now = now_ms();
        if caller.token.revoked_at.is_some()
            || caller.token.expires_at.is_some_and(|end| end <= now)
            || caller.user.status != UserStatus::Active
        {
            return Err(invalid);
        }
        Ok(caller)
    }

    /// Records that a token was used, at most once a minute per token.
    async fn touch(&self, token: &Token) {
        let now = now_ms();
        {
            let mut last = self.last_written.lock().unwrap_or_else(|p| p.into_inner());
            let previous = last
                .get(&token.id)
                .copied()
                .or(token.last_used_at)
                .unwrap_or(0);
            if now - previous < LAST_USED_RESOLUTION_MS {
                return;
            }
            last.insert(token.id.clone(), now);
        }
        let id = token.id.clone();
        let result = self
            .store
            .write(|store| async move {
                let mut batch = Batch::default();
                if let Some(mut current) = store.get::<Token>(&id).await? {
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
            // Off the request path: recording use is an admin write, which
            // waits for the change lock.
            let (auth, token) = (auth.clone(), caller.token.clone());
            tokio::spawn(async move { auth.touch(&token).await });
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(AuthFailure::Refused(reason)) => unauthorized(reason),
        Err(AuthFailure::Unavailable) => unavailable(),
    }
}
