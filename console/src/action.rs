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
    Paste(Pasted),
    /// The terminal was resized to (columns, rows).
    Resize(u16, u16),
    /// A periodic tick (every [`RETRY_EVERY`]): retries when the daemon
    /// was unreachable, else refreshes the access request and held call
    /// queues (their tab counts).
    Tick,
    /// A reply from the worker (boxed: replies are much larger than keys).
    Reply(Box<Reply>),
}

/// Pasted text: often a secret (the consumer secret), so it is wiped from
/// memory when dropped and `Debug` never shows it.
pub struct Pasted(pub Zeroizing<String>);

impl std::fmt::Debug for Pasted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pasted(<{} chars>)", self.0.chars().count())
    }
}

/// A request to the worker, tagged with an id the reply carries back.
#[derive(Debug)]
pub struct Request {
    /// Chosen by the update step; unique per console run.
    pub id: u64,
    /// What to do.
    pub command: Command,
}

/// One call (or a short sequence of calls) to the control API. Each
/// variant names the `toolgate.v1` RPCs it makes; their errors (documented
/// in `proto/toolgate/v1/*.proto`) come back as the reply's [`ApiError`],
/// and any call fails with DEADLINE_EXCEEDED after
/// [`crate::worker::CALL_TIMEOUT`] (not the audit tail).
#[derive(Debug)]
pub enum Command {
    /// `SettingsService.GetSettings` → [`Data::Settings`].
    LoadSettings,
    /// `CatalogService.ListCatalogEntries` → [`Data::Catalog`].
    LoadCatalog,
    /// `ServerService.ListServers` → [`Data::Servers`].
    LoadServers,
    /// `ToolService.ListTools` without schemas, 1000 a page: one
    /// [`Data::ToolsPage`] reply per page, the last one marked `last`.
    LoadTools,
    /// `ToolService.GetTool` (with schemas) → [`Data::Tool`].
    LoadTool {
        /// Tool id.
        id: String,
    },
    /// `ToolsetService.ListToolsets` → [`Data::Toolsets`].
    LoadToolsets,
    /// `AccessProfileService.ListAccessProfiles` → [`Data::Profiles`].
    LoadProfiles,
    /// `UserService.ListUsers` → [`Data::Users`].
    LoadUsers,
    /// `ClientService.ListClients`, every page → [`Data::Clients`].
    LoadClients {
        /// Also HIDDEN and DELETED clients.
        all: bool,
    },
    /// `ClientService.UpdateClient` → [`Data::Changed`].
    UpdateClient(v1::UpdateClientRequest),
    /// `ClientService.RevokeClient` → [`Data::Changed`].
    RevokeClient(v1::RevokeClientRequest),
    /// `UserService.ListTokens`, `ConnectionService.ListConnections` and
    /// `UserService.ListUserTools`, together → [`Data::UserDetail`].
    LoadUserDetail {
        /// User id.
        user_id: String,
    },
    /// `AuditService.StreamEvents` (subscribed first), then
    /// `AuditService.ListEvents` for the backlog → one
    /// [`Data::AuditBacklog`], then a [`Data::AuditEvent`] per event until
    /// the stream ends (an error reply) or the request is cancelled.
    TailAudit {
        /// Server-side filters.
        filter: AuditFilter,
    },
    /// `SettingsService.UpdateSettings` → [`Data::Changed`].
    UpdateSettings(Box<v1::UpdateSettingsRequest>),
    /// `ServerService.RegisterServer`, then (when given)
    /// `ServerService.ConfigureAuthentication` → [`Data::Registered`].
    RegisterServer {
        /// The registration.
        request: v1::RegisterServerRequest,
        /// The consumer key and secret, if entered with the registration.
        credentials: Option<Credentials>,
    },
    /// `ServerService.UpdateServer` → [`Data::Changed`].
    UpdateServer(v1::UpdateServerRequest),
    /// `ServerService.ConfigureAuthentication` (sets or rotates the
    /// consumer key and secret) → [`Data::Changed`].
    ConfigureAuthentication {
        /// Server id.
        server_id: String,
        /// Consumer key and secret.
        credentials: Credentials,
    },
    /// `ServerService.DeleteServer` → [`Data::Changed`].
    DeleteServer {
        /// Server id.
        id: String,
    },
    /// `ServerService.DiscoverTools` → [`Data::Discovered`].
    DiscoverTools {
        /// Server id.
        server_id: String,
    },
    /// `ToolService.UpdateTool` for one id, `BatchUpdateTools` (atomic) for
    /// several → [`Data::Changed`].
    SetToolState {
        /// Tool ids.
        ids: Vec<String>,
        /// The new state.
        state: v1::ToolState,
    },
    /// `ToolService.UpdateTool` per tool (not atomic; a failure says how
    /// many were saved) → [`Data::Changed`].
    SetClassification {
        /// Tool ids.
        ids: Vec<String>,
        /// The new classification.
        classification: v1::Classification,
    },
    /// `ToolsetService.CreateToolset` → [`Data::Changed`].
    CreateToolset(v1::CreateToolsetRequest),
    /// `ToolsetService.UpdateToolset` → [`Data::Changed`].
    UpdateToolset(v1::UpdateToolsetRequest),
    /// `ToolsetService.DeleteToolset` → [`Data::Changed`].
    DeleteToolset {
        /// Toolset id.
        id: String,
    },
    /// `ToolsetService.AddToolsetTools` then `RemoveToolsetTools` (each
    /// only when non-empty) → [`Data::Changed`].
    EditToolsetTools {
        /// Toolset id.
        toolset_id: String,
        /// Tool ids to add.
        add: Vec<String>,
        /// Tool ids to remove.
        remove: Vec<String>,
    },
    /// `AccessProfileService.CreateAccessProfile` → [`Data::Changed`].
    CreateProfile(v1::CreateAccessProfileRequest),
    /// `AccessProfileService.UpdateAccessProfile` → [`Data::Changed`].
    UpdateProfile(v1::UpdateAccessProfileRequest),
    /// `AccessProfileService.DeleteAccessProfile` → [`Data::Changed`].
    DeleteProfile {
        /// Profile id.
        id: String,
    },
    /// `AccessProfileService.BindToolsets` then `UnbindToolsets` (each only
    /// when non-empty) → [`Data::Changed`].
    EditBindings {
        /// Profile id.
        profile_id: String,
        /// Toolset ids to bind.
        bind: Vec<String>,
        /// Toolset ids to unbind.
        unbind: Vec<String>,
    },
    /// `AccessProfileService.GrantUser` → [`Data::Changed`].
    Grant(v1::GrantUserRequest),
    /// `AccessProfileService.RevokeUser` → [`Data::Changed`].
    Revoke(v1::RevokeUserRequest),
    /// `UserService.CreateUser` → [`Data::Changed`].
    CreateUser(v1::CreateUserRequest),
    /// `UserService.EnableUser` or `DisableUser` → [`Data::Changed`].
    SetUserEnabled {
        /// User id.
        id: String,
        /// Enable (true) or disable.
        enabled: bool,
    },
    /// `UserService.IssueToken` → [`Data::TokenIssued`].
    IssueToken(v1::IssueTokenRequest),
    /// `UserService.IssueSignInLink` → [`Data::SignInLinkIssued`].
    IssueSignInLink {
        /// User id.
        user_id: String,
        /// Their email, for the overlay's title.
        email: String,
    },
    /// `UserService.RevokeToken` → [`Data::Changed`].
    RevokeToken {
        /// Token id.
        id: String,
        /// Its user (to reload their detail).
        user_id: String,
    },
    /// `ConnectionService.DeleteConnection` (revokes at Salesforce) →
    /// [`Data::Changed`].
    DeleteConnection {
        /// Connection id.
        id: String,
        /// Its user (to reload their detail).
        user_id: String,
    },
    /// `AccessProfileService.PreviewAccessChange` (writes nothing) →
    /// [`Data::AccessPreview`]: who would gain or lose which tools if the
    /// change waiting for confirmation were made.
    PreviewAccess(v1::PreviewAccessChangeRequest),
    /// `AccessRequestService.ListAccessRequests`, every page →
    /// [`Data::AccessRequests`].
    LoadAccessRequests {
        /// Also decided (approved, denied, expired) requests; false: only
        /// pending ones.
        all: bool,
    },
    /// `AccessRequestService.ApproveAccessRequest` → [`Data::Changed`].
    ApproveAccessRequest(v1::ApproveAccessRequestRequest),
    /// `AccessRequestService.DenyAccessRequest` → [`Data::Changed`].
    DenyAccessRequest(v1::DenyAccessRequestRequest),
    /// `HeldCallService.ListHeldCalls`, every page → [`Data::HeldCalls`].
    LoadHeldCalls {
        /// Also decided calls; false: only pending ones.
        all: bool,
    },
    /// `HeldCallService.GetHeldCall` (with its arguments) →
    /// [`Data::HeldCall`].
    LoadHeldCall {
        /// Held call id.
        id: String,
    },
    /// `HeldCallService.ApproveHeldCall` → [`Data::Changed`].
    ApproveHeldCall(v1::ApproveHeldCallRequest),
    /// `HeldCallService.DenyHeldCall` → [`Data::Changed`].
    DenyHeldCall(v1::DenyHeldCallRequest),
    /// `HookService.ListHooks` → [`Data::Hooks`].
    LoadHooks,
    /// `HookService.CreateHook` → [`Data::Changed`].
    CreateHook {
        /// The hook (id, times and revision ignored).
        hook: Box<v1::Hook>,
        /// A webhook's signing secret.
        secret: Option<HookSecret>,
    },
    /// `HookService.UpdateHook` → [`Data::Changed`].
    UpdateHook {
        /// The new settings; `hook.id` names the hook.
        hook: Box<v1::Hook>,
        /// A new webhook signing secret; None keeps the stored one.
        secret: Option<HookSecret>,
        /// The revision the admin saw.
        expected_revision: Option<u64>,
    },
    /// `HookService.DeleteHook` → [`Data::Changed`].
    DeleteHook {
        /// Hook id.
        id: String,
    },
    /// `HookService.TestHook` (a dry run; writes nothing) →
    /// [`Data::HookTested`].
    TestHook(Box<v1::TestHookRequest>),
    /// Stops the long-running request `id` (the audit tail); no reply.
    Cancel {
        /// The request to stop.
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

/// A webhook hook's signing secret on its way to the daemon: wiped from
/// memory when dropped; `Debug` never shows it.
pub struct HookSecret(pub Zeroizing<String>);

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSecret(<redacted>)")
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
    Clients(Vec<v1::AiClient>),
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
    SignInLinkIssued(IssuedLink),
    /// Who would gain or lose which tools through which profiles.
    AccessPreview(v1::PreviewAccessChangeResponse),
    /// Access requests (newest first) and how many are pending in all.
    AccessRequests {
        requests: Vec<v1::AccessRequest>,
        pending: u32,
    },
    /// Held calls (newest first, without arguments) and how many are
    /// pending in all.
    HeldCalls {
        calls: Vec<v1::HeldCall>,
        pending: u32,
    },
    /// One held call with its arguments.
    HeldCall(v1::HeldCall),
    /// Every hook, in run order.
    Hooks(Vec<v1::Hook>),
    /// What a hook would do to a sample call.
    HookTested(v1::TestHookResponse),
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

/// A freshly issued one-time sign-in link, shown once. The URL (a secret
/// until used) is wiped from memory when this is dropped; `Debug` never
/// shows it.
pub struct IssuedLink {
    /// Whose link it is.
    pub email: String,
    /// `<public URL>/signin/link/<code>`.
    pub url: Zeroizing<String>,
    /// When it stops working (RFC 3339, UTC), if known.
    pub expires_at: String,
}

impl std::fmt::Debug for IssuedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLink")
            .field("email", &self.email)
            .field("url", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
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
    Clients,
    /// Access requests (and the grants an approval makes).
    AccessRequests,
    HeldCalls,
    Hooks,
}

/// Something the terminal loop does for the update step.
#[derive(Clone, PartialEq, Eq)]
pub enum Effect {
    /// Put text on the system clipboard with an OSC 52 escape (works in
    /// most terminals, also over SSH and inside tmux with `set-clipboard`).
    /// The text may hold a token: it is wiped when dropped and `Debug`
    /// does not show it.
    Copy(Zeroizing<String>),
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Copy(text) => write!(f, "Copy(<{} chars>)", text.chars().count()),
        }
    }
}
