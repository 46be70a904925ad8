//! Starting, killing, restarting and wiping real `raft3d serve` processes, and waiting on
//! cluster conditions with deadlines (never fixed sleeps).

use app::api::{Role, IDEMPOTENCY_KEY_HEADER};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

#[path = "../common/timings.rs"]
mod timings;
use timings::RAFT_TIMINGS;
/// Deadline for cluster conditions (leader elected, node caught up).
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Node {
    pub id: u64,
    pub http_port: u16,
    pub raft_port: u16,
    pub dir: TempDir,
    child: Option<Child>,
    /// Extra `serve` flags; `--peers` is left out for nodes that are added later.
    args: Vec<String>,
}

impl Node {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub client: Client,
    peers: String,
}

#[path = "../common/ports.rs"]
mod ports;
use ports::free_port;

impl Cluster {
    /// `n` nodes with ids 1..=n and the same `--peers`, started in the given order.
    pub fn start_in_order(n: u64, order: &[u64], extra: &[&str]) -> Self {
        let nodes: Vec<Node> = (1..=n)
            .map(|id| Node {
                id,
                http_port: free_port(),
                raft_port: free_port(),
                dir: TempDir::new().expect("temp dir"),
                child: None,
                args: extra.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        let peers = nodes
            .iter()
            .map(|n| format!("{}=127.0.0.1:{}", n.id, n.raft_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            nodes,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            peers,
        };
        for id in order {
            cluster.spawn(*id, true);
        }
        cluster
    }

    pub fn start(n: u64, extra: &[&str]) -> Self {
        let order: Vec<u64> = (1..=n).collect();
        Self::start_in_order(n, &order, extra)
    }

    /// Adds a node that is started without `--peers` (to be joined with `add-node`).
    pub fn add_unjoined_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let args = self.nodes[0].args.clone();
        self.nodes.push(Node {
            id,
            http_port: free_port(),
            raft_port: free_port(),
            dir: TempDir::new().expect("temp dir"),
            child: None,
            args,
        });
        self.spawn(id, false);
        id
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn spawn(&mut self, id: u64, with_peers: bool) {
        let peers = self.peers.clone();
        let node = self.node_mut(id);
        let log = File::options()
            .create(true)
            .append(true)
            .open(node.log_path())
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_raft3d"));
        command
            .arg("serve")
            .args(["--id", &id.to_string()])
            .args(["--http-addr", &format!("127.0.0.1:{}", node.http_port)])
            .args(["--raft-addr", &format!("127.0.0.1:{}", node.raft_port)])
            .arg("--data-dir")
            .arg(node.data_dir())
            .args(RAFT_TIMINGS)
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if with_peers {
            command.args(["--peers", &peers]);
        }
        node.child = Some(command.spawn().expect("raft3d starts"));
    }

    /// SIGKILL (that is what `Child::kill` sends on Unix), then reap.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            child.kill().expect("kill");
            child.wait().expect("reap");
        }
    }

    /// Restarts a killed node on its data directory with its original flags.
    pub fn restart(&mut self, id: u64) {
        assert!(self.node(id).child.is_none(), "node {id} is still running");
        self.spawn(id, true);
    }

    /// Kills a node and deletes everything in its data directory.
    pub fn wipe(&mut self, id: u64) {
        self.kill(id);
        let dir = self.node(id).data_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("wipe data dir");
        }
    }

    pub fn live_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub async fn view(&self, id: u64) -> Option<Value> {
        let response = self
            .client
            .get(format!("{}/api/v1/cluster", self.node(id).url()))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Waits until a live node reports itself leader, a majority of the live nodes name
    /// it in the same term, and every member's client URL is known. Returns its id.
    pub async fn wait_for_leader(&self) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut views = Vec::new();
            for id in self.live_ids() {
                if let Some(view) = self.view(id).await {
                    views.push(view);
                }
            }
            let leader = views.iter().find(|v| {
                v["role"] == Role::Leader.as_str()
                    && v["members"]
                        .as_array()
                        .is_some_and(|m| m.iter().all(|m| m["http_url"].is_string()))
            });
            if let Some(leader) = leader {
                let (id, term) = (leader["node_id"].clone(), leader["term"].clone());
                let agreeing = views
                    .iter()
                    .filter(|v| v["leader_id"] == id && v["term"] == term)
                    .count();
                if agreeing * 2 > self.live_ids().len() {
                    return id.as_u64().expect("node id");
                }
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no leader within {WAIT:?}; views: {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a leader other than `old`.
    pub async fn wait_for_new_leader(&self, old: u64) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let leader = self.wait_for_leader().await;
            if leader != old {
                return leader;
            }
            assert!(Instant::now() < deadline, "leader {old} was never replaced");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(view) = self.view(id).await {
                if view["applied_index"].as_u64().is_some_and(|a| a >= index) {
                    return view;
                }
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("node {id} never applied index {index}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One raw request to one node, no redirect following.
    pub async fn raw(
        &self,
        method: Method,
        id: u64,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.raw_url(method, &format!("{}{path}", self.node(id).url()), body, key)
            .await
    }

    async fn raw_url(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        let response = request.send().await.expect("request sent");
        let (status, headers) = (response.status(), response.headers().clone());
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// A write as a careful client does it: start at node `via`, follow `307`s, and on a
    /// `503` or a dead node retry on another live node until the deadline. Every attempt
    /// carries the same `Idempotency-Key`, so retries cannot apply the write twice.
    pub async fn write(
        &self,
        via: u64,
        path: &str,
        body: &Value,
        key: &str,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + WAIT;
        let mut url = format!("{}{path}", self.node(via).url());
        let mut attempt = 0usize;
        loop {
            let mut request = self
                .client
                .post(&url)
                .header(IDEMPOTENCY_KEY_HEADER, key)
                .json(body);
            request = request.timeout(Duration::from_secs(8));
            match request.send().await {
                Ok(response) if response.status() == StatusCode::TEMPORARY_REDIRECT => {
                    url = response.headers()["location"]
                        .to_str()
                        .expect("location")
                        .to_owned();
                    continue;
                }
                Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    let status = response.status();
                    return (status, response.json().await.unwrap_or(Value::Null));
                }
                _ => {}
            }
            assert!(Instant::now() < deadline, "write to {path} never succeeded");
            attempt += 1;
            let live = self.live_ids();
            url = format!("{}{path}", self.node(live[attempt % live.len()]).url());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A linearizable (default) or stale read from one node.
    pub async fn get(&self, id: u64, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.raw(Method::GET, id, path, None, None).await;
        (status, body)
    }

    pub fn dump_logs(&self) {
        for node in &self.nodes {
            let log = std::fs::read_to_string(node.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            eprintln!("---- node {} log (last lines) ----", node.id);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

pub fn printer(id: &str) -> Value {
    serde_json::json!({"id": id, "company": "Prusa", "model": "MK4"})
}

pub fn spool(id: &str, grams: u64) -> Value {
    serde_json::json!({"id": id, "type": "PLA", "color": "red", "total_weight_in_grams": grams})
}

pub fn job(id: &str, printer: &str, spool: &str, grams: u64) -> Value {
    serde_json::json!({"id": id, "printer_id": printer, "filament_id": spool, "filepath": "part.gcode", "print_weight_in_grams": grams})
}

/// Ids in a JSON list response.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str().map(str::to_owned))
        .collect()
}
