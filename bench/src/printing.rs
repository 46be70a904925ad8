//! `raft3d-printing-bench`: a 3-node Raft3D cluster driving N real OctoPrints (their
//! virtual printers, `scripts/octoprint.sh`), measured as a farm meets it:
//! - **queued → printing**: from the moment a printer is free for a job (its `POST` was
//!   answered, for a printer's first job; the previous job on the printer seen `Done`,
//!   for the later ones) until the job is seen `Running`; and queued → `Done`;
//! - where that time goes, seen from OctoPrint's side (`GET /api/job`): free → OctoPrint
//!   `Printing`, OctoPrint `Printing` → Raft3D `Running`, OctoPrint's print end → `Done`;
//! - the CPU of the leader (which runs every printer's driver, each polling its
//!   OctoPrint once a second) and of the followers, idle with the printers connected and
//!   while they print.
//!
//! Every job's status is polled every `--poll-ms` from the leader's applied state
//! (`?consistency=stale`: the leader's own state, the freshest there is, without a quorum
//! round per poll), every OctoPrint's `/api/job` as often. The job's own timestamps
//! (stamped by the leader) give the same latency without the polling's granularity.
//!
//! Raft3D at its defaults and secure (mTLS peers, API tokens), the release binary next to
//! this one. It prints the numbers with their settings and writes them as JSON to `--out`.
//! It asserts nothing. Owns: the OctoPrints and nodes it starts (killed when it ends, on
//! error and on Ctrl-C too) and their temporary directories.

use app::domain::{PrinterState, MAX_WEIGHT_GRAMS};
use clap::Parser;
use raft3d_client::{
    Call, Client, JobStatus, Method, NewFilamentBody, NewPrintJobBody, NewPrinterBody, PrintJob,
    Printer, RetryPolicy,
};
use raft3d_launcher::{ports, OctoPrintProcess, ProcessCluster, Spec};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// farm's API key on every OctoPrint this bench starts.
const OCTOPRINT_KEY: &str = "RAFT3DBENCHKEY0123456789";
/// How long a cluster may take to elect its first leader.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// How long the connected printers may take to be reported idle by their drivers.
const IDLE_WAIT: Duration = Duration::from_secs(60);
/// One request of the bench's own polling (to a node or an OctoPrint).
const POLL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Parser)]
#[command(
    name = "raft3d-printing-bench",
    about = "Raft3D driving real OctoPrints (virtual printers): queued -> printing latency, leader CPU"
)]
struct Args {
    /// OctoPrint instances, one printer each.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=50))]
    printers: u64,
    /// Jobs queued per printer at the start.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100))]
    jobs_per_printer: u64,
    /// How long one print lasts on the virtual printer (the file's `G4 P<ms>` dwell).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    print_ms: u64,
    /// How often the bench polls the jobs and every OctoPrint's `/api/job`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=5000))]
    poll_ms: u64,
    /// Seconds of CPU measurement with the printers connected and idle, before any job
    /// (CPU time comes in 10 ms ticks: 10 s resolve 0.1 % of a core).
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// A short run for the test script: --printers 2 --jobs-per-printer 1 --print-ms 1000
    /// --idle-secs 1 (overriding those flags); well under a minute.
    #[arg(long)]
    smoke: bool,
    /// Deadline for every job to be Done, from the first job queued [default: 60 s +
    /// jobs-per-printer x (print time + 20 s)].
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Deadline for the OctoPrints to be Operational (they start together).
    #[arg(long, default_value_t = 120)]
    ready_secs: u64,
    /// The `raft3d` binary [default: the one next to this executable].
    #[arg(long)]
    raft3d_bin: Option<PathBuf>,
    /// `scripts/octoprint.sh` (after `scripts/octoprint.sh install`) [default: the one of
    /// the repository this bench was built from].
    #[arg(long)]
    octoprint_script: Option<PathBuf>,
    /// One more flag for every `raft3d serve`; repeat for several.
    #[arg(long = "raft3d-arg", allow_hyphen_values = true)]
    raft3d_args: Vec<String>,
    /// Where the JSON results go (its directory is created). On failure the nodes' and
    /// OctoPrints' logs are copied next to it, into `printing-logs/`.
    #[arg(long, default_value = "target/bench/printing.json")]
    out: PathBuf,
}

impl Args {
    fn effective(mut self) -> Self {
        if self.smoke {
            self.printers = 2;
            self.jobs_per_printer = 1;
            self.print_ms = 1000;
            self.idle_secs = 1;
        }
        self
    }

    fn timeout(&self) -> Duration {
        let per_job = Duration::from_millis(self.print_ms) + Duration::from_secs(20);
        match self.timeout_secs {
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(60) + per_job * self.jobs_per_printer as u32,
        }
    }
}

/// Why the run failed, in words that name the step.
#[derive(Debug)]
struct Failure(String);

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(what: impl Display) -> Result<T, Failure> {
    Err(Failure(what.to_string()))
}

/// `.context("creating printer p1")?`: the step's name in front of the cause.
trait Context<T> {
    fn context(self, what: impl Display) -> Result<T, Failure>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{what}: {e}")))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.ok_or_else(|| Failure(what.to_string()))
    }
}

// ---- Results ----

#[derive(Debug, Default, Serialize)]
struct Percentiles {
    count: usize,
    p50: f64,
    p99: f64,
    max: f64,
    min: f64,
    mean: f64,
}

fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let mean = match ms.len() {
        0 => 0.0,
        n => ms.iter().sum::<f64>() / n as f64,
    };
    Percentiles {
        count: ms.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: ms.last().copied().unwrap_or(0.0),
        min: ms.first().copied().unwrap_or(0.0),
        mean,
    }
}

#[derive(Debug, Serialize)]
struct Settings {
    printers: u64,
    jobs_per_printer: u64,
    print_ms: u64,
    poll_ms: u64,
    idle_secs: u64,
    smoke: bool,
    nodes: u64,
    /// Extra `raft3d serve` flags (none: the server's defaults, secure).
    raft3d_args: Vec<String>,
    /// The leader's driver asks each OctoPrint this often (`server/src/driver/printer.rs`).
    driver_poll_ms: u64,
    octoprint_version: String,
}

#[derive(Debug, Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
    load_average_before: String,
    load_average_after: String,
}

#[derive(Debug, Serialize)]
struct NodeCpu {
    id: u64,
    role: &'static str,
    /// % of one core, printers connected and idle, no job.
    idle_percent: f64,
    /// % of one core while the jobs print.
    printing_percent: f64,
}

#[derive(Debug, Serialize)]
struct Cpu {
    leader_percent: f64,
    leader_idle_percent: f64,
    follower_percent: f64,
    follower_idle_percent: f64,
    nodes: Vec<NodeCpu>,
    /// All the OctoPrint processes together, while printing.
    octoprints_percent: f64,
    /// This bench (its polling), while printing.
    bench_percent: f64,
}

#[derive(Debug, Serialize)]
struct JobRecord {
    id: String,
    printer: String,
    /// Milliseconds from the first job's `POST` answer.
    queued_ms: f64,
    free_ms: f64,
    running_seen_ms: Option<f64>,
    done_seen_ms: Option<f64>,
    octoprint_printing_seen_ms: Option<f64>,
    octoprint_end_seen_ms: Option<f64>,
    /// `started_at - max(created_at, previous finished_at)`, the leader's stamps.
    server_free_to_running_ms: Option<f64>,
    printed_on_octoprint: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Results {
    bench: &'static str,
    started_at_unix: u64,
    settings: Settings,
    machine: Machine,
    /// Headline: printer free (job queued, or previous job Done) -> job seen Running.
    queued_to_running_ms: Percentiles,
    /// The same for each printer's first job (from its `POST` answer).
    first_job_queued_to_running_ms: Percentiles,
    /// The same for the later jobs (from the previous job seen `Done`).
    next_job_done_to_running_ms: Percentiles,
    /// The same from the job's own timestamps (no polling granularity).
    server_queued_to_running_ms: Percentiles,
    /// From the job's `POST` answer to seen `Done` (includes waiting behind earlier jobs).
    queued_to_done_ms: Percentiles,
    /// From printer free to seen `Done`: the job's own turn.
    free_to_done_ms: Percentiles,
    /// Printer free -> OctoPrint says `Printing` this job's file.
    free_to_octoprint_printing_ms: Percentiles,
    /// OctoPrint `Printing` -> Raft3D `Running` (positive: Raft3D learns it later).
    running_after_octoprint_printing_ms: Percentiles,
    /// OctoPrint's print seen ended -> Raft3D `Done`.
    done_after_octoprint_end_ms: Percentiles,
    /// OctoPrint `Printing` seen -> its end seen (about `print_ms`).
    octoprint_print_ms: Percentiles,
    /// A printer with jobs waiting, idle: its previous print seen ended -> the next one
    /// seen `Printing` on OctoPrint.
    octoprint_idle_between_jobs_ms: Percentiles,
    /// While printing: how old the live values (`GET /api/v1/telemetry`, `observed_ms`)
    /// of each printer were when read from the leader, and from a follower (which copies
    /// them from the leader about once a second). The bound: visible on every
    /// node within 2 s.
    telemetry_age_on_leader_ms: Percentiles,
    telemetry_age_on_follower_ms: Percentiles,
    cpu: Cpu,
    printing_phase_secs: f64,
    /// Raft log entries the leader appended while the jobs printed.
    log_entries_while_printing: u64,
    log_entries_per_job: f64,
    /// Idle phase: entries appended while the connected printers stood idle.
    log_entries_while_idle: u64,
    jobs_done: usize,
    /// Jobs whose file OctoPrint counts exactly one successful print of.
    jobs_printed_once: usize,
    /// Polls of the leader that failed (counted, retried at the next tick).
    failed_polls: u64,
    leader_changed: bool,
    startup_secs: f64,
    total_secs: f64,
    jobs: Vec<JobRecord>,
}

// ---- Entry ----

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse().effective();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    // Dropping `run` (Ctrl-C, SIGTERM) kills everything it started.
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        () = raft3d_server::node::shutdown_signal() => fail("interrupted"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft3d-printing-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A directory removed when dropped (declared first, so dropped after the processes).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn raft3d_binary(given: Option<&Path>) -> Result<PathBuf, Failure> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("raft3d"),
    };
    let runs = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        return fail(format!(
            "raft3d ({}) does not run: build it with `cargo build --release --locked -p raft3d -p raft3d-bench`, or pass --raft3d-bin",
            path.display()
        ));
    }
    Ok(path)
}

