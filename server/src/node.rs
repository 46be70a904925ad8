//! Assembling a node: open storage, bind both listeners, start openraft, serve, and
//! bootstrap or join the cluster. [`start`] returns a running [`Node`] (tests bind port 0
//! and read the real addresses back); [`Node::run_until`] serves until a shutdown signal.

use crate::config::{ConfigError, NodeConfig};
use crate::http::farm::{Farm, FarmParts};
use crate::http::{self, auth::AuthConfig, metrics::HttpMetrics, ApiShared, ApiState};
use crate::identity::{self, IdentityError, LocalIdentity};
use crate::listener::{self, Limits};
use crate::members;
use crate::raft::batcher::ProposalBatcher;
use crate::raft::network::{Network, NodeInfo, PeerHealth, PeerTimeouts};
use crate::raft::service::PeerState;
use crate::raft::typ::{NodeId, Raft};
use crate::raft::{self, NodeAddr};
use crate::store::{db::OpenFile, LogStore, StateMachineStore};
use crate::write_timing::WriteTimings;
use openraft::SnapshotPolicy;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot open {file}: {source}")]
    Storage {
        file: &'static str,
        source: crate::store::db::DbError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid Raft configuration: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("cannot build the peer HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Tls(#[from] crate::pki::PkiError),
    #[error("openraft failed to start: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
}

/// A client request must be answered within this (a write waits for its commit at most
/// `--write-timeout-ms`, 5 s by default; the rest is a body that trickles in).
const API_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A peer request must be answered within this: a whole snapshot travels in one request
/// (the sender gives it 120 s).
const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(150);

/// What is still running after a stop lets go of the node's files within this: an
/// HTTP connection gets `listener`'s 5 s grace, change streams end at the stop.
const FILES_CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// A running node.
pub struct Node {
    pub id: NodeId,
    /// The bound client address (the real port when configured with port 0).
    pub http_addr: SocketAddr,
    /// The bound Raft address.
    pub raft_addr: SocketAddr,
    pub farm: Farm,
    raft: Raft,
    stop: watch::Sender<bool>,
    tasks: JoinSet<Result<(), std::io::Error>>,
    /// `raft-log.redb`, `wal/` and `state.redb`: shutdown returns once all are closed.
    files: Vec<OpenFile>,
}

pub async fn start(config: NodeConfig) -> Result<Node, StartError> {
    config.validate()?;
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let disks = config.disks.as_deref();
    let log =
        LogStore::open_on(&data_dir.join("raft-log.redb"), disks, config.id).map_err(|source| {
            StartError::Storage {
                file: "raft-log.redb",
                source,
            }
        })?;
    let derived_cluster =
        (!config.peers.is_empty()).then(|| identity::cluster_id_from_peers(&config.peers));
    let stored = identity::load_or_create(
        &log,
        config.id,
        config.cluster_id.as_deref(),
        derived_cluster,
    )?;
    tracing::info!(
        cluster = stored.cluster_id.as_deref().unwrap_or("(none yet)"),
        incarnation = %stored.incarnation,
        "node identity"
    );
    let identity = LocalIdentity::new(stored, log.clone());
    let state =
        StateMachineStore::open_on(&data_dir.join("state.redb"), disks).map_err(|source| {
            StartError::Storage {
                file: "state.redb",
                source,
            }
        })?;
    let http_listener = bind(config.http_addr).await?;
    let raft_listener = bind(config.raft_addr).await?;
    let http_addr = local_addr(&http_listener, config.http_addr)?;
    let raft_addr = local_addr(&raft_listener, config.raft_addr)?;
    let http_url = config.http_url(http_addr);
    let warnings = config.warnings();
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let https = match (&config.https_cert, &config.https_key) {
        (Some(cert), Some(key)) => Some(crate::pki::https_acceptor(cert, key)?),
        _ => None,
    };

    let raft_config = Arc::new(
        openraft::Config {
            cluster_name: "raft3d".to_owned(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            install_snapshot_timeout: 60_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_threshold),
            max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot(),
            ..Default::default()
        }
        .validate()?,
    );
    let health = PeerHealth::default();
    let timeouts = PeerTimeouts {
        rpc: Duration::from_millis(config.election_timeout_min_ms),
        snapshot: Duration::from_secs(120),
        // At every heartbeat: a restarted follower must hear from the leader before its
        // own election timer (at least the minimum election timeout) runs out, or it
        // starts an election and deposes a healthy leader. Retries of a dead peer log
        // nothing (network::PeerHealth reports a long outage once).
        unreachable_retry: Duration::from_millis(config.heartbeat_ms),
        pool_idle: Duration::from_secs(config.header_timeout_secs) / 2,
    };
    let write_timings = WriteTimings::new(log.append_timing(), state.apply_timing());
    let network = Network::new(
        timeouts,
        health.clone(),
        config.peer_source_ip,
        identity.clone(),
        config.peer_tls.clone(),
        write_timings.clone(),
    )?;
    let mut open_files = Vec::from(log.open_files());
    open_files.push(state.open_file());
    let raft = Raft::new(config.id, raft_config, network.clone(), log, state.clone()).await?;

    let files = crate::files::FileStore::open(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.join("files").display().to_string(),
        source,
    })?;
    let max_upload_bytes = config.max_upload_mib.saturating_mul(1 << 20);
    let (stop, stopped) = watch::channel(false);
    let live = crate::driver::live::LiveBoard::default();
    let reads = crate::raft::read_index::ReadIndex::spawn(raft.clone());
    let snapshots = state.snapshot_files();
    let farm = Farm::new(FarmParts {
        id: config.id,
        raft: raft.clone(),
        proposals: ProposalBatcher::spawn(raft.clone(), write_timings.clone()),
        reads: reads.clone(),
        state,
        network: network.clone(),
        health,
        write_timeout: config.write_timeout(),
        election_timeout_max: config.election_timeout_max(),
        warnings,
        identity: identity.clone(),
    });
    let api = http::router(
        ApiState::new(ApiShared {
            farm: farm.clone(),
            metrics: HttpMetrics::default(),
            write_timings: write_timings.clone(),
            certificate_expiries: config
                .peer_tls
                .as_ref()
                .map(crate::pki::PeerTls::expiries)
                .unwrap_or_default(),
            max_body_bytes: config.max_body_bytes,
            streams: crate::http::events::StreamSettings {
                heartbeat: Duration::from_millis(config.events_heartbeat_ms.max(1)),
                slow_subscriber: Duration::from_millis(config.events_slow_subscriber_ms.max(1)),
                metrics: std::sync::Arc::default(),
                stopped: stopped.clone(),
            },
            allowed_hosts: std::sync::Arc::new(allowed_hosts(&config, http_addr, &http_url)),
            files: files.clone(),
            max_upload_bytes,
            live: live.clone(),
            secret: config.cluster_secret.clone(),
            auth: AuthConfig {
                enabled: config.client_auth,
                admin_sha256: config.admin_token_sha256.clone(),
                anonymous_reads: config.anonymous_reads,
            },
        }),
        config.site_dir.as_deref(),
    );
    let mut tasks = JoinSet::new();
    let limits = |request_timeout, transfers: &'static str| Limits {
        max_connections: config.max_connections,
        header_timeout: Duration::from_secs(config.header_timeout_secs),
        request_timeout,
        transfers,
    };
    tasks.spawn(listener::serve(
        http_listener,
        api,
        https,
        limits(API_REQUEST_TIMEOUT, "/api/v1/files"),
        stopped.clone(),
    ));
    let me = NodeInfo {
        id: config.id,
        http_url: http_url.clone(),
        incarnation: identity.get().incarnation,
        initialized: true,
    };
    let peer_tls = config.peer_tls.clone();
    let acceptor = peer_tls.as_ref().map(crate::pki::PeerTls::acceptor);
    let max_frame = raft::frame::max_append_frame(config.max_body_bytes, raft::batcher::MAX_BATCH);
    let peers = PeerState::new(
        raft.clone(),
        http_url,
        identity,
        peer_tls,
        max_frame,
        stopped.clone(),
        crate::raft::service::PeerShared {
            reads,
            files: files.clone(),
            max_file_bytes: max_upload_bytes,
            live: live.clone(),
            snapshots,
        },
    )
    .timed_by(write_timings);
    tasks.spawn(listener::serve(
        raft_listener,
        raft::service::router(peers),
        acceptor,
        limits(PEER_REQUEST_TIMEOUT, crate::raft::network::FILES_PATH),
        stopped.clone(),
    ));

    bootstrap(&raft, &network, &config).await;
    tasks.spawn(exit_when_raft_stops(raft.clone(), stopped.clone()));
    tasks.spawn(crate::files::maintain(
        farm.clone(),
        files.clone(),
        stopped.clone(),
    ));
    tasks.spawn(crate::driver::live::relay(
        farm.clone(),
        live.clone(),
        stopped.clone(),
    ));
    tasks.spawn(crate::driver::supervisor::supervise(
        farm.clone(),
        files,
        live,
        config.cluster_secret.clone(),
        stopped.clone(),
    ));
    tasks.spawn(members::maintain(raft.clone(), network, me, stopped));
    tracing::info!(id = config.id, %http_addr, %raft_addr, "node started");
    Ok(Node {
        id: config.id,
        http_addr,
        raft_addr,
        farm,
        raft,
        stop,
        tasks,
        files: open_files,
    })
}

