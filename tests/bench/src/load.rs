//! The load generator: the same logical call through the gateway (MCP
//! `tools/call`) or straight to sfsim (REST), open-loop at a fixed rate or
//! closed-loop with N workers, latencies in an HDR histogram (µs).
//!
//! Open loop: request `i` is due at `t0 + i / rate`; a sender wakes each
//! millisecond (tokio's timer granularity) and starts every request due.
//! Latency is measured from the actual send; how late sends were against
//! the schedule is reported separately (`lag`), so a generator that could
//! not keep up is visible rather than hidden.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::mcp::{self, Session};

/// A call that takes longer counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where one call goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// `tools/call` of a prebuilt request over these sessions, round robin.
    Gateway {
        /// Open sessions (of many users).
        sessions: Arc<Vec<Session>>,
        /// The `tools/call` JSON text after its id ([`mcp::call_body`]).
        body: Arc<str>,
    },
    /// `GET url` with these Salesforce access tokens, round robin.
    Direct {
        /// Plain HTTP client.
        http: reqwest::Client,
        /// The REST URL (same logical call as the tool).
        url: Arc<str>,
        /// `Bearer <access token>` per Salesforce user.
        auths: Arc<Vec<String>>,
    },
}

impl Target {
    /// Makes call number `i`; true if it succeeded (a tool result without
    /// `isError`, or HTTP 200).
    pub async fn call(&self, i: usize) -> bool {
        tokio::time::timeout(CALL_TIMEOUT, self.call_once(i))
            .await
            .unwrap_or(false)
    }

    async fn call_once(&self, i: usize) -> bool {
        match self {
            Self::Gateway { sessions, body } => {
                let s = &sessions[i % sessions.len()];
                matches!(s.request(&mcp::with_id(body)).await, Ok(r) if !mcp::is_error(&r))
            }
            Self::Direct { http, url, auths } => {
                let auth = &auths[i % auths.len()];
                match http.get(&**url).header("authorization", auth).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// Latency of successful calls, µs.
    pub latency: Histogram<u64>,
    /// Open loop: how late sends were against the schedule, µs.
    pub lag: Histogram<u64>,
    /// Calls that failed.
    pub errors: u64,
    /// Calls made.
    pub calls: u64,
    /// Wall time from the first send to the last answer.
    pub elapsed: Duration,
}

impl Run {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            lag: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
            calls: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn record(&mut self, ok: bool, latency: Duration) {
        self.calls += 1;
        if ok {
            self.latency
                .saturating_record(latency.as_micros().max(1) as u64);
        } else {
            self.errors += 1;
        }
    }

    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        (self.calls - self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Open loop: `rate` calls/s for `duration`.
pub async fn open_loop(target: &Target, rate: u32, duration: Duration) -> Run {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as usize;
    let run = Arc::new(Mutex::new(Run::new()));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next = 0usize;
    while next < total {
        tick.tick().await;
        let now = Instant::now();
        let due = ((now - start).as_secs_f64() * f64::from(rate)) as usize + 1;
        while next < due.min(total) {
            let scheduled = start + Duration::from_secs_f64(next as f64 / f64::from(rate));
            let lag = now.saturating_duration_since(scheduled);
            let target = target.clone();
            let run = run.clone();
            let i = next;
            tasks.spawn(async move {
                let sent = Instant::now();
                let ok = target.call(i).await;
                let took = sent.elapsed();
                let mut run = run.lock().unwrap_or_else(|p| p.into_inner());
                run.record(ok, took);
                run.lag.saturating_record(lag.as_micros().max(1) as u64);
            });
            next += 1;
        }
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut run = Arc::try_unwrap(run)
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_else(|arc| arc.lock().unwrap_or_else(|p| p.into_inner()).clone());
    run.elapsed = start.elapsed();
    run
}

/// Closed loop: `workers` concurrent callers, each calling again as soon
/// as the last answer came, for `duration`.
pub async fn closed_loop(target: &Target, workers: usize, duration: Duration) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let target = target.clone();
        tasks.spawn(async move {
            let mut run = Run::new();
            let mut i = w;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let ok = target.call(i).await;
                run.record(ok, sent.elapsed());
                i += workers;
            }
            run
        });
    }
    let mut total = Run::new();
    while let Some(Ok(run)) = tasks.join_next().await {
        total.latency.add(&run.latency).expect("same bounds");
        total.calls += run.calls;
        total.errors += run.errors;
    }
    total.elapsed = start.elapsed();
    total
}
