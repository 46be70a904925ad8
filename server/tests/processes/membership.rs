//! Adding and removing a node with the CLI.

use crate::harness::{ids, printer, Cluster};
use reqwest::StatusCode;
use std::process::Command;

/// Runs `raft3d <args>` with the admin token in `RAFT3D_TOKEN`.
fn raft3d(token: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_raft3d"))
        .env("RAFT3D_TOKEN", token)
        .args(args)
        .output()
        .expect("raft3d runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_added_as_a_voter_catches_up_and_is_removed() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    assert_eq!(
        cluster
            .write(leader, "/api/v1/printers", &printer("p1"), "k1")
            .await
            .0,
        StatusCode::CREATED
    );

    // Add: a node started with no --peers, joined with one command sent to any node.
    let new = cluster.add_unjoined_node();
    let any = format!("http://127.0.0.1:{}", cluster.node(1).http_port);
    let raft_addr = format!("127.0.0.1:{}", cluster.node(new).raft_port);
    let token = cluster.admin_token();
    let output = tokio::task::spawn_blocking({
        let (any, raft_addr, token) = (any.clone(), raft_addr.clone(), token.clone());
        move || {
            raft3d(
                &token,
                &[
                    "add-node",
                    "--cluster",
                    &any,
                    "--id",
                    &new.to_string(),
                    "--raft-addr",
                    &raft_addr,
                ],
            )
        }
    })
    .await
    .expect("add-node ran");
    assert!(
        output.status.success(),
        "add-node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let leader = cluster.wait_for_leader().await;
    let view = cluster.view(leader).await.expect("view");
    let member = view["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"] == new))
        .cloned();
    assert_eq!(
        member.map(|m| m["voter"].clone()),
        Some(serde_json::json!(true)),
        "{view}"
    );
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    while ids(&cluster
        .get(new, "/api/v1/printers?consistency=stale")
        .await
        .1)
        != ["p1"]
    {
        assert!(
            std::time::Instant::now() < deadline,
            "new node never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Remove it again.
    let output = tokio::task::spawn_blocking(move || {
        raft3d(
            &token,
            &["remove-node", "--cluster", &any, "--id", &new.to_string()],
        )
    })
    .await
    .expect("remove-node ran");
    assert!(
        output.status.success(),
        "remove-node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let view = cluster
        .view(cluster.wait_for_leader().await)
        .await
        .expect("view");
    assert_eq!(view["members"].as_array().map(Vec::len), Some(3), "{view}");
    assert_eq!(
        cluster
            .write(leader, "/api/v1/printers", &printer("p2"), "k2")
            .await
            .0,
        StatusCode::CREATED
    );
}
