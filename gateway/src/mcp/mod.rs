//! The MCP front door: a streamable-HTTP MCP server (rmcp, behind this
//! module so an rmcp upgrade touches one place) at `<public URL>/mcp`.
//!
//! Users authenticate with their toolgate access token ([`auth`]);
//! `tools/list` shows exactly the tools [`crate::governance::decide`] allows;
//! `tools/call` checks policy again, validates arguments against the tool's
//! input schema, connects the user's Salesforce account on first use
//! ([`crate::oauth`]), runs the tool ([`crate::salesforce`]) with one refresh
//! on an expired session, and audits the call. Sessions hear
//! `notifications/tools/list_changed` when their list changes ([`notify`]).
//! Tools a user could request from a requestable access profile are listed
//! marked, and calling one opens an access request instead
//! ([`requestable`]).
//! `Host` and `Origin` checks follow the public URL (DNS-rebinding
//! protection without locking a public deployment to loopback). Sessions
//! are bound to the user and token that opened them, bounded per user and
//! in total, and closed after an idle timeout ([`sessions`]), and kept in
//! the store so any replica can serve them ([`persist`]); bad methods
//! and bodies get their HTTP and JSON-RPC codes before rmcp sees them
//! ([`transport`]). Plain `tools/call`, `tools/list` and `ping` requests on
//! a session are answered as JSON by the transport itself, without rmcp's
//! session worker ([`direct`]).
//!
//! Protocol 2026-07-28 (stateless, no session) is served by the same
//! handler: `server/discover` (rmcp, from [`Gateway`]'s server info),
//! `subscriptions/listen` with `toolsListChanged` ([`notify`]; a stream
//! counts against the session limits), the connect prompt as
//! `input_required` with a URL elicitation ([`prompt`]), and `tools/list`
//! with `ttlMs` [`TOOLS_TTL_MS`] and `cacheScope: "private"`. rmcp checks
//! the mirrored `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` headers
//! against the body (400 on a mismatch) and answers GET and DELETE without
//! a session 405.

pub mod auth;
mod direct;
mod handler;
pub mod held_calls;
pub mod notify;
pub mod persist;
pub mod prompt;
pub mod requestable;
pub mod sessions;
mod spans;
pub mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::governance::{Subject, ToolIndex, allowed_positions};
use crate::model::{AccessProfile, Server, Settings, Token, Tool, Toolset, User, now_ms};
use crate::oauth::OAuth;
use crate::salesforce::{Cursors, DescribeCache, Limits};
use crate::store::{Store, StoreError};

pub use handler::Gateway;

/// How long describe results are cached per server.
const DESCRIBE_TTL: Duration = Duration::from_secs(10 * 60);

/// `ttlMs` of a 2026-07-28 `tools/list` result (MCP 2026-07-28, SEP-2549
/// caching hints), with `cacheScope: "private"` (a list is one user's):
/// one minute. A list changes only on an admin action or a grant expiry;
/// a client holding a `subscriptions/listen` stream hears
/// `tools/list_changed` at once, one that does not sees the change within
/// this time, and a call to a tool no longer granted is refused anyway.
/// Grant expiry is re-checked on the same period ([`notify`]).
pub const TOOLS_TTL_MS: u64 = 60_000;

/// Everything the MCP handlers share.
#[derive(Debug)]
pub struct McpState {
    /// The database.
    pub store: Arc<Store>,
    /// Per-user OAuth.
    pub oauth: Arc<OAuth>,
    /// For Salesforce REST calls.
    pub http: reqwest::Client,
    /// Per-call record and size caps.
    pub limits: Limits,
    /// Signs and checks paging cursors (key derived from the master key).
    pub cursors: Cursors,
    /// Seals and opens the `requestState` of 2026-07-28 connect prompts
    /// (key derived from the master key).
    pub prompts: prompt::ConnectPrompts,
    /// Live sessions, for list-changed notifications.
    pub sessions: notify::Sessions,
    /// Request ids in use per session ([`sessions::GatedSessionManager`]),
    /// told by the handler when it is done with a request.
    pub(crate) in_flight: sessions::InFlight,
    /// The rmcp peer of each session held here ([`sessions::Peers`]).
    pub(crate) peers: sessions::Peers,
    /// Call rates, concurrency and the org API-usage guard
    /// ([`crate::limits`]), per replica.
    pub limiter: Arc<crate::limits::CallLimiter>,
    caches: Mutex<HashMap<String, Arc<DescribeCache>>>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// The last policy state read, with the store generation it was read
    /// at: every tools/list and tools/call needs it, and decoding every
    /// record each time cost ~1 ms per call with 13 tools stored and
    /// ~250 ms with 10,000 (BENCHMARKS.md).
    /// The cached policy snapshot: the store generation it was read at,
    /// the snapshot, and when its read began.
    world: Mutex<Option<(u64, Arc<World>, std::time::Instant)>>,
}

