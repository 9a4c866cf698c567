//! MCP sessions (protocol 2025-11-25 and older) that outlive the replica
//! holding them (MCP 2025-11-25, "Transports", "Session Management"): what
//! is kept in the store so that any replica, or this one after a restart,
//! serves the client's next request on the same `mcp-session-id`.
//!
//! rmcp 3.11 restores a session it does not hold from a
//! [`SessionStore`] (`StreamableHttpServerConfig::session_store`): it
//! stores [`SessionState`] (the client's `initialize` params) after a
//! successful `initialize`, and on a request with an unknown session id it
//! loads that state, asks [`super::sessions::GatedSessionManager`] to
//! recreate the session and replays `initialize` and
//! `notifications/initialized` into it. [`SessionStates`] is that store,
//! over the store's ephemeral values ([`Store::put_ephemeral`]): kind
//! [`KIND`], key the SHA-256 hex of the session id (the store never holds a
//! usable id), owner the user id, and the value, sealed under the master
//! key, the rmcp state with the user *and* token that own the session.
//!
//! Who may restore: the transport ([`super::transport::gate`]) reads the
//! record for a session id it does not hold and lets the request on only
//! when the caller is the stored user with the stored token; the record
//! and a session slot of the caller (counted against the limits like any
//! session) then travel with the request in a task-local
//! ([`with_restoring`]). [`SessionStore::load`] answers only from that
//! task-local and the manager's `restore_session` only with its slot, so
//! rmcp restores nothing the gate did not admit; anyone else gets the 404
//! of an unknown session.
//!
//! Lifetime: a record expires [`SessionStates::lifetime`] (the idle
//! timeout plus [`refresh_every`]) after it was last written. A replica
//! serving a session rewrites it once the last write is [`refresh_every`]
//! old, so a record outlives the last request any replica saw by at least
//! the idle timeout and at most the idle timeout plus [`refresh_every`]:
//! an idle session is not restorable, anywhere, for longer than that. The
//! same refresh finds a record deleted by another replica (a DELETE there)
//! and closes the session here too. A session closed by `DELETE` is
//! deleted from the store (by rmcp); one closed by its idle timeout is
//! deleted when no other replica has refreshed its record since this one
//! last did (otherwise the client is active elsewhere). A replica that
//! shuts down deletes nothing: that is what lets its sessions move.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::sessions::{Registry, Reservation};
use crate::crypto::sha256_hex;
use crate::model::now_ms;
use crate::store::{Ephemeral, Store, StoreError};

/// The ephemeral-value kind of stored MCP sessions.
pub const KIND: &str = "mcp_session";

/// Longest interval between two writes of a live session's record.
const MAX_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// How often a replica serving a session rewrites its record: a quarter of
/// the idle timeout, at most [`MAX_REFRESH_EVERY`] (75 s would be a
/// quarter of the default 300 s), at least 1 ms.
pub fn refresh_every(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(1), MAX_REFRESH_EVERY)
}

/// A stored session: rmcp's state and who owns the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// The client's `initialize` params, replayed on restore.
    state: SessionState,
    /// The user whose `initialize` opened the session.
    user_id: String,
    /// The token that `initialize` was sent with.
    token_id: String,
}

/// A stored session the transport admitted for its caller, on its way to
/// rmcp's restore in the same task ([`with_restoring`]).
#[derive(Debug)]
pub struct Restoring {
    id: String,
    state: SessionState,
    /// The caller's session slot, bound to the session if rmcp restores it.
    pub(super) slot: Reservation,
    /// When the record read expires (ms since the epoch).
    pub(super) expires_at: i64,
}

tokio::task_local! {
    /// The stored session admitted for the request served in this task.
    static RESTORING: RefCell<Option<Restoring>>;
}

