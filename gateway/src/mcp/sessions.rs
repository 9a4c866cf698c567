//! MCP sessions at the transport (MCP 2025-11-25, "Transports", "Session
//! Management"): which user and token own each session, how many each user
//! and the gateway may hold, and what happens to a request that reuses a
//! JSON-RPC id still in flight.
//!
//! A session is bound to the user *and* the token whose `initialize`
//! created it, and counted from the moment rmcp creates it: the transport
//! takes a slot for the caller ([`Registry::reserve`]) and serves the
//! `initialize` inside [`with_reservation`]; rmcp's `create_session`
//! ([`GatedSessionManager`]) turns that slot into the session's entry
//! before the session worker starts, and the entry leaves only when rmcp
//! closes the session. A client that drops its connection in the middle
//! of `initialize` therefore leaves a counted, owned session (until its
//! idle timeout), never an uncounted one. Every later POST, GET and DELETE
//! that carries the `mcp-session-id` header is checked in
//! [`super::transport`], and another credential's request is answered
//! exactly as for an unknown session (404), so a session id learned from
//! elsewhere reveals nothing and reaches nothing.
//!
//! [`GatedSessionManager`] wraps rmcp's in-memory [`LocalSessionManager`]:
//! a session closed by `DELETE`, by its idle timeout or by its worker
//! ending leaves the registry (and the list-changed registry,
//! [`super::notify`]) at once, and a request whose JSON-RPC id is already
//! in flight on its session is refused with `-32600` instead of being
//! routed to (and answered with) the other request's result. An id whose
//! stream the client dropped stays in flight until the abandoned handler's
//! answer has been routed ([`GatedTransport`]): rmcp cancels the handler's
//! token but does not stop it, and routes answers by id.
//!
//! A session this replica does not hold (opened on another replica, or
//! before a restart) is restored from the store by rmcp through
//! [`GatedSessionManager`]'s `restore_session`, only for the request the
//! transport admitted as its owner's ([`super::persist`]); it is then bound
//! and counted like a new one.
//!
//! This module must not decide tool policy or write tool-call audit events
//! ([`super::handler`] does); it only audits refused sessions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt as _;
use rmcp::RoleServer;
use rmcp::model::{
    CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification, ErrorData, Notification,
    RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::Transport;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use serde_json::json;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;

use super::auth::Caller;
use super::persist::{self, SessionStates};
use crate::audit::Action;
use crate::model::{AuditEvent, Outcome, now_ms};
use crate::store::Store;

/// Session limits and lifetime, from [`crate::config::Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Most open sessions per user.
    pub per_user: usize,
    /// Most open sessions in total.
    pub total: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            per_user: 50,
            total: 5000,
        }
    }
}

/// Who opened a session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    user_id: String,
    token_id: String,
}

impl Owner {
    fn of(caller: &Caller) -> Self {
        Self {
            user_id: caller.user.id.clone(),
            token_id: caller.token.id.clone(),
        }
    }
}

/// Why a new session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The user holds `limit` sessions already.
    #[error(
        "you have {limit} open MCP sessions, the most one user may hold; close sessions you no longer use (HTTP DELETE /mcp with their mcp-session-id) or wait until idle ones expire"
    )]
    User {
        /// The per-user limit.
        limit: usize,
    },
    /// The gateway holds `limit` sessions already.
    #[error("toolgate holds {limit} open MCP sessions, its limit; try again later")]
    Total {
        /// The gateway-wide limit.
        limit: usize,
    },
}

/// How often a refused session is audited at most, per user (and once for
/// the gateway-wide limit): a client retrying in a loop must not flood the
/// audit log. Refusals in between are counted in the next event.
const REFUSAL_AUDIT_EVERY_MS: i64 = 60_000;

#[derive(Debug, Default)]
struct Inner {
    /// Every session rmcp holds, with its owner (`None` for a session
    /// created outside [`with_reservation`], which nobody may use but which
    /// is counted all the same).
    owners: HashMap<SessionId, Option<Owner>>,
    /// When the store record of each session held here expires, as last
    /// written or read here ([`super::persist`]), in ms since the epoch.
    stored: HashMap<SessionId, i64>,
    /// Open plus reserved sessions per user id.
    per_user: HashMap<String, usize>,
    /// Open plus reserved sessions.
    total: usize,
    /// user id (or `*` for the total limit) -> (last audited, refused since).
    refusals: HashMap<String, (i64, u64)>,
    /// When each session held here was created, for
    /// [`crate::metrics::MCP_SESSION_DURATION`].
    opened: HashMap<SessionId, std::time::Instant>,
    /// When each session held here last saw a request from its owner (ms
    /// since the epoch): the idle timeout counts from it
    /// ([`Registry::idle`]).
    seen: HashMap<SessionId, i64>,
}

/// The owners and counts of open MCP sessions.
#[derive(Debug)]
pub struct Registry {
    limits: SessionLimits,
    store: Arc<Store>,
    // A std mutex: every critical section is a few map operations, never
    // held across an await.
    inner: Mutex<Inner>,
}

/// A session slot taken by an `initialize` in flight; released on drop
/// unless rmcp created the session (see [`with_reservation`]).
#[derive(Debug)]
pub struct Reservation {
    registry: Arc<Registry>,
    owner: Option<Owner>,
}

