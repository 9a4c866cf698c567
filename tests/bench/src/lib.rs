//! `toolgate-bench`: what toolgated adds to each tool call over calling
//! Salesforce (sfsim) directly, and how it behaves as users, sessions and
//! tools grow. Prints figures; asserts nothing about speed.
//!
//! Module map:
//! - [`daemon`]: the real `toolgated` as a child process (ready line, stop).
//! - [`procfs`]: the child's CPU time and memory from `/proc`.
//! - [`pg`]: the PostgreSQL store: a fresh database, the shared secrets
//!   every replica needs, and the server's CPU time.
//! - [`control`]: seeding through the control API; connecting users
//!   through sfsim's OAuth login page; direct Salesforce tokens.
//! - [`mcp`]: a minimal streamable-HTTP MCP client (raw JSON-RPC).
//! - [`load`]: open-loop and closed-loop load, HDR histograms.
//! - [`report`]: the printed tables.
//! - [`sections`]: the benchmark sections, run in order by [`run`].
//! - [`telemetry`]: section 8, the cost of metrics and tracing per call.

pub mod control;
pub mod daemon;
pub mod load;
pub mod mcp;
pub mod pg;
pub mod procfs;
pub mod report;
pub mod sections;
pub mod telemetry;

use std::path::PathBuf;
use std::time::Duration;

pub use sections::run;

/// What to run and how big. [`Options::full`] is the documented run (under
/// 5 minutes on 2 cores); [`Options::quick`] is CI's smoke run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `toolgated` binary (default: next to this binary).
    pub toolgated: Option<PathBuf>,
    /// Open-loop rates, tool calls per second.
    pub rates: Vec<u32>,
    /// How long each open-loop rate runs, per path.
    pub rate_duration: Duration,
    /// Closed-loop workers (concurrent callers) for saturation.
    pub workers: usize,
    /// How long the closed loop runs, per path.
    pub closed_duration: Duration,
    /// toolgate users, each with its own Salesforce user and connection.
    pub users: usize,
    /// MCP sessions per user carrying the load.
    pub sessions_per_user: usize,
    /// Idle MCP session counts to measure memory at (cumulative).
    pub idle_sessions: Vec<usize>,
    /// The daemon's MCP session idle timeout in the idle-sessions section:
    /// memory is measured again after it closed them.
    pub session_idle: Duration,
    /// Tools stored for the tools/list and start-up sections.
    pub stored_tools: usize,
    /// Entitled tool counts for tools/list.
    pub entitled: Vec<usize>,
    /// tools/list requests per entitled count.
    pub list_requests: usize,
    /// Tools in the BatchUpdateTools request.
    pub batch_tools: usize,
    /// Audit events stored for the start-up measurement.
    pub audit_events: usize,
    /// Concurrent RegisterServer calls while filling the tool store.
    pub register_concurrency: usize,
    /// How long the tools part waits idle before measuring RSS a second
    /// time, and the sessions part after the idle timeout before measuring
    /// what came back: jemalloc's background threads return freed pages
    /// after its dirty-page decay (10 s by default). Zero skips the tools
    /// part's second reading.
    pub rss_settle: Duration,
    /// Run only this part (for profiling one part); `None` runs all.
    pub only: Option<Part>,
    /// The store the calls part (sections 1-3) runs on. The sessions and
    /// tools parts always run on the embedded store; the replicas part
    /// always on PostgreSQL.
    pub store: StoreKind,
    /// Replica counts for the replicas part, e.g. `[1, 2, 3]`.
    pub replicas: Vec<usize>,
}

/// Which store `toolgated` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StoreKind {
    /// sled under `--data-dir` (the default install).
    #[default]
    Embedded,
    /// PostgreSQL (`--database-url`): a fresh database on the server
    /// `TOOLGATE_TEST_DATABASE_URL` names, else on a private server this
    /// process starts (`initdb` and `pg_ctl` from `PATH`; see
    /// `toolgate-pgtemp`).
    Postgres,
}

impl StoreKind {
    /// How section headers name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Embedded => "embedded store (sled)",
            Self::Postgres => "PostgreSQL store",
        }
    }
}

/// The parts of a run, each on its own daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Set-up, open loop and closed loop (sections 1-3).
    Calls,
    /// Memory with idle MCP sessions (section 4).
    Sessions,
    /// 10,000 tools: tools/list, tools/call, BatchUpdateTools, start-up
    /// (section 5).
    Tools,
    /// calls/s with 1, 2 and 3 replicas on one PostgreSQL (section 7). In a
    /// full run only with `--store postgres`.
    Replicas,
    /// The cost of metrics and tracing per tool call: metrics off, on, and
    /// on with traces exported over OTLP (section 8, embedded store).
    Telemetry,
}

impl Options {
    /// Whether `part` runs: `only` if given, else every part but
    /// [`Part::Replicas`], which needs `store` to be PostgreSQL.
    pub fn runs(&self, part: Part) -> bool {
        match self.only {
            Some(only) => only == part,
            None => part != Part::Replicas || self.store == StoreKind::Postgres,
        }
    }

    /// The full run.
    pub fn full() -> Self {
        Self {
            toolgated: None,
            rates: vec![500, 1000, 2000],
            rate_duration: Duration::from_secs(8),
            workers: 32,
            closed_duration: Duration::from_secs(8),
            users: 20,
            sessions_per_user: 5,
            idle_sessions: vec![1_000, 10_000],
            session_idle: Duration::from_secs(60),
            stored_tools: 10_000,
            entitled: vec![10, 100, 1_000],
            list_requests: 50,
            batch_tools: 1_000,
            audit_events: 100_000,
            register_concurrency: 8,
            rss_settle: Duration::from_secs(12),
            only: None,
            store: StoreKind::Embedded,
            replicas: vec![1, 2, 3],
        }
    }

    /// The smoke run: every section, tiny numbers.
    pub fn quick() -> Self {
        Self {
            toolgated: None,
            rates: vec![200, 500],
            rate_duration: Duration::from_secs(1),
            workers: 8,
            closed_duration: Duration::from_secs(1),
            users: 3,
            sessions_per_user: 2,
            idle_sessions: vec![100],
            session_idle: Duration::from_secs(3),
            stored_tools: 200,
            entitled: vec![10, 100],
            list_requests: 20,
            batch_tools: 100,
            audit_events: 5_000,
            register_concurrency: 4,
            rss_settle: Duration::ZERO,
            only: None,
            store: StoreKind::Embedded,
            replicas: vec![1, 2, 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_run_adds_replicas_only_on_postgres() {
        let mut opts = Options::quick();
        assert!(opts.runs(Part::Calls) && opts.runs(Part::Tools));
        assert!(!opts.runs(Part::Replicas), "embedded full run");
        opts.store = StoreKind::Postgres;
        assert!(opts.runs(Part::Replicas) && opts.runs(Part::Sessions));
        opts.store = StoreKind::Embedded;
        opts.only = Some(Part::Replicas);
        assert!(opts.runs(Part::Replicas), "--only replicas on any store");
        assert!(!opts.runs(Part::Calls));
    }
}
