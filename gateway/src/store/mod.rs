//! Stored state behind one interface with two backends: the embedded store
//! (sled under `<data-dir>/db`, the zero-setup default for one node,
//! `sled_backend`) and PostgreSQL (`postgres`, for several replicas). This is the
//! only module that names either; the rest of the daemon sees [`Store`],
//! [`Tx`] and [`Batch`].
//!
//! Records are the types of [`crate::model`], stored as JSON under their
//! [`Table`] and id; secrets are stored sealed by
//! [`crate::crypto::MasterKey`] with their record key as associated data
//! (sealed before they reach a backend). Admin changes go through
//! [`Store::write`]: one change at a time across every replica, reads
//! inside the change see the database as it is under that lock, all records
//! of a change land atomically, and the caller is answered once they are
//! durable. Audit events are appended in the same atomic write as the
//! change they describe, numbered by one sequence across replicas, and
//! published to live subscribers ([`Store::subscribe`]) in sequence order.
//! Lone audit appends (tool calls) go through [`Store::append_audit`].
//!
//! Policy readers cache what they derive from policy records and check
//! [`Store::generation`], which moves after every policy write, local or (on
//! PostgreSQL) made by another replica.

mod batch;
pub mod chain;
mod copy;
mod flusher;
mod postgres;
mod sled_backend;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

pub use batch::Batch;
pub(crate) use batch::Op;
pub use chain::{Anchor, ChainReport};
pub use copy::{CopyReport, copy};
pub use flusher::AuditFlushStats;
pub use postgres::PgOptions;
pub use sled_backend::DirLock;

use crate::crypto::{CryptoError, MasterKey};
use crate::model::{
    AccessProfile, AccessRequest, AiClient, AuditEvent, Connection, HeldCall, Hook, OAuthClient,
    OAuthGrant, Server, Settings, Token, Tool, ToolAction, ToolState, Toolset, User,
};

/// The version byte that starts every value the embedded store writes.
pub const FORMAT_VERSION: u8 = 1;
/// How many audit events a slow live subscriber may fall behind.
const AUDIT_CHANNEL_CAPACITY: usize = 4096;
/// The shortest time between the starts of two background flushes of
/// lone audit appends on the embedded store: under load many tool calls
/// share one fsync instead of paying one each (an fsync per call was the
/// largest cost of a tool call, BENCHMARKS.md). See `flusher` and
/// docs/security.md.
pub const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// Errors of the store. Messages name keys, tables and files, never values
/// or secrets.
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
    /// The embedded database reported an error.
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// PostgreSQL could not be reached or refused a statement. The message
    /// names the operation; the database URL (which may hold a password) is
    /// never part of it.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The database is unreachable: the request fails closed.
    #[error("the database is unavailable ({0}); the request was refused and nothing was written")]
    Unavailable(String),
    /// The database schema is newer than this toolgated, or cannot be
    /// brought up to date.
    #[error("{0}")]
    Schema(String),
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
        "the master key does not match this database's sealed secrets: restore the original master.key or TOOLGATE_MASTER_KEY (a new key cannot read what the old one sealed)"
    )]
    WrongKey,
}

/// The kinds of record the store keeps, one table each on PostgreSQL and
/// one key prefix each in the embedded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// The one settings record (id `settings`).
    Settings,
    /// Registered MCP servers.
    Server,
    /// Discovered tools.
    Tool,
    /// Toolsets.
    Toolset,
    /// Access profiles.
    AccessProfile,
    /// Users.
    User,
    /// Gateway tokens (hashes only).
    Token,
    /// SHA-256 of a token to the token's id.
    TokenHash,
    /// Users' Salesforce connections (tokens are secrets, not here).
    Connection,
    /// OAuth clients of the MCP authorization server (DCR registrations and
    /// fetched Client ID Metadata Documents).
    OAuthClient,
    /// AI clients: one per user and OAuth client, and per access token.
    AiClient,
    /// OAuth grants (refresh token families) of signed-in AI clients.
    OAuthGrant,
    /// Users' requests for access profiles.
    AccessRequest,
    /// Tool-call hooks (policy: cached with the rest of policy).
    Hook,
    /// Tool calls held for a person's approval.
    HeldCall,
    /// Metadata values (e.g. the catalog digest last discovered).
    Meta,
}

