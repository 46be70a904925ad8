//! `raft3d cluster`: a local cluster of N nodes as child processes of this very
//! executable, for demos, development and the benchmark ([`crate::bench`] reuses
//! [`LocalCluster`] and [`wait_for_leader`]).
//!
//! Owns: planning ports and data directories, spawning `raft3d serve` children,
//! labelling their output, noticing when one dies, and stopping them.
//!
//! Must not touch: any process it did not start (children are only ever signalled
//! through their own `Child` handle), nor node internals. It drives `raft3d serve` exactly
//! as an operator would and learns the cluster's state over the public HTTP API.

use app::api::{ClusterView, Role};
use clap::Args;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long one `GET /api/v1/cluster` may take while looking for the leader: a stopped
/// (SIGSTOP) or unreachable node must not stall the whole poll.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two polls of the cluster while no leader is agreed on.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often `run` checks whether a child has exited.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(200);
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
    /// Something already listens on a port a node needs.
    #[error("port {port} on {host} is not free: {source}")]
    PortBusy {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    /// The HTTP and Raft port ranges overlap, so two listeners would share a port.
    #[error("port {port} would be used twice: move --http-port or --raft-port apart")]
    PortClash { port: u16 },
    /// `base + nodes - 1` is past 65535.
    #[error("port range overflows for {nodes} nodes from {base}")]
    PortRange { nodes: u64, base: u16 },
    /// The path of the running executable, which the children run, is unknown.
    #[error("cannot find this executable: {0}")]
    Executable(std::io::Error),
    /// A child process could not be started.
    #[error("cannot start node {id}: {source}")]
    Spawn { id: u64, source: std::io::Error },
    /// A node exited while the cluster was meant to be running.
    #[error("node {id} exited unexpectedly ({status}); stopped the others")]
    NodeExited { id: u64, status: ExitStatus },
    /// The operating system could not report on a child.
    #[error("waiting for node {id}: {source}")]
    Wait { id: u64, source: std::io::Error },
    /// [`LocalCluster::kill`] was asked for a node that is not running (or never was).
    #[error("node {id} is not running in this local cluster")]
    NotRunning { id: u64 },
    /// [`LocalCluster::restart`] was asked for a node that still runs (or never was).
    #[error("node {id} is not a stopped node of this local cluster")]
    NotStopped { id: u64 },
    /// No leader that a majority of the polled nodes agreed on within the deadline.
    #[error("no leader agreed on by a majority of {polled} nodes within {waited:?}")]
    NoLeader { polled: usize, waited: Duration },
    /// The HTTP client used to watch the cluster could not be built.
    #[error("building the HTTP client: {0}")]
    HttpClient(reqwest::Error),
}

/// One node of a [`LocalCluster`], as its launcher sees it.
#[derive(Debug)]
pub struct LocalNode {
    /// Raft node id (1-based, as in `--peers`).
    pub id: u64,
    /// Client URL without a trailing slash, e.g. `http://127.0.0.1:8081`.
    pub http_url: String,
    /// Client address, `host:port`.
    http_addr: String,
    /// Raft address, `host:port`.
    pub raft_addr: String,
    /// Its `--data-dir`.
    pub data_dir: PathBuf,
    /// `None` once the node was killed, stopped, or seen to exit.
    child: Option<Child>,
}

impl LocalNode {
    /// The child's process id while it runs (handy to prove a restart happened).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

/// A set of `raft3d serve` children started together with the same `--peers`.
///
/// Dropping it kills the children that are still running (`kill_on_drop`), so an early
/// return or a panic in the caller does not leave nodes behind; call [`Self::stop`] to
/// also wait for them to be gone.
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<LocalNode>,
    /// This executable, which every child runs.
    exe: PathBuf,
    /// The `--peers` value every node gets.
    peers: String,
    /// Flags after `--`, for every node.
    extra: Vec<String>,
}

