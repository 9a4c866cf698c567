//! Per-user Salesforce OAuth: connect links, the OAuth 2.0 web-server flow
//! with PKCE, the callback, stored connections (tokens sealed at rest), the
//! single-flight refresh, and disconnect (revoking at Salesforce).
//!
//! Flow (Salesforce Help, "OAuth 2.0 Web Server Flow for Web App
//! Integration"): a tool call without a connection gets a connect link
//! `<public URL>/connect/<id>`, single-use, bound to one user and server, valid
//! for [`LINK_TTL`]. Opening it redirects the browser to the server's login
//! host `/services/oauth2/authorize` with the admin's client id, the scopes,
//! PKCE S256 and a single-use random `state` valid for [`STATE_TTL`].
//! `<public URL>/auth/callback` checks the state, exchanges the code with the
//! client secret and verifier, and stores the connection.
//!
//! Every request to the login host waits at most the upstream timeout
//! (`upstream_timeout_secs`, default 60 s); its errors say what happened:
//! no answer in time, no connection, or the HTTP status and what Salesforce
//! said; reading the identity URL at connect time waits at most the same
//! upstream timeout. `instance_url`s from token responses pass
//! [`SalesforceDomains::check_from`] (a loopback one only when the login
//! host is loopback) before any bearer token is sent there; the access
//! token goes to the identity URL only when its origin is the login
//! host's or the checked `instance_url`'s.
//!
//! This module never logs or returns a token or a secret (answers quoted
//! in errors have every secret of the request blanked out). Links and
//! states live in the store ([`Store::put_ephemeral`]), keyed by their
//! SHA-256 and sealed, so the link made on one replica can be opened on
//! another and the callback can land on a third; each is used once
//! ([`Store::take_ephemeral`]). A refresh holds the connection's lock
//! across replicas ([`Store::named_lock`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod login_host;

pub use login_host::LoginHostError;
use login_host::{describe_token_error, send, token_http};

use crate::audit::Action;
use crate::crypto::sha256_hex;
use crate::model::{AuditEvent, Connection, Server, User, UserStatus, now_ms};
use crate::salesforce::DEFAULT_UPSTREAM_TIMEOUT;
use crate::salesforce::domains::SalesforceDomains;
use crate::store::{Batch, Ephemeral, Store, StoreError};

/// How long a connect link stays valid.
pub const LINK_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an OAuth `state` (an authorization in progress) stays valid.
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// The fields Salesforce adds to its token responses (reference file
/// `oauth_token_authorization_code.json`): no `expires_in`, but the
/// instance URL and identity URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SalesforceTokenFields {
    /// Where the org's REST API lives.
    #[serde(default)]
    pub instance_url: Option<String>,
    /// Identity URL `https://<login host>/id/<org id>/<user id>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Issue time, epoch milliseconds as a string.
    #[serde(default)]
    pub issued_at: Option<String>,
}

impl ExtraTokenFields for SalesforceTokenFields {}

type SalesforceTokenResponse = StandardTokenResponse<SalesforceTokenFields, BasicTokenType>;

type OAuthClient = Client<
    BasicErrorResponse,
    SalesforceTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why connecting failed. `Display` is shown to the user on the callback
/// page and never contains a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connect link is unknown, used or expired.
    #[error(
        "this connect link has expired or was already used; call the tool again from your AI client to get a new link"
    )]
    LinkExpired,
    /// The callback's `state` is unknown, used or expired.
    #[error(
        "this sign-in did not start here or took too long; call the tool again from your AI client to get a new link"
    )]
    StateInvalid,
    /// The user (or Salesforce) refused.
    #[error("Salesforce did not grant access: {0}")]
    Denied(String),
    /// The server has no client id and secret yet.
    #[error(
        "the administrator has not configured this Salesforce server's connected app (client id and secret) yet"
    )]
    NotConfigured,
    /// The server or user no longer exists, or is disabled.
    #[error("the server or user of this link no longer exists or is disabled")]
    Gone,
    /// The code exchange failed: Salesforce refused it (its error and
    /// HTTP status), did not answer in time, could not be reached, or
    /// answered something unusable.
    #[error("signing in to Salesforce failed: {0}")]
    Exchange(String),
    /// Storage failed, or the master key does not open the consumer
    /// secret.
    #[error(
        "toolgate could not read its database or open the consumer secret (a storage or master key problem); ask your administrator to check toolgated's log"
    )]
    Store(#[from] StoreError),
}

