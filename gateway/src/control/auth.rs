//! The admin bearer-token check on every `toolgate.v1` request.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tonic::service::Interceptor;
use tonic::{Request, Status};

// The metadata key automation may set to name itself in the audit log (the
// actor becomes `admin:<value>`) and its length limit: one definition for
// the daemon and its clients.
use toolgate_proto::admin::{ACTOR_HEADER, ACTOR_MAX_CHARS};

use crate::crypto::constant_time_eq;

/// The authenticated admin, put in request extensions by [`AdminAuth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor(pub String);

/// Interceptor: requires `authorization: Bearer <admin token>` and answers
/// UNAUTHENTICATED, revealing nothing else, when it is missing or wrong.
#[derive(Clone)]
pub(crate) struct AdminAuth {
    token: Arc<[u8]>,
    /// Unix second of the last "rejected" warning, so a flood of bad
    /// requests logs at most one line a second (the rest are counted).
    last_warning: Arc<AtomicI64>,
    suppressed: Arc<AtomicU64>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(<redacted>)")
    }
}

impl AdminAuth {
    /// Accepts requests bearing `token`.
    pub(crate) fn new(token: &str) -> Self {
        Self {
            token: token.as_bytes().into(),
            last_warning: Arc::new(AtomicI64::new(0)),
            suppressed: Arc::new(AtomicU64::new(0)),
        }
    }

    fn warn_rejected(&self, request: &Request<()>) {
        let now = crate::model::now_ms() / 1000;
        let last = self.last_warning.load(Ordering::Relaxed);
        if now > last
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(
                remote = ?request.remote_addr(),
                suppressed,
                "control API request with a missing or wrong admin token"
            );
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
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
                self.warn_rejected(&request);
                return Err(Status::unauthenticated("missing or invalid admin token"));
            }
        }
        let actor = match request.metadata().get(ACTOR_HEADER) {
            None => "admin".to_owned(),
            Some(value) => {
                let name = value.to_str().ok().filter(|v| {
                    !v.is_empty()
                        && v.len() <= ACTOR_MAX_CHARS
                        && v.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
                });
                match name {
                    Some(name) => format!("admin:{name}"),
                    None => {
                        return Err(Status::invalid_argument(format!(
                            "{ACTOR_HEADER}: must be 1 to {ACTOR_MAX_CHARS} of A-Z a-z 0-9 . _ @ -"
                        )));
                    }
                }
            }
        };
        request.extensions_mut().insert(Actor(actor));
        Ok(request)
    }
}

/// The actor of a request that passed [`AdminAuth`].
pub(crate) fn actor<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Actor>()
        .map_or_else(|| "admin".to_owned(), |a| a.0.clone())
}
