//! Adding a node that never answers has a deadline: the client hears why, the node stays
//! a learner (it does not count for quorum), and the cluster keeps writing.

use crate::helpers::spawn_node;
use reqwest::StatusCode;

#[tokio::test]
async fn adding_an_unreachable_node_gives_up_after_a_deadline_and_leaves_a_learner() {
    let node = spawn_node().await;
    let nobody = format!("127.0.0.1:{}", raft3d_launcher::ports::free_port());
    let started = std::time::Instant::now();
    let answer = node
        .client
        .post(node.url("/api/v1/cluster/nodes"))
        .json(&serde_json::json!({"id": 2, "raft_addr": nobody}))
        .timeout(std::time::Duration::from_secs(40))
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), StatusCode::CONFLICT);
    let problem: serde_json::Value = answer.json().await.expect("problem");
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/learner-behind"
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "answered before the request timeout"
    );

    let view = node.cluster_view().await;
    let added = view
        .members
        .iter()
        .find(|m| m.id == 2)
        .expect("node 2 listed");
    assert!(!added.voter, "{view:?}");
    let created = node
        .post("/api/v1/printers", r#"{"company":"Prusa","model":"MK4"}"#)
        .await;
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "a learner is not quorum"
    );
}
