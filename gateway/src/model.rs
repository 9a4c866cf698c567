//! The domain types of the object model in DESIGN.md: settings, servers,
//! tools, toolsets, access profiles, users, tokens and audit events.
//!
//! These are what the store persists and what the control API and policy
//! work on. They carry no storage or transport concerns: the store adds its
//! own framing and the control module converts to and from the proto types.
//! Times are Unix epoch milliseconds (`i64`, UTC).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod shared;

/// Unix epoch milliseconds, UTC.
pub type Millis = i64;

/// The current time in Unix epoch milliseconds.
pub fn now_ms() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A new random-and-time-ordered id (UUID v7, hyphenated lowercase).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Gateway-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The MCP traffic kill switch: false refuses every tool call.
    pub mcp_traffic_enabled: bool,
    /// New tools start `PendingReview` (true) or `Approved` (false) on
    /// servers whose tool enablement is `Inherit`.
    pub require_tool_approval: bool,
    /// Given to discovered tools whose annotations do not say what they do.
    pub default_classification: Classification,
    /// How AI clients sign in to `/mcp` (identity provider, registration
    /// policy). Absent in settings stored before sign-in existed: defaults.
    #[serde(default)]
    pub sign_in: SignInSettings,
    /// Access requests, per-call approval and audit verbosity. Absent in
    /// settings stored before they existed: defaults.
    #[serde(default)]
    pub governance: GovernanceSettings,
    /// Call rates, concurrency and the org API-usage guard. Absent in
    /// settings stored before they existed: defaults.
    #[serde(default)]
    pub limits: LimitSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mcp_traffic_enabled: true,
            require_tool_approval: true,
            default_classification: Classification {
                action: ToolAction::Write,
                sensitive: false,
                dangerous: false,
            },
            sign_in: SignInSettings::default(),
            governance: GovernanceSettings::default(),
            limits: LimitSettings::default(),
        }
    }
}

/// A call rate as a token bucket: `burst` calls may be made at once, and
/// the bucket refills at `calls_per_minute` (one call every
/// `60 / calls_per_minute` seconds). `calls_per_minute` 0: unlimited (and
/// `burst` is 0 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    /// Sustained calls per minute; 0 = unlimited.
    pub calls_per_minute: u32,
    /// Most calls at once after a quiet spell (the bucket's size), 1 or
    /// more when `calls_per_minute` is set.
    pub burst: u32,
}

impl RateLimit {
    /// Whether no rate applies.
    pub fn is_unlimited(self) -> bool {
        self.calls_per_minute == 0
    }
}

/// The limits of one scope (a user, a tool or a server): a call rate and
/// the most calls in flight at once (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CallLimit {
    /// Calls per minute and burst.
    pub rate: RateLimit,
    /// Most calls running at once; 0 = unlimited.
    pub max_concurrent: u32,
}

/// Gateway-wide limits on tool calls (enforced per replica, in memory) and
/// the org API-usage guard.
///
/// A call counts against its user, its tool and its tool's server; it is
/// refused when any of the three is over its rate or concurrency. Which
/// per-user limit applies: the one of `profile_overrides` for a profile the
/// user holds a live grant of, the most generous of them when they hold
/// several (rate: unlimited, else the highest `calls_per_minute`, then the
/// highest `burst`; concurrency: unlimited, else the highest), else
/// `per_user`. Which per-tool limit applies: `tool_overrides[tool name]`,
/// else `per_tool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Each user's calls across all tools. Default: 120 per minute, burst
    /// 30, 8 at once.
    pub per_user: CallLimit,
    /// Each tool's calls from all users. Default: unlimited.
    pub per_tool: CallLimit,
    /// Each server's calls from all users (all its tools). Default:
    /// unlimited.
    pub per_server: CallLimit,
    /// Access profile id to the per-user limit of its holders (replacing
    /// `per_user`).
    pub profile_overrides: std::collections::BTreeMap<String, CallLimit>,
    /// Exposed tool name to that tool's per-tool limit (replacing
    /// `per_tool`).
    pub tool_overrides: std::collections::BTreeMap<String, CallLimit>,
    /// When the Salesforce org's daily API usage (`Sforce-Limit-Info:
    /// api-usage=<used>/<max>`) reaches this percentage, only
    /// `essential_tools` are called in that org; 0 = off. Default: 90.
    pub org_api_usage_max_percent: u32,
    /// Exposed tool names or globs (`*`, `?`) still called when the org
    /// guard is on. Default: none.
    pub essential_tools: Vec<String>,
}

