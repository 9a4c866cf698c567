//! HTTP edges: unknown paths, wrong methods, non-form token bodies, the
//! authorize redirect status, bounded counters and codes, and config
//! validation.

mod common;

use chrono::{Duration, Utc};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use sfsim::SimConfig;
use sfsim::state::AuthCode;

async fn status_json(r: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let limit = response
        .headers()
        .get("sforce-limit-info")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        limit,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn unknown_paths_are_salesforce_404s() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let not_found =
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]);
    for path in [
        "/nope",
        "/services/data/v66.0/nope/a/b/c",
        "/services/apexrest/x",
    ] {
        let (status, limit, body) = status_json(rest(&sim, &token, Method::GET, path)).await;
        assert_eq!((status, &body), (404, &not_found), "{path}");
        assert_eq!(limit.as_deref(), Some("api-usage=0/15000"), "{path}");
    }
    let (status, limit, body) = status_json(client().get(format!("{}/nope", sim.login_url))).await;
    assert_eq!((status, body), (404, not_found));
    assert_eq!(limit, None, "the login host sends no limit header");
}

#[tokio::test]
async fn wrong_methods_are_salesforce_405s() {
    let sim = start().await;
    let token = login(&sim, ANA).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, limit, body) = status_json(rest(
        &sim,
        &token,
        Method::DELETE,
        "/services/data/v66.0/query?q=SELECT+Id+FROM+Account",
    ))
    .await;
    assert_eq!(status, 405);
    assert_eq!(
        body,
        json!([{"errorCode": "METHOD_NOT_ALLOWED", "message": "HTTP Method 'DELETE' not allowed. Allowed are GET,HEAD"}])
    );
    assert!(limit.is_some());
    let (status, _, body) = status_json(rest(
        &sim,
        &token,
        Method::PUT,
        "/services/data/v66.0/sobjects/Account/001000000000000",
    ))
    .await;
    assert_eq!(status, 405);
    let message = body[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("HTTP Method 'PUT' not allowed. Allowed are "),
        "{message}"
    );
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(message.contains(method), "{message}");
    }
    let (status, _, body) =
        status_json(client().get(format!("{}/services/oauth2/token", sim.login_url))).await;
    assert_eq!(status, 405);
    assert_eq!(
        body[0]["message"],
        "HTTP Method 'GET' not allowed. Allowed are POST"
    );
}

#[tokio::test]
async fn token_endpoint_answers_non_form_bodies_with_an_oauth_error() {
    let sim = start().await;
    let app = &sim.sim.config.connected_app;
    let (status, _, body) = status_json(
        client()
            .post(format!("{}/services/oauth2/token", sim.login_url))
            .json(&json!({
                "grant_type": "refresh_token",
                "client_id": app.consumer_key,
                "client_secret": app.consumer_secret,
            })),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        )
    );
    let (status, _, body) = status_json(
        client()
            .post(format!("{}/services/oauth2/revoke", sim.login_url))
            .json(&json!({"token": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token"))
    );
}

#[tokio::test]
async fn authorize_redirects_with_302() {
    let sim = start().await;
    let response = client()
        .get(authorize_url(&sim, ANA, &pkce()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(CALLBACK)
    );
}

#[tokio::test]
async fn counters_do_not_grow_with_client_input() {
    let sim = start().await;
    for grant in ["password", "junk-1", "junk-2"] {
        client()
            .post(format!("{}/services/oauth2/token", sim.login_url))
            .form(&[("grant_type", grant)])
            .send()
            .await
            .unwrap();
    }
    for host in [
        "evil.example",
        "another.example:80",
        "127.0.0.1",
        "localhost",
    ] {
        client()
            .get(format!("{}/services/data", sim.instance_url))
            .header("host", host)
            .send()
            .await
            .unwrap();
    }
    let counters = sim.sim.lock().counters.clone();
    assert_eq!(counters.get("token:other"), Some(&3));
    assert_eq!(counters.get("host:other"), Some(&2));
    assert_eq!(counters.get("host:127.0.0.1"), Some(&1));
    assert_eq!(counters.get("host:localhost"), Some(&1));
    assert!(
        counters
            .keys()
            .all(|k| !k.contains("junk") && !k.contains("example") && !k.contains("password")),
        "{counters:?}"
    );
}

#[tokio::test]
async fn issuing_a_code_purges_expired_ones() {
    let sim = start().await;
    sim.sim.lock().codes.insert(
        "aPrxEXPIRED".into(),
        AuthCode {
            user: 0,
            redirect_uri: CALLBACK.into(),
            code_challenge: None,
            scopes: vec!["api".into()],
            expires_at: Utc::now() - Duration::seconds(1),
        },
    );
    let fresh = code_for(&sim, ANA, &pkce()).await;
    let codes = sim.sim.lock().codes.clone();
    assert!(!codes.contains_key("aPrxEXPIRED"));
    assert_eq!(codes.keys().collect::<Vec<_>>(), [&fresh]);
}

#[tokio::test]
async fn start_rejects_invalid_configs_with_a_clear_error() {
    type Edit = fn(&mut SimConfig);
    let cases: [(&str, Edit); 4] = [
        ("at least one user", |c| c.users.clear()),
        ("listed more than once", |c| {
            let mut twin = c.users[0].clone();
            twin.username = twin.username.to_uppercase();
            c.users.push(twin);
        }),
        ("is not a URL", |c| {
            c.connected_app.callback_url = "not a url".into()
        }),
        ("query_batch_size must be at least 1", |c| {
            c.query_batch_size = 0
        }),
    ];
    for (message, edit) in cases {
        let mut config = SimConfig::for_tests(CALLBACK);
        edit(&mut config);
        let error = sfsim::start(config).await.unwrap_err().to_string();
        assert!(error.contains(message), "{error}");
        assert!(error.starts_with("invalid sfsim config"), "{error}");
    }
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sfsim.example.toml");
    SimConfig::load(&example).unwrap().validate().unwrap();
    let demo = SimConfig::demo();
    demo.validate().unwrap();
    assert_eq!(demo.login_addr.to_string(), "127.0.0.1:9410");
    assert_eq!(demo.instance_addr.to_string(), "127.0.0.1:9411");
    assert!(!demo.auto_consent);
    assert_eq!(demo.seed_accounts, 600);
    assert_eq!(
        demo.connected_app.consumer_key,
        "3MVG9sfsim.demo.consumer.key"
    );
}
