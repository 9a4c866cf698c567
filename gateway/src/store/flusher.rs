//! The background thread that puts lone audit appends (tool calls) on disk,
//! sharing one sled flush among every event appended meanwhile, and the
//! figures it keeps about how long events waited.
//!
//! Schedule: a flush starts when an event is waiting and at least
//! [`AUDIT_FLUSH_INTERVAL`] has passed since the previous flush *started*.
//! After a flush that took longer than the interval, the next one starts at
//! once. (It used to sleep the interval after every flush, so an event
//! appended at the start of a slow flush waited that flush, then 10 ms, then
//! its own flush.) An event appended at `t` is therefore on disk by
//! `t + max(interval, F1) + F2`, where `F1` is a flush already under way at
//! `t` and `F2` the flush that takes it. Flush times are sled's: writing the
//! log buffer and `sync_file_range` on it, so they are the disk's.
//!
//! It owns no data: it calls the flush it is given, and records when
//! writers mark events as waiting ([`FlushShared::mark_pending`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::AUDIT_FLUSH_INTERVAL;

/// What the background flusher has done since the store opened; see
/// [`super::Store::audit_flush_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditFlushStats {
    /// Background flushes run.
    pub flushes: u64,
    /// The longest background flush, microseconds.
    pub max_flush_us: u64,
    /// The longest time an event waited for the disk, microseconds: from
    /// the moment it was in the database (before its tool call was
    /// answered) to the end of the flush that took it. An upper bound: an
    /// event whose mark lands just after a flush began is counted against
    /// the next flush.
    pub max_lag_us: u64,
}

/// State shared by the writers and the flusher thread.
#[derive(Debug)]
pub(super) struct FlushShared {
    /// All times are microseconds since this instant.
    epoch: Instant,
    /// When the oldest event no started flush has taken was appended,
    /// microseconds since `epoch` plus one; 0 when none waits.
    pending_since: AtomicU64,
    /// Events appended since the last flush started (for
    /// [`crate::metrics::AUDIT_QUEUE_DEPTH`]).
    pub(super) waiting: AtomicU64,
    flushes: AtomicU64,
    max_flush_us: AtomicU64,
    max_lag_us: AtomicU64,
}

impl FlushShared {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            pending_since: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            max_flush_us: AtomicU64::new(0),
            max_lag_us: AtomicU64::new(0),
        })
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Called by a writer after its events are in the database and before
    /// it wakes the flusher: the next flush to start takes them.
    pub(super) fn mark_pending(&self, now: Instant) {
        let stamp = self.micros(now).saturating_add(1);
        // Only the oldest waiting event counts; a later one rides its flush.
        let _ = self
            .pending_since
            .compare_exchange(0, stamp, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Called by the flusher just before a flush: when the oldest waiting
    /// event was appended, or `None` if every marked event was taken by an
    /// earlier flush.
    fn take_pending(&self) -> Option<Instant> {
        match self.pending_since.swap(0, Ordering::AcqRel) {
            0 => None,
            stamp => Some(self.epoch + Duration::from_micros(stamp - 1)),
        }
    }

    fn record(&self, oldest: Instant, started: Instant, ended: Instant) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let took = self.micros(ended).saturating_sub(self.micros(started));
        let lag = self.micros(ended).saturating_sub(self.micros(oldest));
        self.max_flush_us.fetch_max(took, Ordering::Relaxed);
        self.max_lag_us.fetch_max(lag, Ordering::Relaxed);
        tracing::debug!(
            waited_us = self.micros(started).saturating_sub(self.micros(oldest)),
            flush_us = took,
            lag_us = lag,
            "audit events flushed"
        );
    }

    pub(super) fn stats(&self) -> AuditFlushStats {
        AuditFlushStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            max_flush_us: self.max_flush_us.load(Ordering::Relaxed),
            max_lag_us: self.max_lag_us.load(Ordering::Relaxed),
        }
    }
}

/// How long to wait before the next flush, `now`, when the previous one
/// started at `last_start`: the rest of the interval, measured from the
/// previous flush's start, so a flush longer than the interval is followed
/// at once.
pub(super) fn wait_before_flush(last_start: Option<Instant>, now: Instant) -> Duration {
    last_start.map_or(Duration::ZERO, |start| {
        (start + AUDIT_FLUSH_INTERVAL).saturating_duration_since(now)
    })
}

/// Time and sleep for the flusher loop, so a test can run it on a
/// simulated clock.
pub(super) trait Clock {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration);
}

