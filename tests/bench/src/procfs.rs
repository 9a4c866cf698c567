//! What `/proc` says about one process (the gateway child): CPU time
//! (`/proc/<pid>/stat` fields 14 and 15, `utime` + `stime`, in clock ticks)
//! and memory (`/proc/<pid>/status` `VmRSS` and `VmHWM`, in KiB). Linux
//! only; see proc(5).

use std::time::Duration;

use anyhow::Context;

/// A reading of one process's counters.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far ("high water mark"), KiB.
    pub hwm_kib: u64,
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`;
/// 100 on every mainstream Linux if `getconf` is missing).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Reads `pid`'s counters; `ticks` from [`clock_ticks`].
///
/// Errors: the process is gone or `/proc` is not Linux's.
pub fn sample(pid: u32, ticks: u64) -> anyhow::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Sample {
        cpu: Duration::from_micros((utime + stime) * 1_000_000 / ticks),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}
