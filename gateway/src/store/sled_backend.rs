//! The embedded store: everything in one sled tree under `<data-dir>/db`,
//! keyed by `<table prefix><id>` ([`Table::prefix`]). Every value starts
//! with a format version byte ([`FORMAT_VERSION`]) followed by JSON (or, for
//! secrets under `secret/<record key>`, the sealed bytes); audit events live
//! under `audit/<sequence, 8 bytes big-endian>`. Admin changes are applied
//! as one atomic sled batch and flushed before the caller is answered; lone
//! audit appends (tool calls) reach the disk in a shared background flush
//! ([`super::AUDIT_FLUSH_INTERVAL`], `flusher`).
//!
//! A `LOCK` file in the data directory, held with an exclusive OS lock for
//! the store's lifetime, makes a second daemon on the same directory fail at
//! once.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::chain;
use super::flusher::{self, AuditFlushStats};
use super::{FORMAT_VERSION, Op, RawEphemeral, Shared, StoreError, Table, record_name};
use crate::model::AuditEvent;

const AUDIT_PREFIX: &[u8] = b"audit/";
const SECRET_PREFIX: &str = "secret/";
const EPHEMERAL_PREFIX: &str = "eph/";
/// How often a put of an ephemeral value purges the expired ones of its
/// kind, at most (reads skip expired values on their own).
const PURGE_EVERY_MS: i64 = 10_000;
/// sled's page cache, bytes. sled's default (1 GiB) let a daemon holding
/// 10,000 tools grow to ~700 MiB; policy reads are served from the MCP
/// gateway's own cache and ListTools pages from the tool heads the store
/// keeps, so a small page cache costs little (64 MiB until issue 17; the
/// cache was the largest part of what a daemon with 10,010 tools held).
const CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// How long [`open_sled`] waits for a store dropped in this process to
/// release sled's file lock.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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

