//! `raft3d-bench`: Raft3D side by side with etcd on the same machine, in one run.
//!
//! It starts a 3-node Raft3D cluster (the `raft3d` binary, `--raft3d-bin`, by default the
//! one next to this executable, so `target/release/raft3d` beside
//! `target/release/raft3d-bench`) and a 3-node etcd cluster (Debian's `etcd`, installed by
//! `scripts/install-etcd.sh`), and measures both at two settings ([`settings`]): each at
//! its own defaults, then both at the same heartbeat, election timeout range and snapshot
//! interval. At each setting, alternating the two systems level by level so that drift
//! on the machine hits both:
//! 1. writes of ~150-byte records (Raft3D: create a print job over REST; etcd: `Put` over
//!    its native gRPC API) and linearizable reads, from 1, 16, 64 and 256 closed-loop
//!    clients, plus writes at a fixed open-loop rate ([`load`]);
//! 2. failover: SIGKILL the leader, time to the next acknowledged write, 20 times each
//!    ([`failover`]);
//! 3. on fresh clusters filled with 100k records: memory per node (RssAnon and PSS),
//!    restart time of a killed node, and catch-up of a wiped follower ([`bulk`]).
//!
//! Connections, the same rule for both systems: every closed-loop client has its own
//! connection, the way each system's clients talk to it (etcd: one HTTP/2 gRPC channel
//! per client, as `etcd benchmark --conns N --clients N`; Raft3D: one HTTP/1.1 keep-alive
//! connection per client, as our REST clients); `--clients-per-conn` shares connections.
//!
//! It prints the tables and writes JSON, a machine description and the tables under
//! `--out-dir` ([`report`], [`machine`]). It asserts nothing: it is a benchmark, not a
//! test; the targets are printed with pass or miss.
//!
//! Owns: the clusters and the data directory it starts (all gone when it returns, also
//! on error or Ctrl-C, unless `--data-dir` was given). Must not touch node internals or
//! any process it did not start: it speaks each system's public client API, as any client.

mod bulk;
mod etcd;
mod failover;
mod load;
mod machine;
mod raft3d;
mod report;
mod settings;
mod usage;

use clap::Parser;
use etcd::EtcdCluster;
use load::{Requester, Window};
use raft3d::Raft3dCluster;
use serde::Serialize;
use settings::{Settings, SettingsName};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Address every node of both systems listens on.
const LOCALHOST: &str = "127.0.0.1";
/// How long to wait for a cluster to agree on a leader.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// How long a (re)started node may take to answer a read before the run gives up.
const SERVE_WAIT: Duration = Duration::from_secs(120);
/// Per request; a write is answered within Raft3D's write timeout (5 s by default) and
/// etcd's request timeout (5 s plus twice the election timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Open-loop requests allowed to wait at once (more would exhaust file descriptors).
const OPEN_LOOP_IN_FLIGHT: usize = 1024;

