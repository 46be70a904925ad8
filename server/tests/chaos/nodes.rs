//! The cluster under test: real `raft3d serve` processes whose Raft traffic goes through
//! the proxies, killed with SIGKILL, paused with SIGSTOP, wiped and restarted.

#[path = "../common/ports.rs"]
mod ports;
#[path = "../common/timings.rs"]
mod timings;

use crate::proxy::{self, Links};
use serde_json::Value;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

pub struct Node {
    pub id: u64,
    pub http_port: u16,
    raft_port: u16,
    dir: TempDir,
    child: Option<Child>,
    pub paused: bool,
}

pub struct Nodes {
    pub nodes: Vec<Node>,
    peers: String,
    pub links: Links,
    pub client: reqwest::Client,
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
            .args([
                "--snapshot-threshold",
                "300",
                "--write-timeout-ms",
                "3000",
                "--log",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("raft3d starts");
        node.child = Some(child);
        node.paused = false;
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.node_mut(id).paused = false;
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