impl Reservation {
    /// Binds the new session `id` to the reserving caller; the slot now
    /// belongs to the session and is released when it closes.
    fn commit(mut self, id: SessionId) {
        if let Some(owner) = self.owner.take() {
            self.registry.lock().owners.insert(id, Some(owner));
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            self.registry.lock().release(Some(&owner.user_id));
        }
    }
}

tokio::task_local! {
    /// The slot of the `initialize` being served in this task, taken by
    /// [`GatedSessionManager::create_session`].
    static RESERVED: RefCell<Option<Reservation>>;
}

/// Runs `serve` (rmcp serving an `initialize`) with `slot` available to the
/// session it creates: rmcp's `create_session` runs in the same task
/// (rmcp 3.11 `StreamableHttpService::handle_post`), takes the slot and
/// binds the new session to its caller before the session worker starts.
/// If `serve` ends or is dropped before that, the slot is released.
pub async fn with_reservation<F: Future>(slot: Reservation, serve: F) -> F::Output {
    RESERVED.scope(RefCell::new(Some(slot)), serve).await
}

impl Inner {
    fn release(&mut self, user_id: Option<&str>) {
        self.total = self.total.saturating_sub(1);
        if let Some(user_id) = user_id
            && let Some(n) = self.per_user.get_mut(user_id)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(user_id);
            }
        }
    }
}

impl Registry {
    /// An empty registry enforcing `limits`; refusals are audited in `store`.
    pub fn new(limits: SessionLimits, store: Arc<Store>) -> Self {
        Self {
            limits,
            store,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The idle timeout in ms.
    fn idle_ms(&self) -> i64 {
        i64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(i64::MAX)
    }

    /// Takes a session slot for `caller`, or says which limit is reached
    /// (and audits the refusal, at most once a minute per user).
    pub fn reserve(self: &Arc<Self>, caller: &Caller) -> Result<Reservation, Refusal> {
        self.reserve_at(caller, now_ms())
    }

    /// [`Registry::reserve`] at time `now` (ms since the epoch).
    fn reserve_at(self: &Arc<Self>, caller: &Caller, now: i64) -> Result<Reservation, Refusal> {
        let owner = Owner::of(caller);
        let refusal = {
            let mut inner = self.lock();
            let mine = inner.per_user.get(&owner.user_id).copied().unwrap_or(0);
            if mine >= self.limits.per_user {
                Some(Refusal::User {
                    limit: self.limits.per_user,
                })
            } else if inner.total >= self.limits.total {
                Some(Refusal::Total {
                    limit: self.limits.total,
                })
            } else {
                inner.total += 1;
                *inner.per_user.entry(owner.user_id.clone()).or_insert(0) += 1;
                None
            }
        };
        match refusal {
            None => Ok(Reservation {
                registry: self.clone(),
                owner: Some(owner),
            }),
            Some(refusal) => {
                self.audit_refusal(caller, refusal, now);
                Err(refusal)
            }
        }
    }

    /// Audits a refusal at `now`, unless this user's (or the gateway's) last
    /// one is less than [`REFUSAL_AUDIT_EVERY_MS`] old. When it writes, it
    /// forgets the users whose last audit is older than that (their next
    /// refusal is audited anyway), so the map holds at most the users
    /// refused within one interval.
    fn audit_refusal(&self, caller: &Caller, refusal: Refusal, now: i64) {
        let (key, scope, limit) = match refusal {
            Refusal::User { limit } => (caller.user.id.clone(), "user", limit),
            Refusal::Total { limit } => ("*".to_owned(), "gateway", limit),
        };
        let refused = {
            let mut inner = self.lock();
            let entry = inner.refusals.entry(key.clone()).or_insert((i64::MIN, 0));
            entry.1 += 1;
            if now.saturating_sub(entry.0) < REFUSAL_AUDIT_EVERY_MS {
                return;
            }
            let refused = entry.1;
            *entry = (now, 0);
            inner.refusals.retain(|k, (audited, _)| {
                *k == key || now.saturating_sub(*audited) < REFUSAL_AUDIT_EVERY_MS
            });
            refused
        };
        let mut event = AuditEvent::allowed(
            &format!("user:{}", caller.user.email),
            Action::McpSessionOpen,
            format!("user/{}", caller.user.email),
        )
        .with_reason(refusal.to_string())
        .with_details(json!({
            "limit": limit,
            "scope": scope,
            "token_id": caller.token.id,
            "refused": refused,
        }));
        event.outcome = Outcome::Denied;
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.append_audit(vec![event]).await {
                tracing::error!(error = %err, "cannot audit a refused MCP session");
            }
        });
    }

    /// Whether session `id` is open and belongs to `caller` (same user and
    /// token).
    pub fn owned_by(&self, id: &str, caller: &Caller) -> bool {
        let inner = self.lock();
        inner
            .owners
            .get(id)
            .and_then(Option::as_ref)
            .is_some_and(|o| o.user_id == caller.user.id && o.token_id == caller.token.id)
    }

