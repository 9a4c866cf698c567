//! The OAuth client against a stub login host on loopback: its errors give
//! the HTTP status and what the login host said (no secret), a timeout
//! reads as a timeout, token responses' `instance_url`s pass the one
//! Salesforce-domain check (admin-allowed domains included), and a
//! consumer secret the master key cannot open is reported as such, never
//! as "not configured".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use toolgate_gateway::crypto::MasterKey;
use toolgate_gateway::model::{
    AuthConfig, AuthMode, Connection, LoginHost, Server, ToolEnablement, User, UserStatus,
};
use toolgate_gateway::oauth::{ConnectError, OAuth, RefreshError};
use toolgate_gateway::salesforce::domains::SalesforceDomains;
use toolgate_gateway::store::{Batch, DirLock, Store, StoreError};

const SECRET: &str = "consumer-secret-5ec4e7";
const REFRESH: &str = "5Aep861-refresh-token";
const STALE: &str = "00D!stale-access";

/// How the stub token endpoint answers.
#[derive(Clone)]
enum Mode {
    /// 503 with an HTML page that quotes the request body back.
    Html503,
    /// Never answers.
    Hang,
    /// 200 with this token response.
    Token(serde_json::Value),
}

async fn token(State(mode): State<Arc<Mutex<Mode>>>, body: String) -> Response {
    let mode = mode.lock().unwrap().clone();
    match mode {
        Mode::Html503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/html")],
            format!("<html><body><h1>Down for maintenance</h1><!-- {body} --></body></html>"),
        )
            .into_response(),
        Mode::Hang => std::future::pending().await,
        Mode::Token(v) => axum::Json(v).into_response(),
    }
}

/// A login host on `127.0.0.1:0` and the handle to switch its answers.
async fn login_host(mode: Mode) -> (SocketAddr, Arc<Mutex<Mode>>) {
    let mode = Arc::new(Mutex::new(mode));
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .with_state(mode.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, mode)
}

fn key(byte: &str) -> MasterKey {
    MasterKey::parse(&byte.repeat(32), "test").unwrap()
}

fn open(dir: &std::path::Path, key: MasterKey) -> Arc<Store> {
    Arc::new(Store::open(dir, key, DirLock::acquire(dir).unwrap()).unwrap())
}

fn server(login: SocketAddr) -> Server {
    Server {
        id: "srv1".into(),
        name: "Stub org".into(),
        catalog_kind: "salesforce".into(),
        tool_prefix: "salesforce".into(),
        login_host: LoginHost::MyDomain(format!("http://{login}")),
        api_version: "66.0".into(),
        tool_enablement: ToolEnablement::Inherit,
        disabled: false,
        auth: Some(AuthConfig {
            mode: AuthMode::PerUserOauth,
            client_id: "3MVG9-consumer-key".into(),
            client_secret_set_at: Some(1),
            client_secret_fingerprint: Some("00000000".into()),
            scopes: vec!["api".into(), "refresh_token".into()],
        }),
        created_at: 1,
        updated_at: 1,
    }
}

fn connection() -> Connection {
    Connection {
        id: Connection::id_for("usr1", "srv1"),
        user_id: "usr1".into(),
        server_id: "srv1".into(),
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA"
            .into(),
        salesforce_user_id: "005000000000001AAA".into(),
        salesforce_org_id: "00D000000000001AAA".into(),
        salesforce_username: "ada@acme.example".into(),
        scopes: "api refresh_token".into(),
        connected_at: 1,
        refreshed_at: None,
    }
}

/// A store with the server (its secret sealed), a user and a connection.
async fn seeded(store: &Store, login: SocketAddr) {
    let server = server(login);
    let connection = connection();
    store
        .write(|_| async move {
            let mut batch = Batch::default();
            batch.put(&server);
            batch.put_secret(&server.client_secret_key(), SECRET.as_bytes());
            batch.put(&User {
                id: "usr1".into(),
                email: "ana@example.com".into(),
                display_name: "Ana".into(),
                status: UserStatus::Active,
                created_at: 1,
                updated_at: 1,
            });
            batch.put(&connection);
            batch.put_secret(&connection.refresh_token_key(), REFRESH.as_bytes());
            batch.put_secret(&connection.access_token_key(), STALE.as_bytes());
            Ok::<_, StoreError>((batch, ()))
        })
        .await
        .unwrap();
}

fn oauth(store: Arc<Store>, timeout: Duration, domains: SalesforceDomains) -> OAuth {
    OAuth::new(store, "http://127.0.0.1:9").with_upstream(timeout, domains)
}