impl LocalCluster {
    /// Checks that every port is free, then starts every node with the same `--peers`.
    ///
    /// Must be called inside a Tokio runtime: each child's stdout and stderr are
    /// forwarded, line by line and prefixed with `[node i]`, by spawned tasks.
    pub fn start(args: &LocalClusterArgs) -> Result<Self, LocalClusterError> {
        let exe = std::env::current_exe().map_err(LocalClusterError::Executable)?;
        let plan = plan_ports(args)?;
        let peers = plan
            .iter()
            .map(|&(id, _, raft)| format!("{id}={}:{raft}", args.host))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = plan
            .into_iter()
            .map(|(id, http, raft)| LocalNode {
                id,
                http_url: format!("http://{}:{http}", args.host),
                http_addr: format!("{}:{http}", args.host),
                raft_addr: format!("{}:{raft}", args.host),
                data_dir: args.data_dir.join(format!("node{id}")),
                child: None,
            })
            .collect();
        let mut cluster = Self {
            nodes,
            exe,
            peers,
            extra: args.extra.clone(),
        };
        // On error, `cluster` is dropped and kill_on_drop stops the nodes already started.
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index)?;
        }
        Ok(cluster)
    }

    /// Starts node `id` again on its data directory, with its original command line.
    pub fn restart(&mut self, id: u64) -> Result<(), LocalClusterError> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.id == id && n.child.is_none())
            .ok_or(LocalClusterError::NotStopped { id })?;
        self.spawn(index)
    }

    /// Spawns the `raft3d serve` child of `self.nodes[index]` and forwards its output.
    fn spawn(&mut self, index: usize) -> Result<(), LocalClusterError> {
        let Some(node) = self.nodes.get_mut(index) else {
            return Ok(());
        };
        let id = node.id;
        let mut child = Command::new(&self.exe)
            .arg("serve")
            .args(["--id", &id.to_string()])
            .args(["--http-addr", &node.http_addr])
            .args(["--raft-addr", &node.raft_addr])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--peers", &self.peers])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LocalClusterError::Spawn { id, source })?;
        let label = format!("[node {id}]");
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, label.clone(), Sink::Stdout));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, label, Sink::Stderr));
        }
        node.child = Some(child);
        Ok(())
    }

    /// Every node, in id order (killed ones included).
    pub fn nodes(&self) -> &[LocalNode] {
        &self.nodes
    }

    /// Every node's client URL, in id order (killed ones included).
    pub fn http_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.http_url.clone()).collect()
    }

    /// Kills node `id` (SIGKILL) and reaps it; returns how it ended.
    pub async fn kill(&mut self, id: u64) -> Result<ExitStatus, LocalClusterError> {
        let mut child = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .and_then(|n| n.child.take())
            .ok_or(LocalClusterError::NotRunning { id })?;
        // Fails only if the child has already exited; wait() reports its status either way.
        let _ = child.start_kill();
        child
            .wait()
            .await
            .map_err(|source| LocalClusterError::Wait { id, source })
    }

    /// Kills every node still running and waits until they are gone.
    ///
    /// SIGKILL, not SIGTERM: tokio offers no other signal without `libc`, and the nodes
    /// are crash-safe by design (every acknowledged write is already committed to redb),
    /// so a kill loses nothing that a client was told is stored.
    pub async fn stop(&mut self) {
        self.stop_within(Duration::ZERO).await;
    }

    /// Like [`Self::stop`], but first gives the nodes up to `grace` to exit by
    /// themselves: after a Ctrl-C in a terminal, the whole process group got SIGINT, so
    /// the children are already shutting down cleanly.
    pub async fn stop_within(&mut self, grace: Duration) {
        let until = Instant::now() + grace;
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            let left = until.saturating_duration_since(Instant::now());
            // `timeout` polls `wait` once even with no time left, so an exited child is
            // reaped without being signalled.
            if tokio::time::timeout(left, child.wait()).await.is_ok() {
                continue;
            }
            let _ = child.start_kill();
            if let Err(e) = child.wait().await {
                tracing::warn!(node = node.id, error = %e, "could not reap a stopped node");
            }
        }
    }

    /// Completes when one running child exits; returns its id and status.
    async fn any_exit(&mut self) -> Result<(u64, ExitStatus), LocalClusterError> {
        loop {
            for node in &mut self.nodes {
                let exited = match node.child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => Some(status),
                    Some(Err(source)) => {
                        return Err(LocalClusterError::Wait {
                            id: node.id,
                            source,
                        })
                    }
                    Some(Ok(None)) | None => None,
                };
                if let Some(status) = exited {
                    node.child = None;
                    return Ok((node.id, status));
                }
            }
            // Polling keeps this simple (no borrow of every child at once); a 200 ms delay
            // in noticing a dead node is irrelevant to an operator.
            tokio::time::sleep(EXIT_CHECK_INTERVAL).await;
        }
    }
}

