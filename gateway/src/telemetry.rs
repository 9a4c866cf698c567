//! Logging and trace export: `tracing` to stderr, as text or JSON lines,
//! filtered by the configured level; and, when the standard OpenTelemetry
//! variables ask for it, the spans of [`TRACES`] exported over OTLP (gRPC
//! or HTTP/protobuf) through a batch span processor on the tokio runtime.
//! Nothing in the daemon logs secrets; this module only chooses where and
//! how lines and spans go.
//!
//! The spans of [`TRACES`] reach the OpenTelemetry layer alone (per-layer
//! filters): the log lines look the same whether traces are on or off, and
//! with traces off those spans are disabled at their call sites.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// The `tracing` target of every span exported as an OpenTelemetry trace
/// (the MCP request, policy, token refresh, Salesforce request and audit
/// write spans). Only the OpenTelemetry layer sees it.
pub const TRACES: &str = "toolgate_traces";

/// The service name a trace's resource gets when neither
/// `OTEL_SERVICE_NAME` nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES`
/// names one.
pub const DEFAULT_SERVICE_NAME: &str = "toolgated";

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

/// Where traces go, read from the standard OpenTelemetry variables
/// (OpenTelemetry specification, "OTLP Exporter Configuration" and
/// "Environment Variable Specification").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The endpoint spans are sent to, as the exporter will use it: the
    /// value of `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else that of
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` appended for
    /// HTTP).
    pub endpoint: String,
    /// The OTLP transport.
    pub protocol: TraceProtocol,
}

/// The OTLP transport of traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceProtocol {
    /// OTLP over gRPC (`grpc`, the default here; usually port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`; usually port
    /// 4318).
    HttpProtobuf,
}

/// The OTLP protocol of one signal: `signal_var` (e.g.
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`), else `OTEL_EXPORTER_OTLP_PROTOCOL`,
/// else `grpc` (OpenTelemetry specification, "OpenTelemetry Protocol
/// Exporter", configuration options). `set` reads a variable, `None` when
/// unset or empty.
///
/// # Errors
/// The variable and its value in words when it is neither `grpc` nor
/// `http/protobuf` (`http/json` is not built in).
pub fn otlp_protocol(
    set: impl Fn(&str) -> Option<String>,
    signal_var: &'static str,
) -> Result<TraceProtocol, String> {
    let (name, value) = match set(signal_var) {
        Some(v) => (signal_var, v),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            set("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|| "grpc".into()),
        ),
    };
    match value.to_ascii_lowercase().as_str() {
        "grpc" => Ok(TraceProtocol::Grpc),
        "http/protobuf" => Ok(TraceProtocol::HttpProtobuf),
        _ => Err(format!(
            "{name}={value:?} is not supported; use grpc or http/protobuf"
        )),
    }
}

impl TraceProtocol {
    /// The protocol's name as `OTEL_EXPORTER_OTLP_PROTOCOL` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

impl TraceExport {
    /// Whether and where to export traces, from the variables `var` reads
    /// (`std::env::var` in the daemon): on when
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is set and not empty, unless `OTEL_TRACES_EXPORTER` is `none`. The
    /// protocol comes from `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else `grpc`. Errors: an exporter
    /// other than `otlp` or `none`, or a protocol other than `grpc` and
    /// `http/protobuf` (`http/json` is not built in).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match set("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                anyhow::bail!("OTEL_TRACES_EXPORTER={other:?} is not supported; use otlp or none")
            }
        }
        let traces_endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        if traces_endpoint.is_none() && endpoint.is_none() {
            return Ok(None);
        }
        let protocol =
            otlp_protocol(set, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").map_err(anyhow::Error::msg)?;
        let endpoint = match (traces_endpoint, endpoint) {
            (Some(traces), _) => traces,
            (None, Some(base)) => match protocol {
                TraceProtocol::Grpc => base,
                TraceProtocol::HttpProtobuf => {
                    format!("{}/v1/traces", base.trim_end_matches('/'))
                }
            },
            (None, None) => unreachable!("checked above"),
        };
        Ok(Some(Self { endpoint, protocol }))
    }
}