impl LimitSettings {
    /// Default per-user limit: 120 calls per minute, bursts of 30, 8 at
    /// once.
    pub const DEFAULT_PER_USER: CallLimit = CallLimit {
        rate: RateLimit {
            calls_per_minute: 120,
            burst: 30,
        },
        max_concurrent: 8,
    };
    /// Default [`Self::org_api_usage_max_percent`].
    pub const DEFAULT_ORG_API_USAGE_MAX_PERCENT: u32 = 90;

    /// No limits at all (and the org guard off).
    pub fn unlimited() -> Self {
        Self {
            per_user: CallLimit::default(),
            per_tool: CallLimit::default(),
            per_server: CallLimit::default(),
            profile_overrides: Default::default(),
            tool_overrides: Default::default(),
            org_api_usage_max_percent: 0,
            essential_tools: Vec::new(),
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            per_user: Self::DEFAULT_PER_USER,
            org_api_usage_max_percent: Self::DEFAULT_ORG_API_USAGE_MAX_PERCENT,
            ..Self::unlimited()
        }
    }
}

/// Gateway-wide settings of access requests, per-call approval and the
/// audit log's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GovernanceSettings {
    /// tools/list also offers the tools a user could request (from
    /// requestable profiles they do not hold), marked as requestable;
    /// calling one opens an access request. Default on.
    pub show_requestable_tools: bool,
    /// A pending access request nobody decided expires after this many
    /// seconds (default 7 days).
    pub access_request_ttl_secs: u64,
    /// A held call nobody decided expires after this many seconds, and an
    /// approved one must be retried within this many seconds of approval
    /// (default 1 hour).
    pub held_call_ttl_secs: u64,
    /// Which calls a person must approve one by one.
    pub call_approval: CallApprovalRule,
    /// What tool-call audit events keep.
    pub audit_verbosity: AuditVerbosity,
}

impl GovernanceSettings {
    /// Default [`Self::access_request_ttl_secs`]: 7 days.
    pub const DEFAULT_ACCESS_REQUEST_TTL_SECS: u64 = 7 * 24 * 3600;
    /// Default [`Self::held_call_ttl_secs`]: 1 hour.
    pub const DEFAULT_HELD_CALL_TTL_SECS: u64 = 3600;
}

impl Default for GovernanceSettings {
    fn default() -> Self {
        Self {
            show_requestable_tools: true,
            access_request_ttl_secs: Self::DEFAULT_ACCESS_REQUEST_TTL_SECS,
            held_call_ttl_secs: Self::DEFAULT_HELD_CALL_TTL_SECS,
            call_approval: CallApprovalRule::default(),
            audit_verbosity: AuditVerbosity::Standard,
        }
    }
}

/// Which tool calls wait for a person's approval, one call at a time: a
/// call matches when its tool's exposed name matches one of `tools`
/// (globs: `*` any run of characters, `?` one) or its classification has
/// one of `classifications`. Empty: no call is held.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CallApprovalRule {
    /// Exposed tool names or globs (`salesforce_delete_*`).
    pub tools: Vec<String>,
    /// Classification tags; a tool with any of them matches.
    pub classifications: Vec<ClassificationTag>,
}

/// One part of a tool's [`Classification`], used by filters: its action,
/// or one of its risk flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClassificationTag {
    /// Action READ.
    Read,
    /// Action WRITE.
    Write,
    /// Action DELETE.
    Delete,
    /// Risk flag SENSITIVE.
    Sensitive,
    /// Risk flag DANGEROUS.
    Dangerous,
}

impl ClassificationTag {
    /// Whether a tool classified `c` carries this tag.
    pub fn matches(self, c: &Classification) -> bool {
        match self {
            Self::Read => c.action == ToolAction::Read,
            Self::Write => c.action == ToolAction::Write,
            Self::Delete => c.action == ToolAction::Delete,
            Self::Sensitive => c.sensitive,
            Self::Dangerous => c.dangerous,
        }
    }
}

/// What tool-call audit events keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditVerbosity {
    /// Who, what (tool, server, client), outcome and latency.
    Minimal,
    /// MINIMAL plus an argument summary (field names, query shape with
    /// literals masked) and hook outcomes.
    Standard,
    /// STANDARD plus the arguments with PII redacted and the result's size
    /// (bytes, records).
    Full,
}

/// How users and AI clients sign in to the MCP endpoint's OAuth 2.1
/// authorization server (MCP 2026-07-28 and 2025-11-25, "Authorization").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignInSettings {
    /// The company's OpenID Connect provider; `None`: the built-in sign-in
    /// (one-time sign-in links issued by an admin) only.
    #[serde(default)]
    pub identity_provider: Option<IdentityProvider>,
    /// Which AI clients may register, and as what.
    #[serde(default)]
    pub registration: RegistrationPolicy,
}

