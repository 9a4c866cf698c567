//! The audit log on PostgreSQL: appending (numbered by the one
//! `store_state` counter, stamped with the database's clock, announced on
//! `toolgate_changes`, all in one statement), the group-commit appender of
//! lone events (tool calls), and reads.
//!
//! The stored body is the event without `sequence` and `time`, which are
//! columns; reads put them back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::super::{Shared, StoreError, chain};
use super::schema::{db_err, enum_name};
use crate::model::AuditEvent;

/// The channel every commit that appends events or writes policy notifies.
pub(super) const CHANNEL: &str = "toolgate_changes";

/// Numbers `$1` events after the counter and bumps the policy revision by
/// `$2`; returns the last sequence number handed out, the policy revision,
/// the database's clock read after the counter's row lock is taken (so
/// times follow sequence order across replicas whatever their clocks), and
/// the newest event's hash (the chain's `prev`).
///
/// The row lock on `store_state` is held until the transaction commits:
/// the next appender numbers and chains after this one and commits after
/// it.
const RESERVE: &str = "\
UPDATE store_state SET audit_seq = audit_seq + $1, policy = policy + $2
RETURNING audit_seq, policy, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint, audit_hash";

/// Inserts the numbered, stamped and chained events (`$1`..`$7`:
/// sequences, times, actors, actions, targets, outcomes, bodies), stores
/// the new last hash `$8`, and notifies `toolgate_changes` with
/// `<last sequence> <policy revision>` (`$9`, `$10`).
const INSERT: &str = "\
WITH ins AS (
    INSERT INTO audit_events (seq, time, actor, action, target, outcome, body)
    SELECT u.seq, u.time, u.actor, u.action, u.target, u.outcome, u.body::json
    FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        AS u(seq, time, actor, action, target, outcome, body)
), s AS (
    UPDATE store_state SET audit_hash = $8
)
SELECT pg_notify('toolgate_changes', $9::bigint::text || ' ' || $10::bigint::text)";

/// Most events one group commit writes.
const MAX_GROUP: usize = 2000;
/// Lone appends waiting for the appender, at most.
const QUEUE: usize = 4096;
/// Events read per statement when paging.
const READ_CHUNK: i64 = 1000;

/// Appends `events` on `conn`, which must be in a transaction: numbers,
/// stamps and chains them under `store_state`'s row lock (two statements),
/// and bumps the policy revision when `policy`. The numbers and the
/// notification take effect at the transaction's commit. Returns the last
/// sequence number.
pub(super) async fn insert(
    conn: &mut PgConnection,
    events: &[AuditEvent],
    policy: bool,
) -> Result<u64, StoreError> {
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let (last, revision, now, prev): (i64, i64, i64, String) = sqlx::query_as(RESERVE)
        .bind(count)
        .bind(i64::from(policy))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err("appending audit events"))?;
    let mut events = events.to_vec();
    for (event, seq) in events.iter_mut().zip(last - count + 1..) {
        event.sequence = u64::try_from(seq).unwrap_or(0);
        event.time = now;
    }
    let last_hash = chain::chain(chain::hash_bytes(&prev), &mut events);
    let last_hash = if events.is_empty() {
        prev
    } else {
        hex::encode(last_hash)
    };
    let mut seqs = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut actors = Vec::with_capacity(events.len());
    let mut actions = Vec::with_capacity(events.len());
    let mut targets = Vec::with_capacity(events.len());
    let mut outcomes = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for event in &events {
        seqs.push(to_i64(event.sequence));
        times.push(event.time);
        actors.push(event.actor.clone());
        actions.push(event.action.clone());
        targets.push(event.target.clone());
        outcomes.push(enum_name(&event.outcome));
        bodies.push(body(event));
    }
    sqlx::query(INSERT)
        .bind(seqs)
        .bind(times)
        .bind(actors)
        .bind(actions)
        .bind(targets)
        .bind(outcomes)
        .bind(bodies)
        .bind(last_hash)
        .bind(last)
        .bind(revision)
        .execute(&mut *conn)
        .await
        .map_err(db_err("appending audit events"))?;
    Ok(u64::try_from(last).unwrap_or(0))
}

