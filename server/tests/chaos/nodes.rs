//! The cluster under test: real `raft3d serve` processes whose Raft traffic goes through
//! the proxies, killed with SIGKILL, paused with SIGSTOP, wiped and restarted. A process
//! that ends without the suite killing it is recorded as an [`Exit`]: a node must never
//! die on its own, whatever the faults.

#[path = "../common/ports.rs"]
mod ports;
#[path = "../common/timings.rs"]
mod timings;

use crate::proxy::{self, Links};
use serde_json::Value;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// Every node snapshots (and purges its log down to a tenth of this) after this many
/// entries: small, so snapshots and snapshot transfers happen many times a run.
pub const SNAPSHOT_THRESHOLD: u64 = 300;

pub struct Node {
    pub id: u64,
    pub http_port: u16,
    raft_port: u16,
    dir: TempDir,
    child: Option<Child>,
    pub paused: bool,
}

/// A node process that ended on its own (a crash, a panic, a fatal error).
#[derive(Debug)]
pub struct Exit {
    pub node: u64,
    pub status: ExitStatus,
    /// The last lines of its log when the exit was noticed (the log is gone after the run).
    pub log_tail: String,
}

pub struct Nodes {
    pub nodes: Vec<Node>,
    peers: String,
    pub links: Links,
    pub client: reqwest::Client,
    /// Every exit noticed so far, oldest first.
    pub exits: Vec<Exit>,
}

impl Nodes {
    /// Starts the proxies and `n` nodes.
    pub async fn start(n: u64) -> Self {
        let links = Links::default();
        let mut nodes = Vec::new();
        let mut peers = Vec::new();
        for id in 1..=n {
            let (http_port, raft_port, proxy_port) =
                (ports::free_port(), ports::free_port(), ports::free_port());
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", proxy_port))
                .await
                .expect("proxy port");
            let target = ([127, 0, 0, 1], raft_port).into();
            tokio::spawn(proxy::run(listener, id, target, links.clone()));
            peers.push(format!("{id}=127.0.0.1:{proxy_port}"));
            nodes.push(Node {
                id,
                http_port,
                raft_port,
                dir: TempDir::new().expect("temp dir"),
                child: None,
                paused: false,
            });
        }
        let mut cluster = Self {
            nodes,
            peers: peers.join(","),
            links,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(4))
                .build()
                .expect("client"),
            exits: Vec::new(),
        };
        for id in 1..=n {
            cluster.spawn(id);
        }
        cluster
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn url(&self, id: u64) -> String {
        format!("http://127.0.0.1:{}", self.node(id).http_port)
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).dir.path().join("data")
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.node(id).dir.path().join("node.log")
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    fn spawn(&mut self, id: u64) {
        let (data_dir, log_path, peers) =
            (self.data_dir(id), self.log_path(id), self.peers.clone());
        let node = self.node_mut(id);
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_raft3d"))
            .arg("serve")
            .args(["--id", &id.to_string()])
            .args(["--http-addr", &format!("127.0.0.1:{}", node.http_port)])
            .args(["--raft-addr", &format!("127.0.0.1:{}", node.raft_port)])
            .args(["--peer-source-ip", &proxy::source_ip(id).to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--peers", &peers])
            .args(timings::RAFT_TIMINGS)
            .args(["--snapshot-threshold", &SNAPSHOT_THRESHOLD.to_string()])
            .args(["--write-timeout-ms", "3000", "--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("raft3d starts");
        node.child = Some(child);
        node.paused = false;
    }

    pub fn kill(&mut self, id: u64) {
        // SIGKILL "succeeds" on a process that already died, which would hide its exit.
        self.reap(id);
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.node_mut(id).paused = false;
    }

    /// Records every node process that has ended on its own since the last look; such a
    /// node counts as down (so healing restarts it, as a supervisor would).
    pub fn reap_exited(&mut self) {
        for id in self.ids() {
            self.reap(id);
        }
    }

    fn reap(&mut self, id: u64) {
        let node = self.node_mut(id);
        let Some(Ok(Some(status))) = node.child.as_mut().map(Child::try_wait) else {
            return;
        };
        node.child = None;
        node.paused = false;
        let log_tail = self.log_tail(id, 5);
        self.exits.push(Exit {
            node: id,
            status,
            log_tail,
        });
    }

    fn log_tail(&self, id: u64, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        strip_colours(&all[all.len().saturating_sub(lines)..].join("\n"))
    }

    /// Copies every node's log to `dir/node-<id>.log` (the temp dirs go when the run ends).
    pub fn save_logs(&self, dir: &std::path::Path) {
        let _ = std::fs::create_dir_all(dir);
        for id in self.ids() {
            let _ = std::fs::copy(self.log_path(id), dir.join(format!("node-{id}.log")));
        }
    }

    pub fn restart(&mut self, id: u64) {
        if !self.is_up(id) {
            self.spawn(id);
        }
    }

    pub fn wipe(&mut self, id: u64) {
        self.kill(id);
        let _ = std::fs::remove_dir_all(self.data_dir(id));
    }

    pub fn signal(&mut self, id: u64, stop: bool) {
        if let Some(child) = &self.node(id).child {
            let signal = if stop { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            self.node_mut(id).paused = stop;
        }
    }

    pub async fn view(&self, id: u64) -> Option<Value> {
        let response = self
            .client
            .get(format!("{}/api/v1/cluster", self.url(id)))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// The node a majority of the answering nodes name as leader, if any.
    pub async fn leader(&self) -> Option<u64> {
        let mut votes = std::collections::BTreeMap::new();
        for id in self.ids() {
            if self.node(id).paused || !self.is_up(id) {
                continue;
            }
            if let Some(leader) = self.view(id).await.and_then(|v| v["leader_id"].as_u64()) {
                *votes.entry(leader).or_insert(0) += 1;
            }
        }
        let majority = self.nodes.len() / 2 + 1;
        votes
            .into_iter()
            .find(|(_, n)| *n >= majority)
            .map(|(id, _)| id)
    }

    /// Undoes every fault: links healed, paused nodes resumed, dead nodes restarted.
    pub fn heal(&mut self) {
        self.links.heal();
        for id in self.ids() {
            if self.node(id).paused {
                self.signal(id, false);
            }
            self.restart(id);
        }
    }
}

/// Nodes colour their log lines (ANSI `ESC [ … m`); the report is plain text.
fn strip_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for id in self.ids() {
            if self.node(id).paused {
                self.signal(id, false);
            }
            self.kill(id);
        }
    }
}