fn octoprint_script(given: Option<&Path>) -> Result<PathBuf, Failure> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/octoprint.sh"),
    };
    if !path.is_file() {
        return fail(format!(
            "{} is missing: pass --octoprint-script",
            path.display()
        ));
    }
    Ok(path)
}

async fn run(args: &Args) -> Result<(), Failure> {
    let begun = Instant::now();
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let binary = raft3d_binary(args.raft3d_bin.as_deref())?;
    let script = octoprint_script(args.octoprint_script.as_deref())?;
    let work =
        TempDir(std::env::temp_dir().join(format!("raft3d-printing-bench-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&work.0);
    std::fs::create_dir_all(&work.0).context(format!("creating {}", work.0.display()))?;
    let load_before = load_average();

    // The OctoPrints and the nodes start together; both are waited for below.
    eprintln!("printing-bench: starting {} OctoPrints ...", args.printers);
    let mut claims = Vec::new();
    let mut hosts = Vec::new();
    for n in 1..=args.printers {
        let claim = ports::claim().context("claiming a port for an OctoPrint")?;
        let dir = work.0.join(format!("octoprint-{n}"));
        let host = OctoPrintProcess::start(&script, &dir, claim.port(), OCTOPRINT_KEY)
            .context(format!("starting OctoPrint {n}"))?;
        claims.push(claim);
        hosts.push(host);
    }
    let spec = Spec::new(binary, 3).args(&args.raft3d_args);
    let cluster = ProcessCluster::start(spec).context("starting the raft3d cluster")?;
    let outcome = async {
        for (n, host) in (1..).zip(&hosts) {
            host.wait_ready(Duration::from_secs(args.ready_secs))
                .await
                .context(format!("OctoPrint {n}"))?;
        }
        let startup = begun.elapsed();
        let mut results = measure(args, &cluster, &hosts, started_at_unix).await?;
        results.startup_secs = startup.as_secs_f64();
        Ok::<_, Failure>(results)
    }
    .await;
    let mut results = match outcome {
        Ok(results) => results,
        Err(e) => {
            save_logs(args, &cluster, &hosts);
            return Err(e);
        }
    };
    let mut cluster = cluster;
    cluster.stop(Duration::from_secs(10)).await;
    drop(hosts);
    results.machine.load_average_before = load_before;
    results.machine.load_average_after = load_average();
    results.total_secs = begun.elapsed().as_secs_f64();
    report(&results);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).context(format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(&results).context("encoding the results")?;
    std::fs::write(&args.out, json).context(format!("writing {}", args.out.display()))?;
    println!("written to {}", args.out.display());
    Ok(())
}

/// A failed run's evidence: every node's and OctoPrint's log, next to `--out`.
fn save_logs(args: &Args, cluster: &ProcessCluster, hosts: &[OctoPrintProcess]) {
    let dir = args
        .out
        .parent()
        .unwrap_or(Path::new("."))
        .join("printing-logs");
    if cluster.save_logs(&dir).is_err() {
        return;
    }
    for (n, host) in (1..).zip(hosts) {
        let _ = std::fs::copy(host.log_path(), dir.join(format!("octoprint-{n}.log")));
        let own = host.basedir().join("logs/octoprint.log");
        let _ = std::fs::copy(own, dir.join(format!("octoprint-{n}-own.log")));
    }
    eprintln!("printing-bench: logs saved in {}", dir.display());
}

// ---- The measurement ----

/// One job as the bench follows it.
struct Job {
    id: String,
    printer: usize,
    round: u64,
    queued: Instant,
    running: Option<Instant>,
    done: Option<Instant>,
    server: Option<PrintJob>,
}

/// What one OctoPrint was seen doing, per job id.
#[derive(Debug, Default, Clone, Copy)]
struct HostSeen {
    printing: Option<Instant>,
    ended: Option<Instant>,
}

type Seen = Arc<Mutex<HashMap<String, HostSeen>>>;

async fn measure(
    args: &Args,
    cluster: &ProcessCluster,
    hosts: &[OctoPrintProcess],
    started_at_unix: u64,
) -> Result<Results, Failure> {
    let leader = cluster
        .wait_for_leader(LEADER_WAIT)
        .await
        .context("waiting for a leader")?
        .id;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let follower = *followers.first().context("the cluster has no follower")?;
    let leader_url = cluster.url(leader);
    let token = cluster
        .admin_token()
        .context("the cluster has no admin token (raft3d init's admin.token)")?;
    let client = cluster
        .client_with(RetryPolicy {
            deadline: Duration::from_secs(30),
            ..RetryPolicy::default()
        })
        .context("building the Raft3D client")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .context("building the HTTP client")?;
    let poller = reqwest::Client::builder()
        .timeout(POLL_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let first_host = hosts.first().context("no OctoPrint started")?;
    let octoprint_version = octoprint_version(&poller, first_host).await;

    // The farm: a printer and a spool per OctoPrint, each printer connected to its own.
    eprintln!("printing-bench: leader is node {leader}; creating the farm ...");
    let printer_ids: Vec<String> = (1..=hosts.len()).map(|n| format!("bench-p{n}")).collect();
    let spool_ids: Vec<String> = (1..=hosts.len()).map(|n| format!("bench-f{n}")).collect();
    for ((printer, spool), host) in printer_ids.iter().zip(&spool_ids).zip(hosts) {
        create_printer(&client, printer, spool, host).await?;
    }
    let gcode = gcode(args.print_ms);
    let file_id = upload(&http, &leader_url, &token, "bench-part.gcode", &gcode).await?;
    for printer in &printer_ids {
        wait_idle(&poller, &leader_url, &token, printer).await?;
    }

    let pids = Pids::of(cluster, hosts)?;
    // Idle: every driver polls its printer; nothing else happens.
    let log_idle_start = last_log_index(cluster, leader).await?;
    let idle_before = pids.sample();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_after = pids.sample();
    let log_idle_end = last_log_index(cluster, leader).await?;

    // The OctoPrints are watched from here on.
    let seen: Vec<Seen> = hosts.iter().map(|_| Seen::default()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = hosts
        .iter()
        .zip(&seen)
        .map(|(host, seen)| {
            tokio::spawn(watch_host(
                poller.clone(),
                host.url(),
                seen.clone(),
                stop.clone(),
                Duration::from_millis(args.poll_ms),
            ))
        })
        .collect();
    let telemetry_watchers: Vec<_> = [leader, follower]
        .into_iter()
        .map(|node| {
            tokio::spawn(watch_telemetry(
                poller.clone(),
                format!("{}/api/v1/telemetry", cluster.url(node)),
                token.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let watched = async {
        eprintln!(
            "printing-bench: queueing {} jobs ({} per printer, {} ms each) ...",
            hosts.len() as u64 * args.jobs_per_printer,
            args.jobs_per_printer,
            args.print_ms
        );
        let before = pids.sample();
        let log_start = last_log_index(cluster, leader).await?;
        let mut jobs = Vec::new();
        for round in 0..args.jobs_per_printer {
            for (printer, (printer_id, spool_id)) in printer_ids.iter().zip(&spool_ids).enumerate()
            {
                let id = format!("{printer_id}-j{round}");
                let body = NewPrintJobBody {
                    id: Some(id.clone()),
                    ..NewPrintJobBody::of_file(printer_id, spool_id, &file_id)
                };
                client
                    .create_job(&body)
                    .await
                    .context(format!("queueing job {id}"))?;
                jobs.push(Job {
                    id,
                    printer,
                    round,
                    queued: Instant::now(),
                    running: None,
                    done: None,
                    server: None,
                });
            }
        }
        let failed_polls = follow(args, &poller, &leader_url, &token, &mut jobs).await?;
        let after = pids.sample();
        let log_end = last_log_index(cluster, leader).await?;
        Ok::<_, Failure>((jobs, before, after, log_start, log_end, failed_polls))
    }
    .await;
    stop.store(true, Ordering::SeqCst);
    for watcher in watchers {
        let _ = watcher.await;
    }
    let mut telemetry_ages = Vec::new();
    for watcher in telemetry_watchers {
        telemetry_ages.push(watcher.await.unwrap_or_default());
    }
    let (jobs, before, after, log_start, log_end, failed_polls) = watched?;
    let leader_now = cluster.leader().await.map(|l| l.id);

    // The printer's own count: each job printed once.
    let mut printed = Vec::new();
    for job in &jobs {
        let count = match hosts.get(job.printer) {
            Some(host) => printed_count(&poller, host, &job.id).await,
            None => None,
        };
        printed.push(count);
    }

    let idle_cpu = idle_before.percent_to(&idle_after);
    let printing_cpu = before.percent_to(&after);
    let node_role = |id: u64| if id == leader { "leader" } else { "follower" };
    let nodes: Vec<NodeCpu> = cluster
        .ids()
        .into_iter()
        .map(|id| NodeCpu {
            id,
            role: node_role(id),
            idle_percent: idle_cpu.node(id),
            printing_percent: printing_cpu.node(id),
        })
        .collect();
    let cpu = Cpu {
        leader_percent: printing_cpu.node(leader),
        leader_idle_percent: idle_cpu.node(leader),
        follower_percent: printing_cpu.node(follower),
        follower_idle_percent: idle_cpu.node(follower),
        nodes,
        octoprints_percent: printing_cpu.octoprints,
        bench_percent: printing_cpu.bench,
    };

    let seen: Vec<HashMap<String, HostSeen>> = seen.iter().map(|s| lock(s).clone()).collect();
    Ok(analyse(
        args,
        Analysis {
            jobs,
            seen,
            printed,
            cpu,
            octoprint_version,
            printing_wall: after.at.duration_since(before.at),
            log_printing: log_end.saturating_sub(log_start),
            log_idle: log_idle_end.saturating_sub(log_idle_start),
            failed_polls,
            leader_changed: leader_now != Some(leader),
            started_at_unix,
            telemetry_ages,
        },
    ))
}

/// Reads a node's live values every 250 ms; returns each printer's age (ms from its
/// `observed_ms` to the read) at every read.
async fn watch_telemetry(
    http: reqwest::Client,
    url: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> Vec<f64> {
    let mut ages = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let Ok(live) = get_json::<Vec<app::domain::PrinterLive>>(&http, &url, Some(&token)).await
        else {
            continue;
        };
        let now_ms = unix_ms();
        ages.extend(
            live.iter()
                .map(|printer| now_ms.saturating_sub(printer.observed_ms) as f64),
        );
    }
    ages
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Polls the jobs on the leader until every one is `Done`; notes when each is first seen
/// `Running` and `Done`. Returns how many polls failed. A job ending `Canceled` fails the
/// run (with its reason).
async fn follow(
    args: &Args,
    poller: &reqwest::Client,
    leader_url: &str,
    token: &str,
    jobs: &mut [Job],
) -> Result<u64, Failure> {
    let deadline = Instant::now() + args.timeout();
    let url = format!("{leader_url}/api/v1/print_jobs?consistency=stale");
    let mut failed = 0u64;
    let mut last = String::from("no poll answered");
    let mut tick = tokio::time::interval(Duration::from_millis(args.poll_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if Instant::now() >= deadline {
            let open: Vec<&str> = jobs
                .iter()
                .filter(|j| j.done.is_none())
                .map(|j| j.id.as_str())
                .collect();
            return fail(format!(
                "jobs not Done within {:?} of being queued: {}; last poll: {last}",
                args.timeout(),
                open.join(", ")
            ));
        }
        let listed = match get_json::<Vec<PrintJob>>(poller, &url, Some(token)).await {
            Ok(listed) => listed,
            Err(why) => {
                failed += 1;
                last = why;
                continue;
            }
        };
        let now = Instant::now();
        let by_id: HashMap<&str, &PrintJob> = listed.iter().map(|j| (j.id.as_str(), j)).collect();
        let mut statuses = Vec::new();
        for job in jobs.iter_mut() {
            let Some(stored) = by_id.get(job.id.as_str()) else {
                continue;
            };
            statuses.push(format!("{} {}", job.id, stored.status.as_str()));
            match stored.status {
                JobStatus::Queued => {}
                JobStatus::Running => {
                    job.running.get_or_insert(now);
                }
                JobStatus::Done => {
                    // Running between two polls: seen only as Done (then counted so).
                    job.running.get_or_insert(now);
                    job.done.get_or_insert(now);
                    job.server = Some((*stored).clone());
                }
                JobStatus::Canceled => {
                    let reason = stored
                        .reason
                        .as_ref()
                        .map_or("no reason given", |r| r.as_str());
                    return fail(format!("job {} ended Canceled: {reason}", job.id));
                }
            }
        }
        last = statuses.join(", ");
        if jobs.iter().all(|j| j.done.is_some()) {
            return Ok(failed);
        }
    }
}

/// Notes, for every job file OctoPrint prints, when it was first seen `Printing` and
/// when it was first seen no longer printing it.
async fn watch_host(
    http: reqwest::Client,
    url: String,
    seen: Seen,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    let url = format!("{url}/api/job");
    let mut current: Option<String> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let Ok(answer) = get_json::<serde_json::Value>(&http, &url, None).await else {
            continue;
        };
        let now = Instant::now();
        let state = answer["state"].as_str().unwrap_or_default();
        let printing = match state {
            "Printing" | "Cancelling" | "Pausing" | "Paused" => answer["job"]["file"]["name"]
                .as_str()
                .and_then(app::domain::job::job_of_printer_file)
                .map(|id| id.as_str().to_owned()),
            _ => None,
        };
        let mut seen = lock(&seen);
        if let Some(previous) = current.take().filter(|p| Some(p) != printing.as_ref()) {
            seen.entry(previous).or_default().ended.get_or_insert(now);
        }
        if let Some(job) = printing {
            seen.entry(job.clone())
                .or_default()
                .printing
                .get_or_insert(now);
            current = Some(job);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What [`analyse`] turns into [`Results`].
struct Analysis {
    jobs: Vec<Job>,
    seen: Vec<HashMap<String, HostSeen>>,
    printed: Vec<Option<u64>>,
    cpu: Cpu,
    octoprint_version: String,
    printing_wall: Duration,
    log_printing: u64,
    log_idle: u64,
    failed_polls: u64,
    leader_changed: bool,
    started_at_unix: u64,
    /// [`watch_telemetry`]'s ages: the leader's, then the follower's.
    telemetry_ages: Vec<Vec<f64>>,
}

fn analyse(args: &Args, a: Analysis) -> Results {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // `later - earlier` in ms, negative when `later` came first.
    let delta = |later: Instant, earlier: Instant| {
        ms(later.saturating_duration_since(earlier)) - ms(earlier.saturating_duration_since(later))
    };
    let origin = a
        .jobs
        .iter()
        .map(|j| j.queued)
        .min()
        .unwrap_or_else(Instant::now);
    let mut lists: HashMap<&'static str, Vec<f64>> = HashMap::new();
    let mut push = |name: &'static str, value: Option<f64>| {
        if let Some(value) = value {
            lists.entry(name).or_default().push(value);
        }
    };
    let mut records = Vec::new();
    for (job, printed) in a.jobs.iter().zip(&a.printed) {
        let previous = a
            .jobs
            .iter()
            .find(|p| p.printer == job.printer && p.round + 1 == job.round);
        // The printer is free for this job once it is queued and the one before is Done.
        let free = match previous.and_then(|p| p.done) {
            Some(done) => done.max(job.queued),
            None => job.queued,
        };
        let host = a
            .seen
            .get(job.printer)
            .and_then(|s| s.get(&job.id))
            .copied();
        let host = host.unwrap_or_default();
        let to_running = job.running.map(|r| delta(r, free));
        push("queued_to_running", to_running);
        match job.round {
            0 => push("first", to_running),
            _ => push("next", to_running),
        }
        let server = job.server.as_ref().and_then(|s| {
            let started = s.started_at?.unix_ms();
            let created = s.created_at?.unix_ms();
            let free = match previous.and_then(|p| p.server.as_ref()) {
                Some(p) => p.finished_at?.unix_ms().max(created),
                None => created,
            };
            Some(started as f64 - free as f64)
        });
        push("server", server);
        push("queued_to_done", job.done.map(|d| delta(d, job.queued)));
        push("free_to_done", job.done.map(|d| delta(d, free)));
        push("free_to_host", host.printing.map(|p| delta(p, free)));
        push(
            "running_after_host",
            host.printing.zip(job.running).map(|(p, r)| delta(r, p)),
        );
        push(
            "done_after_host_end",
            host.ended.zip(job.done).map(|(e, d)| delta(d, e)),
        );
        push(
            "host_print",
            host.printing.zip(host.ended).map(|(p, e)| delta(e, p)),
        );
        // The printer itself standing idle between two jobs of its queue.
        let previous_end = previous
            .and_then(|p| a.seen.get(job.printer)?.get(&p.id))
            .and_then(|seen| seen.ended);
        push(
            "host_idle",
            previous_end.zip(host.printing).map(|(e, p)| delta(p, e)),
        );
        records.push(JobRecord {
            id: job.id.clone(),
            printer: format!("bench-p{}", job.printer + 1),
            queued_ms: delta(job.queued, origin),
            free_ms: delta(free, origin),
            running_seen_ms: job.running.map(|r| delta(r, origin)),
            done_seen_ms: job.done.map(|d| delta(d, origin)),
            octoprint_printing_seen_ms: host.printing.map(|p| delta(p, origin)),
            octoprint_end_seen_ms: host.ended.map(|e| delta(e, origin)),
            server_free_to_running_ms: server,
            printed_on_octoprint: *printed,
        });
    }
    let mut take = |name| percentiles(lists.remove(name).unwrap_or_default());
    let jobs_total = a.jobs.len();
    Results {
        bench: "raft3d-printing-bench",
        started_at_unix: a.started_at_unix,
        settings: Settings {
            printers: args.printers,
            jobs_per_printer: args.jobs_per_printer,
            print_ms: args.print_ms,
            poll_ms: args.poll_ms,
            idle_secs: args.idle_secs,
            smoke: args.smoke,
            nodes: 3,
            raft3d_args: args.raft3d_args.clone(),
            driver_poll_ms: 1000,
            octoprint_version: a.octoprint_version,
        },
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: cpu_model(),
            load_average_before: String::new(),
            load_average_after: String::new(),
        },
        queued_to_running_ms: take("queued_to_running"),
        first_job_queued_to_running_ms: take("first"),
        next_job_done_to_running_ms: take("next"),
        server_queued_to_running_ms: take("server"),
        queued_to_done_ms: take("queued_to_done"),
        free_to_done_ms: take("free_to_done"),
        free_to_octoprint_printing_ms: take("free_to_host"),
        running_after_octoprint_printing_ms: take("running_after_host"),
        done_after_octoprint_end_ms: take("done_after_host_end"),
        octoprint_print_ms: take("host_print"),
        octoprint_idle_between_jobs_ms: take("host_idle"),
        telemetry_age_on_leader_ms: percentiles(
            a.telemetry_ages.first().cloned().unwrap_or_default(),
        ),
        telemetry_age_on_follower_ms: percentiles(
            a.telemetry_ages.get(1).cloned().unwrap_or_default(),
        ),
        cpu: a.cpu,
        printing_phase_secs: a.printing_wall.as_secs_f64(),
        log_entries_while_printing: a.log_printing,
        log_entries_per_job: match jobs_total {
            0 => 0.0,
            n => a.log_printing as f64 / n as f64,
        },
        log_entries_while_idle: a.log_idle,
        jobs_done: a.jobs.iter().filter(|j| j.done.is_some()).count(),
        jobs_printed_once: a.printed.iter().filter(|p| **p == Some(1)).count(),
        failed_polls: a.failed_polls,
        leader_changed: a.leader_changed,
        startup_secs: 0.0,
        total_secs: 0.0,
        jobs: records,
    }
}

// ---- Setup requests ----

/// A short G-code file as PrusaSlicer writes it; the dwell makes the virtual printer
/// take about `print_ms` (its moves are near instant).
fn gcode(print_ms: u64) -> String {
    let seconds = print_ms.div_ceil(1000);
    format!(
        "; generated by PrusaSlicer 2.7.1+linux-x64-GTK3 on 2026-12-07 at 10:00:00 UTC\n\
         ;\n; external perimeters extrusion width = 0.45mm\n\
         ; estimated printing time (normal mode) = {seconds}s\n\
         M73 P0 R0\nM104 S200 ; set extruder temp\nM140 S60 ; set bed temp\n\
         G21 ; set units to millimeters\nG90 ; use absolute coordinates\n\
         M83 ; extruder relative mode\nG28 ; home all axes\nG1 Z0.2 F720\n\
         G1 X10 Y10 F6000\nG1 X60 Y10 E2.5 F1500\n\
         G4 P{print_ms} ; dwell\n\
         G1 X60 Y60 E2.5\nM104 S0 ; turn off extruder\nM140 S0 ; turn off bed\n\
         M84 ; disable motors\n\
         ; filament used [mm] = 1234.56\n; filament used [g] = 3.71\n"
    )
}

async fn create_printer(
    client: &Client,
    printer: &str,
    spool: &str,
    host: &OctoPrintProcess,
) -> Result<(), Failure> {
    let body = NewPrinterBody {
        id: Some(printer.to_owned()),
        company: "Prusa".to_owned(),
        model: "MK4".to_owned(),
    };
    client
        .create_printer(&body)
        .await
        .context(format!("creating printer {printer}"))?;
    let body = NewFilamentBody {
        id: Some(spool.to_owned()),
        kind: "PLA".to_owned(),
        color: "grey".to_owned(),
        total_weight_in_grams: MAX_WEIGHT_GRAMS,
        remaining_weight_in_grams: None,
    };
    client
        .create_filament(&body)
        .await
        .context(format!("creating spool {spool}"))?;
    // Self-clearing (a belt printer): the bench measures the driver going from one job to
    // the next, not a person confirming a clear bed.
    let connection = serde_json::json!({"kind": "octoprint", "url": host.url(), "api_key": host.api_key(), "self_clearing": true});
    let path = format!("/api/v1/printers/{printer}/connection");
    let call = Call::new(Method::PUT, path.clone())
        .json(&connection)
        .context(format!("encoding {path}"))?;
    client
        .execute(&call)
        .await
        .context(format!("connecting {printer} to {}", host.url()))?;
    Ok(())
}

/// Stores the G-code file on the cluster; returns its id.
async fn upload(
    http: &reqwest::Client,
    leader_url: &str,
    token: &str,
    name: &str,
    content: &str,
) -> Result<String, Failure> {
    let url = format!("{leader_url}/api/v1/files?name={name}");
    let response = http
        .post(&url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(content.as_bytes().to_vec())
        .send()
        .await
        .context(format!("uploading {name} to {leader_url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::CREATED {
        return fail(format!("uploading {name}: {status} {body}"));
    }
    let file: serde_json::Value =
        serde_json::from_str(&body).context(format!("uploading {name}: unreadable answer"))?;
    file["id"]
        .as_str()
        .map(str::to_owned)
        .context(format!("uploading {name}: no id in {body}"))
}

/// Waits until the leader's driver has reported `printer` idle (connected, Operational).
async fn wait_idle(
    http: &reqwest::Client,
    leader_url: &str,
    token: &str,
    printer: &str,
) -> Result<(), Failure> {
    let url = format!("{leader_url}/api/v1/printers/{printer}?consistency=stale");
    let result = raft3d_launcher::eventually(&format!("{printer} idle"), IDLE_WAIT, || async {
        let printer: Printer = get_json(http, &url, Some(token)).await?;
        match printer.status {
            Some(status) if status.state == PrinterState::Idle => Ok(()),
            Some(status) => Err(format!("{:?}: {:?}", status.state, status.message)),
            None => Err("no status reported yet".to_owned()),
        }
    })
    .await;
    result.context("waiting for the printers' drivers")
}

/// One GET answered 200 with a `T` as its body, or why not.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<T, String> {
    let mut request = http.get(url);
    match token {
        Some(token) => request = request.bearer_auth(token),
        None => request = request.header("X-Api-Key", OCTOPRINT_KEY),
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("no answer: {}", e.without_url()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("body cut short: {}", e.without_url()))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))
}

async fn last_log_index(cluster: &ProcessCluster, leader: u64) -> Result<u64, Failure> {
    cluster
        .view(leader)
        .await
        .and_then(|view| view.last_log_index)
        .context(format!("node {leader} did not say its last log index"))
}

async fn octoprint_version(http: &reqwest::Client, host: &OctoPrintProcess) -> String {
    let url = format!("{}/api/version", host.url());
    get_json::<serde_json::Value>(http, &url, None)
        .await
        .ok()
        .and_then(|v| v["server"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// OctoPrint's count of successful prints of `job`'s file (`None`: it did not say).
async fn printed_count(http: &reqwest::Client, host: &OctoPrintProcess, job: &str) -> Option<u64> {
    let url = format!("{}/api/files/local/raft3d-{job}.gcode", host.url());
    let file: serde_json::Value = get_json(http, &url, None).await.ok()?;
    Some(file["prints"]["success"].as_u64().unwrap_or(0))
}

// ---- CPU ----

/// The processes whose CPU is measured.
struct Pids {
    nodes: Vec<(u64, u32)>,
    octoprints: Vec<u32>,
    ticks_per_sec: f64,
}

/// CPU seconds so far, per process, at one moment.
struct CpuSample {
    at: Instant,
    nodes: HashMap<u64, f64>,
    octoprints: f64,
    bench: f64,
}

/// % of one core over an interval.
struct CpuPercent {
    nodes: HashMap<u64, f64>,
    octoprints: f64,
    bench: f64,
}

impl CpuPercent {
    fn node(&self, id: u64) -> f64 {
        self.nodes.get(&id).copied().unwrap_or(0.0)
    }
}

impl Pids {
    fn of(cluster: &ProcessCluster, hosts: &[OctoPrintProcess]) -> Result<Self, Failure> {
        let mut nodes = Vec::new();
        for id in cluster.ids() {
            let pid = cluster
                .node(id)
                .ok()
                .and_then(|n| n.pid())
                .context(format!("node {id} is not running"))?;
            nodes.push((id, pid));
        }
        let mut octoprints = Vec::new();
        for (n, host) in (1..).zip(hosts) {
            octoprints.push(
                host.pid()
                    .context(format!("OctoPrint {n} is not running"))?,
            );
        }
        Ok(Self {
            nodes,
            octoprints,
            ticks_per_sec: clock_ticks(),
        })
    }

    fn sample(&self) -> CpuSample {
        let secs = |pid: &str| cpu_ticks(pid).unwrap_or(0) as f64 / self.ticks_per_sec;
        CpuSample {
            at: Instant::now(),
            nodes: self
                .nodes
                .iter()
                .map(|(id, pid)| (*id, secs(&pid.to_string())))
                .collect(),
            octoprints: self.octoprints.iter().map(|p| secs(&p.to_string())).sum(),
            bench: secs("self"),
        }
    }
}

impl CpuSample {
    fn percent_to(&self, later: &CpuSample) -> CpuPercent {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let pct = |before: f64, after: f64| (after - before).max(0.0) / wall * 100.0;
        CpuPercent {
            nodes: self
                .nodes
                .iter()
                .map(|(id, before)| {
                    (
                        *id,
                        pct(*before, later.nodes.get(id).copied().unwrap_or(0.0)),
                    )
                })
                .collect(),
            octoprints: pct(self.octoprints, later.octoprints),
            bench: pct(self.bench, later.bench),
        }
    }
}

/// utime + stime of `/proc/<pid>/stat`, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK` (100 on Linux, if it cannot be asked).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---- Report ----

fn report(r: &Results) {
    let s = &r.settings;
    let line = |name: &str, x: &Percentiles| match x.count {
        0 => println!("  {name:<52} -  (n=0)"),
        n => println!(
            "  {name:<52} p50 {:>7.0} ms  p99 {:>7.0} ms  max {:>7.0} ms  (n={n})",
            x.p50, x.p99, x.max
        ),
    };
    println!(
        "\nRaft3D driving {} OctoPrint {} virtual printers: 3 nodes, defaults, secure; {} jobs per printer, \
         {} ms print (G4), bench polls every {} ms, drivers poll every {} ms; {} cores ({}), load {} -> {}",
        s.printers,
        s.octoprint_version,
        s.jobs_per_printer,
        s.print_ms,
        s.poll_ms,
        s.driver_poll_ms,
        r.machine.cores,
        r.machine.cpu,
        r.machine.load_average_before,
        r.machine.load_average_after,
    );
    line(
        "queued -> Running (from printer free, polled)",
        &r.queued_to_running_ms,
    );
    line(
        "  first job of a printer (from its POST answer)",
        &r.first_job_queued_to_running_ms,
    );
    line(
        "  later jobs (from the previous job seen Done)",
        &r.next_job_done_to_running_ms,
    );
    line(
        "queued -> Running (the job's own timestamps)",
        &r.server_queued_to_running_ms,
    );
    line(
        "  printer free -> OctoPrint says Printing",
        &r.free_to_octoprint_printing_ms,
    );
    line(
        "  OctoPrint Printing -> Raft3D Running",
        &r.running_after_octoprint_printing_ms,
    );
    line(
        "OctoPrint print (Printing seen -> end seen)",
        &r.octoprint_print_ms,
    );
    line(
        "OctoPrint print end -> Raft3D Done",
        &r.done_after_octoprint_end_ms,
    );
    line(
        "OctoPrint idle between two queued jobs",
        &r.octoprint_idle_between_jobs_ms,
    );
    line("printer free -> Done", &r.free_to_done_ms);
    line(
        "age of the live values read on the leader",
        &r.telemetry_age_on_leader_ms,
    );
    line(
        "age of the live values read on a follower",
        &r.telemetry_age_on_follower_ms,
    );
    line(
        "queued -> Done (from the POST, waiting included)",
        &r.queued_to_done_ms,
    );
    println!(
        "  CPU, % of one core: leader {:.1} printing / {:.1} idle; follower {:.1} / {:.1}; \
         {} OctoPrints together {:.1}; this bench {:.1}",
        r.cpu.leader_percent,
        r.cpu.leader_idle_percent,
        r.cpu.follower_percent,
        r.cpu.follower_idle_percent,
        s.printers,
        r.cpu.octoprints_percent,
        r.cpu.bench_percent,
    );
    println!(
        "  Raft log: {} entries while printing ({:.1} per job), {} in {} s idle; \
         printing phase {:.1} s; {} of {} jobs Done, {} printed once by OctoPrint's count; \
         {} failed polls; leader changed: {}",
        r.log_entries_while_printing,
        r.log_entries_per_job,
        r.log_entries_while_idle,
        s.idle_secs,
        r.printing_phase_secs,
        r.jobs_done,
        r.jobs.len(),
        r.jobs_printed_once,
        r.failed_polls,
        r.leader_changed,
    );
    println!(
        "  run: {:.1} s (start-up of the OctoPrints and nodes {:.1} s)",
        r.total_secs, r.startup_secs
    );
}
