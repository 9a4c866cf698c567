//! Tool-call limits: per-user, per-tool and per-server call rates (token
//! buckets from `governor`, GCRA) and concurrency (counters of calls in
//! flight), and the org API-usage guard, all per replica and in memory
//! ([`crate::model::LimitSettings`] says what they are).
//!
//! Owns: admitting or refusing one call before it reaches hooks, held-call
//! approval or Salesforce ([`CallLimiter::admit`], [`CallLimiter::org_guard`]),
//! the refusal's message, audit details and metric, and keeping memory
//! bounded ([`CallLimiter::evict_idle`]).
//!
//! Must not: read the store on the call path, allocate per call beyond a
//! key lookup (a bucket or counter is allocated once per new key), or hold
//! a lock across an await.
//!
//! Why per replica: a shared limit needs a round trip to a shared store on
//! every call, which costs more than the call path's whole budget; an
//! N-replica deployment admits up to N times each rate (divide the rates by
//! N, or pin each user to a replica at the load balancer).
//!
//! The over-limit answer is a tool result with `isError: true` (MCP
//! 2025-11-25 "Tools", "Error Handling": errors the model should see and
//! act on belong in the result) carrying `_meta["toolgate/rate_limit"]`
//! with `code` 429: no JSON-RPC code is standard for rate limiting, MCP
//! 2026-07-28 ("Error Codes") reserves -32020 to -32099 for codes it
//! defines and asks new application codes to sit outside -32768 to -32000,
//! and 429 (HTTP Too Many Requests, RFC 6585 section 4) is what MCP
//! gateways use there (ToolHive moved from -32029 to 429 for this reason,
//! stacklok/toolhive#6120).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::{Value, json};
use wildmatch::WildMatch;

use crate::model::{AccessProfile, CallLimit, LimitSettings, Millis, RateLimit};
use crate::salesforce::ApiUsage;

/// The `_meta` key of an over-limit tool result.
pub const META_KEY: &str = "toolgate/rate_limit";
/// The code in an over-limit result's `_meta` (HTTP 429 Too Many
/// Requests, RFC 6585 section 4), outside the JSON-RPC reserved range.
pub const RATE_LIMITED_CODE: i64 = 429;
/// The metric counting refused calls, labelled `scope` and `limit`.
pub const RATE_LIMITED_METRIC: &str = "toolgate_rate_limited_calls_total";

/// What a limit counts calls of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One user's calls.
    User,
    /// One tool's calls, from all users.
    Tool,
    /// One server's calls, from all users.
    Server,
    /// One Salesforce org's API usage.
    Org,
}

impl Scope {
    /// `user`, `tool`, `server` or `org` (audit details, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Tool => "tool",
            Self::Server => "server",
            Self::Org => "org",
        }
    }
}

/// Which kind of limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call rate.
    Rate,
    /// Calls in flight.
    Concurrency,
    /// The org's daily API usage.
    OrgApiUsage,
}

impl Kind {
    /// `rate`, `concurrency` or `org_api_usage` (audit details, metric
    /// label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::Concurrency => "concurrency",
            Self::OrgApiUsage => "org_api_usage",
        }
    }
}

/// Why a call was refused, with what the user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the limit counts.
    pub scope: Scope,
    /// Which limit.
    pub kind: Kind,
    /// The limit in words, e.g. `120 calls per minute (bursts of 30)`.
    pub limit: String,
    /// When a call could be admitted again, when known.
    pub retry_after: Option<Duration>,
    /// The message for the user (and the tool result's text).
    pub message: String,
}

impl Refusal {
    /// The audit reason: which limit, without the retry advice.
    pub fn reason(&self) -> String {
        let limit = &self.limit;
        match (self.scope, self.kind) {
            (_, Kind::OrgApiUsage) => format!("org API usage guard: {limit}"),
            (scope, kind) => format!("{} {} limit: {limit}", scope.as_str(), kind.as_str()),
        }
    }

