//! Audit export as it happens (`--audit-export`): every stored audit event
//! is written, in sequence order, to each configured sink: a JSON lines
//! file (`jsonl:<path>`), stdout (`stdout`), or OpenTelemetry logs over
//! OTLP (`otlp`). One JSON form for all ([`json_line`], docs/audit-export.md).
//!
//! The exporter follows the store, never the call path: a task per sink
//! reads [`Store::audit_forward`] from its cursor, woken by
//! [`Store::subscribe`] and by a periodic tick ([`TICK`]), writes a batch
//! of at most [`BATCH`] events, then advances its cursor. A failed write
//! never drops an event from the store and never blocks a tool call: the
//! sink retries from the same cursor with backoff ([`MIN_BACKOFF`] doubling
//! to [`MAX_BACKOFF`]) and logs one warning per failure streak. Delivery is
//! at least once: after a crash (or a failed cursor write) a batch may be
//! written again; consumers dedupe by `sequence`.
//!
//! Where a sink starts: a `jsonl` file resumes from its cursor file
//! `<path>.cursor` (written after each flushed batch; without one, from the
//! oldest stored event); `stdout` and `otlp` start after the newest event
//! at start-up. Of several replicas on one PostgreSQL database, each
//! replica's sinks see every event (the store is shared).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::logs::{LogBatch, LogProcessor, SdkLogRecord, SdkLoggerProvider};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::model::{AuditEvent, Outcome};
use crate::store::{Store, StoreError};

/// Most events read and written in one batch.
pub const BATCH: usize = 500;
/// How often a sink looks for new events without being woken.
pub const TICK: Duration = Duration::from_secs(5);
/// The first wait after a failed write.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a sink may take to flush pending events at shutdown.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
/// The OpenTelemetry event name of every exported log record.
pub const EVENT_NAME: &str = "toolgate.audit";

/// One place audit events are exported to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// JSON lines appended to this file (created mode 0600), with the
    /// cursor in `<path>.cursor`.
    Jsonl(PathBuf),
    /// JSON lines on stdout, after the ready line.
    Stdout,
    /// OpenTelemetry log records over OTLP.
    Otlp(OtlpLogs),
}

/// Where and how OTLP log records are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpLogs {
    /// The collector's URL (for `http/protobuf`, including `/v1/logs`).
    pub endpoint: String,
    /// `grpc` or `http/protobuf`.
    pub protocol: crate::telemetry::TraceProtocol,
}

impl OtlpLogs {
    /// The target from the OpenTelemetry variables `var` reads
    /// (`std::env::var` in the daemon), as the OTLP exporter specification
    /// defines them: protocol from `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else `grpc`; endpoint from
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` as is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/logs` for `http/protobuf`),
    /// else `http://localhost:4317` (grpc) or
    /// `http://localhost:4318/v1/logs`. Errors: another protocol.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        use crate::telemetry::TraceProtocol;
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let protocol = crate::telemetry::otlp_protocol(set, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")?;
        let endpoint = match (
            set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(logs), _) => logs,
            (None, Some(base)) => match protocol {
                TraceProtocol::Grpc => base,
                TraceProtocol::HttpProtobuf => format!("{}/v1/logs", base.trim_end_matches('/')),
            },
            (None, None) => match protocol {
                TraceProtocol::Grpc => "http://localhost:4317".into(),
                TraceProtocol::HttpProtobuf => "http://localhost:4318/v1/logs".into(),
            },
        };
        Ok(Self { endpoint, protocol })
    }
}

impl Sink {
    /// The sinks in `values` (each may hold several, comma-separated):
    /// `jsonl:<path>`, `stdout`, `otlp` (its target from `var`, see
    /// [`OtlpLogs::from_vars`]). Errors: an unknown kind, an empty path, a
    /// sink given twice, or a bad OTLP variable; the message names the value.
    pub fn parse_all(
        values: &[String],
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Self>, String> {
        let mut sinks = Vec::new();
        for value in values.iter().flat_map(|v| v.split(',')) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let sink = match value.split_once(':') {
                _ if value == "stdout" => Self::Stdout,
                _ if value == "otlp" => Self::Otlp(OtlpLogs::from_vars(&var)?),
                Some(("jsonl", path)) if !path.trim().is_empty() => {
                    Self::Jsonl(PathBuf::from(path.trim()))
                }
                Some(("jsonl", _)) => return Err("jsonl needs a file path: jsonl:<path>".into()),
                _ => {
                    return Err(format!(
                        "{value:?} is not a sink; use jsonl:<path>, stdout or otlp"
                    ));
                }
            };
            if sinks.contains(&sink) {
                return Err(format!("{value:?} is given twice"));
            }
            sinks.push(sink);
        }
        Ok(sinks)
    }

