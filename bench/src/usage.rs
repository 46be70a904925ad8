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
//! Raft3D's nodes also time each stage of a write (`raft3d_write_stage_duration_seconds`,
//! see the server's `write_timing`): those histograms are subtracted the same way, into
//! a mean and a p99 per stage on the leader and on the followers ([`StageTime`]).
//!
//! Owns: sampling and subtracting. Must not touch the processes it samples.

use crate::System;
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// Raft3D only: the stages of a write, in the order a write goes through them.
    pub stages: Vec<StageTime>,
}

/// One stage of a Raft3D write during the measured window, on the leader or on both
/// followers together.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    /// `"leader"` or `"followers"`.
    pub nodes: &'static str,
    /// Times the stage ran per acknowledged request (below 1: requests shared it).
    pub per_request: f64,
    pub mean_ms: f64,
    /// The upper bound of the bucket holding the 99th percentile (the histograms'
    /// buckets are 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 25 ms, ...); `None`
    /// beyond the last bound.
    pub p99_le_ms: Option<f64>,
}

/// Raft3D's stages as `(label, series in the node's metrics)`, in a write's order.
pub const STAGES: [(&str, &str); 8] = [
    (
        "HTTP request",
        "raft3d_http_request_duration_seconds{route=\"/api/v1/print_jobs\",method=\"POST\",status=\"201\"}",
    ),
    ("propose", "raft3d_write_stage_duration_seconds{stage=\"propose\"}"),
    ("batch wait", "raft3d_write_stage_duration_seconds{stage=\"batch_wait\"}"),
    ("commit", "raft3d_write_stage_duration_seconds{stage=\"commit\"}"),
    ("log append", "raft3d_log_append_duration_seconds"),
    ("replicate", "raft3d_write_stage_duration_seconds{stage=\"replicate\"}"),
    ("follower append", "raft3d_write_stage_duration_seconds{stage=\"follower_append\"}"),
    ("apply", "raft3d_write_stage_duration_seconds{stage=\"apply\"}"),
];

/// Every histogram of one metrics text, by series (name and labels, without `le`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histograms(BTreeMap<String, Series>);

/// One histogram series: cumulative `(le, count)` buckets in text order, sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
struct Series {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histograms {
    /// Reads the `_bucket`, `_sum` and `_count` lines of a Prometheus text page.
    pub fn parse(metrics: &str) -> Self {
        let mut all: BTreeMap<String, Series> = BTreeMap::new();
        for line in metrics.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            if let Some(base) = name.strip_suffix("_bucket") {
                let (labels, le) = match labels.rsplit_once("le=\"") {
                    Some((rest, le)) => (rest.trim_end_matches(','), le.trim_end_matches('"')),
                    None => continue,
                };
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                all.entry(key(base, labels))
                    .or_default()
                    .buckets
                    .push((le, value));
            } else if let Some(base) = name.strip_suffix("_sum") {
                all.entry(key(base, labels)).or_default().sum = value;
            } else if let Some(base) = name.strip_suffix("_count") {
                all.entry(key(base, labels)).or_default().count = value;
            }
        }
        Self(all)
    }

    /// `(sum, count)` of series `key`.
    pub fn totals(&self, key: &str) -> Option<(f64, f64)> {
        self.0.get(key).map(|s| (s.sum, s.count))
    }

    /// What was recorded after `before` (a series missing there counts from zero).
    fn since(&self, before: &Histograms) -> Histograms {
        let empty = Series::default();
        let diff = self.0.iter().map(|(key, after)| {
            let before = before.0.get(key).unwrap_or(&empty);
            let buckets = after
                .buckets
                .iter()
                .map(|&(le, n)| {
                    let earlier = before
                        .buckets
                        .iter()
                        .find(|b| b.0 == le)
                        .map_or(0.0, |b| b.1);
                    (le, n - earlier)
                })
                .collect();
            let series = Series {
                buckets,
                sum: after.sum - before.sum,
                count: after.count - before.count,
            };
            (key.clone(), series)
        });
        Histograms(diff.collect())
    }

