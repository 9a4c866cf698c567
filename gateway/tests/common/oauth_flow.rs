//! The OAuth authorization code flow against toolgated by hand, for tests
//! that need an OAuth-signed-in AI client: register a public client by DCR,
//! sign the user in with a one-time sign-in link, consent, exchange the
//! code (PKCE S256, RFC 8707 resource), refresh. `oauth_authz.rs` tests the
//! flow itself, step by step.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use toolgate_proto::v1;

use super::Clients;

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "a-long-enough-pkce-code-verifier-0123456789-abcdefghijk";

/// A browser that follows no redirects and keeps the sign-in cookie.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> (u16, Option<String>, String) {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            if let Some(rest) = value.to_str().unwrap().strip_prefix("toolgate_signin=") {
                self.cookie = Some(format!(
                    "toolgate_signin={}",
                    rest.split(';').next().unwrap()
                ));
            }
        }
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (
            response.status().as_u16(),
            location,
            response.text().await.unwrap(),
        )
    }

    pub async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let request = self.http.post(self.url(path)).form(form);
        self.send(request).await
    }
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 section 4.2).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// An authorization request path for `client_id` with [`REDIRECT`],
/// [`VERIFIER`]'s challenge, state `st-123` and the `/mcp` resource;
/// `extra` replaces (or, with an empty value, removes) parameters.
pub fn authorize_path(base: &str, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
        ("state", "st-123".to_owned()),
        ("resource", format!("{base}/mcp")),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, (*value).to_owned()));
        }
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(n, v)| (*n, v.as_str())))
        .finish();
    format!("/oauth/authorize?{query}")
}

/// Exchanges `code` of public client `client_id` with [`VERIFIER`].
pub async fn exchange(base: &str, client_id: &str, code: &str) -> (u16, Value) {
    let resource = format!("{base}/mcp");
    token_request(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ],
    )
    .await
}

/// Registers a public client named `name` by DCR at `base`; returns its
/// client id.
pub async fn register(base: &str, name: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "client_name": name, "grant_types": ["authorization_code", "refresh_token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

/// Signs `user_id` in with client `client_id` and consents; returns the
/// token response (`access_token`, `refresh_token`, ...).
pub async fn sign_in(base: &str, admin: &mut Clients, user_id: &str, client_id: &str) -> Value {
    let authorize = authorize_path(base, client_id, &[]);
    let mut browser = Browser::new(base);
    let (status, location, _) = browser.get(&authorize).await;
    assert_eq!(status, 303);
    let return_to = query(&format!("{base}{}", location.unwrap()))["return"].clone();
    let link = admin
        .users
        .issue_sign_in_link(v1::IssueSignInLinkRequest {
            user_id: user_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let (status, _, body) = browser.post(&link, &[("return", &return_to)]).await;
    assert_eq!(status, 303, "{body}");
    let (status, _, consent) = browser.get(&return_to).await;
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
    let code = query(&location.unwrap())["code"].clone();
    let (status, tokens) = exchange(base, client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// A token endpoint request; returns the status and the JSON answer.
pub async fn token_request(base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A refresh with `refresh_token` of public client `client_id`.
pub async fn refresh(base: &str, client_id: &str, refresh_token: &str) -> (u16, Value) {
    token_request(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await
}
