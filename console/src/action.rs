//! What flows through the console: [`Action`]s into the update step (keys,
//! mouse, worker replies), [`Command`]s out of it to the worker, and
//! [`Effect`]s for the terminal loop.
//!
//! These are plain data: no IO happens here.

use crossterm::event::{KeyEvent, MouseEvent};
use toolgate_proto::v1;
use zeroize::Zeroizing;

use crate::client::ApiError;

/// How often the terminal loop sends [`Action::Tick`].
pub const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything the update step reacts to.
#[derive(Debug)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// A mouse event (wheel, click).
    Mouse(MouseEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// The terminal was resized to (columns, rows).
    Resize(u16, u16),
    /// A periodic tick (every [`RETRY_EVERY`]): retries when the daemon
    /// was unreachable.
    Tick,
    /// A reply from the worker (boxed: replies are much larger than keys).
    Reply(Box<Reply>),
}

/// A request to the worker, tagged with an id the reply carries back.
#[derive(Debug)]
pub struct Request {
    /// Chosen by the update step; unique per console run.
    pub id: u64,
    /// What to do.
    pub command: Command,
}

/// One call (or a short sequence of calls) to the control API.
#[derive(Debug)]
#[allow(missing_docs)]
pub enum Command {
    LoadSettings,
    LoadCatalog,
    LoadServers,
    /// Every tool (without schemas), page by page: one `ToolsPage` reply per
    /// page, the last with `done`.
    LoadTools,
    LoadTool {
        id: String,
    },
    LoadToolsets,
    LoadProfiles,
    LoadUsers,
    /// Tokens, Salesforce connections and callable tools of one user.
    LoadUserDetail {
        user_id: String,
    },
    /// The newest events (backlog), then a live tail; replies until it ends.
    TailAudit {
        filter: AuditFilter,
    },
    UpdateSettings(v1::UpdateSettingsRequest),
    /// Registers a server, then (when a consumer key is given) stores its
    /// credentials.
    RegisterServer {
        request: v1::RegisterServerRequest,
        credentials: Option<Credentials>,
    },
    UpdateServer(v1::UpdateServerRequest),
    ConfigureAuthentication {
        server_id: String,
        credentials: Credentials,
    },
    DeleteServer {
        id: String,
    },
    DiscoverTools {
        server_id: String,
    },
    SetToolState {
        ids: Vec<String>,
        state: v1::ToolState,
    },
    SetClassification {
        ids: Vec<String>,
        classification: v1::Classification,
    },
    CreateToolset(v1::CreateToolsetRequest),
    UpdateToolset(v1::UpdateToolsetRequest),
    DeleteToolset {
        id: String,
    },
    /// Adds then removes members of a custom toolset.
    EditToolsetTools {
        toolset_id: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    CreateProfile(v1::CreateAccessProfileRequest),
    UpdateProfile(v1::UpdateAccessProfileRequest),
    DeleteProfile {
        id: String,
    },
    /// Binds then unbinds toolsets of a profile.
    EditBindings {
        profile_id: String,
        bind: Vec<String>,
        unbind: Vec<String>,
    },
    Grant(v1::GrantUserRequest),
    Revoke(v1::RevokeUserRequest),
    CreateUser(v1::CreateUserRequest),
    SetUserEnabled {
        id: String,
        enabled: bool,
    },
    IssueToken(v1::IssueTokenRequest),
    RevokeToken {
        id: String,
        user_id: String,
    },
    DeleteConnection {
        id: String,
        user_id: String,
    },
    /// Stops the long-running request `id` (the audit tail); no reply.
    Cancel {
        id: u64,
    },
}

/// A connected app's consumer key and secret, on their way to the daemon.
/// The secret is wiped from memory when this is dropped; `Debug` never
/// shows it.
pub struct Credentials {
    /// The consumer key (OAuth client id).
    pub client_id: String,
    /// The consumer secret; empty keeps the stored one.
    pub client_secret: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// Filters of the audit tail (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact actor, e.g. `user:ana@example.com`.
    pub actor: String,
    /// Action prefix, e.g. `tool.`.
    pub action_prefix: String,
    /// Target prefix.
    pub target_prefix: String,
}

/// A worker reply to the request with id `id`.
#[derive(Debug)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// Whether this is the request's last reply (false only for pages of a
    /// multi-page load and events of a tail).
    pub last: bool,
    /// The payload.
    pub result: Result<Data, ApiError>,
}

/// What a successful call returned.
#[derive(Debug)]
#[allow(missing_docs)]
pub enum Data {
    Settings(v1::Settings),
    Catalog(Vec<v1::CatalogEntry>),
    Servers(Vec<v1::Server>),
    ToolsPage {
        tools: Vec<v1::Tool>,
        total: usize,
    },
    Tool(v1::Tool),
    Toolsets(Vec<v1::Toolset>),
    Profiles(Vec<v1::AccessProfile>),
    Users(Vec<v1::User>),
    UserDetail(UserDetail),
    /// Stored events, newest first, before the live tail starts.
    AuditBacklog(Vec<v1::AuditEvent>),
    AuditEvent(v1::AuditEvent),
    /// A server was registered; `credentials` says whether its consumer
    /// key and secret were stored too (None: none were given).
    Registered {
        server: v1::Server,
        report: v1::DiscoveryReport,
        credentials: Option<Result<(), ApiError>>,
    },
    Discovered(v1::DiscoveryReport),
    TokenIssued(IssuedToken),
    /// A change went through; `message` says what, `scope` what to reload.
    Changed {
        message: String,
        scope: Scope,
    },
}

/// A user's tokens, connections and callable tools.
#[derive(Debug, Clone)]
pub struct UserDetail {
    /// The user.
    pub user_id: String,
    /// Their MCP tokens (never the values).
    pub tokens: Vec<v1::Token>,
    /// Their Salesforce connections.
    pub connections: Vec<v1::Connection>,
    /// Exposed names of the tools they may call now.
    pub tools: Vec<String>,
}

/// A freshly issued MCP token, shown once. The value is wiped from memory
/// when this is dropped; `Debug` never shows it.
pub struct IssuedToken {
    /// The user it belongs to.
    pub user_id: String,
    /// The token's name.
    pub name: String,
    /// The token value (`tgp_...`).
    pub secret: Zeroizing<String>,
    /// The MCP endpoint it works against.
    pub mcp_url: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("mcp_url", &self.mcp_url)
            .finish()
    }
}

/// Which lists a change makes stale.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Scope {
    Settings,
    Servers,
    Tools,
    Toolsets,
    Profiles,
    Users,
    User(String),
}

/// Something the terminal loop does for the update step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Put text on the system clipboard with an OSC 52 escape (works in
    /// most terminals, also over SSH and inside tmux with `set-clipboard`).
    Copy(String),
}
