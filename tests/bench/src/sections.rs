//! The benchmark sections, in the order [`run`] runs them:
//! 1. set-up: sfsim in-process, `toolgated` as a child, users connected;
//! 2. tools/call latency, open loop at fixed rates, gateway then direct;
//! 3. saturation, closed loop, gateway then direct;
//! 4. memory with idle MCP sessions;
//! 5. a second daemon filled with many tools: tools/list by entitlement,
//!    tools/call with that store, BatchUpdateTools;
//! 6. start-up with many audit events and tools stored;
//! 7. calls/s with 1, 2 and 3 replicas on one PostgreSQL database;
//! 8. the cost of metrics and tracing ([`crate::telemetry`]).
//!
//! Sections 1-3 run on the store `--store` names; 4-6 on the embedded
//! store; 7 on PostgreSQL.
//!
//! Each section prints as soon as it is done, so a partial run still says
//! something.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::json;
use toolgate_proto::v1;

use crate::control::{self, Admin};
use crate::daemon::{self, Daemon, Launch};
use crate::load::{self, Target};
use crate::mcp::{self, Session};
use crate::pg::Postgres;
use crate::procfs::{self, Sample};
use crate::report::{self, header, mib, ms, row};
use crate::{Options, Part, StoreKind};

/// The logical call both paths make.
pub(crate) const SOQL: &str = "SELECT Id, Name FROM Account ORDER BY Name LIMIT 5";
/// The tool that makes it through the gateway.
pub(crate) const TOOL: &str = "salesforce_query";

/// What a run produced: the sections that printed figures.
#[derive(Debug, Default)]
pub struct Summary {
    /// Names of the sections that completed.
    pub sections: Vec<&'static str>,
}

/// The Salesforce usernames of the benchmark org.
fn sf_user(i: usize) -> String {
    format!("bench{i}@acme-bench.example")
}

/// Starts sfsim in-process with `users` users (plus the defaults), a
/// callback on `port`, no daily API limit to speak of, and a small seed.
async fn start_sim(users: usize, port: u16) -> anyhow::Result<sfsim::Running> {
    let mut config = sfsim::SimConfig::for_tests(&format!("http://127.0.0.1:{port}/auth/callback"));
    config.auto_consent = false;
    config.daily_api_limit = u64::MAX / 4;
    config.seed_accounts = 60;
    config
        .users
        .extend((0..users).map(|i| sfsim::config::UserConfig {
            username: sf_user(i),
            display_name: format!("Bench User {i}"),
            email: None,
            profile: sfsim::config::UserProfile::Standard,
        }));
    sfsim::start(config).await
}

/// A tool-call target through the gateway: one connected session per user
/// (the connect prompt followed through sfsim's login page), plus more
/// sessions per user.
pub(crate) async fn connected_sessions(
    http: &reqwest::Client,
    mcp_url: &str,
    tokens: &[String],
    per_user: usize,
    sim: &sfsim::Running,
) -> anyhow::Result<Vec<Session>> {
    let args = json!({"soql": SOQL});
    let mut sessions = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let first = Session::open(http, mcp_url, token).await?;
        let prompt = first.call_tool(TOOL, &args).await?;
        let text = mcp::result_text(&prompt);
        let link = text
            .split_whitespace()
            .find(|w| w.contains("/connect/"))
            .with_context(|| format!("no connect link in {text}"))?
            .trim_end_matches([',', '.']);
        control::connect(link, &sim.login_url, &sf_user(i)).await?;
        let ok = first.call_tool(TOOL, &args).await?;
        if mcp::is_error(&ok) {
            bail!(
                "tool call after connecting failed: {}",
                mcp::result_text(&ok)
            );
        }
        sessions.push(first);
        for _ in 1..per_user {
            sessions.push(Session::open(http, mcp_url, token).await?);
        }
    }
    Ok(sessions)
}

/// Registers the sfsim org as the Salesforce server and makes `users`
/// toolgate users granted all its approved tools; returns their MCP
/// tokens, in user order.
pub(crate) async fn seed_users(
    admin: &mut Admin,
    sim: &sfsim::Running,
    users: usize,
) -> anyhow::Result<Vec<String>> {
    let server = admin
        .register(
            "salesforce",
            &sim.login_url,
            Some(&sim.sim.config.connected_app),
        )
        .await?;
    let all = admin
        .toolset_of(&server, v1::ToolsetKind::AllApproved)
        .await?;
    let mut tokens = Vec::with_capacity(users);
    for i in 0..users {
        tokens.push(admin.user_with_toolset(&format!("user{i}"), &all).await?);
    }
    Ok(tokens)
}

