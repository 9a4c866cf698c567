//! Prometheus metrics end to end: real tool calls through the in-process
//! daemon and sfsim, then `GET /metrics` on the metrics listener. The
//! recorder is process-global, so this binary has one test function
//! driving everything, and values are compared before and after.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::raw_mcp;
use common::{Fixture, Org};
use serde_json::{Value, json};
use toolgate_gateway::metrics as m;
use toolgate_proto::v1;

type World = Fixture<Org>;

const ANA_SF: &str = "ana.souza@acme-demo.example";
const Q1: &str = "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'";
const QUERY_TOOL: &str = "salesforce_query";

/// One scrape: every sample line, `name{labels}` -> value.
struct Scrape {
    samples: HashMap<String, f64>,
    content_type: String,
}

impl Scrape {
    async fn take(w: &World) -> Self {
        let addr = w.daemon.metrics_addr.expect("a metrics listener");
        let response = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        let mut samples = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            samples.insert(series.to_owned(), value.parse::<f64>().unwrap());
        }
        Self {
            samples,
            content_type,
        }
    }

    /// The value of the sample `name` whose labels are exactly `labels`
    /// (in any order); 0 when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeSet<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        self.samples
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
                let got: BTreeSet<String> = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                n == name && got == want
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// The sum of every sample of `name`, whatever its labels.
    fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Sample names present (`foo_bucket`, `foo_count`, ... for histograms).
    fn names(&self) -> BTreeSet<String> {
        self.samples
            .keys()
            .map(|s| s.split('{').next().unwrap().to_owned())
            .collect()
    }
}

fn call_labels<'a>(tool: &'a str, outcome: &'a str) -> [(&'a str, &'a str); 3] {
    [
        (m::LABEL_METHOD, "tools/call"),
        (m::LABEL_TOOL, tool),
        (m::LABEL_OUTCOME, outcome),
    ]
}

/// A 2025-11-25 session of one token, speaking raw JSON-RPC.
struct Session {
    url: String,
    token: String,
    id: String,
    next: u64,
}

impl Session {
    async fn open(url: &str, token: &str) -> Self {
        let answer = raw_mcp::send(raw_mcp::post(url, token, None, raw_mcp::INITIALIZE)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let id = answer.headers["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let done = raw_mcp::send(raw_mcp::post(
            url,
            token,
            Some(&id),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ))
        .await;
        assert_eq!(done.status, 202);
        Self {
            url: url.to_owned(),
            token: token.to_owned(),
            id,
            next: 10,
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params});
        let answer = raw_mcp::send(raw_mcp::post(
            &self.url,
            &self.token,
            Some(&self.id),
            &body.to_string(),
        ))
        .await;
        let message = answer.message();
        assert!(message.get("result").is_some(), "{message}");
        message["result"].clone()
    }

    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    async fn close(self) {
        let answer = raw_mcp::send(
            reqwest::Client::new()
                .delete(&self.url)
                .bearer_auth(&self.token)
                .header("mcp-session-id", &self.id),
        )
        .await;
        assert!(answer.status < 300, "{}", answer.status);
    }
}

fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {result}"))
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn link_in(message: &str) -> String {
    message
        .split_whitespace()
        .find(|w| w.contains("/connect/"))
        .unwrap_or_else(|| panic!("no connect link in {message}"))
        .trim_end_matches([',', '.'])
        .to_owned()
}

/// Follows a connect link through sfsim's login page as `username`.
async fn connect(login_url: &str, link: &str, username: &str) {
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
    assert!(callback.contains("/auth/callback?code="), "{callback}");
    let done = http.get(callback).send().await.unwrap();
    assert!(done.status().is_success(), "{}", done.status());
}