    /// `details.rate_limit` of the audit event and `_meta` of the result:
    /// `scope`, `limit`, `retry_after_ms` (null when unknown) and `code`.
    pub fn details(&self) -> Value {
        json!({
            "scope": self.scope.as_str(),
            "limit": self.kind.as_str(),
            "retry_after_ms": self.retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            "code": RATE_LIMITED_CODE,
        })
    }

    /// Counts the refusal in [`RATE_LIMITED_METRIC`].
    pub fn count(&self) {
        metrics::counter!(
            "toolgate_rate_limited_calls_total",
            "scope" => self.scope.as_str(),
            "limit" => self.kind.as_str()
        )
        .increment(1);
    }
}

/// Whole seconds to wait, rounded up, at least 1: `4 s`.
fn retry_text(wait: Duration) -> String {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    format!("{secs} s")
}

/// `120 calls per minute (bursts of 30)`.
fn rate_text(rate: RateLimit) -> String {
    format!(
        "{} calls per minute (bursts of {})",
        rate.calls_per_minute,
        rate.burst.max(1)
    )
}

/// `13,650`: a count with thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

type Keyed = DefaultKeyedRateLimiter<String>;

/// The token buckets of one version of the limit settings.
struct Buckets {
    settings: LimitSettings,
    /// One keyed limiter per (scope, rate) in the settings.
    rates: HashMap<(Scope, RateLimit), Keyed>,
    essential: Vec<WildMatch>,
}

impl Buckets {
    fn new(settings: &LimitSettings) -> Self {
        let mut rates = HashMap::new();
        let mut add = |scope: Scope, rate: RateLimit| {
            if let Some(quota) = quota(rate) {
                rates
                    .entry((scope, rate))
                    .or_insert_with(|| Keyed::dashmap(quota));
            }
        };
        add(Scope::User, settings.per_user.rate);
        add(Scope::Tool, settings.per_tool.rate);
        add(Scope::Server, settings.per_server.rate);
        for o in settings.profile_overrides.values() {
            add(Scope::User, o.rate);
        }
        for o in settings.tool_overrides.values() {
            add(Scope::Tool, o.rate);
        }
        Self {
            settings: settings.clone(),
            rates,
            essential: settings
                .essential_tools
                .iter()
                .map(|p| WildMatch::new(p))
                .collect(),
        }
    }

    /// Takes one call from `key`'s bucket of `rate` in `scope`; the wait
    /// until the next call fits when the bucket is empty.
    fn check(&self, scope: Scope, rate: RateLimit, key: &String) -> Result<(), Duration> {
        let Some(limiter) = self.rates.get(&(scope, rate)) else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The governor quota of a rate; `None` when unlimited.
fn quota(rate: RateLimit) -> Option<Quota> {
    let per_minute = NonZeroU32::new(rate.calls_per_minute)?;
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

/// Calls in flight per key of one scope.
#[derive(Default)]
struct InFlight {
    counts: Mutex<HashMap<String, Arc<AtomicU32>>>,
}

impl InFlight {
    /// Takes a slot of `key` when fewer than `max` are taken (`max` 0:
    /// always, and nothing is counted).
    fn take(&self, key: &str, max: u32) -> Result<Option<Slot>, ()> {
        if max == 0 {
            return Ok(None);
        }
        let count = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            match counts.get(key) {
                Some(count) => count.clone(),
                None => {
                    let count = Arc::new(AtomicU32::new(0));
                    counts.insert(key.to_owned(), count.clone());
                    count
                }
            }
        };
        let before = count.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return Err(());
        }
        Ok(Some(Slot(count)))
    }

    /// Forgets keys with nothing in flight and no slot held.
    fn evict_idle(&self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.retain(|_, c| Arc::strong_count(c) > 1 || c.load(Ordering::Acquire) > 0);
        counts.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One call in flight in one scope; given back when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An admitted call's places in the concurrency limits, held until the
/// call is done (dropping it gives them back).
#[derive(Debug, Default)]
#[must_use = "the call counts as in flight only while this is held"]
pub struct Admission {
    _user: Option<Slot>,
    _tool: Option<Slot>,
    _server: Option<Slot>,
}

/// What one call is, for [`CallLimiter::admit`].
#[derive(Debug, Clone, Copy)]
pub struct CallKeys<'a> {
    /// The user's id.
    pub user_id: &'a String,
    /// The tool's id.
    pub tool_id: &'a String,
    /// The tool's exposed name (for `tool_overrides` and messages).
    pub tool_name: &'a str,
    /// The server's id.
    pub server_id: &'a String,
    /// The server's name (for messages).
    pub server_name: &'a str,
    /// Every access profile (the user's grants are found in them).
    pub profiles: &'a [AccessProfile],
    /// Now, Unix ms (grant expiry).
    pub now: Millis,
}

/// The limiter every MCP call goes through: buckets rebuilt when the limit
/// settings change (the next call after a change sees the new limits and
/// fresh buckets), counters of calls in flight, and the latest API usage of
/// each Salesforce org.
#[derive(Default)]
pub struct CallLimiter {
    buckets: RwLock<Option<Arc<Buckets>>>,
    users: InFlight,
    tools: InFlight,
    servers: InFlight,
    orgs: RwLock<HashMap<String, Arc<ApiUsage>>>,
}

impl std::fmt::Debug for CallLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLimiter")
            .field("users_in_flight", &self.users.len())
            .field("tools_in_flight", &self.tools.len())
            .finish_non_exhaustive()
    }
}

