//! The change feed: how a replica learns of what every replica committed.
//!
//! Two tasks on a pool of their own (two connections, its own
//! `application_name`, so request load cannot starve it):
//! - the listener holds `LISTEN toolgate_changes` and wakes the follower
//!   on every notification; when its connection is lost it says so
//!   ([`FeedState::ok`] turns false), waits [`RECONNECT_AFTER`] (doubling
//!   on failures up to [`RECONNECT_MAX`]) and connects again;
//! - the follower, on each wake-up and every [`POLL_EVERY`] as a backstop
//!   against a silently dead listener, reads the policy revision and the
//!   last audit sequence: a moved revision bumps the generation (before
//!   the events are published, so a reader woken by an event re-reads
//!   policy), and new audit events are published in sequence order. After
//!   the listener reconnects it bumps the generation once more.
//!
//! [`FeedState::ok`] is what the facade's `generation()` checks: false
//! while the listener is down or the last successful check is older than
//! [`STALE_AFTER`], and then nothing derived from policy is reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::super::{Shared, StoreError};
use super::audit::{self, CHANNEL};
use super::schema::{APPLICATION_NAME, db_err};

/// The backstop poll's period.
pub(super) const POLL_EVERY: Duration = Duration::from_millis(250);
/// How old the last successful check may be while the feed counts as
/// current. The bound: a change is enforced on every replica
/// within 1 second.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(1);
/// The first wait before reconnecting a lost listener.
const RECONNECT_AFTER: Duration = Duration::from_millis(200);
/// The longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What the feed tasks share with the backend.
pub(super) struct FeedState {
    /// The listener holds `LISTEN` on a live connection.
    listening: AtomicBool,
    /// Milliseconds after `epoch` of the last successful check.
    checked_at: AtomicU64,
    epoch: Instant,
    /// Wakes the follower.
    wake: Notify,
    /// The listener reconnected: the follower bumps the generation.
    reconnected: AtomicBool,
    /// The last audit sequence published to subscribers.
    pub(super) published: AtomicU64,
    /// The feed connections' `application_name`: `toolgated-feed-<random>`.
    pub(super) application_name: String,
}

impl FeedState {
    /// Whether the feed is current (see the module doc).
    pub(super) fn ok(&self) -> bool {
        let checked = Duration::from_millis(self.checked_at.load(Ordering::SeqCst));
        self.listening.load(Ordering::SeqCst)
            && self.epoch.elapsed().saturating_sub(checked) < STALE_AFTER
    }

    /// Time since `epoch`: take it *before* reading the database, and pass
    /// it to [`FeedState::mark_checked_at`] once the read succeeded.
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn mark_checked(&self) {
        self.mark_checked_at(self.now());
    }

    /// Records a successful check whose database read started at `at`: the
    /// policy seen is current as of then, not as of when publishing the
    /// events behind it finished (a long backlog must not stretch the
    /// staleness bound).
    fn mark_checked_at(&self, at: Duration) {
        let at = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        self.checked_at.fetch_max(at, Ordering::SeqCst);
    }
}

/// The last audit sequence handed out and the policy revision.
pub(super) async fn read_state(pool: &PgPool) -> Result<(u64, i64), StoreError> {
    let (seq, policy): (i64, i64) = sqlx::query_as("SELECT audit_seq, policy FROM store_state")
        .fetch_one(pool)
        .await
        .map_err(db_err("reading the audit sequence and policy revision"))?;
    Ok((u64::try_from(seq).unwrap_or(0), policy))
}