    /// Where session `id` stands for `caller` at `now` (ms since the
    /// epoch): see [`Lookup`].
    /// A request of the owner's counts as traffic: the idle timeout starts
    /// again from `now`.
    pub(crate) fn lookup(&self, id: &str, caller: &Caller, now: i64) -> Lookup {
        let mut inner = self.lock();
        match inner.owners.get(id) {
            None => Lookup::Unknown,
            Some(Some(o)) if o.user_id == caller.user.id && o.token_id == caller.token.id => {
                if let Some(seen) = inner.seen.get_mut(id) {
                    *seen = now;
                }
                let idle = self.idle_ms();
                Lookup::Owned {
                    refresh: inner
                        .stored
                        .get(id)
                        .copied()
                        .filter(|&known| known.saturating_sub(now) <= idle),
                }
            }
            Some(_) => Lookup::NotOwned,
        }
    }

    /// The user and token ids that own session `id`, if it is held here
    /// with an owner.
    pub(crate) fn owner_of(&self, id: &str) -> Option<(String, String)> {
        let inner = self.lock();
        inner
            .owners
            .get(id)
            .and_then(Option::as_ref)
            .map(|o| (o.user_id.clone(), o.token_id.clone()))
    }

    /// Notes that session `id`'s store record expires at `expires_at`;
    /// ignored for a session not held here.
    pub(crate) fn set_stored(&self, id: &str, expires_at: i64) {
        let mut inner = self.lock();
        if inner.owners.contains_key(id) {
            inner.stored.insert(SessionId::from(id), expires_at);
        }
    }

    /// Records session `id`, just created by rmcp: bound to `slot`'s caller,
    /// or, with no slot (a session created outside [`with_reservation`]),
    /// counted in the total with no owner.
    fn created(&self, id: SessionId, slot: Option<Reservation>) {
        {
            let mut inner = self.lock();
            inner.opened.insert(id.clone(), std::time::Instant::now());
            inner.seen.insert(id.clone(), now_ms());
        }
        metrics::gauge!(crate::metrics::MCP_SESSIONS_ACTIVE).increment(1.0);
        match slot {
            Some(slot) => slot.commit(id),
            None => {
                let mut inner = self.lock();
                inner.total += 1;
                inner.owners.insert(id, None);
            }
        }
    }

    /// Forgets session `id` (closed) and frees its slot; a no-op for an
    /// unknown id.
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(owner) = inner.owners.remove(id) {
            inner.release(owner.as_ref().map(|o| o.user_id.as_str()));
        }
        inner.stored.remove(id);
        inner.seen.remove(id);
        if let Some(opened) = inner.opened.remove(id) {
            metrics::gauge!(crate::metrics::MCP_SESSIONS_ACTIVE).decrement(1.0);
            metrics::histogram!(crate::metrics::MCP_SESSION_DURATION)
                .record(opened.elapsed().as_secs_f64());
        }
    }

    /// The sessions held here whose owner sent nothing for the idle
    /// timeout before `now` (ms since the epoch) and that have no request
    /// in `in_flight`: [`GatedSessionManager::close_idle`] closes them.
    pub(crate) fn idle(&self, now: i64, in_flight: &InFlight) -> Vec<SessionId> {
        let idle = self.idle_ms();
        let busy = lock_in_flight(in_flight);
        self.lock()
            .seen
            .iter()
            .filter(|(id, seen)| now.saturating_sub(**seen) >= idle && !busy.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Session `id` saw traffic at `now` (ms since the epoch); a no-op for
    /// a session not held here.
    pub(crate) fn touch(&self, id: &str, now: i64) {
        if let Some(seen) = self.lock().seen.get_mut(id) {
            *seen = (*seen).max(now);
        }
    }

    /// Whether session `id` is still idle at `now` ([`Registry::idle`]).
    pub(crate) fn still_idle(&self, id: &str, now: i64, in_flight: &InFlight) -> bool {
        let idle = self.idle_ms();
        let busy = lock_in_flight(in_flight).contains_key(id);
        !busy
            && self
                .lock()
                .seen
                .get(id)
                .is_some_and(|seen| now.saturating_sub(*seen) >= idle)
    }

    /// Whether session `id` is held here.
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.lock().owners.contains_key(id)
    }

    /// When session `id`'s store record was last known here to expire
    /// ([`Registry::set_stored`]).
    pub(crate) fn stored(&self, id: &str) -> Option<i64> {
        self.lock().stored.get(id).copied()
    }

    /// Counted sessions in total and of `user_id` (sessions rmcp holds plus
    /// slots of `initialize` requests in flight).
    pub fn counts(&self, user_id: &str) -> (usize, usize) {
        let inner = self.lock();
        (
            inner.total,
            inner.per_user.get(user_id).copied().unwrap_or(0),
        )
    }
}

/// Where a session id stands for a caller ([`Registry::lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Held here and the caller's. `refresh` is the known expiry of its
    /// store record when that record is due to be rewritten (written
    /// [`super::persist::refresh_every`] ago or longer).
    Owned {
        /// The known expiry, when a rewrite is due.
        refresh: Option<i64>,
    },
    /// Held here, and not the caller's.
    NotOwned,
    /// Not held here (maybe in the store).
    Unknown,
}

/// A session's `GET /mcp` stream, counted in
/// [`crate::metrics::MCP_STREAMS_OPEN`] until dropped.
struct OpenStream<S> {
    inner: Pin<Box<S>>,
    _open: crate::metrics::Open,
}

