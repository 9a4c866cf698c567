//! Helpers shared by the daemon's integration tests: start a daemon
//! in-process on port 0 with a temp data directory, tonic clients that
//! carry the admin token, and [`Fixture`], the admin set-up most tests
//! share (a daemon and its admin clients; with [`Fixture::salesforce`],
//! also an sfsim org registered as a Salesforce server with its connected
//! app configured and every tool approved; then users, grants and MCP
//! tokens).
//!
//! `sf_common` is a different thing: the Salesforce tools called directly,
//! without a daemon.

#![allow(dead_code, missing_docs)]

pub mod oauth_flow;
pub mod process;
pub mod raw_mcp;

// Also included by the console's tests, so both start a daemon the same way.
mod daemon;
// Not every test file uses both.
#[allow(unused_imports)]
pub use daemon::{config, start};

use std::path::{Path, PathBuf};

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use toolgate_gateway::app::{self, Listeners, Running};
use toolgate_gateway::config::{Config, Secrets};
pub use toolgate_proto::AdminToken;
use toolgate_proto::v1;

/// One client per service, sharing a channel, every request carrying the
/// admin token.
pub type Clients = toolgate_proto::AdminClients;

/// The interceptor for admin `token` (no actor).
pub fn admin(token: &str) -> AdminToken {
    AdminToken::new(token).unwrap()
}

