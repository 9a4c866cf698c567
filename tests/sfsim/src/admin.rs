//! The test-control endpoints under `/_sfsim/`: fault switches, one-shot
//! actions (expire access tokens, revoke refresh tokens), and request
//! counters. They have no authentication: sfsim is a loopback test tool.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{Faults, Sim};

/// `GET /_sfsim/state`: counters, faults, API usage, instance URL, how
/// many tokens, in-flight refreshes and query cursors are live, and the
/// `traceparent` headers REST requests sent (`[path, value]`, oldest
/// first).
pub async fn state(State(sim): State<Arc<Sim>>) -> Response {
    let s = sim.lock();
    Json(json!({
        "counters": s.counters,
        "faults": s.faults,
        "api_usage": s.api_usage,
        "instance_url": s.instance_url,
        "live_access_tokens": s.access_tokens.len(),
        "live_refresh_tokens": s.refresh_tokens.len(),
        "refreshes_in_flight": s.refreshing.len(),
        "live_query_cursors": s.locators.len(),
        "traceparents": s.traceparents,
    }))
    .into_response()
}

/// `POST /_sfsim/faults`: merges the given switches into the current ones
/// (see [`Faults`] for the names) and returns the result.
pub async fn set_faults(State(sim): State<Arc<Sim>>, Json(patch): Json<Value>) -> Response {
    let mut s = sim.lock();
    let mut current = serde_json::to_value(&s.faults).unwrap_or_default();
    if let (Some(target), Some(source)) = (current.as_object_mut(), patch.as_object()) {
        for (k, v) in source {
            target.insert(k.clone(), v.clone());
        }
    }
    match serde_json::from_value::<Faults>(current) {
        Ok(faults) => {
            s.faults = faults;
            Json(json!(s.faults)).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `POST /_sfsim/expire-access-tokens`: every live access token stops
/// working (the next REST call gets 401 `INVALID_SESSION_ID`).
pub async fn expire_access_tokens(State(sim): State<Arc<Sim>>) -> Response {
    let mut s = sim.lock();
    let n = s.access_tokens.len();
    s.access_tokens.clear();
    Json(json!({"expired": n})).into_response()
}

/// Body of `POST /_sfsim/revoke-refresh-tokens`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeRequest {
    /// Only this user's tokens; absent: everyone's.
    #[serde(default)]
    pub username: Option<String>,
}

/// `POST /_sfsim/revoke-refresh-tokens`: refresh tokens (and their access
/// tokens) die; the next refresh gets `invalid_grant`.
pub async fn revoke_refresh_tokens(
    State(sim): State<Arc<Sim>>,
    body: Option<Json<RevokeRequest>>,
) -> Response {
    let username = body.and_then(|b| b.0.username);
    let mut s = sim.lock();
    let user = username.as_ref().and_then(|u| sim.config.user_index(u));
    if username.is_some() && user.is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such user"})),
        )
            .into_response();
    }
    let doomed: Vec<String> = s
        .refresh_tokens
        .iter()
        .filter(|(_, g)| user.is_none_or(|u| g.user == u))
        .map(|(t, _)| t.clone())
        .collect();
    for token in &doomed {
        s.refresh_tokens.remove(token);
        s.access_tokens
            .retain(|_, a| a.refresh_token.as_ref() != Some(token));
    }
    Json(json!({"revoked": doomed.len()})).into_response()
}

/// `POST /_sfsim/reset-counters`.
pub async fn reset_counters(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().counters.clear();
    StatusCode::NO_CONTENT.into_response()
}