impl<S: Stream> Stream for OpenStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Where a request id in use on a session stands.
#[derive(Debug, Default)]
pub(crate) struct Busy {
    /// Its answer passed through its stream towards the client.
    answered: bool,
    /// rmcp's session worker has routed its answer (the session transport's
    /// send of it returned): no answer with this id is on its way any more.
    routed: bool,
    /// Its stream was dropped before the answer passed.
    abandoned: bool,
    /// toolgate's handler for it returned (or was dropped): see
    /// [`Handling`].
    finished: bool,
    /// Routed notices still due for earlier requests with this id whose
    /// answers passed before the worker reported them routed; they are
    /// not this request's.
    stale: u32,
}

/// Request ids in use, per session: from the request's stream until its
/// answer passed through that stream, or, when the stream was dropped
/// first, until the abandoned handler finished or its answer was routed.
/// rmcp does not stop a handler whose request was cancelled; it drops the
/// handler's answer only while no other request with the same id is in
/// flight, and otherwise routes it to that request. Freeing the id when
/// the stream drops let a request reusing it receive the old answer.
pub(crate) type InFlight = Arc<Mutex<HashMap<SessionId, HashMap<RequestId, Busy>>>>;

fn lock_in_flight(
    in_flight: &InFlight,
) -> std::sync::MutexGuard<'_, HashMap<SessionId, HashMap<RequestId, Busy>>> {
    in_flight.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes `request` on `session` for a new stream; `false` if a request
/// with that id is still in use.
fn take(in_flight: &InFlight, session: &SessionId, request: &RequestId) -> bool {
    let mut map = lock_in_flight(in_flight);
    let ids = map.entry(session.clone()).or_default();
    let stale = match ids.get(request) {
        None => 0,
        // Answered, and the worker's routed notice is still to come.
        Some(busy) if busy.answered => busy.stale + 1,
        Some(_) => return false,
    };
    ids.insert(
        request.clone(),
        Busy {
            stale,
            ..Busy::default()
        },
    );
    true
}

/// Applies `change` to `request`'s entry; removes it when `change` says so.
fn update(
    in_flight: &InFlight,
    session: &SessionId,
    request: &RequestId,
    change: impl FnOnce(&mut Busy) -> bool,
) {
    let mut map = lock_in_flight(in_flight);
    let Some(ids) = map.get_mut(session) else {
        return;
    };
    let Some(busy) = ids.get_mut(request) else {
        return;
    };
    if change(busy) {
        ids.remove(request);
        if ids.is_empty() {
            map.remove(session);
        }
    }
}

/// The answer to `request` passed through its stream.
fn mark_answered(in_flight: &InFlight, session: &SessionId, request: &RequestId) {
    update(in_flight, session, request, |busy| {
        busy.answered = true;
        busy.routed
    });
}

/// The session worker routed an answer to `request`.
fn routed(in_flight: &InFlight, session: &SessionId, request: &RequestId) {
    update(in_flight, session, request, |busy| {
        if busy.stale > 0 {
            busy.stale -= 1;
            return false;
        }
        busy.routed = true;
        busy.answered || busy.abandoned
    });
}

/// `request`'s stream was dropped before its answer passed; whether the
/// handler may still be running (and should be told the request was
/// cancelled).
fn abandoned(in_flight: &InFlight, session: &SessionId, request: &RequestId) -> bool {
    let mut running = false;
    update(in_flight, session, request, |busy| {
        busy.abandoned = true;
        running = !(busy.routed || busy.finished);
        !running
    });
    running
}

/// A request the transport answers itself, without rmcp's session worker
/// ([`super::transport`]'s direct path): its id is taken on its session
/// from [`Served::take`] until this is dropped, after the answer was
/// made (the handler runs in its own task, so a client that goes away
/// does not cut a call short of its audit event).
#[derive(Debug)]
pub(crate) struct Served {
    in_flight: InFlight,
    session: SessionId,
    request: RequestId,
}

impl Served {
    /// Takes `request` on `session`; `None` if a request with that id is
    /// still in use there.
    pub(crate) fn take(in_flight: &InFlight, session: &str, request: RequestId) -> Option<Self> {
        let session = SessionId::from(session);
        take(in_flight, &session, &request).then(|| Self {
            in_flight: in_flight.clone(),
            session,
            request,
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Routed notices still due for earlier rmcp requests with this id
        // stay due: the entry is left as an answered one that waits for
        // them (see `take` and `routed`).
        update(&self.in_flight, &self.session, &self.request, |busy| {
            if busy.stale == 0 {
                return true;
            }
            busy.answered = true;
            busy.stale -= 1;
            false
        });
    }
}

/// The rmcp peer of each session held here (for the direct path's
/// server-to-client messages and client capabilities), recorded when the
/// session's client sends `notifications/initialized` and forgotten when
/// the session closes.
pub(crate) type Peers = Arc<Mutex<HashMap<SessionId, rmcp::Peer<RoleServer>>>>;

/// Marks a request as being handled by toolgate's handler
/// ([`super::Gateway`]) until dropped: the id of an abandoned request is
/// freed when its handler is done (its late answer is then dropped by
/// rmcp, the request having been cancelled).
#[derive(Debug)]
pub(crate) struct Handling {
    in_flight: InFlight,
    session: SessionId,
    request: RequestId,
}

impl Handling {
    /// `request` on `session` is being handled.
    pub(crate) fn new(in_flight: &InFlight, session: &str, request: RequestId) -> Self {
        Self {
            in_flight: in_flight.clone(),
            session: SessionId::from(session),
            request,
        }
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        update(&self.in_flight, &self.session, &self.request, |busy| {
            busy.finished = true;
            busy.abandoned
        });
    }
}

/// The transport rmcp serves a session over: rmcp's own, telling the
/// in-flight table when the session worker has routed an answer (its send
/// returns only then: rmcp 3.11 `WorkerTransport::send` waits for the
/// worker's reply).
pub struct GatedTransport {
    inner: <LocalSessionManager as SessionManager>::Transport,
    session: SessionId,
    in_flight: InFlight,
}

impl std::fmt::Debug for GatedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session id stays out of logs.
        f.debug_struct("GatedTransport").finish_non_exhaustive()
    }
}