/// Why the Salesforce username could not be read at connect time (the
/// connection is made anyway, without it). `Display` is written into the
/// audit event and never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The identity URL is not on the login host nor on the instance URL,
    /// so the access token is not sent to it.
    #[error(
        "its username was not read: the identity URL is on neither the login host nor the instance URL"
    )]
    Unacceptable,
    /// The identity URL could not be reached.
    #[error("its username could not be read: the identity URL could not be reached ({0})")]
    Unreachable(String),
    /// The identity URL answered with an HTTP error status.
    #[error("its username could not be read: the identity URL answered HTTP {0}")]
    Status(u16),
    /// The identity URL's answer had no `username`.
    #[error("its username could not be read: unexpected identity response ({0})")]
    Unreadable(String),
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The refresh token is dead (`invalid_grant`): the connection was
    /// dropped; the user must connect again.
    #[error("the Salesforce connection expired or was revoked; connect again")]
    Revoked,
    /// There is no connection (any more).
    #[error("there is no Salesforce connection")]
    NotConnected,
    /// The server is not configured.
    #[error("the server's connected app is not configured")]
    NotConfigured,
    /// Salesforce did not answer in time, could not be reached, or answered
    /// with an error (its HTTP status and message) other than
    /// `invalid_grant`.
    #[error("refreshing the Salesforce session failed: {0}")]
    Failed(String),
    /// Storage failed, or the master key does not open the consumer
    /// secret or the refresh token.
    #[error(
        "toolgate could not read its database or open a sealed secret (a storage or master key problem); ask your administrator to check toolgated's log"
    )]
    Store(#[from] StoreError),
}

/// Why the OAuth client of a server cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No consumer key, or no consumer secret stored.
    #[error("the server's connected app (consumer key and secret) is not configured")]
    NotConfigured,
    /// The consumer secret could not be read or opened.
    #[error("the consumer secret could not be read")]
    Secret(#[source] StoreError),
    /// The stored secret or the login host URL is unusable.
    #[error("{0}")]
    Invalid(String),
}

impl From<ClientError> for ConnectError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotConfigured => Self::NotConfigured,
            ClientError::Secret(e) => Self::Store(e),
            ClientError::Invalid(m) => Self::Exchange(m),
        }
    }
}

impl From<ClientError> for RefreshError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotConfigured => Self::NotConfigured,
            ClientError::Secret(e) => Self::Store(e),
            ClientError::Invalid(m) => Self::Failed(m),
        }
    }
}

/// A connect link, as stored (sealed) under the SHA-256 of its id.
#[derive(Debug, Serialize, Deserialize)]
struct ConnectLink {
    /// The link id itself, so the live link of a user and server can be
    /// handed out again.
    id: String,
    user_id: String,
    server_id: String,
}

/// An authorization in progress, as stored (sealed) under the SHA-256 of
/// its `state`.
#[derive(Serialize, Deserialize)]
struct PendingAuth {
    user_id: String,
    server_id: String,
    /// The PKCE verifier (a secret until the code is exchanged).
    verifier: String,
}

/// Store kinds of the short-lived OAuth values.
const LINK_KIND: &str = "connect_link";
const STATE_KIND: &str = "oauth_state";

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// A live connection and its current access token.
#[derive(Clone)]
pub struct LiveConnection {
    /// The stored connection.
    pub connection: Connection,
    /// The current access token (secret).
    pub access_token: String,
}

impl std::fmt::Debug for LiveConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConnection")
            .field("connection", &self.connection)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// Per-user OAuth for all servers.
#[derive(Debug)]
pub struct OAuth {
    store: Arc<Store>,
    /// For token requests: never follows redirects (RFC 6749 10.6 advice);
    /// times out after `timeout`.
    http: reqwest::Client,
    /// The upstream timeout, for messages.
    timeout: Duration,
    /// Where `instance_url`s may point.
    domains: SalesforceDomains,
    public_url: String,
    /// One lock per connection id: concurrent calls that all saw an expired
    /// session wait for a single refresh. A tokio mutex, since it is held
    /// across the refresh request on purpose.
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The last failed refresh per connection: callers that were waiting
    /// while it ran share its error instead of each retrying (and each
    /// timing out); a later call tries again.
    refresh_failures: Mutex<HashMap<String, (Instant, String)>>,
}

