//! The benchmark's report: the table on stdout, `bench.json` and `bench.svg` (write
//! throughput per level, both systems side by side).
//!
//! Owns: presenting numbers. Measures nothing.

use super::bulk::BulkStats;
use super::failover::FailoverStats;
use super::load::LoadStats;
use super::{BenchArgs, BenchError, Load, Measurements, Op};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// A value measured on each system (`None`: not measured).
#[derive(Debug, Clone, Serialize)]
pub struct PerSystem<T> {
    pub raft3d: Option<T>,
    pub etcd: Option<T>,
}

impl<T> Default for PerSystem<T> {
    fn default() -> Self {
        Self {
            raft3d: None,
            etcd: None,
        }
    }
}

/// One level: one kind of request under one load, on both systems.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub op: Op,
    pub load: Load,
    pub raft3d: Option<LoadStats>,
    pub etcd: Option<LoadStats>,
    /// Raft3D ops/s divided by etcd's (above 1: Raft3D is faster).
    pub throughput_ratio: Option<f64>,
}

impl Level {
    pub fn new(op: Op, load: Load) -> Self {
        Self {
            op,
            load,
            raft3d: None,
            etcd: None,
            throughput_ratio: None,
        }
    }
}

/// The machine the benchmark ran on (load generator and every node share it).
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `std::thread::available_parallelism`.
    pub cpus: usize,
    pub os: &'static str,
    pub arch: &'static str,
}

/// The whole run, as written to `bench.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub started_at_unix: u64,
    pub machine: Machine,
    /// Nodes per cluster.
    pub nodes: u64,
    /// Measured seconds per level and system.
    pub duration_secs: u64,
    /// Unmeasured seconds before each measured period.
    pub warmup_secs: u64,
    pub levels: Vec<Level>,
    pub failover: PerSystem<FailoverStats>,
    pub bulk: PerSystem<BulkStats>,
}

