//! The cluster under test: a [`ProcessCluster`] (real `raft3d serve` processes, from
//! `raft3d-launcher`) whose Raft traffic goes through the proxies, plus the suite's
//! bookkeeping. A process that ends without the suite killing it is recorded as an
//! [`Exit`]: a node must never die on its own, whatever the faults.

use crate::proxy::{self, Links};
use raft3d_launcher::{ProcessCluster, Spec, TEST_RAFT_TIMINGS};
use serde_json::Value;
use std::process::ExitStatus;

/// Every node snapshots (and purges its log down to a tenth of this) after this many
/// entries: small, so snapshots and snapshot transfers happen many times a run.
pub const SNAPSHOT_THRESHOLD: u64 = 300;

/// A node process that ended on its own (a crash, a panic, a fatal error).
#[derive(Debug)]
pub struct Exit {
    pub node: u64,
    pub status: ExitStatus,
    /// The last lines of its log when the exit was noticed (the log is gone after the run).
    pub log_tail: String,
}

pub struct Nodes {
    processes: ProcessCluster,
    pub links: Links,
    /// Every exit noticed so far, oldest first.
    pub exits: Vec<Exit>,
}

impl Nodes {
    /// Starts a proxy in front of every node's Raft port, then `n` nodes that dial each
    /// other through the proxies.
    pub async fn start(n: u64) -> Self {
        let spec = Spec::new(env!("CARGO_BIN_EXE_raft3d"), n)
            .args(TEST_RAFT_TIMINGS)
            .args(["--snapshot-threshold", &SNAPSHOT_THRESHOLD.to_string()])
            .args(["--write-timeout-ms", "3000", "--log", "warn"]);
        let mut processes = ProcessCluster::plan(spec).expect("cluster planned");
        let links = Links::default();
        for id in processes.ids() {
            let raft_port = processes.node(id).expect("planned").raft_port;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("proxy port");
            let proxy_addr = listener.local_addr().expect("proxy address");
            let target = ([127, 0, 0, 1], raft_port).into();
            tokio::spawn(proxy::run(listener, id, target, links.clone()));
            processes
                .set_peer_addr(id, proxy_addr.to_string())
                .expect("planned");
            let source_ip = proxy::source_ip(id).to_string();
            processes
                .set_node_args(id, vec!["--peer-source-ip".to_owned(), source_ip])
                .expect("planned");
        }
        processes.start_all().expect("nodes start");
        Self {
            processes,
            links,
            exits: Vec::new(),
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.processes.ids()
    }

    pub fn url(&self, id: u64) -> String {
        self.processes.url(id)
    }

    /// The cluster's admin token (`raft3d init`).
    pub fn admin_token(&self) -> Option<String> {
        self.processes.admin_token()
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.processes.node(id).is_ok_and(|n| n.is_running())
    }

    pub async fn kill(&mut self, id: u64) {
        // A node that already died is reaped and recorded first, so the kill cannot hide
        // its exit.
        self.reap_exited();
        if self.is_up(id) {
            let _ = self.processes.kill(id).await;
        }
    }

    /// Records every node process that has ended on its own since the last look; such a
    /// node counts as down (so healing restarts it, as a supervisor would).
    pub fn reap_exited(&mut self) {
        for (node, status) in self.processes.exited().unwrap_or_default() {
            let log_tail = self.processes.log_tail(node, 5);
            self.exits.push(Exit {
                node,
                status,
                log_tail,
            });
        }
    }

    /// Copies every node's log to `dir/node-<id>.log` (the temp dirs go when the run ends).
    pub fn save_logs(&self, dir: &std::path::Path) {
        let _ = self.processes.save_logs(dir);
    }

    pub fn restart(&mut self, id: u64) {
        if !self.is_up(id) {
            let _ = self.processes.restart(id);
        }
    }

    pub async fn wipe(&mut self, id: u64) {
        self.reap_exited();
        let _ = self.processes.wipe(id).await;
    }

    /// SIGSTOP (`stop`) or SIGCONT.
    pub fn signal(&mut self, id: u64, stop: bool) {
        let _ = if stop {
            self.processes.pause(id)
        } else {
            self.processes.resume(id)
        };
    }

    /// Node `id`'s own view as JSON, if it answers.
    pub async fn view(&self, id: u64) -> Option<Value> {
        let view = self.processes.view(id).await?;
        serde_json::to_value(view).ok()
    }

    /// The elected leader, by the launcher's one definition, if any.
    pub async fn leader(&self) -> Option<u64> {
        self.processes.leader().await.map(|leader| leader.id)
    }

    /// Undoes every fault: links healed, paused nodes resumed, dead nodes restarted.
    pub fn heal(&mut self) {
        self.links.heal();
        for id in self.ids() {
            if self.processes.node(id).is_ok_and(|n| n.is_paused()) {
                self.signal(id, false);
            }
            self.restart(id);
        }
    }
}
