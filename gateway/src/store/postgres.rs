//! The PostgreSQL backend, for several replicas on one database (sqlx).
//!
//! Owns the schema (`gateway/migrations/`, applied at open under sqlx's
//! migration advisory lock, a newer schema refused), the connection pool,
//! admin transactions, the audit log's one sequence across replicas, the
//! change feed that keeps every replica's policy cache and live audit feed
//! current, ephemeral values and named locks. It mirrors the embedded
//! backend (`sled_backend`) method for method; the facade in `super` is the
//! contract. It must never put the database URL (which may hold a
//! password) in an error or a log line.
//!
//! Layout:
//! - this file: opening, admin transactions and their commit, record and
//!   secret reads, tool pages, ephemeral values, named locks, import;
//! - `schema`: connecting, migrations, error mapping, table names;
//! - `audit`: audit inserts (one statement numbers, stamps and notifies),
//!   the group-commit appender of lone events, audit reads;
//! - `feed`: the `LISTEN` connection and the revision poll behind
//!   [`Shared::bump_generation`] and [`Shared::publish`].
//!
//! Locks: admin changes take the transaction-scoped advisory lock
//! `(LOCK_SPACE, 1)` (two-key form, so no `hashtextextended` name of
//! [`PgBackend::named_lock`], which uses the one-key form, can collide with
//! it). Audit numbering takes the row lock of the one `store_state` row,
//! held to COMMIT: commit order is sequence order, so a reader never sees
//! event N+1 without event N.

mod audit;
mod feed;
mod schema;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, QueryBuilder, Transaction};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Op, RawEphemeral, Shared, StoreError, Table, ToolQuery};
use crate::model::AuditEvent;
use schema::{db_err, table_name};

/// The first key of the two-key advisory locks toolgated takes (`tgat`).
const LOCK_SPACE: i32 = 0x7467_6174;
/// The second key of the admin write lock.
const ADMIN_LOCK: i32 = 1;
/// Rows per statement when a write is large (an import).
const CHUNK: usize = 1000;
/// Every this many ephemeral puts, expired values of that kind are purged.
const PURGE_EVERY: u64 = 16;

/// Connection settings for PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most pooled connections per replica (the change feed has two more of
    /// its own).
    pub max_connections: u32,
    /// How long a request waits for a database connection before failing
    /// closed with [`StoreError::Unavailable`]. A lone audit append
    /// ([`super::Store::append_audit`]) waits at most four times this.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// An admin change's transaction, shared by the change's reads and its
/// commit. It holds the admin advisory lock (and this replica's admin
/// mutex) until it commits or is dropped; dropping it rolls back.
#[derive(Clone)]
pub(crate) struct SharedTx(Arc<AsyncMutex<TxState>>);

struct TxState {
    /// `None` once committed.
    tx: Option<Transaction<'static, Postgres>>,
    /// This replica's admin mutex: at most one pooled connection per
    /// replica waits on the admin advisory lock, so concurrent admin writes
    /// cannot take every connection while the one holding the lock needs
    /// another for a read.
    local: Option<OwnedMutexGuard<()>>,
}

impl SharedTx {
    /// Runs `f` on the transaction's connection.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.0.lock().await;
        let tx = state.tx.as_mut().ok_or_else(|| {
            StoreError::Postgres("the admin change's transaction has already ended".into())
        })?;
        f(tx).await
    }
}

