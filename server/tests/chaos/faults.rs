//! The fault schedule: what each fault does to the cluster, and when faults overlap.
//!
//! Faults come in rounds: each round injects one fault, holds it for a while, then heals
//! everything. The kinds are dealt from a seeded shuffle of all of them, so even a short
//! run sees most kinds. A node is *impaired* while a fault holds it down, paused, cut off,
//! slowed or wiped; when the cluster can lose more than one node (5 nodes: two), a round
//! that impaired a single node may add more single-node faults on other nodes while the
//! first still holds, never impairing more than `(n - 1) / 2` nodes at once, so a majority
//! can always make progress.

use crate::nodes::Nodes;
use crate::proxy::Link;
use crate::rng::Rng;
use crate::workload::Workload;
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Every kind of fault the schedule injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    SlowLeaderLinks,
    KillLeader,
    KillFollower,
    PauseLeader,
    IsolateLeader,
    IsolateMinority,
    BridgePartition,
    LeaderHearsNobody,
    WipeFollower,
    KillLeaderNearSnapshot,
    /// SIGKILL the leader and start it again at once on its data dir, like a supervisor
    /// with no restart delay: it must not come back as leader of its old term.
    RestartLeaderAtOnce,
    /// A follower left behind until the leader must send it a snapshot; while the
    /// snapshot is on its way the leader and/or the receiver is restarted at once.
    RestartDuringSnapshotInstall,
}

/// Whom a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Leader,
    Follower,
    /// More than one node, or the whole topology: never combined with another fault.
    Several,
}

impl Fault {
    const ALL: [Fault; 12] = [
        Fault::SlowLeaderLinks,
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::IsolateLeader,
        Fault::IsolateMinority,
        Fault::BridgePartition,
        Fault::LeaderHearsNobody,
        Fault::WipeFollower,
        Fault::KillLeaderNearSnapshot,
        Fault::RestartLeaderAtOnce,
        Fault::RestartDuringSnapshotInstall,
    ];

    fn target(self) -> Target {
        match self {
            Fault::KillFollower | Fault::WipeFollower => Target::Follower,
            // A bridge has every node depend on the leader, so it takes the whole budget.
            Fault::IsolateMinority
            | Fault::BridgePartition
            | Fault::RestartDuringSnapshotInstall => Target::Several,
            _ => Target::Leader,
        }
    }

