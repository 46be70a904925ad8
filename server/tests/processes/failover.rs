//! Losing nodes: the leader, a minority, a majority.

use crate::harness::{ids, printer, Cluster};
use reqwest::header::RETRY_AFTER;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write_and_the_node_catches_up_after_restart() {
    // Arrange: three acknowledged writes.
    let mut cluster = Cluster::start(3, &[]);
    let old_leader = cluster.wait_for_leader().await;
    for n in 0..3 {
        let (status, _) = cluster
            .write(
                old_leader,
                "/api/v1/printers",
                &printer(&format!("before-{n}")),
                &format!("b{n}"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let old_pid = cluster.node(old_leader).pid();

    // Act: SIGKILL the leader.
    cluster.kill(old_leader).await;
    let new_leader = cluster.wait_for_new_leader(old_leader).await;

    // Assert: nothing acknowledged is lost, and writes continue.
    let survivor = cluster.live_ids()[0];
    let listed = ids(&cluster.get(survivor, "/api/v1/printers").await.1);
    assert_eq!(listed, ["before-0", "before-1", "before-2"]);
    for n in 0..3 {
        let (status, _) = cluster
            .write(
                new_leader,
                "/api/v1/printers",
                &printer(&format!("after-{n}")),
                &format!("a{n}"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // The old leader restarts on its data dir (a new process) and catches up.
    cluster.restart(old_leader);
    assert_ne!(cluster.node(old_leader).pid(), old_pid);
    let leader_view = cluster.view(new_leader).await.expect("leader view");
    let applied = leader_view["applied_index"].as_u64().expect("applied");
    let restarted = cluster.wait_applied(old_leader, applied).await;
    let (_, stale) = cluster
        .get(old_leader, "/api/v1/printers?consistency=stale")
        .await;
    assert_eq!(ids(&stale).len(), 6);
    // Same applied index, same state digest.
    let deadline = Instant::now() + crate::harness::WAIT;
    loop {
        let (a, b) = (
            cluster.view(new_leader).await.expect("v"),
            cluster.view(old_leader).await.expect("v"),
        );
        if a["applied_index"] == b["applied_index"] {
            assert_eq!(a["state_digest"], b["state_digest"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "indexes never met: {a} / {b} / {restarted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_node_cluster_keeps_writing_with_two_nodes_killed() {
    let mut cluster = Cluster::start(5, &[]);
    let leader = cluster.wait_for_leader().await;
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("p0"), "k0")
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Kill the leader and one follower.
    let follower = (1..=5).find(|id| *id != leader).expect("follower");
    cluster.kill(leader).await;
    cluster.kill(follower).await;
    let new_leader = cluster.wait_for_new_leader(leader).await;

    for n in 1..=5 {
        let (status, _) = cluster
            .write(
                new_leader,
                "/api/v1/printers",
                &printer(&format!("p{n}")),
                &format!("k{n}"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for id in cluster.live_ids() {
        assert_eq!(
            ids(&cluster.get(id, "/api/v1/printers").await.1).len(),
            6,
            "node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_writes_fail_fast_and_nothing_is_lost() {
    let mut cluster = Cluster::start(3, &["--write-timeout-ms", "2000"]);
    let leader = cluster.wait_for_leader().await;
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("kept"), "k-kept")
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Kill two nodes: the survivor has no quorum. (It is made to hold the write first:
    // the write's quorum may have been exactly the two nodes about to die.)
    let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let survivor = others[0];
    let applied = cluster.view(leader).await.expect("view")["applied_index"]
        .as_u64()
        .expect("applied");
    cluster.wait_applied(survivor, applied).await;
    cluster.kill(leader).await;
    cluster.kill(others[1]).await;

    // Until its election timeout fires, the survivor still (rightly) names the old
    // leader; once it knows there is none, every write is a fast 503 + Retry-After.
    let deadline = Instant::now() + crate::harness::WAIT;
    while !cluster
        .view(survivor)
        .await
        .is_some_and(|v| v["leader_id"].is_null())
    {
        assert!(
            Instant::now() < deadline,
            "survivor never noticed the leader was gone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for attempt in 0..3 {
        let started = Instant::now();
        let (status, headers, body) = cluster
            .raw(
                Method::POST,
                survivor,
                "/api/v1/printers",
                Some(&printer("lost")),
                None,
            )
            .await;
        let elapsed = started.elapsed();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}: {body}"
        );
        assert!(headers.contains_key(RETRY_AFTER));
        assert!(
            elapsed < Duration::from_secs(5),
            "attempt {attempt} took {elapsed:?}"
        );
    }
    // Local (stale) reads still serve the data; linearizable ones refuse rather than lie.
    let (status, stale) = cluster
        .get(survivor, "/api/v1/printers?consistency=stale")
        .await;
    assert_eq!(
        (status, ids(&stale)),
        (StatusCode::OK, vec!["kept".to_owned()])
    );
    assert_eq!(
        cluster.get(survivor, "/api/v1/printers").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Quorum returns: writes work again and the data is intact.
    cluster.restart(leader);
    cluster.restart(others[1]);
    let leader = cluster.wait_for_leader().await;
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("after"), "k-after")
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let listed = ids(&cluster.get(survivor, "/api/v1/printers").await.1);
    assert!(
        listed.contains(&"kept".to_owned()) && listed.contains(&"after".to_owned()),
        "{listed:?}"
    );
    assert!(
        !listed.contains(&"lost".to_owned()),
        "a refused write must not appear"
    );
}

/// A follower that missed thousands of batched writes catches up after a restart without
/// deposing the leader. In the benchmark's failover run on a 360k-job farm, catch-up
/// appends of several MB timed out again and again and the restarted node started an
/// election of its own (docs/perf.md, "Failover"); at this test's size the code before the
/// fix passed too, so this guards the property, not that case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_without_an_election() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    let follower = cluster
        .live_ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    cluster.kill(follower).await;

    // 64 concurrent writers, so that proposals share entries (up to 64 per entry), with
    // 1 KB of text each: ~10 MB of log for the follower to catch up on.
    let url = cluster.node(leader).url();
    let model = "m".repeat(1000);
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..64 {
        let (client, url, model) = (cluster.client.clone(), url.clone(), model.clone());
        writers.spawn(async move {
            for n in 0..150 {
                let body = serde_json::json!({
                    "id": format!("w{writer}-{n}"), "company": "Prusa", "model": model,
                });
                let call = raft3d_client::Call::post("/api/v1/printers", &body).expect("JSON");
                let answer = client.execute_from(&url, &call).await.expect("write");
                assert_eq!(answer.status, StatusCode::CREATED);
            }
        });
    }
    while let Some(writer) = writers.join_next().await {
        writer.expect("writer");
    }
    let before = cluster.view(leader).await.expect("leader view");

    cluster.restart(follower);
    let applied = before["applied_index"].as_u64().expect("applied index");
    cluster.wait_applied(follower, applied).await;
    // Longer than a restarted node waits before it starts an election (at most 1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for id in cluster.live_ids() {
        let view = cluster.view(id).await.expect("view");
        assert_eq!(
            view["leader_id"].as_u64(),
            Some(leader),
            "node {id}: {view}"
        );
        assert_eq!(view["term"], before["term"], "node {id}: {view}");
    }
    let (_, printers) = cluster
        .get(follower, "/api/v1/printers?consistency=stale")
        .await;
    assert_eq!(ids(&printers).len(), 64 * 150);
}