/// `(id, http port, raft port)` for every node, after checking the ports are distinct
/// and free.
fn plan_ports(args: &LocalClusterArgs) -> Result<Vec<(u64, u16, u16)>, LocalClusterError> {
    let port = |base: u16, i: u64| {
        u16::try_from(u64::from(base) + i - 1).map_err(|_| LocalClusterError::PortRange {
            nodes: args.nodes,
            base,
        })
    };
    let mut seen = HashSet::new();
    let mut plan = Vec::new();
    for id in 1..=args.nodes {
        let (http, raft) = (port(args.http_port, id)?, port(args.raft_port, id)?);
        for p in [http, raft] {
            if !seen.insert(p) {
                return Err(LocalClusterError::PortClash { port: p });
            }
        }
        plan.push((id, http, raft));
    }
    for &(_, http, raft) in &plan {
        for p in [http, raft] {
            // A bind test is racy (the port may be taken between now and the child's
            // bind), but it turns the common mistake, a cluster already running, into
            // one clear error naming the port instead of N children failing.
            std::net::TcpListener::bind((args.host.as_str(), p)).map_err(|source| {
                LocalClusterError::PortBusy {
                    host: args.host.clone(),
                    port: p,
                    source,
                }
            })?;
        }
    }
    Ok(plan)
}

/// Polls `GET {url}/api/v1/cluster` on every URL until a strict majority of `urls`
/// names the same leader, and that leader, if it answered, says it is `Leader`.
///
/// Returns the leader's id and client URL: the polled URL when the leader is among
/// `urls` (known to be reachable from here), otherwise the `leader_url` its followers
/// report. Counting the majority over all of `urls`, not only the ones that answered,
/// keeps a partitioned ex-leader that still believes in itself from being chosen.
pub async fn wait_for_leader(
    client: &reqwest::Client,
    urls: &[String],
    deadline: Duration,
) -> Result<(u64, String), LocalClusterError> {
    let until = Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let views = poll_views(client, urls, left.min(POLL_TIMEOUT)).await;
        if let Some(leader) = agreed_leader(&views, urls.len()) {
            return Ok(leader);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LocalClusterError::NoLeader {
                polled: urls.len(),
                waited: deadline,
            });
        }
        tokio::time::sleep(left.min(POLL_INTERVAL)).await;
    }
}

/// Every node's view, asked in parallel; nodes that fail or time out are left out.
async fn poll_views(
    client: &reqwest::Client,
    urls: &[String],
    timeout: Duration,
) -> Vec<(String, ClusterView)> {
    let mut polls = tokio::task::JoinSet::new();
    for url in urls {
        let url = url.trim_end_matches('/').to_owned();
        polls.spawn(fetch_view(client.clone(), url, timeout));
    }
    let mut views = Vec::with_capacity(urls.len());
    while let Some(joined) = polls.join_next().await {
        if let Ok(Some(view)) = joined {
            views.push(view);
        }
    }
    views
}

/// One node's `GET /api/v1/cluster`, paired with the URL it was asked at; `None` when it
/// does not answer in time or answers with an error.
async fn fetch_view(
    client: reqwest::Client,
    url: String,
    timeout: Duration,
) -> Option<(String, ClusterView)> {
    let response = client
        .get(format!("{url}/api/v1/cluster"))
        .timeout(timeout)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?;
    let view = response.json::<ClusterView>().await.ok()?;
    Some((url, view))
}

/// The leader a strict majority of `polled` nodes agree on (see [`wait_for_leader`]).
fn agreed_leader(views: &[(String, ClusterView)], polled: usize) -> Option<(u64, String)> {
    let mut candidates: Vec<u64> = views.iter().filter_map(|(_, v)| v.leader_id).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let leader = candidates.into_iter().find(|&id| {
        let votes = views
            .iter()
            .filter(|(_, v)| v.leader_id == Some(id))
            .count();
        votes * 2 > polled
    })?;
    match views.iter().find(|(_, v)| v.node_id == leader) {
        // The leader answered itself: trust only its own word that it still leads.
        Some((url, view)) => (view.role == Role::Leader).then(|| (leader, url.clone())),
        None => views
            .iter()
            .filter(|(_, v)| v.leader_id == Some(leader))
            .find_map(|(_, v)| v.leader_url.clone())
            .map(|url| (leader, url)),
    }
}

/// Runs `raft3d cluster`: starts the nodes, prints where they are, then waits for
/// Ctrl-C / SIGTERM (then stops all nodes, `Ok`) or for a node to die (then stops the
/// others and returns [`LocalClusterError::NodeExited`] naming it).
pub async fn run(args: LocalClusterArgs) -> Result<(), LocalClusterError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(LocalClusterError::HttpClient)?;
    let mut cluster = LocalCluster::start(&args)?;
    print_banner(&args, &cluster);
    let urls = cluster.http_urls();
    let outcome = tokio::select! {
        () = crate::node::shutdown_signal() => Ok(()),
        exited = cluster.any_exit() => match exited {
            Ok((id, status)) => Err(LocalClusterError::NodeExited { id, status }),
            Err(e) => Err(e),
        },
        () = report_leader(&client, &urls) => Ok(()),
    };
    match &outcome {
        Ok(()) => {
            println!("Stopping all nodes…");
            cluster.stop_within(STOP_GRACE).await;
        }
        Err(e) => {
            eprintln!("raft3d cluster: {e}");
            cluster.stop().await;
        }
    }
    println!(
        "All nodes stopped; data kept in {}.",
        args.data_dir.display()
    );
    outcome
}

