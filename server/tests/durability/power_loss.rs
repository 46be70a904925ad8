//! A power cut on every node at once loses nothing the cluster acknowledged: no write
//! answered `201`, no vote, no membership change. It fails if a commit that must be
//! durable (a log append, a vote, a membership entry) is made without fsync.

use crate::SimCluster;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Printers one client creates per round, one after another.
const WRITES_PER_CLIENT: usize = 25;

/// Creates printers `{prefix}-0..`; returns those acknowledged.
async fn writer(cluster: &SimCluster, prefix: String) -> Vec<String> {
    let mut acked = Vec::new();
    for n in 0..WRITES_PER_CLIENT {
        let id = format!("{prefix}-{n}");
        if cluster.create_printer(&id).await {
            acked.push(id);
        }
    }
    acked
}

/// The highest term any running node reports.
async fn max_term(cluster: &SimCluster) -> u64 {
    let mut max = 0;
    for index in 0..cluster.nodes.len() {
        if let Some(view) = cluster.view(index).await {
            max = max.max(view["term"].as_u64().unwrap_or(0));
        }
    }
    max
}

/// Waits until every running node holds every acknowledged printer (linearizable reads).
async fn assert_all_held(cluster: &SimCluster, acked: &[String], running: &[usize]) {
    for index in running {
        let deadline = Instant::now() + crate::WAIT;
        loop {
            let held = cluster.printers(*index).await;
            let lost: Vec<&String> = acked.iter().filter(|id| !held.contains(id)).collect();
            if lost.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} lost {} of {} acknowledged creates after a power cut, e.g. {:?}",
                index + 1,
                lost.len(),
                acked.len(),
                &lost[..lost.len().min(5)]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_on_every_node_lose_no_acknowledged_write_vote_or_membership_change() {
    let mut cluster = SimCluster::start(3).await;
    let mut acked = Vec::new();
    for round in 0..3 {
        cluster.wait_for_leader().await;
        let (a, b, c, d) = tokio::join!(
            writer(&cluster, format!("r{round}a")),
            writer(&cluster, format!("r{round}b")),
            writer(&cluster, format!("r{round}c")),
            writer(&cluster, format!("r{round}d")),
        );
        acked.extend([a, b, c, d].into_iter().flatten());
        let term_before = max_term(&cluster).await;

        cluster.power_cut_and_reboot().await;

        cluster.wait_for_leader().await;
        // Every vote was durable: the restarted nodes cannot elect a leader in a term
        // they already used (a lost vote would let them vote again in an old term).
        let term_after = max_term(&cluster).await;
        assert!(
            term_after > term_before,
            "round {round}: term {term_after} after the cut, {term_before} before"
        );
        assert_all_held(&cluster, &acked, &[0, 1, 2]).await;
    }
    assert!(
        acked.len() >= 150,
        "too few acknowledged writes: {}",
        acked.len()
    );

    // A membership change acknowledged before the cut survives it.
    let leader = cluster.wait_for_leader().await;
    let removed = if leader == 2 { 1 } else { 2 };
    let url = format!(
        "{}/api/v1/cluster/nodes/{}",
        cluster.nodes[leader].url(),
        removed + 1
    );
    let answer = cluster
        .client
        .delete(url)
        .send()
        .await
        .expect("delete sent");
    assert!(answer.status().is_success(), "{}", answer.status());
    cluster.retire(removed).await;
    cluster.power_cut_and_reboot().await;
    let leader = cluster.wait_for_leader().await;
    let view: Value = cluster.view(leader).await.unwrap_or_default();
    let members: Vec<u64> = view["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert!(
        !members.contains(&(removed as u64 + 1)),
        "the removed node is back: {view}"
    );
    let running: Vec<usize> = (0..3).filter(|i| *i != removed).collect();
    assert_all_held(&cluster, &acked, &running).await;
}

/// Creates `count` printers `{prefix}-0..` from four clients at once; returns those
/// acknowledged.
async fn write_round(cluster: &SimCluster, prefix: &str) -> Vec<String> {
    let (a, b, c, d) = tokio::join!(
        writer(cluster, format!("{prefix}a")),
        writer(cluster, format!("{prefix}b")),
        writer(cluster, format!("{prefix}c")),
        writer(cluster, format!("{prefix}d")),
    );
    [a, b, c, d].into_iter().flatten().collect()
}

/// Snapshots are files of their own (`store::snapshot_files`): one built, or received by
/// a node that was behind the purged log, must be whole after a power cut, or the next
/// node to catch up from it never does. Fails if a snapshot file is made current before
/// it and its directory entry are synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_built_and_received_survive_power_cuts() {
    // Every 30 entries a snapshot, and the log purged behind it.
    let mut cluster = SimCluster::start_with(3, Some(30)).await;
    let leader = cluster.wait_for_leader().await;
    let behind = (leader + 1) % 3;
    cluster.retire(behind).await;
    let mut acked = write_round(&cluster, "s1").await;
    // Back, it finds the entries it lacks purged: it catches up from a snapshot.
    cluster.boot(behind).await;
    assert_all_held(&cluster, &acked, &[0, 1, 2]).await;

    cluster.power_cut_and_reboot().await;
    cluster.wait_for_leader().await;
    assert_all_held(&cluster, &acked, &[0, 1, 2]).await;

    // Each node's current snapshot survived the cut: whichever leads now sends its own
    // to a node that falls behind again.
    let leader = cluster.wait_for_leader().await;
    let behind = (leader + 2) % 3;
    cluster.retire(behind).await;
    acked.extend(write_round(&cluster, "s2").await);
    cluster.power_cut_and_reboot().await;
    cluster.wait_for_leader().await;
    cluster.boot(behind).await;
    assert_all_held(&cluster, &acked, &[0, 1, 2]).await;
    assert!(
        acked.len() >= 150,
        "too few acknowledged writes: {}",
        acked.len()
    );
}