impl Table {
    /// Every table, in the order a copy writes them (referenced before
    /// referencing).
    pub const ALL: [Table; 16] = [
        Table::Settings,
        Table::Meta,
        Table::Server,
        Table::Tool,
        Table::Toolset,
        Table::AccessProfile,
        Table::User,
        Table::Token,
        Table::TokenHash,
        Table::Connection,
        Table::OAuthClient,
        Table::AiClient,
        Table::OAuthGrant,
        Table::AccessRequest,
        Table::Hook,
        Table::HeldCall,
    ];

    /// The embedded store's key prefix (`settings` has no prefix: its key is
    /// its id).
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Table::Settings => "",
            Table::Server => "server/",
            Table::Tool => "tool/",
            Table::Toolset => "toolset/",
            Table::AccessProfile => "profile/",
            Table::User => "user/",
            Table::Token => "token/",
            Table::TokenHash => "tokenhash/",
            Table::Connection => "connection/",
            Table::OAuthClient => "oauthclient/",
            Table::AiClient => "aiclient/",
            Table::OAuthGrant => "oauthgrant/",
            Table::AccessRequest => "accessrequest/",
            Table::Hook => "hook/",
            Table::HeldCall => "heldcall/",
            Table::Meta => "meta/",
        }
    }

    /// Whether policy decisions read it (a write moves
    /// [`Store::generation`]). Token use, connections, secrets and audit
    /// events are not: a token's `last_used_at` write must not make the MCP
    /// gateway re-read 10,000 tools.
    pub fn is_policy(self) -> bool {
        matches!(
            self,
            Table::Settings
                | Table::Server
                | Table::Tool
                | Table::Toolset
                | Table::AccessProfile
                | Table::User
                | Table::Hook
        )
    }
}

/// A record type stored in a [`Table`] under its id.
pub trait Entity: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Its table.
    const TABLE: Table;
    /// What to call one in messages, e.g. `access profile`.
    const KIND: &'static str;
    /// The record's id.
    fn id(&self) -> &str;
}

macro_rules! entity {
    ($ty:ty, $table:expr, $kind:literal) => {
        impl Entity for $ty {
            const TABLE: Table = $table;
            const KIND: &'static str = $kind;
            fn id(&self) -> &str {
                &self.id
            }
        }
    };
}
entity!(Server, Table::Server, "server");
entity!(Tool, Table::Tool, "tool");
entity!(Toolset, Table::Toolset, "toolset");
entity!(AccessProfile, Table::AccessProfile, "access profile");
entity!(User, Table::User, "user");
entity!(Token, Table::Token, "token");
entity!(Connection, Table::Connection, "Salesforce connection");
entity!(OAuthClient, Table::OAuthClient, "OAuth client");
entity!(AiClient, Table::AiClient, "AI client");
entity!(OAuthGrant, Table::OAuthGrant, "OAuth grant");
entity!(AccessRequest, Table::AccessRequest, "access request");
entity!(Hook, Table::Hook, "hook");
entity!(HeldCall, Table::HeldCall, "held call");

/// A filtered, ordered page of tools (`ListTools`), answered by the
/// database. Tools are ordered by `(name, id)`.
#[derive(Debug, Clone, Default)]
pub struct ToolQuery {
    /// Only tools of this server.
    pub server_id: Option<String>,
    /// Only tools in this state.
    pub state: Option<ToolState>,
    /// Only tools with this classification action.
    pub action: Option<ToolAction>,
    /// Only tools with this sensitive flag.
    pub sensitive: Option<bool>,
    /// Only tools with this dangerous flag.
    pub dangerous: Option<bool>,
    /// Only tools whose name contains this, case-insensitively (empty: all).
    pub name_contains: String,
    /// Only tools after this `(name, id)`.
    pub after: Option<(String, String)>,
    /// At most this many.
    pub limit: usize,
}

impl ToolQuery {
    /// Whether `tool` passes the filters (not the page bounds).
    #[cfg(test)]
    pub(crate) fn matches(&self, tool: &Tool) -> bool {
        self.passes(
            &tool.server_id,
            &tool.name,
            tool.state,
            tool.classification,
            &self.name_contains.to_lowercase(),
        )
    }

    /// Whether a tool with these fields passes the filters (not the page
    /// bounds); `needle` is `name_contains` lowercased (once per query).
    fn passes(
        &self,
        server_id: &str,
        name: &str,
        state: ToolState,
        classification: crate::model::Classification,
        needle: &str,
    ) -> bool {
        self.server_id.as_deref().is_none_or(|s| server_id == s)
            && self.state.is_none_or(|s| state == s)
            && self.action.is_none_or(|a| classification.action == a)
            && self.sensitive.is_none_or(|f| classification.sensitive == f)
            && self.dangerous.is_none_or(|f| classification.dangerous == f)
            && (needle.is_empty() || name.to_lowercase().contains(needle))
    }
}

