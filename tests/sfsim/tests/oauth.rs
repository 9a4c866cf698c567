//! The login host: the web-server flow with PKCE, its failure modes, the
//! refresh grant with and without rotation, revoke, userinfo, identity.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn web_server_flow_with_pkce_returns_salesforce_shaped_tokens() {
    let sim = start().await;
    let body = login(&sim, ANA).await;
    for key in [
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    ] {
        assert!(body.get(key).is_some(), "missing {key}");
    }
    assert!(
        body.get("expires_in").is_none(),
        "Salesforce sends no expires_in"
    );
    let issued: i64 = body["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(
        issued > 1_700_000_000_000,
        "issued_at is milliseconds as a string"
    );
    assert!(
        body["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/id/00D", sim.login_url))
    );
    assert_eq!(body["instance_url"], sim.instance_url.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(sim.counter("token:authorization_code"), 1);
}

#[tokio::test]
async fn the_login_page_lists_users_and_its_form_grants_or_denies() {
    let sim = start_with(|c| c.auto_consent = false).await;
    let pkce = pkce();
    let page = client()
        .get(authorize_url(&sim, ANA, &pkce))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("ben.okafor@acme-demo.example") && html.contains("Chloé Martin"));
    let url = url::Url::parse(&authorize_url(&sim, ANA, &pkce)).unwrap();
    let mut form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    form.push(("username".into(), BEN_READ_ONLY.into()));
    let submit = |action: &str| {
        let mut f = form.clone();
        f.push(("action".into(), action.into()));
        client()
            .post(format!("{}/services/oauth2/authorize", sim.login_url))
            .form(&f)
            .send()
    };
    let denied = submit("deny").await.unwrap();
    assert_eq!(denied.status(), 302);
    let params = location_params(&denied);
    assert_eq!(param(&params, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&params, "state").as_deref(), Some("st4te"));
    let allowed = submit("allow").await.unwrap();
    let code = param(&location_params(&allowed), "code").unwrap();
    let token: Value = exchange(&sim, &code, &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let identity: Value = client()
        .get(token["id"].as_str().unwrap())
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(identity["username"], BEN_READ_ONLY);
}

async fn oauth_error(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "{{error, error_description}} only: {body}"
    );
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        body["error_description"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn code_exchange_failures_are_oauth_errors() {
    let sim = start().await;
    let pkce = pkce();
    let app = sim.sim.config.connected_app.clone();

    // Wrong PKCE verifier; the code is then spent.
    let code = code_for(&sim, ANA, &pkce).await;
    let wrong = exchange(
        &sim,
        &code,
        "another-verifier-that-is-long-enough-to-be-valid-000",
    )
    .await;
    assert_eq!(oauth_error(wrong).await.1, "invalid_grant");
    assert_eq!(
        oauth_error(exchange(&sim, &code, &pkce.verifier).await)
            .await
            .1,
        "invalid_grant"
    );

    // Reused code.
    let code = code_for(&sim, ANA, &pkce).await;
    assert_eq!(exchange(&sim, &code, &pkce.verifier).await.status(), 200);
    let (status, error, _) = oauth_error(exchange(&sim, &code, &pkce.verifier).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));

    // Wrong redirect URI at the token endpoint.
    let code = code_for(&sim, ANA, &pkce).await;
    let response = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &app.consumer_key),
            ("client_secret", &app.consumer_secret),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(response).await.2,
        "redirect_uri must match configuration"
    );

    // Wrong client secret (as in oauth_error_invalid_client.json).
    let code = code_for(&sim, ANA, &pkce).await;
    let response = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &app.consumer_key),
            ("client_secret", "not-the-secret"),
            ("redirect_uri", &app.callback_url),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(response).await,
        (
            400,
            "invalid_client".into(),
            "invalid client credentials".into()
        )
    );

    // Unsupported grant, missing parameters.
    let response = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await.1, "unsupported_grant_type");
    let response = client()
        .post(format!("{}/services/oauth2/token", sim.login_url))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await.1, "invalid_request");
}

#[tokio::test]
async fn authorize_checks_the_redirect_uri_exactly_and_the_client() {
    let sim = start().await;
    let pkce = pkce();
    let good = authorize_url(&sim, ANA, &pkce);
    let slash = good.replace("%2Fauth%2Fcallback", "%2Fauth%2Fcallback%2F");
    let response = client().get(&slash).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("redirect_uri_mismatch")
    );
    let other_client = good.replace("3MVG9sfsim.test.consumer.key", "3MVG9unknown");
    let response = client().get(&other_client).send().await.unwrap();
    assert!(response.text().await.unwrap().contains("invalid_client_id"));
    let plain = good.replace("code_challenge_method=S256", "code_challenge_method=plain");
    let response = client().get(&plain).send().await.unwrap();
    assert_eq!(
        param(&location_params(&response), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn refresh_without_and_with_rotation() {
    let sim = start().await;
    let first = login(&sim, ANA).await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = refresh(&sim, &rt).await.json().await.unwrap();
    assert!(
        refreshed.get("refresh_token").is_none(),
        "no refresh_token unless rotation is on"
    );
    assert_ne!(refreshed["access_token"], first["access_token"]);

    post_admin(
        &sim,
        "faults",
        serde_json::json!({"refresh_token_rotation": true}),
    )
    .await;
    let rotated: Value = refresh(&sim, &rt).await.json().await.unwrap();
    let new_rt = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_rt, rt);
    assert_eq!(
        oauth_error(refresh(&sim, &rt).await).await.1,
        "invalid_grant",
        "the old one is dead"
    );
    assert_eq!(refresh(&sim, &new_rt).await.status(), 200);
    assert_eq!(sim.counter("token:refresh_token"), 4);
}

#[tokio::test]
async fn a_sandbox_token_fails_on_production() {
    let production = start().await;
    let sandbox = start_with(|c| {
        c.sandbox = true;
        c.org_name = "Acme Sandbox".into();
    })
    .await;
    assert_ne!(production.sim.org_id, sandbox.sim.org_id);
    let token = login(&sandbox, ANA).await;
    let response = rest(
        &production,
        token["access_token"].as_str().unwrap(),
        reqwest::Method::GET,
        "/services/data/v66.0/limits",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    let refreshed = refresh(&production, token["refresh_token"].as_str().unwrap()).await;
    assert_eq!(oauth_error(refreshed).await.1, "invalid_grant");
}

#[tokio::test]
async fn revoke_userinfo_and_identity() {
    let sim = start().await;
    let token = login(&sim, ANA).await;
    let access = token["access_token"].as_str().unwrap();
    let info: Value = client()
        .get(format!("{}/services/oauth2/userinfo", sim.login_url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], ANA);
    assert_eq!(info["organization_id"], sim.sim.org_id.as_str());
    let revoke = client()
        .post(format!("{}/services/oauth2/revoke", sim.login_url))
        .form(&[("token", token["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let after = client()
        .get(format!("{}/services/oauth2/userinfo", sim.login_url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        403,
        "revoking the refresh token kills its access tokens"
    );
    assert_eq!(
        oauth_error(refresh(&sim, token["refresh_token"].as_str().unwrap()).await)
            .await
            .1,
        "invalid_grant"
    );
}
