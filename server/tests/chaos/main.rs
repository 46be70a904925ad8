//! Fault-injection suite: a real cluster of `raft3d` processes whose Raft links run
//! through proxies we control, a recorded concurrent workload, seeded faults (kills,
//! pauses, partitions, one-way loss, wiped disks, leader kills near a snapshot), and
//! checks that nothing acknowledged was lost and the farm's invariants held.
//!
//! `cargo test --release -p raft3d --test chaos -- [--seed N] [--duration 60s|10m]
//! [--nodes 3|5] [--out FILE]`. Prints a report, writes it as JSON, exits non-zero on
//! any violation. The same seed replays the same fault schedule and workload choices
//! (timing on a real machine still varies).

mod check;
mod nodes;
mod proxy;
mod rng;
mod workload;

use nodes::Nodes;
use proxy::Link;
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

#[derive(Debug, Clone, Serialize)]
struct FaultRecord {
    at_ms: u64,
    fault: String,
    /// Longest time with no linearizable read served by any node, from this fault until
    /// the next one (or the end of the run).
    unavailable_ms: u64,
}

#[derive(Serialize)]
struct Report {
    seed: u64,
    nodes: u64,
    clients: usize,
    duration_secs: u64,
    operations: std::collections::BTreeMap<&'static str, usize>,
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
    let urls: Vec<String> = {
        let nodes = nodes.lock().await;
        nodes.ids().into_iter().map(|id| nodes.url(id)).collect()
    };
    wait_for_leader(&nodes, Duration::from_secs(30)).await;

    let workload = Workload::new(urls.clone());
    let stop_at = Instant::now() + options.duration;
    let clients: Vec<_> = (0..options.clients)
        .map(|c| tokio::spawn(workload.clone().client(c, rng.fork(), stop_at)))
        .collect();
    let served = Arc::new(Mutex::new(Vec::<u64>::new()));
    let prober = tokio::spawn(probe(
        urls.clone(),
        workload.started,
        served.clone(),
        stop_at,
    ));
    let faults = inject_faults(&nodes, &mut rng, &workload, stop_at).await;
    for client in clients {
        let _ = client.await;
    }
    let _ = prober.await;