/// An OpenID Connect provider users sign in through (OpenID Connect Core
/// 1.0, authorization code flow; discovery from `issuer_url`). Its client
/// secret is sealed in the store under [`IdentityProvider::SECRET_KEY`],
/// never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProvider {
    /// The issuer (`https://login.example.com`, or `http://` on loopback
    /// only); `/.well-known/openid-configuration` is read from it.
    pub issuer_url: String,
    /// toolgate's client id at the provider.
    pub client_id: String,
    /// When the client secret was last set; `None`: no secret (a public
    /// client).
    pub client_secret_set_at: Option<Millis>,
    /// First 8 hex characters of the SHA-256 of the client secret, to tell
    /// secrets apart without showing them.
    pub client_secret_fingerprint: Option<String>,
    /// Scopes requested (`openid` is always sent).
    pub scopes: Vec<String>,
    /// The ID token or userinfo claim holding the user's email (`email`).
    pub email_claim: String,
    /// The claim listing the user's groups (`groups`); empty: groups are
    /// not read.
    pub groups_claim: String,
    /// Email domains allowed to sign in (`acme.example`); empty: any.
    pub allowed_email_domains: Vec<String>,
    /// Groups allowed to sign in; empty: any.
    pub allowed_groups: Vec<String>,
    /// What happens to a verified email no toolgate user has.
    pub unknown_users: UnknownUsers,
    /// Accept an email the provider does not mark verified
    /// (`email_verified` absent; `false` is always refused). Off by
    /// default: a provider that lets users set their own email would
    /// otherwise let them sign in as someone else (OpenID Connect Core 1.0
    /// section 5.7: only a verified email identifies a user across
    /// providers). Turn on only for providers whose email claim is
    /// administered (e.g. Microsoft Entra ID's `upn`).
    #[serde(default)]
    pub accept_unverified_email: bool,
}

impl IdentityProvider {
    /// Store key of the sealed client secret.
    pub const SECRET_KEY: &'static str = "sign_in/identity_provider/client_secret";
}

/// What sign-in does with a verified email that matches no user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnknownUsers {
    /// Refused: an admin creates users first.
    Refuse,
    /// Created active on first sign-in (with no grants).
    Create,
}

/// Which AI clients may register with the authorization server, and the
/// type each new client gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationPolicy {
    /// Client types that may sign in; a client of another type is refused
    /// at sign-in and on every call. Default: `[Personal]`.
    pub allowed_types: Vec<ClientType>,
    /// The type a new client gets (at its first sign-in by a user).
    pub default_type: ClientType,
    /// Whether Dynamic Client Registration (RFC 7591) is open. Client ID
    /// Metadata Documents are always accepted.
    pub dynamic_registration_enabled: bool,
    /// Hosts (`host` or `host:port`) whose Client ID Metadata Documents may
    /// be fetched although they resolve to a loopback, private or
    /// link-local address (SSRF guard exceptions). Default: none.
    pub metadata_document_private_hosts: Vec<String>,
    /// Idle days after which an `Ephemeral` client is closed; `None`:
    /// never.
    pub ephemeral_close_after_days: Option<u32>,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            allowed_types: vec![ClientType::Personal],
            default_type: ClientType::Personal,
            dynamic_registration_enabled: true,
            metadata_document_private_hosts: Vec::new(),
            ephemeral_close_after_days: Some(1),
        }
    }
}

/// Who an AI client serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientType {
    /// One person's client on their own machine or account.
    Personal,
    /// Used by several people (a team's agent).
    Shared,
    /// An unattended service or script.
    Service,
    /// Short-lived (a CI job, a one-off session); closed when idle.
    Ephemeral,
}

/// An AI client's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientState {
    /// Works.
    Active,
    /// Works, but hidden from default listings (the console shows it on
    /// request).
    Hidden,
    /// Refused at sign-in and on every call; an admin may reopen it.
    Closed,
    /// Refused for good; its tokens are revoked; kept for the audit trail.
    Deleted,
}

impl ClientState {
    /// Whether the client may sign in and call tools.
    pub fn is_usable(self) -> bool {
        matches!(self, ClientState::Active | ClientState::Hidden)
    }
}