/// A consistent read of what policy needs.
#[derive(Debug)]
pub struct World {
    /// Settings.
    pub settings: Settings,
    /// Servers.
    pub servers: Vec<Server>,
    /// Tools.
    pub tools: Vec<Tool>,
    /// Profiles.
    pub profiles: Vec<AccessProfile>,
    /// Toolsets.
    pub toolsets: Vec<Toolset>,
    /// Users.
    pub users: Vec<User>,
    /// Where each of `tools` sits, by id, server and name.
    pub index: ToolIndex,
    /// Enabled tool-call hooks in run order ([`crate::hooks::sort_run_order`]).
    pub hooks: Vec<crate::model::Hook>,
    /// The signing secrets of webhook hooks among `hooks`.
    pub hook_secrets: crate::hooks::HookSecrets,
    /// The MCP view of each of `tools` (same positions), made on first
    /// listing and shared by every tools/list until the next policy write.
    listed: Vec<OnceLock<rmcp::model::Tool>>,
    /// The JSON of each of `listed` (same positions), made on first listing
    /// by the transport's direct path and written into every tools/list
    /// answer as it is until the next policy write.
    listed_json: Vec<OnceLock<Box<[u8]>>>,
    /// The requestable profiles and their marked tool views
    /// ([`requestable`]), made on first need and shared until the next
    /// policy write.
    requestable: OnceLock<requestable::Offers>,
}

impl World {
    /// The policy subject of `user` (with the request's `token`, if any),
    /// at the current time.
    pub fn subject<'a>(&'a self, user: &'a User, token: Option<&'a Token>) -> Subject<'a> {
        Subject {
            user,
            token,
            profiles: &self.profiles,
            toolsets: &self.toolsets,
            now: now_ms(),
        }
    }

    /// What tools/list shows `user_id` now (no token involved), as names
    /// for change detection ([`requestable::Listing::names`]: the tools
    /// they may call, sorted, then the ones they could request, marked).
    pub fn allowed_names(&self, user_id: &str) -> Vec<String> {
        let Some(user) = self.users.iter().find(|u| u.id == user_id) else {
            return Vec::new();
        };
        let subject = self.subject(user, None);
        self.listing(&subject).names(self)
    }

    /// The MCP view of `tools[position]`, made once per policy-state read.
    pub fn listed(&self, position: usize) -> &rmcp::model::Tool {
        self.listed[position].get_or_init(|| handler::mcp_tool(&self.tools[position]))
    }

    /// The JSON of [`World::listed`]`(position)`, made once per
    /// policy-state read.
    pub fn listed_json(&self, position: usize) -> &[u8] {
        self.listed_json[position].get_or_init(|| {
            serde_json::to_vec(&handler::mcp_tool(&self.tools[position]))
                .unwrap_or_default()
                .into_boxed_slice()
        })
    }

    /// Positions in `tools` of the tools `subject` may call, by
    /// [`crate::governance::decide`], in name order (as tools/list shows
    /// them).
    pub fn allowed(&self, subject: &Subject<'_>) -> Vec<usize> {
        let mut allowed = allowed_positions(
            &self.settings,
            &self.servers,
            &self.tools,
            &self.index,
            subject,
        );
        allowed.sort_by(|&a, &b| self.tools[a].name.cmp(&self.tools[b].name));
        allowed
    }
}