fn print_banner(args: &LocalClusterArgs, cluster: &LocalCluster) {
    println!(
        "Raft3D local cluster: {} node(s), data under {}",
        args.nodes,
        args.data_dir.display()
    );
    for node in cluster.nodes() {
        println!(
            "  node {}: API {url}/api/v1   metrics {url}/metrics   raft {}",
            node.id,
            node.raft_addr,
            url = node.http_url,
        );
    }
    println!("Ctrl-C stops all nodes.");
}

/// Prints the leader once one is agreed on, then never completes (it is one branch of
/// `run`'s `select!` and must not end the cluster).
async fn report_leader(client: &reqwest::Client, urls: &[String]) {
    match wait_for_leader(client, urls, LEADER_REPORT_WAIT).await {
        Ok((id, url)) => println!("Leader: node {id} ({url}/)"),
        Err(e) => println!("{e}: is a majority of the nodes up?"),
    }
    std::future::pending::<()>().await;
}

/// Where a child's output stream goes.
#[derive(Debug, Clone, Copy)]
enum Sink {
    Stdout,
    Stderr,
}

/// Copies `stream` line by line to `sink`, each line prefixed with `label`.
///
/// Reads bytes, not `String` lines, and ignores write errors: if this task stopped on a
/// non-UTF-8 line or a closed terminal, the child's pipe would fill up and the node
/// would block on its next log line.
async fn forward_lines(stream: impl AsyncRead + Unpin, label: String, sink: Sink) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(&['\r', '\n'][..]);
                let _ = match sink {
                    Sink::Stdout => writeln!(std::io::stdout().lock(), "{label} {text}"),
                    Sink::Stderr => writeln!(std::io::stderr().lock(), "{label} {text}"),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(node_id: u64, role: Role, leader_id: Option<u64>) -> (String, ClusterView) {
        let url = format!("http://127.0.0.1:{}", 8080 + node_id);
        let view = ClusterView {
            node_id,
            role,
            leader_id,
            leader_url: leader_id.map(|id| format!("http://127.0.0.1:{}", 8080 + id)),
            term: 1,
            last_log_index: None,
            commit_index: None,
            applied_index: None,
            snapshot_index: None,
            purged_index: None,
            state_digest: String::new(),
            members: Vec::new(),
        };
        (url, view)
    }

    #[test]
    fn a_leader_named_by_a_majority_that_confirms_itself_is_chosen() {
        let views = [
            view(1, Role::Follower, Some(2)),
            view(2, Role::Leader, Some(2)),
            view(3, Role::Follower, Some(2)),
        ];
        assert_eq!(
            agreed_leader(&views, 3),
            Some((2, "http://127.0.0.1:8082".to_owned()))
        );
    }

    #[test]
    fn a_stale_leader_is_not_chosen_over_the_one_a_majority_follows() {
        let views = [
            view(1, Role::Leader, Some(1)),
            view(2, Role::Leader, Some(2)),
            view(3, Role::Follower, Some(2)),
        ];
        assert_eq!(
            agreed_leader(&views, 3),
            Some((2, "http://127.0.0.1:8082".to_owned()))
        );
    }

    #[test]
    fn a_lone_node_claiming_leadership_is_not_enough() {
        let views = [view(1, Role::Leader, Some(1))];
        assert_eq!(agreed_leader(&views, 3), None);
    }

    #[test]
    fn a_leader_that_no_longer_says_so_is_not_chosen() {
        let views = [
            view(1, Role::Follower, Some(2)),
            view(2, Role::Follower, Some(2)),
            view(3, Role::Follower, Some(2)),
        ];
        assert_eq!(agreed_leader(&views, 3), None);
    }

    #[test]
    fn followers_alone_point_at_a_leader_that_was_not_polled() {
        let views = [view(1, Role::Follower, Some(3))];
        assert_eq!(
            agreed_leader(&views, 1),
            Some((3, "http://127.0.0.1:8083".to_owned()))
        );
    }

    #[test]
    fn overlapping_port_ranges_are_refused_before_anything_starts() {
        let args = LocalClusterArgs {
            nodes: 3,
            data_dir: PathBuf::from("unused"),
            host: "127.0.0.1".to_owned(),
            http_port: 40001,
            raft_port: 40002,
            extra: Vec::new(),
        };
        assert!(matches!(
            plan_ports(&args),
            Err(LocalClusterError::PortClash { port: 40002 })
        ));
    }
}