/// A loopback client that keeps plenty of idle connections.
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()?)
}

fn cpu_per_call(before: Sample, after: Sample, calls: u64) -> f64 {
    (after.cpu - before.cpu).as_micros() as f64 / calls.max(1) as f64
}

/// CPU time so far of the gateway processes (summed) and of the PostgreSQL
/// server, if there is one.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    gateway: Duration,
    postgres: Option<Duration>,
}

/// The PostgreSQL column after `gw CPU µs/call` (none on the embedded
/// store).
const PG_COLUMNS: &str = "  pg CPU µs/call";

impl Cpu {
    fn now(pids: &[u32], pg: Option<&Postgres>, ticks: u64) -> anyhow::Result<Self> {
        let mut gateway = Duration::ZERO;
        for &pid in pids {
            gateway += procfs::sample(pid, ticks)?.cpu;
        }
        Ok(Self {
            gateway,
            postgres: pg.and_then(|pg| pg.cpu(ticks)),
        })
    }

    /// CPU µs per call since `before`: the gateway's, and PostgreSQL's as
    /// [`PG_COLUMNS`] (empty without it).
    fn per_call(self, before: Self, calls: u64) -> (f64, String) {
        let per = |d: Duration| d.as_micros() as f64 / calls.max(1) as f64;
        let pg = match (before.postgres, self.postgres) {
            (Some(b), Some(a)) => format!("{:>16.1}", per(a - b)),
            _ => String::new(),
        };
        (per(self.gateway - before.gateway), pg)
    }
}

