//! Benchmark of the tools screen with 10,000 tools in the daemon: how long
//! the console takes to put the first page of tools on screen and to load
//! the whole list, how long one frame takes to draw while scrolling, and how
//! long a `/` search keystroke takes to re-filter the list.
//!
//! It starts a real daemon in-process (127.0.0.1, port 0, a temp data
//! directory), registers Salesforce servers through the control API until
//! the daemon holds at least 10,000 tools (13 per server), then drives the
//! console's model ([`App`]) with a real [`Worker`] and draws into a ratatui
//! `TestBackend`.
//!
//! Run: `cargo bench -p toolgate-console --bench tools_screen`.
//! `TOOLGATE_BENCH_QUICK=1` (or the argument `--quick`) runs a small smoke
//! version: 100 servers (1,300 tools) and 50 frames per size.
//!
//! Targets (from the issue): a frame under 5 ms, the first page on screen
//! under 200 ms. Timings are printed, never asserted; only the tool count
//! is (so a broken setup fails loudly).

use std::time::{Duration, Instant};

// The daemon and clients the console's integration tests use.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{clients, start_daemon};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use tokio::sync::mpsc;
use toolgate_console::action::Action;
use toolgate_console::client::Clients;
use toolgate_console::state::{App, Screen, ToolsView};
use toolgate_console::ui::{self, Theme};
use toolgate_console::worker::{self, Worker};
use toolgate_proto::v1;

/// Tools the Salesforce catalog discovers per registered server.
const TOOLS_PER_SERVER: usize = 13;
/// Registrations in flight at once during setup.
const SETUP_CONCURRENCY: usize = 8;
/// How long any single reply may take before the bench gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// What one run measures, by mode.
struct Plan {
    servers: usize,
    frames: usize,
    load_runs: usize,
    search_cycles: usize,
}