    /// Whether the cluster, as `roles` sees it, has the node this fault needs.
    fn fits(self, roles: &Roles) -> bool {
        match self.target() {
            Target::Leader => roles.leader.is_some(),
            Target::Follower => !roles.followers.is_empty(),
            Target::Several => roles.leader.is_some(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::SlowLeaderLinks => "slow leader links",
            Fault::KillLeader => "kill leader",
            Fault::KillFollower => "kill follower",
            Fault::PauseLeader => "pause leader",
            Fault::IsolateLeader => "isolate leader",
            Fault::IsolateMinority => "isolate minority",
            Fault::BridgePartition => "bridge partition",
            Fault::LeaderHearsNobody => "one-way: leader hears nobody",
            Fault::WipeFollower => "wipe follower",
            Fault::KillLeaderNearSnapshot => "kill leader near a snapshot",
            Fault::RestartLeaderAtOnce => "kill leader and restart it at once",
            Fault::RestartDuringSnapshotInstall => "restart during a snapshot install",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub at_ms: u64,
    /// The fault's kind, then what exactly it did.
    pub fault: String,
    /// Longest time with no linearizable read served by any node, from this fault until
    /// the next one (or the end of the run).
    pub unavailable_ms: u64,
}

/// Who is who when a fault is injected; nodes another fault holds are no one's target.
pub struct Roles {
    pub ids: Vec<u64>,
    leader: Option<u64>,
    /// Every node but the leader and the impaired ones.
    pub followers: Vec<u64>,
    impaired: Vec<u64>,
}

impl Roles {
    async fn now(nodes: &Mutex<Nodes>, impaired: &[u64]) -> Self {
        let nodes = nodes.lock().await;
        let ids = nodes.ids();
        let leader = nodes.leader().await.filter(|l| !impaired.contains(l));
        let followers = ids
            .iter()
            .copied()
            .filter(|id| Some(*id) != leader && !impaired.contains(id))
            .collect();
        Self {
            ids,
            leader,
            followers,
            impaired: impaired.to_vec(),
        }
    }

    pub fn leader(&self) -> u64 {
        self.leader.expect("a fault that fits has a leader")
    }
}

/// What one fault did: the report text and the nodes it holds until the heal.
pub struct Injected {
    detail: String,
    impaired: Vec<u64>,
}

pub fn injected(detail: String, impaired: &[u64]) -> Injected {
    Injected {
        detail,
        impaired: impaired.to_vec(),
    }
}

/// Runs rounds of faults until `stop_at`, each healed before the next.
pub async fn inject_faults(
    nodes: &Mutex<Nodes>,
    rng: &mut Rng,
    workload: &Workload,
    stop_at: Instant,
) -> Vec<FaultRecord> {
    let mut schedule = Schedule {
        nodes,
        workload,
        budget: (nodes.lock().await.ids().len() - 1) / 2,
        records: Vec::new(),
    };
    let mut deck = Vec::new();
    tokio::time::sleep(Duration::from_millis(rng.range(1000, 2000))).await;
    while Instant::now() + Duration::from_secs(6) < stop_at {
        nodes.lock().await.reap_exited();
        if nodes.lock().await.leader().await.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if deck.is_empty() {
            deck = Fault::ALL.to_vec();
            rng.shuffle(&mut deck);
        }
        let fault = deck.pop().expect("the deck was just refilled");
        let hold = Duration::from_millis(rng.range(1200, 3500));
        schedule.round(fault, rng, hold).await;
        tokio::time::sleep(hold).await;
        let mut nodes = nodes.lock().await;
        nodes.heal();
        nodes.reap_exited();
        drop(nodes);
        tokio::time::sleep(Duration::from_millis(rng.range(1500, 3000))).await;
    }
    schedule.records
}

struct Schedule<'a> {
    nodes: &'a Mutex<Nodes>,
    workload: &'a Workload,
    /// How many nodes may be impaired at once: `(n - 1) / 2`.
    budget: usize,
    records: Vec<FaultRecord>,
}

impl Schedule<'_> {
    /// Injects `first`, then, while the budget allows and the coin says so, single-node
    /// faults on other nodes (with the cluster's view of who leads taken anew each time,
    /// so a second "kill leader" hits the leader elected after the first).
    async fn round(&mut self, first: Fault, rng: &mut Rng, hold: Duration) {
        let roles = Roles::now(self.nodes, &[]).await;
        let mut impaired = self.inject(first, &roles, rng, hold).await;
        if first.target() == Target::Several {
            return;
        }
        while impaired.len() < self.budget && rng.range(0, 2) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.range(300, 1500))).await;
            let roles = Roles::now(self.nodes, &impaired).await;
            let fitting: Vec<Fault> = Fault::ALL
                .into_iter()
                .filter(|f| f.target() != Target::Several && f.fits(&roles))
                .collect();
            let Some(&fault) = rng.pick(&fitting) else {
                return;
            };
            impaired.extend(self.inject(fault, &roles, rng, hold).await);
        }
    }

    /// Injects one fault, records it, and returns the nodes it impairs.
    async fn inject(
        &mut self,
        fault: Fault,
        roles: &Roles,
        rng: &mut Rng,
        hold: Duration,
    ) -> Vec<u64> {
        let at_ms = self.workload.started.elapsed().as_millis() as u64;
        let nodes = self.nodes;
        let follower = rng.pick(&roles.followers).copied();
        let done = match fault {
            Fault::SlowLeaderLinks => slow_links(nodes, roles).await,
            Fault::KillLeader => kill(nodes, roles.leader()).await,
            Fault::KillFollower => kill(nodes, follower.expect("fits")).await,
            Fault::PauseLeader => pause(nodes, roles.leader(), hold).await,
            Fault::IsolateLeader => isolate(nodes, rng, roles, vec![roles.leader()]).await,
            Fault::IsolateMinority => {
                let minority = roles.followers.iter().copied().take(self.budget).collect();
                isolate(nodes, rng, roles, minority).await
            }
            Fault::BridgePartition => bridge(nodes, roles).await,
            Fault::LeaderHearsNobody => hears_nobody(nodes, roles).await,
            Fault::WipeFollower => wipe(nodes, follower.expect("fits")).await,
            Fault::KillLeaderNearSnapshot => kill_near_snapshot(nodes, roles.leader()).await,
            Fault::RestartLeaderAtOnce => {
                let leader = roles.leader();
                restart_at_once(nodes, &[leader]).await;
                injected(
                    format!("SIGKILL node {leader}, start it again at once"),
                    &[leader],
                )
            }
            Fault::RestartDuringSnapshotInstall => {
                let receiver = follower.expect("fits");
                crate::snapshot_install::inject(nodes, rng, roles, receiver, self.budget).await
            }
        };
        assert!(
            self.impaired_ok(&roles.impaired, &done.impaired),
            "{fault} would impair {:?} on top of {:?}",
            done.impaired,
            roles.impaired
        );
        let fault = format!("{fault}: {}", done.detail);
        println!("chaos: {at_ms:>6} ms  {fault}");
        self.records.push(FaultRecord {
            at_ms,
            fault,
            unavailable_ms: 0,
        });
        done.impaired
    }

    fn impaired_ok(&self, before: &[u64], added: &[u64]) -> bool {
        before.len() + added.len() <= self.budget.max(1)
    }
}

