//! `raft3d bench`: a closed-loop load generator. It starts its own local cluster (or
//! targets a running one with `--target`), then for each client count measures creates
//! of print jobs on the leader and linearizable reads of one printer, and reports
//! throughput and latency percentiles as a table and a JSON file. It prints numbers and
//! asserts nothing: it is a benchmark, not a test.
//!
//! Owns: generating load, measuring it, and the cluster and temporary data directory it
//! started itself (both gone when it returns, also on error or Ctrl-C).
//!
//! Must not touch: node internals or any process it did not start. It speaks the public
//! REST API with the request types of `app::api`, like any client.

use crate::local_cluster::{wait_for_leader, LocalCluster, LocalClusterArgs, LocalClusterError};
use app::api::{NewFilament, NewPrintJob, NewPrinter};
use app::domain::{IdError, Text, TextError, MAX_WEIGHT_GRAMS};
use app::{FilamentType, Id};
use clap::Args;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Address of the local cluster the benchmark starts.
const LOCALHOST: &str = "127.0.0.1";
const PRINTER_ID: &str = "bench-printer";
const SPOOL_ID: &str = "bench-spool";
/// The largest spool the domain accepts: at 1 g per job (each job stays `Queued` and
/// keeps its gram reserved) no benchmark gets anywhere near running out.
const SPOOL_GRAMS: u64 = MAX_WEIGHT_GRAMS;
/// How long to wait for the cluster to elect a leader before giving up.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// Per request; a write is answered within the server's write timeout (5 s by default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `raft3d bench` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent clients per level, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64",
        value_parser = clap::value_parser!(u64).range(1..=100_000)
    )]
    pub clients: Vec<u64>,
    /// Measured seconds per level and kind (writes, then reads).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration_secs: u64,
    /// Unmeasured warm-up seconds before each measured period.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Nodes of the local cluster the benchmark starts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Data directory of that cluster, kept afterwards [default: a fresh directory under
    /// the system temp dir, removed at the end].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Client port of node 1 of that cluster (node i: +i-1).
    #[arg(long, default_value_t = 18081)]
    pub http_port: u16,
    /// Raft port of node 1 of that cluster (node i: +i-1).
    #[arg(long, default_value_t = 19081)]
    pub raft_port: u16,
    /// Where to write the JSON report (parent directories are created).
    #[arg(long, default_value = "bench-results/bench.json")]
    pub out: PathBuf,
    /// Benchmark a running cluster instead: its client URLs, comma-separated. The flags
    /// of the local cluster are then ignored.
    #[arg(long, value_delimiter = ',', conflicts_with = "data_dir")]
    pub target: Vec<String>,
}

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The local cluster did not start, or no leader was agreed on.
    #[error(transparent)]
    Cluster(#[from] LocalClusterError),
    /// The HTTP client could not be built, or a setup request failed in transport.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The cluster refused the printer or spool the jobs are created against.
    #[error("creating the benchmark {what} failed: HTTP {status}")]
    Setup {
        what: &'static str,
        status: StatusCode,
    },
    /// A constant id of the benchmark is not a valid id (a bug in this file).
    #[error("invalid benchmark id: {0}")]
    Id(#[from] IdError),
    /// A constant text of the benchmark is not valid text (a bug in this file).
    #[error("invalid benchmark text: {0}")]
    Text(#[from] TextError),
    /// The temporary data directory could not be cleared before the run.
    #[error("preparing the data directory {}: {source}", .path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The report file could not be written.
    #[error("writing the report to {}: {source}", .path.display())]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A request body or the report could not be encoded.
    #[error("encoding JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// Ctrl-C or SIGTERM arrived before the end; the cluster was stopped anyway.
    #[error("interrupted")]
    Interrupted,
}

/// What a measured request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `POST /api/v1/print_jobs` on the leader: one Raft commit each.
    Write,
    /// `GET /api/v1/printers/{id}` on the leader, linearizable (a read-index round).
    Read,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Read => "read",
        }
    }

    /// The status of a successful request of this kind; anything else is an error.
    fn expected(self) -> StatusCode {
        match self {
            Self::Write => StatusCode::CREATED,
            Self::Read => StatusCode::OK,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so table column widths apply.
        f.pad(self.label())
    }
}

/// One measured level: one kind of request at one client count.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub kind: Kind,
    /// Concurrent closed-loop clients.
    pub clients: u64,
    /// Successes per second of the measured period.
    pub ops_per_sec: f64,
    /// Latency percentiles of the successes (`null` if there were none).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// Requests sent in the measured period that failed: transport error, timeout, or any
    /// status but the expected one (503 included).
    pub errors: u64,
    /// Requests sent in the measured period that succeeded (201 for writes, 200 for reads).
    pub count: u64,
}

