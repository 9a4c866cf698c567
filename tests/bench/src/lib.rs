//! `toolgate-bench`: what toolgated adds to each tool call over calling
//! Salesforce (sfsim) directly, and how it behaves as users, sessions and
//! tools grow. Prints figures; asserts nothing about speed.
//!
//! Module map:
//! - [`daemon`]: the real `toolgated` as a child process (ready line, stop).
//! - [`procfs`]: the child's CPU time and memory from `/proc`.
//! - [`control`]: seeding through the control API; connecting users
//!   through sfsim's OAuth login page; direct Salesforce tokens.
//! - [`mcp`]: a minimal streamable-HTTP MCP client (raw JSON-RPC).
//! - [`load`]: open-loop and closed-loop load, HDR histograms.
//! - [`report`]: the printed tables.
//! - [`sections`]: the benchmark sections, run in order by [`run`].

pub mod control;
pub mod daemon;
pub mod load;
pub mod mcp;
pub mod procfs;
pub mod report;
pub mod sections;

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
    /// Run only this part (for profiling one part); `None` runs all.
    pub only: Option<Part>,
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
}

impl Options {
    /// Whether `part` runs.
    pub fn runs(&self, part: Part) -> bool {
        self.only.is_none_or(|only| only == part)
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
            only: None,
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
            only: None,
        }
    }
}
