//! Section 8: what Prometheus metrics and OpenTelemetry tracing cost per
//! tool call. The same call of sections 2-3 on three daemons started one
//! after another, each on a fresh embedded store: metrics and traces off
//! (`--metrics-addr ""`), metrics on (the default), and metrics on with
//! traces exported over OTLP/gRPC to a receiver in this process (it counts
//! the spans it is sent and drops them), then metrics off again (the first
//! daemon of a run measures slower, whatever it runs). Each runs the open loop at the
//! first rate of `--rates` and the closed loop, and prints latency, CPU per
//! call and calls/s side by side.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::json;

use crate::Options;
use crate::daemon::{Daemon, Launch};
use crate::load::{self, Target};
use crate::mcp;
use crate::procfs;
use crate::report::{header, row};
use crate::sections::{SOQL, TOOL, connected_sessions, seed_users};

/// An OTLP/gRPC trace receiver that counts spans.
#[derive(Debug, Default, Clone)]
struct CountingReceiver {
    spans: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for CountingReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Starts the receiver on loopback; returns its `http://` endpoint and the
/// span counter.
async fn start_receiver() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let receiver = CountingReceiver::default();
    let spans = receiver.spans.clone();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    Ok((endpoint, spans))
}

/// One daemon's configuration.
struct Setup {
    label: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// Runs section 8; `data_dir` is a fresh directory's prefix (one per
/// daemon), `port` the HTTP port sfsim's callback names.
///
/// Errors: a daemon that does not start or a seeding step that fails.
pub async fn telemetry(
    opts: &Options,
    bin: &Path,
    ticks: u64,
    data_dir: &Path,
    port: u16,
    sim: &sfsim::Running,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    let (endpoint, spans) = start_receiver().await?;
    let setups = [
        Setup {
            label: "metrics off",
            args: vec!["--metrics-addr=".into()],
            env: Vec::new(),
        },
        Setup {
            label: "metrics on",
            args: vec!["--metrics-addr=127.0.0.1:0".into()],
            env: Vec::new(),
        },
        Setup {
            label: "metrics+traces",
            args: vec!["--metrics-addr=127.0.0.1:0".into()],
            env: vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "grpc".into()),
            ],
        },
        // The first daemon of a run measures slower whatever it runs
        // (seen on this VM): the first setup again, last, shows how much
        // of a difference is that.
        Setup {
            label: "metrics off again",
            args: vec!["--metrics-addr=".into()],
            env: Vec::new(),
        },
    ];
    let rate = opts.rates.first().copied().unwrap_or(500);
    println!(
        "\n== cost of metrics and tracing (embedded store; open loop {rate}/s and closed loop {} workers, {} s each)",
        opts.workers,
        opts.rate_duration.as_secs_f64()
    );
    println!(
        "  traces go over OTLP/gRPC to a receiver in the bench process (batch span processor, default settings)"
    );
    println!(
        "{}",
        header("setup / loop", "err  gw CPU µs/call  calls/s  spans/call")
    );
    for (i, setup) in setups.iter().enumerate() {
        let mut launch = Launch::on_port(port);
        launch.args.clone_from(&setup.args);
        launch.env.clone_from(&setup.env);
        let gw = Daemon::spawn_with(bin, &data_dir.with_extension(i.to_string()), &launch).await?;
        let mut admin = crate::control::Admin::connect(&gw.grpc, &gw.admin_token).await?;
        let tokens = seed_users(&mut admin, sim, opts.users).await?;
        let mcp_url = format!("{}/mcp", gw.public_url);
        let sessions =
            connected_sessions(http, &mcp_url, &tokens, opts.sessions_per_user, sim).await?;
        let gateway = Target::Gateway {
            sessions: Arc::new(sessions),
            body: mcp::call_body(TOOL, &json!({"soql": SOQL})).into(),
        };
        load::closed_loop(&gateway, 4, Duration::from_millis(500)).await;
        let spans_before = spans.load(Ordering::Relaxed);
        let before = procfs::sample(gw.pid, ticks)?;
        let open = load::open_loop(&gateway, rate, opts.rate_duration).await;
        let after = procfs::sample(gw.pid, ticks)?;
        let closed = load::closed_loop(&gateway, opts.workers, opts.closed_duration).await;
        let end = procfs::sample(gw.pid, ticks)?;
        // The batch processor exports every few seconds: stop the daemon
        // (which flushes its spans) before counting.
        gw.stop().await?;
        let calls = open.calls + closed.calls;
        let sent = spans.load(Ordering::Relaxed) - spans_before;
        let per_call = |from: procfs::Sample, to: procfs::Sample, n: u64| {
            (to.cpu - from.cpu).as_micros() as f64 / n.max(1) as f64
        };
        let span_text = if setup.env.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.1}", sent as f64 / calls.max(1) as f64)
        };
        println!(
            "{}",
            row(
                &format!("{} open", setup.label),
                &open.latency,
                &format!(
                    "{:>3}  {:>14.1}  {:>7.0}  {span_text:>10}",
                    open.errors,
                    per_call(before, after, open.calls),
                    open.throughput()
                )
            )
        );
        println!(
            "{}",
            row(
                &format!("{} closed", setup.label),
                &closed.latency,
                &format!(
                    "{:>3}  {:>14.1}  {:>7.0}",
                    closed.errors,
                    per_call(after, end, closed.calls),
                    closed.throughput()
                )
            )
        );
    }
    Ok(())
}
