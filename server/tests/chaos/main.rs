//! Fault-injection suite: a real cluster of `raft3d` processes whose Raft links run
//! through proxies we control, a recorded concurrent workload, seeded faults, and checks
//! that nothing acknowledged was lost and the farm's invariants held.
//!
//! The faults ([`faults::Fault`]), dealt from a seeded shuffle, one round at a time:
//! - kill leader / kill follower: SIGKILL, restarted when the round heals;
//! - kill leader and restart it at once: SIGKILL and a new process on the same data dir
//!   right away (a supervisor with no delay), which must not resume its old term;
//! - kill leader near a snapshot: SIGKILL within 10 entries of its next snapshot;
//! - restart during a snapshot install: a follower stopped until the leader purged the
//!   entries it needs, back with slowed links, and the leader, the receiver or both
//!   SIGKILLed and restarted at once while the snapshot is on its way;
//! - pause leader: SIGSTOP for longer than the election timeout;
//! - isolate leader / isolate minority: cut off silently or with connections reset;
//! - bridge partition: two halves that only talk through the leader;
//! - one-way: leader hears nobody; slow leader links: 250 ms on every chunk it sends;
//! - wipe follower: its data dir deleted, restarted empty.
//!
//! On 5 nodes a round may add single-node faults on other nodes while the first holds
//! (two nodes killed, or one killed and one partitioned, ...), never more than
//! `(n - 1) / 2` impaired at once. Besides the history checks (`check.rs`), a node
//! process that exits on its own is a violation, and so is a run with too few
//! acknowledged writes or checked reads to mean anything.
//!
//! `cargo test --release -p raft3d --test chaos -- [--seed N] [--duration 60s|10m]
//! [--nodes 3|5] [--out FILE]`. Prints a report, writes it as JSON, exits non-zero on
//! any violation. The same seed replays the same fault schedule and workload choices
//! (timing on a real machine still varies).

mod check;
mod faults;
mod nodes;
mod proxy;
mod rng;
mod snapshot_install;
mod workload;

use check::NodeEnd;
use faults::FaultRecord;
use nodes::Nodes;
use raft3d_client::{Call, Client, RetryPolicy};
use rng::Rng;
use serde::Serialize;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workload::{Outcome, Workload};

struct Options {
    seed: u64,
    duration: Duration,
    nodes: u64,
    clients: usize,
    out: String,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        seed: 1,
        duration: Duration::from_secs(60),
        nodes: 3,
        clients: 8,
        out: "chaos-results/report.json".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => options.seed = value()?.parse().map_err(|_| "bad --seed")?,
            "--random-seed" => {
                options.seed = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
            }
            "--duration" => options.duration = parse_duration(&value()?)?,
            "--nodes" => options.nodes = value()?.parse().map_err(|_| "bad --nodes")?,
            "--clients" => options.clients = value()?.parse().map_err(|_| "bad --clients")?,
            "--out" => options.out = value()?,
            // cargo's own test flags, passed along to every test binary.
            "--nocapture" | "--quiet" | "-q" | "--color" | "--format" | "--test-threads" => {}
            other if other.starts_with("--test-threads=") || other.starts_with("--color=") => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number.parse().map_err(|_| format!("bad duration {raw}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration unit in {raw}")),
    }
}

#[derive(Serialize)]
struct Report {
    seed: u64,
    nodes: u64,
    clients: usize,
    duration_secs: u64,
    operations: std::collections::BTreeMap<&'static str, usize>,
    /// Writes answered 2xx, and job reads answered with a status or a 404.
    acknowledged_writes: usize,
    checked_reads: usize,
    faults: Vec<FaultRecord>,
    max_unavailable_ms: u64,
    p99_unavailable_ms: u64,
    checks: std::collections::BTreeMap<&'static str, usize>,
    violations: Vec<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "chaos: seed {} · {} nodes · {} clients · {:?}",
        options.seed, options.nodes, options.clients, options.duration
    );
    let report = run(&options).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if let Some(parent) = std::path::Path::new(&options.out).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(
        &options.out,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    );
    println!("report written to {}", options.out);
    let checks: usize = report.checks.values().sum();
    // The plain closing line CI reads.
    println!(
        "{} passed, {} failed",
        checks - report.violations.len().min(checks),
        report.violations.len()
    );
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "chaos: {} violations; replay with --seed {}",
            report.violations.len(),
            options.seed
        );
        ExitCode::FAILURE
    }
}