/// The machine the benchmark ran on (load generator and nodes share it).
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `std::thread::available_parallelism`.
    pub cpus: usize,
    pub os: &'static str,
    pub arch: &'static str,
}

/// The whole run, as written to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub started_at_unix: u64,
    /// Nodes of the local cluster, or the number of `--target` URLs.
    pub nodes: u64,
    /// Measured seconds per level.
    pub duration_secs: u64,
    /// Unmeasured seconds before each level.
    pub warmup_secs: u64,
    pub results: Vec<BenchResult>,
    pub machine: Machine,
}

/// Runs `raft3d bench`: measures every level, prints a table to stdout (progress goes to
/// stderr) and writes the report as pretty JSON to `--out`.
pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (nodes, results) = if args.target.is_empty() {
        (args.nodes, bench_local_cluster(&args).await?)
    } else {
        let urls: Vec<String> = args
            .target
            .iter()
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect();
        let results = until_interrupted(measure(&args, &urls)).await?;
        (urls.len() as u64, results)
    };
    let report = BenchReport {
        started_at_unix,
        nodes,
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        results,
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        },
    };
    print_table(&report);
    write_report(&args.out, &report)?;
    println!("report written to {}", args.out.display());
    Ok(report)
}

/// Benchmarks a local cluster it starts, then removes the data directory if it chose
/// it (whatever happened in between).
async fn bench_local_cluster(args: &BenchArgs) -> Result<Vec<BenchResult>, BenchError> {
    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = std::env::temp_dir().join(format!("raft3d-bench-{}", std::process::id()));
            (dir, true)
        }
    };
    if temporary {
        // "Fresh": a crashed earlier run with the same pid may have left a cluster's data.
        match std::fs::remove_dir_all(&data_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BenchError::DataDir {
                    path: data_dir,
                    source,
                })
            }
        }
    }
    let result = start_and_measure(args, &data_dir).await;
    if temporary {
        if let Err(e) = std::fs::remove_dir_all(&data_dir) {
            tracing::warn!(dir = %data_dir.display(), error = %e, "could not remove the benchmark data");
        }
    }
    result
}

async fn start_and_measure(
    args: &BenchArgs,
    data_dir: &Path,
) -> Result<Vec<BenchResult>, BenchError> {
    let mut cluster = LocalCluster::start(&LocalClusterArgs {
        nodes: args.nodes,
        data_dir: data_dir.to_path_buf(),
        host: LOCALHOST.to_owned(),
        http_port: args.http_port,
        raft_port: args.raft_port,
        // Node logs would drown the progress lines; warnings still show.
        extra: vec!["--log".to_owned(), "warn".to_owned()],
    })?;
    let result = until_interrupted(measure(args, &cluster.http_urls())).await;
    // Stopped before the caller removes the data directory, which a live node would
    // keep writing to.
    cluster.stop().await;
    result
}

/// Runs `work` unless Ctrl-C or SIGTERM comes first, so that an interrupted benchmark
/// still stops its cluster and removes its data directory.
async fn until_interrupted<T>(
    work: impl Future<Output = Result<T, BenchError>>,
) -> Result<T, BenchError> {
    tokio::select! {
        result = work => result,
        () = crate::node::shutdown_signal() => Err(BenchError::Interrupted),
    }
}

/// Finds the leader, creates the fixture, then measures writes and reads at every client
/// count.
async fn measure(args: &BenchArgs, urls: &[String]) -> Result<Vec<BenchResult>, BenchError> {
    // ONE client shared by every task: its pool keeps a keep-alive connection per
    // concurrent request, as a real client would. Redirects are followed by hand (`send`)
    // so that a 307 keeps the POST and its body.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()?;
    let (leader_id, leader) = wait_for_leader(&client, urls, LEADER_WAIT).await?;
    eprintln!("bench: leader is node {leader_id} at {leader}");
    let fixture = Fixture::new(&leader)?;
    fixture.create(&client).await?;
    let mut results = Vec::new();
    for &clients in &args.clients {
        for kind in [Kind::Write, Kind::Read] {
            let result = level(&client, &fixture, kind, clients, args).await?;
            eprintln!(
                "bench: {kind} x{clients}: {:.0} ops/s, p50 {} ms, p99 {} ms, {} errors",
                result.ops_per_sec,
                format_ms(result.p50_ms),
                format_ms(result.p99_ms),
                result.errors
            );
            results.push(result);
        }
    }
    Ok(results)
}

/// The printer and spool every job uses, built with the API's own request types so the
/// benchmark sends exactly what the server parses.
struct Fixture {
    leader: String,
    printer_id: Id,
    spool_id: Id,
    printer: NewPrinter,
    spool: NewFilament,
}