    // Heal everything, let the cluster settle, then look at the final state.
    nodes.lock().await.heal();
    let leader = wait_for_leader(&nodes, Duration::from_secs(60)).await;
    let digests = wait_converged(&nodes, Duration::from_secs(60)).await;
    let nodes = nodes.lock().await;
    let get = |path: &str| {
        let url = format!("{}{path}", nodes.url(leader));
        let client = nodes.client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()?
                .json::<serde_json::Value>()
                .await
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
        (Some(p), Some(s), Some(j)) => check::check(&history, &p, &s, &j, &digests),
        _ => check::Findings {
            violations: vec!["could not read the final state from the leader".to_owned()],
            ..Default::default()
        },
    };
    if history.is_empty() {
        findings
            .violations
            .push("the workload recorded no operations".to_owned());
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
    let deadline = Instant::now() + limit;
    loop {
        if let Some(leader) = nodes.lock().await.leader().await {
            return leader;
        }
        assert!(Instant::now() < deadline, "no leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node reports the same applied index; returns (node, index, digest).
async fn wait_converged(
    nodes: &tokio::sync::Mutex<Nodes>,
    limit: Duration,
) -> Vec<(u64, serde_json::Value, serde_json::Value)> {
    let deadline = Instant::now() + limit;
    loop {
        let nodes = nodes.lock().await;
        let mut views = Vec::new();
        for id in nodes.ids() {
            if let Some(v) = nodes.view(id).await {
                views.push((id, v["applied_index"].clone(), v["state_digest"].clone()));
            }
        }
        let same = views.len() == nodes.ids().len() && views.iter().all(|v| v.1 == views[0].1);
        if same || Instant::now() > deadline {
            return views;
        }
        drop(nodes);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every 100 ms, a linearizable read on some node; records when one was served.
async fn probe(
    urls: Vec<String>,
    started: Instant,
    served: Arc<Mutex<Vec<u64>>>,
    stop_at: Instant,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .expect("client");
    let mut turn = 0usize;
    while Instant::now() < stop_at {
        turn += 1;
        let url = format!("{}/api/v1/print_jobs/probe", urls[turn % urls.len()]);
        if let Ok(response) = client.get(url).send().await {
            // 404 = the node confirmed with a quorum that there is no such job.
            if response.status() == reqwest::StatusCode::NOT_FOUND {
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

/// Injects one fault after another until `stop_at`, each healed before the next.
async fn inject_faults(
    nodes: &tokio::sync::Mutex<Nodes>,
    rng: &mut Rng,
    workload: &Workload,
    stop_at: Instant,
) -> Vec<FaultRecord> {
    const KINDS: [&str; 10] = [
        "slow leader links",
        "kill leader",
        "kill follower",
        "pause leader",
        "isolate leader",
        "isolate minority",
        "bridge partition",
        "one-way: leader hears nobody",
        "wipe follower",
        "kill leader near a snapshot",
    ];
    let mut records = Vec::new();
    tokio::time::sleep(Duration::from_millis(rng.range(1000, 2000))).await;
    while Instant::now() + Duration::from_secs(6) < stop_at {
        let kind = *rng.pick(&KINDS).unwrap_or(&"kill leader");
        let hold = Duration::from_millis(rng.range(1200, 3500));
        let at_ms = workload.started.elapsed().as_millis() as u64;
        let Some(leader) = nodes.lock().await.leader().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (ids, n) = {
            let nodes = nodes.lock().await;
            (nodes.ids(), nodes.ids().len())
        };
        let followers: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
        let follower = *rng.pick(&followers).unwrap_or(&leader);
        let description = match kind {
            "kill leader" => {
                nodes.lock().await.kill(leader);
                format!("kill leader {leader}")
            }
            "kill follower" => {
                nodes.lock().await.kill(follower);
                format!("kill follower {follower}")
            }
            "pause leader" => {
                nodes.lock().await.signal(leader, true);
                format!("SIGSTOP leader {leader} for {hold:?}")
            }
            "isolate leader" | "isolate minority" => {
                let minority: Vec<u64> = match kind {
                    "isolate leader" => vec![leader],
                    _ => followers.iter().copied().take((n - 1) / 2).collect(),
                };
                // Half the time a silent network, half the time one that resets connections.
                let cut = *rng
                    .pick(&[Link::Blackhole, Link::Reset])
                    .unwrap_or(&Link::Blackhole);
                let links = nodes.lock().await.links.clone();
                for a in &minority {
                    for b in ids.iter().filter(|b| !minority.contains(b)) {
                        links.set(*a, *b, cut);
                        links.set(*b, *a, cut);
                    }
                }
                format!("partition {minority:?} from the rest ({cut:?})")
            }
            "bridge partition" => {
                // Two halves that only talk through one bridge node (the leader, to make it hard).
                let (left, right) = followers.split_at(followers.len() / 2);
                let links = nodes.lock().await.links.clone();
                for a in left {
                    for b in right {
                        links.set(*a, *b, Link::Blackhole);
                        links.set(*b, *a, Link::Blackhole);
                    }
                }
                format!("bridge: {left:?} | {right:?} only via leader {leader}")
            }
            "one-way: leader hears nobody" => {
                let links = nodes.lock().await.links.clone();
                for other in &followers {
                    links.set(*other, leader, Link::Blackhole);
                }
                format!("one-way loss: nothing reaches leader {leader}")
            }
            "slow leader links" => {
                let links = nodes.lock().await.links.clone();
                for other in &followers {
                    links.set(leader, *other, Link::Delay(Duration::from_millis(250)));
                }
                format!("delay leader {leader}'s outgoing Raft traffic by 250 ms")
            }
            "wipe follower" => {
                let mut nodes = nodes.lock().await;
                nodes.wipe(follower);
                nodes.restart(follower);
                format!("wipe follower {follower}'s data dir and restart it")
            }
            _ => {
                // Snapshots happen every 300 entries; wait until the leader is close to one.
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    let view = nodes.lock().await.view(leader).await;
                    let since = view
                        .and_then(|v| {
                            Some(
                                v["last_log_index"].as_u64()?
                                    - v["snapshot_index"].as_u64().unwrap_or(0),
                            )
                        })
                        .unwrap_or(0);
                    if since >= 290 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                nodes.lock().await.kill(leader);
                format!("kill leader {leader} near a snapshot")
            }
        };
        println!("chaos: {at_ms:>6} ms  {description}");
        records.push(FaultRecord {
            at_ms,
            fault: description,
            unavailable_ms: 0,
        });
        tokio::time::sleep(hold).await;
        nodes.lock().await.heal();
        tokio::time::sleep(Duration::from_millis(rng.range(1500, 3000))).await;
    }
    records
}
