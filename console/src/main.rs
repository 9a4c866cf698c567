//! `toolgate`: the admin console. See the crate docs of `toolgate_console`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = toolgate_console::cli::Args::parse();
    match toolgate_console::terminal::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("toolgate: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
