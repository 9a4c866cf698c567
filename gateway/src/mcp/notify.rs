//! `notifications/tools/list_changed`: remembers each MCP session's peer
//! and the tool list it last saw (and whose list that is), and after every
//! admin change (and once a minute, for grants that expire) tells the
//! sessions whose list changed.
//!
//! Who may use a session is decided at the transport alone
//! ([`super::sessions::Registry`]); this module keeps no owner of its own.

use crate::audit::Action;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

use super::McpState;

/// How often lists are re-checked without an admin change (grant expiry).
const RECHECK_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    /// Whose tool list `tools` is.
    user_id: String,
    peer: Peer<RoleServer>,
    tools: Vec<String>,
}

/// Live MCP sessions by session id.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Entry>>,
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
                peer,
                tools,
            },
        );
    }

    /// Forgets session `id` (it closed).
    pub fn remove(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(id);
    }

    /// How many sessions are tracked.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Re-checks every session's tool list and notifies those that changed.
pub async fn recheck(state: &McpState) {
    let entries: Vec<(String, String, Vec<String>)> = {
        let mut inner = state
            .sessions
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        inner.retain(|_, e| !e.peer.is_transport_closed());
        inner
            .iter()
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
        let peer = {
            let mut inner = state
                .sessions
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match inner.get_mut(&id) {
                Some(entry) => {
                    entry.tools = tools;
                    entry.peer.clone()
                }
                None => continue,
            }
        };
        if let Err(err) = peer.notify_tool_list_changed().await {
            tracing::debug!(session = %id, error = %err, "cannot send tools/list_changed");
        }
    }
}

/// Runs until `shutdown`: re-checks after admin changes (debounced) and
/// every [`RECHECK_EVERY`].
pub async fn watch(state: Arc<McpState>, shutdown: CancellationToken) {
    let mut events = state.store.subscribe();
    let mut tick = tokio::time::interval(RECHECK_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
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
