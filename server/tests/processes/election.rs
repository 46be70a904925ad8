//! Forming a cluster, and what followers tell clients.

use crate::harness::{ids, printer, Cluster};
use app::api::{Role, LEADER_ID_HEADER};
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_cluster_elects_one_leader_whatever_the_start_order() {
    // Arrange: node 3 first, then 1, then 2 — no node is special.
    let cluster = Cluster::start_in_order(3, &[3, 1, 2], &[]);

    // Act
    let leader = cluster.wait_for_leader().await;

    // Assert: every node agrees, is ready and healthy.
    for id in 1..=3 {
        let view = cluster.view(id).await.expect("cluster view");
        assert_eq!(view["leader_id"], leader, "node {id}");
        assert_eq!(view["members"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            cluster.get(id, "/readyz").await.0,
            StatusCode::OK,
            "node {id} ready"
        );
        assert_eq!(
            cluster.get(id, "/healthz").await.0,
            StatusCode::OK,
            "node {id} healthy"
        );
    }
    let leaders = {
        let mut n = 0;
        for id in 1..=3 {
            n +=
                usize::from(cluster.view(id).await.expect("view")["role"] == Role::Leader.as_str());
        }
        n
    };
    assert_eq!(leaders, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_writes_with_307_to_the_leader() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    // Until the follower has applied the entry that records the leader's client URL it
    // answers 503 (retry) instead: that is not what this test is about.
    let knows_the_leader_url = raft3d_launcher::eventually(
        "the follower knows the leader's URL",
        crate::harness::WAIT,
        || async {
            match cluster.view(follower).await {
                Some(view) if view["leader_url"].is_string() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(knows_the_leader_url.is_ok(), "{knows_the_leader_url:?}");

    let (status, headers, body) = cluster
        .raw(
            Method::POST,
            follower,
            "/api/v1/printers?x=1",
            Some(&printer("p1")),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    let leader_url = cluster.node(leader).url();
    assert_eq!(
        headers["location"],
        format!("{leader_url}/api/v1/printers?x=1").as_str()
    );
    assert_eq!(headers[LEADER_ID_HEADER], leader.to_string().as_str());
    assert_eq!(body["leader_id"], leader);
    assert_eq!(body["leader_url"], leader_url.as_str());
    // Nothing was written by the follower…
    assert!(ids(&cluster.get(leader, "/api/v1/printers").await.1).is_empty());
    // …and following the redirect by hand creates the printer.
    let (status, _, _) = cluster
        .raw(
            Method::POST,
            leader,
            "/api/v1/printers?x=1",
            Some(&printer("p1")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_the_leader_is_visible_on_every_node_at_once() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;

    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("p1"), "k-p1")
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Linearizable reads on followers: no polling needed, the write returned already.
    for id in 1..=3 {
        let (status, body) = cluster.get(id, "/api/v1/printers/p1").await;
        assert_eq!(status, StatusCode::OK, "node {id}");
        assert_eq!(body["model"], "MK4", "node {id}");
    }
    // Stale reads catch up on their own.
    for id in 1..=3 {
        let deadline = std::time::Instant::now() + crate::harness::WAIT;
        while cluster
            .get(id, "/api/v1/printers/p1?consistency=stale")
            .await
            .0
            != StatusCode::OK
        {
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} never applied the write"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