/// The most generous of two per-user limits: rate unlimited, else the
/// higher `calls_per_minute`, then the higher `burst`; concurrency
/// unlimited, else the higher.
fn most_generous(a: CallLimit, b: CallLimit) -> CallLimit {
    let rank = |r: RateLimit| (r.is_unlimited(), r.calls_per_minute, r.burst);
    let rate = if rank(b.rate) > rank(a.rate) {
        b.rate
    } else {
        a.rate
    };
    let max_concurrent = if a.max_concurrent == 0 || b.max_concurrent == 0 {
        0
    } else {
        a.max_concurrent.max(b.max_concurrent)
    };
    CallLimit {
        rate,
        max_concurrent,
    }
}

/// The per-user limit of a user holding live grants of `profiles` under
/// `settings` (see [`LimitSettings`]).
pub fn user_limit(
    settings: &LimitSettings,
    user_id: &str,
    profiles: &[AccessProfile],
    now: Millis,
) -> CallLimit {
    if settings.profile_overrides.is_empty() {
        return settings.per_user;
    }
    profiles
        .iter()
        .filter_map(|p| {
            let limit = settings.profile_overrides.get(&p.id)?;
            crate::governance::requests::holds_live_grant(p, user_id, now).then_some(*limit)
        })
        .reduce(most_generous)
        .unwrap_or(settings.per_user)
}

