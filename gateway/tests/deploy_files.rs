//! `deploy/toolgate.example.toml` is loaded by the daemon's own config code
//! (the path `--config` takes), sets every key the file accepts, and
//! documents each one. The rest of `deploy/` is checked by
//! `tests/python/test_deploy.py`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use clap::CommandFactory;
use toolgate_gateway::config::{Args, Config, FileConfig, LogFormat};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/toolgate.example.toml")
}

/// The `key = value` lines of the example, with the comment block above each.
fn documented_keys() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(example()).unwrap();
    let mut keys = Vec::new();
    let mut comments = Vec::new();
    for line in text.lines().map(str::trim) {
        // A key shown commented out (its default is "none") is documented
        // as the last line of its own comment block.
        if let Some(shown) = line.strip_prefix("# ")
            && let Some((key, _)) = shown.split_once(" = ")
            && !key.contains(' ')
        {
            keys.push((key.to_owned(), std::mem::take(&mut comments)));
        } else if let Some(comment) = line.strip_prefix('#') {
            comments.push(comment.trim().to_owned());
        } else if line.is_empty() {
            comments.clear();
        } else {
            let (key, _) = line.split_once('=').expect("a `key = value` line");
            keys.push((key.trim().to_owned(), std::mem::take(&mut comments)));
        }
    }
    keys
}

#[test]
fn the_example_config_sets_every_key_through_the_daemons_loader() {
    // Through `--config`, as the daemon reads it. `Args::default()` reads no
    // environment, so TOOLGATE_* variables of the test run cannot mask keys.
    let args = Args {
        config: Some(example()),
        ..Args::default()
    };
    let config = Config::resolve(args).unwrap_or_else(|e| panic!("{e}"));

    // Every field of the file schema is set. No `..`: a key added to
    // `FileConfig` does not compile here until it is handled (and so added
    // to the example).
    let FileConfig {
        data_dir,
        http_addr,
        grpc_addr,
        metrics_addr,
        public_url,
        log_level,
        log_format,
        shutdown_timeout_secs,
        max_records_per_call,
        max_result_kib,
        upstream_timeout_secs,
        allowed_salesforce_domains,
        mcp_session_idle_secs,
        mcp_max_sessions_per_user,
        mcp_max_sessions,
        http_header_read_timeout_secs,
        http_idle_timeout_secs,
        http_max_connections,
        http_max_body_kib,
        http_max_header_kib,
        http_request_timeout_secs,
        database_url,
        database_max_connections,
        oauth_access_token_ttl_secs,
        extra_ca_file,
        audit_retention_days,
        audit_retention_max_events,
        audit_export,
    } = FileConfig::load(&example()).unwrap();
    // Empty in the example: no export.
    assert_eq!(audit_export, Some(vec![]));
    assert!(config.audit_export.is_empty());
    // 0 in the example: keep every event.
    assert_eq!(audit_retention_days, Some(0));
    assert_eq!(audit_retention_max_events, Some(0));
    assert!(!config.audit_retention.is_enabled());

    // ... and reaches the validated config.
    assert_eq!(Some(config.data_dir), data_dir);
    assert_eq!(Some(config.http_addr), http_addr);
    assert_eq!(Some(config.grpc_addr), grpc_addr);
    assert_eq!(config.metrics_addr.map(|a| a.to_string()), metrics_addr);
    assert_eq!(config.public_url, public_url);
    assert_eq!(Some(config.log_level), log_level);
    assert_eq!(Some(config.log_format), log_format);
    assert_eq!(
        Some(config.shutdown_timeout),
        shutdown_timeout_secs.map(Duration::from_secs)
    );
    assert_eq!(Some(config.max_records_per_call), max_records_per_call);
    assert_eq!(
        Some(config.max_result_bytes),
        max_result_kib.map(|kib| kib * 1024)
    );
    assert_eq!(
        Some(config.upstream_timeout),
        upstream_timeout_secs.map(Duration::from_secs)
    );
    assert_eq!(
        Some(config.salesforce_domains.extra().to_vec()),
        allowed_salesforce_domains
    );
    assert_eq!(
        Some(config.mcp_session_idle_timeout),
        mcp_session_idle_secs.map(Duration::from_secs)
    );
    assert_eq!(
        Some(config.mcp_max_sessions_per_user),
        mcp_max_sessions_per_user
    );
    assert_eq!(Some(config.mcp_max_sessions), mcp_max_sessions);
    assert_eq!(
        Some(config.http_header_read_timeout),
        http_header_read_timeout_secs.map(Duration::from_secs)
    );
    assert_eq!(
        Some(config.http_idle_timeout),
        http_idle_timeout_secs.map(Duration::from_secs)
    );
    assert_eq!(Some(config.http_max_connections), http_max_connections);
    assert_eq!(
        Some(config.http_max_body_bytes),
        http_max_body_kib.map(|kib| usize::try_from(kib).unwrap() * 1024)
    );
    assert_eq!(
        Some(config.http_max_header_bytes),
        http_max_header_kib.map(|kib| usize::try_from(kib).unwrap() * 1024)
    );
    assert_eq!(
        Some(config.http_request_timeout),
        http_request_timeout_secs.map(Duration::from_secs)
    );
    assert_eq!(
        Some(config.database_max_connections),
        database_max_connections
    );
    assert_eq!(
        Some(config.oauth_access_token_ttl),
        oauth_access_token_ttl_secs.map(Duration::from_secs)
    );
    // The extra CA file is shown commented out (no such file here).
    assert_eq!((extra_ca_file, config.extra_ca), (None, None));
    // The example runs on the embedded store: the database URL is shown
    // commented out, with the form it takes.
    assert_eq!(database_url, None);
    assert!(
        std::fs::read_to_string(example())
            .unwrap()
            .contains("# database_url = \"postgres://"),
        "the example shows database_url"
    );
    assert!(config.public_url.is_some_and(|u| u.starts_with("https://")));
    assert!(matches!(
        config.log_format,
        LogFormat::Text | LogFormat::Json
    ));
}

#[test]
fn every_daemon_setting_is_a_documented_key_of_the_example() {
    let documented = documented_keys();
    for (key, comments) in &documented {
        assert!(
            comments.len() >= 2,
            "{key}: needs a comment above it saying what it does"
        );
        assert!(
            comments.iter().any(|c| c.starts_with("Default: ")),
            "{key}: its comment must give the default (`# Default: ...`)"
        );
    }
    let in_example: BTreeSet<String> = documented.into_iter().map(|(k, _)| k).collect();

    // Every flag that is a setting (not `--config` itself or a mode) is a
    // key, spelt with `_` for `-`.
    let settings: BTreeSet<String> = Args::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !["config", "health-check", "help", "version"].contains(long))
        .map(|long| long.replace('-', "_"))
        .collect();
    assert_eq!(in_example, settings);
}