/// `raft3d-bench` flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "raft3d-bench",
    version,
    about = "Raft3D beside etcd (gRPC) on this machine: throughput, latency, failover, memory"
)]
pub struct BenchArgs {
    /// Concurrent closed-loop clients per level, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64,256",
        value_parser = clap::value_parser!(u64).range(1..=10_000)
    )]
    pub clients: Vec<u64>,
    /// Closed-loop clients sharing one connection (1: a connection per client). etcd
    /// multiplexes them on one HTTP/2 channel; Raft3D's HTTP/1.1 client pool opens a
    /// connection per request in flight anyway.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients_per_conn: u64,
    /// Measured seconds per level and system.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration_secs: u64,
    /// Unmeasured warm-up seconds before each measured period.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Writes per second of the open-loop level (0: no open-loop level).
    #[arg(long, default_value_t = 1000)]
    pub open_rate: u64,
    /// Leader kills per system for the failover measurement (0: skip it).
    #[arg(long, default_value_t = 20)]
    pub kills: u32,
    /// Records in the fresh clusters of the memory and restart measurements (0: skip).
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Restarts of a killed follower holding those records.
    #[arg(long, default_value_t = 3)]
    pub restarts: u32,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Settings to measure, in order: `defaults` (each system at its own), `matched` (both
    /// at the same timings, `--matched-*`).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "defaults,matched"
    )]
    pub settings: Vec<SettingsName>,
    /// Matched settings: heartbeat interval of both systems, in ms.
    #[arg(long, default_value_t = settings::MATCHED_HEARTBEAT_MS)]
    pub matched_heartbeat_ms: u64,
    /// Matched settings: election timeout T in ms; both systems draw each election
    /// timeout from [T, 2T) (etcd `--election-timeout T`, Raft3D min T / max 2T).
    #[arg(long, default_value_t = settings::MATCHED_ELECTION_MS)]
    pub matched_election_ms: u64,
    /// Matched settings: log entries between snapshots (etcd `--snapshot-count`, Raft3D
    /// `--snapshot-threshold`).
    #[arg(long, default_value_t = settings::MATCHED_SNAPSHOT_EVERY)]
    pub matched_snapshot_every: u64,
    /// Measure Raft3D alone (no etcd, no ratios).
    #[arg(long)]
    pub without_etcd: bool,
    /// One more flag for every `raft3d serve`, e.g. `--raft3d-arg=--insecure` to measure
    /// without peer TLS and API tokens; repeat for several.
    #[arg(long = "raft3d-arg", allow_hyphen_values = true)]
    pub raft3d_args: Vec<String>,
    /// etcd's peers over mutual TLS (a CA and a certificate for 127.0.0.1 made for the
    /// run, `--peer-client-cert-auth`): `matched` (the default) when Raft3D's peers use
    /// TLS, that is unless `--raft3d-arg=--insecure`, so the two compare like for like.
    #[arg(long, value_enum, default_value_t = EtcdPeerTls::Matched)]
    pub etcd_peer_tls: EtcdPeerTls,
    /// The `raft3d` executable [default: `raft3d` next to this executable].
    #[arg(long)]
    pub raft3d_bin: Option<PathBuf>,
    /// The etcd executable (`./scripts/install-etcd.sh` installs Debian's `etcd-server`).
    #[arg(long, default_value = "etcd")]
    pub etcd: PathBuf,
    /// Parent directory of every node's data, kept afterwards [default: a fresh
    /// directory under the system temp dir, removed at the end].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Client port of Raft3D node 1 (node i: +i-1).
    #[arg(long, default_value_t = 18081)]
    pub http_port: u16,
    /// Raft port of Raft3D node 1 (node i: +i-1).
    #[arg(long, default_value_t = 19081)]
    pub raft_port: u16,
    /// Client port of etcd member 1 (member i: +i-1; peer ports +10).
    #[arg(long, default_value_t = 18281)]
    pub etcd_port: u16,
    /// Where `results.json`, `machine.json`, `table.md` and `chart.svg` are written
    /// (created if missing), e.g. `docs/bench/2026-12-01`.
    #[arg(long, default_value = "bench-results")]
    pub out_dir: PathBuf,
}

/// Whether etcd's members talk over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EtcdPeerTls {
    /// As Raft3D's peers do: TLS unless `--insecure` is among the `--raft3d-arg`s.
    Matched,
    On,
    Off,
}