impl McpState {
    /// Builds the shared state; `limits` caps what one call returns.
    pub fn new(store: Arc<Store>, oauth: Arc<OAuth>, limits: Limits) -> Self {
        let http = crate::salesforce::http::client_builder(limits.upstream_timeout)
            .build()
            .unwrap_or_default();
        let cursors =
            Cursors::new(store.derived_key(crate::salesforce::cursor::CURSOR_KEY_PURPOSE));
        let prompts = prompt::ConnectPrompts::new(
            store.derived_key(prompt::PROMPT_KEY_PURPOSE),
            crate::oauth::LINK_TTL,
        );
        Self {
            store,
            oauth,
            http,
            limits,
            cursors,
            prompts,
            sessions: notify::Sessions::default(),
            in_flight: sessions::InFlight::default(),
            peers: sessions::Peers::default(),
            limiter: Arc::default(),
            caches: Mutex::new(HashMap::new()),
            validators: Mutex::new(HashMap::new()),
            world: Mutex::new(None),
        }
    }

    /// Reads settings, servers, tools, profiles, toolsets, users and
    /// enabled hooks (with webhook secrets).
    ///
    /// Served from a cache while the store's generation is unchanged (no
    /// policy record written since, see [`Store::generation`]); the
    /// generation is read before the records, so a write that lands
    /// mid-read makes the next call read again.
    pub async fn world(&self) -> Result<Arc<World>, StoreError> {
        let generation = self.store.generation();
        if let Some((cached, world, _)) = &*self.world.lock().unwrap_or_else(|p| p.into_inner())
            && *cached == generation
        {
            return Ok(world.clone());
        }
        let read_at = std::time::Instant::now();
        let reader = self.store.snapshot().await?;
        let tools: Vec<Tool> = reader.list().await?;
        let mut hooks: Vec<crate::model::Hook> = reader.list().await?;
        hooks.retain(|h| h.enabled);
        crate::hooks::sort_run_order(&mut hooks);
        let mut hook_secrets = crate::hooks::HookSecrets::default();
        for hook in &hooks {
            if matches!(hook.kind, crate::model::HookKind::Webhook { .. })
                && let Some(secret) = reader
                    .secret(&crate::model::Hook::secret_key(&hook.id))
                    .await?
            {
                hook_secrets.insert(&hook.id, secret);
            }
        }
        let world = Arc::new(World {
            hooks,
            hook_secrets,
            settings: reader.settings().await?,
            servers: reader.list().await?,
            index: ToolIndex::new(&tools),
            listed: tools.iter().map(|_| OnceLock::new()).collect(),
            listed_json: tools.iter().map(|_| OnceLock::new()).collect(),
            requestable: OnceLock::new(),
            tools,
            profiles: reader.list().await?,
            toolsets: reader.list().await?,
            users: reader.list().await?,
        });
        *self.world.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((generation, world.clone(), read_at));
        Ok(world)
    }

    /// The store generation ([`Store::generation`]) of the policy snapshot
    /// [`McpState::world`] serves and when its read began; `None` before
    /// the first read. For [`crate::metrics::POLICY_SNAPSHOT_AGE`].
    pub fn policy_snapshot(&self) -> Option<(u64, std::time::Instant)> {
        self.world
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(generation, _, at)| (*generation, *at))
    }

    /// The describe cache of a server.
    pub fn describe_cache(&self, server_id: &str) -> Arc<DescribeCache> {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches
            .entry(server_id.to_owned())
            .or_insert_with(|| Arc::new(DescribeCache::new(DESCRIBE_TTL)))
            .clone()
    }

    /// The compiled input-schema validator of a tool definition.
    pub fn validator(&self, tool: &Tool) -> Option<Arc<jsonschema::Validator>> {
        let mut validators = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = validators.get(&tool.definition_hash) {
            return Some(v.clone());
        }
        match jsonschema::validator_for(&tool.definition.input_schema) {
            Ok(v) => {
                let v = Arc::new(v);
                validators.insert(tool.definition_hash.clone(), v.clone());
                Some(v)
            }
            Err(err) => {
                tracing::error!(tool = %tool.name, error = %err, "input schema does not compile");
                None
            }
        }
    }
}