    /// A short name for logs: `jsonl:<path>`, `stdout` or `otlp`.
    pub fn name(&self) -> String {
        match self {
            Self::Jsonl(path) => format!("jsonl:{}", path.display()),
            Self::Stdout => "stdout".into(),
            Self::Otlp(_) => "otlp".into(),
        }
    }
}

/// The exported JSON form of an event: the stored fields in this order,
/// plus `time_rfc3339` (RFC 3339, UTC, milliseconds).
#[derive(Serialize)]
struct Exported<'a> {
    sequence: u64,
    time: i64,
    time_rfc3339: String,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: Outcome,
    reason: &'a str,
    latency_ms: u64,
    details: &'a serde_json::Value,
    #[serde(skip_serializing_if = "str::is_empty")]
    hash: &'a str,
}

/// `event` as one JSON line (no trailing newline): `sequence`, `time` (Unix
/// ms), `time_rfc3339`, `actor`, `action`, `target`, `outcome`, `reason`,
/// `latency_ms`, `details`, `hash` (absent on events stored before the
/// chain). The schema is documented in docs/audit-export.md.
pub fn json_line(event: &AuditEvent) -> String {
    let time_rfc3339 = chrono::DateTime::from_timestamp_millis(event.time)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    serde_json::to_string(&Exported {
        sequence: event.sequence,
        time: event.time,
        time_rfc3339,
        actor: &event.actor,
        action: &event.action,
        target: &event.target,
        outcome: event.outcome,
        reason: &event.reason,
        latency_ms: event.latency_ms,
        details: &event.details,
        hash: &event.hash,
    })
    .expect("an audit event serializes")
}

/// A sink opened for writing.
enum Output {
    Jsonl { path: PathBuf },
    Stdout,
    Otlp(Box<OtlpOutput>),
}

struct OtlpOutput {
    exporter: opentelemetry_otlp::LogExporter,
    provider: SdkLoggerProvider,
    logger: opentelemetry_sdk::logs::SdkLogger,
    collected: Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>,
}

/// Hands the records the logger emits to the sink's task, which exports
/// them itself (so it knows whether the collector took them).
#[derive(Debug)]
struct Collect(Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>);

impl LogProcessor for Collect {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        self.0
            .lock()
            .expect("collect lock")
            .push((data.clone(), instrumentation.clone()));
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// The cursor file of a jsonl sink.
fn cursor_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".cursor");
    PathBuf::from(name)
}

impl Output {
    fn open(sink: &Sink) -> anyhow::Result<Self> {
        Ok(match sink {
            Sink::Jsonl(path) => Self::Jsonl { path: path.clone() },
            Sink::Stdout => Self::Stdout,
            Sink::Otlp(target) => {
                use crate::telemetry::TraceProtocol;
                let builder = opentelemetry_otlp::LogExporter::builder();
                let mut exporter = match target.protocol {
                    TraceProtocol::Grpc => builder
                        .with_tonic()
                        .with_protocol(Protocol::Grpc)
                        .with_endpoint(&target.endpoint)
                        .build(),
                    TraceProtocol::HttpProtobuf => builder
                        .with_http()
                        .with_protocol(Protocol::HttpBinary)
                        .with_endpoint(&target.endpoint)
                        .build(),
                }
                .map_err(|e| {
                    anyhow::anyhow!("audit-export: cannot set up the OTLP log exporter: {e}")
                })?;
                let resource = crate::telemetry::resource();
                opentelemetry_sdk::logs::LogExporter::set_resource(&mut exporter, &resource);
                let collected = Arc::new(Mutex::new(Vec::new()));
                let provider = SdkLoggerProvider::builder()
                    .with_resource(resource)
                    .with_log_processor(Collect(collected.clone()))
                    .build();
                let logger = provider.logger("toolgate");
                Self::Otlp(Box::new(OtlpOutput {
                    exporter,
                    provider,
                    logger,
                    collected,
                }))
            }
        })
    }

    /// Where to start: the jsonl cursor file's sequence (0 when absent, or
    /// when beyond `last`: the store was replaced); `last` for the others.
    async fn start_cursor(&self, last: u64) -> u64 {
        let Self::Jsonl { path, .. } = self else {
            return last;
        };
        let cursor_file = cursor_path(path);
        match tokio::fs::read_to_string(&cursor_file).await {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(n) if n <= last => n,
                Ok(n) => {
                    tracing::warn!(cursor = n, last, file = %cursor_file.display(), "audit export cursor is beyond the newest stored event; exporting from the oldest");
                    0
                }
                Err(_) => {
                    tracing::warn!(file = %cursor_file.display(), "audit export cursor file is not a number; exporting from the oldest");
                    0
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!(file = %cursor_file.display(), error = %e, "cannot read the audit export cursor; exporting from the oldest");
                0
            }
        }
    }

