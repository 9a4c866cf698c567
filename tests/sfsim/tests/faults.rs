//! Every fault switch of `/_sfsim/`, and the request counters.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const LIMITS: &str = "/services/data/v66.0/limits";

async fn error_code(r: reqwest::RequestBuilder) -> (u16, String) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body[0]["errorCode"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or("")
        .to_owned();
    (status, code)
}

#[tokio::test]
async fn expired_access_tokens_get_invalid_session_and_refresh_recovers() {
    let sim = start().await;
    let t = login(&sim, ANA).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        rest(&sim, access, Method::GET, LIMITS)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let expired = post_admin(&sim, "expire-access-tokens", json!({})).await;
    assert_eq!(expired["expired"], 1);
    assert_eq!(
        error_code(rest(&sim, access, Method::GET, LIMITS)).await,
        (401, "INVALID_SESSION_ID".into())
    );
    let fresh: Value = refresh(&sim, t["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        rest(&sim, fresh, Method::GET, LIMITS)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn revoked_refresh_tokens_get_invalid_grant_per_user() {
    let sim = start().await;
    let ana = login(&sim, ANA).await;
    let ben = login(&sim, BEN_READ_ONLY).await;
    let revoked = post_admin(&sim, "revoke-refresh-tokens", json!({"username": ANA})).await;
    assert_eq!(revoked["revoked"], 1);
    let dead = refresh(&sim, ana["refresh_token"].as_str().unwrap()).await;
    assert_eq!(dead.status(), 400);
    assert_eq!(
        dead.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        refresh(&sim, ben["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_concurrent_refresh_of_the_same_token_is_rejected_when_switched_on() {
    let sim = start().await;
    let t = login(&sim, ANA).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    post_admin(
        &sim,
        "faults",
        json!({"reject_concurrent_refresh": true, "refresh_hold_ms": 1000}),
    )
    .await;
    let (a, b) = tokio::join!(refresh(&sim, &rt), refresh(&sim, &rt));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    assert_eq!(sim.counter("token:refresh_token"), 2);
    assert_eq!(sim.counter("token:refresh_token:rejected_concurrent"), 1);
    // Once the first is answered, the token may be refreshed again.
    post_admin(&sim, "faults", json!({"refresh_hold_ms": 0})).await;
    assert_eq!(refresh(&sim, &rt).await.status(), 200);
}

async fn admin_state(sim: &sfsim::Running) -> Value {
    client()
        .get(format!("{}/_sfsim/state", sim.login_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_that_disconnects_during_the_hold_leaves_no_refresh_in_flight() {
    let sim = start().await;
    let t = login(&sim, ANA).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    post_admin(
        &sim,
        "faults",
        json!({"reject_concurrent_refresh": true, "refresh_hold_ms": 30_000}),
    )
    .await;
    let app = &sim.sim.config.connected_app;
    let gone = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", &app.consumer_key),
            ("client_secret", &app.consumer_secret),
        ])
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(gone.unwrap_err().is_timeout());
    // The server notices the closed connection and drops the handler; the
    // in-flight mark must go with it, long before the 30 s hold ends.
    let started = std::time::Instant::now();
    loop {
        let in_flight = admin_state(&sim).await["refreshes_in_flight"].clone();
        if in_flight == 0 {
            break;
        }
        assert_eq!(in_flight, 1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the refresh token stayed marked in flight"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    post_admin(&sim, "faults", json!({"refresh_hold_ms": 0})).await;
    let again = refresh(&sim, &rt).await;
    assert_eq!(again.status(), 200);
    assert_eq!(sim.counter("token:refresh_token:rejected_concurrent"), 0);
}

#[tokio::test]
async fn latency_delays_rest_calls_but_not_refreshes() {
    let sim = start().await;
    let t = login(&sim, ANA).await;
    let access = t["access_token"].as_str().unwrap();
    post_admin(
        &sim,
        "faults",
        json!({"latency_ms": 400, "latency_every": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    let response = rest(&sim, access, Method::GET, LIMITS)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        took >= std::time::Duration::from_millis(400),
        "took {took:?}"
    );
    // Token calls are not REST calls: a minute of REST latency does not
    // touch a refresh (which would time out after 10 s if it did).
    post_admin(&sim, "faults", json!({"latency_ms": 60_000})).await;
    let app = &sim.sim.config.connected_app;
    let refreshed = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &app.consumer_key),
            ("client_secret", &app.consumer_secret),
        ])
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
}

#[tokio::test]
async fn api_limit_and_server_errors() {
    let sim = start().await;
    let access = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    post_admin(&sim, "faults", json!({"api_limit_exhausted": true})).await;
    assert_eq!(
        error_code(rest(&sim, &access, Method::GET, LIMITS)).await,
        (403, "REQUEST_LIMIT_EXCEEDED".into())
    );
    post_admin(
        &sim,
        "faults",
        json!({"api_limit_exhausted": false, "server_error_every": 2}),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            rest(&sim, &access, Method::GET, LIMITS)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503]);
    assert_eq!(sim.counter("injected_server_error"), 2);
    let bad = post_admin(&sim, "faults", json!({"no_such_switch": true})).await;
    assert!(bad["error"].as_str().unwrap().contains("no_such_switch"));
}

#[tokio::test]
async fn a_changed_instance_url_comes_with_the_next_token_response() {
    let sim = start().await;
    let t = login(&sim, ANA).await;
    assert_eq!(t["instance_url"], sim.instance_url.as_str());
    post_admin(&sim, "faults", json!({"change_instance_url": true})).await;
    let next: Value = refresh(&sim, t["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let moved = next["instance_url"].as_str().unwrap();
    assert_ne!(moved, sim.instance_url);
    assert!(moved.starts_with("http://localhost:"));
    let response = client()
        .get(format!("{moved}{LIMITS}"))
        .bearer_auth(next["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sim.counter("host:localhost"), 1);
    let state: Value = client()
        .get(format!("{}/_sfsim/state", sim.login_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["counters"]["limits"], 1);
    assert_eq!(state["counters"]["token:authorization_code"], 1);
}
