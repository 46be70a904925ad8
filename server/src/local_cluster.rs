//! `raft3d cluster`: a local cluster of N nodes as child processes of this very
//! executable, for demos and development.
//!
//! Owns: the command's flags, its banner and its lifetime (until Ctrl-C, or until a node
//! dies). Starting, watching and stopping the children is `raft3d-launcher`'s
//! [`ProcessCluster`], the same launcher and leader rule the tests and the benchmark use.
//!
//! Must not touch: any process it did not start, nor node internals. It drives
//! `raft3d serve` exactly as an operator would and learns the cluster's state over the
//! public HTTP API.

use clap::Args;
use raft3d_launcher::{ClusterError, Output, PortPlan, ProcessCluster, Spec};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// After Ctrl-C, how long the children get to exit by themselves before being killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long `run` waits for a leader before saying that none was elected.
const LEADER_REPORT_WAIT: Duration = Duration::from_secs(60);

/// `raft3d cluster` flags.
#[derive(Debug, Clone, Args)]
pub struct LocalClusterArgs {
    /// Number of nodes (1-9).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Parent directory of the nodes' data directories (`<dir>/node<i>`); kept on exit,
    /// so the same command restarts the same cluster.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Address every node listens on and that the nodes dial each other at.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Client (API, metrics) port of node 1; node i uses http-port + i - 1.
    #[arg(long, default_value_t = 8081)]
    pub http_port: u16,
    /// Raft port of node 1; node i uses raft-port + i - 1.
    #[arg(long, default_value_t = 9081)]
    pub raft_port: u16,
    /// Extra flags for every `raft3d serve`, after `--` (e.g. `-- --snapshot-threshold 1000`).
    #[arg(last = true)]
    pub extra: Vec<String>,
}

/// Why a local cluster could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    /// The path of the running executable, which the children run, is unknown.
    #[error("cannot find this executable: {0}")]
    Executable(std::io::Error),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A node exited while the cluster was meant to be running.
    #[error("node {id} exited unexpectedly ({status}); stopped the others")]
    NodeExited { id: u64, status: ExitStatus },
}

/// Runs `raft3d cluster`: starts the nodes, prints where they are, then waits for
/// Ctrl-C / SIGTERM (then stops all nodes, `Ok`) or for a node to die (then stops the
/// others and returns [`LocalClusterError::NodeExited`] naming it).
pub async fn run(args: LocalClusterArgs) -> Result<(), LocalClusterError> {
    let binary = std::env::current_exe().map_err(LocalClusterError::Executable)?;
    let spec = Spec {
        host: args.host.clone(),
        ports: PortPlan::From {
            http: args.http_port,
            raft: args.raft_port,
        },
        data_root: Some(args.data_dir.clone()),
        args: args.extra.clone(),
        output: Output::Forward,
        ..Spec::new(binary, args.nodes)
    };
    let mut cluster = ProcessCluster::start(spec)?;
    print_banner(&args, &cluster);
    let urls = cluster.urls();
    let outcome = tokio::select! {
        () = crate::node::shutdown_signal() => Ok(()),
        exited = cluster.any_exit() => match exited {
            Ok((id, status)) => Err(LocalClusterError::NodeExited { id, status }),
            Err(e) => Err(e.into()),
        },
        () = report_leader(urls) => Ok(()),
    };
    match &outcome {
        Ok(()) => println!("Stopping all nodes…"),
        Err(e) => eprintln!("raft3d cluster: {e}"),
    }
    cluster.stop(STOP_GRACE).await;
    println!(
        "All nodes stopped; data kept in {}.",
        args.data_dir.display()
    );
    outcome
}

fn print_banner(args: &LocalClusterArgs, cluster: &ProcessCluster) {
    println!(
        "Raft3D local cluster: {} node(s), data under {}",
        args.nodes,
        args.data_dir.display()
    );
    for node in cluster.nodes() {
        println!(
            "  node {}: API {url}/api/v1   metrics {url}/metrics   raft {}",
            node.id,
            node.raft_addr(),
            url = node.url(),
        );
    }
    match cluster.admin_token() {
        Some(token) => {
            let file = args
                .data_dir
                .join("pki")
                .join(crate::init::ADMIN_TOKEN_FILE);
            println!("Admin token (in {}):\n  {token}", file.display());
            println!(
                "  e.g. curl -H \"Authorization: Bearer $(cat {})\" {}/api/v1/printers",
                file.display(),
                cluster
                    .urls()
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default()
            );
        }
        None => println!("No admin token: the nodes run --insecure."),
    }
    println!("Ctrl-C stops all nodes.");
}

/// Prints the leader once one is elected, then never completes (it is one branch of
/// `run`'s `select!` and must not end the cluster).
async fn report_leader(urls: Vec<String>) {
    match raft3d_launcher::leader::wait_for(&urls, LEADER_REPORT_WAIT).await {
        Ok(leader) => println!("Leader: node {} ({}/)", leader.id, leader.url),
        Err(e) => println!("{e}: is a majority of the nodes up?"),
    }
    std::future::pending::<()>().await;
}