    /// Adds `other`'s counts into these (both followers as one).
    fn add(&mut self, other: &Histograms) {
        for (key, series) in &other.0 {
            let mine = self.0.entry(key.clone()).or_default();
            for &(le, n) in &series.buckets {
                match mine.buckets.iter_mut().find(|b| b.0 == le) {
                    Some(bucket) => bucket.1 += n,
                    None => mine.buckets.push((le, n)),
                }
            }
            mine.sum += series.sum;
            mine.count += series.count;
        }
    }
}

impl Series {
    /// The `le` of the first bucket holding at least `quantile` of the observations.
    fn quantile_le(&self, quantile: f64) -> Option<f64> {
        let wanted = self.count * quantile;
        let mut buckets = self.buckets.clone();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets.into_iter().find(|&(_, n)| n >= wanted).map(|b| b.0)
    }
}

/// `name{labels}`, or `name` without labels.
fn key(name: &str, labels: &str) -> String {
    match labels {
        "" => name.to_owned(),
        _ => format!("{name}{{{labels}}}"),
    }
}

/// A snapshot of counters taken at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// CPU seconds of each node (`None`: not running), then of this process.
    node_cpu: Vec<Option<f64>>,
    own_cpu: Option<f64>,
    /// The histograms of each node (`None`: its metrics could not be read).
    histograms: Vec<Option<Histograms>>,
    /// The series of the system's durable log appends ([`System::append_series`]).
    append_series: &'static str,
}

impl Sample {
    pub async fn take(system: &impl System) -> Self {
        let node_cpu = (0..system.nodes())
            .map(|node| system.pid(node).and_then(cpu_seconds))
            .collect();
        let mut histograms = Vec::new();
        for node in 0..system.nodes() {
            let text = system.metrics(node).await;
            histograms.push(text.map(|text| Histograms::parse(&text)));
        }
        Self {
            node_cpu,
            own_cpu: cpu_seconds(std::process::id()),
            histograms,
            append_series: system.append_series(),
        }
    }

    fn histograms(&self, node: usize) -> Option<&Histograms> {
        self.histograms.get(node)?.as_ref()
    }
}

/// Samples at the start and the end of the measured window.
pub async fn during(
    system: &impl System,
    measure_from: Instant,
    stop_at: Instant,
) -> (Sample, Sample) {
    tokio::time::sleep_until(measure_from).await;
    let before = Sample::take(system).await;
    tokio::time::sleep_until(stop_at).await;
    (before, Sample::take(system).await)
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
    let recorded = |node: usize| Some(after.histograms(node)?.since(before.histograms(node)?));
    let on_leader = recorded(leader).unwrap_or_default();
    let mut on_followers = Histograms::default();
    for follower in (0..nodes).filter(|&n| n != leader) {
        on_followers.add(&recorded(follower).unwrap_or_default());
    }
    let appends = on_leader
        .totals(after.append_series)
        .filter(|&(_, count)| count > 0.0);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Some(UsagePerOp {
        leader_cpu_ms: round(used(leader) * 1000.0 / ops),
        followers_cpu_ms: round(followers * 1000.0 / ops),
        client_cpu_ms: round(client * 1000.0 / ops),
        ops_per_append: appends.map(|(_, count)| round(ops / count)),
        append_ms: appends.map(|(sum, count)| round(sum * 1000.0 / count)),
        stages: stage_times(&on_leader, &on_followers, ops),
    })
}