/// A transaction holding an advisory lock ([`PgBackend::named_lock`]);
/// dropping it rolls back, which releases the lock.
pub(crate) struct PgLock {
    _tx: Transaction<'static, Postgres>,
    _local: OwnedMutexGuard<()>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// How long `/readyz` waits for the database before calling the replica
/// not ready.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The PostgreSQL backend.
pub(super) struct PgBackend {
    pool: PgPool,
    feed: Arc<feed::FeedState>,
    appender: audit::Appender,
    shared: Arc<Shared>,
    /// See [`TxState::local`].
    admin: Arc<AsyncMutex<()>>,
    /// In-process halves of named locks, for the same reason as `admin`:
    /// one pooled connection per name waits on the advisory lock. A std
    /// mutex: held only to look up the entry, never across an await.
    named: std::sync::Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    /// Bounds how many named locks (each a pooled connection idle in its
    /// transaction while, say, a Salesforce refresh runs) this replica holds
    /// at once: half the pool, so refreshes of many users can never take
    /// every connection from the requests they serve.
    named_slots: Arc<tokio::sync::Semaphore>,
    /// Ephemeral puts so far (see [`PURGE_EVERY`]).
    puts: AtomicU64,
    /// Stops the feed and the audit appender when the backend drops.
    _tasks: DropGuard,
}

impl PgBackend {
    /// Connects, brings the schema up to date, reads where the audit log
    /// and the policy revision stand, and starts the change feed and the
    /// audit appender.
    ///
    /// Errors: [`StoreError::Unavailable`] if the database cannot be
    /// reached, [`StoreError::Schema`] if its schema is newer than this
    /// toolgated (or cannot be migrated), [`StoreError::Postgres`] otherwise.
    pub(super) async fn open(
        url: &str,
        options: PgOptions,
        shared: Arc<Shared>,
    ) -> Result<Self, StoreError> {
        let connect = schema::connect_options(url)?;
        schema::migrate(&connect, options.acquire_timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(db_err("connecting"))?;
        let (audit_seq, policy) = feed::read_state(&pool).await?;
        shared.committed_seq.fetch_max(audit_seq, Ordering::SeqCst);
        let stop = CancellationToken::new();
        let feed = feed::start(
            &connect,
            options.acquire_timeout,
            audit_seq,
            policy,
            shared.clone(),
            stop.clone(),
        )
        .await?;
        let appender = audit::Appender::start(
            pool.clone(),
            options.acquire_timeout,
            shared.clone(),
            stop.clone(),
        );
        Ok(Self {
            pool,
            feed,
            appender,
            shared,
            admin: Arc::new(AsyncMutex::new(())),
            named: std::sync::Mutex::new(HashMap::new()),
            named_slots: Arc::new(tokio::sync::Semaphore::new(
                (options.max_connections as usize / 2).max(1),
            )),
            puts: AtomicU64::new(0),
            _tasks: stop.drop_guard(),
        })
    }

    /// Whether the change feed is connected and checked the database within
    /// the last second ([`feed::STALE_AFTER`]).
    pub(super) fn feed_ok(&self) -> bool {
        self.feed.ok()
    }

    /// The `application_name` of the change feed's connections (tests find
    /// them in `pg_stat_activity` by it).
    #[cfg(test)]
    pub(super) fn feed_application_name(&self) -> &str {
        &self.feed.application_name
    }

    /// Starts an admin change: a transaction holding the admin lock.
    pub(super) async fn begin(&self) -> Result<SharedTx, StoreError> {
        let (tx, local) = self.begin_admin().await?;
        Ok(SharedTx(Arc::new(AsyncMutex::new(TxState {
            tx: Some(tx),
            local: Some(local),
        }))))
    }

    /// A read-only transaction seeing one snapshot of the database
    /// (`REPEATABLE READ`), without the admin lock: for reads of several
    /// tables that must agree, such as the policy snapshot. Dropping it
    /// ends it.
    pub(super) async fn begin_snapshot(&self) -> Result<SharedTx, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db_err("starting a snapshot read"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err("starting a snapshot read"))?;
        Ok(SharedTx(Arc::new(AsyncMutex::new(TxState {
            tx: Some(tx),
            local: None,
        }))))
    }

    /// This replica's admin mutex and a transaction holding the admin
    /// advisory lock.
    async fn begin_admin(
        &self,
    ) -> Result<(Transaction<'static, Postgres>, OwnedMutexGuard<()>), StoreError> {
        let local = self.admin.clone().lock_owned().await;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db_err("starting an admin change"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_SPACE)
            .bind(ADMIN_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_err("taking the admin write lock"))?;
        Ok((tx, local))
    }

