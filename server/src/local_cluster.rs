//! `raft3d cluster`: a local cluster of N nodes as separate child processes of this
//! executable, for demos, development and the benchmark.
//!
//! Owns: spawning, labelling and stopping its own child processes. Must not touch any
//! process it did not start, nor node internals: it drives `raft3d serve` exactly as an
//! operator would, and learns the cluster's state over HTTP.

use clap::Args;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// `raft3d cluster` flags.
#[derive(Debug, Clone, Args)]
pub struct LocalClusterArgs {
    /// Number of nodes (1-9).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Parent directory of the nodes' data directories (`<dir>/node<i>`).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Address every node listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Client port of node 1; node i uses http-port + i - 1.
    #[arg(long, default_value_t = 8081)]
    pub http_port: u16,
    /// Raft port of node 1; node i uses raft-port + i - 1.
    #[arg(long, default_value_t = 9081)]
    pub raft_port: u16,
    /// Extra flags for every `raft3d serve`, after `--` (e.g. `-- --snapshot-threshold 1000`).
    #[arg(last = true)]
    pub extra: Vec<String>,
}

/// Why a local cluster could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    #[error("port {port} on {host} is not free: {source}")]
    PortBusy {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("port range overflows for {nodes} nodes from {base}")]
    PortRange { nodes: u64, base: u16 },
    #[error("cannot find this executable: {0}")]
    Executable(std::io::Error),
    #[error("cannot start node {id}: {source}")]
    Spawn { id: u64, source: std::io::Error },
    #[error("node {id} exited unexpectedly ({status}); stopped the others")]
    NodeExited { id: u64, status: ExitStatus },
    #[error("waiting for node {id}: {source}")]
    Wait { id: u64, source: std::io::Error },
}

/// One node of the cluster as its launcher sees it.
pub struct LocalNode {
    pub id: u64,
    pub http_url: String,
    pub raft_addr: String,
    child: Option<Child>,
}

/// A set of `raft3d serve` children. Dropping it kills them (`kill_on_drop`).
pub struct LocalCluster {
    pub nodes: Vec<LocalNode>,
}

impl LocalCluster {
    /// Checks the ports are free, then starts every node with the same `--peers`.
    pub fn start(args: &LocalClusterArgs) -> Result<Self, LocalClusterError> {
        let exe = std::env::current_exe().map_err(LocalClusterError::Executable)?;
        let port = |base: u16, i: u64| {
            u16::try_from(u64::from(base) + i - 1).map_err(|_| LocalClusterError::PortRange {
                nodes: args.nodes,
                base,
            })
        };
        let mut plan = Vec::new();
        for i in 1..=args.nodes {
            let (http, raft) = (port(args.http_port, i)?, port(args.raft_port, i)?);
            for p in [http, raft] {
                std::net::TcpListener::bind((args.host.as_str(), p)).map_err(|source| {
                    LocalClusterError::PortBusy {
                        host: args.host.clone(),
                        port: p,
                        source,
                    }
                })?;
            }
            plan.push((i, http, raft));
        }
        let peers = plan
            .iter()
            .map(|(i, _, raft)| format!("{i}={}:{raft}", args.host))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (id, http, raft) in plan {
            let mut command = Command::new(&exe);
            command
                .arg("serve")
                .args(["--id", &id.to_string()])
                .args(["--http-addr", &format!("{}:{http}", args.host)])
                .args(["--raft-addr", &format!("{}:{raft}", args.host)])
                .arg("--data-dir")
                .arg(args.data_dir.join(format!("node{id}")))
                .args(["--peers", &peers])
                .args(&args.extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = command
                .spawn()
                .map_err(|source| LocalClusterError::Spawn { id, source })?;
            let label = format!("[node {id}]");
            if let Some(out) = child.stdout.take() {
                tokio::spawn(prefix_lines(out, label.clone()));
            }
            if let Some(err) = child.stderr.take() {
                tokio::spawn(prefix_lines(err, label));
            }
            nodes.push(LocalNode {
                id,
                http_url: format!("http://{}:{http}", args.host),
                raft_addr: format!("{}:{raft}", args.host),
                child: Some(child),
            });
        }
        Ok(Self { nodes })
    }

    pub fn http_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.http_url.clone()).collect()
    }

    /// Waits until one child exits; returns its id and status.
    async fn any_exit(&mut self) -> Result<(u64, ExitStatus), LocalClusterError> {
        loop {
            for node in &mut self.nodes {
                if let Some(child) = node.child.as_mut() {
                    match child.try_wait() {
                        Ok(Some(status)) => return Ok((node.id, status)),
                        Ok(None) => {}
                        Err(source) => {
                            return Err(LocalClusterError::Wait {
                                id: node.id,
                                source,
                            })
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills every child (SIGKILL: nodes are crash-safe by design, every acknowledged
    /// write is already on disk) and reaps them.
    pub async fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// Polls the nodes until one reports itself leader and every answering node agrees.
pub async fn wait_for_leader(
    client: &reqwest::Client,
    urls: &[String],
    deadline: Duration,
) -> Option<(u64, String)> {
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        let mut views = Vec::new();
        for url in urls {
            let response = client.get(format!("{url}/api/v1/cluster")).send().await;
            if let Ok(view) = match response {
                Ok(r) => r.json::<app::api::ClusterView>().await,
                Err(e) => Err(e),
            } {
                views.push(view);
            }
        }
        let leader = views
            .iter()
            .find(|v| v.role == "Leader" && v.leader_url.is_some());
        if let Some(leader) = leader {
            let agree = views
                .iter()
                .filter(|v| v.leader_id == Some(leader.node_id))
                .count();
            if agree * 2 > urls.len() {
                return leader.leader_url.clone().map(|url| (leader.node_id, url));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Runs `raft3d cluster` until Ctrl-C / SIGTERM or until a node dies.
pub async fn run(args: LocalClusterArgs) -> Result<(), LocalClusterError> {
    let mut cluster = LocalCluster::start(&args)?;
    println!(
        "Raft3D: {} nodes, data under {}",
        args.nodes,
        args.data_dir.display()
    );
    for node in &cluster.nodes {
        println!(
            "  node {}: {}/  (metrics {}/metrics, raft {})",
            node.id, node.http_url, node.http_url, node.raft_addr
        );
    }
    println!("Ctrl-C stops all nodes.");
    let client = reqwest::Client::new();
    let urls = cluster.http_urls();
    let outcome = tokio::select! {
        _ = crate::node::shutdown_signal() => Ok(()),
        exited = cluster.any_exit() => match exited {
            Ok((id, status)) => Err(LocalClusterError::NodeExited { id, status }),
            Err(e) => Err(e),
        },
        _ = async {
            match wait_for_leader(&client, &urls, Duration::from_secs(60)).await {
                Some((id, url)) => println!("Leader: node {id} ({url})"),
                None => println!("No leader after 60 s: is a majority of nodes up?"),
            }
            std::future::pending::<()>().await
        } => Ok(()),
    };
    println!("Stopping all nodes…");
    cluster.stop().await;
    outcome
}

async fn prefix_lines(stream: impl AsyncRead + Unpin, label: String) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{label} {line}");
    }
}
