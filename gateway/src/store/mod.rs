//! The embedded database: the only module that names sled.
//!
//! Everything lives in one sled tree under `<data-dir>/db`, keyed by
//! `<kind>/<id>` (see [`Entity::PREFIX`]). Every value starts with a format
//! version byte ([`FORMAT_VERSION`]) followed by JSON; secrets are stored
//! sealed by [`crate::crypto::MasterKey`] with their record key as associated
//! data. Admin changes go through [`Store::write`]: one writer at a time, all
//! records of a change applied as one atomic sled batch, flushed to disk
//! before the caller is answered. Audit events are appended in the same batch
//! as the change they describe and then published to live subscribers.
//! Lone audit appends (tool calls) are in the database when
//! [`Store::append_audit`] returns and reach the disk in a shared
//! background flush ([`AUDIT_FLUSH_INTERVAL`], `flusher`).
//!
//! A `LOCK` file in the data directory, held with an exclusive OS lock for
//! the store's lifetime, makes a second daemon on the same directory fail at
//! once.

mod batch;
mod flusher;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

pub use batch::Batch;
pub use flusher::AuditFlushStats;

use crate::crypto::{CryptoError, MasterKey};
use crate::model::{
    AccessProfile, AuditEvent, Connection, Server, Settings, Token, Tool, Toolset, User,
};

/// The version byte that starts every stored value written by this build.
pub const FORMAT_VERSION: u8 = 1;
const SETTINGS_KEY: &str = "settings";
const AUDIT_PREFIX: &[u8] = b"audit/";
const SECRET_PREFIX: &str = "secret/";
const TOKEN_HASH_PREFIX: &str = "tokenhash/";
const META_PREFIX: &str = "meta/";
/// sled's page cache, bytes. sled's default (1 GiB) let a daemon holding
/// 10,000 tools grow to ~700 MiB; policy reads are served from the MCP
/// gateway's own cache, so a small page cache costs little.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Key prefixes of the records policy decisions read; a write under one
/// moves [`Store::generation`].
pub const POLICY_PREFIXES: &[&str] = &[
    SETTINGS_KEY,
    Server::PREFIX,
    Tool::PREFIX,
    Toolset::PREFIX,
    AccessProfile::PREFIX,
    User::PREFIX,
];
/// How many audit events a slow live subscriber may fall behind.
const AUDIT_CHANNEL_CAPACITY: usize = 4096;
/// The shortest time between the starts of two background flushes of
/// lone audit appends: under load many tool calls share one fsync instead
/// of paying one each (an fsync per call was the largest cost of a tool
/// call, BENCHMARKS.md). An event is on disk at most the longer of this and
/// one flush time (a flush may be under way without it), plus one flush
/// time, after it was appended; see `flusher` and docs/security.md.
pub const AUDIT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Errors of the store. Messages name keys and files, never values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error(
        "the data directory {0} is in use by another toolgated process (its LOCK file is held); stop that process or pick another --data-dir"
    )]
    Locked(PathBuf),
    /// The data directory could not be created or its lock file opened.
    #[error("data directory {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("stored value {key} is corrupt: {reason}")]
    Corrupt {
        /// The record key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A stored value was written by a newer toolgate.
    #[error(
        "stored value {key} has format version {version}, newer than this toolgated supports ({FORMAT_VERSION}); upgrade toolgated"
    )]
    UnsupportedVersion {
        /// The record key.
        key: String,
        /// The version byte found.
        version: u8,
    },
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The master key does not open the secrets sealed in this store.
    #[error(
        "the master key does not match this data directory's sealed secrets: restore the original master.key or TOOLGATE_MASTER_KEY (a new key cannot read what the old one sealed)"
    )]
    WrongKey,
}

/// An exclusive OS lock on `<data-dir>/LOCK`, held while the daemon runs.
#[derive(Debug)]
pub struct DirLock {
    /// Dropping the file releases the lock.
    _file: File,
}

