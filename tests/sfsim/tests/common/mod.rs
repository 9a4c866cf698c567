//! Helpers for sfsim's tests: start an org on port 0, run the OAuth flow,
//! call the REST API.

#![allow(dead_code, missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::redirect::Policy;
use serde_json::Value;
use sfsim::{Running, SimConfig};
use sha2::{Digest, Sha256};

pub const CALLBACK: &str = "http://127.0.0.1:9/auth/callback";

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub async fn start() -> Running {
    start_with(|_| {}).await
}

pub async fn start_with(edit: impl FnOnce(&mut SimConfig)) -> Running {
    let mut config = SimConfig::for_tests(CALLBACK);
    edit(&mut config);
    sfsim::start(config).await.unwrap()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = "v3ry-l0ng-c0de-verifier-for-pkce-tests-0123456789abcdef".to_owned();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The authorize URL for `login_hint` with PKCE and a state.
pub fn authorize_url(sim: &Running, login_hint: &str, pkce: &Pkce) -> String {
    let app = &sim.sim.config.connected_app;
    let mut url = url::Url::parse(&format!("{}/services/oauth2/authorize", sim.login_url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.consumer_key)
        .append_pair("redirect_uri", &app.callback_url)
        .append_pair("scope", "api refresh_token offline_access")
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", login_hint);
    url.to_string()
}

/// Query parameters of a redirect's Location.
pub fn location_params(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response.headers()["location"].to_str().unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Runs the web-server flow with auto-consent; returns the code.
pub async fn code_for(sim: &Running, username: &str, pkce: &Pkce) -> String {
    let response = client()
        .get(authorize_url(sim, username, pkce))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "{:?}", response.text().await);
    param(&location_params(&response), "code").unwrap()
}

pub async fn exchange(sim: &Running, code: &str, verifier: &str) -> reqwest::Response {
    let app = &sim.sim.config.connected_app;
    client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &app.consumer_key),
            ("client_secret", &app.consumer_secret),
            ("redirect_uri", &app.callback_url),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn refresh(sim: &Running, refresh_token: &str) -> reqwest::Response {
    let app = &sim.sim.config.connected_app;
    client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &app.consumer_key),
            ("client_secret", &app.consumer_secret),
        ])
        .send()
        .await
        .unwrap()
}

/// A full token response for `username`.
pub async fn login(sim: &Running, username: &str) -> Value {
    let pkce = pkce();
    let code = code_for(sim, username, &pkce).await;
    let response = exchange(sim, &code, &pkce.verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub const ANA: &str = "ana.souza@acme-demo.example";
pub const BEN_READ_ONLY: &str = "ben.okafor@acme-demo.example";

/// A REST call on the instance with a bearer token.
pub fn rest(
    sim: &Running,
    token: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}{path}", sim.instance_url))
        .bearer_auth(token)
}

pub async fn post_admin(sim: &Running, path: &str, body: Value) -> Value {
    client()
        .post(format!("{}/_sfsim/{path}", sim.login_url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}