/// Runs `serve` (rmcp serving a request on a session it does not hold)
/// with `restoring` available to rmcp's restore, which runs in the same
/// task (rmcp 3.11 `StreamableHttpService::try_restore_from_store`). If
/// rmcp does not restore (the session came back concurrently), the slot is
/// released when `serve` ends.
pub async fn with_restoring<F: Future>(restoring: Restoring, serve: F) -> F::Output {
    RESTORING.scope(RefCell::new(Some(restoring)), serve).await
}

/// Takes the admitted restore of session `id` in this task, if any.
pub(super) fn take_restoring(id: &str) -> Option<Restoring> {
    RESTORING
        .try_with(|r| {
            let mut r = r.borrow_mut();
            if r.as_ref().is_some_and(|r| r.id == id) {
                r.take()
            } else {
                None
            }
        })
        .ok()
        .flatten()
}

/// The state of the admitted restore of session `id` in this task.
fn restoring_state(id: &str) -> Option<SessionState> {
    RESTORING
        .try_with(|r| {
            r.borrow()
                .as_ref()
                .filter(|r| r.id == id)
                .map(|r| r.state.clone())
        })
        .ok()
        .flatten()
}

/// The store key of session `id`.
fn key(id: &str) -> String {
    sha256_hex(id.as_bytes())
}

/// MCP session records in the [`Store`], shared by every replica on it;
/// rmcp's [`SessionStore`] (see the module docs).
#[derive(Debug)]
pub struct SessionStates {
    store: Arc<Store>,
    registry: Arc<Registry>,
    lifetime: Duration,
}

impl SessionStates {
    /// Records of the sessions `registry` holds, in `store`.
    pub fn new(store: Arc<Store>, registry: Arc<Registry>) -> Self {
        let idle = registry.limits().idle_timeout;
        Self {
            store,
            registry,
            lifetime: idle + refresh_every(idle),
        }
    }

