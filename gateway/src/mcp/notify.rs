//! `notifications/tools/list_changed`: remembers each MCP session's peer
//! (2025-11-25) and each `subscriptions/listen` stream that asked for
//! `toolsListChanged` (2026-07-28, MCP 2026-07-28 "Subscriptions"), the
//! tool list each last saw (and whose list that is), and after every admin
//! change, when a grant ends (just-in-time grants from access requests end
//! by themselves), and once a minute, tells those whose list changed. Changes come from the store's change feed, so an admin
//! write on any replica reaches the listeners of every replica.
//!
//! Who may use a session is decided at the transport alone
//! ([`super::sessions::Registry`]); this module keeps no owner of its own.
//! A listener is registered by [`Sessions::listen`] for as long as its
//! [`Listening`] guard lives (the handler holds it until the stream is
//! cancelled or its HTTP connection drops).

use crate::audit::Action;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::service::SubscriptionSink;
use rmcp::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

use super::McpState;

/// How often lists are re-checked without an admin change (grant expiry).
const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// Where a list change is sent.
#[derive(Debug, Clone)]
enum Notifier {
    /// A 2025-11-25 session, through its peer.
    Session(Peer<RoleServer>),
    /// A 2026-07-28 `subscriptions/listen` stream; its sink stamps the
    /// subscription id on the notification.
    Listener(SubscriptionSink),
}

impl Notifier {
    /// Whether nothing can be sent any more. A listener leaves the map
    /// through its [`Listening`] guard instead.
    fn is_closed(&self) -> bool {
        match self {
            Self::Session(peer) => peer.is_transport_closed(),
            Self::Listener(_) => false,
        }
    }

    async fn tools_changed(&self) -> Result<(), String> {
        match self {
            Self::Session(peer) => peer
                .notify_tool_list_changed()
                .await
                .map_err(|e| e.to_string()),
            Self::Listener(sink) => sink
                .notify_tool_list_changed()
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Whose tool list `tools` is.
    user_id: String,
    notifier: Notifier,
    tools: Vec<String>,
}

/// Live MCP sessions by session id, and listen streams by a key of their
/// own (`listen:<id>`, which no session id looks like: rmcp's are UUIDs).
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Entry>>,
}

/// A registered `subscriptions/listen` stream; dropping it unregisters it.
#[derive(Debug)]
pub struct Listening {
    state: Arc<McpState>,
    key: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.state.sessions.remove(&self.key);
    }
}

impl Sessions {
    /// Records that session `id` was just shown `tools`, the list of
    /// `user_id` (the session's owner: the transport lets no one else
    /// reach it).
    pub fn seen(&self, id: &str, user_id: &str, peer: Peer<RoleServer>, tools: Vec<String>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.insert(
            id.to_owned(),
            Entry {
                user_id: user_id.to_owned(),
                notifier: Notifier::Session(peer),
                tools,
            },
        );
    }

    /// Registers a `subscriptions/listen` stream of `user_id` that asked for
    /// `toolsListChanged`, whose user's list is now `tools`; it hears every
    /// later change of that list through `sink` until the guard drops.
    pub fn listen(
        state: &Arc<McpState>,
        user_id: &str,
        sink: SubscriptionSink,
        tools: Vec<String>,
    ) -> Listening {
        let key = format!("listen:{}", crate::model::new_id());
        let mut inner = state
            .sessions
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        inner.insert(
            key.clone(),
            Entry {
                user_id: user_id.to_owned(),
                notifier: Notifier::Listener(sink),
                tools,
            },
        );
        Listening {
            state: state.clone(),
            key,
        }
    }

    /// How many listen streams are registered.
    pub fn listeners(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .values()
            .filter(|e| matches!(e.notifier, Notifier::Listener(_)))
            .count()
    }

    /// Forgets session `id` (it closed).
    pub fn remove(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(id);
    }

    /// How many sessions and listen streams are tracked.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no session and no listen stream is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Re-checks every session's tool list and notifies those that changed.
pub async fn recheck(state: &McpState) {
    recheck_where(state, None).await;
}

/// Re-checks the list of the listen stream `listening` alone: a change
/// between the list it started from and its registration was not told
/// to it by [`watch`], which may have run in between.
pub async fn catch_up(state: &McpState, listening: &Listening) {
    recheck_where(state, Some(&listening.key)).await;
}

/// Re-checks the lists of every entry (or of `only`) and notifies those
/// that changed.
async fn recheck_where(state: &McpState, only: Option<&str>) {
    let entries: Vec<(String, String, Vec<String>)> = {
        let mut inner = state
            .sessions
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        inner.retain(|_, e| !e.notifier.is_closed());
        inner
            .iter()
            .filter(|(id, _)| only.is_none_or(|only| only == id.as_str()))
            .map(|(id, e)| (id.clone(), e.user_id.clone(), e.tools.clone()))
            .collect()
    };
    if entries.is_empty() {
        return;
    }
    let Ok(world) = state.world().await else {
        return;
    };
    let mut changed = Vec::new();
    for (id, user_id, before) in entries {
        let now = world.allowed_names(&user_id);
        if now != before {
            changed.push((id, now));
        }
    }
    for (id, tools) in changed {
        let notifier = {
            let mut inner = state
                .sessions
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match inner.get_mut(&id) {
                Some(entry) => {
                    entry.tools = tools;
                    entry.notifier.clone()
                }
                None => continue,
            }
        };
        if let Err(err) = notifier.tools_changed().await {
            tracing::debug!(session = %id, error = %err, "cannot send tools/list_changed");
        }
    }
}

/// How long until the next grant ends (a just-in-time grant from an
/// access request, or any grant with an expiry), at most
/// [`RECHECK_EVERY`]; a few milliseconds past the end, as a grant counts
/// as ended from its `expires_at` on.
async fn until_next_grant_end(state: &McpState) -> Duration {
    let Ok(world) = state.world().await else {
        return RECHECK_EVERY;
    };
    let now = crate::model::now_ms();
    world
        .profiles
        .iter()
        .flat_map(|p| p.grants.iter())
        .filter_map(|g| g.expires_at)
        .filter(|&end| end > now)
        .min()
        .map_or(RECHECK_EVERY, |end| {
            let wait = u64::try_from(end - now).unwrap_or(0).saturating_add(5);
            Duration::from_millis(wait).min(RECHECK_EVERY)
        })
}

/// Runs until `shutdown`: re-checks after admin changes (debounced), when
/// a grant ends, and every [`RECHECK_EVERY`].
pub async fn watch(state: Arc<McpState>, shutdown: CancellationToken) {
    let mut events = state.store.subscribe();
    let mut tick = tokio::time::interval(RECHECK_EVERY);
    loop {
        let grant_end = until_next_grant_end(&state).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            () = tokio::time::sleep(grant_end) => {}
            received = events.recv() => match received {
                // Events that cannot change a tool list (tool calls,
                // connections, token issue and revocation) need no check.
                Ok(event) if Action::parse(&event.action)
                    .is_some_and(|a| !a.changes_access()) => continue,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Take what else is queued, then check once.
                    while events.try_recv().is_ok() {}
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
        if !state.sessions.is_empty() {
            recheck(&state).await;
        }
    }
}