/// The background thread that flushes lone audit appends (see `flusher`).
struct Flusher {
    /// A pending wake-up (capacity one: wake-ups while a flush runs merge).
    wake: std::sync::mpsc::SyncSender<()>,
    /// When events wait, and what the thread has done.
    shared: Arc<flusher::FlushShared>,
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

/// Opens sled. The caller holds the [`DirLock`], so no other process uses
/// the directory; a lock error from sled then means a store this process
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

/// A stored ephemeral value.
#[derive(Serialize, Deserialize)]
struct StoredEphemeral {
    owner: String,
    /// Sealed, hex.
    sealed: String,
    expires_at: i64,
}

/// The embedded backend.
pub(super) struct SledBackend {
    db: sled::Db,
    /// Serialises admin changes so that the reads a change is validated
    /// against cannot go stale before its batch lands. Held across the
    /// change's reads (which may await), so a tokio mutex.
    write_lock: tokio::sync::Mutex<()>,
    /// Serialises commits (admin writes and lone audit appends) so audit
    /// sequence numbers land, and are published, in order. Never held
    /// across an `.await`.
    commit_lock: Mutex<()>,
    /// The last audit sequence number handed out.
    audit_seq: AtomicU64,
    /// The hash of the newest audit event (the audit chain's `prev` for the
    /// next one). Only changed under `commit_lock`.
    last_hash: Mutex<[u8; 32]>,
    /// In-process named locks ([`super::Store::named_lock`]).
    named: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When the expired ephemeral values of each kind were last purged (ms
    /// since the epoch): at most every [`PURGE_EVERY_MS`], not on every
    /// put, which scanned them all each time (10,000 MCP sessions took
    /// minutes to open).
    purged: Mutex<HashMap<String, i64>>,
    /// Wakes the background audit flusher; `None` once dropped.
    flusher: Option<Flusher>,
    /// Held for the store's lifetime; dropping it releases the OS lock.
    _lock: DirLock,
}

impl Drop for SledBackend {
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

impl SledBackend {
    /// Opens the store in `data_dir`; returns it with the last audit
    /// sequence number.
    pub(super) fn open(data_dir: &Path, lock: DirLock) -> Result<(Self, u64), StoreError> {
        let config = sled::Config::new()
            .path(data_dir.join("db"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500));
        let db = open_sled(&config)?;
        let (last_seq, last_hash) = match db.scan_prefix(AUDIT_PREFIX).next_back() {
            Some(entry) => {
                let (key, value) = entry?;
                let event = decode_event(&key, &value)?;
                (event.sequence, chain::hash_bytes(&event.hash))
            }
            // Every event pruned: the chain goes on from the anchor.
            None => match anchor(&db)? {
                Some(anchor) => (anchor.sequence, chain::hash_bytes(&anchor.hash)),
                None => (0, chain::GENESIS),
            },
        };
        let flusher = Flusher::start(db.clone()).map_err(|source| StoreError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        Ok((
            Self {
                flusher: Some(flusher),
                db,
                write_lock: tokio::sync::Mutex::new(()),
                commit_lock: Mutex::new(()),
                audit_seq: AtomicU64::new(last_seq),
                last_hash: Mutex::new(last_hash),
                named: Mutex::new(HashMap::new()),
                purged: Mutex::new(HashMap::new()),
                _lock: lock,
            },
            last_seq,
        ))
    }

    #[cfg(test)]
    pub(super) fn db(&self) -> &sled::Db {
        &self.db
    }

    pub(super) async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// A record's JSON body.
    pub(super) fn get(&self, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = record_name(table, id);
        match self.db.get(key.as_bytes())? {
            Some(value) => Ok(Some(check_version(&key, &value)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Every record of a table as `(id, JSON body)`, in id order.
    pub(super) fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = table.prefix();
        if prefix.is_empty() {
            return Ok(self
                .get(table, super::batch::SETTINGS_ID)?
                .map(|body| (super::batch::SETTINGS_ID.to_owned(), body))
                .into_iter()
                .collect());
        }
        self.db
            .scan_prefix(prefix.as_bytes())
            .map(|entry| {
                let (key, value) = entry?;
                let name = String::from_utf8_lossy(&key).into_owned();
                let body = check_version(&name, &value)?.to_vec();
                Ok((name[prefix.len()..].to_owned(), body))
            })
            .collect()
    }

    /// The sealed secret under `record_key`.
    pub(super) fn secret(&self, record_key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = format!("{SECRET_PREFIX}{record_key}");
        match self.db.get(key.as_bytes())? {
            Some(value) => Ok(Some(check_version(&key, &value)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Every sealed secret with its record key.
    pub(super) fn all_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db
            .scan_prefix(SECRET_PREFIX.as_bytes())
            .map(|entry| {
                let (key, value) = entry?;
                let name = String::from_utf8_lossy(&key).into_owned();
                let sealed = check_version(&name, &value)?.to_vec();
                Ok((name[SECRET_PREFIX.len()..].to_owned(), sealed))
            })
            .collect()
    }

    /// Applies `ops` and `events` atomically: numbers and timestamps the
    /// events, applies, and publishes them.
    pub(super) fn commit(
        &self,
        ops: Vec<Op>,
        events: Vec<AuditEvent>,
        shared: &Shared,
    ) -> Result<(), StoreError> {
        let _guard = self
            .commit_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut writes = Writes::default();
        for op in ops {
            match op {
                Op::Put { table, id, body } => {
                    writes.insert(record_name(table, &id), versioned(&body))
                }
                Op::Delete { table, id } => writes.remove(record_name(table, &id)),
                Op::PutSecret { key, sealed } => {
                    writes.insert(format!("{SECRET_PREFIX}{key}"), versioned(&sealed))
                }
                Op::DeleteSecret { key } => writes.remove(format!("{SECRET_PREFIX}{key}")),
            }
        }
        let mut events = events;
        let now = crate::model::now_ms();
        for event in &mut events {
            event.sequence = self.audit_seq.fetch_add(1, Ordering::SeqCst) + 1;
            // Stamped at commit so that time order follows sequence order.
            event.time = now;
        }
        let mut last_hash = self
            .last_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let new_hash = chain::chain(*last_hash, &mut events);
        for event in &events {
            writes.insert(audit_key(event.sequence), versioned(&super::encode(event)));
        }
        if let Err(err) = writes.apply(&self.db) {
            // The numbers handed out were not used: give them back so the
            // sequence stays gapless.
            self.audit_seq
                .fetch_sub(events.len() as u64, Ordering::SeqCst);
            return Err(err.into());
        }
        *last_hash = new_hash;
        drop(last_hash);
        shared.publish(events);
        Ok(())
    }

    /// See [`super::Store::append_audit`].
    pub(super) fn append_audit(
        &self,
        events: Vec<AuditEvent>,
        shared: &Shared,
    ) -> Result<(), StoreError> {
        let count = events.len() as u64;
        self.commit(Vec::new(), events, shared)?;
        if let Some(flusher) = &self.flusher {
            flusher.shared.waiting.fetch_add(count, Ordering::AcqRel);
            metrics::gauge!(crate::metrics::AUDIT_QUEUE_DEPTH).increment(count as f64);
            flusher.shared.mark_pending(std::time::Instant::now());
            if let Err(std::sync::mpsc::TrySendError::Disconnected(())) = flusher.wake.try_send(())
            {
                // Full means a wake-up is already pending: this batch rides
                // it. Disconnected means the flusher died: flush here.
                tracing::error!("the audit flusher stopped; flushing in the request");
                self.db.flush()?;
            }
        }
        Ok(())
    }

    pub(super) fn audit_flush_stats(&self) -> AuditFlushStats {
        self.flusher
            .as_ref()
            .map(|f| f.shared.stats())
            .unwrap_or_default()
    }

    /// Waits until everything written so far is on disk. Runs sled's
    /// blocking `flush` on the blocking pool rather than `flush_async`,
    /// whose future was seen never to complete under many concurrent
    /// flushes.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Io {
                path: PathBuf::from("db"),
                source: std::io::Error::other(e),
            })??;
        Ok(())
    }

    pub(super) fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
        filter: impl Fn(&AuditEvent) -> bool,
    ) -> Result<(Vec<AuditEvent>, bool), StoreError> {
        let end = audit_key(before.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        for entry in self.db.range(audit_key(0)..end).rev() {
            let (key, value) = entry?;
            let event = decode_event(&key, &value)?;
            if filter(&event) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(event);
            }
        }
        Ok((out, false))
    }

    pub(super) fn audit_start_after(&self, since: i64, up_to: u64) -> Result<u64, StoreError> {
        let mut start = up_to + 1;
        for entry in self.db.range(audit_key(0)..=audit_key(up_to)).rev() {
            let (key, value) = entry?;
            let event = decode_event(&key, &value)?;
            if event.time < since {
                break;
            }
            start = event.sequence;
        }
        Ok(start)
    }

    pub(super) fn audit_forward(
        &self,
        from: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.db
            .range(audit_key(from)..=audit_key(up_to))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode_event(&key, &value)
            })
            .collect()
    }

    /// Deletes the oldest audit events with sequence up to `up_to`, at
    /// most `limit` of them, and records the newest deleted one as the
    /// retention anchor, in one atomic batch. Appends do not wait for it.
    /// Returns how many were deleted.
    pub(super) fn prune_audit(&self, up_to: u64, limit: usize) -> Result<u64, StoreError> {
        let mut writes = Writes::default();
        let mut newest = None;
        for entry in self.db.range(audit_key(0)..=audit_key(up_to)).take(limit) {
            let (key, value) = entry?;
            newest = Some((key.to_vec(), value));
            writes.remove(key.to_vec());
        }
        let Some((key, value)) = newest else {
            return Ok(0);
        };
        let event = decode_event(&key, &value)?;
        let anchor = chain::Anchor {
            sequence: event.sequence,
            hash: event.hash,
        };
        let count = writes.ops.len() as u64;
        writes.insert(
            record_name(Table::Meta, chain::ANCHOR_META),
            versioned(&super::encode(&anchor.encode())),
        );
        let mut batch = sled::Batch::default();
        for (key, value) in writes.ops {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.db.apply_batch(batch)?;
        Ok(count)
    }

    pub(super) fn is_healthy(&self) -> bool {
        self.db.get(super::batch::SETTINGS_ID).is_ok()
    }

    pub(super) fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        owner: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.purge_expired(kind)?;
        let value = StoredEphemeral {
            owner: owner.to_owned(),
            sealed: hex::encode(sealed),
            expires_at,
        };
        self.db
            .insert(ephemeral_key(kind, key), versioned(&super::encode(&value)))?;
        Ok(())
    }

    /// The value under `kind`/`key`, removed in the same atomic step when
    /// `take`.
    pub(super) fn get_ephemeral(
        &self,
        kind: &str,
        key: &str,
        take: bool,
    ) -> Result<Option<RawEphemeral>, StoreError> {
        let name = ephemeral_key(kind, key);
        let value = if take {
            self.db.remove(name.as_bytes())?
        } else {
            self.db.get(name.as_bytes())?
        };
        value.map(|value| raw_ephemeral(&name, &value)).transpose()
    }

    pub(super) fn find_ephemeral(
        &self,
        kind: &str,
        owner: &str,
    ) -> Result<Option<(String, RawEphemeral)>, StoreError> {
        let prefix = ephemeral_key(kind, "");
        let now = crate::model::now_ms();
        for entry in self.db.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let raw = raw_ephemeral(&name, &value)?;
            if raw.owner == owner && raw.expires_at > now {
                return Ok(Some((name[prefix.len()..].to_owned(), raw)));
            }
        }
        Ok(None)
    }