impl Transport<RoleServer> for GatedTransport {
    type Error =
        <<LocalSessionManager as SessionManager>::Transport as Transport<RoleServer>>::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let answer = match &item {
            ServerJsonRpcMessage::Response(r) => Some(r.id.clone()),
            ServerJsonRpcMessage::Error(e) => e.id.clone(),
            _ => None,
        };
        let sent = self.inner.send(item);
        let in_flight = self.in_flight.clone();
        let session = self.session.clone();
        async move {
            let result = sent.await;
            // Routed or failed: either way no answer with this id is on
            // its way any more.
            if let Some(request) = answer {
                routed(&in_flight, &session, &request);
            }
            result
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.inner.receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// rmcp's [`LocalSessionManager`] with toolgate's bookkeeping: closing a
/// session removes it from the [`Registry`] and the list-changed
/// registry; a JSON-RPC id already in flight on a session is refused.
#[derive(Debug)]
pub struct GatedSessionManager {
    inner: Arc<LocalSessionManager>,
    registry: Arc<Registry>,
    /// The sessions' store records ([`super::persist`]).
    states: Arc<SessionStates>,
    /// Cancelled when the daemon stops: sessions closed then stay in the
    /// store, for another replica (or this one restarted) to restore.
    shutdown: CancellationToken,
    /// For the list-changed registry, [`super::McpState::sessions`].
    state: Arc<super::McpState>,
    in_flight: InFlight,
}

impl GatedSessionManager {
    /// Wraps a new [`LocalSessionManager`] whose sessions close after
    /// `registry`'s idle timeout and are recorded in the store by
    /// `states`; `shutdown` is the daemon's stop signal.
    pub fn new(
        registry: Arc<Registry>,
        state: Arc<super::McpState>,
        states: Arc<SessionStates>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut inner = LocalSessionManager::default();
        // The idle timeout is toolgate's ([`GatedSessionManager::close_idle`]):
        // requests the transport answers directly never reach rmcp's
        // session worker, whose own timer would close a busy session.
        inner.session_config.keep_alive = None;
        Self {
            inner: Arc::new(inner),
            registry,
            states,
            shutdown,
            in_flight: state.in_flight.clone(),
            state,
        }
    }

    /// The registry this manager keeps.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The sessions' store records, rmcp's session store.
    pub fn states(&self) -> &Arc<SessionStates> {
        &self.states
    }

    /// The MCP handlers' shared state.
    pub fn state(&self) -> &Arc<super::McpState> {
        &self.state
    }

    /// Closes the sessions idle at `now` ([`Registry::idle`]). Also forgets
    /// peers of sessions no longer held (one whose client sent
    /// `notifications/initialized` as it closed).
    pub async fn close_idle(&self, now: i64) {
        let idle = self.registry.idle(now, &self.in_flight);
        self.state
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| self.registry.holds(id));
        // Many at once: each close deletes the session's store record, and
        // 10,000 sessions idling out together took seconds one by one.
        let closing = idle.into_iter().map(|id| async move {
            // A request may have come in since the snapshot.
            if !self.registry.still_idle(&id, now_ms(), &self.in_flight) {
                return;
            }
            if let Err(err) = self.close_session(&id).await {
                tracing::warn!(error = %err, "cannot close an idle MCP session");
            }
        });
        futures_util::stream::iter(closing)
            .buffer_unordered(64)
            .collect::<()>()
            .await;
    }

    /// Closes idle sessions ([`GatedSessionManager::close_idle`]) every
    /// eighth of the idle timeout (at least 100 ms, at most 1 s), so a
    /// session closes at most a second after its idle timeout, until
    /// `shutdown`. A sweep looks at each session held here once (about
    /// 100 µs for 10,000).
    pub async fn sweep_idle(self: Arc<Self>, shutdown: CancellationToken) {
        let every = (self.registry.limits().idle_timeout / 8)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.close_idle(now_ms()).await;
        }
    }
}

/// A request's answer stream: either a single `-32600` refusal, or rmcp's
/// stream with a guard that frees the request id once its answer passed.
struct RequestStream {
    inner: Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync>>,
    guard: Option<InFlightGuard>,
}

