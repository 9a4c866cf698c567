//! The admin bearer-token check on every `toolgate.v1` request.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::crypto::constant_time_eq;

/// Metadata key automation may set to name itself in the audit log: the
/// actor becomes `admin:<value>` (at most 64 characters of `[A-Za-z0-9._@-]`).
pub const ACTOR_HEADER: &str = "x-toolgate-actor";

/// The authenticated admin, put in request extensions by [`AdminAuth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// Interceptor: requires `authorization: Bearer <admin token>` and answers
/// UNAUTHENTICATED, revealing nothing else, when it is missing or wrong.
#[derive(Clone)]
pub struct AdminAuth {
    token: Arc<[u8]>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(<redacted>)")
    }
}

impl AdminAuth {
    /// Accepts requests bearing `token`.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.as_bytes().into(),
        }
    }
}

impl Interceptor for AdminAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        match presented {
            Some(token) if constant_time_eq(token.as_bytes(), &self.token) => {}
            _ => {
                tracing::warn!(
                    remote = ?request.remote_addr(),
                    "control API request with a missing or wrong admin token"
                );
                return Err(Status::unauthenticated(
                    "missing or invalid admin token: send `authorization: Bearer <token from <data-dir>/admin.token>`",
                ));
            }
        }
        let name = request
            .metadata()
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
            });
        let actor = match name {
            Some(name) => format!("admin:{name}"),
            None => "admin".to_owned(),
        };
        request.extensions_mut().insert(Actor(actor));
        Ok(request)
    }
}

/// The actor of a request that passed [`AdminAuth`].
pub fn actor<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Actor>()
        .map_or_else(|| "admin".to_owned(), |a| a.0.clone())
}
