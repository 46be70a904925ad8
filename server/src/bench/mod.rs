//! `raft3d bench`: Raft3D side by side with etcd on the same machine, in one run.
//!
//! It starts a 3-node Raft3D cluster (this executable, so the release build when run as
//! `target/release/raft3d`) and a 3-node etcd cluster (Debian's `etcd`, default
//! settings, installed by `scripts/install-etcd.sh`), then measures, alternating the two
//! systems level by level so that drift on the machine hits both:
//! 1. writes of ~150-byte records (Raft3D: create a print job; etcd: `/v3/kv/put`) and
//!    linearizable reads, from 1, 16, 64 and 256 closed-loop clients, plus writes at a
//!    fixed open-loop rate ([`load`]);
//! 2. failover: SIGKILL the leader, time to the next acknowledged write, 20 times each
//!    ([`failover`]);
//! 3. on fresh clusters filled with 100k records: memory per node, restart time of a
//!    killed node, and catch-up of a wiped follower ([`bulk`]; etcd: member remove + add).
//!
//! It prints a table and writes JSON and an SVG chart under `--out-dir` ([`report`]). It
//! asserts nothing: it is a benchmark, not a test.
//!
//! Owns: the clusters and the data directory it starts (all gone when it returns, also
//! on error or Ctrl-C, unless `--data-dir` was given). Must not touch node internals or
//! any process it did not start: it speaks each system's public HTTP API, as any client.

mod bulk;
mod etcd;
mod failover;
mod load;
mod raft3d;
mod report;

use crate::local_cluster::LocalClusterError;
use app::domain::{IdError, TextError};
use clap::Args;
use etcd::EtcdCluster;
use load::{MakeRequest, Window};
use raft3d::Raft3dCluster;
use serde::Serialize;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use report::BenchReport;

/// Address every node of both systems listens on.
const LOCALHOST: &str = "127.0.0.1";
/// How long to wait for a cluster to agree on a leader.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// How long a (re)started node may take to answer a read before the run gives up.
const SERVE_WAIT: Duration = Duration::from_secs(120);
/// Per request; a write is answered within Raft3D's write timeout (5 s by default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Open-loop requests allowed to wait at once (more would exhaust file descriptors).
const OPEN_LOOP_IN_FLIGHT: usize = 1024;