/// Runs every section and prints as it goes.
///
/// Errors: a daemon that does not start, a seeding step or a connect flow
/// that fails. Slow answers are figures, never errors.
pub async fn run(opts: &Options) -> anyhow::Result<Summary> {
    let wall = Instant::now();
    let mut summary = Summary::default();
    let bin = daemon::locate(opts.toolgated.as_deref())?;
    let ticks = procfs::clock_ticks();
    let dir = tempfile::tempdir()?;
    let port = daemon::free_port()?;
    let sim = start_sim(opts.users, port).await?;
    println!("toolgate-bench: toolgated {}", bin.display());
    println!(
        "  sfsim in-process (shares this process's CPU); gateway child process; loopback; {} clock ticks/s; {} cores",
        ticks,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let http = client()?;
    if opts.runs(Part::Calls) {
        let pg = match opts.store {
            StoreKind::Embedded => None,
            StoreKind::Postgres => Some(Postgres::create().await?),
        };
        calls(
            opts,
            &bin,
            ticks,
            &dir.path().join("a"),
            port,
            &sim,
            &http,
            pg.as_ref(),
            &mut summary,
        )
        .await?;
    }
    if opts.runs(Part::Sessions) {
        // 4. Idle sessions, on a fresh daemon so the load above does not count.
        idle_sessions(opts, &bin, ticks, &dir.path().join("c"), port, &sim, &http).await?;
        summary.sections.push("idle-sessions");
    }
    if opts.runs(Part::Tools) {
        // 5. Many tools.
        tools_sections(
            opts,
            &bin,
            ticks,
            &dir.path().join("b"),
            port,
            &sim,
            &http,
            &mut summary,
        )
        .await?;
    }
    if opts.runs(Part::Replicas) {
        // 7. Replicas on one PostgreSQL.
        replicas(opts, &bin, ticks, dir.path(), port, &sim, &http).await?;
        summary.sections.push("replicas");
    }
    if opts.runs(Part::Telemetry) {
        // 8. Metrics and tracing, on and off.
        crate::telemetry::telemetry(opts, &bin, ticks, &dir.path().join("t"), port, &sim, &http)
            .await?;
        summary.sections.push("telemetry");
    }
    println!("\ntotal wall time {:.1} s", wall.elapsed().as_secs_f64());
    sim.stop().await;
    Ok(summary)
}

/// Sections 1-3: set-up, open loop and closed loop on one daemon, on the
/// embedded store or on `pg`.
#[allow(clippy::too_many_arguments)] // The run's shared pieces, as the other sections take them.
async fn calls(
    opts: &Options,
    bin: &Path,
    ticks: u64,
    data_dir: &Path,
    port: u16,
    sim: &sfsim::Running,
    http: &reqwest::Client,
    pg: Option<&Postgres>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    // 1. Set-up.
    let setup = Instant::now();
    let store = match pg {
        Some(pg) => format!("store: {}", pg.label),
        None => format!("store: {}", StoreKind::Embedded.label()),
    };
    let launch = pg.map_or_else(|| Launch::on_port(port), |pg| pg.launch(port, None));
    let gw = Daemon::spawn_with(bin, data_dir, &launch).await?;
    let idle_empty = procfs::sample(gw.pid, ticks)?;
    println!("\n== set-up ({store})");
    if let Some(pg) = pg {
        match pg.cpu(ticks) {
            Some(_) => println!(
                "  PostgreSQL: same machine, loopback; its server's CPU (all backends) is the `pg CPU` column"
            ),
            None => println!(
                "  PostgreSQL: its server is not a process this machine's /proc shows: no `pg CPU` figures"
            ),
        }
    }
    println!(
        "  toolgated start-up, empty store: {} ms; RSS {} MiB",
        gw.startup.as_millis(),
        mib(idle_empty.rss_kib)
    );
    let mut admin = Admin::connect(&gw.grpc, &gw.admin_token).await?;
    let tokens = seed_users(&mut admin, sim, opts.users).await?;
    let mcp_url = format!("{}/mcp", gw.public_url);
    let sessions = connected_sessions(http, &mcp_url, &tokens, opts.sessions_per_user, sim).await?;
    let mut auths = Vec::new();
    let mut instance = String::new();
    for i in 0..opts.users {
        let (token, url) = control::direct_token(sim, &sf_user(i)).await?;
        auths.push(format!("Bearer {token}"));
        instance = url;
    }
    let mut direct_url = url::Url::parse(&format!("{instance}/services/data/v66.0/query"))?;
    direct_url.query_pairs_mut().append_pair("q", SOQL);
    let gateway = Target::Gateway {
        sessions: Arc::new(sessions),
        body: mcp::call_body(TOOL, &json!({"soql": SOQL})).into(),
    };
    let direct = Target::Direct {
        http: http.clone(),
        url: direct_url.as_str().into(),
        auths: Arc::new(auths),
    };
    let seeded = procfs::sample(gw.pid, ticks)?;
    println!(
        "  {} users, each connected to its own Salesforce user, {} MCP sessions; set-up {:.1} s; RSS {} MiB",
        opts.users,
        opts.users * opts.sessions_per_user,
        setup.elapsed().as_secs_f64(),
        mib(seeded.rss_kib)
    );
    println!(
        "  call: tools/call {TOOL} {{soql: {SOQL:?}}}  vs  GET /services/data/v66.0/query?q=..."
    );
    // Warm both paths (connections, caches, validators).
    load::closed_loop(&gateway, 4, Duration::from_millis(500)).await;
    load::closed_loop(&direct, 4, Duration::from_millis(500)).await;
    summary.sections.push("setup");

    // 2. Open loop.
    let pg_col = if pg.is_some() { PG_COLUMNS } else { "" };
    println!(
        "\n== tools/call latency, open loop ({store}; {} s per rate and path)",
        opts.rate_duration.as_secs_f64()
    );
    println!(
        "{}",
        header(
            "rate / path",
            &format!("ok    err  send-lag p99 ms  gw CPU µs/call{pg_col}")
        )
    );
    for &rate in &opts.rates {
        let before = Cpu::now(&[gw.pid], pg, ticks)?;
        let g = load::open_loop(&gateway, rate, opts.rate_duration).await;
        let after = Cpu::now(&[gw.pid], pg, ticks)?;
        let d = load::open_loop(&direct, rate, opts.rate_duration).await;
        let (cpu, pg_cpu) = after.per_call(before, g.calls);
        let extra = |r: &load::Run, cpu: &str| {
            format!(
                "{:<5} {:>4}  {:>15}  {cpu}",
                r.calls - r.errors,
                r.errors,
                ms(r.lag.value_at_percentile(99.0))
            )
        };
        println!(
            "{}",
            row(
                &format!("{rate}/s gateway"),
                &g.latency,
                &extra(&g, &format!("{cpu:>14.1}{pg_cpu}"))
            )
        );
        println!(
            "{}",
            row(&format!("{rate}/s direct"), &d.latency, &extra(&d, ""))
        );
        println!(
            "{}",
            report::added_row(&format!("{rate}/s added"), &g.latency, &d.latency)
        );
    }
    summary.sections.push("open-loop");

    // 3. Closed loop.
    println!(
        "\n== saturation, closed loop ({store}; {} workers, {} s per path)",
        opts.workers,
        opts.closed_duration.as_secs_f64()
    );
    println!(
        "{}",
        header("path", &format!("calls/s   err  gw CPU µs/call{pg_col}"))
    );
    let before = Cpu::now(&[gw.pid], pg, ticks)?;
    let g = load::closed_loop(&gateway, opts.workers, opts.closed_duration).await;
    let after = Cpu::now(&[gw.pid], pg, ticks)?;
    let d = load::closed_loop(&direct, opts.workers, opts.closed_duration).await;
    let (sat_cpu, pg_cpu) = after.per_call(before, g.calls);
    println!(
        "{}",
        row(
            "gateway",
            &g.latency,
            &format!(
                "{:>7.0} {:>5}  {sat_cpu:>14.1}{pg_cpu}",
                g.throughput(),
                g.errors
            )
        )
    );
    println!(
        "{}",
        row(
            "direct",
            &d.latency,
            &format!("{:>7.0} {:>5}", d.throughput(), d.errors)
        )
    );
    let share = |d: Duration| d.as_secs_f64() / g.elapsed.as_secs_f64() * 100.0;
    match (before.postgres, after.postgres) {
        (Some(b), Some(a)) => println!(
            "  CPU during saturation: gateway {:.0}%, PostgreSQL {:.0}% of one core",
            share(after.gateway - before.gateway),
            share(a - b)
        ),
        _ => println!(
            "  gateway CPU during saturation: {:.0}% of one core",
            share(after.gateway - before.gateway)
        ),
    }
    summary.sections.push("closed-loop");
    let loaded = procfs::sample(gw.pid, ticks)?;
    println!("  gateway RSS after load {} MiB", mib(loaded.rss_kib));

    let peak = procfs::sample(gw.pid, ticks)?;
    println!(
        "  gateway peak RSS (VmHWM) over sections 1-3: {} MiB",
        mib(peak.hwm_kib)
    );
    gw.stop().await?;
    Ok(())
}

/// Section 7: calls/s with each replica count of `opts.replicas` on one
/// PostgreSQL database. Replicas start one by one and stay up (all with
/// replica 0's public URL, which sfsim's callback points at); users are
/// seeded and connected once through replica 0; for each count `n`, user
/// `i`'s sessions open on replica `i % n` and the closed loop of section 3
/// runs over them.
async fn replicas(
    opts: &Options,
    bin: &Path,
    ticks: u64,
    dir: &Path,
    port: u16,
    sim: &sfsim::Running,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    let pg = Postgres::create().await?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "\n== replicas on one database (store: {}; closed loop, {} workers, {} s per count; {} users, user i's {} sessions on replica i % N)",
        pg.label,
        opts.workers,
        opts.closed_duration.as_secs_f64(),
        opts.users,
        opts.sessions_per_user
    );
    println!(
        "  every replica, PostgreSQL, sfsim and the load generator share this machine's {cores} cores: \
         more replicas here measure contention for them, not scale-out"
    );
    let public = format!("http://127.0.0.1:{port}");
    let mut up = vec![Daemon::spawn_with(bin, &dir.join("r0"), &pg.launch(port, None)).await?];
    let mut admin = Admin::connect(&up[0].grpc, &up[0].admin_token).await?;
    let tokens = seed_users(&mut admin, sim, opts.users).await?;
    drop(connected_sessions(http, &format!("{public}/mcp"), &tokens, 1, sim).await?);
    println!(
        "{}",
        header(
            "replicas",
            &format!(
                "calls/s   err  gw CPU µs/call{PG_COLUMNS}  (gateway CPU summed over replicas)"
            )
        )
    );
    let mut loads = Vec::new();
    for &n in &opts.replicas {
        while up.len() < n {
            let j = up.len();
            let launch = pg.launch(daemon::free_port()?, Some(public.clone()));
            up.push(Daemon::spawn_with(bin, &dir.join(format!("r{j}")), &launch).await?);
        }
        let active = &up[..n];
        let mut sessions = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let url = format!("http://{}/mcp", active[i % n].http);
            for _ in 0..opts.sessions_per_user {
                sessions.push(Session::open(http, &url, token).await?);
            }
        }
        let target = Target::Gateway {
            sessions: Arc::new(sessions),
            body: mcp::call_body(TOOL, &json!({"soql": SOQL})).into(),
        };
        load::closed_loop(&target, 4, Duration::from_millis(500)).await;
        let pids: Vec<u32> = active.iter().map(|d| d.pid).collect();
        let before = Cpu::now(&pids, Some(&pg), ticks)?;
        let r = load::closed_loop(&target, opts.workers, opts.closed_duration).await;
        let after = Cpu::now(&pids, Some(&pg), ticks)?;
        let (gw_cpu, pg_cpu) = after.per_call(before, r.calls);
        println!(
            "{}",
            row(
                &format!("{n}"),
                &r.latency,
                &format!(
                    "{:>7.0} {:>5}  {gw_cpu:>14.1}{pg_cpu}",
                    r.throughput(),
                    r.errors
                )
            )
        );
        let share = |d: Duration| d.as_secs_f64() / r.elapsed.as_secs_f64() * 100.0;
        let pg_share = match (before.postgres, after.postgres) {
            (Some(b), Some(a)) => format!("{:.0}%", share(a - b)),
            _ => "?".into(),
        };
        loads.push(format!(
            "{n}: gateways {:.0}%, PostgreSQL {pg_share}",
            share(after.gateway - before.gateway)
        ));
    }
    println!(
        "  CPU during each count, % of one core: {}",
        loads.join("; ")
    );
    for gw in up {
        gw.stop().await?;
    }
    drop(pg);
    Ok(())
}