/// Metric names in PromQL `expr`s: identifiers that start like ours
/// (functions, labels and keywords do not).
fn names_in(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\b(?:toolgate|mcp_server)_[a-z0-9_]+\b").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

/// Every `expr` string anywhere in a JSON value.
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[tokio::test]
async fn tool_calls_move_the_metrics_and_the_dashboard_and_alerts_use_exported_names() {
    let mut w = Fixture::salesforce(|sim| sim.auto_consent = false).await;
    let all = w.toolset(v1::ToolsetKind::AllApproved).await;
    let (_, _, token) = w.user("ana@example.com", &all).await;

    let start = Scrape::take(&w).await;
    assert_eq!(
        start.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        start.value(
            m::BUILD_INFO,
            &[(m::LABEL_VERSION, env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(start.value(m::MCP_SESSIONS_ACTIVE, &[]), 0.0);
    assert_eq!(start.value(m::HELD_CALLS_PENDING, &[]), 0.0);
    assert_eq!(start.value(m::ACCESS_REQUESTS_PENDING, &[]), 0.0);
    assert_eq!(start.value(m::STORE_CHANGE_FEED_UP, &[]), 1.0);

    // A session; its first call is refused until ana connects Salesforce.
    let mut session = Session::open(&w.mcp_url, &token).await;
    let listed = session.request("tools/list", json!({})).await;
    assert!(
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == QUERY_TOOL),
        "{listed}"
    );
    let prompt = session.call(QUERY_TOOL, json!({"soql": Q1})).await;
    connect(&w.sf.sim.login_url, &link_in(&text(&prompt)), ANA_SF).await;

    let before = Scrape::take(&w).await;
    assert_eq!(before.value(m::MCP_SESSIONS_ACTIVE, &[]), 1.0);
    let hosts = |w: &World| w.sf.sim.counter("host:127.0.0.1") + w.sf.sim.counter("host:localhost");
    let requests_before = hosts(&w);
    for _ in 0..3 {
        let result = session.call(QUERY_TOOL, json!({"soql": Q1})).await;
        assert_ne!(result["isError"], true, "{result}");
    }
    let unknown = session.call("no_such_tool", json!({})).await;
    assert_eq!(unknown["isError"], true, "{unknown}");
    let after = Scrape::take(&w).await;

    let histogram = format!("{}_count", m::MCP_OPERATION_DURATION);
    let delta = |labels: &[(&str, &str)]| {
        after.value(&histogram, labels) - before.value(&histogram, labels)
    };
    assert_eq!(delta(&call_labels(QUERY_TOOL, m::OK)), 3.0);
    assert_eq!(delta(&call_labels(QUERY_TOOL, m::DENIED)), 0.0);
    assert_eq!(
        delta(&call_labels(m::OTHER, m::DENIED)),
        1.0,
        "unknown tools are `other`"
    );
    // The refused first call, before the connection.
    assert_eq!(
        before.value(&histogram, &call_labels(QUERY_TOOL, m::DENIED))
            - start.value(&histogram, &call_labels(QUERY_TOOL, m::DENIED)),
        1.0
    );
    let tools_list = [
        (m::LABEL_METHOD, "tools/list"),
        (m::LABEL_TOOL, ""),
        (m::LABEL_OUTCOME, m::OK),
    ];
    assert_eq!(
        before.value(&histogram, &tools_list) - start.value(&histogram, &tools_list),
        1.0
    );
    let initialize = [
        (m::LABEL_METHOD, "initialize"),
        (m::LABEL_TOOL, ""),
        (m::LABEL_OUTCOME, m::OK),
    ];
    assert!(before.value(&histogram, &initialize) - start.value(&histogram, &initialize) >= 1.0);
    // Real histogram buckets: the +Inf bucket equals the count, and a
    // bucket from the configured bounds is there.
    let bucket = format!("{}_bucket", m::MCP_OPERATION_DURATION);
    let mut inf = call_labels(QUERY_TOOL, m::OK).to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        after.value(&bucket, &inf),
        after.value(&histogram, &call_labels(QUERY_TOOL, m::OK))
    );
    let mut thirty = call_labels(QUERY_TOOL, m::OK).to_vec();
    thirty.push(("le", "30"));
    assert_eq!(after.value(&bucket, &thirty), after.value(&bucket, &inf));

    // Denials by reason.
    let denied = |s: &Scrape, reason: &str| s.value(m::DENIED_CALLS, &[(m::LABEL_REASON, reason)]);
    assert_eq!(
        denied(&before, m::REASON_NOT_CONNECTED) - denied(&start, m::REASON_NOT_CONNECTED),
        1.0
    );
    assert_eq!(
        denied(&after, m::REASON_NOT_LISTED) - denied(&before, m::REASON_NOT_LISTED),
        1.0
    );
    assert_eq!(
        denied(&after, m::REASON_NOT_CONNECTED),
        denied(&before, m::REASON_NOT_CONNECTED)
    );

    // Salesforce requests: every one sfsim served, timed under the tool,
    // status 200.
    let served = hosts(&w) - requests_before;
    assert!(served >= 3, "{served}");
    let sf_count = format!("{}_count", m::SALESFORCE_REQUEST_DURATION);
    let sf_query = [(m::LABEL_TOOL, QUERY_TOOL), (m::LABEL_STATUS, "200")];
    assert_eq!(
        after.value(&sf_count, &sf_query) - before.value(&sf_count, &sf_query),
        served as f64
    );
    assert_eq!(
        after.total(&sf_count) - before.total(&sf_count),
        served as f64
    );

    // The store facade and the policy snapshot.
    let store_count = format!("{}_count", m::STORE_OPERATION_DURATION);
    assert!(after.value(&store_count, &[(m::LABEL_OPERATION, "append_audit")]) >= 4.0);
    assert!(after.value(m::POLICY_SNAPSHOT_AGE, &[]) > 0.0);

    // Closing the session: gauge down, one session duration.
    let sessions = format!("{}_count", m::MCP_SESSION_DURATION);
    session.close().await;
    let closed = Scrape::take(&w).await;
    assert_eq!(closed.value(m::MCP_SESSIONS_ACTIVE, &[]), 0.0);
    assert_eq!(
        closed.value(&sessions, &[]) - after.value(&sessions, &[]),
        1.0
    );

    // Every metric the dashboard and the alert rules query is exported.
    let exported = closed.names();
    for name in m::ALL {
        let present = exported.contains(*name) || exported.contains(&format!("{name}_count"));
        assert!(present, "{name} is not in the scrape: {exported:?}");
    }
    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/grafana/toolgate-dashboard.json")).unwrap();
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let rules = repo_file("deploy/prometheus/toolgate-alerts.yml");
    let alert_exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_owned())
        .collect();
    assert!(alert_exprs.len() >= 5, "{alert_exprs:?}");
    for expr in queries.iter().chain(&alert_exprs) {
        let names = names_in(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{name} (in {expr}) is not exported"
            );
        }
    }
}

#[tokio::test]
async fn an_empty_metrics_addr_turns_the_listener_off() {
    let w = Fixture::start_with(|_| {}).await;
    assert!(w.daemon.metrics_addr.is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(&dir.path().join("data"));
    config.metrics_addr = None;
    let listeners = toolgate_gateway::app::Listeners::bind(&config)
        .await
        .unwrap();
    assert!(listeners.metrics.is_none());
    let off = toolgate_gateway::app::start(
        &config,
        &toolgate_gateway::config::Secrets::default(),
        listeners,
    )
    .await
    .unwrap();
    assert_eq!(off.metrics_addr, None);
    off.stop().await.unwrap();

    // A taken address is named in the error.
    let taken = w.daemon.metrics_addr.unwrap();
    let mut busy = common::config(&dir.path().join("other"));
    busy.metrics_addr = Some(taken);
    let err = toolgate_gateway::app::Listeners::bind(&busy)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").starts_with(&format!("cannot listen on --metrics-addr {taken}")),
        "{err:#}"
    );
}
