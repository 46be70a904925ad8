//! The fault "restart during a snapshot install": a follower is stopped until the leader
//! has purged the log entries it needs, so on its return the leader must send it a
//! snapshot; the links to it are slowed so the transfer takes a while, and while the
//! snapshot is on its way the leader, the receiver or (when the budget allows two) both
//! are SIGKILLed and started again at once.

use crate::faults::{injected, restart_at_once, Injected, Roles};
use crate::nodes::Nodes;
use crate::proxy::Link;
use crate::rng::Rng;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Longest wait for the leader to purge its log past the stopped follower: it snapshots
/// every 300 entries and keeps 30, and a healthy workload appends that many in a few
/// seconds.
const PURGE_WAIT: Duration = Duration::from_secs(15);
/// Each chunk (up to 64 KiB) sent to the receiver waits this long, so a snapshot of a
/// few MB takes a second or more to arrive instead of milliseconds on loopback.
const CHUNK_DELAY: Duration = Duration::from_millis(25);
/// Longest wait for the snapshot to start flowing once the receiver is back.
const TRANSFER_WAIT: Duration = Duration::from_secs(5);
/// More than this sent to the receiver between two polls 10 ms apart is the snapshot:
/// while the leader's log is purged past the receiver, all it can send it otherwise are
/// heartbeats of a few hundred bytes.
const SNAPSHOT_BURST_BYTES: u64 = 8 * 1024;

/// Whom to restart while the snapshot is on its way.
#[derive(Debug, Clone, Copy)]
enum Victims {
    Leader,
    Receiver,
    Both,
}

/// `receiver` is the follower to leave behind; `budget` is how many nodes may be down at
/// once (restarting both the leader and the receiver needs two).
pub async fn inject(
    nodes: &Mutex<Nodes>,
    rng: &mut Rng,
    roles: &Roles,
    receiver: u64,
    budget: usize,
) -> Injected {
    let behind = leave_behind(nodes, roles.leader(), receiver).await;
    let links = nodes.lock().await.links.clone();
    let others: Vec<u64> = roles
        .ids
        .iter()
        .copied()
        .filter(|id| *id != receiver)
        .collect();
    for other in &others {
        links.set(*other, receiver, Link::Delay(CHUNK_DELAY));
    }
    nodes.lock().await.restart(receiver);
    let transfer = wait_for_snapshot(nodes, receiver, &others).await;
    tokio::time::sleep(Duration::from_millis(rng.range(0, 300))).await;

    let progress = match transfer {
        Some((sender, start)) => format!(
            "snapshot from node {sender} in flight ({} KiB sent)",
            (links.sent(sender, receiver) - start) / 1024
        ),
        None => format!("no snapshot transfer seen within {TRANSFER_WAIT:?}"),
    };
    let applied = match index(nodes, receiver, "applied_index").await {
        Some(index) => format!("receiver had applied {index}"),
        None => "receiver not answering".to_owned(),
    };
    let sender = match transfer {
        Some((sender, _)) => Some(sender),
        None => nodes.lock().await.leader().await,
    };
    let victims = victims(rng, sender, receiver, budget);
    restart_at_once(nodes, &victims).await;
    let detail = format!(
        "{behind}; back with its links slowed; {progress}, {applied}: \
         SIGKILL {victims:?} and start again at once"
    );
    injected(detail, &victims)
}

/// Stops `receiver` until the leader's log is purged past the last entry it had;
/// describes how that went.
async fn leave_behind(nodes: &Mutex<Nodes>, leader: u64, receiver: u64) -> String {
    // The leader's last entry is at least the receiver's last (it holds every one it sent).
    let mark = index(nodes, leader, "last_log_index").await.unwrap_or(0);
    nodes.lock().await.kill(receiver).await;
    let purge = match wait_purged_past(nodes, mark).await {
        Some((leader, purged)) => format!("node {leader} purged its log to {purged}"),
        None => format!("no leader purged past it within {PURGE_WAIT:?} (no snapshot needed)"),
    };
    format!("node {receiver} stopped at index {mark}; {purge}")
}

/// The leader (the snapshot's sender), the receiver or, when the budget allows two
/// nodes down at once, both; the receiver alone when no leader is known.
fn victims(rng: &mut Rng, sender: Option<u64>, receiver: u64, budget: usize) -> Vec<u64> {
    let mut choices = vec![Victims::Leader, Victims::Receiver];
    if budget >= 2 {
        choices.push(Victims::Both);
    }
    match (sender, *rng.pick(&choices).expect("not empty")) {
        (Some(leader), Victims::Leader) if leader != receiver => vec![leader],
        (Some(leader), Victims::Both) if leader != receiver => vec![leader, receiver],
        _ => vec![receiver],
    }
}

async fn index(nodes: &Mutex<Nodes>, id: u64, field: &str) -> Option<u64> {
    nodes.lock().await.view(id).await?[field].as_u64()
}

/// Waits until the leader's log is purged past `mark`; returns the leader and its purge
/// index.
async fn wait_purged_past(nodes: &Mutex<Nodes>, mark: u64) -> Option<(u64, u64)> {
    let deadline = Instant::now() + PURGE_WAIT;
    while Instant::now() < deadline {
        // Not `if let … = nodes.lock()…`: the guard would live through the body's lock.
        let leader = nodes.lock().await.leader().await;
        if let Some(leader) = leader {
            let purged = index(nodes, leader, "purged_index").await.unwrap_or(0);
            if purged > mark {
                return Some((leader, purged));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Waits for a burst of bytes towards `receiver`; returns who sends it and how much that
/// node had sent to the receiver before the burst.
async fn wait_for_snapshot(
    nodes: &Mutex<Nodes>,
    receiver: u64,
    senders: &[u64],
) -> Option<(u64, u64)> {
    let links = nodes.lock().await.links.clone();
    let sent = |from: u64| links.sent(from, receiver);
    let mut before: Vec<u64> = senders.iter().map(|s| sent(*s)).collect();
    let deadline = Instant::now() + TRANSFER_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        for (sender, last) in senders.iter().zip(before.iter_mut()) {
            let now = sent(*sender);
            if now - *last > SNAPSHOT_BURST_BYTES {
                return Some((*sender, *last));
            }
            *last = now;
        }
    }
    None
}
