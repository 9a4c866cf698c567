//! Smoke test: every benchmark section runs and prints figures, with tiny
//! numbers, against the debug `toolgated` from this target directory.
//! Nothing here looks at speed (figures belong in BENCHMARKS.md).

use std::time::Duration;

use toolgate_bench::{Options, Part, StoreKind};

/// The debug `toolgated` next to this test binary.
fn toolgated() -> std::path::PathBuf {
    // target/<profile>/deps/smoke-<hash> -> target/<profile>/toolgated
    let exe = std::env::current_exe().unwrap();
    let toolgated = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("toolgated");
    assert!(
        toolgated.exists(),
        "{} not found: run `cargo build -p toolgate-gateway` first",
        toolgated.display()
    );
    toolgated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_section_produces_figures() {
    let opts = Options {
        toolgated: Some(toolgated()),
        rates: vec![50],
        rate_duration: Duration::from_millis(500),
        workers: 2,
        closed_duration: Duration::from_millis(500),
        users: 2,
        sessions_per_user: 2,
        idle_sessions: vec![20],
        session_idle: Duration::from_secs(2),
        stored_tools: 30,
        entitled: vec![5, 20],
        list_requests: 3,
        batch_tools: 10,
        audit_events: 500,
        register_concurrency: 2,
        rss_settle: Duration::ZERO,
        only: None,
        store: StoreKind::Embedded,
        replicas: vec![1, 2],
    };
    let only = Options {
        only: Some(Part::Sessions),
        ..opts.clone()
    };
    let summary = toolgate_bench::run(&only).await.unwrap();
    assert_eq!(summary.sections, ["idle-sessions"], "--only runs one part");
    let summary = toolgate_bench::run(&opts).await.unwrap();
    assert_eq!(
        summary.sections,
        [
            "setup",
            "open-loop",
            "closed-loop",
            "idle-sessions",
            "list-tools",
            "tools-list",
            "tools-call-big-store",
            "batch-update",
            "startup",
            "telemetry"
        ]
    );
}

/// `--store postgres`: the calls part on PostgreSQL, then the replicas
/// part (which a full run adds with this store) with 1 and 2 replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_calls_and_replicas_produce_figures() {
    let opts = Options {
        toolgated: Some(toolgated()),
        rates: vec![50],
        rate_duration: Duration::from_millis(500),
        workers: 2,
        closed_duration: Duration::from_millis(500),
        users: 3,
        sessions_per_user: 1,
        only: Some(Part::Calls),
        store: StoreKind::Postgres,
        replicas: vec![1, 2],
        ..Options::quick()
    };
    let summary = toolgate_bench::run(&opts).await.unwrap();
    assert_eq!(summary.sections, ["setup", "open-loop", "closed-loop"]);
    let replicas = Options {
        only: Some(Part::Replicas),
        ..opts
    };
    let summary = toolgate_bench::run(&replicas).await.unwrap();
    assert_eq!(summary.sections, ["replicas"]);
}
