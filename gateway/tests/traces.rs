//! OpenTelemetry traces of the real `toolgated` binary, exported over OTLP
//! gRPC to a receiver on loopback: the span tree of a tool call (MCP server
//! span, policy, token refresh, Salesforce requests, audit write), its
//! remote parent from the HTTP `traceparent` header or from the request's
//! `params._meta` (SEP-414), the `traceparent` sent on to Salesforce
//! (sfsim records it), and no secret or record value in any attribute.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::process::Spawned;
use common::raw_mcp::{self, INITIALIZE};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::mpsc;
use toolgate_proto::v1;

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Got {
    trace_id: String,
    span_id: String,
    parent_id: String,
    name: String,
    kind: i32,
    attributes: HashMap<String, String>,
    /// The resource's attributes (service.name, ...).
    resource: HashMap<String, String>,
    /// Status code: 0 unset, 1 ok, 2 error.
    status: i32,
}

impl Got {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The OTLP receiver: every exported span goes into a channel.
struct Receiver(mpsc::UnboundedSender<Got>);

fn text(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Sends every span of `request` down `tx`, flattened.
fn flatten(request: ExportTraceServiceRequest, tx: &mpsc::UnboundedSender<Got>) {
    for resource_spans in request.resource_spans {
        let resource: HashMap<String, String> = resource_spans
            .resource
            .map(|r| {
                r.attributes
                    .into_iter()
                    .map(|kv| (kv.key, text(&kv.value)))
                    .collect()
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let _ = tx.send(Got {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_id: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(&kv.value)))
                        .collect(),
                    resource: resource.clone(),
                    status: span.status.map_or(0, |s| s.code),
                });
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        flatten(request.into_inner(), &self.0);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/HTTP receiver (protobuf bodies on `POST /v1/traces`) on
/// 127.0.0.1:0: its address and the spans it gets.
async fn http_receiver() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Got>) {
    use prost::Message as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                flatten(request, &tx);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

/// A receiver on 127.0.0.1:0: its address and the spans it gets.
async fn receiver() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Got>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, rx)
}

/// Spans collected so far, by trace.
#[derive(Default)]
struct Spans {
    all: Vec<Got>,
}

impl Spans {
    /// Waits (polling the receiver, at most 20 s) until a span named
    /// `root` of trace `trace_id` arrived, and returns that trace's spans.
    /// The root ends after its children, so they were exported with it or
    /// before.
    async fn trace(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Got>,
        trace_id: &str,
        root: &str,
    ) -> Vec<Got> {
        let arrived = |all: &[Got]| all.iter().any(|s| s.trace_id == trace_id && s.name == root);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !arrived(&self.all) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(span)) => self.all.push(span),
                _ => panic!("no span {root:?} of trace {trace_id}; got {:#?}", self.all),
            }
        }
        self.all
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

fn daemon_command(data_dir: &Path, otlp: std::net::SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_toolgated"));
    cmd.args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--log-level", "info"])
        .env_remove("TOOLGATE_ADMIN_TOKEN")
        .env_remove("TOOLGATE_MASTER_KEY")
        .env_remove("TOOLGATE_CONFIG");
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        );
    cmd
}

/// A 2025-11-25 MCP session of one user, over raw HTTP.
struct Mcp {
    url: String,
    token: String,
    session: String,
}