/// How an AI client record came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientOrigin {
    /// A personal access token issued by an admin (`UserService.IssueToken`).
    AccessToken,
    /// An OAuth client identified by a Client ID Metadata Document URL.
    MetadataDocument,
    /// An OAuth client registered through Dynamic Client Registration
    /// (RFC 7591).
    DynamicRegistration,
}

/// An AI client as a governed object: one per user and OAuth client they
/// signed in with, and one per personal access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiClient {
    /// Record id.
    pub id: String,
    /// Display name (the client's `client_name`, or the token's label).
    pub name: String,
    /// How it came to be.
    pub origin: ClientOrigin,
    /// The OAuth `client_id` ([`OAuthClient::id`]); `None` for
    /// [`ClientOrigin::AccessToken`].
    pub client_id: Option<String>,
    /// The personal access token ([`Token::id`]) of an
    /// [`ClientOrigin::AccessToken`] client.
    pub token_id: Option<String>,
    /// The user it acts for.
    pub owner_user_id: String,
    /// Its type.
    pub client_type: ClientType,
    /// Its lifecycle state.
    pub state: ClientState,
    /// The per-client kill switch: false refuses every tool call of this
    /// client (the client still signs in and lists tools).
    pub traffic_enabled: bool,
    /// Closed after this many days without use; `None`: never.
    pub close_after_idle_days: Option<u32>,
    /// Last use (tool list or call), at minute resolution.
    pub last_used_at: Option<Millis>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Moves on every change (optimistic concurrency for admin edits).
    #[serde(default)]
    pub revision: u64,
}

/// An OAuth client known to the authorization server: registered through
/// DCR (RFC 7591) or read from its Client ID Metadata Document (whose URL
/// is its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// The `client_id`.
    pub id: String,
    /// `client_name`, or the client id's host when it has none.
    pub name: String,
    /// How it registered ([`ClientOrigin::MetadataDocument`] or
    /// [`ClientOrigin::DynamicRegistration`]).
    pub origin: ClientOrigin,
    /// Exact redirect URIs it may use.
    pub redirect_uris: Vec<String>,
    /// `client_uri`, shown on the consent page.
    pub client_uri: Option<String>,
    /// `token_endpoint_auth_method`: `none`, `client_secret_basic` or
    /// `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// SHA-256 (hex) of the client secret DCR issued, if any.
    pub secret_hash: Option<String>,
    /// Registration (or document fetch) time.
    pub created_at: Millis,
    /// When a metadata document was last fetched.
    pub fetched_at: Option<Millis>,
}

/// One sign-in of a user with an OAuth client: the refresh token family
/// (OAuth 2.1 section 4.3.1, refresh token rotation). Every refresh
/// replaces `refresh_hash`; presenting an earlier refresh token revokes the
/// whole grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthGrant {
    /// Grant id.
    pub id: String,
    /// The AI client record.
    pub ai_client_id: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The signed-in user.
    pub user_id: String,
    /// The resource (RFC 8707) its tokens are bound to: the `/mcp` URL.
    pub resource: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// SHA-256 (hex) of the current refresh token.
    pub refresh_hash: String,
    /// SHA-256 (hex) of earlier refresh tokens (newest last, bounded):
    /// presenting one is reuse.
    pub used_refresh_hashes: Vec<String>,
    /// Sign-in time.
    pub created_at: Millis,
    /// Last refresh.
    pub refreshed_at: Option<Millis>,
    /// When the family ends regardless of refreshes.
    pub expires_at: Millis,
    /// Revocation time.
    pub revoked_at: Option<Millis>,
    /// Why it was revoked (`refresh token reuse`, `client closed`, ...).
    #[serde(default)]
    pub revoked_reason: String,
}

/// What a tool does to upstream state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolAction {
    /// Reads only.
    Read,
    /// Creates or changes data.
    Write,
    /// Deletes data.
    Delete,
}

/// A tool's classification. It never changes a tool's state, but its
/// action decides membership of the maintained "Read only" toolsets
/// ([`crate::governance::toolset_contains`]), so it can change who may call
/// an approved tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// What the tool does.
    pub action: ToolAction,
    /// Risk flag: touches sensitive data.
    pub sensitive: bool,
    /// Risk flag: misuse can do serious harm.
    pub dangerous: bool,
}

/// A tool's governance state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolState {
    /// Waiting for review; not callable.
    PendingReview,
    /// Callable by users it is granted to.
    Approved,
    /// Disabled by an admin.
    Disabled,
    /// No longer offered by the server.
    Removed,
}

impl ToolState {
    /// The state's name as the API and audit log spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "PENDING_REVIEW",
            Self::Approved => "APPROVED",
            Self::Disabled => "DISABLED",
            Self::Removed => "REMOVED",
        }
    }
}