impl EtcdPeerTls {
    fn on(self, raft3d_args: &[String]) -> bool {
        match self {
            Self::Matched => !raft3d_args.iter().any(|a| a == "--insecure"),
            Self::On => true,
            Self::Off => false,
        }
    }
}

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Something the benchmark waits for (a Raft3D leader, a catch-up) did not happen.
    #[error(transparent)]
    NotInTime(#[from] raft3d_launcher::NotInTime),
    /// The Raft3D cluster could not be started or a node acted on.
    #[error("Raft3D cluster: {0}")]
    Cluster(#[from] raft3d_launcher::ClusterError),
    /// A Raft3D request of the setup (not of the measured load) failed.
    #[error("Raft3D: {0}")]
    Client(#[from] raft3d_client::ClientError),
    /// The HTTP client could not be built, or a setup request failed in transport.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A gRPC channel to etcd could not be set up.
    #[error("gRPC channel: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// A gRPC call of the setup (not of the measured load) failed.
    #[error("etcd {call}: {status}")]
    GrpcCall {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    /// A system refused what the benchmark creates before measuring.
    #[error("creating {0} failed")]
    Setup(&'static str),
    /// Something the benchmark waits for did not happen in time.
    #[error("gave up waiting for {0}")]
    Unready(&'static str),
    /// A record could not be written while filling a cluster.
    #[error("record {seq} could not be written while filling the cluster")]
    Fill { seq: u64 },
    /// A node process could not be started or reaped.
    #[error("{system} node: {source}")]
    Process {
        system: &'static str,
        source: std::io::Error,
    },
    /// `raft3d backup` failed.
    #[error("raft3d backup: {0}")]
    Backup(String),
    /// etcd's peer certificates could not be made.
    #[error("etcd peer certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// The etcd executable does not run.
    #[error("etcd ({0}) does not run: install it with ./scripts/install-etcd.sh (as root), or pass --etcd PATH or --without-etcd")]
    EtcdMissing(String),
    /// The raft3d executable does not run.
    #[error("raft3d ({0}) does not run: build it with `cargo build --release --locked -p raft3d -p raft3d-bench` (it must sit next to raft3d-bench), or pass --raft3d-bin PATH")]
    Raft3dMissing(String),
    /// The matched settings are not ones etcd accepts.
    #[error("matched settings: {0}")]
    Settings(String),
    /// A port of a cluster would be past 65535.
    #[error("--http-port, --raft-port or --etcd-port is too high for this many nodes")]
    Ports,
    /// A data directory could not be created, cleared or removed.
    #[error("data directory {}: {source}", .path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The report files could not be written.
    #[error("writing {}: {source}", .path.display())]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A request body or the report could not be encoded.
    #[error("encoding JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// Ctrl-C or SIGTERM arrived before the end; the clusters were stopped anyway.
    #[error("interrupted")]
    Interrupted,
}

/// What a measured request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Stores one new ~150-byte record: one Raft commit.
    Write,
    /// Reads one record, linearizably (a read-index round with a quorum).
    Read,
}

/// How load is offered at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Load {
    /// This many clients, each sending its next request when the last one is answered.
    Closed { clients: u64 },
    /// Requests leave at this rate per second whatever the answers.
    Open { rate_per_sec: u64 },
}

/// A cluster under test, as the measurements drive it: over its client API, plus
/// signals to the processes it started. Nodes are named by their 0-based index.
pub(crate) trait System {
    /// What one connection to a node sends.
    type Requester: Requester;
    /// "Raft3D" or "etcd".
    fn name(&self) -> &'static str;
    /// Nodes in the cluster, killed ones included.
    fn nodes(&self) -> usize;
    /// The node a majority agrees leads, waiting for one if needed.
    async fn leader(&self) -> Result<usize, BenchError>;
    /// A new connection to `node` whose requests do `op`; clones share the connection.
    async fn connect(&self, op: Op, node: usize) -> Result<Self::Requester, BenchError>;
    /// SIGKILLs a node and reaps it.
    async fn kill(&mut self, node: usize) -> Result<(), BenchError>;
    /// Starts a killed node again on its data directory.
    fn restart(&mut self, node: usize) -> Result<(), BenchError>;
    /// The process id of a running node.
    fn pid(&self, node: usize) -> Option<u32>;
    /// Kills every node and waits for them to be gone.
    async fn stop(&mut self);
    /// Kills follower `node`, wipes its data and brings it back empty; returns how long
    /// it took, from its start, to catch up with what the leader had.
    async fn wipe_and_catch_up(&mut self, node: usize) -> Result<Duration, BenchError>;
    /// A backup of the farm taken from `node` (`None`: the system has none measured).
    async fn backup(&self, _node: usize) -> Option<Result<bulk::BackupRun, BenchError>> {
        None
    }
    /// The Prometheus text of `node`'s metrics; `None` if they cannot be read.
    async fn metrics(&self, node: usize) -> Option<String>;
    /// The histogram of the durable log appends in those metrics ([`usage`] says which).
    fn append_series(&self) -> &'static str;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = BenchArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft3d-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The executables a run starts, checked before anything else happens.
pub struct Executables {
    pub raft3d: PathBuf,
    pub etcd: Option<PathBuf>,
}

/// Runs the benchmark: measures everything, prints the tables to stdout (progress goes
/// to stderr) and writes the report to `--out-dir`.
async fn run(args: BenchArgs) -> Result<report::BenchReport, BenchError> {
    let exes = Executables {
        raft3d: raft3d::check_binary(args.raft3d_bin.as_deref())?,
        etcd: match args.without_etcd {
            true => None,
            false => Some(etcd::check_runs(&args.etcd)?),
        },
    };
    let mut settings = settings::plan(&args, &exes)?;
    // Extra flags show in the report with the settings' own.
    for setting in &mut settings {
        setting
            .raft3d_flags
            .extend(args.raft3d_args.iter().cloned());
        setting.etcd_peer_tls = args.etcd_peer_tls.on(&args.raft3d_args);
    }
    let started_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = std::env::temp_dir().join(format!("raft3d-bench-{}", std::process::id()));
            (dir, true)
        }
    };
    // "Fresh": a crashed earlier run may have left data in the same place.
    remove_dir(&data_dir)?;
    create_dir(&data_dir)?;
    let machine = machine::describe(&data_dir, &exes);
    let measured = tokio::select! {
        measured = measure_all(&args, &exes, &settings, &data_dir) => measured,
        () = raft3d_server::node::shutdown_signal() => Err(BenchError::Interrupted),
    };
    // The clusters were dropped with `measure_all` (kill_on_drop) before this.
    if temporary {
        if let Err(e) = remove_dir(&data_dir) {
            tracing::warn!(error = %e, "could not remove the benchmark data");
        }
    }
    let report = report::BenchReport::new(&args, started_at_unix, machine, measured?);
    report.print();
    report.write(&args.out_dir)?;
    Ok(report)
}

/// Everything measured at one setting, in the order the report shows it.
pub struct Measurements {
    settings: Settings,
    levels: Vec<report::Level>,
    failover: report::PerSystem<failover::FailoverStats>,
    bulk: report::PerSystem<bulk::BulkStats>,
}

async fn measure_all(
    args: &BenchArgs,
    exes: &Executables,
    settings: &[Settings],
    data_dir: &Path,
) -> Result<Vec<Measurements>, BenchError> {
    let mut all = Vec::new();
    for settings in settings {
        eprintln!(
            "bench: settings \"{}\": {}",
            settings.name,
            settings.describe()
        );
        let dir = data_dir.join(settings.name.to_string());
        all.push(measure_settings(args, exes, settings, &dir).await?);
    }
    Ok(all)
}

/// Load levels and failover on one pair of clusters, then memory and restarts on a fresh
/// pair holding `--records` records, all at `settings`.
async fn measure_settings(
    args: &BenchArgs,
    exes: &Executables,
    settings: &Settings,
    dir: &Path,
) -> Result<Measurements, BenchError> {
    let mut raft3d = start_raft3d(args, exes, settings, &dir.join("raft3d")).await?;
    let mut etcd = match &exes.etcd {
        Some(exe) => Some(start_etcd(args, exe, settings, &dir.join("etcd")).await?),
        None => None,
    };
    let levels = measure_levels(args, &raft3d, etcd.as_ref()).await?;
    let mut failover = report::PerSystem::default();
    if args.kills > 0 {
        failover.raft3d = Some(failover::measure(&mut raft3d, args.kills).await?);
        if let Some(etcd) = etcd.as_mut() {
            failover.etcd = Some(failover::measure(etcd, args.kills).await?);
        }
    }
    raft3d.stop().await;
    if let Some(etcd) = etcd.as_mut() {
        etcd.stop().await;
    }
    let mut bulk = report::PerSystem::default();
    if args.records > 0 {
        // Fresh clusters, so that they hold exactly `records` records.
        let mut raft3d = start_raft3d(args, exes, settings, &dir.join("raft3d-bulk")).await?;
        bulk.raft3d = Some(bulk::measure(&mut raft3d, args.records, args.restarts).await?);
        raft3d.stop().await;
        if let Some(exe) = &exes.etcd {
            let mut etcd = start_etcd(args, exe, settings, &dir.join("etcd-bulk")).await?;
            bulk.etcd = Some(bulk::measure(&mut etcd, args.records, args.restarts).await?);
            etcd.stop().await;
        }
    }
    Ok(Measurements {
        settings: settings.clone(),
        levels,
        failover,
        bulk,
    })
}

async fn start_raft3d(
    args: &BenchArgs,
    exes: &Executables,
    settings: &Settings,
    dir: &Path,
) -> Result<Raft3dCluster, BenchError> {
    create_dir(dir)?;
    let ports = (args.http_port, args.raft_port);
    let flags = settings.raft3d_flags.clone();
    Raft3dCluster::start(&exes.raft3d, args.nodes, dir, ports, flags).await
}

async fn start_etcd(
    args: &BenchArgs,
    exe: &Path,
    settings: &Settings,
    dir: &Path,
) -> Result<EtcdCluster, BenchError> {
    create_dir(dir)?;
    let flags = settings.etcd_flags.clone();
    let peer_tls = settings.etcd_peer_tls;
    EtcdCluster::start(exe, args.nodes, dir, args.etcd_port, flags, peer_tls).await
}

/// Every closed-loop level (writes, then reads, per client count) and the open-loop
/// level, each on both systems; which system goes first alternates from level to level.
async fn measure_levels(
    args: &BenchArgs,
    raft3d: &Raft3dCluster,
    etcd: Option<&EtcdCluster>,
) -> Result<Vec<report::Level>, BenchError> {
    let mut plan: Vec<(Op, Load)> = Vec::new();
    for &clients in &args.clients {
        for op in [Op::Write, Op::Read] {
            plan.push((op, Load::Closed { clients }));
        }
    }
    if args.open_rate > 0 {
        let rate_per_sec = args.open_rate;
        plan.push((Op::Write, Load::Open { rate_per_sec }));
    }
    let mut levels = Vec::new();
    for (index, (op, load)) in plan.into_iter().enumerate() {
        let mut level = report::Level::new(op, load);
        if index % 2 == 0 {
            level.raft3d = Some(measure_level(args, raft3d, op, load).await?);
        }
        if let Some(etcd) = etcd {
            level.etcd = Some(measure_level(args, etcd, op, load).await?);
        }
        if index % 2 == 1 {
            level.raft3d = Some(measure_level(args, raft3d, op, load).await?);
        }
        levels.push(level);
    }
    Ok(levels)
}

/// One system at one level, against its leader. The connections are opened before the
/// window starts; requests sent during warm-up are not recorded. Meanwhile [`usage`]
/// samples CPU and durable appends at the start and end of the measured window.
async fn measure_level(
    args: &BenchArgs,
    system: &impl System,
    op: Op,
    load: Load,
) -> Result<load::LoadStats, BenchError> {
    let leader = system.leader().await?;
    let mut connections = Vec::new();
    let conns = match load {
        Load::Closed { clients } => clients.div_ceil(args.clients_per_conn.max(1)),
        // One client sending at a fixed rate: one connection (etcd: multiplexed; Raft3D:
        // its pool opens one HTTP/1.1 connection per request in flight).
        Load::Open { .. } => 1,
    };
    for _ in 0..conns {
        connections.push(system.connect(op, leader).await?);
    }
    let window = window(args);
    let run = async {
        match load {
            Load::Closed { clients } => {
                let per_conn = args.clients_per_conn.max(1);
                let requesters = (0..clients)
                    .filter_map(|client_no| {
                        let conn = usize::try_from(client_no / per_conn).ok()?;
                        connections.get(conn).cloned()
                    })
                    .collect();
                load::closed_loop(requesters, window).await
            }
            Load::Open { rate_per_sec } => {
                let requester = connections.first().cloned();
                match requester {
                    Some(r) => load::open_loop(r, rate_per_sec, OPEN_LOOP_IN_FLIGHT, window).await,
                    None => load::LoadStats::none(),
                }
            }
        }
    };
    let monitor = usage::during(system, window.measure_from, window.stop_at);
    let (mut stats, (before, after)) = tokio::join!(run, monitor);
    stats.usage = usage::per_op(&before, &after, leader, stats.count);
    eprintln!(
        "bench: {:<6} {op:?} {}: {:.0} ops/s, p50 {} ms, p99 {} ms, {} errors",
        system.name(),
        report::describe(load),
        stats.ops_per_sec,
        report::format_ms(stats.p50_ms),
        report::format_ms(stats.p99_ms),
        stats.errors
    );
    Ok(stats)
}

fn window(args: &BenchArgs) -> Window {
    Window::after(
        Duration::from_secs(args.warmup_secs),
        Duration::from_secs(args.duration_secs),
    )
}

/// Waits until `node` answers a linearizable read itself (started, state loaded,
/// caught up with the leader's commit index).
async fn wait_until_serving(system: &impl System, node: usize) -> Result<(), BenchError> {
    poll_until(SERVE_WAIT, "a restarted node to serve", || async {
        // A connection is opened per try: etcd's channel cannot be made before the
        // member listens.
        let requester = system.connect(Op::Read, node).await.ok()?;
        requester.send(0, 0).await.then_some(())
    })
    .await
}

/// Calls `check` every 5 ms until it returns `Some`, for at most `wait`.
async fn poll_until<T, F, Fut>(
    wait: Duration,
    what: &'static str,
    mut check: F,
) -> Result<T, BenchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + wait;
    loop {
        if let Some(found) = check().await {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= until {
            return Err(BenchError::Unready(what));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `base + offset` as a port, if it is one.
fn port(base: u16, offset: u64) -> Result<u16, BenchError> {
    u16::try_from(u64::from(base) + offset).map_err(|_| BenchError::Ports)
}

fn create_dir(path: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(path).map_err(|source| BenchError::DataDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a directory tree; a missing one is fine.
fn remove_dir(path: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BenchError::DataDir {
            path: path.to_path_buf(),
            source,
        }),
    }
}
