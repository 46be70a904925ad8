//! The benchmark's report: markdown tables on stdout (one set per settings), the issue's
//! targets with pass or miss, and the files under `--out-dir`: `results.json` (every
//! number), `machine.json`, `table.md` (what was printed) and `chart-<settings>.svg`.
//!
//! Owns: presenting numbers and judging the targets. Measures nothing.

use crate::bulk::{BulkStats, NodeMemory};
use crate::failover::FailoverStats;
use crate::load::LoadStats;
use crate::machine::Machine;
use crate::settings::{Settings, SettingsName};
use crate::{BenchArgs, BenchError, Load, Measurements, Op};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// How each system is spoken to; printed above every table and kept in the JSON.
const PROTOCOLS: &str = "Raft3D: REST over HTTP/1.1 (reqwest), one keep-alive connection per client, \
     writes = POST /api/v1/print_jobs, reads = GET /api/v1/printers/{id} (linearizable by default); \
     etcd: native gRPC over HTTP/2 (tonic), one channel per client (etcd benchmark --conns=N --clients=N), \
     writes = KV.Put, reads = KV.Range with serializable=false (linearizable); \
     ~150-byte records on both; every request to the leader";
/// What the memory columns measure.
const MEMORY: &str =
    "memory: RssAnon (/proc/<pid>/status) and PSS (/proc/<pid>/smaps_rollup), MiB, \
     not VmRSS (etcd's mmapped bbolt file would count as its RSS)";

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
    /// Raft3D p50 divided by etcd's (below 1: Raft3D is faster).
    pub p50_ratio: Option<f64>,
}

impl Level {
    pub fn new(op: Op, load: Load) -> Self {
        Self {
            op,
            load,
            raft3d: None,
            etcd: None,
            throughput_ratio: None,
            p50_ratio: None,
        }
    }
}

/// Everything measured at one settings.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsRun {
    pub settings: Settings,
    pub levels: Vec<Level>,
    pub failover: PerSystem<FailoverStats>,
    pub bulk: PerSystem<BulkStats>,
}

/// Whether a target of the issue was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Miss,
    /// The run did not measure what the target needs (no etcd, a settings left out).
    NotMeasured,
}

/// One target of issue #15 and how this run did.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub target: &'static str,
    pub measured: String,
    pub verdict: Verdict,
}

/// The whole run, as written to `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub started_at_unix: u64,
    /// `YYYY-MM-DD` (UTC) of the start.
    pub date: String,
    pub machine: Machine,
    /// Nodes per cluster.
    pub nodes: u64,
    /// Measured seconds per level and system.
    pub duration_secs: u64,
    /// Unmeasured seconds before each measured period.
    pub warmup_secs: u64,
    /// Closed-loop clients per connection (1: a connection per client).
    pub clients_per_conn: u64,
    pub protocols: &'static str,
    pub memory_measure: &'static str,
    pub runs: Vec<SettingsRun>,
    pub targets: Vec<Target>,
}

impl BenchReport {
    pub fn new(
        args: &BenchArgs,
        started_at_unix: u64,
        machine: Machine,
        measured: Vec<Measurements>,
    ) -> Self {
        let runs: Vec<SettingsRun> = measured
            .into_iter()
            .map(|m| {
                let mut levels = m.levels;
                for level in &mut levels {
                    if let (Some(ours), Some(theirs)) = (&level.raft3d, &level.etcd) {
                        level.throughput_ratio = ratio(ours.ops_per_sec, theirs.ops_per_sec);
                        level.p50_ratio = ours.p50_ms.zip(theirs.p50_ms).and_then(ratio_of);
                    }
                }
                SettingsRun {
                    settings: m.settings,
                    levels,
                    failover: m.failover,
                    bulk: m.bulk,
                }
            })
            .collect();
        let targets = targets(&runs);
        Self {
            started_at_unix,
            date: utc_date(started_at_unix),
            machine,
            nodes: args.nodes,
            duration_secs: args.duration_secs,
            warmup_secs: args.warmup_secs,
            clients_per_conn: args.clients_per_conn,
            protocols: PROTOCOLS,
            memory_measure: MEMORY,
            runs,
            targets,
        }
    }

    pub fn print(&self) {
        print!("{}", self.tables());
    }