/// Every stage in [`STAGES`] that ran during the window, on the leader then on the
/// followers (etcd's metrics have none of them).
fn stage_times(leader: &Histograms, followers: &Histograms, ops: f64) -> Vec<StageTime> {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut times = Vec::new();
    for (nodes, histograms) in [("leader", leader), ("followers", followers)] {
        for (stage, key) in STAGES {
            let Some(series) = histograms.0.get(key).filter(|s| s.count > 0.0) else {
                continue;
            };
            times.push(StageTime {
                stage,
                nodes,
                per_request: round(series.count / ops),
                mean_ms: round(series.sum * 1000.0 / series.count),
                p99_le_ms: series
                    .quantile_le(0.99)
                    .filter(|le| le.is_finite())
                    .map(|le| le * 1000.0),
            });
        }
    }
    times
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
    fn histograms_are_read_by_series_and_subtracted() {
        let before = Histograms::parse(
            "# TYPE x histogram\nx_bucket{stage=\"a\",le=\"0.001\"} 1\nx_bucket{stage=\"a\",le=\"0.002\"} 2\n\
             x_bucket{stage=\"a\",le=\"+Inf\"} 2\nx_sum{stage=\"a\"} 0.003\nx_count{stage=\"a\"} 2\ny_sum 9\ny_count 3\n",
        );
        let after = Histograms::parse(
            "x_bucket{stage=\"a\",le=\"0.001\"} 90\nx_bucket{stage=\"a\",le=\"0.002\"} 100\n\
             x_bucket{stage=\"a\",le=\"+Inf\"} 102\nx_sum{stage=\"a\"} 0.203\nx_count{stage=\"a\"} 102\ny_sum 9\ny_count 3\n",
        );
        assert_eq!(after.totals("y"), Some((9.0, 3.0)));
        let window = after.since(&before);
        let Some(series) = window.0.get("x{stage=\"a\"}") else {
            panic!("series x{{stage=\"a\"}} in {window:?}");
        };
        assert_eq!(series.count, 100.0);
        assert!((series.sum - 0.2).abs() < 1e-12);
        // 89 of 100 at or under 1 ms, 98 under 2 ms, 2 beyond.
        assert_eq!(series.quantile_le(0.5), Some(0.001));
        assert_eq!(series.quantile_le(0.95), Some(0.002));
        assert_eq!(series.quantile_le(0.99), Some(f64::INFINITY));
        let mut both = window.clone();
        both.add(&window);
        assert_eq!(both.totals("x{stage=\"a\"}").map(|t| t.1), Some(200.0));
    }

    #[test]
    fn usage_is_divided_among_the_requests() {
        let appends = |sum: f64, count: f64| {
            Some(Histograms::parse(&format!(
                "a_bucket{{le=\"+Inf\"}} {count}\na_sum {sum}\na_count {count}\n\
                 raft3d_log_append_duration_seconds_count {count}\n\
                 raft3d_log_append_duration_seconds_sum {sum}\n"
            )))
        };
        let before = Sample {
            node_cpu: vec![Some(1.0), Some(1.0), None],
            own_cpu: Some(0.0),
            histograms: vec![appends(0.0, 0.0), appends(0.0, 0.0), None],
            append_series: "a",
        };
        let after = Sample {
            node_cpu: vec![Some(2.0), Some(1.5), None],
            own_cpu: Some(0.5),
            histograms: vec![appends(0.5, 500.0), appends(0.1, 400.0), None],
            append_series: "a",
        };
        let Some(usage) = per_op(&before, &after, 0, 1000) else {
            panic!("1000 requests were made");
        };
        assert_eq!(usage.leader_cpu_ms, 1.0);
        assert_eq!(usage.followers_cpu_ms, 0.5);
        assert_eq!(usage.client_cpu_ms, 0.5);
        assert_eq!(usage.ops_per_append, Some(2.0));
        assert_eq!(usage.append_ms, Some(1.0));
        // The log append stage: 500 on the leader, 400 on the one follower with metrics.
        let appends: Vec<_> = usage
            .stages
            .iter()
            .filter(|s| s.stage == "log append")
            .map(|s| (s.nodes, s.per_request, s.mean_ms))
            .collect();
        assert_eq!(appends, [("leader", 0.5, 1.0), ("followers", 0.4, 0.25)]);
    }
}