/// What [`init`] installed that must be shut down when the daemon stops.
#[derive(Debug, Default)]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn traces_on(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still queued and stops the exporter (bounded by
    /// `OTEL_BSP_EXPORT_TIMEOUT`, 30 s by default). A collector that cannot
    /// be reached is logged, not an error.
    pub async fn shutdown(self) {
        if let Some(provider) = self.traces {
            // The SDK's shutdown blocks until the batch processor (a task
            // on this runtime) has exported: off the runtime's threads.
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "cannot flush the last traces"),
                Err(err) => tracing::warn!(error = %err, "cannot flush the last traces"),
            }
        }
    }
}

/// Installs the global subscriber: log lines to stderr, and the trace
/// exporter when the OpenTelemetry variables ask for it
/// ([`TraceExport::from_vars`]; also read by the SDK itself:
/// `OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, `OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`). Must be
/// called on a tokio runtime. Errors if a subscriber is already installed,
/// the filter does not parse, or the trace variables are not supported.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_new(directives(level))?;
    let export = TraceExport::from_vars(|name| std::env::var(name).ok())?;
    let provider = export.as_ref().map(tracer_provider).transpose()?;
    // The trace spans never reach the log lines, whatever the level.
    let logs_filter = filter.and(filter_fn(|meta| meta.target() != TRACES));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => fmt.with_filter(logs_filter).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_filter(logs_filter)
            .boxed(),
    };
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("toolgated"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_filter(filter_fn(|meta| meta.target() == TRACES))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    if let Some(export) = &export {
        // Never the headers: they may carry a collector's API key.
        tracing::info!(
            endpoint = %export.endpoint,
            protocol = %export.protocol.as_str(),
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry { traces: provider })
}

/// The tracer provider for `export`: OTLP exporter (the SDK reads the
/// endpoint, headers and timeout variables), a batch span processor on
/// the tokio runtime (it drops spans when its queue is full rather than
/// wait: a collector that is down never slows a tool call), and the
/// resource from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, with
/// service name [`DEFAULT_SERVICE_NAME`] when neither names one.
fn tracer_provider(export: &TraceExport) -> anyhow::Result<SdkTracerProvider> {
    let exporter = match export.protocol {
        TraceProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(Protocol::Grpc)
            .build(),
        TraceProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up the OTLP trace exporter: {e}"))?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource())
        .build())
}

/// The OpenTelemetry resource of everything toolgated exports (traces,
/// audit log records): from `OTEL_SERVICE_NAME` /
/// `OTEL_RESOURCE_ATTRIBUTES`, with service name [`DEFAULT_SERVICE_NAME`]
/// when neither names one.
pub fn resource() -> opentelemetry_sdk::Resource {
    let detected = opentelemetry_sdk::Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !named {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    resource.build()
}

/// Reads a W3C `traceparent` and `tracestate` pair.
struct Carrier<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The remote parent of an MCP request (W3C Trace Context, Level 1): the
/// `traceparent` (and `tracestate`) in the request's `params._meta` (MCP
/// SEP-414) when it holds a valid one, else those of the HTTP request's
/// headers, else `None`. `_meta` wins because it travels with the one
/// JSON-RPC message, where an HTTP request's headers belong to the whole
/// connection exchange.
pub fn remote_parent(
    headers: Option<&axum::http::HeaderMap>,
    meta: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Option<opentelemetry::Context> {
    let from_meta = meta.and_then(|meta| {
        let text = |key: &str| meta.get(key).and_then(serde_json::Value::as_str);
        Some(Carrier {
            traceparent: text("traceparent")?,
            tracestate: text("tracestate"),
        })
    });
    let from_headers = headers.and_then(|headers| {
        let text = |key: &str| headers.get(key).and_then(|v| v.to_str().ok());
        Some(Carrier {
            traceparent: text("traceparent")?,
            tracestate: text("tracestate"),
        })
    });
    let propagator = TraceContextPropagator::new();
    [from_meta, from_headers]
        .into_iter()
        .flatten()
        .map(|carrier| propagator.extract(&carrier))
        .find(|cx| cx.span().span_context().is_valid())
}

/// Collects the headers a propagator writes.
struct Headers<'a>(&'a mut Vec<(String, String)>);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// The W3C Trace Context headers (`traceparent`, and `tracestate` when
/// set) that carry `span` to the next service; none when `span` is not
/// exported (traces off).
pub fn trace_headers(span: &tracing::Span) -> Vec<(String, String)> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let mut out = Vec::new();
    if span.is_disabled() {
        return out;
    }
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut Headers(&mut out));
    }
    out
}

