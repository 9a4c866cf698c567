//! `toolgated`: parse flags, set up logging, run the daemon until SIGINT or
//! SIGTERM. With `--health-check`, probe a running daemon instead.

use clap::Parser;
use toolgate_gateway::{app, config, healthcheck, telemetry};

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
    let config = match config::Config::resolve(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("toolgated: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(err) = telemetry::init(&config.log_level, config.log_format) {
        eprintln!("toolgated: {err:#}");
        return std::process::ExitCode::from(2);
    }
    match app::run(config, config::Secrets::from_env(), app::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("toolgated: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