/// The fields of a stored [`Tool`] that [`ToolQuery`] filters and orders
/// on. Decoding only these skips the definitions, most of a tool's bytes,
/// so a page among 10,000 tools decodes 10,000 heads and only the page's
/// tools in full.
#[derive(Debug, serde::Deserialize)]
struct ToolHead {
    id: String,
    server_id: String,
    name: String,
    state: ToolState,
    classification: crate::model::Classification,
}

/// One page of [`ToolQuery`].
#[derive(Debug, Clone, Default)]
pub struct ToolPage {
    /// The tools, in `(name, id)` order.
    pub tools: Vec<Tool>,
    /// How many tools pass the filters in all.
    pub total: u64,
    /// Whether tools after the last one pass the filters.
    pub more: bool,
}

/// A short-lived value that any replica may need to read back: connect
/// links, OAuth `state` with its PKCE verifier, MCP session state. Kept
/// sealed, under a key the caller derives (the store never sees a bearer
/// value such as a link id or `state` unhashed), until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ephemeral {
    /// Who it belongs to, for [`Store::find_ephemeral`] (e.g. `user/server`).
    pub owner: String,
    /// The plaintext value (sealed at rest).
    pub value: Vec<u8>,
    /// Unix ms after which it is gone.
    pub expires_at: i64,
}

/// State shared between the facade and its backend: the live audit feed
/// and the counters that readers check.
#[derive(Debug)]
pub(crate) struct Shared {
    events: broadcast::Sender<AuditEvent>,
    generation: AtomicU64,
    /// The last audit sequence number published: every event up to it can
    /// be read.
    committed_seq: AtomicU64,
    /// The heads of every stored tool in `(name, id)` order, with the
    /// generation they were read at (embedded store): ListTools pages
    /// through them while no policy record is written, instead of decoding
    /// every tool per page.
    tool_heads: std::sync::Mutex<Option<(u64, Arc<Vec<ToolHead>>)>>,
}

impl Shared {
    fn new(last_seq: u64) -> Arc<Self> {
        let (events, _) = broadcast::channel(AUDIT_CHANNEL_CAPACITY);
        Arc::new(Self {
            events,
            generation: AtomicU64::new(0),
            committed_seq: AtomicU64::new(last_seq),
            tool_heads: std::sync::Mutex::new(None),
        })
    }

    /// Publishes committed events, in sequence order.
    pub(crate) fn publish(&self, events: Vec<AuditEvent>) {
        if let Some(last) = events.last() {
            self.committed_seq
                .fetch_max(last.sequence, Ordering::SeqCst);
        }
        for event in events {
            // No live subscriber is not an error.
            let _ = self.events.send(event);
        }
    }

    /// Marks every cached policy derivation stale.
    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn committed_seq(&self) -> u64 {
        self.committed_seq.load(Ordering::SeqCst)
    }
}

enum Backend {
    Sled(Box<sled_backend::SledBackend>),
    Postgres(postgres::PgBackend),
}

/// The database handle. Cheap to share behind an `Arc`.
pub struct Store {
    backend: Backend,
    key: MasterKey,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.backend {
            Backend::Sled(_) => "embedded",
            Backend::Postgres(_) => "postgresql",
        };
        f.debug_struct("Store")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

/// A view to read records through. Inside [`Store::write`] it reads within
/// the change's transaction (under the write lock, so what it reads cannot
/// change before the change lands); from [`Store::reader`] it reads what is
/// committed.
#[derive(Clone)]
pub struct Tx<'s> {
    store: &'s Store,
    pg: Option<postgres::SharedTx>,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("in_transaction", &self.pg.is_some())
            .finish()
    }
}

