//! toolgated as the OAuth 2.1 authorization server of its `/mcp` (MCP
//! "Authorization"): metadata, the authorization code flow with PKCE by
//! hand over HTTP (authorize, one-time sign-in link, consent, token),
//! refresh rotation with reuse detection, Client ID Metadata Documents
//! served over https on loopback, Dynamic Client Registration, and the
//! refusals: wrong audience, missing and plain PKCE, reused codes, closed
//! clients, disallowed client types, disabled users.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::oauth_flow::{
    Browser, REDIRECT, VERIFIER, authorize_path, exchange, hidden, query, refresh, register,
    token_request,
};
use common::raw_mcp::{INITIALIZE, list_tools, post, send};
use common::{Fixture, Org};
use serde_json::{Value, json};
use toolgate_gateway::model::{AiClient, ClientState, ClientType, OAuthGrant, Settings};
use toolgate_gateway::store::{Batch, StoreError};
use toolgate_proto::v1;

async fn sign_in_link(admin: &mut common::Clients, user_id: &str) -> String {
    admin
        .users
        .issue_sign_in_link(v1::IssueSignInLinkRequest {
            user_id: user_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .url
}

/// Authorize as `user_id` (signing in through a one-time link) up to the
/// consent page; returns the browser and the page.
async fn to_consent(
    base: &str,
    admin: &mut common::Clients,
    user_id: &str,
    client_id: &str,
) -> (Browser, String) {
    let mut browser = Browser::new(base);
    let (status, location, _) = browser.get(&authorize_path(base, client_id, &[])).await;
    assert_eq!(status, 303, "not signed in: to the sign-in page");
    let location = location.unwrap();
    assert!(
        location.starts_with("/signin?return=%2Foauth%2Fauthorize%3F"),
        "{location}"
    );
    let return_to = query(&format!("{base}{location}"))["return"].clone();
    let link = sign_in_link(admin, user_id).await;
    let (status, _, page) = browser.get(&link).await;
    assert_eq!(status, 200, "the link page does not use the link: {page}");
    let (status, location, body) = browser.post(&link, &[("return", &return_to)]).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(return_to.as_str())),
        "{body}"
    );
    assert!(browser.cookie.is_some());
    let (status, _, consent) = browser.get(&return_to).await;
    assert_eq!(status, 200, "{consent}");
    (browser, consent)
}

/// Authorize as `user_id` (signed in with a one-time link) when toolgate
/// refuses before the consent page: the error parameters it redirects the
/// client to.
async fn refused_before_consent(
    base: &str,
    admin: &mut common::Clients,
    user_id: &str,
    client_id: &str,
) -> HashMap<String, String> {
    let mut browser = Browser::new(base);
    let (_, location, _) = browser.get(&authorize_path(base, client_id, &[])).await;
    let return_to = query(&format!("{base}{}", location.unwrap()))["return"].clone();
    let link = sign_in_link(admin, user_id).await;
    browser.post(&link, &[("return", &return_to)]).await;
    let (status, location, body) = browser.get(&return_to).await;
    assert_eq!(status, 303, "no consent page: {body}");
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    query(&location)
}

/// The whole flow to a code.
async fn code_for(
    base: &str,
    admin: &mut common::Clients,
    user_id: &str,
    client_id: &str,
) -> String {
    let (mut browser, consent) = to_consent(base, admin, user_id, client_id).await;
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
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let params = query(&location);
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], base);
    params
        .get("code")
        .unwrap_or_else(|| panic!("no code in {location}"))
        .clone()
}

/// The status of an `initialize` with `token`, and its body.
async fn mcp_status(mcp_url: &str, token: &str) -> (u16, String) {
    let answer = send(post(mcp_url, token, None, INITIALIZE)).await;
    (answer.status, answer.body)
}

fn base_of<S>(f: &Fixture<S>) -> String {
    f.mcp_url.trim_end_matches("/mcp").to_owned()
}

