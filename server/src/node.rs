//! Assembling a node: open storage, bind both listeners, start openraft, serve, and
//! bootstrap or join the cluster. [`start`] returns a running [`Node`] (tests bind port 0
//! and read the real addresses back); [`Node::run_until`] serves until a shutdown signal.

use crate::config::{ConfigError, NodeConfig};
use crate::http::farm::{Farm, FarmParts};
use crate::http::{self, metrics::HttpMetrics, ApiState};
use crate::raft::batcher::ProposalBatcher;
use crate::raft::network::{Network, NodeInfo, PeerHealth, PeerTimeouts};
use crate::raft::typ::{NodeId, Raft};
use crate::raft::{self, NodeAddr};
use crate::store::{LogStore, StateMachineStore};
use openraft::{ChangeMembers, SnapshotPolicy};
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
    #[error("openraft failed to start: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
}

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
}

pub async fn start(config: NodeConfig) -> Result<Node, StartError> {
    config.validate()?;
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let log = LogStore::open(&data_dir.join("raft-log.redb"), config.id).map_err(|source| {
        StartError::Storage {
            file: "raft-log.redb",
            source,
        }
    })?;
    let state = StateMachineStore::open(&data_dir.join("state.redb")).map_err(|source| {
        StartError::Storage {
            file: "state.redb",
            source,
        }
    })?;
    let http_listener = bind(config.http_addr).await?;
    let raft_listener = bind(config.raft_addr).await?;
    let http_addr = local_addr(&http_listener, config.http_addr)?;
    let raft_addr = local_addr(&raft_listener, config.raft_addr)?;
    let http_url = config
        .advertise_http
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));

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
        // Often enough that a restarted node hears from the leader well before its own
        // election timer (lease + timeout >= 750 ms) runs out; each retry of a dead peer
        // logs a few openraft warnings, so not at every heartbeat.
        unreachable_retry: Duration::from_millis(config.election_timeout_min_ms),
    };
    let network = Network::new(timeouts, health.clone(), config.peer_source_ip)?;
    let log_appends = log.append_timing();
    let raft = Raft::new(config.id, raft_config, network.clone(), log, state.clone()).await?;

    let farm = Farm::new(FarmParts {
        id: config.id,
        raft: raft.clone(),
        proposals: ProposalBatcher::spawn(raft.clone()),
        state,
        network: network.clone(),
        health,
        write_timeout: config.write_timeout(),
        election_timeout_max: config.election_timeout_max(),
    });
    let api = http::router(
        ApiState {
            farm: farm.clone(),
            metrics: HttpMetrics::default(),
            log_appends,
            max_body_bytes: config.max_body_bytes,
        },
        &config.site_dir,
    );
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(serve(http_listener, api, stopped.clone()));
    let info = NodeInfo {
        id: config.id,
        http_url,
    };
    let peer_service = raft::service::router(raft.clone(), info.clone(), stopped.clone());
    tasks.spawn(serve(raft_listener, peer_service, stopped.clone()));

    bootstrap(&raft, &config).await;
    tasks.spawn(maintain_client_urls(raft.clone(), network, info, stopped));
    tracing::info!(id = config.id, %http_addr, %raft_addr, "node started");
    Ok(Node {
        id: config.id,
        http_addr,
        raft_addr,
        farm,
        raft,
        stop,
        tasks,
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
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
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

async fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), std::io::Error> {
    use axum::serve::ListenerExt;
    // Without it, a reply written in more than one piece can wait for the client's
    // delayed ACK (Nagle); every reply here is small and wanted at once.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await
}

/// Symmetric bootstrap: every node of a new cluster is started with the same `--peers`
/// and initialises the same membership; the log entries are identical, so whichever
/// nodes form the first majority agree, whatever the start order. A node that already
/// has state (a restart) skips this: its membership lives in its log.
async fn bootstrap(raft: &Raft, config: &NodeConfig) {
    if config.peers.is_empty() {
        tracing::info!("no --peers: waiting to be added to a cluster (raft3d add-node)");
        return;
    }
    match raft.is_initialized().await {
        Ok(true) => tracing::info!("existing state found: rejoining"),
        Ok(false) => {
            // Client URLs are left out on purpose: every node must write the very same
            // entry. Each node then publishes its own URL (see `publish_client_url`).
            let members: BTreeMap<NodeId, NodeAddr> = config
                .peers
                .iter()
                .map(|(id, raft_addr)| {
                    let node = NodeAddr {
                        raft_addr: raft_addr.clone(),
                        http_url: None,
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

/// While this node leads, keeps every member's client URL in the replicated membership,
/// so any node can send clients to any other (redirects, cluster view) and restarts need
/// no flags. `--peers` only knows Raft addresses, and every node must initialise the
/// identical membership entry, so URLs start empty: the leader asks each member
/// (`/raft/info`) and writes all changes in ONE membership change (concurrent changes
/// would only refuse each other).
async fn maintain_client_urls(
    raft: Raft,
    network: Network,
    me: NodeInfo,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), std::io::Error> {
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            _ = interval.tick() => {}
        }
        let (leader, members) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let members: Vec<(NodeId, NodeAddr)> = metrics
                .membership_config
                .membership()
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect();
            (metrics.current_leader, members)
        };
        if leader != Some(me.id) {
            continue;
        }
        let mut updates = BTreeMap::new();
        for (id, node) in members {
            let url = match id == me.id {
                true => Some(me.http_url.clone()),
                // A member that does not answer keeps its last known URL.
                false => network
                    .node_info(&node.raft_addr)
                    .await
                    .ok()
                    .filter(|i| i.id == id)
                    .map(|i| i.http_url),
            };
            if url.is_some() && url != node.http_url {
                updates.insert(
                    id,
                    NodeAddr {
                        http_url: url,
                        ..node
                    },
                );
            }
        }
        if !updates.is_empty() {
            if let Err(e) = raft
                .change_membership(ChangeMembers::SetNodes(updates), false)
                .await
            {
                tracing::debug!(error = %e, "recording client URLs failed; will retry");
            }
        }
    }
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