    /// How long a record lives after its last write: the idle timeout
    /// plus [`refresh_every`].
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The expiry of a record written at `now` (ms since the epoch).
    fn expiry(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX))
    }

    fn open(stored: &Ephemeral) -> Option<Record> {
        match serde_json::from_slice(&stored.value) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(error = %err, "an unreadable MCP session record is ignored");
                None
            }
        }
    }

    /// The stored session `id` when it is `caller`'s (same user and
    /// token) and not expired; `None` for any other id or caller.
    ///
    /// Errors: [`StoreError`] when the store cannot be read.
    pub(super) async fn find(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<Option<Found>, StoreError> {
        let Some(stored) = self.store.get_ephemeral(KIND, &key(id)).await? else {
            return Ok(None);
        };
        let Some(record) = Self::open(&stored) else {
            return Ok(None);
        };
        if record.user_id != caller.user.id || record.token_id != caller.token.id {
            return Ok(None);
        }
        Ok(Some(Found {
            id: id.to_owned(),
            state: record.state,
            expires_at: stored.expires_at,
        }))
    }

    /// Rewrites the record of session `id`, held here, whose last write
    /// known here expires at `known`; adopts a later expiry another
    /// replica wrote instead. `false` when the record is gone (deleted by
    /// a DELETE on another replica, or expired): the session has ended.
    ///
    /// Errors: [`StoreError`] when the store cannot be read or written.
    pub(super) async fn refresh(&self, id: &str, known: i64) -> Result<bool, StoreError> {
        let key = key(id);
        let Some(mut stored) = self.store.get_ephemeral(KIND, &key).await? else {
            return Ok(false);
        };
        let now = now_ms();
        if stored.expires_at <= known {
            stored.expires_at = self.expiry(now);
            self.store.put_ephemeral(KIND, &key, &stored).await?;
        }
        self.registry.set_stored(id, stored.expires_at);
        Ok(true)
    }

    /// Session `id` closed here (idle timeout, DELETE, its worker ended),
    /// its record last known here to expire at `known`: deletes the record
    /// unless another replica has refreshed it since (the client is active
    /// there). Failures are logged: the record then just expires.
    pub(super) async fn closed(&self, id: &str, known: i64) {
        let key = key(id);
        let result = async {
            match self.store.get_ephemeral(KIND, &key).await? {
                Some(stored) if stored.expires_at > known => Ok(()),
                Some(_) => self.store.delete_ephemeral(KIND, &key).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot delete a closed MCP session from the store");
        }
    }
}

/// A live stored session of the caller ([`SessionStates::find`]).
#[derive(Debug)]
pub struct Found {
    id: String,
    state: SessionState,
    expires_at: i64,
}

impl Found {
    /// The restore of this session with the caller's session `slot`.
    pub fn restoring(self, slot: Reservation) -> Restoring {
        Restoring {
            id: self.id,
            state: self.state,
            slot,
            expires_at: self.expires_at,
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for SessionStates {
    /// The state of session `id` only when the transport admitted it for
    /// the request served in this task ([`with_restoring`]); `None`
    /// otherwise, so rmcp answers 404.
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(restoring_state(session_id))
    }

    /// Stores session `id` after its `initialize` succeeded, with the
    /// owner the registry bound it to; a session nobody owns is not
    /// stored (nobody could use it).
    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let Some((user_id, token_id)) = self.registry.owner_of(session_id) else {
            return Ok(());
        };
        let now = now_ms();
        let record = Record {
            state: state.clone(),
            user_id: user_id.clone(),
            token_id,
        };
        let value = Ephemeral {
            owner: user_id,
            value: serde_json::to_vec(&record)?,
            expires_at: self.expiry(now),
        };
        self.store
            .put_ephemeral(KIND, &key(session_id), &value)
            .await?;
        self.registry.set_stored(session_id, value.expires_at);
        Ok(())
    }

    /// Deletes session `id`'s record (rmcp calls this after a DELETE).
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.store.delete_ephemeral(KIND, &key(session_id)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Token, User, UserStatus};

    fn caller(user: &str, token: &str) -> Caller {
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
                id: token.into(),
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

    fn state() -> SessionState {
        serde_json::from_value(serde_json::json!({"initialize_params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        }}))
        .unwrap()
    }

    #[tokio::test]
    async fn only_the_owner_finds_a_live_record() {
        let dir = tempfile::tempdir().unwrap();
        let lock = crate::store::DirLock::acquire(dir.path()).unwrap();
        let master = crate::crypto::MasterKey::parse(&"11".repeat(32), "test").unwrap();
        let store = Arc::new(Store::open(dir.path(), master, lock).unwrap());
        let registry = Arc::new(Registry::new(Default::default(), store.clone()));
        let states = SessionStates::new(store.clone(), registry);
        let record = |token: &str, expires_at: i64| Ephemeral {
            owner: "ana".into(),
            value: serde_json::to_vec(&Record {
                state: state(),
                user_id: "ana".into(),
                token_id: token.into(),
            })
            .unwrap(),
            expires_at,
        };
        let live = now_ms() + 60_000;
        store
            .put_ephemeral(KIND, &key("s1"), &record("t1", live))
            .await
            .unwrap();
        store
            .put_ephemeral(KIND, &key("s2"), &record("t1", now_ms() - 1))
            .await
            .unwrap();

        let found = states.find("s1", &caller("ana", "t1")).await.unwrap();
        assert_eq!(
            found.map(|f| (f.id, f.expires_at)),
            Some(("s1".into(), live))
        );
        for other in [caller("ana", "t2"), caller("ben", "t1")] {
            assert!(states.find("s1", &other).await.unwrap().is_none());
        }
        // Expired, or never stored under that id's hash.
        assert!(
            states
                .find("s2", &caller("ana", "t1"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            states
                .find("s3", &caller("ana", "t1"))
                .await
                .unwrap()
                .is_none()
        );
        // The raw id is nowhere in the store's keys.
        assert_eq!(key("s1"), crate::crypto::sha256_hex(b"s1"));
    }

    #[test]
    fn records_are_refreshed_a_quarter_of_the_idle_timeout_at_most_a_minute() {
        assert_eq!(
            refresh_every(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_every(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(refresh_every(Duration::ZERO), Duration::from_millis(1));
    }
}