impl DirLock {
    /// Takes the lock, creating the directory and file if needed.
    ///
    /// Errors: [`StoreError::Locked`] at once if another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: data_dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("LOCK"))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(data_dir.to_owned())),
            Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

/// A record type stored under `<PREFIX><id>`.
pub trait Entity: Serialize + DeserializeOwned {
    /// Key prefix, ending in `/`.
    const PREFIX: &'static str;
    /// What to call one in messages, e.g. `access profile`.
    const KIND: &'static str;
    /// The record's id.
    fn id(&self) -> &str;
}

macro_rules! entity {
    ($ty:ty, $prefix:literal, $kind:literal) => {
        impl Entity for $ty {
            const PREFIX: &'static str = $prefix;
            const KIND: &'static str = $kind;
            fn id(&self) -> &str {
                &self.id
            }
        }
    };
}
entity!(Server, "server/", "server");
entity!(Tool, "tool/", "tool");
entity!(Toolset, "toolset/", "toolset");
entity!(AccessProfile, "profile/", "access profile");
entity!(User, "user/", "user");
entity!(Token, "token/", "token");
entity!(Connection, "connection/", "Salesforce connection");

/// The database handle. Cheap to share behind an `Arc`.
pub struct Store {
    db: sled::Db,
    key: MasterKey,
    /// Serialises admin writes so that the reads a change is validated
    /// against cannot go stale before its batch lands. A std mutex: it is
    /// never held across an `.await`.
    write_lock: Mutex<()>,
    /// Serialises commits (admin writes and lone audit appends) so audit
    /// sequence numbers land, and are published, in order. Never held
    /// across an `.await`.
    commit_lock: Mutex<()>,
    /// The last audit sequence number handed out.
    audit_seq: AtomicU64,
    /// The last audit sequence number applied to the database: every event
    /// up to it can be read back.
    committed_seq: AtomicU64,
    events: broadcast::Sender<AuditEvent>,
    /// Bumped after every commit that writes a policy record (see
    /// [`Store::generation`]), so readers can cache what they derive from
    /// them.
    generation: AtomicU64,
    /// Wakes the background audit flusher; `None` once the store is
    /// dropped.
    flusher: Option<Flusher>,
    /// Held for the store's lifetime; dropping it releases the OS lock.
    _lock: DirLock,
}

/// The background thread that flushes lone audit appends (see `flusher`).
struct Flusher {
    /// A pending wake-up (capacity one: wake-ups while a flush runs merge).
    wake: std::sync::mpsc::SyncSender<()>,
    /// When events wait, and what the thread has done.
    shared: std::sync::Arc<flusher::FlushShared>,
    thread: std::thread::JoinHandle<()>,
}

impl Flusher {
    fn start(db: sled::Db) -> std::io::Result<Self> {
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let shared = flusher::FlushShared::new();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("audit-flush".into())
            .spawn(move || {
                // Ends when the store drops the sender; the store flushes
                // once more itself when it is dropped.
                flusher::run(&woken, &thread_shared, &flusher::SystemClock, || {
                    db.flush().map(drop)
                });
            })?;
        Ok(Self {
            wake,
            shared,
            thread,
        })
    }
}

/// How long [`open_sled`] waits for a Store dropped in this process to
/// release sled's file lock.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens sled. The caller holds the [`DirLock`], so no other process uses
/// the directory; a lock error from sled then means a `Store` this process
/// dropped a moment ago still has sled's I/O threads finishing, which hold
/// sled's file lock until they end (seen when a test reopens a directory).
/// Waits for them, at most [`SLED_LOCK_WAIT`]; any other error at once.
fn open_sled(config: &sled::Config) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

impl Drop for Store {
    /// Stops the audit flusher and flushes what is left, before the
    /// directory lock is released.
    fn drop(&mut self) {
        if let Some(Flusher { wake, thread, .. }) = self.flusher.take() {
            drop(wake);
            let _ = thread.join();
        }
        if let Err(err) = self.db.flush() {
            tracing::error!(error = %err, "cannot flush the database on close");
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, which `lock`
    /// must hold.
    ///
    /// Errors: [`StoreError::Db`] if the database cannot be opened.
    pub fn open(data_dir: &Path, key: MasterKey, lock: DirLock) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(data_dir.join("db"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500));
        let db = open_sled(&config)?;
        let last_seq = match db.scan_prefix(AUDIT_PREFIX).next_back() {
            Some(entry) => decode_seq(&entry?.0),
            None => 0,
        };
        let (events, _) = broadcast::channel(AUDIT_CHANNEL_CAPACITY);
        let flusher = Flusher::start(db.clone()).map_err(|source| StoreError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        Ok(Self {
            flusher: Some(flusher),
            db,
            key,
            write_lock: Mutex::new(()),
            commit_lock: Mutex::new(()),
            audit_seq: AtomicU64::new(last_seq),
            committed_seq: AtomicU64::new(last_seq),
            events,
            generation: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Runs one admin change: `change` reads what it needs and returns the
    /// records to write with its result; the batch is applied atomically
    /// and flushed to disk before this returns. Only one change runs at a
    /// time. If `change` fails nothing is written.
    ///
    /// Audit events are published to live subscribers as soon as the batch
    /// is applied, in sequence order, even if the caller stops waiting for
    /// the flush.
    pub async fn write<T, E>(
        &self,
        change: impl FnOnce(&Self) -> Result<(Batch, T), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let value = {
            let _guard = self
                .write_lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (batch, value) = change(self)?;
            self.commit(batch)?;
            value
        };
        self.flush().await.map_err(E::from)?;
        Ok(value)
    }

    /// Appends audit events on their own (tool calls, denied requests),
    /// without taking the admin write lock, and publishes them. When this
    /// returns the events are in the database and readable; they reach the
    /// disk in the background within the longer of [`AUDIT_FLUSH_INTERVAL`]
    /// and one flush time, plus one flush time, sharing flushes with every
    /// other event appended meanwhile. Call [`Store::flush`] to wait for
    /// that.
    pub fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for event in events {
            batch.audit(event);
        }
        self.commit(batch)?;
        if let Some(flusher) = &self.flusher {
            flusher.shared.mark_pending(std::time::Instant::now());
        }
        if let Some(flusher) = &self.flusher
            && let Err(std::sync::mpsc::TrySendError::Disconnected(())) = flusher.wake.try_send(())
        {
            // Full means a wake-up is already pending: this batch rides it.
            // Disconnected means the flusher died: flush here instead.
            tracing::error!("the audit flusher stopped; flushing in the request");
            self.db.flush()?;
        }
        Ok(())
    }

    /// Applies a batch: numbers and timestamps its audit events, applies it
    /// atomically, marks the events committed and publishes them.
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let _guard = self
            .commit_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let writes_policy = batch.writes_under(POLICY_PREFIXES);
        let (sled_batch, events) = batch.into_sled(&self.key, || {
            self.audit_seq.fetch_add(1, Ordering::SeqCst) + 1
        })?;
        sled_batch.apply(&self.db)?;
        if writes_policy {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(last) = events.last() {
            self.committed_seq.store(last.sequence, Ordering::SeqCst);
        }
        for event in events {
            // No live subscriber is not an error.
            let _ = self.events.send(event);
        }
        Ok(())
    }

    /// What the background audit flusher has done since the store opened:
    /// flushes run, the longest one, and the longest an appended event
    /// waited for the disk (the durability bound as measured).
    pub fn audit_flush_stats(&self) -> AuditFlushStats {
        self.flusher
            .as_ref()
            .map(|f| f.shared.stats())
            .unwrap_or_default()
    }

    /// A number that changes after every commit that writes a policy
    /// record: settings, servers, tools, toolsets, access profiles or users
    /// ([`POLICY_PREFIXES`]). Token use, connections, secrets and audit
    /// events leave it alone, so a token's `last_used_at` write does not
    /// make the MCP gateway re-read 10,000 tools. Anything derived from
    /// policy records while it stays the same is still current.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Waits until everything written so far is on disk.
    ///
    /// Runs sled's blocking `flush` on the blocking pool rather than
    /// `flush_async`, whose future was seen never to complete under many
    /// concurrent flushes.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Io {
                path: PathBuf::from("db"),
                source: std::io::Error::other(e),
            })??;
        Ok(())
    }

    /// The gateway settings (defaults until first changed).
    pub fn settings(&self) -> Result<Settings, StoreError> {
        Ok(self.get_value(SETTINGS_KEY)?.unwrap_or_default())
    }

    /// One record by id.
    pub fn get<E: Entity>(&self, id: &str) -> Result<Option<E>, StoreError> {
        self.get_value(&format!("{}{id}", E::PREFIX))
    }

    /// Every record of a type, in key order.
    pub fn list<E: Entity>(&self) -> Result<Vec<E>, StoreError> {
        self.db
            .scan_prefix(E::PREFIX.as_bytes())
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// The id of the token whose hash is `hash`.
    pub fn token_id_by_hash(&self, hash: &str) -> Result<Option<String>, StoreError> {
        self.get_value(&format!("{TOKEN_HASH_PREFIX}{hash}"))
    }

    /// A key for `purpose` derived from the master key
    /// ([`MasterKey::derive`]); e.g. the MAC key of query cursors.
    pub fn derived_key(&self, purpose: &str) -> [u8; crate::crypto::KEY_LEN] {
        self.key.derive(purpose)
    }

    /// Opens the secret sealed under `record_key`; `None` if none is stored.
    pub fn secret(&self, record_key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = format!("{SECRET_PREFIX}{record_key}");
        let Some(value) = self.db.get(key.as_bytes())? else {
            return Ok(None);
        };
        let body = check_version(&key, &value)?;
        Ok(Some(self.key.open(record_key.as_bytes(), body)?))
    }

    /// Checks that the master key opens what this store sealed: on first
    /// use, seals a known value; afterwards, opens it. A wrong or replaced
    /// key fails here, at start-up, instead of on the first OAuth call.
    ///
    /// Errors: [`StoreError::WrongKey`].
    pub async fn check_master_key(&self) -> Result<(), StoreError> {
        const CHECK: &str = "meta/key_check";
        match self.secret(CHECK) {
            Ok(Some(value)) if value == b"toolgate" => Ok(()),
            Ok(Some(_)) | Err(StoreError::Crypto(_)) => Err(StoreError::WrongKey),
            Err(other) => Err(other),
            Ok(None) => {
                let mut batch = Batch::default();
                batch.put_secret(CHECK, b"toolgate");
                self.commit(batch)?;
                self.flush().await
            }
        }
    }

    /// A metadata value (e.g. the catalog hash last discovered).
    pub fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get_value(&format!("{META_PREFIX}{name}"))
    }

    /// Audit events older than `before` (a sequence number; `None`: from the
    /// newest), newest first, that pass `filter`: at most `limit` of them,
    /// and whether older matching events may remain.
    pub fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
        filter: impl Fn(&AuditEvent) -> bool,
    ) -> Result<(Vec<AuditEvent>, bool), StoreError> {
        let end = match before {
            Some(seq) => audit_key(seq),
            None => audit_key(u64::MAX),
        };
        let mut out = Vec::new();
        for entry in self.db.range(audit_key(0)..end).rev() {
            let (key, value) = entry?;
            let event: AuditEvent = decode(&key, &value)?;
            if filter(&event) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(event);
            }
        }
        Ok((out, false))
    }