impl Mcp {
    /// A `tools/call` with JSON-RPC id `id`, extra HTTP headers and an
    /// optional `_meta`; returns the result object.
    async fn call(
        &self,
        id: u64,
        tool: &str,
        arguments: Value,
        headers: &[(&str, &str)],
        meta: Option<Value>,
    ) -> Value {
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let mut request = raw_mcp::post(
            &self.url,
            &self.token,
            Some(&self.session),
            &body.to_string(),
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = raw_mcp::send(request).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.message()["result"].clone()
    }
}

fn result_text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

/// Follows a connect link through sfsim's login page as `username`.
async fn connect(link: &str, login_url: &str, username: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let to_login = http.post(link).send().await.unwrap();
    assert!(to_login.status().is_redirection(), "{}", to_login.status());
    let authorize = to_login.headers()["location"].to_str().unwrap().to_owned();
    let mut form: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    form.push(("username".into(), username.into()));
    form.push(("action".into(), "allow".into()));
    let back = http
        .post(format!("{login_url}/services/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let done = http.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 200);
}

const ANA_SF: &str = "ana.souza@acme-demo.example";
/// A seeded account (`../shared/salesforce/`) and its name.
const EDGE: &str = "0015g00000Q1aACAAZ";
const EDGE_NAME: &str = "Edge Communications";

const HEADER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const HEADER_PARENT: &str = "b7ad6b7169203331";
const META_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const META_PARENT: &str = "00f067aa0ba902b7";

/// The children of `parent` in `spans`, by name.
fn children<'a>(spans: &'a [Got], parent: &Got) -> Vec<&'a Got> {
    spans
        .iter()
        .filter(|s| s.parent_id == parent.span_id)
        .collect()
}

fn one<'a>(spans: &'a [Got], name: &str) -> &'a Got {
    let found: Vec<&Got> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const INTERNAL: i32 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_is_traced_from_the_client_s_traceparent_to_salesforce() {
    let (otlp, mut rx) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = Spawned::start(daemon_command(&data, otlp)).await;
    let admin_token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let mut admin = common::clients(daemon.grpc, common::admin(&admin_token)).await;
    let mut sim_config =
        sfsim::SimConfig::for_tests(&format!("http://{}/auth/callback", daemon.http));
    sim_config.auto_consent = false;
    let sim = sfsim::start(sim_config).await.unwrap();
    let server_id = common::register_sfsim(&mut admin, &sim).await;
    common::configure_sfsim_app(&mut admin, &server_id, &sim).await;
    let toolset = common::toolset(&mut admin, &server_id, v1::ToolsetKind::AllApproved).await;
    let user_id = common::create_user(&mut admin, "ana@example.com").await;
    let profile_id = admin
        .profiles
        .create_access_profile(v1::CreateAccessProfileRequest {
            name: "everything".into(),
            toolset_ids: vec![toolset],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap()
        .id;
    admin
        .profiles
        .grant_user(v1::GrantUserRequest {
            profile_id,
            user_id: user_id.clone(),
            expires_at: None,
            expected_revision: None,
        })
        .await
        .unwrap();
    let token = common::issue_token(&mut admin, &user_id, "traces").await;

    let mcp_url = format!("http://{}/mcp", daemon.http);
    let opened = raw_mcp::send(raw_mcp::post(&mcp_url, &token, None, INITIALIZE)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let session = opened.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = raw_mcp::send(raw_mcp::post(
        &mcp_url,
        &token,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await;
    assert_eq!(initialized.status, 202);
    let mcp = Mcp {
        url: mcp_url.clone(),
        token: token.clone(),
        session: session.clone(),
    };

    // First call: no connection yet; the answer holds the connect link.
    let prompt = mcp
        .call(10, "salesforce_get_user_info", json!({}), &[], None)
        .await;
    let link = result_text(&prompt)
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap()
        .trim_end_matches([',', '.'])
        .to_owned();
    connect(&link, &sim.login_url, ANA_SF).await;

    // A query whose parent comes from the HTTP traceparent header.
    let soql = format!("SELECT Id, Name FROM Account WHERE Name = '{EDGE_NAME}'");
    let traceparent = format!("00-{HEADER_TRACE}-{HEADER_PARENT}-01");
    let result = mcp
        .call(
            11,
            "salesforce_query",
            json!({"soql": soql}),
            &[("traceparent", &traceparent), ("tracestate", "vendor=a")],
            None,
        )
        .await;
    assert_eq!(result["isError"], false, "{result}");
    assert!(result.to_string().contains(EDGE), "{result}");

    let mut spans = Spans::default();
    let query = spans
        .trace(&mut rx, HEADER_TRACE, "tools/call salesforce_query")
        .await;
    let root = one(&query, "tools/call salesforce_query");
    assert_eq!(root.parent_id, HEADER_PARENT);
    assert_eq!(root.kind, SERVER);
    for (key, value) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", "salesforce_query"),
        ("gen_ai.operation.name", "execute_tool"),
        ("jsonrpc.request.id", "11"),
        ("jsonrpc.protocol.version", "2.0"),
        ("mcp.protocol.version", "2025-11-25"),
        ("network.transport", "tcp"),
        ("network.protocol.name", "http"),
        ("toolgate.outcome", "allowed"),
    ] {
        assert_eq!(root.attr(key), Some(value), "{key}: {root:#?}");
    }
    assert_eq!(root.attr("error.type"), None);
    assert_eq!(root.resource.get("service.name").unwrap(), "toolgated");
    assert_eq!(
        root.resource.get("deployment.environment.name").unwrap(),
        "test"
    );
    let under_root: Vec<&str> = children(&query, root)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(under_root.contains(&"policy decision"), "{under_root:?}");
    assert!(under_root.contains(&"audit write"), "{under_root:?}");
    let policy = one(&query, "policy decision");
    assert_eq!(policy.parent_id, root.span_id);
    assert_eq!(policy.kind, INTERNAL);
    assert_eq!(policy.attr("toolgate.decision"), Some("allow"));
    assert_eq!(one(&query, "audit write").parent_id, root.span_id);
    let rest = one(&query, "GET /services/data/v66.0/query");
    assert_eq!(rest.parent_id, root.span_id);
    assert_eq!(rest.kind, CLIENT);
    assert_eq!(rest.attr("http.request.method"), Some("GET"));
    assert_eq!(
        rest.attr("url.template"),
        Some("/services/data/v66.0/query")
    );
    assert_eq!(rest.attr("http.response.status_code"), Some("200"));
    assert_eq!(rest.attr("server.address"), Some("127.0.0.1"));
    let instance_port = url::Url::parse(&sim.instance_url)
        .unwrap()
        .port()
        .unwrap()
        .to_string();
    assert_eq!(rest.attr("server.port"), Some(instance_port.as_str()));
    // Salesforce got the REST span as its parent.
    let sent: Vec<(String, String)> = sim.sim.lock().traceparents.iter().cloned().collect();
    assert!(
        sent.contains(&(
            "/services/data/v66.0/query".to_owned(),
            format!("00-{HEADER_TRACE}-{}-01", rest.span_id)
        )),
        "{sent:?}"
    );

    // Then a read after Salesforce dropped the session: a refresh, and
    // the parent from `_meta`, which wins over the header.
    reqwest::Client::new()
        .post(format!("{}/_sfsim/expire-access-tokens", sim.login_url))
        .send()
        .await
        .unwrap();
    let other_header = format!("00-{HEADER_TRACE}-{HEADER_PARENT}-01");
    let result = mcp
        .call(
            12,
            "salesforce_get_record",
            json!({"object_name": "Account", "record_id": EDGE}),
            &[("traceparent", &other_header)],
            Some(json!({"traceparent": format!("00-{META_TRACE}-{META_PARENT}-01")})),
        )
        .await;
    assert_eq!(result["isError"], false, "{result}");
    assert!(result.to_string().contains(EDGE_NAME), "{result}");
    let read = spans
        .trace(&mut rx, META_TRACE, "tools/call salesforce_get_record")
        .await;
    let root = one(&read, "tools/call salesforce_get_record");
    assert_eq!(root.parent_id, META_PARENT);
    assert_eq!(root.attr("jsonrpc.request.id"), Some("12"));
    let refresh = one(&read, "oauth token refresh");
    assert_eq!(refresh.parent_id, root.span_id);
    assert_eq!(refresh.attr("error.type"), None);
    let gets: Vec<&Got> = read
        .iter()
        .filter(|s| s.name == "GET /services/data/v66.0/sobjects/Account/{id}")
        .collect();
    // The first request is refused with the dead token; the record is
    // read after the refresh.
    let refused: Vec<&Got> = read
        .iter()
        .filter(|s| s.kind == CLIENT && s.attr("error.type") == Some("INVALID_SESSION_ID"))
        .collect();
    assert_eq!(refused.len(), 1, "{read:#?}");
    assert_eq!(refused[0].status, 2);
    assert_eq!(refused[0].parent_id, root.span_id);
    let statuses: Vec<(Option<&str>, Option<&str>)> = gets
        .iter()
        .map(|s| (s.attr("http.response.status_code"), s.attr("error.type")))
        .collect();
    assert_eq!(statuses, [(Some("200"), None)], "{read:#?}");
    for get in &gets {
        assert_eq!(get.parent_id, root.span_id);
        assert_eq!(
            get.attr("url.template"),
            Some("/services/data/v66.0/sobjects/Account/{id}")
        );
    }
    let sent: Vec<(String, String)> = sim.sim.lock().traceparents.iter().cloned().collect();
    for get in &gets {
        assert!(
            sent.contains(&(
                format!("/services/data/v66.0/sobjects/Account/{EDGE}"),
                format!("00-{META_TRACE}-{}-01", get.span_id)
            )),
            "{sent:?}"
        );
    }
    assert_eq!(one(&read, "audit write").parent_id, root.span_id);

    // A call of a tool the user does not have: a tool error.
    let denied_trace = "5af7651916cd43dd8448eb211c80319d";
    let result = mcp
        .call(
            13,
            "salesforce_no_such_tool",
            json!({}),
            &[(
                "traceparent",
                &format!("00-{denied_trace}-{HEADER_PARENT}-01"),
            )],
            None,
        )
        .await;
    assert_eq!(result["isError"], true, "{result}");
    let denied = spans
        .trace(&mut rx, denied_trace, "tools/call salesforce_no_such_tool")
        .await;
    let root = one(&denied, "tools/call salesforce_no_such_tool");
    assert_eq!(root.attr("error.type"), Some("tool_error"));
    assert_eq!(root.attr("toolgate.outcome"), Some("denied"));
    assert_eq!(root.status, 2);
    let names: Vec<&str> = children(&denied, root)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["audit write"]);

    // tools/list has a span too (no tool, no children).
    let list_trace = "6af7651916cd43dd8448eb211c80319f";
    let listed = raw_mcp::send(
        raw_mcp::post(&mcp_url, &token, Some(&session), raw_mcp::LIST)
            .header("traceparent", format!("00-{list_trace}-{HEADER_PARENT}-01")),
    )
    .await;
    assert!(listed.tool_names().contains(&"salesforce_query".to_owned()));
    let list = spans.trace(&mut rx, list_trace, "tools/list").await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0].parent_id, HEADER_PARENT);
    assert_eq!(list[0].kind, SERVER);
    assert_eq!(list[0].attr("mcp.method.name"), Some("tools/list"));
    assert_eq!(list[0].attr("jsonrpc.request.id"), Some("2"));
    assert_eq!(list[0].attr("gen_ai.tool.name"), None);
    assert_eq!(list[0].attr("error.type"), None);

    let mut secrets: Vec<String> = sim.sim.lock().access_tokens.keys().cloned().collect();
    secrets.extend(sim.sim.lock().refresh_tokens.keys().cloned());
    assert!(!secrets.is_empty());
    secrets.extend([
        token.clone(),
        session.clone(),
        admin_token.clone(),
        soql.clone(),
        EDGE_NAME.to_owned(),
        EDGE.to_owned(),
        "ana@example.com".to_owned(),
        ANA_SF.to_owned(),
    ]);
    for span in query.iter().chain(&read).chain(&denied) {
        for value in span
            .attributes
            .values()
            .chain(span.resource.values())
            .chain([&span.name])
        {
            for secret in &secrets {
                assert!(
                    !value.contains(secret.as_str()),
                    "span {} carries {secret:?} in {value:?}",
                    span.name
                );
            }
        }
    }

    drop(admin);
    let pid = daemon.child.id().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    assert!(daemon.child.wait().await.unwrap().success());
    let logs = daemon.logs_after_exit().await;
    assert!(
        logs.contains(&format!(
            "exporting traces over OTLP endpoint=http://{otlp} protocol=grpc"
        )),
        "{logs}"
    );
    sim.stop().await;
}

/// A daemon started with `command` on data directory `data`, a user with
/// a token, and an open MCP session of theirs (no Salesforce server: a
/// call of any tool is refused, and traced).
async fn bare_session(command: Command, data: &Path) -> (Spawned, Mcp) {
    let daemon = Spawned::start(command).await;
    let admin_token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let mut admin = common::clients(daemon.grpc, common::admin(&admin_token)).await;
    let user_id = common::create_user(&mut admin, "dee@example.com").await;
    let token = common::issue_token(&mut admin, &user_id, "traces").await;
    let url = format!("http://{}/mcp", daemon.http);
    let opened = raw_mcp::send(raw_mcp::post(&url, &token, None, INITIALIZE)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let session = opened.headers["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = raw_mcp::send(raw_mcp::post(
        &url,
        &token,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await;
    assert_eq!(initialized.status, 202);
    (
        daemon,
        Mcp {
            url,
            token,
            session,
        },
    )
}

/// Stops the daemon with SIGTERM; it must exit 0.
async fn stop(daemon: &mut Spawned) -> String {
    let pid = daemon.child.id().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = daemon.child.wait().await.unwrap();
    let logs = daemon.logs_after_exit().await;
    assert!(exit.success(), "{exit:?}: {logs}");
    logs
}

#[cfg(unix)]
#[tokio::test]
async fn over_http_the_spans_still_queued_are_sent_when_the_daemon_stops() {
    let (otlp, mut rx) = http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = daemon_command(&data, otlp);
    // Ten minutes: only the stop sends them.
    command
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("OTEL_SERVICE_NAME", "gateway-eu");
    let (mut daemon, mcp) = bare_session(command, &data).await;
    let trace = "7af7651916cd43dd8448eb211c80319e";
    let result = mcp
        .call(
            5,
            "salesforce_query",
            json!({"soql": "SELECT Id FROM Account"}),
            &[("traceparent", &format!("00-{trace}-{HEADER_PARENT}-01"))],
            None,
        )
        .await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(rx.try_recv().is_err(), "nothing is sent before the stop");

    let logs = stop(&mut daemon).await;
    assert!(
        logs.contains(&format!(
            "exporting traces over OTLP endpoint=http://{otlp}/v1/traces protocol=http/protobuf"
        )),
        "{logs}"
    );
    let mut got = Vec::new();
    while let Ok(span) = rx.try_recv() {
        got.push(span);
    }
    let root = one(&got, "tools/call salesforce_query");
    assert_eq!(root.trace_id, trace);
    assert_eq!(root.parent_id, HEADER_PARENT);
    assert_eq!(root.attr("toolgate.outcome"), Some("denied"));
    assert_eq!(root.resource.get("service.name").unwrap(), "gateway-eu");
    assert_eq!(one(&got, "audit write").parent_id, root.span_id);
}

#[cfg(unix)]
#[tokio::test]
async fn a_collector_that_is_down_fails_no_call() {
    // A port nothing listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = daemon_command(&data, closed);
    command.env("OTEL_BSP_SCHEDULE_DELAY", "10");
    let (mut daemon, mcp) = bare_session(command, &data).await;
    for id in 0..20 {
        let result = mcp
            .call(id, "salesforce_no_such_tool", json!({}), &[], None)
            .await;
        assert_eq!(result["isError"], true, "{result}");
        assert_eq!(
            result_text(&result),
            "tool salesforce_no_such_tool is not in your tool list"
        );
    }
    stop(&mut daemon).await;
}