/// `raft3d bench` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent closed-loop clients per level, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64,256",
        value_parser = clap::value_parser!(u64).range(1..=10_000)
    )]
    pub clients: Vec<u64>,
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
    /// Measure Raft3D alone (no etcd, no ratios).
    #[arg(long)]
    pub without_etcd: bool,
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
    /// Where `bench.json` and `bench.svg` are written (created if missing).
    #[arg(long, default_value = "bench-results")]
    pub out_dir: PathBuf,
}

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The local Raft3D cluster did not start, or no leader was agreed on.
    #[error(transparent)]
    Cluster(#[from] LocalClusterError),
    /// The HTTP client could not be built, or a setup request failed in transport.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A system refused what the benchmark creates before measuring.
    #[error("creating {0} failed")]
    Setup(&'static str),
    /// Something the benchmark waits for did not happen in time.
    #[error("gave up waiting for {0}")]
    Unready(&'static str),
    /// A record could not be written while filling a cluster.
    #[error("record {seq} could not be written while filling the cluster")]
    Fill { seq: u64 },
    /// etcd could not be started or stopped.
    #[error("etcd: {0}")]
    Etcd(std::io::Error),
    /// The etcd executable does not run.
    #[error("etcd ({0}) does not run: install it with ./scripts/install-etcd.sh (as root), or pass --etcd PATH or --without-etcd")]
    EtcdMissing(String),
    /// A port of the etcd cluster would be past 65535.
    #[error("--etcd-port is too high for this many members")]
    Ports,
    /// A constant id of the benchmark is not a valid id (a bug in this module).
    #[error("invalid benchmark id: {0}")]
    Id(#[from] IdError),
    /// A constant text of the benchmark is not valid text (a bug in this module).
    #[error("invalid benchmark text: {0}")]
    Text(#[from] TextError),
    /// A data directory could not be cleared or removed.
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
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Load {
    /// This many clients, each sending its next request when the last one is answered.
    Closed { clients: u64 },
    /// Requests leave at this rate per second whatever the answers.
    Open { rate_per_sec: u64 },
}

/// A cluster under test, as the measurements drive it: over HTTP, plus signals to the
/// processes it started. Nodes are named by their 0-based index.
pub(crate) trait System {
    /// "Raft3D" or "etcd".
    fn name(&self) -> &'static str;
    /// Every node's client URL, killed ones included.
    fn urls(&self) -> Vec<String>;
    /// The node a majority agrees leads, waiting for one if needed.
    async fn leader(&self, client: &reqwest::Client) -> Result<usize, BenchError>;
    /// The requests of `op` against the node at `url`.
    fn requests(&self, op: Op, url: &str) -> MakeRequest;
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
    async fn wipe_and_catch_up(
        &mut self,
        client: &reqwest::Client,
        node: usize,
    ) -> Result<Duration, BenchError>;
}

/// Runs `raft3d bench`: measures everything, prints a table to stdout (progress goes to
/// stderr) and writes the report to `--out-dir`.
pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    let etcd_exe = if args.without_etcd {
        None
    } else {
        Some(etcd::check_runs(&args.etcd)?)
    };
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
    let measured = tokio::select! {
        measured = measure_all(&args, etcd_exe.as_deref(), &data_dir) => measured,
        () = crate::node::shutdown_signal() => Err(BenchError::Interrupted),
    };
    // The clusters were dropped with `measure_all` (kill_on_drop) before this.
    if temporary {
        if let Err(e) = remove_dir(&data_dir) {
            tracing::warn!(error = %e, "could not remove the benchmark data");
        }
    }
    let report = BenchReport::new(&args, started_at_unix, measured?);
    report.print();
    report.write(&args.out_dir)?;
    Ok(report)
}

/// Everything measured, in the order the report shows it.
pub struct Measurements {
    levels: Vec<report::Level>,
    failover: report::PerSystem<failover::FailoverStats>,
    bulk: report::PerSystem<bulk::BulkStats>,
}

async fn measure_all(
    args: &BenchArgs,
    etcd_exe: Option<&Path>,
    data_dir: &Path,
) -> Result<Measurements, BenchError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()?;
    let mut raft3d = start_raft3d(&client, args, &data_dir.join("raft3d")).await?;
    let mut etcd = match etcd_exe {
        Some(exe) => Some(start_etcd(&client, args, exe, &data_dir.join("etcd")).await?),
        None => None,
    };
    let levels = measure_levels(&client, args, &raft3d, etcd.as_ref()).await?;
    let mut failover = report::PerSystem::default();
    if args.kills > 0 {
        failover.raft3d = Some(failover::measure(&client, &mut raft3d, args.kills).await?);
        if let Some(etcd) = etcd.as_mut() {
            failover.etcd = Some(failover::measure(&client, etcd, args.kills).await?);
        }
    }
    raft3d.stop().await;
    if let Some(etcd) = etcd.as_mut() {
        etcd.stop().await;
    }
    let mut bulk = report::PerSystem::default();
    if args.records > 0 {
        // Fresh clusters, so that they hold exactly `records` records.
        let mut raft3d = start_raft3d(&client, args, &data_dir.join("raft3d-bulk")).await?;
        bulk.raft3d = Some(bulk::measure(&client, &mut raft3d, args.records, args.restarts).await?);
        raft3d.stop().await;
        if let Some(exe) = etcd_exe {
            let mut etcd = start_etcd(&client, args, exe, &data_dir.join("etcd-bulk")).await?;
            bulk.etcd = Some(bulk::measure(&client, &mut etcd, args.records, args.restarts).await?);
            etcd.stop().await;
        }
    }
    Ok(Measurements {
        levels,
        failover,
        bulk,
    })
}

async fn start_raft3d(
    client: &reqwest::Client,
    args: &BenchArgs,
    dir: &Path,
) -> Result<Raft3dCluster, BenchError> {
    let (nodes, http, raft) = (args.nodes, args.http_port, args.raft_port);
    Raft3dCluster::start(client, nodes, dir.to_path_buf(), http, raft).await
}

async fn start_etcd(
    client: &reqwest::Client,
    args: &BenchArgs,
    exe: &Path,
    dir: &Path,
) -> Result<EtcdCluster, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    EtcdCluster::start(client, exe, args.nodes, dir, args.etcd_port).await
}

/// Every closed-loop level (writes, then reads, per client count) and the open-loop
/// level, each on both systems; which system goes first alternates from level to level.
async fn measure_levels(
    client: &reqwest::Client,
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
            level.raft3d = Some(measure_level(client, args, raft3d, op, load).await?);
        }
        if let Some(etcd) = etcd {
            level.etcd = Some(measure_level(client, args, etcd, op, load).await?);
        }
        if index % 2 == 1 {
            level.raft3d = Some(measure_level(client, args, raft3d, op, load).await?);
        }
        levels.push(level);
    }
    Ok(levels)
}

/// One system at one level, against its leader.
async fn measure_level(
    client: &reqwest::Client,
    args: &BenchArgs,
    system: &impl System,
    op: Op,
    load: Load,
) -> Result<load::LoadStats, BenchError> {
    let leader = system.leader(client).await?;
    let make = system.requests(op, &system.urls()[leader]);
    let window = Window::after(
        Duration::from_secs(args.warmup_secs),
        Duration::from_secs(args.duration_secs),
    );
    let stats = match load {
        Load::Closed { clients } => load::closed_loop(client, &make, clients, window).await,
        Load::Open { rate_per_sec } => {
            load::open_loop(client, &make, rate_per_sec, OPEN_LOOP_IN_FLIGHT, window).await
        }
    };
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

/// Waits until `node` answers a linearizable read itself (started, state loaded,
/// caught up with the leader's commit index).
async fn wait_until_serving(
    client: &reqwest::Client,
    system: &impl System,
    node: usize,
) -> Result<(), BenchError> {
    let url = system.urls().get(node).cloned().unwrap_or_default();
    let request = (system.requests(Op::Read, &url))(0, 0);
    poll_until(SERVE_WAIT, "a restarted node to serve", || async {
        matches!(load::send(client, &request).await, Ok(true)).then_some(())
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