/// Connects to the control API at `addr`, every request passing through
/// `interceptor` (an [`AdminToken`], or anything else a test needs to send).
pub async fn clients<I: Interceptor + Clone>(
    addr: std::net::SocketAddr,
    interceptor: I,
) -> toolgate_proto::Clients<InterceptedService<Channel, I>> {
    let channel = toolgate_proto::admin::endpoint(&addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    toolgate_proto::Clients::new(InterceptedService::new(channel, interceptor))
}

/// Registers a Salesforce server named `name` with prefix `prefix`.
pub async fn register(
    clients: &mut Clients,
    name: &str,
    prefix: &str,
) -> v1::RegisterServerResponse {
    clients
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: name.into(),
            tool_prefix: prefix.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Whether any file under `dir` contains `needle`.
pub fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    files_under(dir).into_iter().find(|path| {
        std::fs::read(path)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

/// A daemon started in-process for one test, with its admin clients.
/// `S` is what else was set up: `()` for a bare daemon, [`Org`] for
/// [`Fixture::salesforce`].
pub struct Fixture<S = ()> {
    pub daemon: Running,
    pub admin: Clients,
    /// The admin token (trimmed).
    pub admin_token: String,
    /// `http://<bound HTTP address>/mcp`.
    pub mcp_url: String,
    /// The daemon's data directory (`data` under a temp directory).
    pub data_dir: PathBuf,
    /// The Salesforce org and server, when set up.
    pub sf: S,
    // Dropped last: the daemon and the org are stopped first.
    _dir: tempfile::TempDir,
}

/// An sfsim org registered with the daemon as a Salesforce server.
pub struct Org {
    pub sim: sfsim::Running,
    /// The id toolgate gave the server.
    pub server_id: String,
}

impl Fixture {
    /// A daemon on loopback port 0 whose public URL is its bound HTTP
    /// address.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Fixture::start`], with `tune` applied to the config after the
    /// listeners are bound and the public URL is set (so `tune` may change
    /// the public URL, but not the listen addresses).
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut config = config(&data_dir);
        let listeners = Listeners::bind(&config).await.unwrap();
        let bound = format!("http://{}", listeners.http.local_addr().unwrap());
        config.public_url = Some(bound.clone());
        tune(&mut config);
        let daemon = app::start(&config, &Secrets::default(), listeners)
            .await
            .unwrap();
        let admin_token = std::fs::read_to_string(data_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let admin = clients(daemon.grpc_addr, admin(&admin_token)).await;
        Fixture {
            daemon,
            admin,
            admin_token,
            mcp_url: format!("{bound}/mcp"),
            data_dir,
            sf: (),
            _dir: dir,
        }
    }

    /// This fixture with `sf` set up (e.g. an [`Org`] registered on a
    /// daemon started with [`Fixture::start_with`]).
    pub fn with<S>(self, sf: S) -> Fixture<S> {
        Fixture {
            daemon: self.daemon,
            admin: self.admin,
            admin_token: self.admin_token,
            mcp_url: self.mcp_url,
            data_dir: self.data_dir,
            sf,
            _dir: self._dir,
        }
    }
}

impl Fixture<Org> {
    /// A daemon (as [`Fixture::start`]) and an sfsim org whose connected
    /// app calls back to the daemon, with `edit` applied to sfsim's test
    /// config; the org is registered as server "Acme (sfsim)" (prefix
    /// `salesforce`, My Domain login URL, API 66.0, every tool
    /// auto-approved) and its connected app is configured.
    pub async fn salesforce(edit: impl FnOnce(&mut sfsim::SimConfig)) -> Self {
        Self::salesforce_with(edit, |_| {}).await
    }

    /// [`Fixture::salesforce`] on a daemon started with [`Fixture::start_with`]`(tune)`.
    pub async fn salesforce_with(
        edit: impl FnOnce(&mut sfsim::SimConfig),
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let mut gate = Fixture::start_with(tune).await;
        let public = format!("http://{}", gate.daemon.http_addr);
        let mut sim_config = sfsim::SimConfig::for_tests(&format!("{public}/auth/callback"));
        edit(&mut sim_config);
        let sim = sfsim::start(sim_config).await.unwrap();
        let server_id = register_sfsim(&mut gate.admin, &sim).await;
        configure_sfsim_app(&mut gate.admin, &server_id, &sim).await;
        gate.with(Org { sim, server_id })
    }

    /// The id of the server's maintained toolset of `kind`.
    pub async fn toolset(&mut self, kind: v1::ToolsetKind) -> String {
        toolset(&mut self.admin, &self.sf.server_id, kind).await
    }
}

impl<S> Fixture<S> {
    /// Registers the sfsim org `sim` as the Salesforce server "Acme (sfsim)"
    /// (My Domain login host, API 66.0, tools approved on discovery); returns
    /// its id.
    pub async fn register_sfsim(clients: &mut Clients, sim: &sfsim::Running) -> String {
        clients
            .servers
            .register_server(v1::RegisterServerRequest {
                catalog_kind: "salesforce".into(),
                name: "Acme (sfsim)".into(),
                tool_prefix: "salesforce".into(),
                login_host: Some(v1::LoginHost {
                    kind: v1::LoginHostKind::MyDomain.into(),
                    url: sim.login_url.clone(),
                }),
                api_version: "66.0".into(),
                tool_enablement: v1::ToolEnablement::AutoApprove.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .server
            .unwrap()
            .id
    }

    /// Enters the consumer key and secret of `sim`'s connected app for server
    /// `server_id`.
    pub async fn configure_sfsim_app(clients: &mut Clients, server_id: &str, sim: &sfsim::Running) {
        let app = &sim.sim.config.connected_app;
        clients
            .servers
            .configure_authentication(v1::ConfigureAuthenticationRequest {
                server_id: server_id.into(),
                client_id: app.consumer_key.clone(),
                client_secret: app.consumer_secret.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// A new toolgate user with email `email`; returns its id.
    pub async fn create_user(&mut self, email: &str) -> String {
        create_user(&mut self.admin, email).await
    }

    /// A new MCP access token of `user_id` named `name`; returns the secret.
    pub async fn issue_token(&mut self, user_id: &str, name: &str) -> String {
        issue_token(&mut self.admin, user_id, name).await
    }

    /// A new user granted `toolset_id` through a new access profile, and an
    /// MCP token of theirs; returns (user id, profile id, token secret).
    pub async fn user(&mut self, email: &str, toolset_id: &str) -> (String, String, String) {
        let user_id = self.create_user(email).await;
        let profile_id = self
            .admin
            .profiles
            .create_access_profile(v1::CreateAccessProfileRequest {
                name: format!("profile for {email}"),
                description: String::new(),
                toolset_ids: vec![toolset_id.into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap()
            .id;
        self.admin
            .profiles
            .grant_user(v1::GrantUserRequest {
                profile_id: profile_id.clone(),
                user_id: user_id.clone(),
                expires_at: None,
                expected_revision: None,
            })
            .await
            .unwrap();
        let token = self.issue_token(&user_id, "test").await;
        (user_id, profile_id, token)
    }
}

/// Registers the sfsim org `sim` as the Salesforce server "Acme (sfsim)"
/// (My Domain login host, API 66.0, tools approved on discovery); returns
/// its id.
pub async fn register_sfsim(clients: &mut Clients, sim: &sfsim::Running) -> String {
    clients
        .servers
        .register_server(v1::RegisterServerRequest {
            catalog_kind: "salesforce".into(),
            name: "Acme (sfsim)".into(),
            tool_prefix: "salesforce".into(),
            login_host: Some(v1::LoginHost {
                kind: v1::LoginHostKind::MyDomain.into(),
                url: sim.login_url.clone(),
            }),
            api_version: "66.0".into(),
            tool_enablement: v1::ToolEnablement::AutoApprove.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .server
        .unwrap()
        .id
}

/// Enters the consumer key and secret of `sim`'s connected app for server
/// `server_id`.
pub async fn configure_sfsim_app(clients: &mut Clients, server_id: &str, sim: &sfsim::Running) {
    let app = &sim.sim.config.connected_app;
    clients
        .servers
        .configure_authentication(v1::ConfigureAuthenticationRequest {
            server_id: server_id.into(),
            client_id: app.consumer_key.clone(),
            client_secret: app.consumer_secret.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A new toolgate user with email `email`; returns its id.
pub async fn create_user(clients: &mut Clients, email: &str) -> String {
    clients
        .users
        .create_user(v1::CreateUserRequest {
            email: email.into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .id
}

/// A new MCP access token of `user_id` named `name`; returns the secret.
pub async fn issue_token(clients: &mut Clients, user_id: &str, name: &str) -> String {
    clients
        .users
        .issue_token(v1::IssueTokenRequest {
            user_id: user_id.into(),
            name: name.into(),
            expires_at: None,
        })
        .await
        .unwrap()
        .into_inner()
        .secret
}

/// The id of server `server_id`'s maintained toolset of `kind`.
pub async fn toolset(clients: &mut Clients, server_id: &str, kind: v1::ToolsetKind) -> String {
    clients
        .toolsets
        .list_toolsets(v1::ListToolsetsRequest {
            server_id: server_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .toolsets
        .into_iter()
        .find(|t| t.kind == i32::from(kind))
        .unwrap()
        .id
}

/// Lifts the per-user call limit (default 120 per minute, 8 at once) and
/// the org guard, for tests of the call path itself that make many calls,
/// or many at once, as one user (the limits have their own tests in
/// `limits.rs`).
pub async fn lift_call_limits(clients: &mut Clients) {
    clients
        .settings
        .update_settings(v1::UpdateSettingsRequest {
            limits: Some(v1::LimitSettings {
                org_api_usage_max_percent: 0,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}
