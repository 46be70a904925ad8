//! `raft3d bench`: a closed-loop load generator that starts its own local cluster (or
//! targets a running one) and reports throughput and latency percentiles. It prints
//! numbers and writes them to a JSON file; it asserts nothing (not a test).
//!
//! Owns: generating load and measuring it. Must not touch node internals: it speaks the
//! public REST API like any client.

use crate::local_cluster::{wait_for_leader, LocalCluster, LocalClusterArgs, LocalClusterError};
use clap::Args;
use reqwest::StatusCode;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `raft3d bench` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent clients per level, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Measured seconds per level.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Unmeasured warm-up seconds per level.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Nodes of the local cluster the benchmark starts.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Client port of node 1 of that cluster (node i: +i-1).
    #[arg(long, default_value_t = 18081)]
    pub http_port: u16,
    /// Raft port of node 1 of that cluster.
    #[arg(long, default_value_t = 19081)]
    pub raft_port: u16,
    /// Benchmark a running cluster instead (client URLs, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<String>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "bench-results/bench.json")]
    pub out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Cluster(#[from] LocalClusterError),
    #[error("no leader elected within 60 s")]
    NoLeader,
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("setting up the farm failed: HTTP {0}")]
    Setup(StatusCode),
    #[error("writing the report: {0}")]
    Report(#[from] std::io::Error),
    #[error("encoding the report: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One measured level.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// `write` (create a print job) or `read` (linearizable GET of one printer).
    pub kind: &'static str,
    pub clients: usize,
    pub count: usize,
    pub errors: usize,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub started_at_unix: u64,
    pub nodes: usize,
    pub cpus: usize,
    pub duration_secs: u64,
    pub results: Vec<BenchResult>,
}

pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    let data_dir = std::env::temp_dir().join(format!("raft3d-bench-{}", std::process::id()));
    let mut cluster = None;
    let urls = if args.target.is_empty() {
        let local = LocalCluster::start(&LocalClusterArgs {
            nodes: args.nodes,
            data_dir: data_dir.clone(),
            host: "127.0.0.1".to_owned(),
            http_port: args.http_port,
            raft_port: args.raft_port,
            extra: vec!["--log".to_owned(), "warn".to_owned()],
        })?;
        let urls = local.http_urls();
        cluster = Some(local);
        urls
    } else {
        args.target.clone()
    };
    let result = measure(&args, &urls).await;
    if let Some(mut cluster) = cluster {
        cluster.stop().await;
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let report = result?;
    print_table(&report);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    println!("report written to {}", args.out.display());
    Ok(report)
}

async fn measure(args: &BenchArgs, urls: &[String]) -> Result<BenchReport, BenchError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .build()?;
    let (_, leader) = wait_for_leader(&client, urls, Duration::from_secs(60))
        .await
        .ok_or(BenchError::NoLeader)?;
    setup(&client, &leader).await?;
    let mut results = Vec::new();
    for &clients in &args.clients {
        for kind in ["write", "read"] {
            let result = level(&client, &leader, kind, clients, args).await;
            println!(
                "  {kind:5} {clients:4} clients: {:8.0} ops/s  p50 {:6.2} ms  p99 {:6.2} ms  errors {}",
                result.ops_per_sec, result.p50_ms, result.p99_ms, result.errors
            );
            results.push(result);
        }
    }
    Ok(BenchReport {
        started_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        nodes: urls.len(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        duration_secs: args.duration_secs,
        results,
    })
}

/// A printer and a spool big enough that jobs never run out.
async fn setup(client: &reqwest::Client, leader: &str) -> Result<(), BenchError> {
    let bodies = [
        (
            "printers",
            serde_json::json!({"id": "bench-printer", "company": "Prusa", "model": "MK4"}),
        ),
        (
            "filaments",
            serde_json::json!({"id": "bench-spool", "type": "PLA", "color": "grey", "total_weight_in_grams": 1_000_000_000_000u64}),
        ),
    ];
    for (path, body) in bodies {
        let status = client
            .post(format!("{leader}/api/v1/{path}"))
            .json(&body)
            .send()
            .await?
            .status();
        if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
            return Err(BenchError::Setup(status));
        }
    }
    Ok(())
}

/// Runs `clients` closed loops for warm-up + duration; only the measured window counts.
async fn level(
    client: &reqwest::Client,
    leader: &str,
    kind: &'static str,
    clients: usize,
    args: &BenchArgs,
) -> BenchResult {
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(args.warmup_secs);
    let stop_at = measure_from + Duration::from_secs(args.duration_secs);
    let leader: Arc<str> = Arc::from(leader);
    let tasks: Vec<_> = (0..clients)
        .map(|worker| {
            let (client, leader) = (client.clone(), leader.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut n) = (Vec::new(), 0usize, 0u64);
                while Instant::now() < stop_at {
                    let request = match kind {
                        "write" => client.post(format!("{leader}/api/v1/print_jobs")).json(
                            &serde_json::json!({
                                "printer_id": "bench-printer",
                                "filament_id": "bench-spool",
                                "filepath": format!("bench/worker-{worker}/part-{n:08}.gcode"),
                                "print_weight_in_grams": 1,
                            }),
                        ),
                        _ => client.get(format!("{leader}/api/v1/printers/bench-printer")),
                    };
                    n += 1;
                    let sent = Instant::now();
                    let ok = match request.send().await {
                        Ok(response) => {
                            let status = response.status();
                            response.bytes().await.is_ok() && status.is_success()
                        }
                        Err(_) => false,
                    };
                    if sent >= measure_from && sent < stop_at {
                        match ok {
                            true => latencies.push(sent.elapsed().as_micros() as u64),
                            false => errors += 1,
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        match latencies.len() {
            0 => 0.0,
            len => latencies[((len as f64 * p) as usize).min(len - 1)] as f64 / 1000.0,
        }
    };
    BenchResult {
        kind,
        clients,
        count: latencies.len(),
        errors,
        ops_per_sec: latencies.len() as f64 / args.duration_secs.max(1) as f64,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        p999_ms: percentile(0.999),
    }
}

fn print_table(report: &BenchReport) {
    println!(
        "\nRaft3D benchmark: {} nodes, {} CPUs, {} s per level",
        report.nodes, report.cpus, report.duration_secs
    );
    println!(
        "{:6} {:>8} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "kind", "clients", "ops/s", "p50_ms", "p99_ms", "p999_ms", "errors"
    );
    for r in &report.results {
        println!(
            "{:6} {:>8} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            r.kind, r.clients, r.ops_per_sec, r.p50_ms, r.p99_ms, r.p999_ms, r.errors
        );
    }
}
