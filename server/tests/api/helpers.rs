//! `spawn_node()`: one real node on ephemeral ports with its own temp data dir.

use app::api::{ClusterView, IDEMPOTENCY_KEY_HEADER};
use raft3d::{Node, NodeConfig};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct TestNode {
    pub base: String,
    pub client: Client,
    pub node: Option<Node>,
    pub dir: TempDir,
    pub raft_port: u16,
}

use raft3d_launcher::ports::free_port;

/// The configuration `spawn_node` uses (a single-node cluster of node 1).
pub fn config(dir: &TempDir, raft_port: u16) -> NodeConfig {
    let mut config = NodeConfig::new(1, dir.path().to_path_buf());
    config.raft_addr = ([127, 0, 0, 1], raft_port).into();
    config.peers = vec![(1, format!("127.0.0.1:{raft_port}"))];
    config.heartbeat_ms = 50;
    config.election_timeout_min_ms = 200;
    config.election_timeout_max_ms = 400;
    config
}

pub async fn spawn_node() -> TestNode {
    let dir = TempDir::new().expect("temp dir");
    let raft_port = free_port();
    TestNode::start(config(&dir, raft_port), dir, raft_port).await
}

impl TestNode {
    /// Starts a node with `config` (its data in `dir`, Raft on `raft_port`) and waits
    /// until it is ready.
    pub async fn start(config: NodeConfig, dir: TempDir, raft_port: u16) -> TestNode {
        let node = raft3d::start(config).await.expect("node starts");
        let mut test_node = TestNode {
            base: format!("http://{}", node.http_addr),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            node: Some(node),
            dir,
            raft_port,
        };
        test_node.wait_ready().await;
        test_node
    }

    /// Stops the node and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
        let node = raft3d::start(config(&self.dir, self.raft_port))
            .await
            .expect("node restarts");
        self.base = format!("http://{}", node.http_addr);
        self.node = Some(node);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self.client.get(self.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                // Ready also needs our own client URL published (redirect targets).
                let view = self.get_json("/api/v1/cluster").await;
                if view["members"][0]["http_url"].is_string() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "node did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The cluster id this node derived from its `--peers` (see `raft3d::identity`).
    pub fn cluster_id(&self) -> String {
        raft3d::identity::cluster_id_from_peers(&[(1, self.raft_addr())])
    }

    /// The incarnation the membership records for node 1 (this node): what a request
    /// claiming to come from node 1 must show to be admitted.
    pub async fn incarnation(&self) -> String {
        let view = self.cluster_view().await;
        view.members[0]
            .incarnation
            .clone()
            .expect("the leader has recorded its own incarnation")
    }

    /// `host:port` of the node's peer (Raft) listener.
    pub fn raft_addr(&self) -> String {
        format!("127.0.0.1:{}", self.raft_port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &str) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_keyed(&self, path: &str, key: &str, body: &str) -> Response {
        self.client
            .post(self.url(path))
            .header(IDEMPOTENCY_KEY_HEADER, key)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("json body")
    }

    pub async fn cluster_view(&self) -> ClusterView {
        self.get("/api/v1/cluster")
            .await
            .json()
            .await
            .expect("cluster view")
    }

    /// A printer `p1`, a 1000 g PLA spool `f1`.
    pub async fn seed(&self) {
        let printer = self
            .post(
                "/api/v1/printers",
                r#"{"id":"p1","company":"Prusa","model":"MK4"}"#,
            )
            .await;
        assert_eq!(printer.status(), StatusCode::CREATED);
        let spool = r#"{"id":"f1","type":"PLA","color":"red","total_weight_in_grams":1000}"#;
        assert_eq!(
            self.post("/api/v1/filaments", spool).await.status(),
            StatusCode::CREATED
        );
    }
}

/// Status and parsed body of a response.
pub async fn status_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub fn job_body(id: &str, grams: u64) -> String {
    format!(
        r#"{{"id":"{id}","printer_id":"p1","filament_id":"f1","filepath":"part.gcode","print_weight_in_grams":{grams}}}"#
    )
}