    /// Applies `ops`, appends `events` (numbered and stamped here) and
    /// commits; other replicas hear of it through `toolgate_changes`.
    pub(super) async fn commit(
        &self,
        tx: SharedTx,
        ops: &[Op],
        events: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        let (mut transaction, _local) = {
            let mut state = tx.0.lock().await;
            let transaction = state.tx.take().ok_or_else(|| {
                StoreError::Postgres("the admin change's transaction has already ended".into())
            })?;
            (transaction, state.local.take())
        };
        apply_ops(&mut transaction, ops).await?;
        let policy = ops.iter().any(Op::writes_policy);
        let last = if events.is_empty() && !policy {
            None
        } else {
            Some(audit::insert(&mut transaction, &events, policy).await?)
        };
        transaction
            .commit()
            .await
            .map_err(db_err("committing an admin change"))?;
        if let Some(last) = last {
            // Every event up to `last` is committed (commit order is
            // sequence order); the feed publishes them.
            self.shared.committed_seq.fetch_max(last, Ordering::SeqCst);
        }
        Ok(())
    }

    pub(super) async fn get(&self, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get(&self.pool, table, id).await
    }

    pub(super) async fn tx_get(
        &self,
        tx: &SharedTx,
        table: Table,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        tx.with(async |conn| get(conn, table, id).await).await
    }

    pub(super) async fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        list(&self.pool, table).await
    }

    pub(super) async fn tx_list(
        &self,
        tx: &SharedTx,
        table: Table,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        tx.with(async |conn| list(conn, table).await).await
    }

    pub(super) async fn secret(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        secret(&self.pool, key).await
    }

    pub(super) async fn tx_secret(
        &self,
        tx: &SharedTx,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        tx.with(async |conn| secret(conn, key).await).await
    }

    pub(super) async fn all_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        sqlx::query_as("SELECT key, sealed FROM secrets ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("reading secrets"))
    }