impl Fixture {
    fn new(leader: &str) -> Result<Self, BenchError> {
        let printer_id = Id::parse(PRINTER_ID)?;
        let spool_id = Id::parse(SPOOL_ID)?;
        Ok(Self {
            leader: leader.to_owned(),
            printer: NewPrinter {
                id: Some(printer_id.clone()),
                company: Text::parse("Prusa")?,
                model: Text::parse("MK4")?,
            },
            spool: NewFilament {
                id: Some(spool_id.clone()),
                kind: FilamentType::Pla,
                color: Text::parse("grey")?,
                total_weight_in_grams: SPOOL_GRAMS,
                remaining_weight_in_grams: None,
            },
            printer_id,
            spool_id,
        })
    }

    /// Creates the printer and the spool. `409` is fine: an earlier run against the same
    /// `--target` cluster created them.
    async fn create(&self, client: &reqwest::Client) -> Result<(), BenchError> {
        let leader = &self.leader;
        let steps = [
            ("printer", "printers", serde_json::to_vec(&self.printer)?),
            ("spool", "filaments", serde_json::to_vec(&self.spool)?),
        ];
        for (what, collection, body) in steps {
            let url = format!("{leader}/api/v1/{collection}");
            let status = send(client, &url, Some(body.as_slice())).await?;
            if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
                return Err(BenchError::Setup { what, status });
            }
        }
        Ok(())
    }

    /// The request one client of `kind` repeats. Job bodies are about 150 bytes; each
    /// client has its own file path (job ids are made by the server, so repeating a body
    /// still creates a new job each time).
    fn probe(&self, kind: Kind, client_no: u64) -> Result<Probe, BenchError> {
        let leader = &self.leader;
        let probe = match kind {
            Kind::Write => {
                let job = NewPrintJob {
                    id: None,
                    printer_id: self.printer_id.clone(),
                    filament_id: self.spool_id.clone(),
                    filepath: Text::parse(&format!("bench/part-{client_no}.gcode"))?,
                    print_weight_in_grams: 1,
                };
                Probe {
                    url: format!("{leader}/api/v1/print_jobs"),
                    body: Some(serde_json::to_vec(&job)?),
                    expected: kind.expected(),
                }
            }
            Kind::Read => Probe {
                url: format!("{leader}/api/v1/printers/{PRINTER_ID}"),
                body: None,
                expected: kind.expected(),
            },
        };
        Ok(probe)
    }
}

/// One request, ready to be sent again and again: a POST when it has a body, else a GET.
struct Probe {
    url: String,
    body: Option<Vec<u8>>,
    expected: StatusCode,
}

/// What one client saw during the measured period.
#[derive(Debug, Default)]
struct Sample {
    latencies_us: Vec<u64>,
    errors: u64,
}

/// Runs `clients` closed loops for warm-up + duration and summarizes the measured part.
async fn level(
    client: &reqwest::Client,
    fixture: &Fixture,
    kind: Kind,
    clients: u64,
    args: &BenchArgs,
) -> Result<BenchResult, BenchError> {
    let probes = (0..clients)
        .map(|n| fixture.probe(kind, n))
        .collect::<Result<Vec<_>, _>>()?;
    let measured = Duration::from_secs(args.duration_secs);
    let measure_from = Instant::now() + Duration::from_secs(args.warmup_secs);
    let stop_at = measure_from + measured;
    let tasks: Vec<_> = probes
        .into_iter()
        .map(|probe| tokio::spawn(closed_loop(client.clone(), probe, measure_from, stop_at)))
        .collect();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok(sample) => {
                latencies_us.extend(sample.latencies_us);
                errors += sample.errors;
            }
            Err(e) => tracing::warn!(error = %e, "a benchmark client task failed"),
        }
    }
    Ok(summarize(kind, clients, latencies_us, errors, measured))
}

/// One client: sends the next request as soon as the previous one is answered, until
/// `stop_at`. Only requests sent from `measure_from` on are recorded (warm-up is not).
async fn closed_loop(
    client: reqwest::Client,
    probe: Probe,
    measure_from: Instant,
    stop_at: Instant,
) -> Sample {
    let mut sample = Sample::default();
    loop {
        let sent = Instant::now();
        if sent >= stop_at {
            return sample;
        }
        let status = send(&client, &probe.url, probe.body.as_deref()).await;
        if sent < measure_from {
            continue;
        }
        match status {
            Ok(status) if status == probe.expected => {
                sample.latencies_us.push(micros(sent.elapsed()))
            }
            _ => sample.errors += 1,
        }
    }
}