/// The real clock.
pub(super) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The flusher loop: runs until every sender of `woken` is dropped. Each
/// wake-up means "an event was marked waiting"; wake-ups that arrive while
/// a flush runs merge into one (the channel holds one).
pub(super) fn run<E: std::fmt::Display>(
    woken: &std::sync::mpsc::Receiver<()>,
    shared: &FlushShared,
    clock: &impl Clock,
    mut flush: impl FnMut() -> Result<(), E>,
) {
    let mut last_start: Option<Instant> = None;
    while woken.recv().is_ok() {
        let wait = wait_before_flush(last_start, clock.now());
        if !wait.is_zero() {
            clock.sleep(wait);
        }
        // Wake-ups sent before this point are for events this flush takes.
        while woken.try_recv().is_ok() {}
        let Some(oldest) = shared.take_pending() else {
            continue; // Every marked event was taken by an earlier flush.
        };
        let started = clock.now();
        last_start = Some(started);
        let taken = shared.waiting.swap(0, Ordering::AcqRel);
        if let Err(err) = flush() {
            tracing::error!(error = %err, "cannot flush audit events to disk");
        }
        let ended = clock.now();
        metrics::gauge!(crate::metrics::AUDIT_QUEUE_DEPTH).decrement(taken as f64);
        metrics::histogram!(crate::metrics::AUDIT_FLUSH_DURATION)
            .record(ended.saturating_duration_since(started).as_secs_f64());
        shared.record(oldest, started, ended);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::sync::mpsc;

    use super::*;

    /// A clock that moves only when the flusher sleeps or a flush runs.
    struct SimClock {
        now: Cell<Instant>,
        sleeps: RefCell<Vec<Duration>>,
    }

    impl Clock for SimClock {
        fn now(&self) -> Instant {
            self.now.get()
        }

        fn sleep(&self, duration: Duration) {
            self.sleeps.borrow_mut().push(duration);
            self.now.set(self.now.get() + duration);
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_interval_runs_from_the_previous_flush_start() {
        let t0 = Instant::now();
        assert_eq!(wait_before_flush(None, t0), Duration::ZERO, "first flush");
        assert_eq!(wait_before_flush(Some(t0), t0 + 3 * MS), 7 * MS);
        assert_eq!(wait_before_flush(Some(t0), t0 + 10 * MS), Duration::ZERO);
        assert_eq!(
            wait_before_flush(Some(t0), t0 + 40 * MS),
            Duration::ZERO,
            "after a slow flush the next one starts at once"
        );
    }

    /// Drives the loop on a simulated clock: each flush takes `flush_ms`;
    /// before flush `i` ends, `arrivals[i]` events are appended (marked
    /// and woken) at that flush's start. Returns the sleeps the flusher
    /// asked for, the flushes run and the stats.
    fn simulate(flush_ms: u64, arrivals: &[usize]) -> (Vec<Duration>, usize, AuditFlushStats) {
        let shared = FlushShared::new();
        let clock = SimClock {
            now: Cell::new(shared.epoch),
            sleeps: RefCell::new(Vec::new()),
        };
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        // The first event, appended at time 0.
        shared.mark_pending(clock.now());
        wake.try_send(()).unwrap();
        let mut flushes = 0;
        let wake = RefCell::new(Some(wake));
        run(&woken, &shared, &clock, || {
            // An event appended as the flush starts is not in it.
            if let Some(n) = arrivals.get(flushes) {
                for _ in 0..*n {
                    shared.mark_pending(clock.now());
                    if let Some(w) = wake.borrow().as_ref() {
                        let _ = w.try_send(());
                    }
                }
            }
            clock
                .now
                .set(clock.now.get() + Duration::from_millis(flush_ms));
            flushes += 1;
            if flushes >= arrivals.len() {
                // No more writers: the loop ends once the channel drains.
                wake.borrow_mut().take();
            }
            Ok::<(), std::convert::Infallible>(())
        });
        let sleeps = clock.sleeps.borrow().clone();
        (sleeps, flushes, shared.stats())
    }

    #[test]
    fn an_event_appended_during_a_slow_flush_waits_for_no_interval_after_it() {
        // 40 ms flushes (a busy disk); an event arrives as each flush starts.
        let (sleeps, flushes, stats) = simulate(40, &[1, 1, 1, 0]);
        assert_eq!(flushes, 4);
        assert!(
            sleeps.is_empty(),
            "no 10 ms wait after a slow flush: {sleeps:?}"
        );
        // Appended at a flush's start, on disk at the end of the next one:
        // two flush times, not 10 ms more.
        assert_eq!(stats.max_lag_us, 80_000);
        assert_eq!(stats.max_flush_us, 40_000);
    }

    #[test]
    fn fast_flushes_are_spaced_by_the_interval_from_their_start() {
        // 2 ms flushes; while writers keep appending, flushes start every
        // 10 ms (8 ms of waiting after each 2 ms flush), never more often.
        let (sleeps, flushes, stats) = simulate(2, &[3, 3, 3, 0]);
        assert_eq!(flushes, 4);
        assert_eq!(sleeps, vec![8 * MS; 3]);
        // Worst event: appended at a flush's start, flushed 10 ms later in
        // a 2 ms flush.
        assert_eq!(stats.max_lag_us, 12_000);
    }

    #[test]
    fn a_wake_for_an_event_an_earlier_flush_took_runs_no_flush() {
        let shared = FlushShared::new();
        let clock = SimClock {
            now: Cell::new(shared.epoch),
            sleeps: RefCell::new(Vec::new()),
        };
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        // A wake whose mark was already taken (its event is on disk).
        wake.try_send(()).unwrap();
        drop(wake);
        let mut flushes = 0;
        run(&woken, &shared, &clock, || {
            flushes += 1;
            Ok::<(), std::convert::Infallible>(())
        });
        assert_eq!(flushes, 0);
        assert_eq!(shared.stats(), AuditFlushStats::default());
    }
}