/// How a server's newly discovered tools get their first state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolEnablement {
    /// Follow `Settings::require_tool_approval`.
    Inherit,
    /// New tools start `PendingReview`.
    RequireApproval,
    /// New tools start `Approved`.
    AutoApprove,
}

/// Where a Salesforce server's users log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "url", rename_all = "snake_case")]
pub enum LoginHost {
    /// `https://login.salesforce.com`.
    Production,
    /// `https://test.salesforce.com`.
    Sandbox,
    /// The org's My Domain URL (validated, without a trailing slash).
    MyDomain(String),
}

impl LoginHost {
    /// Production login host (Salesforce Help: "OAuth Endpoints").
    pub const PRODUCTION_URL: &'static str = "https://login.salesforce.com";
    /// Sandbox login host (Salesforce Help: "OAuth Endpoints").
    pub const SANDBOX_URL: &'static str = "https://test.salesforce.com";

    /// The base URL of the host, without a trailing slash.
    pub fn url(&self) -> &str {
        match self {
            Self::Production => Self::PRODUCTION_URL,
            Self::Sandbox => Self::SANDBOX_URL,
            Self::MyDomain(url) => url,
        }
    }
}

/// How a server authenticates upstream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthMode {
    /// Each user authorizes with their own account (OAuth 2.0 web-server
    /// flow with PKCE).
    PerUserOauth,
}

/// A server's upstream authentication, without the secret itself (the secret
/// is sealed in the store under [`Server::client_secret_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// The mode.
    pub mode: AuthMode,
    /// The connected app's consumer key (OAuth client id).
    pub client_id: String,
    /// When the consumer secret was last set; `None` when none is stored.
    pub client_secret_set_at: Option<Millis>,
    /// First 8 hex digits of SHA-256 of the consumer secret.
    pub client_secret_fingerprint: Option<String>,
    /// OAuth scopes requested from users.
    pub scopes: Vec<String>,
}

/// A registered MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Server id.
    pub id: String,
    /// Unique human name.
    pub name: String,
    /// Catalog kind, e.g. `salesforce`.
    pub catalog_kind: String,
    /// Prefix of exposed tool names; unique across servers.
    pub tool_prefix: String,
    /// Where users log in.
    pub login_host: LoginHost,
    /// Salesforce REST API version, e.g. `66.0`.
    pub api_version: String,
    /// How new tools get their first state.
    pub tool_enablement: ToolEnablement,
    /// True: no tool of this server may be listed or called.
    pub disabled: bool,
    /// Upstream authentication; `None` until configured.
    pub auth: Option<AuthConfig>,
    /// Registration time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

impl Server {
    /// The store key under which this server's consumer secret is sealed.
    pub fn client_secret_key(&self) -> String {
        format!("server/{}/client_secret", self.id)
    }
}

/// MCP tool annotations (MCP specification 2025-06-18, "Tool").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolAnnotations {
    /// Human title.
    #[serde(default)]
    pub title: Option<String>,
    /// Does not modify its environment.
    #[serde(default)]
    pub read_only_hint: Option<bool>,
    /// May perform destructive updates.
    #[serde(default)]
    pub destructive_hint: Option<bool>,
    /// Repeating a call has no additional effect.
    #[serde(default)]
    pub idempotent_hint: Option<bool>,
    /// Interacts with an open world of external entities.
    #[serde(default)]
    pub open_world_hint: Option<bool>,
}

/// A tool definition as a server offers it (from the catalog or, for remote
/// servers, `tools/list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Upstream name, e.g. `query`.
    pub name: String,
    /// Human title.
    pub title: String,
    /// Description shown to AI clients.
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// JSON Schema of the structured result.
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// MCP annotations.
    #[serde(default)]
    pub annotations: ToolAnnotations,
}

/// A discovered tool and its governance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Tool id.
    pub id: String,
    /// The server that offers it.
    pub server_id: String,
    /// Exposed name: `<prefix>_<upstream name>`.
    pub name: String,
    /// The definition as last discovered; shared with every tool decoded
    /// from the same stored definition (see `model/shared.rs`), so clone
    /// the `Arc` and use `Arc::make_mut` to change one tool's copy.
    #[serde(deserialize_with = "shared::definition")]
    pub definition: Arc<ToolDefinition>,
    /// SHA-256 (hex) of the definition.
    pub definition_hash: String,
    /// The definition hash when the tool was last approved; drift is measured
    /// against it.
    #[serde(default)]
    pub approved_hash: Option<String>,
    /// The definition when last approved, to say what changed; shared like
    /// `definition` (usually the same one).
    #[serde(default, deserialize_with = "shared::approved")]
    pub approved_definition: Option<Arc<ToolDefinition>>,
    /// Governance state.
    pub state: ToolState,
    /// Classification.
    pub classification: Classification,
    /// First discovery.
    pub discovered_at: Millis,
    /// Last state or classification change.
    pub updated_at: Millis,
    /// Who made that change.
    pub updated_by: String,
    /// Parts of the definition that changed since approval (drift), if the
    /// tool is back in review because of drift.
    #[serde(default)]
    pub drift: Vec<String>,
}

