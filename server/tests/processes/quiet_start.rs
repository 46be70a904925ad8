//! A normal start, writes and a restarted node log no warnings and no errors (issue
//! #15): an operator who sees a WARN line must be able to take it as a sign of trouble.
//!
//! Why it matters: every start used to print a screen of openraft WARN and ERROR lines
//! (ignored stale vote responses on every node, and five lines at every retry on the
//! leader for a follower that was restarting), so real warnings drowned. A peer down for
//! long is still a warning (`PeerHealth` in `raft::network`, unit-tested there).

use crate::harness::{printer, Cluster};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_writes_and_a_restarted_follower_log_no_warnings() {
    // Arrange: a fresh cluster with a few writes.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    for i in 0..5 {
        let (status, _) = cluster
            .write(
                leader,
                "/api/v1/printers",
                &printer(&format!("p{i}")),
                &format!("k{i}"),
            )
            .await;
        assert!(status.is_success(), "write {i}: {status}");
    }
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");

    // Act: the follower dies and comes back on its data, as after a crash or an
    // upgrade; then one more write, which every node must apply.
    cluster.kill(follower).await;
    cluster.restart(follower);
    let leader = cluster.wait_for_leader().await;
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("after"), "k-after")
        .await;
    assert!(status.is_success(), "write after the restart: {status}");
    let applied = cluster.view(leader).await.expect("leader view")["applied_index"]
        .as_u64()
        .expect("applied index");
    for id in 1..=3 {
        cluster.wait_applied(id, applied).await;
    }
    // Late messages of the election and the restart (stale vote replies, the leader's
    // retries) are logged within a heartbeat or two of them; give them the time.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Assert
    let noisy: Vec<String> = (1..=3)
        .flat_map(|id| {
            let log = cluster.log(id);
            warnings(&log)
                .map(|line| format!("node {id}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        noisy.is_empty(),
        "{} WARN/ERROR lines in a normal start and restart:\n{}",
        noisy.len(),
        noisy.join("\n")
    );
}

/// The WARN and ERROR lines of a node's log (`tracing`'s format: time, level, target, ...;
/// the harness strips the colour codes).
fn warnings(log: &str) -> impl Iterator<Item = &str> {
    log.lines()
        .filter(|line| matches!(line.split_whitespace().nth(1), Some("WARN" | "ERROR")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_every_line_is_an_object_and_a_start_is_a_few_lines() {
    let cluster = Cluster::start(3, &["--log-format", "json"]);
    let leader = cluster.wait_for_leader().await;
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("p1"), "k1")
        .await;
    assert!(status.is_success(), "{status}");
    for id in 1..=3 {
        let log = cluster.log(id);
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("node {id}: not a JSON line ({e}): {line}"))
            })
            .collect();
        for line in &lines {
            for field in ["timestamp", "level", "target", "message"] {
                assert!(line.get(field).is_some(), "node {id}: no {field} in {line}");
            }
        }
        let started = lines
            .iter()
            .find(|l| l["message"] == "node started")
            .unwrap_or_else(|| panic!("node {id} logged no start:\n{log}"));
        assert_eq!(started["id"], id, "{started}");
        assert!(
            lines.len() <= 6,
            "node {id}'s start is {} lines:\n{log}",
            lines.len()
        );
    }
    // The certificates' expiry is on /metrics, years ahead for a new cluster.
    let metrics = cluster
        .client
        .once(
            &cluster.node(1).url(),
            &raft3d_client::Call::get("/metrics"),
        )
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for (certificate, years) in [("node", 4), ("ca", 9)] {
        let series = format!(
            "raft3d_certificate_expiry_timestamp_seconds{{certificate=\"{certificate}\"}} "
        );
        let at: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(at > now + years * 365 * 86_400, "{certificate}: {at}");
    }
}
