//! The simulated org's mutable state: records, OAuth codes and tokens,
//! query cursors, fault switches and request counters.
//!
//! One std mutex guards it all; handlers lock, read or change, and unlock
//! before any `.await`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{SimConfig, UserConfig, UserProfile};
use crate::paging::Locator;
use crate::record::{DataSource, Record};
use crate::schema::Schema;
use crate::seed;

/// How long an authorization code lives (Salesforce: 15 minutes).
pub const CODE_TTL_SECS: i64 = 15 * 60;

/// A pending authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// The user who consented.
    pub user: usize,
    /// The `redirect_uri` it was issued for.
    pub redirect_uri: String,
    /// The PKCE S256 challenge, if one was sent.
    pub code_challenge: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A refresh token's record.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    /// The user.
    pub user: usize,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

/// An access token's record.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    /// The user.
    pub user: usize,
    /// The refresh token it came from, if any.
    pub refresh_token: Option<String>,
}

/// Run-time fault switches (see the `/_sfsim/faults` admin endpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Issue a new refresh token on every refresh; the old one dies.
    pub refresh_token_rotation: bool,
    /// Refuse (`invalid_grant`) a refresh while another refresh of the same
    /// refresh token is in flight.
    pub reject_concurrent_refresh: bool,
    /// Every REST call gets 403 `REQUEST_LIMIT_EXCEEDED`.
    pub api_limit_exhausted: bool,
    /// Every Nth REST call gets 503 `SERVER_UNAVAILABLE` (0: never).
    pub server_error_every: u32,
    /// Added latency in milliseconds ...
    pub latency_ms: u64,
    /// ... on every Nth REST call (0: never; 1: all).
    pub latency_every: u32,
    /// How long a refresh-token grant holds its refresh token marked in
    /// flight before answering, in milliseconds (0: no hold). Lets tests
    /// overlap two refreshes of one token deterministically.
    pub refresh_hold_ms: u64,
    /// The next token response carries the alternate instance URL
    /// (`localhost` instead of `127.0.0.1`); it stays in effect after.
    pub change_instance_url: bool,
    /// The identity URL (`/id/{org}/{user}`) answers 503, as during a
    /// Salesforce incident.
    pub identity_unavailable: bool,
}

/// Everything mutable.
#[derive(Debug)]
pub struct State {
    /// The org's schema.
    pub schema: Schema,
    /// All records, in creation order.
    pub records: Vec<Record>,
    /// Index from Id to position in `records`.
    pub by_id: HashMap<String, usize>,
    /// Next serial per object for new Ids.
    pub serials: HashMap<String, u64>,
    /// Users (index = position in config).
    pub users: Vec<UserConfig>,
    /// Pending authorization codes.
    pub codes: HashMap<String, AuthCode>,
    /// Live refresh tokens.
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    /// Live access tokens.
    pub access_tokens: HashMap<String, AccessGrant>,
    /// Refresh tokens with a refresh in flight.
    pub refreshing: HashSet<String>,
    /// Query cursors by locator id (see [`crate::paging`]).
    pub locators: HashMap<String, Locator>,
    /// The serial of the last cursor made.
    pub next_locator: u64,
    /// Fault switches.
    pub faults: Faults,
    /// The instance URL handed out now.
    pub instance_url: String,
    /// Requests served, by endpoint name.
    pub counters: BTreeMap<String, u64>,
    /// REST calls counted against the daily limit.
    pub api_usage: u64,
    /// Calls seen by the fault counters.
    pub fault_tick: u64,
    /// Recently viewed or changed record Ids per user, newest first.
    pub recent: HashMap<usize, Vec<String>>,
    /// The W3C `traceparent` header of each instance request that sent
    /// one, with the request's path (no query), oldest first; the last
    /// [`TRACEPARENTS_KEPT`] only.
    pub traceparents: std::collections::VecDeque<(String, String)>,
}

/// How many `traceparent` headers [`State::traceparents`] keeps.
pub const TRACEPARENTS_KEPT: usize = 1000;