impl CallLimiter {
    /// The buckets of `settings`, rebuilt when they changed.
    fn buckets(&self, settings: &LimitSettings) -> Arc<Buckets> {
        if let Some(b) = self
            .buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|b| b.settings == *settings)
        {
            return b.clone();
        }
        let mut slot = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref().filter(|b| b.settings == *settings) {
            Some(b) => b.clone(),
            None => {
                let fresh = Arc::new(Buckets::new(settings));
                *slot = Some(fresh.clone());
                fresh
            }
        }
    }

    /// Admits a call under `settings` or says which limit refuses it.
    /// Concurrency is checked first (a call refused there takes no token),
    /// then the user's, the tool's and the server's rates, in that order.
    ///
    /// # Errors
    /// The [`Refusal`] of the first limit the call is over.
    pub fn admit(
        &self,
        settings: &LimitSettings,
        call: CallKeys<'_>,
    ) -> Result<Admission, Refusal> {
        let user = user_limit(settings, call.user_id, call.profiles, call.now);
        let tool = settings
            .tool_overrides
            .get(call.tool_name)
            .copied()
            .unwrap_or(settings.per_tool);
        let server = settings.per_server;
        let busy = |scope: Scope, max: u32| {
            let (who, retry) = match scope {
                Scope::User => (
                    "you may have".to_owned(),
                    "retry when one of your calls finishes",
                ),
                Scope::Tool => (
                    format!("the tool {} may have", call.tool_name),
                    "retry in a few seconds",
                ),
                _ => (
                    format!("the server {} may have", call.server_name),
                    "retry in a few seconds",
                ),
            };
            Refusal {
                scope,
                kind: Kind::Concurrency,
                limit: format!("{max} calls at once"),
                retry_after: None,
                message: format!(
                    "concurrency limit reached: {who} at most {max} tool calls running at once through toolgate; {retry}"
                ),
            }
        };
        let admission = Admission {
            _user: self
                .users
                .take(call.user_id, user.max_concurrent)
                .map_err(|()| busy(Scope::User, user.max_concurrent))?,
            _tool: self
                .tools
                .take(call.tool_id, tool.max_concurrent)
                .map_err(|()| busy(Scope::Tool, tool.max_concurrent))?,
            _server: self
                .servers
                .take(call.server_id, server.max_concurrent)
                .map_err(|()| busy(Scope::Server, server.max_concurrent))?,
        };
        if user.rate.is_unlimited() && tool.rate.is_unlimited() && server.rate.is_unlimited() {
            return Ok(admission);
        }
        let buckets = self.buckets(settings);
        let over = |scope: Scope, rate: RateLimit, wait: Duration| {
            let who = match scope {
                Scope::User => "you may make".to_owned(),
                Scope::Tool => format!("the tool {} takes", call.tool_name),
                _ => format!("the server {} takes", call.server_name),
            };
            let whose = if scope == Scope::User {
                ""
            } else {
                " from all users"
            };
            Refusal {
                scope,
                kind: Kind::Rate,
                limit: rate_text(rate),
                retry_after: Some(wait),
                message: format!(
                    "rate limit reached: {who} at most {}{whose} through toolgate; retry after {}",
                    rate_text(rate),
                    retry_text(wait)
                ),
            }
        };
        buckets
            .check(Scope::User, user.rate, call.user_id)
            .map_err(|w| over(Scope::User, user.rate, w))?;
        buckets
            .check(Scope::Tool, tool.rate, call.tool_id)
            .map_err(|w| over(Scope::Tool, tool.rate, w))?;
        buckets
            .check(Scope::Server, server.rate, call.server_id)
            .map_err(|w| over(Scope::Server, server.rate, w))?;
        Ok(admission)
    }

    /// The kept API usage of the Salesforce org `org_id` (created empty on
    /// first use), to hand to [`crate::salesforce::Session::api_usage`].
    pub fn org_usage(&self, org_id: &str) -> Arc<ApiUsage> {
        if let Some(usage) = self
            .orgs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(org_id)
        {
            return usage.clone();
        }
        self.orgs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(org_id.to_owned())
            .or_default()
            .clone()
    }

    /// The org API-usage guard: refuses a call of `tool_name` (an exposed
    /// name) in an org whose last reported daily API usage is at or above
    /// `settings.org_api_usage_max_percent`, unless the tool is among
    /// `essential_tools`. Nothing is refused before the org reported its
    /// usage once, when the report is older than [`ORG_USAGE_STALE_MS`]
    /// (that call reports it again), or with the guard off (0).
    ///
    /// # Errors
    /// The [`Refusal`] (scope org, kind org API usage).
    pub fn org_guard(
        &self,
        settings: &LimitSettings,
        usage: &ApiUsage,
        tool_name: &str,
    ) -> Result<(), Refusal> {
        let percent = settings.org_api_usage_max_percent;
        if percent == 0 {
            return Ok(());
        }
        let Some((used, max)) = usage.get() else {
            return Ok(());
        };
        // A report this old may be out of date (Salesforce's count is a
        // rolling 24 hours, and refused calls bring no new report): let
        // the call through, and its answer reports the usage again.
        if crate::model::now_ms().saturating_sub(usage.reported_at()) > ORG_USAGE_STALE_MS {
            return Ok(());
        }
        if u128::from(used) * 100 < u128::from(max) * u128::from(percent) {
            return Ok(());
        }
        let buckets = self.buckets(settings);
        if buckets.essential.iter().any(|p| p.matches(tool_name)) {
            return Ok(());
        }
        let share = u128::from(used) * 100 / u128::from(max);
        Err(Refusal {
            scope: Scope::Org,
            kind: Kind::OrgApiUsage,
            limit: format!(
                "{share}% of the org's daily API requests used ({} of {}), guard at {percent}%",
                thousands(used),
                thousands(max)
            ),
            retry_after: None,
            message: format!(
                "the Salesforce org has used {share}% of its daily API requests ({} of {}); toolgate keeps the rest for essential tools, so {tool_name} was not called. Salesforce counts the last 24 hours: try again later, or ask your toolgate administrator",
                thousands(used),
                thousands(max)
            ),
        })
    }

    /// Forgets idle keys: buckets that are full again
    /// (`retain_recent`) and counters with nothing in flight. Run on a
    /// timer ([`EVICT_EVERY`]) so memory stays bounded by recent callers.
    pub fn evict_idle(&self) {
        if let Some(b) = self
            .buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            for limiter in b.rates.values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        self.users.evict_idle();
        self.tools.evict_idle();
        self.servers.evict_idle();
    }

    /// Keys kept (buckets and in-flight counters), for tests.
    pub fn keys(&self) -> usize {
        let buckets = self
            .buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |b| b.rates.values().map(Keyed::len).sum());
        buckets + self.users.len() + self.tools.len() + self.servers.len()
    }
}