impl Stream for RequestStream {
    type Item = ServerSseMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        let answered = match (&polled, &self.guard) {
            (Poll::Ready(Some(sse)), Some(guard)) => {
                sse.message.as_deref().is_some_and(|m| match m {
                    ServerJsonRpcMessage::Response(r) => r.id == guard.request,
                    ServerJsonRpcMessage::Error(e) => e.id.as_ref() == Some(&guard.request),
                    _ => false,
                })
            }
            _ => false,
        };
        if answered && let Some(mut guard) = self.guard.take() {
            // The id is free before the answer is passed on (once the
            // worker's routed notice came, which may follow), so a client
            // that reuses it right after never sees a refusal.
            mark_answered(&guard.in_flight, &guard.session, &guard.request);
            guard.answered = true;
        }
        polled
    }
}

/// Tells the in-flight table when a request's stream is dropped before its
/// answer passed (the client went away): the request is cancelled in its
/// session (rmcp cancels the handler's `RequestContext::ct`), and its id
/// stays taken until the handler's answer has been routed.
struct InFlightGuard {
    in_flight: InFlight,
    manager: Arc<LocalSessionManager>,
    session: SessionId,
    request: RequestId,
    answered: bool,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.answered || !abandoned(&self.in_flight, &self.session, &self.request) {
            return;
        }
        let manager = self.manager.clone();
        let session = self.session.clone();
        let request = self.request.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let cancel =
                ClientJsonRpcMessage::notification(ClientNotification::CancelledNotification(
                    Notification::new(CancelledNotificationParam::new(
                        Some(request),
                        Some("the client closed the request's stream".into()),
                    )),
                ));
            // A closed session has nothing left to cancel.
            let _ = manager.accept_message(&session, cancel).await;
        });
    }
}

/// Removes a session from the registry when dropped.
struct Forget<'a>(&'a Registry, &'a SessionId);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