/// What kind of toolset this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolsetKind {
    /// Curated by hand.
    Custom,
    /// Every approved tool of one server.
    AllApproved,
    /// Every approved READ tool of one server.
    ReadOnly,
}

/// A toolset. For maintained kinds `tool_ids` is empty in storage and
/// computed on read by [`crate::governance::toolset_members`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolset {
    /// Toolset id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Custom or maintained.
    pub kind: ToolsetKind,
    /// The server a maintained toolset follows.
    pub server_id: Option<String>,
    /// Curated tool ids (custom toolsets only).
    pub tool_ids: Vec<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Increases with every change (0 for records written before
    /// revisions existed); an edit may require the revision it read.
    #[serde(default)]
    pub revision: u64,
}

/// A user's grant of an access profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The user.
    pub user_id: String,
    /// When granted.
    pub granted_at: Millis,
    /// When it ends; `None`: never.
    pub expires_at: Option<Millis>,
    /// Who granted it.
    pub granted_by: String,
}

/// An access profile: toolsets bound, users granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessProfile {
    /// Profile id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Bound toolset ids.
    pub toolset_ids: Vec<String>,
    /// Grants, ordered by user id.
    pub grants: Vec<Grant>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Increases with every change (0 for records written before
    /// revisions existed); an edit may require the revision it read.
    #[serde(default)]
    pub revision: u64,
    /// How a user obtains it (absent before access requests: admin grant
    /// only).
    #[serde(default)]
    pub obtain: ProfileObtain,
    /// Longest grant, in seconds, that a request may obtain (just in time:
    /// the grant expires by itself); `None`: requests may be granted
    /// without an end.
    #[serde(default)]
    pub max_request_duration_secs: Option<u64>,
}

/// How a user obtains an access profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProfileObtain {
    /// Only an admin grants it.
    #[default]
    AdminGrant,
    /// A user may request it; an admin approves or denies.
    RequestWithApproval,
    /// A user may request it; the request is approved at once.
    RequestAutoApprove,
}

impl ProfileObtain {
    /// Whether users may request it.
    pub fn is_requestable(self) -> bool {
        !matches!(self, Self::AdminGrant)
    }
}

/// The state of an access request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessRequestState {
    /// Waiting for an admin.
    Pending,
    /// Approved: the grant was made.
    Approved,
    /// Denied by an admin.
    Denied,
    /// Nobody decided in time.
    Expired,
}

/// A user's request for an access profile (DESIGN.md, "Access request").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Request id.
    pub id: String,
    /// The requesting user.
    pub user_id: String,
    /// The requested profile.
    pub profile_id: String,
    /// The user's reason (may be empty).
    pub reason: String,
    /// The tool whose call opened it (exposed name); `None` when asked
    /// ahead of time.
    pub tool: Option<String>,
    /// State.
    pub state: AccessRequestState,
    /// Duration asked for, seconds; `None`: as long as the profile allows.
    pub requested_duration_secs: Option<u64>,
    /// Duration granted, seconds; `None` until approved, or approved
    /// without an end.
    pub granted_duration_secs: Option<u64>,
    /// When it was opened.
    pub created_at: Millis,
    /// When it expires if still pending.
    pub expires_at: Millis,
    /// When it was decided (approved, denied or expired).
    pub decided_at: Option<Millis>,
    /// Who decided: `admin:<name>`, `system` (automatic approval, expiry).
    pub decided_by: String,
    /// The admin's reason for a denial.
    pub decision_reason: String,
    /// Moves on every change.
    pub revision: u64,
}

/// A user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    /// May use their tokens.
    Active,
    /// Every token is refused.
    Disabled,
}