    /// Every table, as markdown (also what `table.md` holds).
    fn tables(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "# Raft3D vs etcd, {} ({} nodes each)\n\n\
             Machine: {}, {} CPU(s) shared by every node and the load generator, {} MiB RAM, \
             kernel {}, data on {} ({}). {}; {}; {}; commit {}.\n\n\
             {} s measured per level and system after {} s of warm-up; systems alternate \
             level by level.\n\nProtocols: {}{}.\n",
            self.date,
            self.nodes,
            m.cpu_model,
            m.cpus,
            m.ram_mib,
            m.kernel,
            m.data_dir.filesystem,
            m.data_dir.device,
            m.etcd_version.as_deref().unwrap_or("etcd not measured"),
            m.raft3d_version,
            m.rustc_version,
            m.git_commit,
            self.duration_secs,
            self.warmup_secs,
            PROTOCOLS,
            match self.clients_per_conn {
                1 => String::new(),
                k => format!(" (here {k} clients share each connection)"),
            }
        );
        for run in &self.runs {
            run_tables(&mut out, run);
        }
        self.targets_table(&mut out);
        out
    }

    fn targets_table(&self, out: &mut String) {
        let _ = writeln!(out, "## Targets (issue #15)\n");
        let _ = writeln!(out, "| target | measured | verdict |\n|---|---|---|");
        for t in &self.targets {
            let verdict = match t.verdict {
                Verdict::Pass => "PASS",
                Verdict::Miss => "MISS",
                Verdict::NotMeasured => "not measured",
            };
            let _ = writeln!(out, "| {} | {} | {verdict} |", t.target, t.measured);
        }
    }

    /// Writes `results.json`, `machine.json`, `table.md` and a chart per settings into
    /// `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), BenchError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BenchError::Report { path, source }
        };
        std::fs::create_dir_all(dir).map_err(failed(dir))?;
        let mut files = vec![
            (
                "results.json".to_owned(),
                serde_json::to_string_pretty(self)?,
            ),
            (
                "machine.json".to_owned(),
                serde_json::to_string_pretty(&self.machine)?,
            ),
            ("table.md".to_owned(), self.tables()),
        ];
        for run in &self.runs {
            files.push((format!("chart-{}.svg", run.settings.name), chart(run)));
        }
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(failed(&path))?;
        }
        println!(
            "\nreport written to {}/{{results.json,machine.json,table.md,chart-*.svg}}",
            dir.display()
        );
        Ok(())
    }
}

/// The level, failover and bulk tables of one settings.
fn run_tables(out: &mut String, run: &SettingsRun) {
    let s = &run.settings;
    let _ = writeln!(
        out,
        "## Settings \"{}\": {}\n",
        s.name,
        match s.name {
            SettingsName::Defaults => "each system at its own defaults",
            SettingsName::Matched => "both systems at the same timings",
        }
    );
    let _ = writeln!(
        out,
        "Raft3D: {} (flags: {}). etcd: {} (flags: {}), peers {}.\n",
        timings(&s.raft3d),
        flags(&s.raft3d_flags),
        timings(&s.etcd),
        flags(&s.etcd_flags),
        match s.etcd_peer_tls {
            true => "over mutual TLS",
            false => "plain",
        },
    );
    let _ = writeln!(
        out,
        "| op | load | Raft3D ops/s | p50 / p99 / p99.9 ms | err | etcd ops/s | p50 / p99 / p99.9 ms | err | ops/s ours/etcd | p50 ours/etcd |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for level in &run.levels {
        let op = match level.op {
            Op::Write => "write",
            Op::Read => "lin. read",
        };
        let (ours, ours_lat, ours_err) = cells(level.raft3d.as_ref());
        let (theirs, theirs_lat, theirs_err) = cells(level.etcd.as_ref());
        let _ = writeln!(
            out,
            "| {op} | {} | {ours} | {ours_lat} | {ours_err} | {theirs} | {theirs_lat} | {theirs_err} | {} | {} |",
            describe(level.load),
            format_ratio(level.throughput_ratio),
            format_ratio(level.p50_ratio),
        );
    }
    let _ = writeln!(out);
    usage_table(out, &run.levels);
    stage_table(out, &run.levels);
    failover_table(out, &run.failover);
    bulk_table(out, &run.bulk);
}