    pub(super) fn delete_ephemeral(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.db.remove(ephemeral_key(kind, key))?;
        Ok(())
    }

    fn purge_expired(&self, kind: &str) -> Result<(), StoreError> {
        let now = crate::model::now_ms();
        {
            let mut purged = self.purged.lock().unwrap_or_else(|p| p.into_inner());
            let last = purged.entry(kind.to_owned()).or_insert(i64::MIN);
            if now.saturating_sub(*last) < PURGE_EVERY_MS {
                return Ok(());
            }
            *last = now;
        }
        for entry in self.db.scan_prefix(ephemeral_key(kind, "").as_bytes()) {
            let (key, value) = entry?;
            let name = String::from_utf8_lossy(&key).into_owned();
            if raw_ephemeral(&name, &value).is_ok_and(|raw| raw.expires_at <= now) {
                self.db.remove(key)?;
            }
        }
        Ok(())
    }

    pub(super) async fn named_lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.named.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(name.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Writes copied records, sealed secrets and audit events (keeping
    /// their numbers and times) atomically into an empty store.
    pub(super) async fn import(
        &self,
        ops: Vec<Op>,
        events: Vec<AuditEvent>,
        shared: &Shared,
    ) -> Result<(), StoreError> {
        if self.db.iter().next().is_some() {
            return Err(StoreError::Schema(
                "the target data directory already holds records; copy into an empty one".into(),
            ));
        }
        let mut writes = Writes::default();
        for op in ops {
            match op {
                Op::Put { table, id, body } => {
                    writes.insert(record_name(table, &id), versioned(&body))
                }
                Op::PutSecret { key, sealed } => {
                    writes.insert(format!("{SECRET_PREFIX}{key}"), versioned(&sealed))
                }
                Op::Delete { .. } | Op::DeleteSecret { .. } => {}
            }
        }
        let last = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        for event in &events {
            writes.insert(audit_key(event.sequence), versioned(&super::encode(event)));
        }
        writes.apply(&self.db)?;
        // The chain goes on from the newest copied event, or from the
        // copied retention anchor when every event was pruned.
        let (seq, hash) = match events.iter().max_by_key(|e| e.sequence) {
            Some(event) => (event.sequence, chain::hash_bytes(&event.hash)),
            None => match anchor(&self.db)? {
                Some(anchor) => (anchor.sequence, chain::hash_bytes(&anchor.hash)),
                None => (0, chain::GENESIS),
            },
        };
        let last = last.max(seq);
        *self
            .last_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = hash;
        self.audit_seq.fetch_max(last, Ordering::SeqCst);
        shared.committed_seq.fetch_max(last, Ordering::SeqCst);
        self.flush().await
    }
}

/// The retention anchor recorded in `meta/audit_anchor`, if any.
fn anchor(db: &sled::Db) -> Result<Option<chain::Anchor>, StoreError> {
    let key = record_name(Table::Meta, chain::ANCHOR_META);
    let Some(value) = db.get(key.as_bytes())? else {
        return Ok(None);
    };
    let text: String =
        serde_json::from_slice(check_version(&key, &value)?).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
    chain::Anchor::decode(&text).map(Some)
}

fn versioned(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(body);
    out
}

fn ephemeral_key(kind: &str, key: &str) -> String {
    format!("{EPHEMERAL_PREFIX}{kind}/{key}")
}

fn raw_ephemeral(name: &str, value: &[u8]) -> Result<RawEphemeral, StoreError> {
    let body = check_version(name, value)?;
    let stored: StoredEphemeral =
        serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
            key: name.to_owned(),
            reason: e.to_string(),
        })?;
    let sealed = hex::decode(&stored.sealed).map_err(|e| StoreError::Corrupt {
        key: name.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(RawEphemeral {
        owner: stored.owner,
        sealed,
        expires_at: stored.expires_at,
    })
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

fn decode_event(key: &[u8], value: &[u8]) -> Result<AuditEvent, StoreError> {
    let name = format!("audit/{}", decode_seq(key));
    let body = check_version(&name, value)?;
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
        key: name,
        reason: e.to_string(),
    })
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

/// The key writes of a commit, ready to apply.
#[derive(Default)]
struct Writes {
    /// Key, and the new value (`None` removes the key).
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Writes {
    fn insert(&mut self, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.ops.push((key.into(), Some(value)));
    }

    fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// Applies the writes atomically. A single write goes straight to the
    /// tree (atomic on its own): a sled batch writes its log buffer out
    /// each time (`pin_log` rolls the buffer before and after), which made
    /// every tool call's lone audit event cost a disk write.
    fn apply(self, db: &sled::Db) -> Result<(), sled::Error> {
        let mut ops = self.ops;
        if ops.len() == 1 {
            let (key, value) = ops.remove(0);
            match value {
                Some(value) => db.insert(key, value)?,
                None => db.remove(key)?,
            };
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        db.apply_batch(batch)
    }
}