/// Inserts copied events with their own sequence numbers and times, moves
/// the counter past them, bumps the policy revision (records were copied
/// too) and notifies. Returns the last sequence number (0 when none).
pub(super) async fn import(
    conn: &mut PgConnection,
    events: &[AuditEvent],
) -> Result<u64, StoreError> {
    for chunk in events.chunks(super::CHUNK) {
        let mut seqs = Vec::with_capacity(chunk.len());
        let mut times = Vec::with_capacity(chunk.len());
        let mut actors = Vec::with_capacity(chunk.len());
        let mut actions = Vec::with_capacity(chunk.len());
        let mut targets = Vec::with_capacity(chunk.len());
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut bodies = Vec::with_capacity(chunk.len());
        for event in chunk {
            seqs.push(to_i64(event.sequence));
            times.push(event.time);
            actors.push(event.actor.clone());
            actions.push(event.action.clone());
            targets.push(event.target.clone());
            outcomes.push(enum_name(&event.outcome));
            bodies.push(body(event));
        }
        sqlx::query(
            "INSERT INTO audit_events (seq, time, actor, action, target, outcome, body) \
             SELECT u.seq, u.time, u.actor, u.action, u.target, u.outcome, u.body::json \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
                 AS u(seq, time, actor, action, target, outcome, body)",
        )
        .bind(seqs)
        .bind(times)
        .bind(actors)
        .bind(actions)
        .bind(targets)
        .bind(outcomes)
        .bind(bodies)
        .execute(&mut *conn)
        .await
        .map_err(db_err("importing audit events"))?;
    }
    let last = events.iter().map(|e| e.sequence).max().unwrap_or(0);
    // The chain goes on from the newest copied event, or from the copied
    // retention anchor (imported with the metadata) when none is left.
    let hash = match events.iter().max_by_key(|e| e.sequence) {
        Some(event) => event.hash.clone(),
        None => String::new(),
    };
    sqlx::query(
        "WITH s AS (UPDATE store_state SET audit_seq = GREATEST(audit_seq, $1), policy = policy + 1, \
                        audit_hash = CASE WHEN $2 = '' THEN coalesce( \
                            (SELECT split_part(body #>> '{}', ':', 2) FROM meta WHERE id = 'audit_anchor'), '') \
                            ELSE $2 END \
                    RETURNING audit_seq, policy) \
         SELECT pg_notify('toolgate_changes', s.audit_seq::text || ' ' || s.policy::text) FROM s",
    )
    .bind(to_i64(last))
    .bind(hash)
    .execute(&mut *conn)
    .await
    .map_err(db_err("importing audit events"))?;
    Ok(last)
}

/// The stored body: the event without `sequence` and `time`.
fn body(event: &AuditEvent) -> String {
    let mut value = serde_json::to_value(event).expect("audit events serialise to JSON");
    if let Some(map) = value.as_object_mut() {
        map.remove("sequence");
        map.remove("time");
    }
    value.to_string()
}

/// An event from its row.
pub(super) fn event(seq: i64, time: i64, body: &str) -> Result<AuditEvent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: format!("audit/{seq}"),
        reason,
    };
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))?;
    let map = value
        .as_object_mut()
        .ok_or_else(|| corrupt("not a JSON object".into()))?;
    map.insert("sequence".into(), seq.into());
    map.insert("time".into(), time.into());
    serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
}

fn events(rows: Vec<(i64, i64, String)>) -> Result<Vec<AuditEvent>, StoreError> {
    rows.iter()
        .map(|(seq, time, body)| event(*seq, *time, body))
        .collect()
}

fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// See [`super::super::Store::audit_page`]: newest first, in chunks.
pub(super) async fn page(
    pool: &PgPool,
    before: Option<u64>,
    limit: usize,
    filter: &(dyn Fn(&AuditEvent) -> bool + Send + Sync),
) -> Result<(Vec<AuditEvent>, bool), StoreError> {
    let mut cursor = before.map_or(i64::MAX, to_i64);
    let chunk = i64::try_from(limit.saturating_add(1))
        .unwrap_or(READ_CHUNK)
        .clamp(64, READ_CHUNK);
    let mut out = Vec::new();
    loop {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT seq, time, body::text FROM audit_events WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(cursor)
        .bind(chunk)
        .fetch_all(pool)
        .await
        .map_err(db_err("reading audit events"))?;
        let exhausted = i64::try_from(rows.len()).unwrap_or(0) < chunk;
        for (seq, time, body) in rows {
            cursor = seq;
            let event = event(seq, time, &body)?;
            if filter(&event) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(event);
            }
        }
        if exhausted {
            return Ok((out, false));
        }
    }
}

/// See [`super::super::Store::audit_start_after`]: the first of the events
/// up to `up_to` that follow the newest one older than `since`.
pub(super) async fn start_after(pool: &PgPool, since: i64, up_to: u64) -> Result<u64, StoreError> {
    let up_to_i = to_i64(up_to);
    let start: Option<i64> = sqlx::query_scalar(
        "SELECT min(seq) FROM audit_events WHERE seq <= $1 AND seq > coalesce( \
             (SELECT max(seq) FROM audit_events WHERE seq <= $1 AND time < $2), 0)",
    )
    .bind(up_to_i)
    .bind(since)
    .fetch_one(pool)
    .await
    .map_err(db_err("finding audit events by time"))?;
    Ok(start.map_or(up_to.saturating_add(1), |s| u64::try_from(s).unwrap_or(0)))
}

/// See [`super::super::Store::audit_forward`].
pub(super) async fn forward(
    pool: &PgPool,
    from: u64,
    up_to: u64,
    limit: usize,
) -> Result<Vec<AuditEvent>, StoreError> {
    events(
        sqlx::query_as(
            "SELECT seq, time, body::text FROM audit_events \
             WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(to_i64(from))
        .bind(to_i64(up_to))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(db_err("reading audit events"))?,
    )
}

/// Events with sequence above `after`, up to `up_to`, oldest first, at
/// most [`READ_CHUNK`] of them (the change feed), each with its sequence
/// number: one that does not decode is an error in its place, so the feed
/// can skip it instead of stopping.
pub(super) async fn after(
    pool: &PgPool,
    after: u64,
    up_to: u64,
) -> Result<Vec<(u64, Result<AuditEvent, StoreError>)>, StoreError> {
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT seq, time, body::text FROM audit_events \
         WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
    )
    .bind(to_i64(after))
    .bind(to_i64(up_to))
    .bind(READ_CHUNK)
    .fetch_all(pool)
    .await
    .map_err(db_err("reading new audit events"))?;
    Ok(rows
        .into_iter()
        .map(|(seq, time, body)| (u64::try_from(seq).unwrap_or(0), event(seq, time, &body)))
        .collect())
}

/// Appends `events` in a transaction of their own (the group commit): one
/// more round trip than a single statement, as the chain's hashes are
/// computed here between taking the counter's row lock and inserting.
async fn insert_alone(pool: &PgPool, events: &[AuditEvent]) -> Result<u64, StoreError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(db_err("appending audit events"))?;
    let last = insert(&mut tx, events, false).await?;
    tx.commit()
        .await
        .map_err(db_err("committing audit events"))?;
    Ok(last)
}

/// Deletes the oldest events with sequence up to `up_to`, at most `limit`
/// of them, and records the newest deleted as the retention anchor
/// (`meta/audit_anchor`), in one transaction. Appends are not blocked: they
/// lock `store_state`, not these rows. Returns how many were deleted.
pub(super) async fn prune(pool: &PgPool, up_to: u64, limit: usize) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.map_err(db_err("pruning audit events"))?;
    let newest: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, coalesce(body ->> 'hash', '') FROM ( \
             SELECT seq, body FROM audit_events WHERE seq <= $1 ORDER BY seq LIMIT $2) AS o \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(to_i64(up_to))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err("pruning audit events"))?;
    let Some((seq, hash)) = newest else {
        return Ok(0);
    };
    let deleted = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(db_err("pruning audit events"))?
        .rows_affected();
    let anchor = chain::Anchor {
        sequence: u64::try_from(seq).unwrap_or(0),
        hash,
    };
    sqlx::query(
        "INSERT INTO meta (id, body) VALUES ($1, $2::json) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body",
    )
    .bind(chain::ANCHOR_META)
    .bind(serde_json::Value::String(anchor.encode()).to_string())
    .execute(&mut *tx)
    .await
    .map_err(db_err("pruning audit events"))?;
    tx.commit()
        .await
        .map_err(db_err("committing pruned audit events"))?;
    Ok(deleted)
}

