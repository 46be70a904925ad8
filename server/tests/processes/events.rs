//! The change stream across nodes: a subscriber whose node is SIGKILLed resumes on
//! another member from its last event id and misses nothing and repeats nothing; a
//! write's `X-Raft3D-Index` read with `min_index` shows it on every node, and an index
//! past the end of the log is refused by the leader.

use crate::harness::{job, printer, spool, Cluster};
use raft3d_client::ChangeEvent;
use reqwest::{Method, StatusCode};
use std::time::Duration;

const JOBS: usize = 60;

/// Events of `stream` until `count` have come (each within 10 s).
async fn take(stream: &mut raft3d_client::EventStream, count: usize) -> Vec<ChangeEvent> {
    let mut events = Vec::new();
    while events.len() < count {
        match stream.next(Duration::from_secs(10)).await {
            Ok(Some(event)) => events.push(event),
            other => panic!("after {} of {count} events: {other:?}", events.len()),
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_on_another_node_after_sigkill_misses_and_repeats_nothing() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    let follower = *cluster
        .live_ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let other = *cluster
        .live_ids()
        .iter()
        .find(|id| **id != leader && **id != follower)
        .expect("another follower");
    let follower_url = cluster.node(follower).url();
    let mut first = cluster
        .client
        .events(&follower_url, Some("0"))
        .await
        .expect("stream on the follower");

    // Writes go on through the kill, from another task.
    let writer = {
        let client = cluster.client.clone();
        let urls = [cluster.node(leader).url(), cluster.node(other).url()];
        tokio::spawn(async move {
            let writes = [
                ("/api/v1/printers", printer("p1")),
                ("/api/v1/filaments", spool("f1", 100_000)),
            ]
            .into_iter()
            .chain((0..JOBS).map(|n| {
                (
                    "/api/v1/print_jobs",
                    job(&format!("j{n:03}"), "p1", "f1", 1),
                )
            }));
            for (n, (path, body)) in writes.enumerate() {
                let call = raft3d_client::Call::post(path, &body)
                    .expect("a body")
                    .with_idempotency_key(Some(format!("w{n}")));
                let answer = client
                    .execute_from(&urls[n % 2], &call)
                    .await
                    .expect("written");
                assert!(answer.status.is_success(), "{path}: {}", answer.status);
            }
        })
    };
    // Each job is two events (the job, its spool); the first two writes one each.
    let total = 2 + JOBS * 2;
    let before = take(&mut first, 30).await;
    cluster.kill(follower).await;
    let last = before.last().expect("events").id.clone();
    let other_url = cluster.node(other).url();
    let mut resumed = cluster
        .client
        .events(&other_url, Some(&last))
        .await
        .expect("stream on another node");
    let after = take(&mut resumed, total - before.len()).await;
    writer.await.expect("all writes acknowledged");

    // The "log": the whole stream from the start, read from the surviving node.
    let mut whole = cluster
        .client
        .events(&other_url, Some("0"))
        .await
        .expect("stream from the start");
    let log = take(&mut whole, total).await;
    let joined: Vec<ChangeEvent> = before.into_iter().chain(after).collect();
    assert_eq!(joined, log, "no gap, no duplicate across the kill");
    assert_eq!(
        resumed
            .next(Duration::from_millis(500))
            .await
            .expect("stream"),
        None,
        "nothing after the last write"
    );
    let created = log.iter().filter(|e| e.kind == "job.created").count();
    assert_eq!(created, JOBS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writes_index_read_with_min_index_shows_it_on_every_node() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    for n in 0..5 {
        let (status, headers, _) = cluster
            .raw(
                Method::POST,
                leader,
                "/api/v1/printers",
                Some(&printer(&format!("p{n}"))),
                Some(&format!("k{n}")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let index: u64 = headers["x-raft3d-index"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("an index");
        for id in cluster.live_ids() {
            let path = format!("/api/v1/printers/p{n}?min_index={index}");
            let (status, headers, body) = cluster.raw(Method::GET, id, &path, None, None).await;
            assert_eq!(
                (status, &body["id"]),
                (StatusCode::OK, &format!("p{n}").into()),
                "node {id}"
            );
            let seen: u64 = headers["x-raft3d-index"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("an index");
            assert!(seen >= index, "node {id} answered at {seen} < {index}");
        }
    }
    // An index no answer ever carried: the leader knows it is past the end of the log
    // and says so (422, not a 503 that invites retries forever); a follower cannot tell
    // it from one it has yet to receive, so it waits (bounded), then answers 503.
    let ahead = format!("/api/v1/printers?min_index={}", u64::MAX / 2);
    let (status, _, problem) = cluster.raw(Method::GET, leader, &ahead, None, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/index-in-future"
    );
    assert_eq!(problem["field"], "min_index");
    let follower = cluster
        .live_ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let (status, _, problem) = cluster.raw(Method::GET, follower, &ahead, None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/index-not-reached"
    );
}