/// Section 4: memory of a fresh daemon (one server, one user) as idle MCP
/// sessions pile up.
async fn idle_sessions(
    opts: &Options,
    bin: &Path,
    ticks: u64,
    data_dir: &Path,
    port: u16,
    sim: &sfsim::Running,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    println!(
        "\n== memory with idle MCP sessions (fresh daemon, embedded store; initialize + initialized, then idle; session idle timeout {} s)",
        opts.session_idle.as_secs()
    );
    // One user holds them all: lift the session limits to the count.
    let most = opts.idle_sessions.iter().copied().max().unwrap_or(1).max(1);
    let extra = [
        "--mcp-max-sessions-per-user".to_owned(),
        most.to_string(),
        "--mcp-max-sessions".to_owned(),
        most.to_string(),
        "--mcp-session-idle-secs".to_owned(),
        opts.session_idle.as_secs().max(1).to_string(),
    ];
    let launch = Launch {
        args: extra.to_vec(),
        ..Launch::on_port(port)
    };
    let gw = Daemon::spawn_with(bin, data_dir, &launch).await?;
    let mut admin = Admin::connect(&gw.grpc, &gw.admin_token).await?;
    let server = admin
        .register(
            "salesforce",
            &sim.login_url,
            Some(&sim.sim.config.connected_app),
        )
        .await?;
    let all = admin
        .toolset_of(&server, v1::ToolsetKind::AllApproved)
        .await?;
    let token = admin.user_with_toolset("idle", &all).await?;
    let mcp_url = format!("{}/mcp", gw.public_url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = procfs::sample(gw.pid, ticks)?;
    println!("  {:>8} sessions  RSS {:>7} MiB", 0, mib(base.rss_kib));
    let mut opened: Vec<Session> = Vec::new();
    for &n in &opts.idle_sessions {
        let t = Instant::now();
        let more = n.saturating_sub(opened.len());
        let new: Vec<Session> = stream::iter(0..more)
            .map(|_| Session::open(http, &mcp_url, &token))
            .buffer_unordered(16)
            .try_collect()
            .await?;
        opened.extend(new);
        let took = t.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s = procfs::sample(gw.pid, ticks)?;
        println!(
            "  {:>8} sessions  RSS {:>7} MiB  (+{:.1} KiB per session; opened {} in {:.1} s)",
            n,
            mib(s.rss_kib),
            (s.rss_kib as f64 - base.rss_kib as f64) / n.max(1) as f64,
            more,
            took.as_secs_f64()
        );
    }
    let peak = procfs::sample(gw.pid, ticks)?;
    println!("  peak RSS (VmHWM) {} MiB", mib(peak.hwm_kib));
    // Let the idle timeout close them all (no request in between: each one
    // would keep its session alive), then measure what came back, after
    // `rss_settle` more for the allocator to return freed pages (jemalloc
    // purges them over about 10 s): sessions opened within a second or two
    // all close together.
    let t = Instant::now();
    tokio::time::sleep(opts.session_idle + Duration::from_secs(3) + opts.rss_settle).await;
    let after = procfs::sample(gw.pid, ticks)?;
    println!(
        "  after idle-out ({:.1} s): RSS {:>7} MiB ({:+.1} MiB over the empty daemon)",
        t.elapsed().as_secs_f64(),
        mib(after.rss_kib),
        (after.rss_kib as f64 - base.rss_kib as f64) / 1024.0
    );
    if let Some(last) = opened.last() {
        anyhow::ensure!(
            last.list_tools().await.is_err(),
            "the last session was still open after its idle timeout"
        );
    }
    // As many again: memory that was kept is reused, not added to (a leak
    // would add as much as the first time).
    let again = opened.len();
    drop(opened);
    let reopened: Vec<Session> = stream::iter(0..again)
        .map(|_| Session::open(http, &mcp_url, &token))
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let s = procfs::sample(gw.pid, ticks)?;
    println!(
        "  {} sessions opened again: RSS {:>7} MiB ({:+.1} MiB over the idled-out daemon)",
        reopened.len(),
        mib(s.rss_kib),
        (s.rss_kib as f64 - after.rss_kib as f64) / 1024.0
    );
    drop(reopened);
    gw.stop().await
}

/// Sections 5 and 6 on a second daemon whose store holds
/// `opts.stored_tools` tools.
#[allow(clippy::too_many_arguments)]
async fn tools_sections(
    opts: &Options,
    bin: &Path,
    ticks: u64,
    data_dir: &Path,
    port: u16,
    sim: &sfsim::Running,
    http: &reqwest::Client,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    println!(
        "\n== tools/list by entitlement, {} tools stored (embedded store)",
        opts.stored_tools
    );
    let gw = Daemon::spawn(bin, data_dir, port).await?;
    let mut admin = Admin::connect(&gw.grpc, &gw.admin_token).await?;
    let fill = Instant::now();
    // The first server can connect users (tools/call below); the others
    // only add tools.
    admin
        .register(
            "salesforce",
            &sim.login_url,
            Some(&sim.sim.config.connected_app),
        )
        .await?;
    let per_server = admin.all_tools().await?.len().max(1);
    let servers = opts.stored_tools.div_ceil(per_server);
    stream::iter(1..servers)
        .map(|i| {
            let mut admin = admin.clone();
            let login = sim.login_url.clone();
            async move { admin.register(&format!("sf{i}"), &login, None).await }
        })
        .buffer_unordered(opts.register_concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let tools = admin.all_tools().await?;
    println!(
        "  filled: {} servers x {} tools = {} tools via RegisterServer (concurrency {}) in {:.1} s",
        servers,
        per_server,
        tools.len(),
        opts.register_concurrency,
        fill.elapsed().as_secs_f64()
    );
    list_tools_pages(&mut admin, gw.pid, ticks, summary).await?;
    // Entitlement sets: the query tool of the connected server first.
    let mut ordered: Vec<&(String, String)> = tools.iter().filter(|t| t.1 == TOOL).collect();
    ordered.extend(tools.iter().filter(|t| t.1 != TOOL));
    println!(
        "{}",
        header("entitled tools", "listed  bytes/tool  gw CPU µs/list")
    );
    let mut biggest = None;
    for &k in &opts.entitled {
        let k = k.min(ordered.len());
        let ids = ordered[..k].iter().map(|t| t.0.clone()).collect();
        let token = admin.user_with_tools(&format!("list{k}"), ids).await?;
        let session = Session::open(http, &format!("{}/mcp", gw.public_url), &token).await?;
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut listed = 0;
        let mut before = procfs::sample(gw.pid, ticks)?;
        for i in 0..opts.list_requests + 3 {
            if i == 3 {
                before = procfs::sample(gw.pid, ticks)?;
            }
            let t = Instant::now();
            listed = session.list_tools().await?;
            if i >= 3 {
                h.saturating_record(t.elapsed().as_micros().max(1) as u64);
            }
        }
        let after = procfs::sample(gw.pid, ticks)?;
        let cpu = cpu_per_call(before, after, opts.list_requests as u64);
        let bytes = list_bytes(&session).await?;
        println!(
            "{}",
            row(
                &format!("{k}"),
                &h,
                &format!("{listed:>6}  {:>10}  {cpu:>14.1}", bytes / listed.max(1))
            )
        );
        biggest = Some((token, session));
    }
    summary.sections.push("tools-list");

    // tools/call against the big store.
    if let Some((_, session)) = &biggest {
        let args = json!({"soql": SOQL});
        let prompt = session.call_tool(TOOL, &args).await?;
        let text = mcp::result_text(&prompt);
        if let Some(link) = text.split_whitespace().find(|w| w.contains("/connect/")) {
            control::connect(
                link.trim_end_matches([',', '.']),
                &sim.login_url,
                &sf_user(0),
            )
            .await?;
        }
        let target = Target::Gateway {
            sessions: Arc::new(vec![session.clone()]),
            body: mcp::call_body(TOOL, &args).into(),
        };
        load::closed_loop(&target, 1, Duration::from_millis(200)).await;
        let before = procfs::sample(gw.pid, ticks)?;
        let r = load::closed_loop(&target, 1, opts.rate_duration / 2).await;
        let after = procfs::sample(gw.pid, ticks)?;
        println!(
            "\n== tools/call with {} tools stored (1 caller, sequential)",
            tools.len()
        );
        println!("{}", header("path", "calls  err  gw CPU µs/call"));
        println!(
            "{}",
            row(
                "gateway",
                &r.latency,
                &format!(
                    "{:>5} {:>4}  {:.1}",
                    r.calls,
                    r.errors,
                    cpu_per_call(before, after, r.calls)
                )
            )
        );
        summary.sections.push("tools-call-big-store");
    }

    // BatchUpdateTools.
    let k = opts.batch_tools.min(tools.len());
    let ids: Vec<String> = ordered[ordered.len() - k..]
        .iter()
        .map(|t| t.0.clone())
        .collect();
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for i in 0..6 {
        let state = if i % 2 == 0 {
            v1::ToolState::Disabled
        } else {
            v1::ToolState::Approved
        };
        let t = Instant::now();
        admin
            .api
            .tools
            .batch_update_tools(v1::BatchUpdateToolsRequest {
                ids: ids.clone(),
                state: state.into(),
            })
            .await?;
        h.saturating_record(t.elapsed().as_micros().max(1) as u64);
    }
    println!(
        "\n== control API BatchUpdateTools, {k} tools ({} tools stored, 6 calls alternating DISABLED/APPROVED)",
        tools.len()
    );
    println!("{}", header("request", ""));
    println!("{}", row(&format!("{k} tools"), &h, ""));
    summary.sections.push("batch-update");
    let idle = procfs::sample(gw.pid, ticks)?;
    println!(
        "  gateway RSS with {} tools stored: {} MiB (peak {} MiB)",
        tools.len(),
        mib(idle.rss_kib),
        mib(idle.hwm_kib)
    );
    if !opts.rss_settle.is_zero() {
        // Not a synchronisation: a pause for the allocator's page decay
        // before a second reading.
        tokio::time::sleep(opts.rss_settle).await;
        let settled = procfs::sample(gw.pid, ticks)?;
        println!(
            "  gateway RSS after {} s idle: {} MiB",
            opts.rss_settle.as_secs(),
            mib(settled.rss_kib)
        );
    }
    drop(biggest);
    gw.stop().await?;

    // 6. Start-up.
    let t = Instant::now();
    let stored = append_audit(data_dir, opts.audit_events).await?;
    println!(
        "\n== start-up with {} audit events and {} tools stored",
        stored,
        tools.len()
    );
    println!(
        "  (audit events written offline through the gateway's store in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let mut startups = Vec::new();
    for _ in 0..3 {
        let gw = Daemon::spawn(bin, data_dir, port).await?;
        let s = procfs::sample(gw.pid, ticks)?;
        startups.push((gw.startup, s.rss_kib));
        gw.stop().await?;
    }
    for (i, (startup, rss)) in startups.iter().enumerate() {
        println!(
            "  start {}: ready line after {} ms; RSS at ready {} MiB",
            i + 1,
            startup.as_millis(),
            mib(*rss)
        );
    }
    summary.sections.push("startup");
    Ok(())
}

/// Listings of every stored tool through the control API's `ListTools`,
/// 1,000 per page (as the console lists them), with and without schemas:
/// round-trip time per page (p50/max over every page of three listings),
/// the whole listing (p50 of three) and the gateway's CPU per page.
async fn list_tools_pages(
    admin: &mut Admin,
    pid: u32,
    ticks: u64,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    const PAGE: u32 = 1000;
    const LISTINGS: usize = 3;
    println!(
        "\n== control API ListTools, pages of {PAGE} over every stored tool ({LISTINGS} listings each)"
    );
    println!(
        "{}",
        header("schemas", "pages  tools  whole list ms p50  gw CPU ms/page")
    );
    for omit_schemas in [true, false] {
        let mut pages = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut wholes = Vec::with_capacity(LISTINGS);
        let mut counted = (0, 0);
        let before = procfs::sample(pid, ticks)?;
        for _ in 0..LISTINGS {
            let whole = Instant::now();
            let mut page_token = String::new();
            counted = (0, 0);
            loop {
                let t = Instant::now();
                let page = admin
                    .api
                    .tools
                    .list_tools(v1::ListToolsRequest {
                        page_size: PAGE,
                        page_token: page_token.clone(),
                        omit_schemas,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                pages.saturating_record(t.elapsed().as_micros().max(1) as u64);
                counted.0 += 1;
                counted.1 += page.tools.len();
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            wholes.push(whole.elapsed().as_micros() as u64);
        }
        let after = procfs::sample(pid, ticks)?;
        wholes.sort_unstable();
        let cpu = cpu_per_call(before, after, pages.len()) / 1000.0;
        let label = if omit_schemas { "omitted" } else { "included" };
        let extra = format!(
            "{:>5}  {:>5}  {:>16}  {cpu:>14.1}",
            counted.0,
            counted.1,
            ms(wholes[LISTINGS / 2])
        );
        println!("{}", row(label, &pages, &extra));
    }
    summary.sections.push("list-tools");
    Ok(())
}

/// The size in bytes of one `tools/list` answer on `session`.
async fn list_bytes(session: &Session) -> anyhow::Result<usize> {
    let v = session
        .request(&format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/list","params":{{}}}}"#,
            mcp::next_id()
        ))
        .await?;
    Ok(v.to_string().len())
}

/// Appends audit events to the (stopped) daemon's store until it holds
/// at least `target`, through the gateway's own store code, 1,000 per
/// batch. Returns how many it holds.
async fn append_audit(data_dir: &Path, target: usize) -> anyhow::Result<usize> {
    use toolgate_gateway::crypto::MasterKey;
    use toolgate_gateway::model::AuditEvent;
    use toolgate_gateway::store::{DirLock, Store};
    let lock = DirLock::acquire(data_dir)?;
    let key = MasterKey::load_or_create(None, data_dir)?;
    let store = Store::open(data_dir, key, lock)?;
    let mut written = 0;
    while written < target {
        let n = (target - written).min(1000);
        let events = (0..n)
            .map(|i| {
                AuditEvent::allowed(
                    "user:bench@bench.example",
                    toolgate_gateway::audit::Action::ToolCall,
                    format!("tool/bench-{}", (written + i) % 97),
                )
                .with_details(json!({"tool": TOOL, "arguments": {"soql": SOQL}}))
            })
            .collect();
        store.append_audit(events).await?;
        written += n;
    }
    Ok(written)
}