impl SessionManager for GatedSessionManager {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = GatedTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        // Taken before rmcp creates the session, so a failure releases it.
        let slot = RESERVED
            .try_with(|slot| slot.borrow_mut().take())
            .ok()
            .flatten();
        let (id, transport) = self.inner.create_session().await?;
        // Recorded before rmcp spawns the session's worker, whose end
        // calls close_session.
        self.registry.created(id.clone(), slot);
        let transport = GatedTransport {
            inner: transport,
            session: id.clone(),
            in_flight: self.in_flight.clone(),
        };
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let stored = self.registry.stored(id);
        // Its slot is free once its record is gone, or if this is dropped
        // half-way (a DELETE whose client went away).
        let _remove = Forget(&self.registry, id);
        self.state.sessions.remove(id);
        self.state
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let closed = self.inner.close_session(id).await;
        // Closed by DELETE, its idle timeout or its worker ending, not by
        // the daemon stopping: its record goes too (unless the client is
        // active on another replica, see persist::SessionStates::closed).
        if let Some(known) = stored
            && !self.shutdown.is_cancelled()
        {
            self.states.closed(id, known).await;
        }
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let request = match &message {
            ClientJsonRpcMessage::Request(r) => Some(r.id.clone()),
            _ => None,
        };
        let guard = match request {
            None => None,
            Some(request) => {
                if !take(&self.in_flight, id, &request) {
                    let refusal = ServerJsonRpcMessage::error(
                        ErrorData::invalid_request(
                            format!(
                                "request id {request} is already in use by a request in flight on this session; use a new id"
                            ),
                            None,
                        ),
                        Some(request),
                    );
                    return Ok(RequestStream {
                        inner: Box::pin(tokio_stream::once(ServerSseMessage::from_message(
                            refusal,
                        ))),
                        guard: None,
                    });
                }
                Some(InFlightGuard {
                    in_flight: self.in_flight.clone(),
                    manager: self.inner.clone(),
                    session: id.clone(),
                    request,
                    answered: false,
                })
            }
        };
        let stream = match self.inner.create_stream(id, message).await {
            Ok(stream) => stream,
            Err(err) => {
                // Nothing reached the session: the id is free again.
                if let Some(mut guard) = guard {
                    guard.answered = true;
                    update(&self.in_flight, id, &guard.request, |_| true);
                }
                return Err(err);
            }
        };
        Ok(RequestStream {
            inner: Box::pin(stream),
            guard,
        })
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner.create_standalone_stream(id).await?;
        Ok(OpenStream {
            inner: Box::pin(stream),
            _open: crate::metrics::Open::new(crate::metrics::MCP_STREAMS_OPEN),
        })
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    /// Recreates session `id` from its store record, only when the
    /// transport admitted it for this request's caller
    /// ([`super::persist::with_restoring`]): the session is bound to that
    /// caller (its stored owner) with the caller's slot, like a new one.
    /// rmcp then replays `initialize` into it.
    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        let Some(restoring) = persist::take_restoring(&id) else {
            return Ok(RestoreOutcome::NotSupported);
        };
        match self.inner.restore_session(id.clone()).await? {
            RestoreOutcome::Restored(transport) => {
                // Recorded before rmcp spawns the session's worker, whose
                // end calls close_session.
                self.registry.created(id.clone(), Some(restoring.slot));
                self.registry.set_stored(&id, restoring.expires_at);
                Ok(RestoreOutcome::Restored(GatedTransport {
                    inner: transport,
                    session: id,
                    in_flight: self.in_flight.clone(),
                }))
            }
            RestoreOutcome::AlreadyPresent => Ok(RestoreOutcome::AlreadyPresent),
            _ => Ok(RestoreOutcome::NotSupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::Waker;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::middleware::Next;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    use tower::ServiceExt;

    use super::*;
    use crate::model::{Token, User, UserStatus};
    use crate::store::Ephemeral;

    const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

    struct Fixture {
        router: axum::Router,
        manager: Arc<GatedSessionManager>,
        store: Arc<Store>,
        _dir: tempfile::TempDir,
    }

    fn caller(user: &str) -> Caller {
        Caller {
            user: User {
                id: user.into(),
                email: format!("{user}@example.com"),
                display_name: String::new(),
                status: UserStatus::Active,
                created_at: 0,
                updated_at: 0,
            },
            token: Token {
                id: format!("{user}-token"),
                user_id: user.into(),
                name: "test".into(),
                prefix: "tgp_test".into(),
                hash: String::new(),
                created_at: 0,
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            },
            client: crate::control::token_client(&Token {
                id: "client".into(),
                user_id: user.into(),
                name: "test".into(),
                prefix: "tgp_test".into(),
                hash: String::new(),
                created_at: 0,
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            }),
        }
    }

    /// The `/mcp` stack from the transport gate inward, with requests
    /// authenticated as `as_caller` (or not at all).
    fn fixture(limits: SessionLimits, as_caller: Option<Caller>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let lock = crate::store::DirLock::acquire(dir.path()).unwrap();
        let key = crate::crypto::MasterKey::parse(&"11".repeat(32), "test").unwrap();
        let store = Arc::new(Store::open(dir.path(), key, lock).unwrap());
        let oauth = Arc::new(crate::oauth::OAuth::new(store.clone(), "http://localhost"));
        let state = Arc::new(super::super::McpState::new(
            store.clone(),
            oauth,
            crate::salesforce::Limits::default(),
        ));
        let registry = Arc::new(Registry::new(limits, store.clone()));
        let states = Arc::new(SessionStates::new(store.clone(), registry.clone()));
        let manager = Arc::new(GatedSessionManager::new(
            registry,
            state.clone(),
            states,
            CancellationToken::new(),
        ));
        let mut config = StreamableHttpServerConfig::default();
        config.session_store = Some(manager.states().clone());
        let service = StreamableHttpService::new(
            move || Ok(super::super::Gateway::new(state.clone())),
            manager.clone(),
            config,
        );
        let gate = Arc::new(super::super::transport::Gate::new(
            &manager,
            "http://127.0.0.1:8080",
        ));
        let mut router = axum::Router::new().nest_service("/mcp", service).layer(
            axum::middleware::from_fn_with_state(gate, super::super::transport::gate),
        );
        if let Some(c) = as_caller {
            router = router.layer(axum::middleware::from_fn(
                move |mut request: Request, next: Next| {
                    request.extensions_mut().insert(c.clone());
                    next.run(request)
                },
            ));
        }
        Fixture {
            router,
            manager,
            store,
            _dir: dir,
        }
    }

    fn initialize() -> Request {
        Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(INITIALIZE))
            .unwrap()
    }

    /// A POST of `body` on session `id`.
    fn on_session(id: &str, body: &str) -> Request {
        Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    /// Sessions rmcp holds.
    fn rmcp_sessions(manager: &GatedSessionManager) -> usize {
        manager.inner.sessions.try_read().unwrap().len()
    }

    fn limits(per_user: usize) -> SessionLimits {
        SessionLimits {
            per_user,
            ..SessionLimits::default()
        }
    }

    #[tokio::test]
    async fn a_session_is_counted_from_its_creation_even_if_its_initialize_is_dropped() {
        let f = fixture(limits(1), Some(caller("ana")));
        let registry = f.manager.registry().clone();

        // Polled once without yielding to the runtime (a current-thread
        // one): rmcp creates the session and waits for its worker, which
        // cannot run yet; then the client goes away.
        let mut pending = Box::pin(f.router.clone().oneshot(initialize()));
        let polled = pending
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(polled.is_pending());
        assert_eq!(rmcp_sessions(&f.manager), 1);
        drop(pending);

        // The orphaned session is counted, against Ana.
        assert_eq!(registry.counts("ana"), (1, 1));
        let id = f
            .manager
            .inner
            .sessions
            .read()
            .await
            .keys()
            .next()
            .unwrap()
            .clone();
        assert!(registry.owned_by(&id, &caller("ana")));
        assert!(!registry.owned_by(&id, &caller("ben")));

        // So her limit of one holds.
        let refused = f.router.clone().oneshot(initialize()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(rmcp_sessions(&f.manager), 1);

        // Closing the session frees its slot; a normal initialize takes it.
        f.manager.close_session(&id).await.unwrap();
        assert_eq!(registry.counts("ana"), (0, 0));
        let opened = f.router.clone().oneshot(initialize()).await.unwrap();
        assert_eq!(opened.status(), StatusCode::OK);
        assert_eq!(registry.counts("ana"), (1, 1));
        assert_eq!(rmcp_sessions(&f.manager), 1);

        // A session created outside the gate is counted too, owned by nobody.
        let (stray, _transport) = f.manager.create_session().await.unwrap();
        assert_eq!(registry.counts("ana"), (2, 1));
        assert_eq!(rmcp_sessions(&f.manager), 2);
        assert!(!registry.owned_by(&stray, &caller("ana")));
        f.manager.close_session(&stray).await.unwrap();
        assert_eq!(registry.counts("ana"), (1, 1));
    }

    #[tokio::test]
    async fn a_held_session_refreshes_its_record_and_closes_once_another_replica_deleted_it() {
        let f = fixture(limits(1), Some(caller("ana")));
        let registry = f.manager.registry().clone();
        let opened = f.router.clone().oneshot(initialize()).await.unwrap();
        assert_eq!(opened.status(), StatusCode::OK);
        let id = opened.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let key = crate::crypto::sha256_hex(id.as_bytes());
        let record = f
            .store
            .get_ephemeral(persist::KIND, &key)
            .await
            .unwrap()
            .expect("stored after initialize");
        assert_eq!(record.owner, "ana");
        assert_eq!(registry.stored(&id), Some(record.expires_at));
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
        let done = f.router.clone().oneshot(on_session(&id, initialized)).await;
        assert_eq!(done.unwrap().status(), StatusCode::ACCEPTED);

        // Written long ago (it expires within the idle timeout): the next
        // request rewrites it for a full lifetime.
        let old = now_ms() + 1_000;
        let aged = Ephemeral {
            expires_at: old,
            ..record
        };
        f.store
            .put_ephemeral(persist::KIND, &key, &aged)
            .await
            .unwrap();
        registry.set_stored(&id, old);
        let before = now_ms();
        let pinged = f.router.clone().oneshot(on_session(&id, ping)).await;
        assert_eq!(pinged.unwrap().status(), StatusCode::OK);
        let refreshed = f
            .store
            .get_ephemeral(persist::KIND, &key)
            .await
            .unwrap()
            .unwrap();
        let lifetime = i64::try_from(f.manager.states().lifetime().as_millis()).unwrap();
        assert!(refreshed.expires_at >= before + lifetime, "{refreshed:?}");
        assert_eq!(refreshed.value, aged.value);
        assert_eq!(registry.stored(&id), Some(refreshed.expires_at));

        // A DELETE on another replica removes the record: not looked at
        // again until a refresh is due, then the session closes here too.
        f.store.delete_ephemeral(persist::KIND, &key).await.unwrap();
        let pinged = f.router.clone().oneshot(on_session(&id, ping)).await;
        assert_eq!(pinged.unwrap().status(), StatusCode::OK);
        registry.set_stored(&id, now_ms());
        let gone = f.router.clone().oneshot(on_session(&id, ping)).await;
        assert_eq!(gone.unwrap().status(), StatusCode::NOT_FOUND);
        assert_eq!(rmcp_sessions(&f.manager), 0);
        assert_eq!(registry.counts("ana"), (0, 0));
    }

    #[test]
    fn an_abandoned_id_is_free_only_once_its_handler_or_answer_is_done() {
        let in_flight = InFlight::default();
        let session = SessionId::from("s");
        let id = RequestId::Number(8);
        // Abandoned while its handler runs: taken until the handler ends.
        assert!(take(&in_flight, &session, &id));
        let handling = Handling::new(&in_flight, "s", id.clone());
        assert!(abandoned(&in_flight, &session, &id));
        assert!(!take(&in_flight, &session, &id));
        drop(handling);
        assert!(take(&in_flight, &session, &id));
        // Abandoned after its answer was routed: free at once.
        routed(&in_flight, &session, &id);
        assert!(!abandoned(&in_flight, &session, &id));
        assert!(lock_in_flight(&in_flight).is_empty());
        // Answered through its stream before the worker's routed notice:
        // free for the next request, whose own notice is not confused
        // with the late one.
        assert!(take(&in_flight, &session, &id));
        mark_answered(&in_flight, &session, &id);
        assert!(take(&in_flight, &session, &id));
        routed(&in_flight, &session, &id); // the first request's, late
        assert!(abandoned(&in_flight, &session, &id));
        assert!(!take(&in_flight, &session, &id));
        routed(&in_flight, &session, &id); // the second request's
        assert!(take(&in_flight, &session, &id));
    }

    #[tokio::test]
    async fn a_request_without_a_caller_is_refused_not_passed_to_rmcp() {
        let f = fixture(limits(1), None);
        let answer = f.router.clone().oneshot(initialize()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], -32603, "{body}");
        assert_eq!(rmcp_sessions(&f.manager), 0);
        assert_eq!(f.manager.registry().counts("ana"), (0, 0));
    }

    #[tokio::test]
    async fn refusal_audit_entries_older_than_the_interval_are_dropped() {
        let f = fixture(limits(0), None);
        let registry = f.manager.registry().clone();
        let t0 = 1_000_000_000;
        for user in ["ana", "ben", "cy"] {
            assert!(registry.reserve_at(&caller(user), t0).is_err());
        }
        assert!(registry.reserve_at(&caller("ana"), t0 + 1).is_err());
        assert_eq!(registry.lock().refusals.len(), 3);
        // Dee's refusal, one interval later, is audited and prunes the rest.
        assert!(
            registry
                .reserve_at(&caller("dee"), t0 + REFUSAL_AUDIT_EVERY_MS)
                .is_err()
        );
        let refusals = registry.lock().refusals.clone();
        assert_eq!(
            refusals.into_iter().collect::<Vec<_>>(),
            [("dee".to_owned(), (t0 + REFUSAL_AUDIT_EVERY_MS, 0))]
        );
    }
}
