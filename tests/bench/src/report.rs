//! Printed tables: latencies in milliseconds with microsecond resolution,
//! memory in MiB, CPU in microseconds per call.

use hdrhistogram::Histogram;

/// The percentiles every latency row shows.
pub const PERCENTILES: [f64; 3] = [50.0, 90.0, 99.0];

/// µs as milliseconds, `0.123`.
pub fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Signed µs difference as milliseconds, `+0.123`.
pub fn ms_diff(us: i64) -> String {
    format!("{:+.3}", us as f64 / 1000.0)
}

/// KiB as MiB, `12.3`.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// p50, p90, p99, max of `h` in µs.
pub fn quantiles(h: &Histogram<u64>) -> [u64; 4] {
    let [a, b, c] = PERCENTILES.map(|p| h.value_at_percentile(p));
    [a, b, c, h.max()]
}

/// The header of a latency table whose first column is `first`.
pub fn header(first: &str, extra: &str) -> String {
    format!(
        "  {first:<22} {:>9} {:>9} {:>9} {:>9}  {extra}",
        "p50 ms", "p90 ms", "p99 ms", "max ms"
    )
}

/// One latency row.
pub fn row(label: &str, h: &Histogram<u64>, extra: &str) -> String {
    let [a, b, c, d] = quantiles(h);
    format!(
        "  {label:<22} {:>9} {:>9} {:>9} {:>9}  {extra}",
        ms(a),
        ms(b),
        ms(c),
        ms(d)
    )
}

/// The gateway-minus-direct row.
pub fn added_row(label: &str, gateway: &Histogram<u64>, direct: &Histogram<u64>) -> String {
    let g = quantiles(gateway);
    let d = quantiles(direct);
    let diff = |i: usize| ms_diff(g[i] as i64 - d[i] as i64);
    format!(
        "  {label:<22} {:>9} {:>9} {:>9} {:>9}",
        diff(0),
        diff(1),
        diff(2),
        diff(3)
    )
}
