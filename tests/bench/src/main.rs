//! `toolgate-bench`: flags, then [`toolgate_bench::run`]. Build with
//! `cargo build --release -p toolgate-gateway -p toolgate-bench` and run
//! `target/release/toolgate-bench` (or `--quick` for the CI smoke run;
//! `--store postgres` for the calls part on PostgreSQL plus the replicas
//! part).

use std::path::PathBuf;

use clap::Parser;
use toolgate_bench::{Options, Part, StoreKind};

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "toolgate-bench",
    about = "What toolgated adds per tool call over direct sfsim calls, and how it scales"
)]
struct Args {
    /// Tiny numbers everywhere (CI smoke run, well under 30 s in release).
    #[arg(long)]
    quick: bool,
    /// The toolgated binary (default: next to this one).
    #[arg(long)]
    toolgated: Option<PathBuf>,
    /// Run only one part (each part starts its own daemon).
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// The store of the calls part (sections 1-3). `postgres` also adds the
    /// replicas part to a full run.
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    store: StoreKind,
    /// Open-loop rates in calls/s, e.g. `100,250,500` (default 500,1000,2000;
    /// quick 200,500).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<u32>>,
    /// Replica counts for the replicas part, e.g. `1,2,3`.
    #[arg(long, value_delimiter = ',')]
    replicas: Option<Vec<usize>>,
    /// Idle MCP session counts to measure memory at, e.g. `5000,20000`.
    #[arg(long, value_delimiter = ',')]
    idle_sessions: Option<Vec<usize>>,
    /// The session idle timeout in the idle-sessions section, in seconds.
    #[arg(long)]
    session_idle_secs: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    opts.toolgated = args.toolgated;
    opts.only = args.only;
    opts.store = args.store;
    if let Some(rates) = args.rates {
        anyhow::ensure!(
            rates.iter().all(|&r| r > 0),
            "--rates must be at least 1 call/s"
        );
        opts.rates = rates;
    }
    if let Some(counts) = args.replicas {
        anyhow::ensure!(
            counts.iter().all(|&n| n > 0),
            "--replicas counts must be at least 1"
        );
        opts.replicas = counts;
    }
    if let Some(counts) = args.idle_sessions {
        opts.idle_sessions = counts;
    }
    if let Some(secs) = args.session_idle_secs {
        opts.session_idle = std::time::Duration::from_secs(secs);
    }
    toolgate_bench::run(&opts).await?;
    Ok(())
}
