//! `toolgate-bench`: flags, then [`toolgate_bench::run`]. Build with
//! `cargo build --release -p toolgate-gateway -p toolgate-bench` and run
//! `target/release/toolgate-bench` (or `--quick` for the CI smoke run).

use std::path::PathBuf;

use clap::Parser;
use toolgate_bench::{Options, Part};

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
    toolgate_bench::run(&opts).await?;
    Ok(())
}
