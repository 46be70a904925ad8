//! A node whose disk starts failing (a log append or fsync errors: disk full, I/O error)
//! stops serving as if healthy: `/readyz` fails and the node ends with an error, so its
//! supervisor restarts it.

use crate::SimCluster;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_makes_the_node_unready_and_exit_with_an_error() {
    let mut cluster = SimCluster::start(1).await;
    cluster.wait_for_leader().await;
    assert!(cluster.create_printer("before").await);

    cluster.nodes[0].disks.fail();
    let url = format!("{}/api/v1/printers", cluster.nodes[0].url());
    let body = serde_json::json!({"id": "after", "company": "Prusa", "model": "MK4"});
    let answer = cluster.client.post(url).json(&body).send().await;
    let status = answer.map(|a| a.status());
    assert!(
        !matches!(status, Ok(StatusCode::CREATED)),
        "a write was acknowledged by a failing disk"
    );

    let ready_url = format!("{}/readyz", cluster.nodes[0].url());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = cluster
            .client
            .get(&ready_url)
            .send()
            .await
            .expect("readyz answers");
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            let why = ready.text().await.unwrap_or_default();
            assert!(why.contains("Raft core stopped"), "{why}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {}",
            ready.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let node = cluster.nodes[0].node.take().expect("running");
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        node.run_until(std::future::pending()),
    )
    .await
    .expect("the node ends on its own");
    let error = ended.expect_err("it ends with an error").to_string();
    assert!(error.contains("Raft core stopped"), "{error}");
}

/// The leader's disk stalls in the middle of its log syncs: writes still commit, on the
/// followers' disks (a majority of durable copies without the leader's), instead of
/// waiting for the leader's fsync (vendor/README.md, ninth change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_on_the_followers_while_the_leaders_disk_stalls() {
    let cluster = SimCluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    assert!(cluster.create_printer("before").await);

    cluster.nodes[leader].disks.stall_log_syncs();
    let started = Instant::now();
    // Bounded: on a core that waits for the leader's flush, the writes hang.
    let writes = async {
        [
            cluster.create_printer("during-1").await,
            cluster.create_printer("during-2").await,
        ]
    };
    let acknowledged = tokio::time::timeout(Duration::from_secs(15), writes)
        .await
        .unwrap_or([false, false]);
    let took = started.elapsed();
    // Resumed before anything else: a stalled log writer would hold up shutdown.
    cluster.nodes[leader].disks.resume_log_syncs();
    assert_eq!(
        acknowledged,
        [true, true],
        "writes waited for the leader's stalled disk ({took:?})"
    );
    assert_eq!(cluster.wait_for_leader().await, leader, "the leader stayed");
    let held = cluster.printers(leader).await;
    for id in ["before", "during-1", "during-2"] {
        assert!(held.contains(&id.to_owned()), "{id} missing: {held:?}");
    }
}