impl Tx<'_> {
    async fn raw(&self, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match (&self.store.backend, &self.pg) {
            (Backend::Sled(s), _) => s.get(table, id),
            (Backend::Postgres(p), Some(tx)) => p.tx_get(tx, table, id).await,
            (Backend::Postgres(p), None) => p.get(table, id).await,
        }
    }

    /// One record by id.
    pub async fn get<E: Entity>(&self, id: &str) -> Result<Option<E>, StoreError> {
        match self.raw(E::TABLE, id).await? {
            Some(body) => Ok(Some(decode(E::TABLE, id, &body)?)),
            None => Ok(None),
        }
    }

    /// Every record of a type, in id order.
    pub async fn list<E: Entity>(&self) -> Result<Vec<E>, StoreError> {
        let rows = match (&self.store.backend, &self.pg) {
            (Backend::Sled(s), _) => s.list(E::TABLE)?,
            (Backend::Postgres(p), Some(tx)) => p.tx_list(tx, E::TABLE).await?,
            (Backend::Postgres(p), None) => p.list(E::TABLE).await?,
        };
        rows.iter()
            .map(|(id, body)| decode(E::TABLE, id, body))
            .collect()
    }

    /// The gateway settings (defaults until first changed).
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        match self.raw(Table::Settings, batch::SETTINGS_ID).await? {
            Some(body) => decode(Table::Settings, batch::SETTINGS_ID, &body),
            None => Ok(Settings::default()),
        }
    }

    /// The id of the token whose hash is `hash`.
    pub async fn token_id_by_hash(&self, hash: &str) -> Result<Option<String>, StoreError> {
        match self.raw(Table::TokenHash, hash).await? {
            Some(body) => Ok(Some(decode(Table::TokenHash, hash, &body)?)),
            None => Ok(None),
        }
    }

    /// A metadata value (e.g. the catalog digest last discovered).
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.raw(Table::Meta, name).await? {
            Some(body) => Ok(Some(decode(Table::Meta, name, &body)?)),
            None => Ok(None),
        }
    }

    /// Opens the secret sealed under `record_key`; `None` if none is stored.
    ///
    /// Errors: [`StoreError::Crypto`] if it does not open under this key
    /// and record key.
    pub async fn secret(&self, record_key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed = match (&self.store.backend, &self.pg) {
            (Backend::Sled(s), _) => s.secret(record_key)?,
            (Backend::Postgres(p), Some(tx)) => p.tx_secret(tx, record_key).await?,
            (Backend::Postgres(p), None) => p.secret(record_key).await?,
        };
        match sealed {
            Some(sealed) => Ok(Some(self.store.key.open(record_key.as_bytes(), &sealed)?)),
            None => Ok(None),
        }
    }
}

/// A lock held across replicas while it lives (see [`Store::named_lock`]).
pub struct NamedLock {
    _inner: NamedLockInner,
}

/// Held only to be dropped: the fields release the lock when they go.
enum NamedLockInner {
    Local {
        _guard: tokio::sync::OwnedMutexGuard<()>,
    },
    Postgres {
        _guard: postgres::PgLock,
    },
}

impl std::fmt::Debug for NamedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NamedLock")
    }
}

impl Store {
    /// Opens (creating if needed) the embedded store in `data_dir`, which
    /// `lock` must hold.
    ///
    /// Errors: [`StoreError::Db`] if the database cannot be opened.
    pub fn open(data_dir: &Path, key: MasterKey, lock: DirLock) -> Result<Self, StoreError> {
        let (backend, last_seq) = sled_backend::SledBackend::open(data_dir, lock)?;
        let shared = Shared::new(last_seq);
        Ok(Self {
            backend: Backend::Sled(Box::new(backend)),
            key,
            shared,
        })
    }

    /// Connects to PostgreSQL at `url`, brings its schema up to date (under
    /// a lock, so replicas starting together do not race) and starts
    /// following other replicas' changes.
    ///
    /// Errors: [`StoreError::Postgres`] if it cannot connect;
    /// [`StoreError::Schema`] if the schema is newer than this toolgated.
    pub async fn open_postgres(
        url: &str,
        key: MasterKey,
        options: PgOptions,
    ) -> Result<Self, StoreError> {
        let shared = Shared::new(0);
        let backend = postgres::PgBackend::open(url, options, shared.clone()).await?;
        Ok(Self {
            backend: Backend::Postgres(backend),
            key,
            shared,
        })
    }

    /// The embedded store's database, for tests that look at raw values.
    #[cfg(test)]
    fn sled_db(&self) -> &sled::Db {
        match &self.backend {
            Backend::Sled(s) => s.db(),
            Backend::Postgres(_) => panic!("not the embedded store"),
        }
    }