impl Plan {
    fn from_env() -> Self {
        let quick = std::env::var("TOOLGATE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
            || std::env::args().any(|a| a == "--quick");
        if quick {
            Self {
                servers: 100,
                frames: 50,
                load_runs: 3,
                search_cycles: 5,
            }
        } else {
            Self {
                servers: 770,
                frames: 500,
                load_runs: 5,
                search_cycles: 20,
            }
        }
    }

    fn tools(&self) -> usize {
        self.servers * TOOLS_PER_SERVER
    }
}

/// Registers `servers` Salesforce servers, `SETUP_CONCURRENCY` at a time;
/// returns how many tools their discoveries added.
async fn fill(clients: &Clients, servers: usize) -> usize {
    let added: Vec<usize> = futures_util::stream::iter(0..servers)
        .map(|i| {
            let mut servers_client = clients.servers.clone();
            async move {
                let response = servers_client
                    .register_server(v1::RegisterServerRequest {
                        catalog_kind: "salesforce".into(),
                        name: format!("Bench org {i:04}"),
                        tool_prefix: format!("s{i:04}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|status| panic!("register server {i}: {status}"))
                    .into_inner();
                response.discovery.map(|d| d.added.len()).unwrap_or(0)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    added.into_iter().sum()
}

/// The console's model wired to a real worker, for one load measurement.
struct Console {
    app: App,
    worker: Worker,
    replies: mpsc::Receiver<Action>,
    /// Time spent in the update step applying replies.
    update_total: Duration,
    /// The slowest single reply applied.
    update_max: Duration,
}

impl Console {
    fn send_requests(&mut self) {
        for request in self.app.take_requests() {
            self.worker.send(request);
        }
    }

    async fn next_reply(&mut self) {
        let action = tokio::time::timeout(REPLY_TIMEOUT, self.replies.recv())
            .await
            .expect("the daemon answers in time")
            .expect("the worker runs");
        let start = Instant::now();
        self.app.update(action);
        let took = start.elapsed();
        self.update_total += took;
        self.update_max = self.update_max.max(took);
        self.send_requests();
    }

    /// Applies replies until nothing but the audit tail is in flight.
    async fn settle(&mut self) {
        self.send_requests();
        while self.app.busy() > 0 {
            self.next_reply().await;
        }
    }
}

/// One cold open of the console: the times until the first page of tools
/// is on screen and until the whole list has loaded, and the console with
/// everything loaded.
struct Load {
    first_page: Duration,
    whole_list: Duration,
    settled: Duration,
    console: Console,
}

async fn open_console(addr: std::net::SocketAddr, token: &str) -> Load {
    let theme = Theme { color: true };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
    let start = Instant::now();
    let (tx, replies) = mpsc::channel(1024);
    let worker = Worker::start(clients(addr, token), tx);
    let app = App::new(&addr.to_string(), Rect::new(0, 0, 80, 24));
    let mut console = Console {
        app,
        worker,
        replies,
        update_total: Duration::ZERO,
        update_max: Duration::ZERO,
    };
    console.send_requests();
    while console.app.tools.all.is_empty() {
        assert!(
            console.app.tools.loading,
            "the tool load ended with no tools: {:?}",
            console.app.tools.error
        );
        console.next_reply().await;
    }
    terminal
        .draw(|frame| ui::draw(frame, &console.app, theme))
        .expect("draw");
    let first_page = start.elapsed();
    while !console.app.tools.loaded || console.app.tools.loading {
        assert!(
            console.app.tools.error.is_none(),
            "the tool load failed: {:?}",
            console.app.tools.error
        );
        console.next_reply().await;
    }
    let whole_list = start.elapsed();
    console.settle().await;
    let settled = start.elapsed();
    Load {
        first_page,
        whole_list,
        settled,
        console,
    }
}

/// Latencies of the daemon's `ListTools` alone (the call the console's
/// worker makes per page), for a first page of `page_size` tools.
async fn list_tools_latency(clients: &Clients, page_size: u32, runs: usize) -> Vec<Duration> {
    let mut tools = clients.tools.clone();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let page = tools
            .list_tools(v1::ListToolsRequest {
                page_size,
                omit_schemas: true,
                ..Default::default()
            })
            .await
            .expect("ListTools")
            .into_inner();
        samples.push(start.elapsed());
        assert_eq!(page.tools.len(), page_size as usize, "a full page");
    }
    samples
}

/// Min / p50 / p99 / max of a sample, in milliseconds.
struct Stats {
    min: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Self {
        assert!(!samples.is_empty(), "no samples");
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        // Nearest rank.
        let rank = |p: f64| {
            let r = (p / 100.0 * ms.len() as f64).ceil() as usize;
            ms[r.clamp(1, ms.len()) - 1]
        };
        Self {
            min: ms[0],
            p50: rank(50.0),
            p99: rank(99.0),
            max: ms[ms.len() - 1],
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min {:.3} ms  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            self.min, self.p50, self.p99, self.max
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Per-frame samples while scrolling: the whole `terminal.draw` (view plus
/// ratatui's diff into the test backend), the view alone, and the update
/// step of the scroll key before each frame.
struct FrameSamples {
    frame: Vec<Duration>,
    view: Vec<Duration>,
    scroll_key: Vec<Duration>,
    last_selected: usize,
}

/// Resizes the console to `width` x `height`, goes to the top of the list,
/// and draws `frames` frames, scrolling between them: four `j` then one
/// PageDown, back to the top (`g`) when the end is reached.
fn scroll_frames(app: &mut App, width: u16, height: u16, frames: usize) -> FrameSamples {
    let theme = Theme { color: true };
    app.update(Action::Resize(width, height));
    app.update(key(KeyCode::Char('g')));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    let mut samples = FrameSamples {
        frame: Vec::with_capacity(frames),
        view: Vec::with_capacity(frames),
        scroll_key: Vec::with_capacity(frames),
        last_selected: 0,
    };
    let mut max_selected = 0;
    for n in 0..frames {
        if n > 0 {
            let code = if app.tools.cursor.selected + 1 >= app.tools.shown.len() {
                KeyCode::Char('g')
            } else if n % 5 == 0 {
                KeyCode::PageDown
            } else {
                KeyCode::Char('j')
            };
            let start = Instant::now();
            app.update(key(code));
            samples.scroll_key.push(start.elapsed());
        }
        max_selected = max_selected.max(app.tools.cursor.selected);
        let mut view = Duration::ZERO;
        let start = Instant::now();
        terminal
            .draw(|frame| {
                let start = Instant::now();
                ui::draw(frame, app, theme);
                view = start.elapsed();
            })
            .expect("draw");
        samples.frame.push(start.elapsed());
        samples.view.push(view);
    }
    samples.last_selected = max_selected;
    samples
}

/// Samples of the update step for keystrokes typed while `/` searching:
/// each cycle types `record` then erases it, every key re-filtering the
/// list. Leaves the search cleared.
fn search_keystrokes(app: &mut App, cycles: usize) -> (Vec<Duration>, usize) {
    let needle = "record";
    app.update(key(KeyCode::Char('/')));
    assert!(app.searching.is_some(), "/ starts a search");
    let mut samples = Vec::with_capacity(cycles * needle.len() * 2);
    let mut matched = 0;
    for _ in 0..cycles {
        for c in needle.chars() {
            let start = Instant::now();
            app.update(key(KeyCode::Char(c)));
            samples.push(start.elapsed());
        }
        matched = app.tools.shown.len();
        for _ in needle.chars() {
            let start = Instant::now();
            app.update(key(KeyCode::Backspace));
            samples.push(start.elapsed());
        }
    }
    app.update(key(KeyCode::Esc));
    (samples, matched)
}

#[tokio::main]
async fn main() {
    let overall = Instant::now();
    let plan = Plan::from_env();
    let expected = plan.tools();
    println!(
        "toolgate console tools screen bench: {} servers x {TOOLS_PER_SERVER} tools = {expected} tools, {} frames per size",
        plan.servers, plan.frames
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let (daemon, token) = start_daemon(dir.path()).await;
    let addr = daemon.grpc_addr;

    // Setup: fill the daemon through the control API.
    let setup = Instant::now();
    let setup_clients = clients(addr, &token);
    let added = fill(&setup_clients, plan.servers).await;
    let setup_time = setup.elapsed();
    assert_eq!(
        added, expected,
        "every registration discovers {TOOLS_PER_SERVER} tools"
    );

    // The daemon's ListTools alone, then the time to first page on screen
    // and to the whole list, over a few cold opens of the console.
    let raw_page = list_tools_latency(&setup_clients, worker::TOOLS_PAGE, 10).await;
    let raw_one = list_tools_latency(&setup_clients, 1, 10).await;
    let mut loads = Vec::with_capacity(plan.load_runs);
    for _ in 0..plan.load_runs {
        loads.push(open_console(addr, &token).await);
    }
    let first_pages: Vec<Duration> = loads.iter().map(|l| l.first_page).collect();
    let wholes: Vec<Duration> = loads.iter().map(|l| l.whole_list).collect();
    let settles: Vec<Duration> = loads.iter().map(|l| l.settled).collect();
    let updates: Vec<Duration> = loads.iter().map(|l| l.console.update_total).collect();
    let update_max: Vec<Duration> = loads.iter().map(|l| l.console.update_max).collect();
    let Load {
        first_page,
        whole_list,
        mut console,
        ..
    } = loads.remove(0);
    drop(loads);

    let app = &mut console.app;
    let loaded = app.tools.all.len();
    assert!(
        loaded >= expected,
        "the console loaded {loaded} tools, expected at least {expected}"
    );
    assert_eq!(
        app.tools.total, loaded,
        "the daemon's total matches the list"
    );
    assert_eq!(
        app.screen,
        Screen::Tools,
        "the console opens on the tools screen"
    );
    assert_eq!(app.tools.view, ToolsView::Queue);
    let queued = app.tools.shown.len();
    assert_eq!(
        queued, loaded,
        "with default settings every discovered tool waits for review"
    );
    let servers_loaded = app.servers.ready().map_or(0, Vec::len);
    assert_eq!(servers_loaded, plan.servers, "every server is listed");

    // Frames while scrolling, in the review queue at 80x24, then in the
    // full list at 80x24 and 200x50.
    let queue_80 = scroll_frames(app, 80, 24, plan.frames);
    app.update(key(KeyCode::Char('v')));
    assert_eq!(app.tools.view, ToolsView::All, "v shows every tool");
    assert_eq!(
        app.tools.shown.len(),
        loaded,
        "the full list shows every tool"
    );
    let all_80 = scroll_frames(app, 80, 24, plan.frames);
    let all_200 = scroll_frames(app, 200, 50, plan.frames);

    // `/` search keystrokes over the full list.
    app.update(Action::Resize(80, 24));
    let (search, matched) = search_keystrokes(app, plan.search_cycles);
    assert!(
        matched > 0 && matched < loaded,
        "searching `record` narrows the list ({matched} of {loaded})"
    );
    assert_eq!(app.tools.shown.len(), loaded, "Esc clears the search");

    // The view toggle re-filters (and, for the queue, re-sorts) everything.
    let mut toggles = Vec::with_capacity(20);
    for _ in 0..20 {
        let start = Instant::now();
        app.update(key(KeyCode::Char('v')));
        toggles.push(start.elapsed());
    }

    drop(console);
    println!();
    println!(
        "tools in daemon: {loaded} from {} servers (setup {:.1} s, {:.1} registrations/s)",
        plan.servers,
        setup_time.as_secs_f64(),
        plan.servers as f64 / setup_time.as_secs_f64()
    );
    println!("first page on screen: {} (target < 200 ms)", ms(first_page));
    println!(
        "  over {} cold opens: {}",
        first_pages.len(),
        Stats::of(&first_pages)
    );
    println!("whole list loaded: {}", ms(whole_list));
    println!("  over {} cold opens: {}", wholes.len(), Stats::of(&wholes));
    println!("  every initial request answered: {}", Stats::of(&settles));
    println!(
        "  console update step while loading (all replies, per open): {}",
        Stats::of(&updates)
    );
    println!(
        "  slowest single reply applied (per open): {}",
        Stats::of(&update_max)
    );
    println!(
        "daemon ListTools alone, first page of {} (10 calls): {}",
        worker::TOOLS_PAGE,
        Stats::of(&raw_page)
    );
    println!(
        "daemon ListTools alone, first page of 1 (10 calls): {}",
        Stats::of(&raw_one)
    );
    for (label, samples) in [
        ("review queue 80x24", &queue_80),
        ("full list 80x24", &all_80),
        ("full list 200x50", &all_200),
    ] {
        println!(
            "frame {label} ({} frames, rows 0..={}): {} (target < 5 ms)",
            samples.frame.len(),
            samples.last_selected,
            Stats::of(&samples.frame)
        );
        println!("  view only (ui::draw): {}", Stats::of(&samples.view));
        println!("  scroll key update:    {}", Stats::of(&samples.scroll_key));
    }
    println!(
        "search keystroke update ({} keys, {loaded} tools): {}",
        search.len(),
        Stats::of(&search)
    );
    println!(
        "view toggle (v) update ({} keys): {}",
        toggles.len(),
        Stats::of(&toggles)
    );

    daemon.stop().await.expect("the daemon stops cleanly");
    drop(dir);
    println!("bench total: {:.1} s", overall.elapsed().as_secs_f64());
}