/// A user of AI clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: String,
    /// Unique email, lowercase.
    pub email: String,
    /// Human name.
    pub display_name: String,
    /// Status.
    pub status: UserStatus,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// An MCP personal access token (its hash, never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Token id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Label.
    pub name: String,
    /// `tgp_` and the next 4 characters, for recognition.
    pub prefix: String,
    /// SHA-256 (hex) of the token value.
    pub hash: String,
    /// Issue time.
    pub created_at: Millis,
    /// End; `None`: never.
    pub expires_at: Option<Millis>,
    /// Last use.
    pub last_used_at: Option<Millis>,
    /// Revocation time.
    pub revoked_at: Option<Millis>,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Allowed and done.
    Allowed,
    /// Refused by policy or authentication.
    Denied,
    /// Allowed but failed.
    Error,
}

/// One audit event. `sequence` is assigned by the store when appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increases with every event; 0 until stored.
    pub sequence: u64,
    /// When it happened.
    pub time: Millis,
    /// Who: `admin`, `admin:<name>`, `user:<email>`, `system`.
    pub actor: String,
    /// What, e.g. `tool.update`.
    pub action: String,
    /// On what, e.g. `tool/<id>`.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, in words.
    pub reason: String,
    /// Duration in milliseconds.
    pub latency_ms: u64,
    /// Details; never secrets.
    pub details: Value,
    /// The event's link in the audit hash chain: lowercase hex SHA-256 of
    /// the previous event's hash and this event's canonical encoding
    /// ([`crate::store::chain`], docs/audit-export.md). Set by the store
    /// when the event is appended; empty until then, and on events stored
    /// before the chain existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl AuditEvent {
    /// An `Allowed` event at the current time with no reason, latency or details.
    pub fn allowed(actor: &str, action: crate::audit::Action, target: impl Into<String>) -> Self {
        Self {
            sequence: 0,
            time: now_ms(),
            actor: actor.to_owned(),
            action: action.as_str().to_owned(),
            target: target.into(),
            outcome: Outcome::Allowed,
            reason: String::new(),
            latency_ms: 0,
            details: Value::Null,
            hash: String::new(),
        }
    }

    /// The same event with details attached.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The same event with a reason attached.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// A user's Salesforce connection to one server: where their org lives and
/// who they are there. The refresh and access tokens are sealed in the
/// store under [`Connection::refresh_token_key`] and
/// [`Connection::access_token_key`]. A connection is never used for anyone
/// but its user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// `<user id>.<server id>`: one connection per user and server.
    pub id: String,
    /// The toolgate user.
    pub user_id: String,
    /// The server.
    pub server_id: String,
    /// `instance_url` from the latest token response.
    pub instance_url: String,
    /// The identity URL (`id`) from the token response.
    pub identity_url: String,
    /// The Salesforce user Id, from the identity URL.
    pub salesforce_user_id: String,
    /// The Salesforce org Id, from the identity URL.
    pub salesforce_org_id: String,
    /// The Salesforce username (`ana@acme.example`), read from the identity
    /// URL when the user connected; empty when that read failed, and in
    /// connections stored before toolgate read it.
    #[serde(default)]
    pub salesforce_username: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// When the user connected.
    pub connected_at: Millis,
    /// When the access token was last refreshed.
    pub refreshed_at: Option<Millis>,
}

impl Connection {
    /// The id of the connection of `user_id` to `server_id`.
    pub fn id_for(user_id: &str, server_id: &str) -> String {
        format!("{user_id}.{server_id}")
    }

    /// Store key of the sealed refresh token.
    pub fn refresh_token_key(&self) -> String {
        format!("connection/{}/refresh_token", self.id)
    }

    /// Store key of the sealed access token.
    pub fn access_token_key(&self) -> String {
        format!("connection/{}/access_token", self.id)
    }
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookPhase {
    /// Before the call reaches Salesforce: may allow, deny or rewrite the
    /// arguments.
    Before,
    /// After Salesforce answered: may rewrite or block the result.
    After,
}

/// Which calls a hook applies to; every non-empty list must match (an empty
/// list matches all).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HookFilter {
    /// Exposed tool names or globs (`*`, `?`).
    pub tools: Vec<String>,
    /// Server ids.
    pub server_ids: Vec<String>,
    /// Classification tags; the tool must carry one of them.
    pub classifications: Vec<ClassificationTag>,
    /// User ids.
    pub user_ids: Vec<String>,
    /// Access profile ids; the user must hold one of them.
    pub profile_ids: Vec<String>,
}

