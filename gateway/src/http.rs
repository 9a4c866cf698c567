//! The public HTTP listener's router: health and readiness today; MCP and
//! the OAuth callback are mounted here as they arrive.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::store::Store;

/// Builds the router. `/healthz` answers 200 while the process runs;
/// `/readyz` answers 200 when the database answers reads, else 503.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(store)
}

async fn readyz(State(store): State<Arc<Store>>) -> (StatusCode, &'static str) {
    if store.is_healthy() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
}