impl BenchReport {
    pub fn new(args: &BenchArgs, started_at_unix: u64, measured: Measurements) -> Self {
        let mut levels = measured.levels;
        for level in &mut levels {
            level.throughput_ratio = match (&level.raft3d, &level.etcd) {
                (Some(ours), Some(theirs)) => ratio(ours.ops_per_sec, theirs.ops_per_sec),
                _ => None,
            };
        }
        Self {
            started_at_unix,
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                os: std::env::consts::OS,
                arch: std::env::consts::ARCH,
            },
            nodes: args.nodes,
            duration_secs: args.duration_secs,
            warmup_secs: args.warmup_secs,
            levels,
            failover: measured.failover,
            bulk: measured.bulk,
        }
    }

    /// Prints the three tables: levels, failover, bulk.
    pub fn print(&self) {
        print!("{}", self.table());
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nRaft3D vs etcd: {} nodes each, {} CPU(s) shared with the load generator, \
             {} s per level after {} s of warm-up, ~150-byte records",
            self.nodes, self.machine.cpus, self.duration_secs, self.warmup_secs
        );
        let _ = writeln!(
            out,
            "{:<6} {:<14} {:<7} {:>9} {:>8} {:>8} {:>8} {:>7}",
            "op", "load", "system", "ops/s", "p50_ms", "p99_ms", "p999_ms", "errors"
        );
        for level in &self.levels {
            let (op, load) = (
                format!("{:?}", level.op).to_lowercase(),
                describe(level.load),
            );
            let mut first = true;
            for (name, stats) in [("Raft3D", &level.raft3d), ("etcd", &level.etcd)] {
                let Some(s) = stats else { continue };
                let (op, load) = if first {
                    (op.as_str(), load.as_str())
                } else {
                    ("", "")
                };
                first = false;
                let _ = writeln!(
                    out,
                    "{op:<6} {load:<14} {name:<7} {:>9.0} {:>8} {:>8} {:>8} {:>7}",
                    s.ops_per_sec,
                    format_ms(s.p50_ms),
                    format_ms(s.p99_ms),
                    format_ms(s.p999_ms),
                    s.errors
                );
            }
            if let (Some(ours), Some(theirs)) = (&level.raft3d, &level.etcd) {
                let r = |a: Option<f64>, b: Option<f64>| {
                    format_ratio(a.zip(b).and_then(|(a, b)| ratio(a, b)))
                };
                let _ = writeln!(
                    out,
                    "{:<21} {:<7} {:>9} {:>8} {:>8} {:>8}",
                    "",
                    "ratio",
                    format_ratio(level.throughput_ratio),
                    r(ours.p50_ms, theirs.p50_ms),
                    r(ours.p99_ms, theirs.p99_ms),
                    r(ours.p999_ms, theirs.p999_ms),
                );
            }
        }
        self.failover_table(&mut out);
        self.bulk_table(&mut out);
        out
    }

    fn failover_table(&self, out: &mut String) {
        let rows = [
            ("Raft3D", &self.failover.raft3d),
            ("etcd", &self.failover.etcd),
        ];
        if rows.iter().all(|(_, stats)| stats.is_none()) {
            return;
        }
        let _ = writeln!(
            out,
            "\nfailover: SIGKILL the leader, time until the next write is acknowledged"
        );
        let _ = writeln!(
            out,
            "{:<7} {:>6} {:>8} {:>8} {:>8} {:>7}",
            "system", "kills", "p50_ms", "p99_ms", "max_ms", "failed"
        );
        for (name, stats) in rows {
            let Some(s) = stats else { continue };
            let _ = writeln!(
                out,
                "{name:<7} {:>6} {:>8} {:>8} {:>8} {:>7}",
                s.kills,
                format_ms(s.p50_ms),
                format_ms(s.p99_ms),
                format_ms(s.max_ms),
                s.failed
            );
        }
    }

    fn bulk_table(&self, out: &mut String) {
        let rows = [("Raft3D", &self.bulk.raft3d), ("etcd", &self.bulk.etcd)];
        let Some(records) = rows.iter().find_map(|(_, s)| s.as_ref().map(|s| s.records)) else {
            return;
        };
        let _ = writeln!(out, "\n{records} records (fresh clusters)");
        let _ = writeln!(
            out,
            "{:<7} {:>7} {:<22} {:>10} {:<20} {:<20} {:>8}",
            "system",
            "fill_s",
            "restart_ms (each)",
            "wiped_ms",
            "RSS_MiB per node",
            "peak_MiB per node",
            "restart"
        );
        for (name, stats) in rows {
            let Some(s) = stats else { continue };
            let list = |values: Vec<f64>| {
                values
                    .iter()
                    .map(|v| format!("{v:.0}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                out,
                "{name:<7} {:>7.1} {:<22} {:>10} {:<20} {:<20} {:>8}",
                s.fill_secs,
                list(s.restart_ms.clone()),
                format_ms(Some(s.wiped_catch_up_ms)),
                list(s.memory.iter().map(|m| m.rss_mib).collect()),
                list(s.memory.iter().map(|m| m.peak_rss_mib).collect()),
                format_ms(s.memory.iter().find_map(|m| m.peak_rss_after_restart_mib)),
            );
        }
        let _ = writeln!(out, "(restart: peak RSS MiB of the restarted node)");
    }

    /// Writes `bench.json`, `bench.txt` (the table) and `bench.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), BenchError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BenchError::Report { path, source }
        };
        std::fs::create_dir_all(dir).map_err(failed(dir))?;
        let files = [
            ("bench.json", serde_json::to_string_pretty(self)?),
            ("bench.txt", self.table()),
            ("bench.svg", self.chart()),
        ];
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(failed(&path))?;
        }
        println!("report written to {}/bench.{{json,txt,svg}}", dir.display());
        Ok(())
    }

    /// A bar chart of write throughput per closed-loop level, Raft3D next to etcd.
    fn chart(&self) -> String {
        let bars: Vec<(u64, f64, f64)> = self
            .levels
            .iter()
            .filter(|l| l.op == Op::Write)
            .filter_map(|l| match l.load {
                Load::Closed { clients } => Some((
                    clients,
                    l.raft3d.as_ref().map_or(0.0, |s| s.ops_per_sec),
                    l.etcd.as_ref().map_or(0.0, |s| s.ops_per_sec),
                )),
                Load::Open { .. } => None,
            })
            .collect();
        let top = bars.iter().map(|&(_, a, b)| a.max(b)).fold(1.0, f64::max);
        let (width, height, base, plot) = (120 + 130 * bars.len(), 300, 250.0, 200.0);
        let mut svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<text x="10" y="20" font-size="14">Writes/s (~150-byte records), 3-node clusters, same machine</text>
<rect x="{}" y="32" width="10" height="10" fill="#2f6fb0"/><text x="{}" y="41">Raft3D</text>
<rect x="{}" y="32" width="10" height="10" fill="#9a9a9a"/><text x="{}" y="41">etcd</text>
<line x1="60" y1="{base}" x2="{}" y2="{base}" stroke="#333"/>
"##,
            width - 160,
            width - 145,
            width - 80,
            width - 65,
            width - 20
        );
        for (i, &(clients, ours, theirs)) in bars.iter().enumerate() {
            let x = 80.0 + 130.0 * i as f64;
            for (offset, value, color) in [(0.0, ours, "#2f6fb0"), (50.0, theirs, "#9a9a9a")] {
                let h = value / top * plot;
                let _ = writeln!(
                    svg,
                    r##"<rect x="{:.0}" y="{:.1}" width="45" height="{h:.1}" fill="{color}"/><text x="{:.0}" y="{:.1}" text-anchor="middle">{value:.0}</text>"##,
                    x + offset,
                    base - h,
                    x + offset + 22.5,
                    base - h - 4.0
                );
            }
            let label = if clients == 1 {
                "1 client".to_owned()
            } else {
                format!("{clients} clients")
            };
            let _ = writeln!(
                svg,
                r#"<text x="{:.0}" y="{}" text-anchor="middle">{label}</text>"#,
                x + 47.5,
                base + 18.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// `a / b`, rounded to two decimals; `None` when `b` is zero.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b * 100.0).round() / 100.0)
}

fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

/// `1 client`, `64 clients`, `1000/s open`.
pub fn describe(load: Load) -> String {
    match load {
        Load::Closed { clients: 1 } => "1 client".to_owned(),
        Load::Closed { clients } => format!("{clients} clients"),
        Load::Open { rate_per_sec } => format!("{rate_per_sec}/s open"),
    }
}

pub fn format_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_ours_over_theirs_and_absent_without_a_divisor() {
        assert_eq!(ratio(4500.0, 3000.0), Some(1.5));
        assert_eq!(ratio(1.0, 3.0), Some(0.33));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(format_ratio(None), "-");
    }

    #[test]
    fn loads_are_described_for_people() {
        assert_eq!(describe(Load::Closed { clients: 1 }), "1 client");
        assert_eq!(describe(Load::Closed { clients: 64 }), "64 clients");
        assert_eq!(describe(Load::Open { rate_per_sec: 1000 }), "1000/s open");
    }
}
