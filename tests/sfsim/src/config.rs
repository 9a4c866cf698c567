//! sfsim's configuration: the org, its connected app and users, and the
//! simulation options, from a TOML file and/or flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A user's access level in the simulated org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserProfile {
    /// Reads and writes (Salesforce "Standard User").
    Standard,
    /// Reads only: every write gets `INSUFFICIENT_ACCESS_OR_READONLY`.
    ReadOnly,
}

/// A Salesforce user of the org.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name, e.g. `ana.souza@acme-demo.example`.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Email; defaults to the username.
    #[serde(default)]
    pub email: Option<String>,
    /// Access level.
    #[serde(default = "default_profile")]
    pub profile: UserProfile,
}

fn default_profile() -> UserProfile {
    UserProfile::Standard
}

/// The org's connected app (OAuth client).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectedAppConfig {
    /// Consumer key (OAuth client id).
    pub consumer_key: String,
    /// Consumer secret (OAuth client secret).
    pub consumer_secret: String,
    /// The one callback URL that `redirect_uri` must equal exactly.
    pub callback_url: String,
    /// Scopes the app may grant.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    ["api", "refresh_token", "offline_access", "openid", "id"]
        .map(String::from)
        .to_vec()
}

/// Everything sfsim needs to run one org.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Org name, e.g. `Acme Demo`.
    #[serde(default = "default_org_name")]
    pub org_name: String,
    /// True for a sandbox org (another org id; only cosmetic otherwise).
    #[serde(default)]
    pub sandbox: bool,
    /// Login host listener (OAuth, identity URL).
    #[serde(default = "default_login_addr")]
    pub login_addr: SocketAddr,
    /// Instance listener (REST API).
    #[serde(default = "default_instance_addr")]
    pub instance_addr: SocketAddr,
    /// The connected app.
    pub connected_app: ConnectedAppConfig,
    /// The org's users; the first is the default `login_hint`.
    #[serde(default = "default_users")]
    pub users: Vec<UserConfig>,
    /// Skip the login page when `login_hint` names a user (headless tests).
    #[serde(default)]
    pub auto_consent: bool,
    /// Records per query page (Salesforce's default is 2000), and the most
    /// a page holds even when `Sforce-Query-Options: batchSize` asks more.
    #[serde(default = "default_batch_size")]
    pub query_batch_size: usize,
    /// Make page sizes vary from page to page, as Salesforce may.
    #[serde(default = "default_true")]
    pub uneven_batches: bool,
    /// Issue a new refresh token on every refresh (the old one dies).
    #[serde(default)]
    pub refresh_token_rotation: bool,
    /// Daily API request limit.
    #[serde(default = "default_api_limit")]
    pub daily_api_limit: u64,
    /// Seed size: number of Accounts (the other objects scale with it).
    #[serde(default = "default_seed_accounts")]
    pub seed_accounts: usize,
}

fn default_org_name() -> String {
    "Acme Demo".into()
}
fn default_login_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9410))
}
fn default_instance_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9411))
}
fn default_batch_size() -> usize {
    2000
}
fn default_true() -> bool {
    true
}
fn default_api_limit() -> u64 {
    15000
}
fn default_seed_accounts() -> usize {
    600
}

/// The demo users: a standard user, a read-only user, a second standard one.
pub fn default_users() -> Vec<UserConfig> {
    vec![
        UserConfig {
            username: "ana.souza@acme-demo.example".into(),
            display_name: "Ana Souza".into(),
            email: None,
            profile: UserProfile::Standard,
        },
        UserConfig {
            username: "ben.okafor@acme-demo.example".into(),
            display_name: "Ben Okafor".into(),
            email: None,
            profile: UserProfile::ReadOnly,
        },
        UserConfig {
            username: "chloe.martin@acme-demo.example".into(),
            display_name: "Chloé Martin".into(),
            email: None,
            profile: UserProfile::Standard,
        },
    ]
}

impl SimConfig {
    /// A config for tests: port 0 listeners, auto-consent, the given
    /// callback URL, a small seed.
    pub fn for_tests(callback_url: &str) -> Self {
        Self {
            org_name: default_org_name(),
            sandbox: false,
            login_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            instance_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            connected_app: ConnectedAppConfig {
                consumer_key: "3MVG9sfsim.test.consumer.key".into(),
                consumer_secret: "sfsim-test-consumer-secret".into(),
                callback_url: callback_url.into(),
                scopes: default_scopes(),
            },
            users: default_users(),
            auto_consent: true,
            query_batch_size: default_batch_size(),
            uneven_batches: true,
            refresh_token_rotation: false,
            daily_api_limit: default_api_limit(),
            seed_accounts: 60,
        }
    }

    /// The demo org `cargo run -p sfsim` starts without a config file:
    /// 127.0.0.1:9410 (login) and :9411 (instance), the demo connected app
    /// with callback `http://127.0.0.1:8080/auth/callback`, the demo users,
    /// the login page (no auto-consent), and 600 seeded Accounts.
    pub fn demo() -> Self {
        let callback = "http://127.0.0.1:8080/auth/callback";
        Self {
            login_addr: default_login_addr(),
            instance_addr: default_instance_addr(),
            connected_app: ConnectedAppConfig {
                consumer_key: "3MVG9sfsim.demo.consumer.key".into(),
                consumer_secret: "sfsim-demo-consumer-secret".into(),
                callback_url: callback.into(),
                scopes: default_scopes(),
            },
            auto_consent: false,
            seed_accounts: default_seed_accounts(),
            ..Self::for_tests(callback)
        }
    }

    /// Checks what the simulator relies on: at least one user, unique
    /// usernames (case-insensitively, as logins match them), a callback URL
    /// that parses, and a query batch size of at least 1.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.users.is_empty() {
            anyhow::bail!(
                "invalid sfsim config: `users` is empty; the org needs at least one user"
            );
        }
        for (i, user) in self.users.iter().enumerate() {
            if user.username.trim().is_empty() {
                anyhow::bail!("invalid sfsim config: user {} has an empty username", i + 1);
            }
            if self.user_index(&user.username) != Some(i) {
                anyhow::bail!(
                    "invalid sfsim config: username `{}` is listed more than once (usernames are unique, case-insensitively)",
                    user.username
                );
            }
        }
        let callback = &self.connected_app.callback_url;
        if let Err(e) = url::Url::parse(callback) {
            anyhow::bail!(
                "invalid sfsim config: connected_app.callback_url `{callback}` is not a URL: {e}"
            );
        }
        if self.query_batch_size == 0 {
            anyhow::bail!("invalid sfsim config: query_batch_size must be at least 1");
        }
        Ok(())
    }

    /// The index of the user called `username` (case-insensitive, as
    /// Salesforce usernames are).
    pub fn user_index(&self, username: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// Reads a TOML config file.
    pub fn load(path: &PathBuf) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}