fn random_id() -> String {
    crate::crypto::random_token("").unwrap_or_else(|_| crate::model::new_id())
}

/// `(org id, user id)` from an identity URL `.../id/<org>/<user>`.
pub fn parse_identity_url(id: &str) -> Option<(String, String)> {
    let mut parts = id.trim_end_matches('/').rsplitn(3, '/');
    let user = parts.next()?;
    let org = parts.next()?;
    (parts.next()?.ends_with("/id") && !org.is_empty() && !user.is_empty())
        .then(|| (org.to_owned(), user.to_owned()))
}

impl OAuth {
    /// Builds the OAuth service for a gateway reachable at `public_url`,
    /// with the default upstream timeout and Salesforce's own domains.
    pub fn new(store: Arc<Store>, public_url: &str) -> Self {
        Self {
            store,
            http: token_http(DEFAULT_UPSTREAM_TIMEOUT),
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
            domains: SalesforceDomains::default(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            refresh_locks: Mutex::new(HashMap::new()),
            refresh_failures: Mutex::new(HashMap::new()),
        }
    }

    /// Waits at most `timeout` for the login host (`upstream_timeout_secs`)
    /// and accepts `instance_url`s under `domains`.
    pub fn with_upstream(mut self, timeout: Duration, domains: SalesforceDomains) -> Self {
        self.http = token_http(timeout);
        self.timeout = timeout;
        self.domains = domains;
        self
    }

    /// An `instance_url` from a token response of `login_host`, checked
    /// before bearer tokens are sent to it ([`SalesforceDomains::check_from`]:
    /// the check the login host passed at registration, with loopback
    /// accepted only from a loopback login host); returned without a
    /// trailing slash.
    pub fn checked_instance_url(&self, url: &str, login_host: &str) -> Result<String, String> {
        self.domains.check_from(url, login_host).map_err(|e| {
            format!("Salesforce answered with an unacceptable instance_url {url}: it {e}")
        })
    }

    /// The HTTP client oauth2 calls; each request owns a handle on the
    /// shared reqwest client, so the futures are `Send` and `'static`.
    /// The answer's status lands in `status`; `secrets` are blanked out
    /// of quoted answers.
    #[allow(clippy::type_complexity)]
    fn http_client(
        &self,
        status: Arc<AtomicU16>,
        secrets: Vec<String>,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, LoginHostError>> + Send>,
    > {
        let http = self.http.clone();
        let secrets = Arc::new(secrets);
        move |request| {
            let http = http.clone();
            let status = status.clone();
            let secrets = secrets.clone();
            Box::pin(async move { send(&http, request, &status, &secrets).await })
        }
    }

    /// `<public URL>/auth/callback`.
    pub fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.public_url)
    }

    /// The OAuth client of `server`, its scopes, and the consumer secret
    /// (to blank it out of quoted answers). Errors:
    /// [`ClientError::NotConfigured`] without a consumer key or secret;
    /// [`ClientError::Secret`] when the store cannot read, or the master
    /// key cannot open, the secret (logged here with its cause).
    async fn client(
        &self,
        server: &Server,
    ) -> Result<(OAuthClient, Vec<String>, String), ClientError> {
        let auth = server.auth.as_ref().ok_or(ClientError::NotConfigured)?;
        let secret = match self.store.secret(&server.client_secret_key()).await {
            Ok(Some(secret)) => secret,
            Ok(None) => return Err(ClientError::NotConfigured),
            Err(e) => {
                tracing::error!(server_id = %server.id, error = %e, "cannot read the consumer secret");
                return Err(ClientError::Secret(e));
            }
        };
        let secret = String::from_utf8(secret).map_err(|_| {
            ClientError::Invalid(
                "the stored consumer secret is not text; the administrator must set it again"
                    .into(),
            )
        })?;
        let base = server.login_host.url();
        let bad_url = |e: url::ParseError| {
            ClientError::Invalid(format!("the login host {base} is not a usable URL ({e})"))
        };
        let client = Client::new(ClientId::new(auth.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.clone()))
            .set_auth_uri(
                AuthUrl::new(format!("{base}/services/oauth2/authorize")).map_err(bad_url)?,
            )
            .set_token_uri(TokenUrl::new(format!("{base}/services/oauth2/token")).map_err(bad_url)?)
            .set_redirect_uri(RedirectUrl::new(self.callback_url()).map_err(bad_url)?)
            // Salesforce takes client_id and client_secret in the body.
            .set_auth_type(AuthType::RequestBody);
        Ok((client, auth.scopes.clone(), secret))
    }

