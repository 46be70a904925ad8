//! [`ProcessCluster`]: `raft3d serve` children started together with the same `--peers`,
//! and everything done to them: kill (SIGKILL), pause (SIGSTOP), wipe, restart, add a
//! node, stop.
//!
//! Peers authenticate with TLS as in production: the cluster's CA and each node's
//! certificate come from `raft3d init` under `<root>/pki` (unless the nodes get
//! `--insecure`).
//!
//! Every child gets `--stop-with-parent <our pid>`, so a test process that dies (even by
//! SIGKILL) leaves no node behind; dropping the cluster kills the children at once.

use crate::leader::{self, Leader};
use crate::output::{forward_lines, strip_colours, Sink};
use crate::ports::{self, PortClaim, PortError};
use crate::NotInTime;
use app::api::ClusterView;
use raft3d_client::{Client, ClientError, RetryPolicy};
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Which ports the nodes listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortPlan {
    /// Claimed free ports (tests, the benchmark).
    Free,
    /// Node i uses `http + i - 1` and `raft + i - 1` (`raft3d cluster`: stable URLs).
    From { http: u16, raft: u16 },
}

/// Where the nodes' output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `<data root>/node<i>.log`, one file per node, kept across restarts.
    Files,
    /// This process's stdout/stderr, every line labelled `[node i]`.
    Forward,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The `raft3d` executable.
    pub binary: PathBuf,
    pub nodes: u64,
    /// Address every node listens on and that the nodes dial each other at.
    pub host: String,
    pub ports: PortPlan,
    /// Parent of the nodes' data directories (`<root>/node<i>`); `None`: a temporary
    /// directory, deleted with the cluster.
    pub data_root: Option<PathBuf>,
    /// Extra `raft3d serve` flags for every node.
    pub args: Vec<String>,
    pub output: Output,
}

impl Spec {
    /// `nodes` nodes of `binary` on free ports in a temporary directory, logging to files.
    pub fn new(binary: impl Into<PathBuf>, nodes: u64) -> Self {
        Self {
            binary: binary.into(),
            nodes,
            host: "127.0.0.1".to_owned(),
            ports: PortPlan::Free,
            data_root: None,
            args: Vec::new(),
            output: Output::Files,
        }
    }

    /// Adds `raft3d serve` flags for every node.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
}

