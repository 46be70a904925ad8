//! Where the time of a level goes: CPU used by the leader, the followers and the load
//! generator (this process) during the measured window, and the leader's durable log
//! appends (how many, how long), each per acknowledged request.
//!
//! CPU comes from `/proc/<pid>/stat` (utime + stime of every thread, in USER_HZ ticks,
//! 100 per second on Linux), the same for both systems. Appends come from each system's
//! own metrics: Raft3D's `raft3d_log_append_duration_seconds` (the WAL's pwrite and
//! fdatasync of one batch; before the WAL, a redb commit), etcd's
//! `etcd_disk_wal_fsync_duration_seconds` (the WAL's fdatasync only; its write() before
//! it is not in that histogram, so Raft3D's number holds a little more).
//!
//! Owns: sampling and subtracting. Must not touch the processes it samples.

use crate::System;
use serde::Serialize;
use tokio::time::Instant;

/// USER_HZ: the unit of utime and stime in `/proc/<pid>/stat` (fixed at 100 in Linux's
/// user ABI, whatever the kernel's own tick rate).
const TICKS_PER_SECOND: f64 = 100.0;

/// What the measured window of one level cost, per acknowledged request.
#[derive(Debug, Clone, Serialize)]
pub struct UsagePerOp {
    /// CPU milliseconds of the leader process.
    pub leader_cpu_ms: f64,
    /// CPU milliseconds of all followers together.
    pub followers_cpu_ms: f64,
    /// CPU milliseconds of the load generator (this process: the client library,
    /// HTTP/1.1 + JSON or HTTP/2 + protobuf, and the timing).
    pub client_cpu_ms: f64,
    /// Requests per durable append of the leader (above 1: several requests shared an
    /// fsync); `None` if the system's metrics could not be read.
    pub ops_per_append: Option<f64>,
    /// Mean duration of one of those appends, in ms.
    pub append_ms: Option<f64>,
}

/// A snapshot of counters taken at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// CPU seconds of each node (`None`: not running), then of this process.
    node_cpu: Vec<Option<f64>>,
    own_cpu: Option<f64>,
    /// The leader's `(sum seconds, count)` of durable appends.
    appends: Option<(f64, f64)>,
}

impl Sample {
    pub async fn take(system: &impl System, leader: usize) -> Self {
        let node_cpu = (0..system.nodes())
            .map(|node| system.pid(node).and_then(cpu_seconds))
            .collect();
        Self {
            node_cpu,
            own_cpu: cpu_seconds(std::process::id()),
            appends: system.durable_appends(leader).await,
        }
    }
}

/// Samples at the start and the end of the measured window.
pub async fn during(
    system: &impl System,
    leader: usize,
    measure_from: Instant,
    stop_at: Instant,
) -> (Sample, Sample) {
    tokio::time::sleep_until(measure_from).await;
    let before = Sample::take(system, leader).await;
    tokio::time::sleep_until(stop_at).await;
    (before, Sample::take(system, leader).await)
}

/// The difference of two samples, per one of `ops` requests (`None` without requests).
pub fn per_op(before: &Sample, after: &Sample, leader: usize, ops: u64) -> Option<UsagePerOp> {
    if ops == 0 {
        return None;
    }
    let ops = ops as f64;
    let used = |node: usize| -> f64 {
        let (Some(Some(a)), Some(Some(b))) = (after.node_cpu.get(node), before.node_cpu.get(node))
        else {
            return 0.0;
        };
        (a - b).max(0.0)
    };
    let nodes = after.node_cpu.len();
    let followers: f64 = (0..nodes).filter(|&n| n != leader).map(used).sum();
    let client = after
        .own_cpu
        .zip(before.own_cpu)
        .map_or(0.0, |(a, b)| a - b);
    let appends = after
        .appends
        .zip(before.appends)
        .map(|((sum_a, n_a), (sum_b, n_b))| (sum_a - sum_b, n_a - n_b))
        .filter(|&(_, count)| count > 0.0);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Some(UsagePerOp {
        leader_cpu_ms: round(used(leader) * 1000.0 / ops),
        followers_cpu_ms: round(followers * 1000.0 / ops),
        client_cpu_ms: round(client * 1000.0 / ops),
        ops_per_append: appends.map(|(_, count)| round(ops / count)),
        append_ms: appends.map(|(sum, count)| round(sum * 1000.0 / count)),
    })
}

/// utime + stime of process `pid` (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after its closing one.
fn parse_stat(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field 14 is index 11.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// `(sum, count)` of a Prometheus histogram `name` in a metrics text (`_sum` and
/// `_count` lines without labels).
pub fn histogram_totals(metrics: &str, name: &str) -> Option<(f64, f64)> {
    let value = |suffix: &str| -> Option<f64> {
        let series = format!("{name}{suffix} ");
        let line = metrics.lines().find(|l| l.starts_with(&series))?;
        line.get(series.len()..)?.trim().parse().ok()
    };
    Some((value("_sum")?, value("_count")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(3.0));
        let own = cpu_seconds(std::process::id());
        assert!(own.is_some_and(|s| s >= 0.0));
    }

    #[test]
    fn histogram_totals_ignore_buckets_and_other_series() {
        let text = "x_bucket{le=\"0.001\"} 3\nx_sum 0.25\nx_count 100\nxy_sum 9\n";
        assert_eq!(histogram_totals(text, "x"), Some((0.25, 100.0)));
        assert_eq!(histogram_totals(text, "y"), None);
    }

    #[test]
    fn usage_is_divided_among_the_requests() {
        let before = Sample {
            node_cpu: vec![Some(1.0), Some(1.0), None],
            own_cpu: Some(0.0),
            appends: Some((0.0, 0.0)),
        };
        let after = Sample {
            node_cpu: vec![Some(2.0), Some(1.5), None],
            own_cpu: Some(0.5),
            appends: Some((0.5, 500.0)),
        };
        let Some(usage) = per_op(&before, &after, 0, 1000) else {
            panic!("1000 requests were made");
        };
        assert_eq!(usage.leader_cpu_ms, 1.0);
        assert_eq!(usage.followers_cpu_ms, 0.5);
        assert_eq!(usage.client_cpu_ms, 0.5);
        assert_eq!(usage.ops_per_append, Some(2.0));
        assert_eq!(usage.append_ms, Some(1.0));
    }
}