async fn edit_settings<S>(f: &Fixture<S>, edit: impl FnOnce(&mut Settings)) {
    let mut settings = f.daemon.store.settings().await.unwrap();
    edit(&mut settings);
    f.daemon
        .store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put_settings(&settings);
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
}

async fn edit_client<S>(f: &Fixture<S>, id: &str, edit: impl FnOnce(&mut AiClient)) {
    let mut client: AiClient = f.daemon.store.get(id).await.unwrap().unwrap();
    edit(&mut client);
    f.daemon
        .store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&client);
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
}

async fn oauth_client_of<S>(f: &Fixture<S>, user_id: &str) -> AiClient {
    f.daemon
        .store
        .list::<AiClient>()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.owner_user_id == user_id && c.client_id.is_some())
        .unwrap()
}

#[tokio::test]
async fn metadata_and_the_401_challenge_point_clients_at_sign_in() {
    let f = Fixture::start().await;
    let base = base_of(&f);
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let prm: Value = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prm["resource"], format!("{base}/mcp"));
        assert_eq!(prm["authorization_servers"], json!([base]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let asm: Value = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(asm["issuer"], base);
        assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(asm["response_types_supported"], json!(["code"]));
        assert_eq!(
            asm["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(asm["client_id_metadata_document_supported"], json!(true));
        assert_eq!(
            asm["authorization_response_iss_parameter_supported"],
            json!(true)
        );
        assert_eq!(
            asm["registration_endpoint"],
            format!("{base}/oauth/register")
        );
        assert_eq!(asm["revocation_endpoint"], format!("{base}/oauth/revoke"));
        assert!(
            asm["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("none"))
        );
    }
    // MCP 2025-03-26's fallbacks at the root: /authorize goes on to the one
    // authorization endpoint; /token and /register are the same endpoints.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects
        .get(format!("{base}/authorize?client_id=x&state=s%20t"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 307);
    assert_eq!(
        root.headers()["location"],
        "/oauth/authorize?client_id=x&state=s%20t"
    );
    for path in ["/token", "/oauth/token"] {
        let refused: Value = http
            .post(format!("{base}{path}"))
            .form(&[("grant_type", "password")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            refused["error"], "unsupported_grant_type",
            "{path}: {refused}"
        );
    }
    // Browser-based clients (the Inspector's web UI) may call the token,
    // registration and revocation endpoints from any origin.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/oauth/token"))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let cross_origin = http
        .post(format!("{base}/oauth/register"))
        .header("origin", "http://localhost:6274")
        .json(&json!({"redirect_uris": [REDIRECT], "client_name": "Browser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_origin.status(), 201);
    assert_eq!(cross_origin.headers()["access-control-allow-origin"], "*");
    let registered = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "client_name": "Root"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let metadata = format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    let missing = http.post(&f.mcp_url).body(INITIALIZE).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let challenge = missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&metadata) && !challenge.contains("error="),
        "{challenge}"
    );
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("Sign in with an MCP client")
    );
    let bad = send(post(&f.mcp_url, "not-a-token", None, INITIALIZE)).await;
    assert_eq!(bad.status, 401);
    let challenge = bad.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&metadata) && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn the_code_flow_by_hand_lists_tools_refreshes_and_detects_reuse() {
    let mut f = Fixture::<Org>::salesforce(|_| {}).await;
    let base = base_of(&f);
    let read = f.toolset(v1::ToolsetKind::ReadOnly).await;
    let (user_id, _, pat) = f.user("ana@example.com", &read).await;
    let client_id = register(&base, "Hand-rolled client").await;
    let (_, consent) = to_consent(&base, &mut f.admin, &user_id, &client_id).await;
    assert!(
        consent.contains("Hand-rolled client") && consent.contains("127.0.0.1"),
        "{consent}"
    );
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (status, tokens) = exchange(&base, &client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh1 = tokens["refresh_token"].as_str().unwrap();
    let with_pat = list_tools(&f.mcp_url, &pat).await;
    assert!(!with_pat.is_empty());
    assert_eq!(list_tools(&f.mcp_url, access).await, with_pat);

    // The AI client record: named after the client, Personal, used.
    let ai = oauth_client_of(&f, &user_id).await;
    assert_eq!(
        (ai.name.as_str(), ai.client_type, ai.state),
        (
            "Hand-rolled client",
            ClientType::Personal,
            ClientState::Active
        )
    );

    // A code works once; its second use revokes what the first issued.
    let (status, again) = exchange(&base, &client_id, &code).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again}"
    );
    assert_eq!(mcp_status(&f.mcp_url, access).await.0, 401);
    let (status, _) = refresh(&base, &client_id, refresh1).await;
    assert_eq!(status, 400);

    // A new sign-in; refresh rotates; a used refresh token revokes the
    // family, including the access token the rotation issued.
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (_, tokens) = exchange(&base, &client_id, &code).await;
    let refresh1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(&base, &client_id, &refresh1).await;
    assert_eq!(status, 200, "{rotated}");
    let refresh2 = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(refresh2, refresh1);
    let access2 = rotated["access_token"].as_str().unwrap();
    assert_eq!(list_tools(&f.mcp_url, access2).await, with_pat);
    let (status, reused) = refresh(&base, &client_id, &refresh1).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        reused["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let (status, body) = mcp_status(&f.mcp_url, access2).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");
    let (status, _) = refresh(&base, &client_id, refresh2).await;
    assert_eq!(
        status, 400,
        "the rotated refresh token died with its family"
    );

    // RFC 7009 revocation: a refresh token with its grant id but a made-up
    // secret revokes nothing; the real one ends the grant.
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (_, tokens) = exchange(&base, &client_id, &code).await;
    let live_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let live_access = tokens["access_token"].as_str().unwrap().to_owned();
    let (grant_id, _) = live_refresh
        .strip_prefix("tgr_")
        .unwrap()
        .split_once('.')
        .unwrap();
    let revoke = |token: String| {
        let base = base.clone();
        let client_id = client_id.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/oauth/revoke"))
                .form(&[("token", token.as_str()), ("client_id", client_id.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(revoke(format!("tgr_{grant_id}.forged")).await, 200);
    assert_eq!(
        mcp_status(&f.mcp_url, &live_access).await.0,
        200,
        "a forged token revoked nothing"
    );
    assert_eq!(revoke(live_refresh.clone()).await, 200);
    assert_eq!(mcp_status(&f.mcp_url, &live_access).await.0, 401);
    assert_eq!(refresh(&base, &client_id, &live_refresh).await.0, 400);

    let grants = f.daemon.store.list::<OAuthGrant>().await.unwrap();
    assert!(
        grants
            .iter()
            .any(|g| g.revoked_reason == "refresh token reuse")
    );
    assert!(
        grants
            .iter()
            .any(|g| g.revoked_reason == "authorization code reused")
    );
}

#[tokio::test]
async fn authorization_requests_without_pkce_or_resource_are_refused() {
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let user_id = f.create_user("ben@example.com").await;
    let client_id = register(&base, "Client").await;
    let link = sign_in_link(&mut f.admin, &user_id).await;
    let mut browser = Browser::new(&base);
    let (status, location, _) = browser.post(&link, &[]).await;
    assert_eq!(
        (status, location),
        (200, None),
        "signed in, no return: a page"
    );
    let other = "https://elsewhere.example/mcp";
    for (extra, error, says) in [
        (
            vec![("code_challenge", "")],
            "invalid_request",
            "PKCE is required",
        ),
        (
            vec![("code_challenge_method", "plain")],
            "invalid_request",
            "must be S256",
        ),
        (
            vec![("code_challenge_method", "")],
            "invalid_request",
            "must be S256",
        ),
        (
            vec![("resource", "")],
            "invalid_request",
            "resource is required",
        ),
        (
            vec![("resource", other)],
            "invalid_target",
            "resource must be",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
            "code",
        ),
    ] {
        let (status, location, body) = browser
            .get(&authorize_path(&base, &client_id, &extra))
            .await;
        assert_eq!(status, 303, "{extra:?}: {body}");
        let params = query(&location.unwrap());
        assert_eq!(params["error"], error, "{extra:?}");
        assert!(
            params["error_description"].contains(says),
            "{extra:?}: {params:?}"
        );
        assert_eq!(
            (params["state"].as_str(), params["iss"].as_str()),
            ("st-123", base.as_str())
        );
    }
    // Before the redirect URI is trusted: a page, never a redirect.
    for extra in [
        vec![("redirect_uri", "https://attacker.example/cb")],
        vec![("client_id", "no-such-client")],
    ] {
        let (status, location, body) = browser
            .get(&authorize_path(&base, &client_id, &extra))
            .await;
        assert_eq!((status, location), (400, None), "{extra:?}");
        assert!(
            body.contains("registered") || body.contains("unknown client_id"),
            "{body}"
        );
    }
    // A loopback redirect URI may use any port (RFC 8252 section 7.3).
    let (status, _, body) = browser
        .get(&authorize_path(
            &base,
            &client_id,
            &[("redirect_uri", "http://127.0.0.1:50123/callback")],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn tokens_are_for_this_mcp_only() {
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let user_id = f.create_user("cy@example.com").await;
    let client_id = register(&base, "Client").await;
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (status, error) = token_request(
        &base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", "https://elsewhere.example/mcp"),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_target")),
        "{error}"
    );
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (status, error) = token_request(
        &base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            (
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier-0000",
            ),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant")),
        "{error}"
    );
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE")
    );

    // A token this daemon signed, shown to another daemon with the same
    // master key but another public URL: another audience.
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (_, tokens) = exchange(&base, &client_id, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(&f.mcp_url, &access).await.0, 200);
    let key = std::fs::read_to_string(f.data_dir.join("master.key")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(&dir.path().join("data"));
    let listeners = toolgate_gateway::app::Listeners::bind(&config)
        .await
        .unwrap();
    config.public_url = Some(format!("http://{}", listeners.http.local_addr().unwrap()));
    let secrets = toolgate_gateway::config::Secrets {
        master_key: Some(key.trim().to_owned()),
        admin_token: None,
    };
    let other = toolgate_gateway::app::start(&config, &secrets, listeners)
        .await
        .unwrap();
    let other_mcp = format!("http://{}/mcp", other.http_addr);
    let (status, body) = mcp_status(&other_mcp, &access).await;
    assert_eq!(status, 401);
    assert!(body.contains("another resource (audience)"), "{body}");
    other.stop().await.unwrap();
}

#[tokio::test]
async fn disabled_users_closed_clients_and_disallowed_types_stop_on_the_next_call() {
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let user_id = f.create_user("dee@example.com").await;
    let client_id = register(&base, "Client").await;
    let code = code_for(&base, &mut f.admin, &user_id, &client_id).await;
    let (_, tokens) = exchange(&base, &client_id, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(&f.mcp_url, &access).await.0, 200);
    let ai = oauth_client_of(&f, &user_id).await;

    // Closed client: refused on the next call, and at sign-in before the
    // consent page.
    edit_client(&f, &ai.id, |c| c.state = ClientState::Closed).await;
    let (status, body) = mcp_status(&f.mcp_url, &access).await;
    assert_eq!(status, 401);
    assert!(body.contains("is closed"), "{body}");
    let params = refused_before_consent(&base, &mut f.admin, &user_id, &client_id).await;
    assert_eq!(params["error"], "access_denied");
    assert!(params["error_description"].contains("closed"), "{params:?}");
    edit_client(&f, &ai.id, |c| c.state = ClientState::Active).await;
    assert_eq!(mcp_status(&f.mcp_url, &access).await.0, 200);

    // A type the policy no longer allows.
    edit_settings(&f, |s| {
        s.sign_in.registration.allowed_types = vec![ClientType::Shared]
    })
    .await;
    let (status, body) = mcp_status(&f.mcp_url, &access).await;
    assert_eq!(status, 401);
    assert!(body.contains("type Personal may not sign in"), "{body}");
    edit_settings(&f, |s| {
        s.sign_in.registration.allowed_types = vec![ClientType::Personal]
    })
    .await;
    assert_eq!(mcp_status(&f.mcp_url, &access).await.0, 200);

    // Disabled user.
    f.admin
        .users
        .disable_user(v1::DisableUserRequest {
            id: user_id.clone(),
        })
        .await
        .unwrap();
    let (status, body) = mcp_status(&f.mcp_url, &access).await;
    assert_eq!(status, 401);
    assert!(body.contains("disabled"), "{body}");
    let refused = f
        .admin
        .users
        .issue_sign_in_link(v1::IssueSignInLinkRequest {
            user_id: user_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn new_clients_get_the_default_type_only_if_it_is_allowed() {
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let user_id = f.create_user("eve@example.com").await;
    let client_id = register(&base, "Client").await;
    edit_settings(&f, |s| {
        s.sign_in.registration.default_type = ClientType::Service;
        s.sign_in.registration.allowed_types = vec![ClientType::Personal];
    })
    .await;
    let params = refused_before_consent(&base, &mut f.admin, &user_id, &client_id).await;
    assert_eq!(params["error"], "access_denied");
    assert!(
        params["error_description"].contains("type Service may not sign in"),
        "{params:?}"
    );
    assert!(
        f.daemon
            .store
            .list::<AiClient>()
            .await
            .unwrap()
            .iter()
            .all(|c| c.client_id.is_none()),
        "nothing was created"
    );
    // A consent form without the session's CSRF token is refused.
    edit_settings(&f, |s| {
        s.sign_in.registration.default_type = ClientType::Personal
    })
    .await;
    let (mut browser, consent) = to_consent(&base, &mut f.admin, &user_id, &client_id).await;
    let (status, _, body) = browser
        .post(
            "/oauth/consent",
            &[
                ("request", &hidden(&consent, "request")),
                ("csrf", "forged"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn the_kill_switch_stops_tool_calls_of_one_client() {
    let mut f = Fixture::start().await;
    let user_id = f.create_user("fay@example.com").await;
    let pat = f.issue_token(&user_id, "laptop").await;
    let clients = f.daemon.store.list::<AiClient>().await.unwrap();
    let ai = clients
        .iter()
        .find(|c| c.owner_user_id == user_id)
        .expect("IssueToken made an AI client");
    assert_eq!((ai.name.as_str(), ai.token_id.is_some()), ("laptop", true));
    edit_client(&f, &ai.id, |c| c.traffic_enabled = false).await;
    let answer = send(post(&f.mcp_url, &pat, None, INITIALIZE)).await;
    let session = answer.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    send(post(
        &f.mcp_url,
        &pat,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await;
    let call = send(post(&f.mcp_url, &pat, Some(&session), r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"anything","arguments":{}}}"#)).await;
    assert!(call.body.contains("kill switch"), "{}", call.body);

    // A token from before AI clients existed gets one on first use.
    f.daemon
        .store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.delete::<AiClient>(&ai.id);
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
    assert_eq!(mcp_status(&f.mcp_url, &pat).await.0, 200);
    let again: Option<AiClient> = f.daemon.store.get(&ai.id).await.unwrap();
    assert!(again.unwrap().traffic_enabled);
}

#[tokio::test]
async fn dynamic_registration_can_be_turned_off() {
    let f = Fixture::start().await;
    let base = base_of(&f);
    let http = reqwest::Client::new();
    let refused = http
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": ["http://app.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    let secret: Value = http
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        secret["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("tgs_")
    );
    edit_settings(&f, |s| {
        s.sign_in.registration.dynamic_registration_enabled = false
    })
    .await;
    let off = http
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);
    assert!(off.text().await.unwrap().contains("turned off"));
    let asm: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(asm.get("registration_endpoint").is_none(), "{asm}");
}

/// An https server on loopback answering every request with `documents`
/// by path, with a certificate from a throwaway CA; returns its port and
/// the CA's PEM.
async fn https_documents(documents: impl FnOnce(u16) -> HashMap<String, String>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "toolgate test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let documents = Arc::new(documents(port));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, documents) = (acceptor.clone(), documents.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match documents.get(&path) {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=600\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca.pem())
}

#[tokio::test]
async fn client_id_metadata_documents_are_fetched_checked_and_guarded() {
    let (port, ca_pem) = https_documents(|port| {
        let url = |p: &str| format!("https://localhost:{port}{p}");
        HashMap::from([
            (
                "/good.json".to_owned(),
                json!({"client_id": url("/good.json"), "client_name": "Doc Client", "redirect_uris": [REDIRECT]}).to_string(),
            ),
            (
                "/other.json".to_owned(),
                json!({"client_id": url("/elsewhere.json"), "redirect_uris": [REDIRECT]}).to_string(),
            ),
            (
                "/cb.json".to_owned(),
                json!({"client_id": url("/cb.json"), "redirect_uris": ["http://127.0.0.1:9/other"]}).to_string(),
            ),
        ])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let mut f =
        Fixture::start_with(|c| c.extra_ca = Some((ca_file.clone(), ca_pem.clone().into_bytes())))
            .await;
    let base = base_of(&f);
    let user_id = f.create_user("gus@example.com").await;
    let good = format!("https://localhost:{port}/good.json");

    // The SSRF guard: loopback is refused unless an admin allows the host.
    let mut browser = Browser::new(&base);
    let (status, location, body) = browser.get(&authorize_path(&base, &good, &[])).await;
    assert_eq!((status, location), (400, None));
    assert!(body.contains("non-public address"), "{body}");
    edit_settings(&f, |s| {
        s.sign_in.registration.metadata_document_private_hosts = vec!["localhost".into()]
    })
    .await;

    let (_, consent) = to_consent(&base, &mut f.admin, &user_id, &good).await;
    assert!(consent.contains("Doc Client"), "{consent}");
    let code = code_for(&base, &mut f.admin, &user_id, &good).await;
    let (status, tokens) = exchange(&base, &good, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        mcp_status(&f.mcp_url, tokens["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    let ai = oauth_client_of(&f, &user_id).await;
    assert_eq!(
        (ai.name.as_str(), ai.client_id.as_deref()),
        ("Doc Client", Some(good.as_str()))
    );

    for (path, says) in [
        ("/other.json", "differs from the URL"),
        ("/cb.json", "is not one the client"),
    ] {
        let id = format!("https://localhost:{port}{path}");
        let (status, location, body) = browser.get(&authorize_path(&base, &id, &[])).await;
        assert_eq!((status, location), (400, None), "{path}");
        assert!(body.contains(says), "{path}: {body}");
    }
}

#[tokio::test]
async fn sign_in_forms_posted_from_another_site_are_refused() {
    // Login CSRF: a page elsewhere must not sign a victim's browser in as
    // the page's author with the author's own sign-in link.
    let mut f = Fixture::start().await;
    let base = base_of(&f);
    let user_id = f.create_user("mallory@example.com").await;
    let link = sign_in_link(&mut f.admin, &user_id).await;
    let code = link.rsplit('/').next().unwrap().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (url, form) in [
        (link.clone(), vec![]),
        (format!("{base}/signin"), vec![("code", code.as_str())]),
    ] {
        for (name, value) in [
            ("origin", "https://attacker.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let refused = http
                .post(&url)
                .header(name, value)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), 403, "{url} {name}");
            assert!(refused.headers().get("set-cookie").is_none());
            assert!(
                refused
                    .text()
                    .await
                    .unwrap()
                    .contains("sent from another site"),
                "{url}"
            );
        }
    }
    // The link was not used up: from toolgate's own page it signs in.
    let signed_in = http
        .post(&link)
        .header("origin", &base)
        .header("sec-fetch-site", "same-origin")
        .form(&Vec::<(&str, &str)>::new())
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    assert!(signed_in.headers().get("set-cookie").is_some());
}
