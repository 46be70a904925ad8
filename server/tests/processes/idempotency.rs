//! `Idempotency-Key` across nodes and across a leader change.

use crate::harness::Cluster;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_create_sent_to_two_nodes_is_applied_once() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("follower");
    // No id in the body: a second application would create a second printer.
    let body = json!({"company": "Prusa", "model": "XL"});

    let first = cluster
        .write(leader, "/api/v1/printers", &body, "same-key")
        .await;
    let second = cluster
        .write(follower, "/api/v1/printers", &body, "same-key")
        .await;

    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(
        first, second,
        "identical status and body, same generated id"
    );
    let (_, printers) = cluster.get(follower, "/api/v1/printers").await;
    assert_eq!(printers.as_array().map(Vec::len), Some(1));

    let other = cluster
        .write(
            follower,
            "/api/v1/printers",
            &json!({"company": "Prusa", "model": "MINI"}),
            "same-key",
        )
        .await;
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_create_retried_after_a_leader_kill_is_applied_once() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    let body = json!({"company": "Bambu", "model": "X1C"});
    let first = cluster
        .write(leader, "/api/v1/printers", &body, "failover-key")
        .await;
    assert_eq!(first.0, StatusCode::CREATED);

    cluster.kill(leader).await;
    let new_leader = cluster.wait_for_new_leader(leader).await;
    let survivor = cluster
        .live_ids()
        .into_iter()
        .find(|id| *id != new_leader)
        .expect("survivor");
    let retry = cluster
        .write(survivor, "/api/v1/printers", &body, "failover-key")
        .await;

    assert_eq!(first, retry);
    let (_, printers) = cluster.get(new_leader, "/api/v1/printers").await;
    assert_eq!(printers.as_array().map(Vec::len), Some(1));
}