/// Per level and system, where the time of the measured window went ([`crate::usage`]).
fn usage_table(out: &mut String, levels: &[Level]) {
    let rows: Vec<_> = levels
        .iter()
        .flat_map(|l| {
            let per = [("Raft3D", &l.raft3d), ("etcd", &l.etcd)];
            per.into_iter()
                .filter_map(move |(name, stats)| Some((l, name, stats.as_ref()?.usage.as_ref()?)))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Where the time goes, per acknowledged request of the measured window: CPU ms \
         (/proc/<pid>/stat) of the leader, of both followers together and of the load \
         generator (client library and timing); requests per durable append of the leader \
         and the mean time of one (Raft3D: raft3d_log_append_duration_seconds, the WAL's \
         write and fdatasync; etcd: etcd_disk_wal_fsync_duration_seconds, the WAL fdatasync \
         alone).\n"
    );
    let _ = writeln!(
        out,
        "| op | load | system | CPU leader | CPU followers | CPU load gen | requests per append | append ms |\n\
         |---|---|---|---:|---:|---:|---:|---:|"
    );
    for (level, name, u) in rows {
        let op = match level.op {
            Op::Write => "write",
            Op::Read => "lin. read",
        };
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let _ = writeln!(
            out,
            "| {op} | {} | {name} | {:.3} | {:.3} | {:.3} | {} | {} |",
            describe(level.load),
            u.leader_cpu_ms,
            u.followers_cpu_ms,
            u.client_cpu_ms,
            opt(u.ops_per_append, 1),
            opt(u.append_ms, 3),
        );
    }
    let _ = writeln!(out);
}

/// Per Raft3D write level, the stages of one write ([`crate::usage::StageTime`]).
fn stage_table(out: &mut String, levels: &[Level]) {
    let rows: Vec<_> = levels
        .iter()
        .filter(|l| l.op == Op::Write)
        .filter_map(|l| Some((l, l.raft3d.as_ref()?.usage.as_ref()?)))
        .filter(|(_, usage)| !usage.stages.is_empty())
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "One Raft3D write, stage by stage, from the nodes' own histograms (`/metrics`: the \
         HTTP request, raft3d_write_stage_duration_seconds, raft3d_log_append_duration_seconds) \
         over the measured window: how many times the stage ran per acknowledged request (below \
         1: requests shared it), its mean, and the upper bound of the bucket holding its p99. \
         Commit holds the leader's replication and apply; a follower's append holds its log \
         append.\n"
    );
    let _ = writeln!(
        out,
        "| load | stage | leader: runs per request | mean ms | p99 <= ms | followers: runs per request | mean ms | p99 <= ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|"
    );
    for (level, usage) in rows {
        for (stage, _) in crate::usage::STAGES {
            if !usage.stages.iter().any(|t| t.stage == stage) {
                continue;
            }
            let on = |nodes: &str| {
                let time = usage
                    .stages
                    .iter()
                    .find(|t| t.stage == stage && t.nodes == nodes);
                match time {
                    None => "- | - | -".to_owned(),
                    Some(t) => format!(
                        "{:.2} | {:.3} | {}",
                        t.per_request,
                        t.mean_ms,
                        t.p99_le_ms
                            .map_or_else(|| "beyond".to_owned(), |ms| format!("{ms}"))
                    ),
                }
            };
            let _ = writeln!(
                out,
                "| {} | {stage} | {} | {} |",
                describe(level.load),
                on("leader"),
                on("followers")
            );
        }
    }
    let _ = writeln!(out);
}

fn timings(t: &crate::settings::Timings) -> String {
    format!(
        "heartbeat {} ms, election timeout [{}, {}) ms, snapshot every {} entries",
        t.heartbeat_ms, t.election_min_ms, t.election_max_ms, t.snapshot_every
    )
}

fn flags(flags: &[String]) -> String {
    match flags.is_empty() {
        true => "none".to_owned(),
        false => format!("`{}`", flags.join(" ")),
    }
}

/// `ops/s`, `p50 / p99 / p99.9` and errors of one system at one level.
fn cells(stats: Option<&LoadStats>) -> (String, String, String) {
    match stats {
        None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        Some(s) => (
            format!("{:.0}", s.ops_per_sec),
            format!(
                "{} / {} / {}",
                format_ms(s.p50_ms),
                format_ms(s.p99_ms),
                format_ms(s.p999_ms)
            ),
            s.errors.to_string(),
        ),
    }
}

fn failover_table(out: &mut String, failover: &PerSystem<FailoverStats>) {
    let rows = [("Raft3D", &failover.raft3d), ("etcd", &failover.etcd)];
    if rows.iter().all(|(_, stats)| stats.is_none()) {
        return;
    }
    let _ = writeln!(
        out,
        "Failover: SIGKILL the leader under load, time until a write to a survivor is \
         acknowledged (probes every 20 ms over the survivors' connections, opened before the kill).\n"
    );
    let _ = writeln!(
        out,
        "| system | kills | p50 ms | p99 ms | max ms | failed |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, stats) in rows {
        let Some(s) = stats else { continue };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} |",
            s.kills,
            format_ms(s.p50_ms),
            format_ms(s.p99_ms),
            format_ms(s.max_ms),
            s.failed
        );
    }
    if let (Some(ours), Some(theirs)) = rows_pair(failover) {
        let r = |a: Option<f64>, b: Option<f64>| format_ratio(a.zip(b).and_then(ratio_of));
        let _ = writeln!(
            out,
            "| ours/etcd | | {} | {} | {} | |",
            r(ours.p50_ms, theirs.p50_ms),
            r(ours.p99_ms, theirs.p99_ms),
            r(ours.max_ms, theirs.max_ms)
        );
    }
    let _ = writeln!(out);
}

