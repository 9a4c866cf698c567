//! What `/proc` says about one process (the gateway child): CPU time
//! (`/proc/<pid>/stat` fields 14 and 15, `utime` + `stime`, in clock ticks)
//! and memory (`/proc/<pid>/status` `VmRSS` and `VmHWM`, in KiB); and the
//! CPU time of a process tree (the PostgreSQL server: its postmaster and
//! every backend). Linux only; see proc(5).

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
    let stat = stat(pid)?;
    let utime = stat.field(14)?;
    let stime = stat.field(15)?;
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

/// CPU time (user plus system) of `root`, of its live children, and of the
/// children it has reaped (`cutime` + `cstime`, fields 16 and 17): for the
/// PostgreSQL server, the postmaster, every backend and background worker,
/// and the backends of closed connections.
///
/// Errors: `root` is gone or `/proc` is not Linux's. A child that exits
/// while being read is skipped (its time moves to `root`'s reaped total).
pub fn tree_cpu(root: u32, ticks: u64) -> anyhow::Result<Duration> {
    let own = stat(root)?;
    let mut total = own.field(14)? + own.field(15)? + own.field(16)? + own.field(17)?;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(child) = stat(pid) else { continue };
        if child.field(4).ok() == Some(u64::from(root)) {
            total += child.field(14).unwrap_or(0) + child.field(15).unwrap_or(0);
        }
    }
    Ok(Duration::from_micros(total * 1_000_000 / ticks))
}

/// The fields of `/proc/<pid>/stat` after the command name.
struct Stat(Vec<u64>);

impl Stat {
    /// Field `n` as proc(5) numbers them (1 = pid, 2 = comm, 3 = state,
    /// 4 = ppid, 14 = utime ...); numeric fields from 4 on.
    fn field(&self, n: usize) -> anyhow::Result<u64> {
        n.checked_sub(4)
            .and_then(|i| self.0.get(i).copied())
            .with_context(|| format!("no field {n} in /proc/<pid>/stat"))
    }
}

fn stat(pid: u32) -> anyhow::Result<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/<pid>/stat")?;
    // `after` starts at field 3 (state), then the numbers from field 4.
    Ok(Stat(
        after
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    ))
}