/// Why a cluster could not be started or a node could not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("port {port} on {host} is not free: {source}")]
    PortBusy {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("port {port} would be used twice: move the HTTP and Raft port ranges apart")]
    PortClash { port: u16 },
    #[error("port range overflows for {nodes} nodes from {base}")]
    PortRange { nodes: u64, base: u16 },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start node {id} ({binary}): {source}")]
    Spawn {
        id: u64,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare node {id}'s certificates (raft3d init): {why}")]
    Init { id: u64, why: String },
    #[error("node {id} is not part of this cluster")]
    UnknownNode { id: u64 },
    #[error("node {id} is not running")]
    NotRunning { id: u64 },
    #[error("node {id} is still running")]
    StillRunning { id: u64 },
    #[error("node {id}: {source}")]
    Process { id: u64, source: std::io::Error },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// One node as its launcher sees it.
#[derive(Debug)]
pub struct NodeProcess {
    /// Raft node id (1-based, as in `--peers`).
    pub id: u64,
    pub http_port: u16,
    pub raft_port: u16,
    /// The Raft address its peers dial (its own by default; a proxy's in the chaos suite).
    pub peer_addr: String,
    pub data_dir: PathBuf,
    /// With [`Output::Files`]: its log.
    pub log_path: PathBuf,
    host: String,
    /// Extra flags for this node only.
    args: Vec<String>,
    /// Started with the cluster's `--peers` (false for a node added later).
    with_peers: bool,
    child: Option<Child>,
    paused: bool,
    _ports: Vec<PortClaim>,
}

impl NodeProcess {
    /// A node not started yet: data in `<root>/node<id>`, log in `<root>/node<id>.log`,
    /// dialled by its peers at its own Raft port.
    fn planned(
        id: u64,
        host: &str,
        root: &Path,
        (http_port, raft_port, claims): (u16, u16, Vec<PortClaim>),
        with_peers: bool,
    ) -> Self {
        Self {
            id,
            http_port,
            raft_port,
            peer_addr: format!("{host}:{raft_port}"),
            data_dir: root.join(format!("node{id}")),
            log_path: root.join(format!("node{id}.log")),
            host: host.to_owned(),
            args: Vec::new(),
            with_peers,
            child: None,
            paused: false,
            _ports: claims,
        }
    }

    /// Client URL without a trailing slash, e.g. `http://127.0.0.1:8081`.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.http_port)
    }

    /// The address its Raft listener binds.
    pub fn raft_addr(&self) -> String {
        format!("{}:{}", self.host, self.raft_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// Real `raft3d serve` processes started together. Must be used inside a Tokio runtime.
#[derive(Debug)]
pub struct ProcessCluster {
    binary: PathBuf,
    host: String,
    args: Vec<String>,
    output: Output,
    root: PathBuf,
    nodes: Vec<NodeProcess>,
    /// Polls node views (short timeout, no retries).
    poller: Client,
    /// Deleted last, after the children are gone.
    _temp: Option<TempDir>,
}

impl ProcessCluster {
    /// Plans the nodes (ports, directories) without starting any: the caller may still
    /// change [`Self::set_peer_addr`] or [`Self::set_node_args`], then [`Self::start_all`].
    pub fn plan(spec: Spec) -> Result<Self, ClusterError> {
        let (root, temp) = match &spec.data_root {
            Some(root) => (root.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("raft3d-cluster-")
                    .tempdir()
                    .map_err(|source| ClusterError::DataDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        std::fs::create_dir_all(&root).map_err(|source| ClusterError::DataDir {
            path: root.clone(),
            source,
        })?;
        let mut nodes = Vec::new();
        for (id, (http_port, raft_port, claims)) in (1..).zip(plan_ports(&spec)?) {
            let ports = (http_port, raft_port, claims);
            nodes.push(NodeProcess::planned(id, &spec.host, &root, ports, true));
        }
        let urls: Vec<String> = nodes.iter().map(NodeProcess::url).collect();
        let poller = Client::with_policy(
            urls,
            RetryPolicy {
                request_timeout: leader::POLL_TIMEOUT,
                ..RetryPolicy::default()
            },
        )?;
        Ok(Self {
            binary: spec.binary,
            host: spec.host,
            args: spec.args,
            output: spec.output,
            root,
            nodes,
            poller,
            _temp: temp,
        })
    }

    /// Plans and starts every node.
    pub fn start(spec: Spec) -> Result<Self, ClusterError> {
        let mut cluster = Self::plan(spec)?;
        cluster.start_all()?;
        Ok(cluster)
    }

    /// Starts every node that is not running, in id order.
    pub fn start_all(&mut self) -> Result<(), ClusterError> {
        let ids: Vec<u64> = self.ids();
        for id in ids {
            if !self.node(id)?.is_running() {
                self.spawn(id)?;
            }
        }
        Ok(())
    }

    /// The address node `id`'s peers dial (before the nodes start).
    pub fn set_peer_addr(&mut self, id: u64, addr: String) -> Result<(), ClusterError> {
        self.node_mut(id)?.peer_addr = addr;
        Ok(())
    }

    /// Extra `raft3d serve` flags for node `id` only.
    pub fn set_node_args(&mut self, id: u64, args: Vec<String>) -> Result<(), ClusterError> {
        self.node_mut(id)?.args = args;
        Ok(())
    }

    /// Plans and starts one more node, without `--peers` (to be joined with `add-node`).
    pub fn add_node(&mut self) -> Result<u64, ClusterError> {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let ports = free_ports()?;
        let node = NodeProcess::planned(id, &self.host, &self.root, ports, false);
        self.nodes.push(node);
        self.spawn(id)?;
        Ok(id)
    }

    /// The `--peers` value of the nodes started together.
    pub fn peers(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.with_peers)
            .map(|n| format!("{}={}", n.id, n.peer_addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Prepares the planned, never started nodes as a new cluster holding the farm of
    /// `backup` (`raft3d restore` into the directory `init` would use, then each node's
    /// restored data moved to its data directory); then [`Self::start_all`].
    pub fn restore_from(&mut self, backup: &Path) -> Result<(), ClusterError> {
        let pki = self.pki_dir();
        let output = std::process::Command::new(&self.binary)
            .arg("restore")
            .arg("--backup")
            .arg(backup)
            .arg("--dir")
            .arg(&pki)
            .args(["--peers", &self.peers()])
            .output()
            .map_err(|source| ClusterError::Process { id: 0, source })?;
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(ClusterError::Init { id: 0, why });
        }
        for node in &self.nodes {
            let restored = pki.join(format!("node-{}", node.id)).join("data");
            std::fs::rename(&restored, &node.data_dir).map_err(|source| ClusterError::DataDir {
                path: restored.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Where `raft3d init` writes the cluster's CA and node directories.
    fn pki_dir(&self) -> PathBuf {
        self.root.join("pki")
    }

    /// Node `id`'s directory (certificates, `node.json`), made by `raft3d init` on first
    /// use: the nodes started together get theirs from one `init --peers`, a node added
    /// later from `init --add-node`. `None` when the nodes run `--insecure`.
    fn node_dir(&self, id: u64) -> Result<Option<PathBuf>, ClusterError> {
        if self.args.iter().any(|arg| arg == "--insecure") {
            return Ok(None);
        }
        let pki = self.pki_dir();
        let dir = pki.join(format!("node-{id}"));
        if dir.exists() {
            return Ok(Some(dir));
        }
        let node = self.node(id)?;
        let mut init = std::process::Command::new(&self.binary);
        init.arg("init").arg("--dir").arg(&pki);
        match pki.join("cluster.json").exists() {
            true => init.args(["--add-node", &format!("{id}={}", node.peer_addr)]),
            false => init.args(["--peers", &self.peers()]),
        };
        let output = init
            .output()
            .map_err(|source| ClusterError::Process { id, source })?;
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(ClusterError::Init { id, why });
        }
        Ok(Some(dir))
    }

    fn spawn(&mut self, id: u64) -> Result<(), ClusterError> {
        let peers = self.peers();
        let node_dir = self.node_dir(id)?;
        let (binary, output, args) = (self.binary.clone(), self.output, self.args.clone());
        let node = self.node_mut(id)?;
        let mut command = Command::new(&binary);
        command.arg("serve");
        if let Some(dir) = &node_dir {
            command.arg("--node-dir").arg(dir);
        }
        command
            .args(["--id", &id.to_string()])
            .args(["--http-addr", &format!("{}:{}", node.host, node.http_port)])
            .args(["--raft-addr", &node.raft_addr()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--stop-with-parent", &std::process::id().to_string()])
            .args(&args)
            .args(&node.args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if node.with_peers {
            command.args(["--peers", &peers]);
        }
        match output {
            Output::Files => {
                let log = File::options()
                    .create(true)
                    .append(true)
                    .open(&node.log_path)
                    .map_err(|source| ClusterError::Process { id, source })?;
                let log_err = log
                    .try_clone()
                    .map_err(|source| ClusterError::Process { id, source })?;
                command.stdout(log).stderr(log_err);
            }
            Output::Forward => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let mut child =
            command
                .spawn()
                .map_err(|source| ClusterError::Spawn { id, binary, source })?;
        let label = format!("[node {id}]");
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, label.clone(), Sink::Stdout));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, label, Sink::Stderr));
        }
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Starts a node that was killed or stopped again, on its data directory, with its
    /// original command line.
    pub fn restart(&mut self, id: u64) -> Result<(), ClusterError> {
        if self.node(id)?.is_running() {
            return Err(ClusterError::StillRunning { id });
        }
        self.spawn(id)
    }

    /// SIGKILL, then reap; returns how it ended. A node that had already exited on its
    /// own is reaped and reported the same way (its status shows it was not killed).
    pub async fn kill(&mut self, id: u64) -> Result<ExitStatus, ClusterError> {
        let node = self.node_mut(id)?;
        let mut child = node.child.take().ok_or(ClusterError::NotRunning { id })?;
        node.paused = false;
        // Fails only if the child has already exited; `wait` reports its status either way.
        let _ = child.start_kill();
        child
            .wait()
            .await
            .map_err(|source| ClusterError::Process { id, source })
    }

    /// Kills node `id` if it runs and deletes its data directory: a disk replaced.
    pub async fn wipe(&mut self, id: u64) -> Result<(), ClusterError> {
        if self.node(id)?.is_running() {
            self.kill(id).await?;
        }
        let dir = self.node(id)?.data_dir.clone();
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ClusterError::DataDir {
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// SIGSTOP: the node is frozen (a long GC pause, a VM migration), sockets open.
    pub fn pause(&mut self, id: u64) -> Result<(), ClusterError> {
        self.signal(id, "-STOP")?;
        self.node_mut(id)?.paused = true;
        Ok(())
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&mut self, id: u64) -> Result<(), ClusterError> {
        self.signal(id, "-CONT")?;
        self.node_mut(id)?.paused = false;
        Ok(())
    }

    /// Sends a signal with kill(1): std and tokio only send SIGKILL, and a signal is not
    /// worth `unsafe` libc calls here.
    fn signal(&self, id: u64, signal: &str) -> Result<(), ClusterError> {
        let pid = self
            .node(id)?
            .pid()
            .ok_or(ClusterError::NotRunning { id })?;
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(|source| ClusterError::Process { id, source })?;
        if status.success() {
            Ok(())
        } else {
            Err(ClusterError::NotRunning { id })
        }
    }

    /// Every node that ended on its own since the last look, with its exit status; such a
    /// node counts as stopped (so it can be restarted, as a supervisor would).
    pub fn exited(&mut self) -> Result<Vec<(u64, ExitStatus)>, ClusterError> {
        let mut exited = Vec::new();
        for node in &mut self.nodes {
            let status = match node.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => status,
                Some(Err(source)) => {
                    return Err(ClusterError::Process {
                        id: node.id,
                        source,
                    })
                }
                Some(Ok(None)) | None => continue,
            };
            node.child = None;
            node.paused = false;
            exited.push((node.id, status));
        }
        Ok(exited)
    }

    /// Completes when a running node exits on its own; returns its id and status.
    pub async fn any_exit(&mut self) -> Result<(u64, ExitStatus), ClusterError> {
        loop {
            if let Some(first) = self.exited()?.into_iter().next() {
                return Ok(first);
            }
            // Polling keeps this simple (no borrow of every child at once); 200 ms to
            // notice a dead node is nothing for the callers.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks every running node to stop (SIGTERM: a clean shutdown), waits up to `grace`,
    /// then kills what is left. Nodes are crash-safe, so the kill loses nothing acknowledged.
    pub async fn stop(&mut self, grace: Duration) {
        let ids: Vec<u64> = self.running_ids();
        for &id in &ids {
            if self.node(id).is_ok_and(NodeProcess::is_paused) {
                let _ = self.resume(id);
            }
            let _ = self.signal(id, "-TERM");
        }
        let until = Instant::now() + grace;
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            let left = until.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    // ---- Looking at the nodes ----

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Nodes with a process (paused ones included).
    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    pub fn nodes(&self) -> &[NodeProcess] {
        &self.nodes
    }

    pub fn node(&self, id: u64) -> Result<&NodeProcess, ClusterError> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or(ClusterError::UnknownNode { id })
    }

    fn node_mut(&mut self, id: u64) -> Result<&mut NodeProcess, ClusterError> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or(ClusterError::UnknownNode { id })
    }

    /// Client URL of node `id` (empty for an unknown id).
    pub fn url(&self, id: u64) -> String {
        self.node(id).map(NodeProcess::url).unwrap_or_default()
    }

    /// Every node's client URL, in id order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NodeProcess::url).collect()
    }

    /// A client of this cluster (every node's URL) with the default retry policy and the
    /// cluster's admin token.
    pub fn client(&self) -> Result<Client, ClusterError> {
        self.client_with(RetryPolicy::default())
    }

    /// A client of this cluster with `policy` and the cluster's admin token.
    pub fn client_with(&self, policy: RetryPolicy) -> Result<Client, ClusterError> {
        Ok(Client::with_policy(self.urls(), policy)?.with_token(self.admin_token()))
    }

    /// The admin token `raft3d init` made (`<root>/pki/admin.token`); `None` before the
    /// first node started, or when the nodes run `--insecure`.
    pub fn admin_token(&self) -> Option<String> {
        let token = std::fs::read_to_string(self.pki_dir().join("admin.token")).ok()?;
        Some(token.trim().to_owned())
    }

    /// Node `id`'s own view, if it answers within a second.
    pub async fn view(&self, id: u64) -> Option<ClusterView> {
        self.poller.cluster_at(&self.url(id)).await.ok()
    }

    /// The views of every running, unpaused node that answers, asked in parallel.
    pub async fn views(&self) -> Vec<(String, ClusterView)> {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.is_running() && !n.paused)
            .map(NodeProcess::url)
            .collect();
        leader::views(&self.poller, &urls).await
    }

    /// The elected leader now ([`crate::leader`] has the definition), if any.
    pub async fn leader(&self) -> Option<Leader> {
        leader::elected(&self.views().await)
    }

    /// Waits until a leader is elected.
    pub async fn wait_for_leader(&self, within: Duration) -> Result<Leader, NotInTime> {
        crate::eventually("a leader elected", within, || async {
            let views = self.views().await;
            leader::elected(&views).ok_or_else(|| leader::describe(&views))
        })
        .await
    }

    /// Waits until a leader other than `old` is elected.
    pub async fn wait_for_new_leader(
        &self,
        old: u64,
        within: Duration,
    ) -> Result<Leader, NotInTime> {
        crate::eventually("a new leader elected", within, || async {
            let views = self.views().await;
            match leader::elected(&views) {
                Some(leader) if leader.id != old => Ok(leader),
                Some(_) => Err(format!("node {old} still leads")),
                None => Err(leader::describe(&views)),
            }
        })
        .await
    }

    /// Waits until node `id` has applied at least `index`; returns its view.
    pub async fn wait_applied(
        &self,
        id: u64,
        index: u64,
        within: Duration,
    ) -> Result<ClusterView, NotInTime> {
        crate::eventually(
            &format!("node {id} applies index {index}"),
            within,
            || async {
                match self.view(id).await {
                    Some(view) if view.applied_index.is_some_and(|a| a >= index) => Ok(view),
                    Some(view) => Err(format!("applied {:?}", view.applied_index)),
                    None => Err("no answer".to_owned()),
                }
            },
        )
        .await
    }

    /// Node `id`'s whole log (with [`Output::Files`]), colours stripped.
    pub fn log(&self, id: u64) -> String {
        let path = self
            .node(id)
            .map(|n| n.log_path.clone())
            .unwrap_or_default();
        strip_colours(&std::fs::read_to_string(path).unwrap_or_default())
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let log = self.log(id);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Every node's last log lines on stderr (a failing test's evidence).
    pub fn dump_logs(&self, lines: usize) {
        for id in self.ids() {
            eprintln!(
                "---- node {id} log (last {lines} lines) ----\n{}",
                self.log_tail(id, lines)
            );
        }
    }

    /// Copies every node's log into `dir` (a temporary data root goes with the cluster).
    pub fn save_logs(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for node in &self.nodes {
            if node.log_path.exists() {
                std::fs::copy(&node.log_path, dir.join(format!("node-{}.log", node.id)))?;
            }
        }
        Ok(())
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                if node.paused {
                    if let Some(pid) = child.id() {
                        let _ = std::process::Command::new("kill")
                            .args(["-CONT", &pid.to_string()])
                            .status();
                    }
                }
                // SIGKILL now; tokio reaps the child in the background.
                let _ = child.start_kill();
            }
        }
    }
}

/// `(http port, raft port, claims)` for every node of `spec`.
fn plan_ports(spec: &Spec) -> Result<Vec<(u16, u16, Vec<PortClaim>)>, ClusterError> {
    match spec.ports {
        PortPlan::Free => (0..spec.nodes).map(|_| free_ports()).collect(),
        PortPlan::From { http, raft } => fixed_ports(spec, http, raft),
    }
}

/// A claimed HTTP port and Raft port for one node.
fn free_ports() -> Result<(u16, u16, Vec<PortClaim>), ClusterError> {
    let (http, raft) = (ports::claim()?, ports::claim()?);
    Ok((http.port(), raft.port(), vec![http, raft]))
}

/// Consecutive ports from fixed bases, checked distinct and free.
fn fixed_ports(
    spec: &Spec,
    http_base: u16,
    raft_base: u16,
) -> Result<Vec<(u16, u16, Vec<PortClaim>)>, ClusterError> {
    let port = |base: u16, i: u64| {
        u16::try_from(u64::from(base) + i).map_err(|_| ClusterError::PortRange {
            nodes: spec.nodes,
            base,
        })
    };
    let mut seen = HashSet::new();
    let mut plan = Vec::new();
    for i in 0..spec.nodes {
        let (http, raft) = (port(http_base, i)?, port(raft_base, i)?);
        for p in [http, raft] {
            if !seen.insert(p) {
                return Err(ClusterError::PortClash { port: p });
            }
            // Racy (the port may be taken before the child binds it), but it turns the
            // common mistake, a cluster already running, into one clear error.
            std::net::TcpListener::bind((spec.host.as_str(), p)).map_err(|source| {
                ClusterError::PortBusy {
                    host: spec.host.clone(),
                    port: p,
                    source,
                }
            })?;
        }
        plan.push((http, raft, Vec::new()));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_port_ranges_are_refused_before_anything_starts() {
        let mut spec = Spec::new("raft3d", 3);
        spec.ports = PortPlan::From {
            http: 40001,
            raft: 40002,
        };
        assert!(matches!(
            ProcessCluster::plan(spec),
            Err(ClusterError::PortClash { port: 40002 })
        ));
    }

    #[test]
    fn planned_nodes_share_one_peers_list() {
        let cluster = ProcessCluster::plan(Spec::new("raft3d", 3)).expect("planned");
        let peers = cluster.peers();
        assert_eq!(peers.split(',').count(), 3);
        for node in cluster.nodes() {
            assert!(peers.contains(&format!("{}={}", node.id, node.raft_addr())));
        }
    }
}