fn rows_pair<T>(per: &PerSystem<T>) -> (Option<&T>, Option<&T>) {
    (per.raft3d.as_ref(), per.etcd.as_ref())
}

fn bulk_table(out: &mut String, bulk: &PerSystem<BulkStats>) {
    let rows = [("Raft3D", &bulk.raft3d), ("etcd", &bulk.etcd)];
    let Some(records) = rows.iter().find_map(|(_, s)| s.as_ref().map(|s| s.records)) else {
        return;
    };
    let _ = writeln!(
        out,
        "{records} records on fresh clusters (filled by 64 clients); {MEMORY}; restart = \
         SIGKILL of a follower until it answers a linearizable read; wiped = a follower's data \
         deleted (etcd: member removed and added again) until it has the leader's state.\n"
    );
    let _ = writeln!(
        out,
        "| system | fill s | RssAnon MiB per node | PSS MiB per node | restart ms (each) | restarted node RssAnon / PSS MiB | wiped catch-up ms | catch-up peaks MiB: leader RssAnon / follower VmHWM |\n\
         |---|---:|---|---|---|---|---:|---|"
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
        let per_node = |f: fn(&NodeMemory) -> f64| list(s.memory.iter().map(f).collect());
        let restarted = s.after_restart.as_ref().map_or_else(
            || "-".to_owned(),
            |m| format!("{:.0} / {:.0}", m.rss_anon_mib, m.pss_mib),
        );
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {} | {} | {} | {restarted} | {:.0} | {:.0} / {:.0} |",
            s.fill_secs,
            per_node(|m| m.rss_anon_mib),
            per_node(|m| m.pss_mib),
            list(s.restart_ms.clone()),
            s.wiped_catch_up_ms,
            s.catch_up_peak_mib.0,
            s.catch_up_peak_mib.1,
        );
    }
    let _ = writeln!(out);
    let backups = rows
        .iter()
        .filter_map(|(name, s)| Some((name, s.as_ref()?)))
        .flat_map(|(name, s)| s.backups.iter().map(move |b| (name, b)));
    for (name, b) in backups {
        let _ = writeln!(
            out,
            "{name} backup of those records (`raft3d backup` from a follower just restarted, \
             twice in a row, writes idle): \
             {:.2} s, {:.1} MiB; the follower's RssAnon {:.0} MiB before, {:.0} MiB at most while \
             serving it; the command's RssAnon {:.0} MiB at most. (etcd's `snapshot save` is \
             not measured: etcdctl is not installed here.)\n",
            b.secs,
            b.bytes as f64 / (1 << 20) as f64,
            b.node_rss_anon_mib.0,
            b.node_rss_anon_mib.1,
            b.client_peak_mib
        );
    }
}

