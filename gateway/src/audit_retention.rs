//! Audit retention: a background sweeper that prunes the oldest audit
//! events by age (`--audit-retention-days`) and by count
//! (`--audit-retention-max-events`). It deletes in small batches
//! ([`BATCH`]), each its own short write, so tool calls appending events
//! never wait long; it runs under the store's named lock
//! [`LOCK`], so of several replicas on one PostgreSQL database one prunes
//! at a time. Every batch records the newest pruned event as the retention
//! anchor ([`crate::store::Store::prune_audit`]), from which `toolgated
//! audit verify` checks the events kept.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::now_ms;
use crate::store::{Store, StoreError};

/// How often the sweeper looks for events to prune.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Most events deleted in one write.
pub const BATCH: usize = 500;
/// The named lock held while pruning.
pub const LOCK: &str = "audit-retention";

/// How long and how many audit events are kept (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Events older than this are pruned.
    pub max_age: Option<Duration>,
    /// Beyond this many events, the oldest are pruned.
    pub max_events: Option<u64>,
}

impl Retention {
    /// Whether anything is ever pruned.
    pub fn is_enabled(&self) -> bool {
        self.max_age.is_some() || self.max_events.is_some()
    }
}

/// Prunes, oldest first, every event older than `retention.max_age` before
/// `now` (Unix ms) and every event beyond the newest
/// `retention.max_events`. Returns how many were pruned.
///
/// Errors: a store error (what was pruned before it stays pruned, with its
/// anchor).
pub async fn sweep(store: &Store, retention: Retention, now: i64) -> Result<u64, StoreError> {
    if !retention.is_enabled() {
        return Ok(0);
    }
    let _lock = store.named_lock(LOCK).await?;
    let last = store.last_audit_sequence();
    // Prune every event numbered up to this, whatever its age.
    let by_count = retention.max_events.map_or(0, |n| last.saturating_sub(n));
    // Prune every event stamped before this.
    let before = retention.max_age.map_or(i64::MIN, |age| {
        now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
    });
    let mut pruned = 0;
    loop {
        let oldest = store.audit_forward(1, last, BATCH).await?;
        // Times follow sequence order, so the events to prune are a prefix.
        let Some(up_to) = oldest
            .iter()
            .take_while(|e| e.sequence <= by_count || e.time < before)
            .last()
            .map(|e| e.sequence)
        else {
            break;
        };
        let deleted = store.prune_audit(up_to, BATCH).await?;
        if deleted == 0 {
            break;
        }
        pruned += deleted;
        tokio::task::yield_now().await;
    }
    Ok(pruned)
}

/// Runs [`sweep`] every `every` until `stop`; logs what it pruned. Without
/// a limit it only waits for `stop`: the daemon treats a task that ends
/// before shutdown as a failed listener.
pub async fn run_sweeper(
    store: Arc<Store>,
    retention: Retention,
    every: Duration,
    stop: CancellationToken,
) {
    if !retention.is_enabled() {
        stop.cancelled().await;
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => match sweep(&store, retention, now_ms()).await {
                Ok(0) => {}
                Ok(pruned) => {
                    let anchor = store.audit_anchor().await.ok().flatten().map(|a| a.sequence);
                    tracing::info!(
                        pruned,
                        pruned_through_sequence = anchor,
                        max_age_days = retention.max_age.map(|a| a.as_secs() / 86_400),
                        max_events = retention.max_events,
                        "pruned audit events past retention"
                    );
                }
                Err(err) => tracing::warn!(error = %err, "cannot prune audit events"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Action;
    use crate::crypto::MasterKey;
    use crate::model::AuditEvent;
    use crate::store::{ChainReport, DirLock};

    fn open(dir: &std::path::Path) -> Store {
        Store::open(
            dir,
            MasterKey::parse(&"11".repeat(32), "test").unwrap(),
            DirLock::acquire(dir).unwrap(),
        )
        .unwrap()
    }

    async fn append(store: &Store, n: usize) {
        for i in 0..n {
            store
                .append_audit(vec![AuditEvent::allowed(
                    "system",
                    Action::ToolCall,
                    format!("tool/{i}"),
                )])
                .await
                .unwrap();
        }
    }

    async fn kept(store: &Store) -> Vec<u64> {
        store
            .audit_forward(1, store.last_audit_sequence(), usize::MAX)
            .await
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect()
    }

    #[tokio::test]
    async fn by_count_keeps_the_newest_in_batches_and_the_chain_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        append(&store, 1_234).await;
        let retention = Retention {
            max_age: None,
            max_events: Some(100),
        };
        assert_eq!(sweep(&store, retention, now_ms()).await.unwrap(), 1_134);
        assert_eq!(kept(&store).await, (1_135..=1_234).collect::<Vec<_>>());
        assert_eq!(store.audit_anchor().await.unwrap().unwrap().sequence, 1_134);
        assert_eq!(sweep(&store, retention, now_ms()).await.unwrap(), 0);
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            ChainReport::Intact {
                events: 100,
                range: Some((1_135, 1_234)),
                ..
            }
        ));
    }

    #[tokio::test]
    async fn by_age_prunes_only_events_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        append(&store, 5).await;
        let events = store.audit_forward(1, 5, 10).await.unwrap();
        let day = Duration::from_secs(86_400);
        let retention = Retention {
            max_age: Some(day),
            max_events: None,
        };
        // A day after the third event was stamped, only the events stamped
        // before that time are older than a day.
        let now = events[2].time + 86_400_000;
        let older = events.iter().filter(|e| e.time < events[2].time).count() as u64;
        assert_eq!(sweep(&store, retention, now).await.unwrap(), older);
        // A day after the last, every one is.
        let now = events[4].time + 86_400_001;
        assert_eq!(sweep(&store, retention, now).await.unwrap(), 5 - older);
        assert!(kept(&store).await.is_empty());
        // New events chain on from the anchor.
        append(&store, 2).await;
        assert_eq!(
            store.verify_audit_chain().await.unwrap().to_string(),
            "audit chain intact: 2 events, #6..#7 (events up to #5 were pruned by retention; the chain starts from its recorded hash)"
        );
    }

    #[tokio::test]
    async fn nothing_is_pruned_without_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        append(&store, 3).await;
        assert_eq!(
            sweep(&store, Retention::default(), i64::MAX).await.unwrap(),
            0
        );
        assert_eq!(kept(&store).await, vec![1, 2, 3]);
    }
}