    /// A single-use connect link for `user_id` and `server_id`: the live
    /// one if there is one (so repeated calls do not pile up links), else a
    /// new one, valid for [`LINK_TTL`] on every replica.
    ///
    /// Errors: [`StoreError`] when the store cannot keep it.
    pub async fn connect_link(&self, user_id: &str, server_id: &str) -> Result<String, StoreError> {
        let owner = format!("{user_id}/{server_id}");
        if let Some((_, live)) = self.store.find_ephemeral(LINK_KIND, &owner).await?
            && let Ok(link) = serde_json::from_slice::<ConnectLink>(&live.value)
        {
            return Ok(format!("{}/connect/{}", self.public_url, link.id));
        }
        let link = ConnectLink {
            id: random_id(),
            user_id: user_id.to_owned(),
            server_id: server_id.to_owned(),
        };
        let value = Ephemeral {
            owner,
            value: serde_json::to_vec(&link).expect("a link serialises"),
            expires_at: now_ms() + ttl_ms(LINK_TTL),
        };
        self.store
            .put_ephemeral(LINK_KIND, &sha256_hex(link.id.as_bytes()), &value)
            .await?;
        Ok(format!("{}/connect/{}", self.public_url, link.id))
    }

    /// The user and server a live connect link is for, without using it up
    /// (so that link previews and scanners cannot spend it).
    pub async fn link_target(&self, link_id: &str) -> Result<(String, String), ConnectError> {
        let live = self
            .store
            .get_ephemeral(LINK_KIND, &sha256_hex(link_id.as_bytes()))
            .await?
            .ok_or(ConnectError::LinkExpired)?;
        let link: ConnectLink =
            serde_json::from_slice(&live.value).map_err(|_| ConnectError::LinkExpired)?;
        Ok((link.user_id, link.server_id))
    }

    /// Consumes a connect link and returns the login host URL to redirect
    /// the browser to.
    pub async fn start(&self, link_id: &str) -> Result<String, ConnectError> {
        let live = self
            .store
            .take_ephemeral(LINK_KIND, &sha256_hex(link_id.as_bytes()))
            .await?
            .ok_or(ConnectError::LinkExpired)?;
        let link: ConnectLink =
            serde_json::from_slice(&live.value).map_err(|_| ConnectError::LinkExpired)?;
        let server = self
            .store
            .get::<Server>(&link.server_id)
            .await?
            .ok_or(ConnectError::Gone)?;
        let (client, scopes, _) = self.client(&server).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        for scope in scopes {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, state) = request.url();
        let pending = PendingAuth {
            user_id: link.user_id,
            server_id: link.server_id,
            verifier: verifier.secret().clone(),
        };
        let value = Ephemeral {
            owner: String::new(),
            value: serde_json::to_vec(&pending).expect("a pending authorization serialises"),
            expires_at: now_ms() + ttl_ms(STATE_TTL),
        };
        self.store
            .put_ephemeral(STATE_KIND, &sha256_hex(state.secret().as_bytes()), &value)
            .await?;
        Ok(url.to_string())
    }