    /// One page of tools as `(id, JSON body)`, with the number of tools
    /// passing the filters and whether more follow the page: filtered,
    /// ordered by `(name, id)` and paged by the database.
    pub(super) async fn tool_page(
        &self,
        query: &ToolQuery,
    ) -> Result<(Vec<(String, Vec<u8>)>, u64, bool), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_err("listing tools"))?;
        let mut page = QueryBuilder::<Postgres>::new("SELECT id, body::text FROM tools");
        push_tool_filters(&mut page, query);
        if let Some((name, id)) = &query.after {
            page.push(" AND (name, id) > (")
                .push_bind(name.clone())
                .push(", ")
                .push_bind(id.clone())
                .push(")");
        }
        page.push(" ORDER BY name, id LIMIT ")
            .push_bind(i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX));
        let mut rows: Vec<(String, String)> = page
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err("listing tools"))?;
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM tools");
        push_tool_filters(&mut count, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err("counting tools"))?;
        let rows = rows
            .into_iter()
            .map(|(id, body)| (id, body.into_bytes()))
            .collect();
        Ok((rows, u64::try_from(total).unwrap_or(0), more))
    }

    pub(super) async fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        self.appender.append(events).await
    }

    pub(super) async fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
        filter: &(dyn Fn(&AuditEvent) -> bool + Send + Sync),
    ) -> Result<(Vec<AuditEvent>, bool), StoreError> {
        audit::page(&self.pool, before, limit, filter).await
    }

    pub(super) async fn audit_start_after(
        &self,
        since: i64,
        up_to: u64,
    ) -> Result<u64, StoreError> {
        audit::start_after(&self.pool, since, up_to).await
    }

    pub(super) async fn audit_forward(
        &self,
        from: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        audit::forward(&self.pool, from, up_to, limit).await
    }

    /// See [`audit::prune`].
    pub(super) async fn prune_audit(&self, up_to: u64, limit: usize) -> Result<u64, StoreError> {
        audit::prune(&self.pool, up_to, limit).await
    }

    /// Ready means: the change feed is current (so policy is not stale)
    /// and the database answers within [`HEALTH_TIMEOUT`] (less than a
    /// typical readiness probe's timeout).
    pub(super) async fn is_healthy(&self) -> bool {
        self.feed_ok()
            && tokio::time::timeout(HEALTH_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool))
                .await
                .is_ok_and(|r| r.is_ok())
    }

    pub(super) async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        owner: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        if self
            .puts
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            sqlx::query("DELETE FROM ephemeral WHERE kind = $1 AND expires_at <= $2")
                .bind(kind)
                .bind(crate::model::now_ms())
                .execute(&self.pool)
                .await
                .map_err(db_err("purging expired short-lived values"))?;
        }
        sqlx::query(
            "INSERT INTO ephemeral (kind, key, owner, sealed, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, key) DO UPDATE \
             SET owner = EXCLUDED.owner, sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at",
        )
        .bind(kind)
        .bind(key)
        .bind(owner)
        .bind(sealed)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err("storing a short-lived value"))?;
        Ok(())
    }

    /// The value under `kind`/`key`; when `take`, deleted by the same
    /// statement (`DELETE ... RETURNING`), so of concurrent takes on any
    /// replicas exactly one gets it.
    pub(super) async fn get_ephemeral(
        &self,
        kind: &str,
        key: &str,
        take: bool,
    ) -> Result<Option<RawEphemeral>, StoreError> {
        let sql = if take {
            "DELETE FROM ephemeral WHERE kind = $1 AND key = $2 RETURNING owner, sealed, expires_at"
        } else {
            "SELECT owner, sealed, expires_at FROM ephemeral WHERE kind = $1 AND key = $2"
        };
        let row: Option<(String, Vec<u8>, i64)> = sqlx::query_as(sql)
            .bind(kind)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading a short-lived value"))?;
        Ok(row.map(|(owner, sealed, expires_at)| RawEphemeral {
            owner,
            sealed,
            expires_at,
        }))
    }

    /// The live value of `kind` owned by `owner` with the lowest key.
    pub(super) async fn find_ephemeral(
        &self,
        kind: &str,
        owner: &str,
    ) -> Result<Option<(String, RawEphemeral)>, StoreError> {
        let row: Option<(String, String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT key, owner, sealed, expires_at FROM ephemeral \
             WHERE kind = $1 AND owner = $2 AND expires_at > $3 ORDER BY key LIMIT 1",
        )
        .bind(kind)
        .bind(owner)
        .bind(crate::model::now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("finding a short-lived value"))?;
        Ok(row.map(|(key, owner, sealed, expires_at)| {
            (
                key,
                RawEphemeral {
                    owner,
                    sealed,
                    expires_at,
                },
            )
        }))
    }

    pub(super) async fn delete_ephemeral(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ephemeral WHERE kind = $1 AND key = $2")
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db_err("deleting a short-lived value"))?;
        Ok(())
    }

    /// Holds `name` across every replica: a transaction holding
    /// `pg_advisory_xact_lock(hashtextextended(name, 0))`, rolled back (and
    /// so released) when the returned lock drops.
    pub(super) async fn named_lock(&self, name: &str) -> Result<PgLock, StoreError> {
        let local = {
            let mut locks = self.named.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(name.to_owned()).or_default().clone()
        };
        let local = local.lock_owned().await;
        let slot = self
            .named_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db_err("starting a named lock"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_err("taking a named lock"))?;
        Ok(PgLock {
            _tx: tx,
            _local: local,
            _slot: slot,
        })
    }

    /// Writes copied records, sealed secrets and audit events (keeping
    /// their sequence numbers and times) in one transaction, into a
    /// database that holds no record, secret or audit event.
    ///
    /// Errors: [`StoreError::Schema`] if the database is not empty.
    pub(super) async fn import(
        &self,
        ops: Vec<Op>,
        events: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        let (mut transaction, _local) = self.begin_admin().await?;
        let mut sql = String::from(
            "SELECT EXISTS (SELECT 1 FROM secrets UNION ALL SELECT 1 FROM audit_events",
        );
        for table in Table::ALL {
            sql.push_str(" UNION ALL SELECT 1 FROM ");
            sql.push_str(table_name(table));
        }
        sql.push(')');
        let occupied: bool = sqlx::query_scalar(&sql)
            .fetch_one(&mut *transaction)
            .await
            .map_err(db_err("checking that the target database is empty"))?;
        if occupied {
            return Err(StoreError::Schema(
                "the target database already holds records; copy into an empty one".into(),
            ));
        }
        let ops: Vec<Op> = ops
            .into_iter()
            .filter(|op| matches!(op, Op::Put { .. } | Op::PutSecret { .. }))
            .collect();
        apply_ops(&mut transaction, &ops).await?;
        let last = audit::import(&mut transaction, &events).await?;
        transaction
            .commit()
            .await
            .map_err(db_err("committing the import"))?;
        self.shared.committed_seq.fetch_max(last, Ordering::SeqCst);
        // Imported events are history, not live events: the feed does not
        // publish them.
        self.feed.published.fetch_max(last, Ordering::SeqCst);
        Ok(())
    }
}