/// The issue's targets, judged on this run: throughput and latency at matched settings
/// with etcd over gRPC; failover at matched settings and at Raft3D's defaults.
fn targets(runs: &[SettingsRun]) -> Vec<Target> {
    let run = |name: SettingsName| runs.iter().find(|r| r.settings.name == name);
    let matched = run(SettingsName::Matched);
    let level = |clients: u64| {
        matched.and_then(|r| {
            r.levels
                .iter()
                .find(|l| l.op == Op::Write && l.load == Load::Closed { clients })
        })
    };
    let throughput = |target: &'static str, clients: u64, wanted: f64| {
        let ratio = level(clients).and_then(|l| l.throughput_ratio);
        let measured = level(clients)
            .and_then(|l| Some((l.raft3d.as_ref()?, l.etcd.as_ref()?)))
            .map_or_else(String::new, |(ours, theirs)| {
                format!(
                    "{:.0} vs {:.0} writes/s = {}",
                    ours.ops_per_sec,
                    theirs.ops_per_sec,
                    format_ratio(ratio)
                )
            });
        judge(target, measured, ratio.map(|r| r >= wanted))
    };
    let p50 = level(1).and_then(|l| Some((l.raft3d.as_ref()?.p50_ms?, l.etcd.as_ref()?.p50_ms?)));
    let matched_failover = failover(matched).and_then(|(ours, theirs)| {
        Some((ours.p99_ms?, theirs?.p99_ms?, ours.failed + theirs?.failed))
    });
    let default_failover = failover(run(SettingsName::Defaults)).map(|(ours, _)| ours);
    vec![
        throughput("writes, 16 clients, matched: >= 1.5x etcd", 16, 1.5),
        throughput("writes, 64 clients, matched: >= 2x etcd", 64, 2.0),
        judge(
            "write p50, 1 client, matched: <= etcd's",
            p50.map_or_else(String::new, |(ours, theirs)| {
                format!("{ours:.2} vs {theirs:.2} ms")
            }),
            p50.map(|(ours, theirs)| ours <= theirs),
        ),
        judge(
            "failover p99, matched: <= etcd's",
            matched_failover.map_or_else(String::new, |(ours, theirs, failed)| {
                format!("{ours:.0} vs {theirs:.0} ms ({failed} kills without recovery)")
            }),
            matched_failover.map(|(ours, theirs, failed)| ours <= theirs && failed == 0),
        ),
        judge(
            "failover p99, Raft3D defaults: <= 1000 ms",
            default_failover
                .and_then(|f| Some((f.p99_ms?, f.failed)))
                .map_or_else(String::new, |(p99, failed)| {
                    format!("{p99:.0} ms ({failed} kills without recovery)")
                }),
            default_failover.and_then(|f| Some(f.p99_ms? <= 1000.0 && f.failed == 0)),
        ),
    ]
}

/// Raft3D's failover stats of a settings run, with etcd's if measured.
fn failover(run: Option<&SettingsRun>) -> Option<(&FailoverStats, Option<&FailoverStats>)> {
    let run = run?;
    Some((run.failover.raft3d.as_ref()?, run.failover.etcd.as_ref()))
}

fn judge(target: &'static str, measured: String, passed: Option<bool>) -> Target {
    Target {
        target,
        measured: match measured.is_empty() {
            true => "-".to_owned(),
            false => measured,
        },
        verdict: match passed {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Miss,
            None => Verdict::NotMeasured,
        },
    }
}

/// A bar chart of write throughput per closed-loop level of one settings, Raft3D next to
/// etcd.
fn chart(run: &SettingsRun) -> String {
    let bars: Vec<(u64, f64, f64)> = run
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
<text x="10" y="20" font-size="14">Writes/s (~150-byte records), 3-node clusters, same machine, settings "{}"; Raft3D REST/HTTP 1.1, etcd gRPC</text>
<rect x="{}" y="32" width="10" height="10" fill="#2f6fb0"/><text x="{}" y="41">Raft3D</text>
<rect x="{}" y="32" width="10" height="10" fill="#9a9a9a"/><text x="{}" y="41">etcd</text>
<line x1="60" y1="{base}" x2="{}" y2="{base}" stroke="#333"/>
"##,
        run.settings.name,
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
        let _ = writeln!(
            svg,
            r#"<text x="{:.0}" y="{}" text-anchor="middle">{}</text>"#,
            x + 47.5,
            base + 18.0,
            describe(Load::Closed { clients })
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// `a / b`, rounded to two decimals; `None` when `b` is zero.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b * 100.0).round() / 100.0)
}

fn ratio_of((a, b): (f64, f64)) -> Option<f64> {
    ratio(a, b)
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

/// `YYYY-MM-DD` of a Unix time, in UTC (the civil-from-days algorithm of
/// H. Hinnant's date library; no date crate for one line of the report).
fn utc_date(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
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

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31");
    }

    #[test]
    fn targets_without_etcd_are_not_measured() {
        assert!(targets(&[])
            .iter()
            .all(|t| t.verdict == Verdict::NotMeasured));
    }
}
