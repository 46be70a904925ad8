//! A voter whose data directory was wiped has forgotten its vote and its log: it must
//! not help elect a leader that lacks acknowledged writes. It comes back with a new
//! incarnation, its peers refuse its votes and answers, and the leader takes it back as
//! a learner and promotes it once it has caught up (`raft3d::members`).

use crate::harness::{ids, printer, Cluster, WAIT};
use app::api::Role;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The member record of node `id` in a cluster view.
fn member(view: &Value, id: u64) -> Value {
    view["members"]
        .as_array()
        .and_then(|members| members.iter().find(|m| m["id"] == id))
        .cloned()
        .unwrap_or_default()
}

/// Waits until `check` holds for the leader's view of the cluster.
async fn wait_for_view(cluster: &Cluster, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let leader = cluster.wait_for_leader().await;
        if let Some(view) = cluster.view(leader).await.filter(|v| check(v)) {
            return view;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_cannot_elect_a_leader_that_lacks_an_acknowledged_write() {
    let mut cluster = Cluster::start(3, &["--write-timeout-ms", "2000"]);
    let view = wait_for_view(&cluster, "every incarnation recorded", |v| {
        (1..=3).all(|id| member(v, id)["incarnation"].is_string())
    })
    .await;
    let a = view["node_id"].as_u64().expect("leader id");
    let others: Vec<u64> = (1..=3).filter(|id| *id != a).collect();
    let (b, c) = (others[0], others[1]);
    let b_incarnation = member(&view, b)["incarnation"].clone();

    // C down with its disk; E acknowledged by A and B.
    cluster.kill(c).await;
    let (status, _) = cluster
        .write(a, "/api/v1/printers", &printer("E"), "k-e")
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // B loses its disk, A goes down; B (empty) and C (without E) come up.
    cluster.wipe(b).await;
    cluster.kill(a).await;
    cluster.restart(b);
    cluster.restart(c);

    // Neither may lead: C lacks E, and B's vote is not B's any more. Several election
    // timeouts (500-1000 ms here) pass; a write must not be acknowledged.
    let quiet_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < quiet_until {
        for id in [b, c] {
            let view = cluster.view(id).await.unwrap_or_default();
            assert_ne!(
                view["role"],
                Role::Leader.as_str(),
                "node {id} became leader: {view}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _, _) = cluster
        .raw(
            reqwest::Method::POST,
            c,
            "/api/v1/printers",
            Some(&printer("F")),
            Some("k-f"),
        )
        .await;
    assert_ne!(
        status,
        StatusCode::CREATED,
        "a write was acknowledged without E"
    );

    // A is back: A and C elect a leader with E, and B is taken back: a learner first,
    // then a voter again under its new incarnation.
    cluster.restart(a);
    let view = wait_for_view(&cluster, "B a voter again with a new incarnation", |v| {
        let b = member(v, b);
        b["voter"] == true && b["rejoining"] == false && b["incarnation"] != b_incarnation
    })
    .await;
    assert!(member(&view, b)["incarnation"].is_string(), "{view}");
    for id in 1..=3 {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, list) = cluster.get(id, "/api/v1/printers?consistency=stale").await;
            if ids(&list).contains(&"E".to_owned()) {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} never had E: {list}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