/// A record's JSON body.
async fn get<'e, E>(executor: E, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let sql = format!("SELECT body::text FROM {} WHERE id = $1", table_name(table));
    let body: Option<String> = sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await
        .map_err(db_err("reading a record"))?;
    Ok(body.map(String::into_bytes))
}

/// Every record of a table as `(id, JSON body)`, in id order.
async fn list<'e, E>(executor: E, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let sql = format!(
        "SELECT id, body::text FROM {} ORDER BY id",
        table_name(table)
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql)
        .fetch_all(executor)
        .await
        .map_err(db_err("listing records"))?;
    Ok(rows
        .into_iter()
        .map(|(id, body)| (id, body.into_bytes()))
        .collect())
}

/// The sealed secret under `key`.
async fn secret<'e, E>(executor: E, key: &str) -> Result<Option<Vec<u8>>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    sqlx::query_scalar("SELECT sealed FROM secrets WHERE key = $1")
        .bind(key)
        .fetch_optional(executor)
        .await
        .map_err(db_err("reading a secret"))
}

/// What one statement of [`apply_ops`] writes.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Run {
    Put(Table),
    Delete(Table),
    PutSecret,
    DeleteSecret,
}

/// Applies `ops` in order, one statement per run of consecutive ops of the
/// same kind and table (a batch approval of 500 tools is one statement).
async fn apply_ops(conn: &mut PgConnection, ops: &[Op]) -> Result<(), StoreError> {
    let mut start = 0;
    while start < ops.len() {
        let run = run_of(&ops[start]);
        let mut end = start + 1;
        while end < ops.len() && end - start < CHUNK && run_of(&ops[end]) == run {
            end += 1;
        }
        apply_run(conn, run, &ops[start..end]).await?;
        start = end;
    }
    Ok(())
}

fn run_of(op: &Op) -> Run {
    match op {
        Op::Put { table, .. } => Run::Put(*table),
        Op::Delete { table, .. } => Run::Delete(*table),
        Op::PutSecret { .. } => Run::PutSecret,
        Op::DeleteSecret { .. } => Run::DeleteSecret,
    }
}

