//! Assembling a node: open storage, bind both listeners, start openraft, serve, and
//! bootstrap or join the cluster. [`start`] returns a running [`Node`] (tests bind port 0
//! and read the real addresses back); [`Node::run_until`] serves until a shutdown signal.

use crate::config::{ConfigError, NodeConfig};
use crate::http::{self, farm::Farm, metrics::HttpMetrics, ApiState};
use crate::raft::network::{Network, PeerHealth, PeerTimeouts, RegisterRequest};
use crate::raft::typ::{NodeId, Raft};
use crate::raft::{self, NodeAddr};
use crate::store::{LogStore, StateMachineStore};
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
    let log =
        LogStore::open(&data_dir.join("raft-log.redb")).map_err(|source| StartError::Storage {
            file: "raft-log.redb",
            source,
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
    };
    let network = Network::new(timeouts, health.clone())?;
    let raft = Raft::new(config.id, raft_config, network.clone(), log, state.clone()).await?;

    let farm = Farm::new(
        config.id,
        raft.clone(),
        state,
        network.clone(),
        health,
        config.write_timeout(),
        config.election_timeout_max(),
    );
    let api = http::router(ApiState {
        farm: farm.clone(),
        metrics: HttpMetrics::default(),
        max_body_bytes: config.max_body_bytes,
    });
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(serve(http_listener, api, stopped.clone()));
    tasks.spawn(serve(
        raft_listener,
        raft::service::router(raft.clone()),
        stopped.clone(),
    ));

    bootstrap(&raft, &config).await;
    tasks.spawn(publish_client_url(
        raft.clone(),
        network,
        config.id,
        http_url,
        stopped,
    ));
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

/// Keeps this node's client URL in the replicated membership, so every member can send
/// clients to it (redirects, cluster view). Retries until the leader has stored it, then
/// keeps checking in case membership is rewritten.
async fn publish_client_url(
    raft: Raft,
    network: Network,
    id: NodeId,
    http_url: String,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), std::io::Error> {
    loop {
        let (stored, leader) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let stored = membership.get_node(&id).map(|n| n.http_url.clone());
            let leader = metrics
                .current_leader
                .and_then(|l| membership.get_node(&l).map(|n| (l, n.raft_addr.clone())));
            (stored, leader)
        };
        let wait = match (stored, leader) {
            (Some(url), _) if url.as_deref() == Some(http_url.as_str()) => Duration::from_secs(5),
            (Some(_), Some((leader_id, _))) if leader_id == id => {
                if let Err(e) = raft::service::store_client_url(&raft, id, http_url.clone()).await {
                    tracing::debug!(error = %e, "storing own client URL failed; will retry");
                }
                Duration::from_millis(500)
            }
            (Some(_), Some((_, leader_addr))) => {
                let request = RegisterRequest {
                    id,
                    http_url: http_url.clone(),
                };
                if let Err(e) = network.register_client_url(&leader_addr, &request).await {
                    tracing::debug!(error = %e, "publishing client URL failed; will retry");
                }
                Duration::from_millis(500)
            }
            _ => Duration::from_millis(200),
        };
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