/// After this long without a new report (10 minutes), an org's usage no
/// longer refuses calls: the next call goes through and reports it again.
pub const ORG_USAGE_STALE_MS: i64 = 10 * 60 * 1000;

/// How often [`CallLimiter::evict_idle`] runs.
pub const EVICT_EVERY: Duration = Duration::from_secs(60);

/// Runs [`CallLimiter::evict_idle`] every `every` until `stop`.
pub async fn run_evictor(
    limiter: Arc<CallLimiter>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => limiter.evict_idle(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessProfile, Grant};

    fn limit(per_minute: u32, burst: u32, conc: u32) -> CallLimit {
        CallLimit {
            rate: RateLimit {
                calls_per_minute: per_minute,
                burst,
            },
            max_concurrent: conc,
        }
    }

    fn keys<'a>(user: &'a String, tool: &'a String, server: &'a String) -> CallKeys<'a> {
        CallKeys {
            user_id: user,
            tool_id: tool,
            tool_name: "salesforce_query",
            server_id: server,
            server_name: "acme",
            profiles: &[],
            now: 0,
        }
    }

    #[test]
    fn a_burst_is_admitted_then_the_next_call_waits_for_a_refill() {
        let limiter = CallLimiter::default();
        let settings = LimitSettings {
            per_user: limit(60, 2, 0),
            ..LimitSettings::unlimited()
        };
        let (u, t, s) = ("u1".to_owned(), "t1".to_owned(), "s1".to_owned());
        let _a = limiter.admit(&settings, keys(&u, &t, &s)).unwrap();
        let _b = limiter.admit(&settings, keys(&u, &t, &s)).unwrap();
        let refusal = limiter.admit(&settings, keys(&u, &t, &s)).unwrap_err();
        assert_eq!((refusal.scope, refusal.kind), (Scope::User, Kind::Rate));
        let wait = refusal.retry_after.unwrap();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(
            refusal.message,
            "rate limit reached: you may make at most 60 calls per minute (bursts of 2) through toolgate; retry after 1 s"
        );
        assert!(refusal.details()["retry_after_ms"].as_u64().unwrap() <= 1000);
        // Another user has a bucket of their own.
        let other = "u2".to_owned();
        assert!(limiter.admit(&settings, keys(&other, &t, &s)).is_ok());
        // A changed limit applies at once, with fresh buckets.
        let raised = LimitSettings {
            per_user: limit(60, 5, 0),
            ..LimitSettings::unlimited()
        };
        assert!(limiter.admit(&raised, keys(&u, &t, &s)).is_ok());
    }

    #[test]
    fn concurrency_counts_calls_in_flight_and_frees_them_when_done() {
        let limiter = CallLimiter::default();
        let settings = LimitSettings {
            per_tool: limit(0, 0, 1),
            ..LimitSettings::unlimited()
        };
        let (u, t, s) = ("u1".to_owned(), "t1".to_owned(), "s1".to_owned());
        let held = limiter.admit(&settings, keys(&u, &t, &s)).unwrap();
        let other = "u2".to_owned();
        let refusal = limiter.admit(&settings, keys(&other, &t, &s)).unwrap_err();
        assert_eq!(
            (refusal.scope, refusal.kind),
            (Scope::Tool, Kind::Concurrency)
        );
        assert!(
            refusal
                .message
                .contains("the tool salesforce_query may have at most 1")
        );
        drop(held);
        let again = limiter.admit(&settings, keys(&other, &t, &s)).unwrap();
        limiter.evict_idle();
        assert_eq!(limiter.keys(), 1, "the held counter stays");
        drop(again);
        limiter.evict_idle();
        assert_eq!(limiter.keys(), 0);
    }

    #[test]
    fn the_most_generous_override_of_the_profiles_a_user_holds_wins() {
        let profile = |id: &str, user: &str, expires: Option<i64>| AccessProfile {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            toolset_ids: Vec::new(),
            grants: vec![Grant {
                user_id: user.into(),
                granted_at: 0,
                expires_at: expires,
                granted_by: "admin".into(),
            }],
            created_at: 0,
            updated_at: 0,
            revision: 0,
            obtain: Default::default(),
            max_request_duration_secs: None,
        };
        let profiles = vec![
            profile("p-slow", "u1", None),
            profile("p-fast", "u1", None),
            profile("p-expired", "u1", Some(10)),
            profile("p-other", "u2", None),
        ];
        let mut settings = LimitSettings::default();
        settings
            .profile_overrides
            .insert("p-slow".into(), limit(10, 5, 20));
        settings
            .profile_overrides
            .insert("p-fast".into(), limit(600, 1, 2));
        settings
            .profile_overrides
            .insert("p-expired".into(), limit(0, 0, 0));
        settings
            .profile_overrides
            .insert("p-other".into(), limit(0, 0, 0));
        assert_eq!(
            user_limit(&settings, "u1", &profiles, 100),
            limit(600, 1, 20)
        );
        assert_eq!(
            user_limit(&settings, "u3", &profiles, 100),
            settings.per_user
        );
        assert_eq!(user_limit(&settings, "u2", &profiles, 100), limit(0, 0, 0));
    }

    #[test]
    fn the_org_guard_refuses_all_but_essential_tools_at_the_threshold() {
        let limiter = CallLimiter::default();
        let mut settings = LimitSettings {
            essential_tools: vec!["*get_limits".into()],
            ..LimitSettings::default()
        };
        let usage = limiter.org_usage("00D1");
        assert!(
            limiter
                .org_guard(&settings, &usage, "salesforce_query")
                .is_ok()
        );
        usage.record("api-usage=13499/15000");
        assert!(
            limiter
                .org_guard(&settings, &usage, "salesforce_query")
                .is_ok()
        );
        limiter.org_usage("00D1").record("api-usage=13650/15000");
        let refusal = limiter
            .org_guard(&settings, &usage, "salesforce_query")
            .unwrap_err();
        assert!(
            refusal.message.starts_with(
                "the Salesforce org has used 91% of its daily API requests (13,650 of 15,000); toolgate keeps the rest for essential tools"
            ),
            "{}",
            refusal.message
        );
        assert!(
            limiter
                .org_guard(&settings, &usage, "salesforce_get_limits")
                .is_ok()
        );
        // A report gone stale lets the next call through to renew it.
        usage.backdate(ORG_USAGE_STALE_MS + 1000);
        assert!(
            limiter
                .org_guard(&settings, &usage, "salesforce_query")
                .is_ok()
        );
        usage.record("api-usage=13651/15000");
        assert!(
            limiter
                .org_guard(&settings, &usage, "salesforce_query")
                .is_err()
        );
        settings.org_api_usage_max_percent = 0;
        assert!(
            limiter
                .org_guard(&settings, &usage, "salesforce_query")
                .is_ok()
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(15), "15");
    }
}