impl State {
    /// Counts a request to `endpoint`.
    pub fn count(&mut self, endpoint: &str) {
        *self.counters.entry(endpoint.to_owned()).or_default() += 1;
    }

    /// Records the `traceparent` header `value` of a request for `path`.
    pub fn record_traceparent(&mut self, path: &str, value: &str) {
        if self.traceparents.len() == TRACEPARENTS_KEPT {
            self.traceparents.pop_front();
        }
        self.traceparents
            .push_back((path.to_owned(), value.to_owned()));
    }

    /// The user's profile.
    pub fn profile(&self, user: usize) -> UserProfile {
        self.users[user].profile
    }

    /// Remembers a record as recently used by `user`.
    pub fn touch(&mut self, user: usize, id: &str) {
        let list = self.recent.entry(user).or_default();
        list.retain(|x| x != id);
        list.insert(0, id.to_owned());
        list.truncate(200);
    }

    /// A new Id for `object`.
    pub fn new_id(&mut self, object: &str) -> String {
        let prefix = self
            .schema
            .object(object)
            .map(|o| o.key_prefix.clone())
            .unwrap_or_else(|| "000".into());
        let serial = self.serials.entry(object.to_owned()).or_insert(900_000);
        *serial += 1;
        crate::ids::make(&prefix, seed::POD, *serial)
    }

    /// Appends a record and indexes it.
    pub fn insert(&mut self, record: Record) {
        self.by_id.insert(record.id.clone(), self.records.len());
        self.records.push(record);
    }

    /// The record with `id` (18 characters), mutable.
    pub fn record_mut(&mut self, id: &str) -> Option<&mut Record> {
        let i = *self.by_id.get(id)?;
        self.records.get_mut(i)
    }
}

impl DataSource for State {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn records(&self, object: &str) -> Vec<&Record> {
        self.records.iter().filter(|r| r.object == object).collect()
    }

    fn record(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id).and_then(|i| self.records.get(*i))
    }
}

/// The simulator: configuration plus locked state.
#[derive(Debug)]
pub struct Sim {
    /// Configuration as started.
    pub config: SimConfig,
    /// `http://<login addr>`.
    pub login_url: String,
    /// `http://127.0.0.1:<instance port>`.
    pub instance_url: String,
    /// The alternate instance URL used by the `change_instance_url` fault.
    pub alt_instance_url: String,
    /// The org Id.
    pub org_id: String,
    state: Mutex<State>,
}

impl Sim {
    /// Seeds a new org.
    pub fn new(config: SimConfig, login_url: String, instance_port: u16) -> Self {
        let schema = seed::schema();
        let now = Utc::now();
        let records = seed::records(&schema, &config, now);
        let instance_url = format!("http://127.0.0.1:{instance_port}");
        let mut state = State {
            schema,
            records: Vec::new(),
            by_id: HashMap::new(),
            serials: HashMap::new(),
            users: config.users.clone(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            refreshing: HashSet::new(),
            locators: HashMap::new(),
            next_locator: 0,
            faults: Faults {
                refresh_token_rotation: config.refresh_token_rotation,
                ..Faults::default()
            },
            instance_url: instance_url.clone(),
            counters: BTreeMap::new(),
            api_usage: 0,
            fault_tick: 0,
            recent: HashMap::new(),
            traceparents: std::collections::VecDeque::new(),
        };
        for record in records {
            state.insert(record);
        }
        Self {
            org_id: seed::org_id(&config),
            config,
            login_url,
            alt_instance_url: format!("http://localhost:{instance_port}"),
            instance_url,
            state: Mutex::new(state),
        }
    }

    /// Locks the state. Never hold the guard across `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The identity URL of user `index`: `<login>/id/<org>/<user>`.
    pub fn identity_url(&self, index: usize) -> String {
        format!(
            "{}/id/{}/{}",
            self.login_url,
            self.org_id,
            seed::user_id(&self.config, index)
        )
    }
}
