//! The peer listener: what is not a well-formed stream of ours, or comes from a peer
//! of another cluster, or speaks for another node than its sender, is refused or closed,
//! and changes nothing.

use crate::helpers::spawn_node;
use app::api::Role;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens an append stream by hand, as node 1 of `cluster` (the only member; these nodes
/// run `--insecure`, so headers are all a peer shows): the HTTP upgrade, then the raw
/// connection.
async fn open_stream(raft_addr: &str, cluster: &str, incarnation: &str) -> TcpStream {
    let mut stream = TcpStream::connect(raft_addr).await.expect("connect");
    let request = format!(
        "GET /raft/append-stream HTTP/1.1\r\nHost: {raft_addr}\r\n\
         Connection: upgrade\r\nUpgrade: raft3d-append/1\r\n\
         x-raft3d-cluster: {cluster}\r\nx-raft3d-node: 1\r\nx-raft3d-incarnation: {incarnation}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("response head");
        head.push(byte);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Reads until the server closes the stream; fails if it answers anything instead.
async fn assert_closed_without_answer(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "expected the stream closed, got {read:?} {rest:?}"
    );
}

#[tokio::test]
async fn a_plain_request_for_the_append_stream_is_refused() {
    let node = spawn_node().await;
    let url = format!("http://{}/raft/append-stream", node.raft_addr());
    let plain = node
        .client
        .get(url)
        .header("x-raft3d-cluster", node.cluster_id())
        .header("x-raft3d-node", "1")
        .header("x-raft3d-incarnation", node.incarnation().await)
        .send()
        .await
        .expect("request sent");
    assert_eq!(plain.status(), StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn bad_frames_close_the_stream_and_leave_the_node_serving() {
    let node = spawn_node().await;
    let (raft_addr, cluster) = (node.raft_addr(), node.cluster_id());
    let incarnation = node.incarnation().await;
    let bad_frames: [&[u8]; 3] = [
        b"\0\0\0\x02{x",           // not JSON
        b"\0\0\0\x02{}",           // JSON, not an append-entries request
        &[0xff, 0xff, 0xff, 0xff], // a length over the limit
    ];
    for bad in bad_frames {
        let mut stream = open_stream(&raft_addr, &cluster, &incarnation).await;
        stream.write_all(bad).await.expect("send");
        assert_closed_without_answer(&mut stream).await;
    }
    // A frame cut short: the sender gives up half-way.
    let mut stream = open_stream(&raft_addr, &cluster, &incarnation).await;
    stream.write_all(b"\0\0\0\x09[1").await.expect("send");
    stream.shutdown().await.expect("half-close");
    assert_closed_without_answer(&mut stream).await;

    // A well-formed request from a stale leader (term 0) gets an answer, not a change.
    let mut stream = open_stream(&raft_addr, &cluster, &incarnation).await;
    let request = br#"{"vote":{"leader_id":{"term":0,"node_id":1},"committed":true},"prev_log_id":null,"entries":[],"leader_commit":null}"#;
    let length = u32::try_from(request.len()).expect("small").to_be_bytes();
    stream
        .write_all(&[&length[..], request].concat())
        .await
        .expect("send");
    let length = stream.read_u32().await.expect("answer length");
    let mut answer = vec![0; length as usize];
    stream.read_exact(&mut answer).await.expect("answer");
    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON answer");
    assert!(answer["Ok"]["HigherVote"].is_object(), "{answer}");

    node.seed().await;
    let view = node.cluster_view().await;
    assert_eq!((view.role, view.term), (Role::Leader, 1), "{view:?}");
}

/// A vote request (term 50 would depose the leader if it were admitted) sent as `from`.
async fn vote_as(node: &crate::helpers::TestNode, from: &[(&str, &str)]) -> reqwest::Response {
    let url = format!("http://{}/raft/vote", node.raft_addr());
    let mut request = node.client.post(url).json(&serde_json::json!({
        "vote": {"leader_id": {"term": 50, "node_id": 9}, "committed": false},
        "last_log_id": {"leader_id": {"term": 50, "node_id": 9}, "index": 1000}
    }));
    for (name, value) in from {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

#[tokio::test]
async fn peers_without_identity_of_another_cluster_not_members_or_speaking_for_another_node_are_refused(
) {
    let node = spawn_node().await;
    let cluster = node.cluster_id();
    let refused: [&[(&str, &str)]; 4] = [
        &[],
        &[
            ("x-raft3d-cluster", "another-farm"),
            ("x-raft3d-node", "9"),
            ("x-raft3d-incarnation", "i9"),
        ],
        // Node 9 is no member: its vote (term 50) would depose the leader.
        &[
            ("x-raft3d-cluster", &cluster),
            ("x-raft3d-node", "9"),
            ("x-raft3d-incarnation", "i9"),
        ],
        // Node 1, a member, speaking for node 9.
        &[
            ("x-raft3d-cluster", &cluster),
            ("x-raft3d-node", "1"),
            ("x-raft3d-incarnation", "i1"),
        ],
    ];
    for from in refused {
        let answer = vote_as(&node, from).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{from:?}");
        assert_eq!(answer.headers()["x-raft3d-node"], "1", "answers are signed");
    }
    let view = node.cluster_view().await;
    assert_eq!((view.role, view.term), (Role::Leader, 1));
    // These nodes run without peer TLS, and their cluster view says so.
    assert!(
        view.warnings[0].starts_with("INSECURE"),
        "{:?}",
        view.warnings
    );
}

#[tokio::test]
async fn a_data_directory_refuses_another_node_id_and_another_cluster() {
    let mut node = spawn_node().await;
    if let Some(running) = node.node.take() {
        running.shutdown().await;
    }
    let mut as_node_2 = crate::helpers::config(&node.dir, node.raft_port);
    as_node_2.id = 2;
    as_node_2.peers = vec![(2, node.raft_addr())];
    let error = raft3d::start(as_node_2)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("belongs to node 1"), "{error}");

    let mut other_cluster = crate::helpers::config(&node.dir, node.raft_port);
    other_cluster.cluster_id = Some("another-farm".into());
    let error = raft3d::start(other_cluster)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("belongs to cluster"), "{error}");

    node.restart().await;
    assert_eq!(node.get_json("/api/v1/cluster").await["node_id"], 1);
}