    /// Writes `events` and flushes them; on error nothing counts as written.
    async fn write(&mut self, events: &[AuditEvent]) -> anyhow::Result<()> {
        match self {
            Self::Jsonl { path } => {
                let mut text = String::new();
                for event in events {
                    text.push_str(&json_line(event));
                    text.push('\n');
                }
                // Opened for each batch, so a rotated (renamed) file is
                // followed by a new one at `path`.
                let mut options = tokio::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                options.mode(0o600);
                let mut f = options
                    .open(&*path)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
                let before = f.metadata().await.map(|m| m.len());
                let written = async {
                    f.write_all(text.as_bytes()).await?;
                    f.sync_data().await
                }
                .await;
                if let Err(e) = written {
                    // No half line left behind for the retry to follow.
                    if let Ok(len) = before {
                        let _ = f.set_len(len).await;
                    }
                    anyhow::bail!("cannot write {}: {e}", path.display());
                }
                Ok(())
            }
            Self::Stdout => {
                let mut text = String::new();
                for event in events {
                    text.push_str(&json_line(event));
                    text.push('\n');
                }
                tokio::task::spawn_blocking(move || {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()
                })
                .await?
                .map_err(|e| anyhow::anyhow!("cannot write stdout: {e}"))
            }
            Self::Otlp(otlp) => {
                use opentelemetry_sdk::logs::LogExporter as _;
                for event in events {
                    let mut record = otlp.logger.create_log_record();
                    record.set_event_name(EVENT_NAME);
                    let time = std::time::UNIX_EPOCH
                        + Duration::from_millis(u64::try_from(event.time).unwrap_or(0));
                    record.set_timestamp(time);
                    record.set_observed_timestamp(std::time::SystemTime::now());
                    record.set_severity_number(Severity::Info);
                    record.set_severity_text("INFO");
                    record.set_body(AnyValue::from(json_line(event)));
                    record.add_attribute(
                        "toolgate.audit.sequence",
                        i64::try_from(event.sequence).unwrap_or(i64::MAX),
                    );
                    record.add_attribute("toolgate.audit.action", event.action.clone());
                    record.add_attribute("toolgate.audit.actor", event.actor.clone());
                    record.add_attribute("toolgate.audit.target", event.target.clone());
                    record.add_attribute(
                        "toolgate.audit.outcome",
                        match event.outcome {
                            Outcome::Allowed => "ALLOWED",
                            Outcome::Denied => "DENIED",
                            Outcome::Error => "ERROR",
                        },
                    );
                    otlp.logger.emit(record);
                }
                let records = std::mem::take(&mut *otlp.collected.lock().expect("collect lock"));
                let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                    records.iter().map(|(r, s)| (r, s)).collect();
                otlp.exporter
                    .export(LogBatch::new(&refs))
                    .await
                    .map_err(|e| anyhow::anyhow!("OTLP log export failed: {e}"))
            }
        }
    }

    /// Records that everything up to `cursor` was written (jsonl only):
    /// writes `<path>.cursor.tmp` and renames it over `<path>.cursor`.
    async fn save_cursor(&self, cursor: u64) -> anyhow::Result<()> {
        let Self::Jsonl { path, .. } = self else {
            return Ok(());
        };
        let target = cursor_path(path);
        let mut tmp = target.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        tokio::fs::write(&tmp, format!("{cursor}\n"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", target.display()))
    }
}

impl Drop for OtlpOutput {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Why a drain stopped early.
enum DrainError {
    Store(StoreError),
    Write(anyhow::Error),
}

impl std::fmt::Display for DrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "cannot read audit events: {e}"),
            Self::Write(e) => write!(f, "{e:#}"),
        }
    }
}

/// Writes every event after `cursor` up to the newest published one, a
/// batch at a time, advancing `cursor` after each written batch.
async fn drain(store: &Store, out: &mut Output, cursor: &mut u64) -> Result<(), DrainError> {
    loop {
        let last = store.last_audit_sequence();
        if *cursor >= last {
            return Ok(());
        }
        let batch = store
            .audit_forward(*cursor + 1, last, BATCH)
            .await
            .map_err(DrainError::Store)?;
        let Some(newest) = batch.last().map(|e| e.sequence) else {
            // Nothing left in the range (pruned by retention).
            *cursor = last;
            continue;
        };
        out.write(&batch).await.map_err(DrainError::Write)?;
        *cursor = newest;
        out.save_cursor(newest).await.map_err(DrainError::Write)?;
    }
}

