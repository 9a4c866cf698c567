//! `toolgated`: parse flags, set up logging, run the daemon until SIGINT or
//! SIGTERM. With `--health-check`, probe a running daemon instead.

use clap::Parser;

/// jemalloc with background threads (the default `jemalloc` feature): they
/// return the pages of freed memory (closed MCP sessions) to the system,
/// which glibc's malloc kept: after 5,000 sessions idled out, RSS fell back
/// to 91 MiB instead of staying at 353 MiB (debug build, BENCHMARKS.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use toolgate_gateway::{app, config, healthcheck, listener, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = config::Args::parse();
    if args.health_check {
        // Exit codes as Docker's HEALTHCHECK reads them: 0 healthy, 1
        // unhealthy (2 is reserved there, so a bad config is 1 too).
        return match healthcheck::run(args).await {
            Ok(line) => {
                println!("{line}");
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("unhealthy: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(config::Command::Store(config::StoreCommand::Copy { from, to })) = &args.command {
        return match app::store_copy(from, to, &config::Secrets::from_env()).await {
            Ok((report, from, to)) => {
                println!(
                    "copied {} records, {} secrets (still sealed) and {} audit events from {from} to {to}",
                    report.records, report.secrets, report.audit_events
                );
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("toolgated store copy: {err:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(config::Command::Audit(config::AuditCommand::Verify { store })) = &args.command {
        return match app::audit_verify(store, &config::Secrets::from_env()).await {
            Ok((report, _)) => {
                println!("{report}");
                match report {
                    toolgate_gateway::store::ChainReport::Intact { .. } => {
                        std::process::ExitCode::SUCCESS
                    }
                    toolgate_gateway::store::ChainReport::Broken(_) => {
                        std::process::ExitCode::FAILURE
                    }
                }
            }
            Err(err) => {
                eprintln!("toolgated audit verify: {err:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let config = match config::Config::resolve(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("toolgated: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(&config.log_level, config.log_format) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("toolgated: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // Before any listener: a cap of http_max_connections needs that many
    // descriptors, and the default soft limit is often 1024.
    match listener::raise_open_files_limit() {
        Ok(limit)
            if limit
                < u64::try_from(config.http_max_connections)
                    .unwrap_or(u64::MAX)
                    .saturating_add(listener::RESERVED_DESCRIPTORS) =>
        {
            tracing::warn!(
                open_files_limit = limit,
                http_max_connections = config.http_max_connections,
                "the open-files limit leaves too few descriptors for http_max_connections; raise LimitNOFILE (or ulimit -n) or lower http_max_connections"
            );
        }
        Ok(limit) => tracing::debug!(open_files_limit = limit, "open-files limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-files limit"),
    }
    let ran = app::run(config, config::Secrets::from_env(), app::shutdown_signal()).await;
    // The last spans (those of the calls that ended the run) go out first.
    telemetry.shutdown().await;
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("toolgated: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