    /// Handles `/auth/callback`: checks `state`, exchanges the code, and
    /// stores the connection (tokens sealed). Nothing is stored on error.
    pub async fn callback(
        &self,
        params: &HashMap<String, String>,
    ) -> Result<Connection, ConnectError> {
        let state = params.get("state").ok_or(ConnectError::StateInvalid)?;
        let live = self
            .store
            .take_ephemeral(STATE_KIND, &sha256_hex(state.as_bytes()))
            .await?
            .ok_or(ConnectError::StateInvalid)?;
        let pending: PendingAuth =
            serde_json::from_slice(&live.value).map_err(|_| ConnectError::StateInvalid)?;
        if let Some(error) = params.get("error") {
            let description = params
                .get("error_description")
                .map_or(String::new(), |d| format!(": {d}"));
            return Err(ConnectError::Denied(format!("{error}{description}")));
        }
        let code = params
            .get("code")
            .ok_or_else(|| ConnectError::Exchange("the callback carried no code".into()))?;
        let server = self
            .store
            .get::<Server>(&pending.server_id)
            .await?
            .filter(|s| !s.disabled)
            .ok_or(ConnectError::Gone)?;
        let toolgate_user = self
            .store
            .get::<User>(&pending.user_id)
            .await?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or(ConnectError::Gone)?;
        let (client, _, secret) = self.client(&server).await?;
        let status = Arc::new(AtomicU16::new(0));
        let http = self.http_client(
            status.clone(),
            vec![secret, code.clone(), pending.verifier.clone()],
        );
        let token = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| {
                ConnectError::Exchange(describe_token_error(
                    &e,
                    status.load(Ordering::Relaxed),
                    self.timeout,
                ))
            })?;
        let extra = token.extra_fields();
        let (instance_url, identity_url) = match (&extra.instance_url, &extra.id) {
            (Some(i), Some(id)) => (
                self.checked_instance_url(i, server.login_host.url())
                    .map_err(ConnectError::Exchange)?,
                id.clone(),
            ),
            _ => {
                return Err(ConnectError::Exchange(
                    "the token response has no instance_url or id".into(),
                ));
            }
        };
        let (org, user) = parse_identity_url(&identity_url)
            .ok_or_else(|| ConnectError::Exchange("the identity URL is malformed".into()))?;
        let refresh = token
            .refresh_token()
            .ok_or_else(|| {
                ConnectError::Exchange(
                    "Salesforce issued no refresh token: add the refresh_token and offline_access scopes to the connected app".into(),
                )
            })?
            .secret()
            .clone();
        let scopes = token
            .scopes()
            .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let access = token.access_token().secret().clone();
        // Only for people to read: a failed read leaves it empty and is
        // said in the audit event, never failing the connection.
        let username = self
            .identity_username(
                &identity_url,
                &access,
                &[server.login_host.url(), &instance_url],
            )
            .await;
        let connection = Connection {
            id: Connection::id_for(&pending.user_id, &pending.server_id),
            user_id: pending.user_id.clone(),
            server_id: pending.server_id.clone(),
            instance_url,
            identity_url,
            salesforce_user_id: user,
            salesforce_org_id: org,
            salesforce_username: username.as_deref().unwrap_or_default().to_owned(),
            scopes,
            connected_at: now_ms(),
            refreshed_at: None,
        };
        let reason = match &username {
            Ok(_) => "connected a Salesforce account".to_owned(),
            Err(err) => format!("connected a Salesforce account; {err}"),
        };
        let stored = connection.clone();
        self.store
            .write(|_| async move {
                let mut batch = Batch::default();
                batch.put(&stored);
                batch.put_secret(&stored.refresh_token_key(), refresh.as_bytes());
                batch.put_secret(&stored.access_token_key(), access.as_bytes());
                batch.audit(
                    AuditEvent::allowed(
                        // Named as tool calls name users (audit.proto).
                        &format!("user:{}", toolgate_user.email),
                        Action::ConnectionCreate,
                        format!("connection/{}", stored.id),
                    )
                    .with_reason(reason.clone())
                    .with_details(json!({
                        "server_id": stored.server_id,
                        "salesforce_user_id": stored.salesforce_user_id,
                        "salesforce_org_id": stored.salesforce_org_id,
                        "salesforce_username": stored.salesforce_username,
                        "instance_url": stored.instance_url,
                    })),
                );
                Ok::<_, StoreError>((batch, ()))
            })
            .await?;
        Ok(connection)
    }

    /// The username of the Salesforce user behind `access_token`: `GET` on
    /// the identity URL from the token response, with the access token as
    /// a bearer token, answers JSON with `username` (Salesforce Help,
    /// "Identity URLs": Salesforce answers `https://<login host or My
    /// Domain>/id/<org>/<user>`). The token is sent only when the URL's
    /// origin (scheme, host, port) is one of `trusted`: the login host and
    /// the already checked `instance_url`, never merely some host in a
    /// Salesforce domain family (any customer can own a `*.my.site.com`).
    /// Waits at most the upstream timeout. Errors say why in words,
    /// without the token.
    async fn identity_username(
        &self,
        identity_url: &str,
        access_token: &str,
        trusted: &[&str],
    ) -> Result<String, IdentityError> {
        let url = url::Url::parse(identity_url).map_err(|_| IdentityError::Unacceptable)?;
        let origin = url.origin();
        if !origin.is_tuple()
            || !trusted
                .iter()
                .any(|t| url::Url::parse(t).is_ok_and(|t| t.origin() == origin))
        {
            return Err(IdentityError::Unacceptable);
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| IdentityError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(IdentityError::Status(status.as_u16()));
        }
        #[derive(Deserialize)]
        struct Identity {
            username: String,
        }
        let identity: Identity = response
            .json()
            .await
            .map_err(|e| IdentityError::Unreadable(e.without_url().to_string()))?;
        Ok(identity.username)
    }

    /// The user's connection to a server with its access token, if any.
    pub async fn connection(
        &self,
        user_id: &str,
        server_id: &str,
    ) -> Result<Option<LiveConnection>, StoreError> {
        let id = Connection::id_for(user_id, server_id);
        let Some(connection) = self.store.get::<Connection>(&id).await? else {
            return Ok(None);
        };
        let Some(access) = self.store.secret(&connection.access_token_key()).await? else {
            return Ok(None);
        };
        Ok(Some(LiveConnection {
            connection,
            access_token: String::from_utf8_lossy(&access).into_owned(),
        }))
    }

    fn refresh_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refresh_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Gets a new access token after `stale` was refused. Single-flight per
    /// connection: concurrent callers wait for one refresh and share its
    /// result. A rotated refresh token is stored (flushed) before this
    /// returns. `invalid_grant` drops the connection ([`RefreshError::Revoked`]).
    /// Traced as the span `oauth token refresh` (with `error.type` on
    /// failure: `invalid_grant`, `not_connected`, `not_configured`,
    /// `refresh_failed` or `store`); never a token.
    pub async fn refresh(
        &self,
        user_id: &str,
        server_id: &str,
        stale: &str,
    ) -> Result<LiveConnection, RefreshError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            target: crate::telemetry::TRACES,
            "oauth token refresh",
            otel.name = "oauth token refresh",
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let result = self
            .refresh_once(user_id, server_id, stale)
            .instrument(span.clone())
            .await;
        if let Err(err) = &result {
            let kind = match err {
                RefreshError::Revoked => "invalid_grant",
                RefreshError::NotConnected => "not_connected",
                RefreshError::NotConfigured => "not_configured",
                RefreshError::Failed(_) => "refresh_failed",
                RefreshError::Store(_) => "store",
            };
            span.record("error.type", kind);
            span.record("otel.status_code", "error");
        }
        result
    }

    /// [`Self::refresh`], untraced.
    async fn refresh_once(
        &self,
        user_id: &str,
        server_id: &str,
        stale: &str,
    ) -> Result<LiveConnection, RefreshError> {
        let id = Connection::id_for(user_id, server_id);
        let lock = self.refresh_lock(&id);
        let waited_from = Instant::now();
        let _guard = lock.lock().await;
        // Then across replicas: a refresh token an External Client App
        // rotates is good for one refresh, so two replicas refreshing at
        // once would disconnect the user. Whoever waited re-reads below and
        // finds the new access token.
        let _shared = self.store.named_lock(&format!("refresh/{id}")).await?;
        {
            let failures = self
                .refresh_failures
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((at, message)) = failures.get(&id)
                && *at >= waited_from
            {
                return Err(RefreshError::Failed(message.clone()));
            }
        }
        let live = self
            .connection(user_id, server_id)
            .await?
            .ok_or(RefreshError::NotConnected)?;
        if live.access_token != stale {
            return Ok(live); // Someone else refreshed while we waited.
        }
        let server = self
            .store
            .get::<Server>(server_id)
            .await?
            .ok_or(RefreshError::NotConnected)?;
        let (client, _, secret) = self.client(&server).await?;
        let refresh = self
            .store
            .secret(&live.connection.refresh_token_key())
            .await?
            .ok_or(RefreshError::NotConnected)?;
        let refresh = String::from_utf8_lossy(&refresh).into_owned();
        let status = Arc::new(AtomicU16::new(0));
        let http = self.http_client(status.clone(), vec![secret, refresh.clone()]);
        let result = client
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .request_async(&http)
            .await;
        let token = match result {
            Ok(token) => token,
            Err(RequestTokenError::ServerResponse(r))
                if *r.error() == BasicErrorResponseType::InvalidGrant =>
            {
                refreshed("invalid_grant");
                self.drop_connection(
                    &live.connection,
                    "system",
                    "refresh token revoked or expired (invalid_grant)",
                )
                .await?;
                return Err(RefreshError::Revoked);
            }
            Err(e) => {
                refreshed(crate::metrics::ERROR);
                let message =
                    describe_token_error(&e, status.load(Ordering::Relaxed), self.timeout);
                self.refresh_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone(), (Instant::now(), message.clone()));
                return Err(RefreshError::Failed(message));
            }
        };
        refreshed(crate::metrics::OK);
        self.refresh_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let mut connection = live.connection.clone();
        if let Some(url) = &token.extra_fields().instance_url {
            connection.instance_url = self
                .checked_instance_url(url, server.login_host.url())
                .map_err(RefreshError::Failed)?;
        }
        connection.refreshed_at = Some(now_ms());
        let access = token.access_token().secret().clone();
        let rotated = token.refresh_token().map(|t| t.secret().clone());
        let stored = connection.clone();
        let (access_ref, rotated_ref) = (&access, &rotated);
        self.store
            .write(|store| async move {
                let (access, rotated) = (access_ref, rotated_ref);
                // A disconnect or server deletion may have won the race:
                // never bring a deleted connection back.
                let current = store.get::<Connection>(&stored.id).await?;
                if current.is_none_or(|c| c.connected_at != stored.connected_at) {
                    return Err(RefreshError::NotConnected);
                }
                let mut batch = Batch::default();
                batch.put(&stored);
                batch.put_secret(&stored.access_token_key(), access.as_bytes());
                if let Some(rotated) = &rotated {
                    batch.put_secret(&stored.refresh_token_key(), rotated.as_bytes());
                }
                batch.audit(
                    AuditEvent::allowed(
                        "system",
                        Action::ConnectionRefresh,
                        format!("connection/{}", stored.id),
                    )
                    .with_details(json!({
                        "refresh_token_rotated": rotated.is_some(),
                        "instance_url": stored.instance_url,
                    })),
                );
                Ok::<_, RefreshError>((batch, ()))
            })
            .await?;
        Ok(LiveConnection {
            connection,
            access_token: access,
        })
    }

    async fn drop_connection(
        &self,
        connection: &Connection,
        actor: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let connection = connection.clone();
        self.store
            .write(|_| async move {
                let mut batch = Batch::default();
                batch.delete::<Connection>(&connection.id);
                batch.delete_secret(&connection.refresh_token_key());
                batch.delete_secret(&connection.access_token_key());
                batch.audit(
                    AuditEvent::allowed(
                        actor,
                        Action::ConnectionDelete,
                        format!("connection/{}", connection.id),
                    )
                    .with_reason(reason)
                    .with_details(json!({
                        "user_id": connection.user_id,
                        "server_id": connection.server_id,
                    })),
                );
                Ok::<_, StoreError>((batch, ()))
            })
            .await
    }

    /// Disconnects: revokes the refresh token at Salesforce (best effort,
    /// `POST /services/oauth2/revoke`) and deletes the connection. Returns
    /// whether Salesforce confirmed the revocation.
    pub async fn disconnect(
        &self,
        connection: &Connection,
        actor: &str,
    ) -> Result<bool, StoreError> {
        // No refresh may run (and re-store tokens) while we disconnect.
        let lock = self.refresh_lock(&connection.id);
        let _guard = lock.lock().await;
        let _shared = self
            .store
            .named_lock(&format!("refresh/{}", connection.id))
            .await?;
        let server = self.store.get::<Server>(&connection.server_id).await?;
        let refresh = self.store.secret(&connection.refresh_token_key()).await?;
        let mut revoked = false;
        if let (Some(server), Some(token)) = (server, refresh) {
            let url = format!("{}/services/oauth2/revoke", server.login_host.url());
            let body = format!(
                "token={}",
                url::form_urlencoded::byte_serialize(&token).collect::<String>()
            );
            let response = self
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
            revoked = response.is_ok_and(|r| r.status().is_success());
        }
        let reason = if revoked {
            "disconnected; token revoked at Salesforce"
        } else {
            "disconnected; Salesforce did not confirm the revocation"
        };
        self.drop_connection(connection, actor, reason).await?;
        Ok(revoked)
    }
}

