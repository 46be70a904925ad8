//! The process tests' view of a [`ProcessCluster`] (real release `raft3d serve` processes,
//! from `raft3d-launcher`) and of the API (through `raft3d-client`): short, panicking
//! helpers, so a test reads as its scenario. Every wait has a deadline ([`WAIT`]).

use app::api::ClusterView;
use raft3d_client::{Answer, Call, Client, ClientError, RetryPolicy};
use raft3d_launcher::{NodeProcess, ProcessCluster, Spec, TEST_RAFT_TIMINGS};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Deadline for cluster conditions (leader elected, node caught up) and for one write.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Cluster {
    processes: ProcessCluster,
    /// A client of every node, retrying for up to [`WAIT`].
    pub client: Client,
}

impl Cluster {
    /// `n` nodes with ids 1..=n and the same `--peers`, started in the given order.
    pub fn start_in_order(n: u64, order: &[u64], extra: &[&str]) -> Self {
        let spec = Spec::new(env!("CARGO_BIN_EXE_raft3d"), n)
            .args(TEST_RAFT_TIMINGS)
            .args(extra);
        let mut processes = ProcessCluster::plan(spec).expect("cluster planned");
        for &id in order {
            processes.restart(id).expect("node starts");
        }
        let client = processes.client_with(Self::policy()).expect("client");
        Self { processes, client }
    }

    /// `n` new nodes made by `raft3d restore` of `backup`, started together.
    pub fn restored(n: u64, backup: &std::path::Path) -> Self {
        let spec = Spec::new(env!("CARGO_BIN_EXE_raft3d"), n).args(TEST_RAFT_TIMINGS);
        let mut processes = ProcessCluster::plan(spec).expect("cluster planned");
        processes.restore_from(backup).expect("restored");
        processes.start_all().expect("nodes start");
        let client = processes.client_with(Self::policy()).expect("client");
        Self { processes, client }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            deadline: WAIT,
            request_timeout: Duration::from_secs(8),
            ..RetryPolicy::default()
        }
    }

    pub fn start(n: u64, extra: &[&str]) -> Self {
        let order: Vec<u64> = (1..=n).collect();
        Self::start_in_order(n, &order, extra)
    }

    /// Adds a node that is started without `--peers` (to be joined with `add-node`).
    pub fn add_unjoined_node(&mut self) -> u64 {
        self.processes.add_node().expect("node added")
    }

    pub fn node(&self, id: u64) -> &NodeProcess {
        self.processes.node(id).expect("a node of this cluster")
    }

    /// SIGKILL, then reap.
    pub async fn kill(&mut self, id: u64) {
        self.processes.kill(id).await.expect("node killed");
    }

    /// Starts a killed node again on its data directory with its original flags.
    pub fn restart(&mut self, id: u64) {
        self.processes.restart(id).expect("node restarts");
    }

    /// Kills a node and deletes everything in its data directory.
    pub async fn wipe(&mut self, id: u64) {
        self.processes.wipe(id).await.expect("node wiped");
    }

    /// A client of every node with `policy` and the cluster's admin token.
    pub fn client_with(&self, policy: RetryPolicy) -> Client {
        self.processes.client_with(policy).expect("client")
    }

    /// The cluster's admin token (`raft3d init`'s `admin.token`).
    pub fn admin_token(&self) -> String {
        self.processes
            .admin_token()
            .expect("the cluster has an admin token")
    }

    pub fn live_ids(&self) -> Vec<u64> {
        self.processes.running_ids()
    }

    /// Node `id`'s own view of the cluster as JSON (what API clients see), if it answers.
    pub async fn view(&self, id: u64) -> Option<Value> {
        self.processes.view(id).await.map(|view| as_json(&view))
    }

    /// Waits until a leader is elected (the one definition: `raft3d_launcher::leader`).
    pub async fn wait_for_leader(&self) -> u64 {
        match self.processes.wait_for_leader(WAIT).await {
            Ok(leader) => leader.id,
            Err(e) => self.fail(e),
        }
    }

    /// Waits for a leader other than `old`.
    pub async fn wait_for_new_leader(&self, old: u64) -> u64 {
        match self.processes.wait_for_new_leader(old, WAIT).await {
            Ok(leader) => leader.id,
            Err(e) => self.fail(e),
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) -> Value {
        match self.processes.wait_applied(id, index, WAIT).await {
            Ok(view) => as_json(&view),
            Err(e) => self.fail(e),
        }
    }

    /// One request to one node, no redirect following, no retry. `key: None` sends no
    /// `Idempotency-Key`.
    pub async fn raw(
        &self,
        method: Method,
        id: u64,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let call = call(method, path, body, key);
        let answer = self
            .client
            .once(&self.node(id).url(), &call)
            .await
            .unwrap_or_else(|e| panic!("{path} on node {id}: {e}"));
        let body = json_of(&answer);
        (answer.status, answer.headers, body)
    }

    /// A write as a careful client does it (`raft3d-client`): start at node `via`, follow
    /// `307`s, wait out `503`s, move on from dead nodes, all with the same
    /// `Idempotency-Key`, until a definite answer or [`WAIT`].
    pub async fn write(
        &self,
        via: u64,
        path: &str,
        body: &Value,
        key: &str,
    ) -> (StatusCode, Value) {
        let call = call(Method::POST, path, Some(body), Some(key));
        match self.client.execute_from(&self.node(via).url(), &call).await {
            Ok(answer) => (answer.status, json_of(&answer)),
            Err(ClientError::Api {
                status, problem, ..
            }) => (
                StatusCode::from_u16(status).expect("a status the server sent"),
                serde_json::to_value(problem).expect("a problem is JSON"),
            ),
            Err(e) => self.fail(format!("write to {path} via node {via}: {e}")),
        }
    }

    /// A linearizable (default) or stale read from one node.
    pub async fn get(&self, id: u64, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.raw(Method::GET, id, path, None, None).await;
        (status, body)
    }

    /// Everything node `id` has logged so far (over all its restarts), colours stripped.
    pub fn log(&self, id: u64) -> String {
        self.processes.log(id)
    }

    /// Fails the test with every node's last log lines.
    fn fail(&self, why: impl std::fmt::Display) -> ! {
        self.processes.dump_logs(25);
        panic!("{why}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.processes.dump_logs(25);
        }
    }
}

fn call(method: Method, path: &str, body: Option<&Value>, key: Option<&str>) -> Call {
    let call = Call::new(method, path);
    let call = match body {
        Some(body) => call.json(body).expect("JSON body"),
        None => call,
    };
    call.with_idempotency_key(key.map(str::to_owned))
}

fn as_json(view: &ClusterView) -> Value {
    serde_json::to_value(view).expect("a cluster view is JSON")
}

/// The answer's JSON body (`null` when it has none).
fn json_of(answer: &Answer) -> Value {
    answer.json().unwrap_or(Value::Null)
}

/// Runs `raft3d <args>` with `token` in `RAFT3D_TOKEN`; returns (exit code, stdout,
/// stderr).
pub async fn raft3d<I, S>(token: &str, args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_raft3d"));
    command.env("RAFT3D_TOKEN", token).args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("raft3d runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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