async fn run(options: &Options) -> Report {
    let mut rng = Rng::new(options.seed);
    let nodes = Arc::new(tokio::sync::Mutex::new(Nodes::start(options.nodes).await));
    let (urls, token) = {
        let nodes = nodes.lock().await;
        let urls: Vec<String> = nodes.ids().into_iter().map(|id| nodes.url(id)).collect();
        (urls, nodes.admin_token())
    };
    wait_for_leader(&nodes, Duration::from_secs(30)).await;

    let workload = Workload::new(urls, token.clone());
    let stop_at = Instant::now() + options.duration;
    let clients: Vec<_> = (0..options.clients)
        .map(|c| tokio::spawn(workload.clone().client(c, rng.fork(), stop_at)))
        .collect();
    let served = Arc::new(Mutex::new(Vec::<u64>::new()));
    let prober = tokio::spawn(probe(
        workload.clone(),
        workload.started,
        served.clone(),
        stop_at,
    ));
    let faults = faults::inject_faults(&nodes, &mut rng, &workload, stop_at).await;
    for client in clients {
        let _ = client.await;
    }
    let _ = prober.await;

    // Heal everything, let the cluster settle, then look at the final state.
    {
        let mut nodes = nodes.lock().await;
        nodes.reap_exited();
        nodes.heal();
    }
    let leader = wait_for_leader(&nodes, Duration::from_secs(60)).await;
    let ends = wait_converged(&nodes, Duration::from_secs(60)).await;
    let mut nodes = nodes.lock().await;
    nodes.reap_exited();
    let reader = Client::new([nodes.url(leader)])
        .expect("client")
        .with_token(token);
    let get = |path: &str| {
        let (reader, call) = (reader.clone(), Call::get(path));
        async move {
            reader
                .execute(&call)
                .await
                .ok()?
                .json::<serde_json::Value>()
                .ok()
        }
    };
    let (printers, spools, jobs) = (
        get("/api/v1/printers").await,
        get("/api/v1/filaments").await,
        get("/api/v1/print_jobs").await,
    );
    let history = workload.history.lock().expect("history").clone();
    let mut findings = match (printers, spools, jobs) {
        (Some(p), Some(s), Some(j)) => check::check(&history, &p, &s, &j, &ends),
        _ => check::Findings {
            violations: vec!["could not read the final state from the leader".to_owned()],
            ..Default::default()
        },
    };
    let (acknowledged_writes, checked_reads) =
        check::not_vacuous(&history, options.duration, &mut findings);
    check::no_node_exited(&nodes.ids(), &nodes.exits, &mut findings);
    if !findings.violations.is_empty() {
        let dir = std::path::Path::new(&options.out)
            .with_file_name(format!("logs-seed-{}", options.seed));
        nodes.save_logs(&dir);
        println!("node logs saved to {}", dir.display());
    }
    // Only the time the prober ran counts (not the healing and checking afterwards).
    let probed_until_ms = options.duration.as_millis() as u64;
    let faults = with_unavailability(faults, &served.lock().expect("served"), probed_until_ms);
    let mut gaps: Vec<u64> = faults.iter().map(|f| f.unavailable_ms).collect();
    gaps.sort_unstable();
    let mut operations = std::collections::BTreeMap::new();
    for op in &history {
        let key = match op.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::Unknown => "unknown",
        };
        *operations.entry(key).or_insert(0) += 1;
    }
    Report {
        seed: options.seed,
        nodes: options.nodes,
        clients: options.clients,
        duration_secs: options.duration.as_secs(),
        operations,
        acknowledged_writes,
        checked_reads,
        max_unavailable_ms: gaps.last().copied().unwrap_or(0),
        p99_unavailable_ms: gaps
            .get((gaps.len() * 99 / 100).min(gaps.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0),
        faults,
        checks: findings.checks,
        violations: findings.violations,
    }
}

async fn wait_for_leader(nodes: &tokio::sync::Mutex<Nodes>, limit: Duration) -> u64 {
    let leader = raft3d_launcher::eventually("a leader elected", limit, || async {
        nodes
            .lock()
            .await
            .leader()
            .await
            .ok_or_else(|| "no leader yet".to_owned())
    });
    leader.await.unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until every node answers with the same applied index; returns each node's
/// (index, digest), `None` for a node that never answered.
async fn wait_converged(nodes: &tokio::sync::Mutex<Nodes>, limit: Duration) -> Vec<NodeEnd> {
    let deadline = Instant::now() + limit;
    loop {
        let nodes = nodes.lock().await;
        let mut ends = Vec::new();
        for id in nodes.ids() {
            let view = nodes.view(id).await;
            let end = view.map(|v| (v["applied_index"].clone(), v["state_digest"].clone()));
            ends.push((id, end));
        }
        let first = ends[0].1.as_ref().map(|(index, _)| index);
        let same = ends
            .iter()
            .all(|(_, end)| end.is_some() && end.as_ref().map(|(index, _)| index) == first);
        if same || Instant::now() > deadline {
            return ends;
        }
        drop(nodes);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every 100 ms, a linearizable read on some node; records when one was served.
async fn probe(
    workload: Arc<Workload>,
    started: Instant,
    served: Arc<Mutex<Vec<u64>>>,
    stop_at: Instant,
) {
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(800),
        ..RetryPolicy::default()
    };
    let client = workload.api(policy);
    let urls = &workload.urls;
    let probe = Call::get("/api/v1/print_jobs/probe");
    let mut turn = 0usize;
    while Instant::now() < stop_at {
        turn += 1;
        // One try at one node: the probe measures availability, it must not retry.
        if let Ok(answer) = client.once(&urls[turn % urls.len()], &probe).await {
            // 404 = the node confirmed with a quorum that there is no such job.
            if answer.status == raft3d_client::StatusCode::NOT_FOUND {
                served
                    .lock()
                    .expect("served")
                    .push(started.elapsed().as_millis() as u64);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn with_unavailability(
    mut faults: Vec<FaultRecord>,
    served: &[u64],
    end_ms: u64,
) -> Vec<FaultRecord> {
    let starts: Vec<u64> = faults.iter().map(|f| f.at_ms).collect();
    for (i, fault) in faults.iter_mut().enumerate() {
        let until = starts.get(i + 1).copied().unwrap_or(end_ms).min(end_ms);
        let mut last = served
            .iter()
            .rev()
            .find(|t| **t <= fault.at_ms)
            .copied()
            .unwrap_or(fault.at_ms);
        let mut longest = 0;
        for t in served.iter().filter(|t| **t > fault.at_ms && **t <= until) {
            longest = longest.max(t - last);
            last = *t;
        }
        fault.unavailable_ms = longest.max(
            until
                .saturating_sub(last)
                .min(until.saturating_sub(fault.at_ms)),
        );
    }
    faults
}
