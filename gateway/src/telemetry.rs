//! Logging setup: `tracing` to stderr, as text or JSON lines, filtered by
//! the configured level. Nothing in the daemon logs secrets; this module
//! only chooses where and how lines go.

use crate::config::LogFormat;

/// Installs the global subscriber. Errors if one is already installed or
/// the filter does not parse.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