    /// A view of one consistent snapshot, for reads of several tables
    /// that must agree (the policy snapshot): on PostgreSQL a read-only
    /// `REPEATABLE READ` transaction, so a change committed by another
    /// replica mid-read is either wholly in it or wholly not; on the
    /// embedded store (one process, writes serialised) what is committed.
    ///
    /// Errors: [`StoreError`] when PostgreSQL cannot start the transaction.
    pub async fn snapshot(&self) -> Result<Tx<'_>, StoreError> {
        let started = std::time::Instant::now();
        let tx = match &self.backend {
            Backend::Sled(_) => self.reader(),
            Backend::Postgres(p) => Tx {
                store: self,
                pg: Some(p.begin_snapshot().await?),
            },
        };
        crate::metrics::store_operation("snapshot", started.elapsed());
        Ok(tx)
    }

    /// A view of what is committed.
    pub fn reader(&self) -> Tx<'_> {
        Tx {
            store: self,
            pg: None,
        }
    }

    /// Runs one admin change: `change` reads what it needs through the
    /// [`Tx`] it is given and returns the records to write with its result;
    /// they land atomically and durably before this returns. One change
    /// runs at a time (across every replica on PostgreSQL). If `change`
    /// fails nothing is written.
    ///
    /// Audit events of the batch are published to live subscribers in
    /// sequence order.
    pub async fn write<'s, T, E, F, Fut>(&'s self, change: F) -> Result<T, E>
    where
        F: FnOnce(Tx<'s>) -> Fut,
        Fut: Future<Output = Result<(Batch, T), E>>,
        E: From<StoreError>,
    {
        let started = std::time::Instant::now();
        let result = self.write_inner(change).await;
        crate::metrics::store_operation("write", started.elapsed());
        result
    }

    async fn write_inner<'s, T, E, F, Fut>(&'s self, change: F) -> Result<T, E>
    where
        F: FnOnce(Tx<'s>) -> Fut,
        Fut: Future<Output = Result<(Batch, T), E>>,
        E: From<StoreError>,
    {
        match &self.backend {
            Backend::Sled(s) => {
                let guard = s.write_lock().await;
                let (batch, value) = change(self.reader()).await?;
                let (ops, events) = batch.seal(&self.key)?;
                let policy = ops.iter().any(Op::writes_policy);
                s.commit(ops, events, &self.shared)?;
                if policy {
                    self.shared.bump_generation();
                }
                drop(guard);
                s.flush().await.map_err(E::from)?;
                Ok(value)
            }
            Backend::Postgres(p) => {
                let tx = p.begin().await?;
                let view = Tx {
                    store: self,
                    pg: Some(tx.clone()),
                };
                let (batch, value) = change(view).await?;
                let (ops, events) = batch.seal(&self.key)?;
                p.commit(tx, &ops, events).await?;
                if ops.iter().any(Op::writes_policy) {
                    self.shared.bump_generation();
                }
                Ok(value)
            }
        }
    }

    /// Appends audit events on their own (tool calls, denied requests),
    /// without the admin write lock, and publishes them.
    ///
    /// Embedded store: when this returns the events are readable; they
    /// reach the disk in the background within the longer of
    /// [`AUDIT_FLUSH_INTERVAL`] and one flush time, plus one flush time.
    /// PostgreSQL: they are committed when this returns (appends of many
    /// callers share one transaction).
    ///
    /// Errors: [`StoreError::Unavailable`] when the database cannot take
    /// them within a short bounded wait.
    pub async fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let result = match &self.backend {
            Backend::Sled(s) => s.append_audit(events, &self.shared),
            Backend::Postgres(p) => p.append_audit(events).await,
        };
        crate::metrics::store_operation("append_audit", started.elapsed());
        result
    }

    /// What the embedded store's background audit flusher has done since
    /// the store opened (zero on PostgreSQL, which commits instead).
    pub fn audit_flush_stats(&self) -> AuditFlushStats {
        match &self.backend {
            Backend::Sled(s) => s.audit_flush_stats(),
            Backend::Postgres(_) => AuditFlushStats::default(),
        }
    }

    /// A number that changes after every commit that writes a policy record
    /// ([`Table::is_policy`]), on this replica or another; on PostgreSQL it
    /// also changes on every read while the change feed is down, so nothing
    /// derived from policy is reused until the feed is back. Anything
    /// derived from policy records while it stays the same is still current.
    pub fn generation(&self) -> u64 {
        match &self.backend {
            Backend::Postgres(p) if !p.feed_ok() => {
                self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1
            }
            _ => self.shared.generation.load(Ordering::SeqCst),
        }
    }

    /// Whether this replica hears of policy changes other replicas commit:
    /// the PostgreSQL change feed is up; always true on the embedded store.
    pub fn change_feed_ok(&self) -> bool {
        match &self.backend {
            Backend::Sled(_) => true,
            Backend::Postgres(p) => p.feed_ok(),
        }
    }

    /// Waits until everything written so far is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.flush().await,
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// The gateway settings (defaults until first changed).
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        self.reader().settings().await
    }

    /// One record by id.
    pub async fn get<E: Entity>(&self, id: &str) -> Result<Option<E>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.reader().get(id).await;
        crate::metrics::store_operation("get", started.elapsed());
        result
    }

    /// Every record of a type, in id order.
    pub async fn list<E: Entity>(&self) -> Result<Vec<E>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.reader().list().await;
        crate::metrics::store_operation("list", started.elapsed());
        result
    }

    /// A filtered page of tools, filtered and paged by the database.
    pub(crate) async fn tool_page(&self, query: &ToolQuery) -> Result<ToolPage, StoreError> {
        match &self.backend {
            Backend::Sled(s) => {
                let heads = self.tool_heads(s)?;
                let needle = query.name_contains.to_lowercase();
                let passing: Vec<&ToolHead> = heads
                    .iter()
                    .filter(|h| {
                        query.passes(&h.server_id, &h.name, h.state, h.classification, &needle)
                    })
                    .collect();
                let total = passing.len() as u64;
                let start = match &query.after {
                    Some((name, id)) => passing.partition_point(|h| (&h.name, &h.id) <= (name, id)),
                    None => 0,
                };
                let end = start.saturating_add(query.limit).min(passing.len());
                let more = passing.len() > end;
                let mut tools = Vec::with_capacity(end - start);
                for head in &passing[start..end] {
                    // A tool deleted since the heads were read is left out.
                    if let Some(body) = s.get(Table::Tool, &head.id)? {
                        let tool = decode::<Tool>(Table::Tool, &head.id, &body)?;
                        // Written since the heads were read: kept only if
                        // it still passes.
                        if query.passes(
                            &tool.server_id,
                            &tool.name,
                            tool.state,
                            tool.classification,
                            &needle,
                        ) {
                            tools.push(tool);
                        }
                    }
                }
                Ok(ToolPage { tools, total, more })
            }
            Backend::Postgres(p) => {
                let (rows, total, more) = p.tool_page(query).await?;
                let tools = rows
                    .iter()
                    .map(|(id, body)| decode(Table::Tool, id, body))
                    .collect::<Result<_, _>>()?;
                Ok(ToolPage { tools, total, more })
            }
        }
    }

    /// The heads of every stored tool, sorted by `(name, id)`: read again
    /// only when a policy record was written since the last read (the
    /// generation is read first, so a write landing mid-read makes the next
    /// call read again).
    fn tool_heads(&self, s: &sled_backend::SledBackend) -> Result<Arc<Vec<ToolHead>>, StoreError> {
        let generation = self.generation();
        if let Some((at, heads)) = &*self
            .shared
            .tool_heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            && *at == generation
        {
            return Ok(heads.clone());
        }
        let mut heads = s
            .list(Table::Tool)?
            .iter()
            .map(|(id, body)| decode::<ToolHead>(Table::Tool, id, body))
            .collect::<Result<Vec<_>, _>>()?;
        heads.sort_unstable_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        let heads = Arc::new(heads);
        *self
            .shared
            .tool_heads
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((generation, heads.clone()));
        Ok(heads)
    }

    /// The id of the token whose hash is `hash`.
    pub async fn token_id_by_hash(&self, hash: &str) -> Result<Option<String>, StoreError> {
        self.reader().token_id_by_hash(hash).await
    }

    /// A key for `purpose` derived from the master key
    /// ([`MasterKey::derive`]); e.g. the MAC key of query cursors.
    pub(crate) fn derived_key(&self, purpose: &str) -> [u8; crate::crypto::KEY_LEN] {
        self.key.derive(purpose)
    }

    /// Opens the secret sealed under `record_key`; `None` if none is stored.
    pub async fn secret(&self, record_key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader().secret(record_key).await
    }

    /// Checks that the master key opens what this store sealed: on first
    /// use, seals a known value; afterwards, opens it. A wrong or replaced
    /// key fails here, at start-up, instead of on the first OAuth call.
    ///
    /// Errors: [`StoreError::WrongKey`].
    pub async fn check_master_key(&self) -> Result<(), StoreError> {
        const CHECK: &str = "meta/key_check";
        /// The check value as read: `Ok(true)` it opens, `Ok(false)` none
        /// is stored yet; a value this key does not open is `WrongKey`.
        fn opens(read: Result<Option<Vec<u8>>, StoreError>) -> Result<bool, StoreError> {
            match read {
                Ok(Some(value)) if value == b"toolgate" => Ok(true),
                Ok(Some(_)) | Err(StoreError::Crypto(_)) => Err(StoreError::WrongKey),
                Ok(None) => Ok(false),
                Err(other) => Err(other),
            }
        }
        if opens(self.secret(CHECK).await)? {
            return Ok(());
        }
        self.write(|tx| async move {
            // Another replica may have sealed it meanwhile (under its key).
            if opens(tx.secret(CHECK).await)? {
                return Ok((Batch::default(), ()));
            }
            let mut batch = Batch::default();
            batch.put_secret(CHECK, b"toolgate");
            Ok::<_, StoreError>((batch, ()))
        })
        .await?;
        match opens(self.secret(CHECK).await)? {
            true => Ok(()),
            false => Err(StoreError::WrongKey),
        }
    }

    /// A metadata value (e.g. the catalog digest last discovered).
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.reader().meta(name).await
    }

    /// Audit events older than `before` (a sequence number; `None`: from the
    /// newest), newest first, that pass `filter`: at most `limit` of them,
    /// and whether older matching events may remain.
    pub async fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
        filter: impl Fn(&AuditEvent) -> bool + Send + Sync,
    ) -> Result<(Vec<AuditEvent>, bool), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.audit_page(before, limit, filter),
            Backend::Postgres(p) => p.audit_page(before, limit, &filter).await,
        }
    }

    /// The sequence number of the first audit event at or after `since`
    /// (Unix ms), among events up to `up_to`; `up_to + 1` when there is
    /// none.
    pub async fn audit_start_after(&self, since: i64, up_to: u64) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.audit_start_after(since, up_to),
            Backend::Postgres(p) => p.audit_start_after(since, up_to).await,
        }
    }

    /// Audit events with sequence in `from..=up_to`, oldest first, at most
    /// `limit` of them.
    pub async fn audit_forward(
        &self,
        from: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        if from > up_to {
            return Ok(Vec::new());
        }
        match &self.backend {
            Backend::Sled(s) => s.audit_forward(from, up_to, limit),
            Backend::Postgres(p) => p.audit_forward(from, up_to, limit).await,
        }
    }

    /// Deletes the oldest audit events with sequence up to `up_to`, at
    /// most `limit` of them (small batches keep each step short), and
    /// records the newest deleted one as the retention anchor
    /// ([`Store::audit_anchor`]) in the same atomic write, so that
    /// [`Store::verify_audit_chain`] starts from it. Returns how many were
    /// deleted (0: none left up to `up_to`).
    pub async fn prune_audit(&self, up_to: u64, limit: usize) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.prune_audit(up_to, limit),
            Backend::Postgres(p) => p.prune_audit(up_to, limit).await,
        }
    }

    /// The sequence number of the newest audit event published (0 when
    /// none): every event up to it can be read.
    pub fn last_audit_sequence(&self) -> u64 {
        self.shared.committed_seq()
    }

    /// A receiver of every audit event published from now on (on
    /// PostgreSQL: written by any replica), in sequence order.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEvent> {
        self.shared.events.subscribe()
    }

    /// Whether the database answers reads (for `/readyz`).
    pub async fn is_healthy(&self) -> bool {
        match &self.backend {
            Backend::Sled(s) => s.is_healthy(),
            Backend::Postgres(p) => p.is_healthy().await,
        }
    }

    /// Stores a short-lived value under `kind` and `key` (replacing one
    /// there), sealed, until `value.expires_at`.
    pub(crate) async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        value: &Ephemeral,
    ) -> Result<(), StoreError> {
        let sealed = self
            .key
            .seal(ephemeral_aad(kind, key).as_bytes(), &value.value)?;
        match &self.backend {
            Backend::Sled(s) => s.put_ephemeral(kind, key, &value.owner, &sealed, value.expires_at),
            Backend::Postgres(p) => {
                p.put_ephemeral(kind, key, &value.owner, &sealed, value.expires_at)
                    .await
            }
        }
    }

    /// The live value under `kind` and `key`, left in place.
    pub async fn get_ephemeral(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<Ephemeral>, StoreError> {
        let raw = match &self.backend {
            Backend::Sled(s) => s.get_ephemeral(kind, key, false)?,
            Backend::Postgres(p) => p.get_ephemeral(kind, key, false).await?,
        };
        self.open_ephemeral(kind, key, raw)
    }

    /// Takes the live value under `kind` and `key`: it is deleted in the
    /// same step, so of two replicas taking it at once only one gets it.
    pub(crate) async fn take_ephemeral(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<Ephemeral>, StoreError> {
        let raw = match &self.backend {
            Backend::Sled(s) => s.get_ephemeral(kind, key, true)?,
            Backend::Postgres(p) => p.get_ephemeral(kind, key, true).await?,
        };
        self.open_ephemeral(kind, key, raw)
    }

    /// A live value of `kind` owned by `owner`, with its key.
    pub(crate) async fn find_ephemeral(
        &self,
        kind: &str,
        owner: &str,
    ) -> Result<Option<(String, Ephemeral)>, StoreError> {
        let raw = match &self.backend {
            Backend::Sled(s) => s.find_ephemeral(kind, owner)?,
            Backend::Postgres(p) => p.find_ephemeral(kind, owner).await?,
        };
        match raw {
            Some((key, raw)) => Ok(self
                .open_ephemeral(kind, &key, Some(raw))?
                .map(|value| (key, value))),
            None => Ok(None),
        }
    }

    /// Deletes the value under `kind` and `key` (no error if absent).
    pub(crate) async fn delete_ephemeral(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.delete_ephemeral(kind, key),
            Backend::Postgres(p) => p.delete_ephemeral(kind, key).await,
        }
    }

    fn open_ephemeral(
        &self,
        kind: &str,
        key: &str,
        raw: Option<RawEphemeral>,
    ) -> Result<Option<Ephemeral>, StoreError> {
        let Some(raw) = raw else { return Ok(None) };
        if raw.expires_at <= crate::model::now_ms() {
            return Ok(None);
        }
        let value = self
            .key
            .open(ephemeral_aad(kind, key).as_bytes(), &raw.sealed)?;
        Ok(Some(Ephemeral {
            owner: raw.owner,
            value,
            expires_at: raw.expires_at,
        }))
    }

    /// Holds `name` exclusively across every replica until the returned
    /// guard drops (PostgreSQL: a transaction-scoped advisory lock; the
    /// embedded store: an in-process lock). Used so that one refresh of a
    /// connection's Salesforce tokens runs at a time.
    pub(crate) async fn named_lock(&self, name: &str) -> Result<NamedLock, StoreError> {
        let inner = match &self.backend {
            Backend::Sled(s) => NamedLockInner::Local {
                _guard: s.named_lock(name).await,
            },
            Backend::Postgres(p) => NamedLockInner::Postgres {
                _guard: p.named_lock(name).await?,
            },
        };
        Ok(NamedLock { _inner: inner })
    }

    /// Every record of every table as raw JSON, for `toolgated store copy`.
    pub async fn export_records(&self) -> Result<Vec<(Table, String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for table in Table::ALL {
            let rows = match &self.backend {
                Backend::Sled(s) => s.list(table)?,
                Backend::Postgres(p) => p.list(table).await?,
            };
            out.extend(rows.into_iter().map(|(id, body)| (table, id, body)));
        }
        Ok(out)
    }

    /// Every secret, still sealed, with its record key, for `toolgated
    /// store copy` (the target must use the same master key).
    pub(crate) async fn export_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.all_secrets(),
            Backend::Postgres(p) => p.all_secrets().await,
        }
    }

    /// Writes copied records, sealed secrets and audit events (keeping their
    /// sequence numbers and times) in one atomic write. For `toolgated store
    /// copy` into an empty store.
    ///
    /// Errors: [`StoreError::Schema`] if the target already holds records.
    pub(crate) async fn import(
        &self,
        records: Vec<(Table, String, Vec<u8>)>,
        secrets: Vec<(String, Vec<u8>)>,
        events: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(records.len() + secrets.len());
        for (table, id, body) in records {
            ops.push(Op::Put { table, id, body });
        }
        for (key, sealed) in secrets {
            ops.push(Op::PutSecret { key, sealed });
        }
        match &self.backend {
            Backend::Sled(s) => s.import(ops, events, &self.shared).await,
            Backend::Postgres(p) => p.import(ops, events).await,
        }
    }
}

/// A stored ephemeral value before opening.
pub(crate) struct RawEphemeral {
    pub(crate) owner: String,
    pub(crate) sealed: Vec<u8>,
    pub(crate) expires_at: i64,
}

fn ephemeral_aad(kind: &str, key: &str) -> String {
    format!("ephemeral/{kind}/{key}")
}

/// The name a record is called by in messages: `<table prefix><id>`.
fn record_name(table: Table, id: &str) -> String {
    format!("{}{id}", table.prefix())
}

fn decode<T: DeserializeOwned>(table: Table, id: &str, body: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
        key: record_name(table, id),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain data types to JSON cannot fail.
    serde_json::to_vec(value).expect("model types serialise to JSON")
}

#[cfg(test)]
mod tests;