async fn apply_run(conn: &mut PgConnection, run: Run, ops: &[Op]) -> Result<(), StoreError> {
    match run {
        Run::Put(table) => {
            // One upsert may not touch a row twice: the last put of an id
            // in the run wins, as it would applied one by one.
            let mut latest: HashMap<&str, &[u8]> = HashMap::new();
            for op in ops {
                if let Op::Put { id, body, .. } = op {
                    latest.insert(id, body);
                }
            }
            let mut ids = Vec::with_capacity(latest.len());
            let mut bodies = Vec::with_capacity(latest.len());
            for (id, body) in latest {
                let body = std::str::from_utf8(body).map_err(|e| StoreError::Corrupt {
                    key: super::record_name(table, id),
                    reason: e.to_string(),
                })?;
                ids.push(id.to_owned());
                bodies.push(body.to_owned());
            }
            let sql = format!(
                "INSERT INTO {} (id, body) \
                 SELECT u.id, u.body::json FROM UNNEST($1::text[], $2::text[]) AS u(id, body) \
                 ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                table_name(table)
            );
            sqlx::query(&sql)
                .bind(ids)
                .bind(bodies)
                .execute(conn)
                .await
                .map_err(db_err("writing records"))?;
        }
        Run::Delete(table) => {
            let ids: Vec<String> = ops
                .iter()
                .filter_map(|op| match op {
                    Op::Delete { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .collect();
            let sql = format!("DELETE FROM {} WHERE id = ANY($1)", table_name(table));
            sqlx::query(&sql)
                .bind(ids)
                .execute(conn)
                .await
                .map_err(db_err("deleting records"))?;
        }
        Run::PutSecret => {
            let mut latest: HashMap<&str, &[u8]> = HashMap::new();
            for op in ops {
                if let Op::PutSecret { key, sealed } = op {
                    latest.insert(key, sealed);
                }
            }
            let (keys, sealed): (Vec<String>, Vec<Vec<u8>>) = latest
                .into_iter()
                .map(|(k, s)| (k.to_owned(), s.to_vec()))
                .unzip();
            sqlx::query(
                "INSERT INTO secrets (key, sealed) \
                 SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET sealed = EXCLUDED.sealed",
            )
            .bind(keys)
            .bind(sealed)
            .execute(conn)
            .await
            .map_err(db_err("writing secrets"))?;
        }
        Run::DeleteSecret => {
            let keys: Vec<String> = ops
                .iter()
                .filter_map(|op| match op {
                    Op::DeleteSecret { key } => Some(key.clone()),
                    _ => None,
                })
                .collect();
            sqlx::query("DELETE FROM secrets WHERE key = ANY($1)")
                .bind(keys)
                .execute(conn)
                .await
                .map_err(db_err("deleting secrets"))?;
        }
    }
    Ok(())
}

/// The `WHERE` clause of a tool query (without its page bounds).
fn push_tool_filters(builder: &mut QueryBuilder<'_, Postgres>, query: &ToolQuery) {
    builder.push(" WHERE TRUE");
    if let Some(server_id) = &query.server_id {
        builder
            .push(" AND server_id = ")
            .push_bind(server_id.clone());
    }
    if let Some(state) = query.state {
        builder.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(action) = query.action {
        builder
            .push(" AND action = ")
            .push_bind(schema::enum_name(&action));
    }
    if let Some(sensitive) = query.sensitive {
        builder.push(" AND sensitive = ").push_bind(sensitive);
    }
    if let Some(dangerous) = query.dangerous {
        builder.push(" AND dangerous = ").push_bind(dangerous);
    }
    if !query.name_contains.is_empty() {
        builder
            .push(" AND name ILIKE ")
            .push_bind(format!("%{}%", like_escape(&query.name_contains)))
            .push(r" ESCAPE '\'");
    }
}

/// `text` with the `LIKE` wildcards `%` and `_` and the escape character
/// `\` escaped, so it matches only itself (PostgreSQL manual, "Pattern
/// Matching", LIKE).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod unit_tests {
    use super::like_escape;

    #[test]
    fn like_escape_escapes_wildcards_and_the_escape_character() {
        assert_eq!(like_escape(r"a_b%c\d"), r"a\_b\%c\\d");
        assert_eq!(like_escape("query"), "query");
    }
}
