//! The client listener's limits: idle connections cannot starve it, and are closed.

use crate::helpers::{config, TestNode};
use reqwest::StatusCode;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: usize = 2_000;

/// Reads until the server closes the connection; `true` if it did by `deadline`.
async fn closed_by_server(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buffer = [0u8; 512];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an error answer before closing is fine
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_do_not_stop_writes_and_are_closed() {
    let dir = TempDir::new().expect("temp dir");
    let raft_port = raft3d_launcher::ports::free_port();
    let mut config = config(&dir, raft_port);
    config.header_timeout_secs = 1;
    let node = TestNode::start(config, dir, raft_port).await;
    let addr = node.base.trim_start_matches("http://").to_owned();

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // One more that starts a request and never finishes its headers (slowloris).
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /api/v1/printers HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial headers");

    let created = node
        .post("/api/v1/printers", r#"{"company":"Prusa","model":"MK4"}"#)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // After the header timeout (1 s here) every one of them is closed by the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut still_open = 0;
    for stream in idle.iter_mut().chain(std::iter::once(&mut slow)) {
        if !closed_by_server(stream, deadline).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "idle connections the node kept open");
    assert_eq!(node.get("/healthz").await.status(), StatusCode::OK);
}
