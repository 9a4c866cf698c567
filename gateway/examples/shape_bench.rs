//! Times the decoding and shaping of one `salesforce_query` answer, the
//! issue-16 way and the issue-17 way, side by side, and prints µs per
//! page and ns per record. The gateway's CPU per call includes this part
//! (plus the HTTP exchange, MCP and the store, which this does not time).
//!
//! ```text
//! cargo run --release -p toolgate-gateway --example shape_bench [-- ROUNDS]
//! ```
//!
//! Pages of 5, 200 and 2,000 records shaped like the REST API's
//! query_page1.json. Each round times a batch of pages with each path in
//! turn; the figure is the median round. Both paths' results are checked
//! to be identical first.

use std::time::{Duration, Instant};

use toolgate_gateway::salesforce::bench::{query_page, shape_page_after, shape_page_before};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(31);
    println!(
        "records  bytes      before µs/page  after µs/page  before ns/rec  after ns/rec  after/before"
    );
    for n in [5usize, 200, 2000] {
        let body = query_page(n);
        let before = shape_page_before(&body).expect("a query answer");
        let after = shape_page_after(&body).expect("a query answer");
        assert_eq!(
            (before.0.to_string(), &before.1),
            (after.0.to_string(), &after.1),
            "both paths give the same result"
        );
        // About 20 ms of work per batch.
        let batch = (200_000 / n).max(10);
        let time = |f: fn(&[u8]) -> Option<(serde_json::Value, String)>| {
            let started = Instant::now();
            for _ in 0..batch {
                std::hint::black_box(f(std::hint::black_box(&body)));
            }
            started.elapsed() / batch as u32
        };
        let (mut b, mut a): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            b.push(time(shape_page_before));
            a.push(time(shape_page_after));
        }
        b.sort();
        a.sort();
        let (b, a) = (b[rounds / 2], a[rounds / 2]);
        let per = |d: Duration| d.as_nanos() as f64 / n as f64;
        println!(
            "{n:>7}  {:>9}  {:>14.1}  {:>13.1}  {:>13.0}  {:>12.0}  {:>12.2}",
            body.len(),
            b.as_nanos() as f64 / 1000.0,
            a.as_nanos() as f64 / 1000.0,
            per(b),
            per(a),
            a.as_nanos() as f64 / b.as_nanos() as f64
        );
    }
}