/// Makes `parent` (from [`remote_parent`]) the parent of `span`, which
/// must not have been entered yet. Does nothing when traces are off.
pub fn set_remote_parent(span: &tracing::Span, parent: Option<opentelemetry::Context>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if let Some(parent) = parent
        && !span.is_disabled()
        && let Err(err) = span.set_parent(parent)
    {
        tracing::debug!(error = %err, "cannot set a span's remote parent");
    }
}

#[cfg(test)]
mod tests {
    use super::{TraceExport, TraceProtocol, directives, remote_parent};
    use opentelemetry::trace::TraceContextExt as _;

    fn export(vars: &[(&str, &str)]) -> anyhow::Result<Option<TraceExport>> {
        TraceExport::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn traces_are_on_only_when_an_endpoint_is_set() {
        assert_eq!(export(&[]).unwrap(), None);
        assert_eq!(
            export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]).unwrap(),
            None
        );
        assert_eq!(
            export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]).unwrap(),
            Some(TraceExport {
                endpoint: "http://collector:4317".into(),
                protocol: TraceProtocol::Grpc,
            })
        );
        assert_eq!(
            export(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ])
            .unwrap(),
            None
        );
        // HTTP appends the signal path to the shared endpoint only.
        assert_eq!(
            export(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ])
            .unwrap(),
            Some(TraceExport {
                endpoint: "http://collector:4318/v1/traces".into(),
                protocol: TraceProtocol::HttpProtobuf,
            })
        );
        assert_eq!(
            export(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://traces:4318/in"
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ])
            .unwrap(),
            Some(TraceExport {
                endpoint: "http://traces:4318/in".into(),
                protocol: TraceProtocol::HttpProtobuf,
            })
        );
    }

    #[test]
    fn unsupported_trace_settings_are_named() {
        let err = export(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\" is not supported; use grpc or http/protobuf"
        );
        let err = export(&[("OTEL_TRACES_EXPORTER", "zipkin")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "OTEL_TRACES_EXPORTER=\"zipkin\" is not supported; use otlp or none"
        );
    }

    const FROM_HEADER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const FROM_META: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    fn ids(cx: &opentelemetry::Context) -> (String, String, bool) {
        let span = cx.span();
        let sc = span.span_context();
        (
            sc.trace_id().to_string(),
            sc.span_id().to_string(),
            sc.is_sampled(),
        )
    }

    #[test]
    fn the_remote_parent_comes_from_meta_first_then_the_headers() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("traceparent", FROM_HEADER.parse().unwrap());
        headers.insert("tracestate", "vendor=a".parse().unwrap());
        let meta = serde_json::json!({"traceparent": FROM_META, "tracestate": "other=b"});
        let meta = meta.as_object().unwrap();

        let cx = remote_parent(Some(&headers), Some(meta)).unwrap();
        assert_eq!(
            ids(&cx),
            (
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into(),
                false
            )
        );
        assert!(cx.span().span_context().is_remote());
        assert_eq!(cx.span().span_context().trace_state().header(), "other=b");

        let cx = remote_parent(Some(&headers), None).unwrap();
        assert_eq!(
            ids(&cx),
            (
                "0af7651916cd43dd8448eb211c80319c".into(),
                "b7ad6b7169203331".into(),
                true
            )
        );
        assert_eq!(cx.span().span_context().trace_state().header(), "vendor=a");

        // A `_meta` without a valid traceparent leaves the header's.
        for bad in [
            serde_json::json!({"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"}),
            serde_json::json!({"traceparent": 7}),
            serde_json::json!({"progressToken": 1}),
        ] {
            let cx = remote_parent(Some(&headers), bad.as_object()).unwrap();
            assert_eq!(ids(&cx).0, "0af7651916cd43dd8448eb211c80319c", "{bad}");
        }
        assert!(remote_parent(None, None).is_none());
        assert!(remote_parent(Some(&axum::http::HeaderMap::new()), Some(meta)).is_some());
        let mut junk = axum::http::HeaderMap::new();
        junk.insert("traceparent", "not-a-traceparent".parse().unwrap());
        assert!(remote_parent(Some(&junk), None).is_none());
    }

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