/// One caller's lone append, waiting for its group commit.
struct Request {
    events: Vec<AuditEvent>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Group commit of lone audit appends: one background task takes what many
/// callers queued and writes it in one statement (one transaction), then
/// answers each. A caller is answered only after its events are committed,
/// so a replica killed at any moment loses no acknowledged event.
pub(super) struct Appender {
    queue: mpsc::Sender<Request>,
    /// How long a caller waits for its answer before failing closed.
    wait: Duration,
}

impl Appender {
    /// Starts the appender task; it ends with `stop`. `acquire_timeout`
    /// bounds the wait for a connection; one group commit is given twice
    /// that, and a caller (who may queue behind one stuck group) four times.
    pub(super) fn start(
        pool: PgPool,
        acquire_timeout: Duration,
        shared: Arc<Shared>,
        stop: CancellationToken,
    ) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        let group_timeout = acquire_timeout * 2;
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = run(pool, requests, shared, group_timeout) => {}
            }
        });
        Self {
            queue,
            wait: group_timeout * 2,
        }
    }

    /// Appends `events` and returns once they are committed.
    ///
    /// Errors: [`StoreError::Unavailable`] when the database does not take
    /// them within the bound ([`Appender::start`]); [`StoreError::Postgres`]
    /// if it refuses them.
    pub(super) async fn append(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let wait = self.wait;
        let queued = events.len() as f64;
        metrics::gauge!(crate::metrics::AUDIT_QUEUE_DEPTH).increment(queued);
        let gone =
            || StoreError::Unavailable("appending audit events: the appender stopped".into());
        let result = tokio::time::timeout(wait, async {
            if self.queue.send(Request { events, done }).await.is_err() {
                metrics::gauge!(crate::metrics::AUDIT_QUEUE_DEPTH).decrement(queued);
                return Err(gone());
            }
            answer.await.map_err(|_| gone())?
        })
        .await;
        result.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "appending audit events: not committed within {wait:?}"
            )))
        })
    }
}

async fn run(
    pool: PgPool,
    mut requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    group_timeout: Duration,
) {
    while let Some(first) = requests.recv().await {
        let mut count = first.events.len();
        let mut group = vec![first];
        while count < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => {
                    count += request.events.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let _dequeued = Dequeued(count);
        // A caller that gave up was told its events were not written:
        // keep that true.
        group.retain(|r| !r.done.is_closed());
        if group.is_empty() {
            continue;
        }
        let events: Vec<AuditEvent> = group.iter().flat_map(|r| r.events.clone()).collect();
        let result = match tokio::time::timeout(group_timeout, insert_alone(&pool, &events)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "appending audit events: the database did not answer within {group_timeout:?}"
            ))),
        };
        metrics::histogram!(crate::metrics::AUDIT_FLUSH_DURATION)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(last) => {
                shared.committed_seq.fetch_max(last, Ordering::SeqCst);
                for request in group {
                    let _ = request.done.send(Ok(()));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, events = events.len(), "cannot append audit events");
                for request in group {
                    let _ = request.done.send(Err(copy_error(&err)));
                }
            }
        }
    }
}

/// Takes a group's events off [`crate::metrics::AUDIT_QUEUE_DEPTH`] once
/// it is answered (or dropped).
struct Dequeued(usize);

impl Drop for Dequeued {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::AUDIT_QUEUE_DEPTH).decrement(self.0 as f64);
    }
}

/// The same error for another caller.
fn copy_error(err: &StoreError) -> StoreError {
    match err {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Postgres(m) => StoreError::Postgres(m.clone()),
        other => StoreError::Postgres(other.to_string()),
    }
}
