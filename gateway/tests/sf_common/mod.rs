//! Helpers for the Salesforce tool tests: an in-process sfsim org, an
//! access token from its OAuth flow (auto-consent, PKCE), and a tool
//! caller that checks every structured result against the tool's
//! `output_schema` in the catalog.

#![allow(dead_code, missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sfsim::{Running, SimConfig};
use sha2::{Digest, Sha256};
use toolgate_gateway::catalog;
use toolgate_gateway::salesforce::{
    self, Cursors, DescribeCache, Limits, Session, SfError, ToolOutput,
};

pub const CALLBACK: &str = "http://127.0.0.1:9/auth/callback";
pub const ANA: &str = "ana.souza@acme-demo.example";
pub const BEN_READ_ONLY: &str = "ben.okafor@acme-demo.example";
pub const API_VERSION: &str = "66.0";
/// The connection id cursors of [`Org`] are bound to.
pub const CONNECTION: &str = "user-ana.server-sf";

/// Reference records of the seeded org (`../shared/salesforce/`).
pub const EDGE: &str = "0015g00000Q1aACAAZ";
pub const RITA: &str = "0035g00000K9xYzAAJ";
pub const EDGE_OPPORTUNITY: &str = "0065g00000B7c8dAAB";

/// The `Id`s of a `records` array, in order.
pub fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect()
}

/// A started org, a token for one of its users, and the per-server
/// objects a gateway keeps (HTTP client, describe cache, caps).
pub struct Org {
    pub sim: Running,
    pub http: reqwest::Client,
    pub token: String,
    pub cache: DescribeCache,
    pub limits: Limits,
    pub cursors: Cursors,
    /// The connection id of this org's calls.
    pub connection_id: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Org {
    /// An org with the test seed, logged in as Ana.
    pub async fn start() -> Self {
        Self::start_with(ANA, |_| {}).await
    }

    /// An org with `edit` applied to the test config, logged in as
    /// `username`.
    pub async fn start_with(username: &str, edit: impl FnOnce(&mut SimConfig)) -> Self {
        let mut config = SimConfig::for_tests(CALLBACK);
        edit(&mut config);
        let sim = sfsim::start(config).await.unwrap();
        let token = access_token(&sim, username).await;
        Self {
            sim,
            http: reqwest::Client::new(),
            token,
            cache: DescribeCache::default(),
            limits: Limits::default(),
            cursors: Cursors::new([42; 32]),
            connection_id: CONNECTION.to_owned(),
        }
    }

    pub fn session(&self) -> Session<'_> {
        Session {
            connection_id: &self.connection_id,
            instance_url: &self.sim.instance_url,
            access_token: &self.token,
            api_version: API_VERSION,
            api_usage: None,
        }
    }

    /// Runs tool `name`; a successful result must match the tool's
    /// output schema.
    pub async fn call(&self, name: &str, args: Value) -> Result<ToolOutput, SfError> {
        self.call_with(&self.cache, &self.limits, name, args).await
    }

    pub async fn call_with(
        &self,
        cache: &DescribeCache,
        limits: &Limits,
        name: &str,
        args: Value,
    ) -> Result<ToolOutput, SfError> {
        let out = salesforce::call_tool(
            &self.http,
            &self.session(),
            cache,
            &self.cursors,
            limits,
            name,
            &args,
        )
        .await?;
        check_output_schema(name, &out.structured);
        Ok(out)
    }

    /// Runs tool `name` and returns its result, failing the test on error.
    pub async fn ok(&self, name: &str, args: Value) -> ToolOutput {
        match self.call(name, args).await {
            Ok(out) => out,
            Err(e) => panic!("{name} failed: {e}"),
        }
    }

    pub fn counter(&self, endpoint: &str) -> u64 {
        self.sim.counter(endpoint)
    }

    /// `POST /_sfsim/<path>` with a JSON body.
    pub async fn admin(&self, path: &str, body: Value) {
        let status = reqwest::Client::new()
            .post(format!("{}/_sfsim/{path}", self.sim.login_url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }
}

/// Checks `structured` against the catalog's output schema of `tool`.
pub fn check_output_schema(tool: &str, structured: &Value) {
    let entry = catalog::entry(catalog::SALESFORCE).unwrap();
    let def = entry.tools.iter().find(|t| t.name == tool).unwrap();
    let schema = def.output_schema.as_ref().unwrap();
    if let Err(e) = jsonschema::validate(schema, structured) {
        panic!("{tool} output does not match its output_schema: {e}\n{structured:#}");
    }
}

/// Runs sfsim's web-server flow with auto-consent and PKCE for
/// `username` and returns the access token.
pub async fn access_token(sim: &Running, username: &str) -> String {
    let app = &sim.sim.config.connected_app;
    let verifier = "v3ry-l0ng-c0de-verifier-for-pkce-tests-0123456789abcdef";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize =
        url::Url::parse(&format!("{}/services/oauth2/authorize", sim.login_url)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.consumer_key)
        .append_pair("redirect_uri", &app.callback_url)
        .append_pair("scope", "api refresh_token offline_access")
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", username);
    let response = no_redirects().get(authorize).send().await.unwrap();
    assert!(
        response.status().is_redirection(),
        "authorize for {username}: {}",
        response.status()
    );
    let location = response.headers()["location"].to_str().unwrap();
    let code = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("client_id", &app.consumer_key)
        .append_pair("client_secret", &app.consumer_secret)
        .append_pair("redirect_uri", &app.callback_url)
        .append_pair("code_verifier", verifier)
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The field name of an `InvalidArgument`, or a panic.
pub fn invalid_field(result: Result<ToolOutput, SfError>) -> (String, String) {
    match result {
        Err(SfError::InvalidArgument { field, message }) => (field, message),
        Err(other) => panic!("expected InvalidArgument, got {other:?}"),
        Ok(out) => panic!("expected InvalidArgument, got {}", out.text),
    }
}

/// `(status, errorCode, message, fields)` of an `Api` error, or a panic.
pub fn api_error(result: Result<ToolOutput, SfError>) -> (u16, String, String, Vec<String>) {
    match result {
        Err(SfError::Api {
            status,
            error_code,
            message,
            fields,
        }) => (status, error_code, message, fields),
        Err(other) => panic!("expected a Salesforce API error, got {other:?}"),
        Ok(out) => panic!("expected a Salesforce API error, got {}", out.text),
    }
}