    /// The sequence number of the first audit event at or after `since`
    /// (Unix ms), among events up to `up_to`; `up_to + 1` when there is
    /// none. Walks back from `up_to`, so its cost follows the number of
    /// events since then, and it holds one event at a time.
    pub fn audit_start_after(&self, since: i64, up_to: u64) -> Result<u64, StoreError> {
        let mut start = up_to + 1;
        for entry in self.db.range(audit_key(0)..=audit_key(up_to)).rev() {
            let (key, value) = entry?;
            let event: AuditEvent = decode(&key, &value)?;
            if event.time < since {
                break;
            }
            start = event.sequence;
        }
        Ok(start)
    }

    /// Audit events with sequence in `from..=up_to`, oldest first, at most
    /// `limit` of them.
    pub fn audit_forward(
        &self,
        from: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        if from > up_to {
            return Ok(Vec::new());
        }
        self.db
            .range(audit_key(from)..=audit_key(up_to))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// The sequence number of the newest audit event applied to the
    /// database (0 when none): every event up to it can be read.
    pub fn last_audit_sequence(&self) -> u64 {
        self.committed_seq.load(Ordering::SeqCst)
    }

    /// A receiver of every audit event appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEvent> {
        self.events.subscribe()
    }

    /// Whether the database answers reads (for `/readyz`).
    pub fn is_healthy(&self) -> bool {
        self.db.get(SETTINGS_KEY).is_ok()
    }