/// Connects the listener (so a replica that cannot follow changes does not
/// start) and starts both tasks; they end with `stop`.
pub(super) async fn start(
    connect: &PgConnectOptions,
    acquire_timeout: Duration,
    audit_seq: u64,
    policy: i64,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Result<Arc<FeedState>, StoreError> {
    let mut tag = [0u8; 4];
    getrandom::fill(&mut tag)
        .map_err(|e| StoreError::Postgres(format!("naming the change feed: {e}")))?;
    let application_name = format!("{APPLICATION_NAME}-feed-{}", hex::encode(tag));
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(connect.clone().application_name(&application_name));
    let listener = listen(&pool)
        .await
        .map_err(db_err("listening for changes"))?;
    let state = Arc::new(FeedState {
        listening: AtomicBool::new(true),
        checked_at: AtomicU64::new(0),
        epoch: Instant::now(),
        wake: Notify::new(),
        reconnected: AtomicBool::new(false),
        published: AtomicU64::new(audit_seq),
        application_name,
    });
    state.mark_checked();
    tracing::debug!(application_name = %state.application_name, "change feed listening");
    let listener_task = run_listener(pool.clone(), listener, state.clone());
    let follower_task = run_follower(pool, state.clone(), shared, policy);
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = listener_task => {}
            () = follower_task => {}
        }
    });
    Ok(state)
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // On loss, return at once: this task reconnects, after saying so.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn run_listener(pool: PgPool, first: PgListener, state: Arc<FeedState>) {
    let mut listener = Some(first);
    let mut delay = RECONNECT_AFTER;
    loop {
        let mut current = match listener.take() {
            Some(current) => current,
            None => match listen(&pool).await {
                Ok(current) => {
                    tracing::info!("change feed reconnected");
                    state.reconnected.store(true, Ordering::SeqCst);
                    current
                }
                Err(err) => {
                    tracing::warn!(error = %db_err("reconnecting the change feed")(err), "change feed still down");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RECONNECT_MAX);
                    continue;
                }
            },
        };
        delay = RECONNECT_AFTER;
        state.listening.store(true, Ordering::SeqCst);
        state.wake.notify_one();
        let lost = loop {
            match current.try_recv().await {
                Ok(Some(_)) => state.wake.notify_one(),
                Ok(None) => break "connection closed".to_owned(),
                Err(err) => break db_err("listening for changes")(err).to_string(),
            }
        };
        state.listening.store(false, Ordering::SeqCst);
        tracing::warn!(reason = %lost, "change feed lost; policy is re-read until it is back");
        drop(current);
        tokio::time::sleep(delay).await;
    }
}

async fn run_follower(pool: PgPool, state: Arc<FeedState>, shared: Arc<Shared>, mut policy: i64) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.wake.notified() => {}
        }
        let reconnected = state.reconnected.swap(false, Ordering::SeqCst);
        let started = state.now();
        match catch_up(&pool, &state, &shared, &mut policy).await {
            Ok(()) => {
                state.mark_checked_at(started);
                if failing {
                    tracing::info!("change feed checks succeed again");
                    failing = false;
                }
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "change feed cannot read the database");
                    failing = true;
                }
            }
        }
        if reconnected {
            // Notifications sent while the listener was away are lost;
            // whatever was derived meanwhile is re-derived.
            shared.bump_generation();
        }
    }
}

/// Bumps the generation if the policy revision moved, then publishes every
/// audit event committed since the last one published.
async fn catch_up(
    pool: &PgPool,
    state: &FeedState,
    shared: &Shared,
    policy: &mut i64,
) -> Result<(), StoreError> {
    let (last_seq, revision) = read_state(pool).await?;
    if revision != *policy {
        *policy = revision;
        shared.bump_generation();
    }
    loop {
        let from = state.published.load(Ordering::SeqCst);
        if from >= last_seq {
            return Ok(());
        }
        let rows = audit::after(pool, from, last_seq).await?;
        let Some(last) = rows.last().map(|(seq, _)| *seq) else {
            // A gap (only an import can leave one): nothing more to read.
            state.published.fetch_max(last_seq, Ordering::SeqCst);
            return Ok(());
        };
        let mut events = Vec::with_capacity(rows.len());
        for (seq, event) in rows {
            match event {
                Ok(event) => events.push(event),
                // Subscribers miss it; the log keeps it for whoever reads it.
                Err(err) => {
                    tracing::error!(sequence = seq, error = %err, "audit event not published")
                }
            }
        }
        // Only this task publishes; `published` moves ahead of it only
        // after an import, whose events are not live.
        if state.published.load(Ordering::SeqCst) == from {
            shared.publish(events);
        }
        state.published.fetch_max(last, Ordering::SeqCst);
    }
}