/// Prepares `sink` (errors: an OTLP exporter that cannot be built) and
/// returns the task that exports to it until `stop`, starting once `gate`
/// is cancelled (the daemon has printed its ready line), then flushing
/// what is pending for up to [`SHUTDOWN_FLUSH`].
pub fn exporter(
    store: Arc<Store>,
    sink: &Sink,
    gate: CancellationToken,
    stop: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut out = Output::open(sink)?;
    let name = sink.name();
    // Subscribed before the start cursor is read: no wake-up is missed.
    let mut events = store.subscribe();
    let start_last = store.last_audit_sequence();
    Ok(async move {
        tokio::select! {
            () = gate.cancelled() => {}
            () = stop.cancelled() => return,
        }
        let mut cursor = out.start_cursor(start_last).await;
        tracing::info!(sink = %name, after_sequence = cursor, "exporting audit events");
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = MIN_BACKOFF;
        let mut failing = false;
        let mut closed = false;
        loop {
            match drain(&store, &mut out, &mut cursor).await {
                Ok(()) => {
                    if failing {
                        tracing::info!(sink = %name, through_sequence = cursor, "audit export resumed");
                    }
                    failing = false;
                    backoff = MIN_BACKOFF;
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = tick.tick() => {}
                        r = events.recv(), if !closed => {
                            closed = matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed));
                        }
                    }
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(
                            sink = %name,
                            error = %err,
                            next_sequence = cursor + 1,
                            "cannot export audit events; retrying with backoff (events stay stored)"
                        );
                    }
                    failing = true;
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        match tokio::time::timeout(SHUTDOWN_FLUSH, drain(&store, &mut out, &mut cursor)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(sink = %name, error = %err, next_sequence = cursor + 1, "audit export stopped with events pending");
            }
            Err(_) => {
                tracing::warn!(sink = %name, next_sequence = cursor + 1, "audit export stopped with events pending (flush timed out)");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TraceProtocol;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn sinks_parse_from_commas_and_repeats() {
        let sinks = Sink::parse_all(
            &["jsonl:/var/log/a.jsonl, stdout".into(), "otlp".into()],
            vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ]),
        )
        .unwrap();
        assert_eq!(
            sinks,
            vec![
                Sink::Jsonl("/var/log/a.jsonl".into()),
                Sink::Stdout,
                Sink::Otlp(OtlpLogs {
                    endpoint: "http://c:4318/v1/logs".into(),
                    protocol: TraceProtocol::HttpProtobuf,
                }),
            ]
        );
        assert_eq!(Sink::parse_all(&[], vars(&[])).unwrap(), vec![]);
    }

    #[test]
    fn bad_sinks_are_named() {
        let err = |v: &str| Sink::parse_all(&[v.into()], vars(&[])).unwrap_err();
        assert_eq!(
            err("syslog"),
            "\"syslog\" is not a sink; use jsonl:<path>, stdout or otlp"
        );
        assert_eq!(err("jsonl:"), "jsonl needs a file path: jsonl:<path>");
        assert_eq!(err("stdout,stdout"), "\"stdout\" is given twice");
        let bad = Sink::parse_all(
            &["otlp".into()],
            vars(&[("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json")]),
        )
        .unwrap_err();
        assert_eq!(
            bad,
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=\"http/json\" is not supported; use grpc or http/protobuf"
        );
    }

    #[test]
    fn otlp_logs_endpoint_prefers_the_logs_variable() {
        let t = OtlpLogs::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4317"),
        ]))
        .unwrap();
        assert_eq!(t.endpoint, "http://logs:4317");
        assert_eq!(t.protocol, TraceProtocol::Grpc);
        assert_eq!(
            OtlpLogs::from_vars(vars(&[])).unwrap().endpoint,
            "http://localhost:4317"
        );
    }

    #[test]
    fn json_line_has_every_field_in_order() {
        let event = AuditEvent {
            sequence: 7,
            time: 1_796_673_662_123,
            actor: "user:ana@example.com".into(),
            action: "tool.call".into(),
            target: "tool/q".into(),
            outcome: Outcome::Denied,
            reason: "no grant".into(),
            latency_ms: 3,
            details: serde_json::json!({"records": 0}),
            hash: "ab".repeat(32),
        };
        assert_eq!(
            json_line(&event),
            format!(
                "{{\"sequence\":7,\"time\":1796673662123,\"time_rfc3339\":\"2026-12-07T20:01:02.123Z\",\"actor\":\"user:ana@example.com\",\"action\":\"tool.call\",\"target\":\"tool/q\",\"outcome\":\"DENIED\",\"reason\":\"no grant\",\"latency_ms\":3,\"details\":{{\"records\":0}},\"hash\":\"{}\"}}",
                "ab".repeat(32)
            )
        );
        let old = AuditEvent {
            hash: String::new(),
            ..event
        };
        assert!(!json_line(&old).contains("hash"));
    }
}
