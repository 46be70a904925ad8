//! Durability under the faults SIGKILL cannot show: in-process nodes whose redb files
//! live on simulated disks (`sim_disk`), driven through real HTTP. A power cut drops
//! every write that was not synced; a disk fault fails every write from then on.

mod sim_disk;

mod disk_fault;
mod log_store;
mod power_loss;

use raft3d::{Node, NodeConfig};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sim_disk::SimDisks;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Deadline for cluster conditions.
const WAIT: Duration = Duration::from_secs(30);

/// One in-process node on simulated disks, with fixed ports so it can come back.
pub struct SimNode {
    pub id: u64,
    pub http_port: u16,
    pub raft_port: u16,
    pub disks: Arc<SimDisks>,
    pub node: Option<Node>,
    dir: TempDir,
    /// Build a snapshot after this many entries (`None`: the default).
    snapshot_threshold: Option<u64>,
}

impl SimNode {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn config(&self, peers: &[(u64, String)]) -> NodeConfig {
        let mut config = NodeConfig::new(self.id, self.dir.path().to_path_buf());
        config.http_addr = ([127, 0, 0, 1], self.http_port).into();
        config.raft_addr = ([127, 0, 0, 1], self.raft_port).into();
        config.peers = peers.to_vec();
        config.heartbeat_ms = 100;
        config.election_timeout_min_ms = 500;
        config.election_timeout_max_ms = 1000;
        config.disks = Some(self.disks.clone());
        if let Some(threshold) = self.snapshot_threshold {
            config.snapshot_threshold = threshold;
        }
        config
    }
}

/// `n` in-process nodes with the same `--peers`, each on its own simulated disks.
pub struct SimCluster {
    pub nodes: Vec<SimNode>,
    pub client: Client,
    peers: Vec<(u64, String)>,
}

impl SimCluster {
    pub async fn start(n: u64) -> Self {
        Self::start_with(n, None).await
    }

    /// [`Self::start`], the nodes snapshotting after every `snapshot_threshold` entries.
    pub async fn start_with(n: u64, snapshot_threshold: Option<u64>) -> Self {
        let nodes: Vec<SimNode> = (1..=n)
            .map(|id| SimNode {
                id,
                http_port: raft3d_launcher::ports::free_port(),
                raft_port: raft3d_launcher::ports::free_port(),
                disks: Arc::new(SimDisks::default()),
                node: None,
                dir: TempDir::new().expect("temp dir"),
                snapshot_threshold,
            })
            .collect();
        let peers = nodes
            .iter()
            .map(|n| (n.id, format!("127.0.0.1:{}", n.raft_port)))
            .collect();
        let mut cluster = Self {
            nodes,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client"),
            peers,
        };
        for index in 0..cluster.nodes.len() {
            cluster.boot(index).await;
        }
        cluster
    }

    /// Starts node `index` on its disks (again, after [`Self::retire`]).
    pub async fn boot(&mut self, index: usize) {
        let config = self.nodes[index].config(&self.peers);
        let node = raft3d::start(config).await.expect("node starts");
        self.nodes[index].node = Some(node);
    }

    /// Power is cut on every running node at once; then each boots on what its disks
    /// had synced.
    pub async fn power_cut_and_reboot(&mut self) {
        let running = self.running();
        for index in &running {
            self.nodes[*index].disks.power_cut();
        }
        for index in &running {
            let node = &mut self.nodes[*index];
            if let Some(running) = node.node.take() {
                running.shutdown().await;
            }
            node.disks = Arc::new(node.disks.after_power_cut());
        }
        for index in running {
            self.boot(index).await;
        }
    }

    /// Stops a node for good (it was removed from the cluster), or until
    /// [`Self::boot`].
    pub async fn retire(&mut self, index: usize) {
        if let Some(running) = self.nodes[index].node.take() {
            running.shutdown().await;
        }
    }

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].node.is_some())
            .collect()
    }

    pub async fn view(&self, index: usize) -> Option<Value> {
        let url = format!("{}/api/v1/cluster", self.nodes[index].url());
        self.client.get(url).send().await.ok()?.json().await.ok()
    }

    /// The index of the node every live node agrees leads, once there is one.
    pub async fn wait_for_leader(&self) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut views = Vec::new();
            for index in self.running() {
                views.push((index, self.view(index).await.unwrap_or_default()));
            }
            let leaders: Vec<usize> = views
                .iter()
                .filter(|(_, view)| view["role"] == "Leader")
                .map(|(index, _)| *index)
                .collect();
            if let [leader] = leaders[..] {
                let id = self.nodes[leader].id;
                if views.iter().all(|(_, v)| v["leader_id"] == id) {
                    return leader;
                }
            }
            assert!(Instant::now() < deadline, "no leader: {views:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates printer `id` through the leader, retrying (same key) until `201` or the
    /// deadline; `false` if it was never acknowledged.
    pub async fn create_printer(&self, id: &str) -> bool {
        let body = serde_json::json!({"id": id, "company": "Prusa", "model": "MK4"});
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let leader = self.wait_for_leader().await;
            let url = format!("{}/api/v1/printers", self.nodes[leader].url());
            let sent = self
                .client
                .post(url)
                .header("idempotency-key", id)
                .json(&body)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status() == StatusCode::CREATED) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Printer ids node `index` holds (a linearizable read).
    pub async fn printers(&self, index: usize) -> Vec<String> {
        let url = format!("{}/api/v1/printers", self.nodes[index].url());
        let list: Value = match self.client.get(url).send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect()
    }
}
