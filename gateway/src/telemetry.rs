//! Logging setup: `tracing` to stderr, as text or JSON lines, filtered by
//! the configured level. Nothing in the daemon logs secrets; this module
//! only chooses where and how lines go.

use crate::config::LogFormat;

/// The filter directives in force for the configured `level`: rmcp's own
/// logs are held at `warn` unless `level` names `rmcp`, because rmcp logs
/// MCP session ids at `info` ("create new session", its session span) and
/// one line per session event. `info,rmcp=debug` brings them back.
pub fn directives(level: &str) -> String {
    if level.contains("rmcp") {
        level.to_owned()
    } else if level.trim().is_empty() {
        "rmcp=warn".to_owned()
    } else {
        format!("{level},rmcp=warn")
    }
}

/// Installs the global subscriber. Errors if one is already installed or
/// the filter does not parse.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(directives(level))?;
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

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn rmcp_is_held_at_warn_unless_named() {
        assert_eq!(directives("info"), "info,rmcp=warn");
        assert_eq!(
            directives("toolgate_gateway=debug,info"),
            "toolgate_gateway=debug,info,rmcp=warn"
        );
        assert_eq!(directives("info,rmcp=debug"), "info,rmcp=debug");
    }
}