async fn kill(nodes: &Mutex<Nodes>, id: u64) -> Injected {
    nodes.lock().await.kill(id).await;
    injected(format!("SIGKILL node {id}"), &[id])
}

/// SIGKILLs `ids` and starts them again on their data dirs at once.
pub async fn restart_at_once(nodes: &Mutex<Nodes>, ids: &[u64]) {
    let mut nodes = nodes.lock().await;
    for id in ids {
        nodes.kill(*id).await;
    }
    for id in ids {
        nodes.restart(*id);
    }
}

async fn pause(nodes: &Mutex<Nodes>, id: u64, hold: Duration) -> Injected {
    nodes.lock().await.signal(id, true);
    injected(format!("SIGSTOP node {id} for at least {hold:?}"), &[id])
}

async fn wipe(nodes: &Mutex<Nodes>, id: u64) -> Injected {
    let mut nodes = nodes.lock().await;
    nodes.wipe(id).await;
    nodes.restart(id);
    injected(format!("wipe node {id}'s data dir and restart it"), &[id])
}

/// Cuts `minority` off from every other node.
async fn isolate(
    nodes: &Mutex<Nodes>,
    rng: &mut Rng,
    roles: &Roles,
    minority: Vec<u64>,
) -> Injected {
    // Half the time a silent network, half the time one that resets connections.
    let cut = *rng
        .pick(&[Link::Blackhole, Link::Reset])
        .unwrap_or(&Link::Blackhole);
    let links = nodes.lock().await.links.clone();
    for a in &minority {
        for b in roles.ids.iter().filter(|b| !minority.contains(b)) {
            links.set(*a, *b, cut);
            links.set(*b, *a, cut);
        }
    }
    injected(
        format!("partition {minority:?} from the rest ({cut:?})"),
        &minority,
    )
}

/// Two halves that only talk through one bridge node (the leader, to make it hard).
async fn bridge(nodes: &Mutex<Nodes>, roles: &Roles) -> Injected {
    let (left, right) = roles.followers.split_at(roles.followers.len() / 2);
    let links = nodes.lock().await.links.clone();
    for a in left {
        for b in right {
            links.set(*a, *b, Link::Blackhole);
            links.set(*b, *a, Link::Blackhole);
        }
    }
    let leader = roles.leader();
    injected(
        format!("{left:?} | {right:?} only via node {leader}"),
        &[leader],
    )
}

async fn hears_nobody(nodes: &Mutex<Nodes>, roles: &Roles) -> Injected {
    let leader = roles.leader();
    let links = nodes.lock().await.links.clone();
    for other in roles.ids.iter().filter(|id| **id != leader) {
        links.set(*other, leader, Link::Blackhole);
    }
    injected(format!("nothing reaches node {leader}"), &[leader])
}

async fn slow_links(nodes: &Mutex<Nodes>, roles: &Roles) -> Injected {
    let leader = roles.leader();
    let links = nodes.lock().await.links.clone();
    for other in roles.ids.iter().filter(|id| **id != leader) {
        links.set(leader, *other, Link::Delay(Duration::from_millis(250)));
    }
    injected(
        format!("node {leader}'s outgoing Raft traffic delayed by 250 ms"),
        &[leader],
    )
}

/// Waits (at most 3 s) until the leader is within 10 entries of its next snapshot
/// (the suite's nodes snapshot every 300 entries), then SIGKILLs it.
async fn kill_near_snapshot(nodes: &Mutex<Nodes>, leader: u64) -> Injected {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut since = 0;
    while Instant::now() < deadline {
        let view = nodes.lock().await.view(leader).await;
        since = view
            .and_then(|v| {
                let last = v["last_log_index"].as_u64()?;
                Some(last.saturating_sub(v["snapshot_index"].as_u64().unwrap_or(0)))
            })
            .unwrap_or(0);
        if since >= crate::nodes::SNAPSHOT_THRESHOLD - 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes.lock().await.kill(leader).await;
    injected(
        format!("SIGKILL node {leader}, {since} entries after its last snapshot"),
        &[leader],
    )
}