/// A PII pattern the redaction hook recognises in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiPattern {
    /// Email addresses.
    Email,
    /// Phone numbers (international or North American forms).
    Phone,
    /// National ids (US SSN form `123-45-6789`).
    NationalId,
    /// Payment card numbers (13-19 digits passing the Luhn check).
    CardNumber,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HookKind {
    /// After: replaces named fields and text matching patterns in results
    /// by `placeholder`.
    PiiRedaction {
        /// Field names (`Email`, `SSN__c`), matched case-insensitively at
        /// any depth.
        fields: Vec<String>,
        /// Patterns looked for in every string value.
        patterns: Vec<PiiPattern>,
        /// The replacement (`[REDACTED]`).
        placeholder: String,
    },
    /// Before: denies a call whose arguments hold a payment card number
    /// (Luhn).
    CardBlocking,
    /// Before: limits what SOQL queries may touch (parsed, not matched as
    /// text).
    QueryScope {
        /// sObjects a query may touch; empty: any not denied.
        allow_objects: Vec<String>,
        /// sObjects a query may not touch.
        deny_objects: Vec<String>,
        /// A `LIMIT` at most this is required; `None`: no limit required.
        max_limit: Option<u32>,
        /// Refuse `queryAll` (deleted and archived records).
        deny_query_all: bool,
    },
    /// Before: WRITE and DELETE tools only within the window.
    WriteWindow {
        /// Days the window is open; empty: every day.
        days: Vec<Weekday>,
        /// Opening time, minutes after local midnight (0..1440).
        start_minute: u32,
        /// Closing time, minutes after local midnight (1..=1440); the window
        /// is `[start, end)`.
        end_minute: u32,
        /// IANA time zone (`Europe/Lisbon`).
        time_zone: String,
    },
    /// Before or after: POSTs the call (or result) as JSON to an HTTPS URL
    /// with an HMAC-SHA256 signature; the answer says allow, deny or
    /// mutate. Its signing secret is sealed in the store under
    /// [`Hook::secret_key`].
    Webhook {
        /// `https://...` (or `http://` on loopback).
        url: String,
        /// When the signing secret was last set.
        secret_set_at: Option<Millis>,
        /// First 8 hex characters of the SHA-256 of the secret.
        secret_fingerprint: Option<String>,
    },
}

/// A tool-call hook (DESIGN.md, "Hook"). Hooks are policy: a change applies
/// to the next call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Hook id.
    pub id: String,
    /// Unique name (named in audit events).
    pub name: String,
    /// Before or after the call.
    pub phase: HookPhase,
    /// Lower runs first; ties by name.
    pub priority: i32,
    /// A disabled hook never runs.
    pub enabled: bool,
    /// Which calls it applies to.
    pub filter: HookFilter,
    /// What it does.
    pub kind: HookKind,
    /// Longest run, milliseconds; over it the call is denied (fail closed).
    pub timeout_ms: u64,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Moves on every change.
    pub revision: u64,
}

impl Hook {
    /// Store key of a webhook's sealed signing secret.
    pub fn secret_key(id: &str) -> String {
        format!("hook/{id}/secret")
    }
}

/// The state of a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HeldCallState {
    /// Waiting for a person.
    Pending,
    /// Approved: the next retry with the same arguments runs it once.
    Approved,
    /// Denied.
    Denied,
    /// Nobody decided, or nobody retried, in time.
    Expired,
    /// Approved and run (once).
    Used,
}

/// A tool call waiting for a person's approval (DESIGN.md, "Held call").
/// The arguments, exactly as they will be sent, are sealed in the store
/// under [`HeldCall::arguments_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCall {
    /// Held call id.
    pub id: String,
    /// The calling user.
    pub user_id: String,
    /// The AI client that called.
    pub ai_client_id: String,
    /// The tool's id.
    pub tool_id: String,
    /// The tool's exposed name.
    pub tool: String,
    /// The tool's server.
    pub server_id: String,
    /// SHA-256 (hex) of the arguments as they will be sent (canonical JSON).
    pub arguments_digest: String,
    /// Digest of the policy the call was held under; a policy change
    /// voids the approval.
    pub policy_revision: String,
    /// State.
    pub state: HeldCallState,
    /// When it was held.
    pub created_at: Millis,
    /// When it expires (pending: undecided; approved: not retried).
    pub expires_at: Millis,
    /// When it was decided.
    pub decided_at: Option<Millis>,
    /// Who decided.
    pub decided_by: String,
    /// The reason given with a denial.
    pub decision_reason: String,
    /// When the approved call ran.
    pub used_at: Option<Millis>,
    /// Moves on every change.
    pub revision: u64,
}

impl HeldCall {
    /// Store key of the sealed arguments.
    pub fn arguments_key(id: &str) -> String {
        format!("heldcall/{id}/arguments")
    }
}
