//! `toolgated`: parse flags, set up logging, run the daemon until SIGINT or
//! SIGTERM.

use clap::Parser;
use toolgate_gateway::{app, config, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = config::Args::parse();
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
