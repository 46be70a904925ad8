//! Log compaction and catching up from a snapshot.

use crate::harness::{ids, printer, Cluster};
use reqwest::StatusCode;

/// Enough writes for several snapshots, with the follower's last acknowledged index far
/// past the purge point (the case that once made the leader replicate after a gap).
const WRITES: usize = 800;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_data_dir_was_wiped_is_rebuilt_from_a_snapshot() {
    // Arrange: a small snapshot threshold, and enough writes to compact the log.
    let mut cluster = Cluster::start(3, &["--snapshot-threshold", "300"]);
    let leader = cluster.wait_for_leader().await;
    for n in 0..WRITES {
        let (status, _) = cluster
            .write(
                leader,
                "/api/v1/printers",
                &printer(&format!("p{n:03}")),
                &format!("k{n}"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let view = cluster.view(leader).await.expect("leader view");
    assert!(
        view["snapshot_index"].as_u64().is_some(),
        "no snapshot built: {view}"
    );
    assert!(
        view["purged_index"].as_u64().is_some(),
        "log never purged: {view}"
    );

    // Act: wipe a follower and start it again, empty.
    let follower = (1..=3).find(|id| *id != leader).expect("follower");
    cluster.wipe(follower).await;
    cluster.restart(follower);

    // Assert: it catches up (the log it needs is gone: only a snapshot can do it).
    let applied = cluster.view(leader).await.expect("view")["applied_index"]
        .as_u64()
        .expect("applied");
    let rebuilt = cluster.wait_applied(follower, applied).await;
    assert!(
        rebuilt["snapshot_index"].as_u64().is_some(),
        "follower has no snapshot: {rebuilt}"
    );
    let (_, headers, stale) = cluster
        .raw(
            reqwest::Method::GET,
            follower,
            "/api/v1/printers?consistency=stale",
            None,
            None,
        )
        .await;
    let (_, paged) = cluster
        .get(follower, "/api/v1/printers?consistency=stale&limit=1000")
        .await;
    assert_eq!(
        ids(&stale).len(),
        WRITES,
        "whole list at {:?}, a page holds {}, the follower: {rebuilt}",
        headers.get("x-raft3d-index"),
        ids(&paged).len()
    );
    let leader_view = cluster.view(leader).await.expect("view");
    if leader_view["applied_index"] == rebuilt["applied_index"] {
        assert_eq!(leader_view["state_digest"], rebuilt["state_digest"]);
    }
    // Its change stream holds nothing from before the snapshot: an old position gets
    // `reset` (read the lists again), the leader's goes on from it.
    let reset = first_event(&cluster, follower).await;
    assert_eq!(reset.kind, "reset", "{reset:?}");
    let first = first_event(&cluster, leader).await;
    // The leader compacted its log but kept its journal: it resumes, or says reset only
    // if its 8 MiB window has moved past (800 writes are far below that).
    assert_eq!(first.kind, "printer.created", "{first:?}");
    // And it keeps replicating afterwards.
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("after"), "k-after")
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = cluster.get(follower, "/api/v1/printers/after").await;
    assert_eq!(status, StatusCode::OK);
}

/// The first event node `id` streams after position 1.
async fn first_event(cluster: &Cluster, id: u64) -> raft3d_client::ChangeEvent {
    let mut stream = cluster
        .client
        .events(&cluster.node(id).url(), Some("1"))
        .await
        .expect("a stream");
    stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("a well-formed stream")
        .expect("an event")
}