/// Counts one Salesforce token refresh that ended in `outcome`
/// ([`crate::metrics::TOKEN_REFRESHES`]).
fn refreshed(outcome: &'static str) {
    metrics::counter!(crate::metrics::TOKEN_REFRESHES, crate::metrics::LABEL_OUTCOME => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LoginHost;

    fn oauth(dir: &tempfile::TempDir) -> OAuth {
        let lock = crate::store::DirLock::acquire(dir.path()).unwrap();
        let key = crate::crypto::MasterKey::parse(&"11".repeat(32), "test").unwrap();
        let store = Arc::new(Store::open(dir.path(), key, lock).unwrap());
        OAuth::new(store, "https://toolgate.example.com")
    }

    #[tokio::test]
    async fn the_access_token_goes_only_to_the_login_host_or_the_instance_url() {
        let dir = tempfile::tempdir().unwrap();
        let oauth = oauth(&dir);
        let trusted = [
            "https://login.salesforce.com",
            "https://acme.my.salesforce.com",
        ];
        // Refused before any request: a request would fail to resolve the
        // host (or reach nothing) and answer `Unreachable` instead.
        for url in [
            "http://evil.example.com/id/00D5g000004AbCdEAK/0055g00000F1a2bAAB",
            "https://login.salesforce.com.evil.example/id/00D/005",
            // In a Salesforce domain family, but any customer can own one.
            "https://evil.my.site.com/id/00D/005",
            "https://evil.force.com/id/00D/005",
            "https://other.my.salesforce.com/id/00D/005",
            // Same host, other scheme or port.
            "http://login.salesforce.com/id/00D/005",
            "https://login.salesforce.com:8443/id/00D/005",
            // Loopback from a production login host.
            "http://127.0.0.1:9/id/00D/005",
            "not a url",
        ] {
            let answer = oauth.identity_username(url, "00Dtoken", &trusted).await;
            assert!(
                matches!(answer, Err(IdentityError::Unacceptable)),
                "{url}: {answer:?}"
            );
        }
    }

    #[test]
    fn a_production_login_host_never_gets_a_loopback_instance_url_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let oauth = oauth(&dir);
        for login in [LoginHost::PRODUCTION_URL, "https://acme.my.salesforce.com"] {
            for url in [
                "http://127.0.0.1:8080",
                "https://localhost",
                "http://[::1]:1",
            ] {
                let err = oauth.checked_instance_url(url, login).unwrap_err();
                assert!(err.contains("loopback"), "{url} from {login}: {err}");
            }
        }
        assert_eq!(
            oauth.checked_instance_url("http://127.0.0.1:8080/", "http://127.0.0.1:41000"),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            oauth.checked_instance_url("https://acme.my.salesforce.com", LoginHost::PRODUCTION_URL),
            Ok("https://acme.my.salesforce.com".into())
        );
    }

    #[tokio::test]
    async fn the_identity_read_waits_at_most_the_upstream_timeout() {
        // A login host that accepts the connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let login = format!("http://{}", listener.local_addr().unwrap());
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let oauth =
            oauth(&dir).with_upstream(Duration::from_millis(300), SalesforceDomains::default());
        let url = format!("{login}/id/00D5g000004AbCdEAK/0055g00000F1a2bAAB");
        let started = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            oauth.identity_username(&url, "00Dtoken", &[&login]),
        )
        .await
        .expect("the identity read outlived the 300 ms upstream timeout by seconds");
        assert!(
            matches!(answer, Err(IdentityError::Unreachable(_))),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn identity_urls_parse() {
        assert_eq!(
            parse_identity_url(
                "https://login.salesforce.com/id/00D5g000004AbCdEAK/0055g00000F1a2bAAB"
            ),
            Some(("00D5g000004AbCdEAK".into(), "0055g00000F1a2bAAB".into()))
        );
        assert_eq!(
            parse_identity_url("https://login.salesforce.com/other/a/b"),
            None
        );
        assert_eq!(parse_identity_url("nonsense"), None);
    }
}