/// Sends one request and follows at most one `307` to the leader's `Location`, as a
/// client that routes itself would; returns the final status. A second redirect is not
/// followed: it means leadership is moving, which the error count should show.
async fn send(
    client: &reqwest::Client,
    url: &str,
    body: Option<&[u8]>,
) -> Result<StatusCode, reqwest::Error> {
    match exchange(client, url, body).await? {
        (_, Some(leader_url)) => Ok(exchange(client, &leader_url, body).await?.0),
        (status, None) => Ok(status),
    }
}

/// One HTTP exchange: its status and, for a `307`, the `Location` to follow. The body is
/// read to the end so that the connection goes back to the pool.
async fn exchange(
    client: &reqwest::Client,
    url: &str,
    body: Option<&[u8]>,
) -> Result<(StatusCode, Option<String>), reqwest::Error> {
    let request = match body {
        Some(body) => client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec()),
        None => client.get(url),
    };
    let response = request.send().await?;
    let status = response.status();
    let location = if status == StatusCode::TEMPORARY_REDIRECT {
        response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    } else {
        None
    };
    response.bytes().await?;
    Ok((status, location))
}

fn summarize(
    kind: Kind,
    clients: u64,
    mut latencies_us: Vec<u64>,
    errors: u64,
    measured: Duration,
) -> BenchResult {
    latencies_us.sort_unstable();
    let count = latencies_us.len() as u64;
    BenchResult {
        kind,
        clients,
        // One decimal is all the precision a rate measured over seconds has.
        ops_per_sec: (count as f64 / measured.as_secs_f64() * 10.0).round() / 10.0,
        p50_ms: percentile_ms(&latencies_us, 0.50),
        p99_ms: percentile_ms(&latencies_us, 0.99),
        p999_ms: percentile_ms(&latencies_us, 0.999),
        errors,
        count,
    }
}

/// The nearest-rank `p` percentile (0 < p <= 1) of ascending microseconds, in
/// milliseconds; `None` when there are no samples.
fn percentile_ms(sorted_us: &[u64], p: f64) -> Option<f64> {
    let last = sorted_us.len().checked_sub(1)?;
    let rank = (p * sorted_us.len() as f64).ceil() as usize;
    let index = rank.saturating_sub(1).min(last);
    sorted_us.get(index).map(|&us| us as f64 / 1000.0)
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

fn format_ms(ms: Option<f64>) -> String {
    match ms {
        Some(ms) => format!("{ms:.2}"),
        None => "-".to_owned(),
    }
}

fn print_table(report: &BenchReport) {
    println!(
        "\nRaft3D benchmark: {} node(s), {} CPU(s), {} s per level after {} s of warm-up",
        report.nodes, report.machine.cpus, report.duration_secs, report.warmup_secs
    );
    println!(
        "{:<6} {:>8} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "kind", "clients", "ops/s", "p50_ms", "p99_ms", "p999_ms", "errors"
    );
    for r in &report.results {
        println!(
            "{:<6} {:>8} {:>10.0} {:>8} {:>8} {:>8} {:>7}",
            r.kind,
            r.clients,
            r.ops_per_sec,
            format_ms(r.p50_ms),
            format_ms(r.p99_ms),
            format_ms(r.p999_ms),
            r.errors
        );
    }
}

fn write_report(path: &Path, report: &BenchReport) -> Result<(), BenchError> {
    let json = serde_json::to_vec_pretty(report)?;
    let failed = |source: std::io::Error| BenchError::Report {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(path, json).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u64> = (1..=1000).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.50), Some(500.0));
        assert_eq!(percentile_ms(&us, 0.99), Some(990.0));
        assert_eq!(percentile_ms(&us, 0.999), Some(999.0));
        assert_eq!(percentile_ms(&us[..1], 0.999), Some(1.0));
        assert_eq!(percentile_ms(&[], 0.5), None);
    }

    #[test]
    fn a_level_without_successes_reports_no_latency() {
        let result = summarize(Kind::Write, 4, Vec::new(), 7, Duration::from_secs(2));
        assert_eq!(result.count, 0);
        assert_eq!(result.errors, 7);
        assert_eq!(result.p50_ms, None);
        assert_eq!(result.p99_ms, None);
    }

    #[test]
    fn the_fixture_builds_valid_requests() {
        let fixture = Fixture::new("http://127.0.0.1:18081");
        let probe = fixture.and_then(|f| f.probe(Kind::Write, 3));
        let Ok(probe) = probe else {
            panic!("the fixture's constants must be valid");
        };
        assert_eq!(probe.url, "http://127.0.0.1:18081/api/v1/print_jobs");
        assert_eq!(probe.expected, StatusCode::CREATED);
        assert!(probe.body.is_some_and(|body| body.len() < 200));
    }
}