/// `Host` values the MCP endpoint accepts: the public URL's host (with and
/// without its port), plus every loopback name when the public host is a
/// loopback host.
pub fn allowed_hosts(public_url: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(public_url) else {
        return vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    };
    let host = url
        .host_str()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_owned();
    let mut hosts = vec![host.clone()];
    if let Some(port) = url.port() {
        hosts.push(format!("{host}:{port}"));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        for name in ["localhost", "127.0.0.1", "::1"] {
            if !hosts.iter().any(|h| h == name) {
                hosts.push(name.into());
            }
        }
    }
    hosts
}

/// `Origin` values the MCP endpoint accepts (requests without `Origin`, as
/// sent by non-browser clients, always pass): the public URL's origin, and
/// any loopback origin when the public host is loopback.
pub fn allowed_origins(public_url: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(public_url) else {
        return Vec::new();
    };
    // rmcp reads a port-less entry as "any port": always name the port.
    // The URL's origin names a non-default port already (`url` drops a
    // scheme's default one), so only add the default.
    let origin = url.origin().ascii_serialization();
    let mut origins = vec![match url.port() {
        Some(_) => origin,
        None => format!("{origin}:{}", url.port_or_known_default().unwrap_or(443)),
    }];
    if allowed_hosts(public_url).iter().any(|h| h == "127.0.0.1") {
        origins.extend(
            ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from),
        );
    }
    origins
}

/// The `/mcp` router, outermost first: the method check, token
/// authentication, the transport gate (bodies, session binding and
/// limits), and the rmcp service. A session with no traffic for
/// `limits.idle_timeout` is closed (its client gets 404 and initializes a
/// new one, MCP 2025-11-25 "Session Management"). Sessions are recorded in
/// the store ([`persist`]), so a replica that does not hold one (another
/// replica, or this one after a restart) restores it for its owner.
pub fn router(
    state: Arc<McpState>,
    public_url: &str,
    shutdown: CancellationToken,
    limits: sessions::SessionLimits,
) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(public_url))
        .with_allowed_origins(allowed_origins(public_url))
        .with_max_request_body_bytes(transport::MAX_BODY_BYTES)
        // Named here so the idle-timeout check in config stays true.
        .with_sse_keep_alive(Some(Duration::from_secs(
            crate::config::SSE_KEEP_ALIVE_SECS,
        )))
        .with_cancellation_token(shutdown.clone());
    let registry = Arc::new(sessions::Registry::new(limits, state.store.clone()));
    let states = Arc::new(persist::SessionStates::new(
        state.store.clone(),
        registry.clone(),
    ));
    config.session_store = Some(states.clone());
    let manager = Arc::new(sessions::GatedSessionManager::new(
        registry,
        state.clone(),
        states,
        shutdown.clone(),
    ));
    tokio::spawn(manager.clone().sweep_idle(shutdown));
    let factory_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(Gateway::new(factory_state.clone())),
        manager.clone(),
        config,
    );
    let authenticator = Arc::new(auth::Authenticator::new(state.store.clone(), public_url));
    let gate = Arc::new(transport::Gate::new(&manager, public_url));
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(gate, transport::gate))
        .layer(axum::middleware::from_fn_with_state(
            authenticator,
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(transport::allow_methods))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_follow_the_public_url() {
        assert_eq!(
            allowed_hosts("https://toolgate.example.com"),
            ["toolgate.example.com"]
        );
        assert_eq!(
            allowed_hosts("https://gw.example.com:8443/base"),
            ["gw.example.com", "gw.example.com:8443"]
        );
        let local = allowed_hosts("http://127.0.0.1:8080");
        assert!(local.contains(&"127.0.0.1:8080".to_string()));
        assert!(local.contains(&"localhost".to_string()));
        assert_eq!(
            allowed_origins("https://toolgate.example.com"),
            ["https://toolgate.example.com:443"]
        );
        // An explicit port is named once (it was doubled: `:8443:8443`).
        assert_eq!(
            allowed_origins("https://gw.example.com:8443/base"),
            ["https://gw.example.com:8443"]
        );
        assert_eq!(
            allowed_origins("http://gw.example.com:8080"),
            ["http://gw.example.com:8080"]
        );
        // A default port written out is dropped by the URL parser and
        // named again here.
        assert_eq!(
            allowed_origins("https://gw.example.com:443"),
            ["https://gw.example.com:443"]
        );
    }
}
