//! Starting a daemon in-process for a test: loopback port 0, a given data
//! directory, warnings only. Shared by the gateway's integration tests
//! (`common/mod.rs`) and the console's (`console/tests/common/mod.rs`
//! includes this file by path), so both start it the same way.

#![allow(dead_code)]

use std::path::Path;

use toolgate_gateway::app::{self, Listeners, Running};
use toolgate_gateway::config::{Args, Config, Secrets};

/// The daemon's defaults, on loopback port 0 (metrics too) in `data_dir`, with a public
/// URL of https://toolgate.example.com.
pub fn config(data_dir: &Path) -> Config {
    Config::resolve(Args {
        data_dir: Some(data_dir.to_owned()),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
        metrics_addr: Some("127.0.0.1:0".into()),
        public_url: Some("https://toolgate.example.com".into()),
        log_level: Some("warn".into()),
        shutdown_timeout_secs: Some(5),
        ..Args::default()
    })
    .unwrap()
}

/// Starts a daemon on port 0 in `data_dir`; returns it and its admin token.
pub async fn start(data_dir: &Path) -> (Running, String) {
    let config = config(data_dir);
    let listeners = Listeners::bind(&config).await.unwrap();
    let running = app::start(&config, &Secrets::default(), listeners)
        .await
        .unwrap();
    let token = std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    (running, token)
}