/// Starts a sign-in and returns the callback parameters for `code`.
async fn callback_params(oauth: &OAuth, code: &str) -> HashMap<String, String> {
    let link = oauth.connect_link("usr1", "srv1").await.unwrap();
    let id = link.rsplit('/').next().unwrap();
    let authorize = url::Url::parse(&oauth.start(id).await.unwrap()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    HashMap::from([("state".into(), state), ("code".into(), code.into())])
}

fn token_response(instance_url: &str) -> serde_json::Value {
    json!({
        "access_token": "00D!fresh-access",
        "refresh_token": "5Aep861-rotated",
        "instance_url": instance_url,
        "id": "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA",
        "token_type": "Bearer",
        "issued_at": "1700000000000",
        "signature": "x",
        "scope": "api refresh_token",
    })
}

#[tokio::test]
async fn a_503_from_the_login_host_gives_its_status_and_words_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), key("11"));
    let (addr, _) = login_host(Mode::Html503).await;
    seeded(&store, addr).await;
    let oauth = oauth(store, Duration::from_secs(60), SalesforceDomains::default());

    let err = oauth
        .callback(&callback_params(&oauth, "aPrx-one-time-code").await)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Exchange(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "signing in to Salesforce failed: the login host answered HTTP 503 Service Unavailable: Down for maintenance"
        ),
        "{message}"
    );
    let err = oauth.refresh("usr1", "srv1", STALE).await.unwrap_err();
    let refresh_message = err.to_string();
    assert!(
        refresh_message.starts_with(
            "refreshing the Salesforce session failed: the login host answered HTTP 503 Service Unavailable: Down for maintenance"
        ),
        "{refresh_message}"
    );
    for text in [&message, &refresh_message] {
        for secret in [SECRET, REFRESH, "aPrx-one-time-code"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}

#[tokio::test]
async fn a_login_host_that_does_not_answer_times_out_as_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), key("11"));
    let (addr, _) = login_host(Mode::Hang).await;
    seeded(&store, addr).await;
    let oauth = oauth(
        store,
        Duration::from_millis(300),
        SalesforceDomains::default(),
    );
    let err = oauth.refresh("usr1", "srv1", STALE).await.unwrap_err();
    assert!(matches!(err, RefreshError::Failed(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "refreshing the Salesforce session failed: Salesforce's login host did not answer within 300 ms"
    );
    let err = oauth
        .callback(&callback_params(&oauth, "code").await)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "signing in to Salesforce failed: Salesforce's login host did not answer within 300 ms"
    );
}

#[tokio::test]
async fn instance_urls_pass_the_salesforce_domain_check_admin_domains_included() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), key("11"));
    let (addr, mode) = login_host(Mode::Token(token_response("https://evil.example.com"))).await;
    seeded(&store, addr).await;
    let domains = SalesforceDomains::with_extra(vec!["sfcrmproducts.cn".into()]).unwrap();
    let oauth = oauth(store.clone(), Duration::from_secs(60), domains);

    let err = oauth.refresh("usr1", "srv1", STALE).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("unacceptable instance_url https://evil.example.com"),
        "{err}"
    );
    let err = oauth
        .callback(&callback_params(&oauth, "code").await)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unacceptable instance_url"),
        "{err}"
    );

    for (url, stored) in [
        ("https://acme.my.site.com/", "https://acme.my.site.com"),
        (
            "https://acme.my.salesforce-sites.com",
            "https://acme.my.salesforce-sites.com",
        ),
        (
            "https://acme.my.sfcrmproducts.cn",
            "https://acme.my.sfcrmproducts.cn",
        ),
    ] {
        *mode.lock().unwrap() = Mode::Token(token_response(url));
        let stale = oauth
            .connection("usr1", "srv1")
            .await
            .unwrap()
            .unwrap()
            .access_token;
        let live = oauth.refresh("usr1", "srv1", &stale).await.unwrap();
        assert_eq!(live.connection.instance_url, stored);
    }
    *mode.lock().unwrap() = Mode::Token(token_response("https://acme.lightning.force.com"));
    let stale = oauth
        .connection("usr1", "srv1")
        .await
        .unwrap()
        .unwrap()
        .access_token;
    let err = oauth.refresh("usr1", "srv1", &stale).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("use the My Domain URL https://acme.my.salesforce.com"),
        "{err}"
    );
}

#[tokio::test]
async fn a_secret_the_master_key_cannot_open_is_not_reported_as_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _) = login_host(Mode::Html503).await;
    {
        let store = open(dir.path(), key("11"));
        seeded(&store, addr).await;
    }
    // The same data directory opened with another master key.
    let store = open(dir.path(), key("22"));
    let oauth = oauth(store, Duration::from_secs(60), SalesforceDomains::default());
    let link = oauth.connect_link("usr1", "srv1").await.unwrap();
    let err = oauth
        .start(link.rsplit('/').next().unwrap())
        .await
        .unwrap_err();
    match &err {
        ConnectError::Store(cause) => {
            assert!(cause.to_string().contains("could not be opened"), "{cause}")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("master key"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
    let err = oauth.refresh("usr1", "srv1", STALE).await.unwrap_err();
    assert!(matches!(err, RefreshError::Store(_)), "{err:?}");
    assert!(!err.to_string().contains("not configured"), "{err}");
}
