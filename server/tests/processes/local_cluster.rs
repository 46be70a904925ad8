//! `raft3d cluster` (and so every `ProcessCluster`): the nodes it starts do not outlive
//! it, even when it is SIGKILLed and cannot clean up (`serve --stop-with-parent`).

use raft3d_launcher::{eventually, ports};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn nodes_of_a_local_cluster_stop_when_their_launcher_is_killed() {
    let (http, raft) = (ports::free_port(), ports::free_port());
    let data = tempfile::tempdir().expect("temp dir");
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_raft3d"))
        .args(["cluster", "--nodes", "1"])
        .args([
            "--http-port",
            &http.to_string(),
            "--raft-port",
            &raft.to_string(),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("raft3d cluster starts");
    let url = format!("http://127.0.0.1:{http}");
    let leader =
        raft3d_launcher::leader::wait_for(std::slice::from_ref(&url), Duration::from_secs(30))
            .await;
    assert!(
        leader.is_ok(),
        "the one-node cluster never served: {leader:?}"
    );

    launcher.kill().expect("SIGKILL the launcher");
    launcher.wait().expect("reaped");

    let client = raft3d_client::Client::new([url.clone()]).expect("client");
    let gone = eventually(
        "the orphaned node stops",
        Duration::from_secs(10),
        || async {
            match client.cluster_at(&url).await {
                Err(e) if e.outcome_unknown() => Ok(()),
                other => Err(format!("node still answers: {other:?}")),
            }
        },
    )
    .await;
    assert!(gone.is_ok(), "{gone:?}");
}
