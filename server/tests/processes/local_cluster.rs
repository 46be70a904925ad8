//! `raft3d cluster` (and so every `ProcessCluster`): the nodes it starts do not outlive
//! it, even when it is SIGKILLed and cannot clean up (`serve --stop-with-parent`).

use raft3d_launcher::{eventually, ports};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `raft3d cluster` of one node on free ports with its data in `data`, and the URL it
/// will serve.
fn one_node_cluster(data: &std::path::Path) -> (Command, String) {
    let (http, raft) = (ports::free_port(), ports::free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_raft3d"));
    command
        .args(["cluster", "--nodes", "1"])
        .args(["--http-port", &http.to_string()])
        .args(["--raft-port", &raft.to_string()])
        .arg("--data-dir")
        .arg(data);
    (command, format!("http://127.0.0.1:{http}"))
}

#[tokio::test]
async fn nodes_of_a_local_cluster_stop_when_their_launcher_is_killed() {
    let data = tempfile::tempdir().expect("temp dir");
    let (mut command, url) = one_node_cluster(data.path());
    let mut launcher = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("raft3d cluster starts");
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

/// Ctrl-C in a terminal signals the whole foreground process group. The nodes are the
/// launcher's to stop: a node that took the terminal's SIGINT itself and exited first
/// made the launcher report "node N exited unexpectedly" and fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_a_terminal_stops_a_local_cluster_cleanly() {
    use std::os::unix::process::CommandExt;
    for attempt in 0..3 {
        let data = tempfile::tempdir().expect("temp dir");
        let (mut command, url) = one_node_cluster(data.path());
        let mut launcher = command
            // A group of its own, as a shell gives a foreground job (not the test's).
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("raft3d cluster starts");
        let leader =
            raft3d_launcher::leader::wait_for(std::slice::from_ref(&url), Duration::from_secs(30))
                .await;
        if leader.is_err() {
            let _ = launcher.kill();
            let output = launcher.wait_with_output().expect("reaped");
            let err = String::from_utf8_lossy(&output.stderr);
            panic!("the cluster never served: {leader:?}\n{err}");
        }
        let group = format!("-{}", launcher.id());
        let sent = Command::new("kill").args(["-INT", "--", &group]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT {group}");
        let output = tokio::task::spawn_blocking(move || launcher.wait_with_output())
            .await
            .expect("joined")
            .expect("reaped");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "attempt {attempt}: {:?}\n{err}",
            output.status
        );
        assert!(!err.contains("unexpectedly"), "attempt {attempt}:\n{err}");
    }
}