impl Node {
    /// Serves until `shutdown` completes or a server task fails, then stops cleanly.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), std::io::Error> {
        let outcome = tokio::select! {
            _ = shutdown => Ok(()),
            Some(ended) = self.tasks.join_next() => match ended {
                Ok(result) => result,
                Err(join) => Err(std::io::Error::other(join)),
            },
        };
        self.shutdown().await;
        outcome
    }

    /// Stops serving and shuts openraft down (flushing nothing: every acknowledged write
    /// is already durable).
    pub async fn shutdown(self) {
        let Self {
            raft,
            stop,
            mut tasks,
            farm,
            files,
            ..
        } = self;
        let _ = stop.send(true);
        if let Err(e) = raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        drop((raft, farm));
        for file in files {
            let name = file.name;
            if !file.closed(FILES_CLOSE_WITHIN).await {
                tracing::warn!(file = name, "still open after shutdown");
            }
        }
    }
}

/// The host names this node answers to besides its members' URLs (`http::hosts`).
fn allowed_hosts(config: &NodeConfig, bound: SocketAddr, url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = config
        .allowed_hosts
        .iter()
        .map(|host| http::hosts::host_of(host))
        .collect();
    hosts.push(http::hosts::host_of(url));
    if !bound.ip().is_unspecified() {
        hosts.push(bound.ip().to_string());
    }
    hosts
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

/// Symmetric bootstrap: every node of a new cluster is started with the same `--peers`
/// and initialises the same membership; the log entries are identical, so whichever
/// nodes form the first majority agree, whatever the start order. A node that already
/// has state (a restart) skips this: its membership lives in its log. So does a node
/// with an empty data directory when a peer already holds the cluster's state (it started
/// a moment after its peers, or it was wiped): it waits for the leader to replicate to
/// it, and a wiped one is taken back as a learner first (`crate::members`), instead of
/// starting elections as a voter that remembers nothing.
async fn bootstrap(raft: &Raft, network: &Network, config: &NodeConfig) {
    let initialized = raft.is_initialized().await;
    if config.peers.is_empty() {
        match initialized {
            Ok(true) => tracing::info!("existing state found: rejoining"),
            _ => tracing::info!("no --peers: waiting to be added to a cluster (raft3d add-node)"),
        }
        return;
    }
    match initialized {
        Ok(true) => tracing::info!("existing state found: rejoining"),
        // Normal when the peers of a new cluster start a moment apart; after a wipe, the
        // leader takes this node back as a learner first (`crate::members`).
        Ok(false) if a_peer_runs_the_cluster(network, config).await => tracing::info!(
            "empty data directory and a peer already holds the cluster's state: not \
             bootstrapping; waiting for the leader to replicate to this node"
        ),
        Ok(false) => {
            // Client URLs and incarnations are left out on purpose: every node must write
            // the very same entry. The leader records them afterwards (`crate::members`).
            let members: BTreeMap<NodeId, NodeAddr> = config
                .peers
                .iter()
                .map(|(id, raft_addr)| {
                    let node = NodeAddr {
                        raft_addr: raft_addr.clone(),
                        ..NodeAddr::default()
                    };
                    (*id, node)
                })
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!("initialised a new cluster from --peers"),
                Err(e) => tracing::info!(error = %e, "initialise skipped"),
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read raft state"),
    }
}

/// Fails (which ends the node: see [`Node::run_until`]) when openraft's core stops on
/// its own, which a storage error does (a log append or fsync that failed: disk full, I/O
/// error). Left running, the node would serve frozen data and answer `200` to health
/// checks; exiting non-zero lets its supervisor restart it, and a restart re-reads
/// what is really on disk.
async fn exit_when_raft_stops(
    raft: Raft,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), std::io::Error> {
    let mut metrics = raft.metrics();
    loop {
        // Copied out: the borrow must not be held across an await (openraft#1238).
        let stopped_with = metrics
            .borrow()
            .running_state
            .as_ref()
            .err()
            .map(|fatal| fatal.to_string());
        if let Some(fatal) = stopped_with {
            if *stopped.borrow() {
                return Ok(()); // our own shutdown stopped it
            }
            tracing::error!(%fatal, "the Raft core stopped; exiting so that a supervisor restarts the node");
            return Err(std::io::Error::other(format!(
                "the Raft core stopped: {fatal}"
            )));
        }
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            changed = metrics.changed() => if changed.is_err() {
                break;
            },
        }
    }
    // The metrics sender only goes away with the core.
    match *stopped.borrow() {
        true => Ok(()),
        false => Err(std::io::Error::other("the Raft core is gone")),
    }
}

/// Whether any other peer of `--peers` answers that it holds Raft state.
async fn a_peer_runs_the_cluster(network: &Network, config: &NodeConfig) -> bool {
    for (id, raft_addr) in config.peers.iter().filter(|(id, _)| *id != config.id) {
        let node = NodeAddr {
            raft_addr: raft_addr.clone(),
            ..NodeAddr::default()
        };
        if network
            .node_info(*id, &node)
            .await
            .is_ok_and(|info| info.initialized)
        {
            return true;
        }
    }
    false
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