    fn get_value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.db.get(key.as_bytes())? {
            Some(value) => Ok(Some(decode(key.as_bytes(), &value)?)),
            None => Ok(None),
        }
    }
}

fn audit_key(seq: u64) -> Vec<u8> {
    let mut key = AUDIT_PREFIX.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn decode_seq(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(tail) = key.get(AUDIT_PREFIX.len()..AUDIT_PREFIX.len() + 8) {
        bytes.copy_from_slice(tail);
    }
    u64::from_be_bytes(bytes)
}

fn key_name(key: &[u8]) -> String {
    if key.starts_with(AUDIT_PREFIX) {
        format!("audit/{}", decode_seq(key))
    } else {
        String::from_utf8_lossy(key).into_owned()
    }
}

fn check_version<'a>(key: &str, value: &'a [u8]) -> Result<&'a [u8], StoreError> {
    match value.split_first() {
        Some((&FORMAT_VERSION, body)) => Ok(body),
        Some((&version, _)) => Err(StoreError::UnsupportedVersion {
            key: key.to_owned(),
            version,
        }),
        None => Err(StoreError::Corrupt {
            key: key.to_owned(),
            reason: "empty value".into(),
        }),
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    let name = key_name(key);
    let body = check_version(&name, value)?;
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
        key: name,
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serialising our own plain data types to JSON cannot fail.
    serde_json::to_writer(&mut out, value).expect("model types serialise to JSON");
    out
}

#[cfg(test)]
mod tests;
