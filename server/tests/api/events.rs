//! The change stream (`GET /api/v1/events`): every change once, in log order, resumable
//! at every position; `reset` for positions the node no longer holds; heartbeats while
//! idle; a subscriber that stops reading is cut off while writes go on.

use crate::helpers::{config, job_body, spawn_node, TestNode};
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use tempfile::TempDir;

type Event = raft3d_client::ChangeEvent;

/// Reads a stream's events as they come.
struct Subscriber {
    stream: raft3d_client::EventStream,
    comments: Vec<String>,
}

impl Subscriber {
    async fn open(node: &TestNode, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = node.client.get(node.url(&format!("/api/v1/events{query}")));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert!(response.headers().contains_key("x-raft3d-index"));
        Self {
            stream: raft3d_client::EventStream::new(response),
            comments: Vec::new(),
        }
    }

    /// The next event, or `None` if none comes within `within`.
    async fn next(&mut self, within: Duration) -> Option<Event> {
        let event = self
            .stream
            .next(within)
            .await
            .expect("a well-formed stream");
        self.comments = self.stream.comments.clone();
        event
    }

    /// The next `count` events (each within a few seconds).
    async fn take(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < count {
            let event = self.next(Duration::from_secs(5)).await;
            events.push(event.unwrap_or_else(|| panic!("only {} of {count} events", events.len())));
        }
        events
    }
}

/// Creates the jobs `bodies` describe, all at once; each must be created.
async fn create_at_once(node: &TestNode, bodies: impl Iterator<Item = String>) {
    let writes: Vec<_> = bodies
        .map(|body| {
            let request = node
                .client
                .post(node.url("/api/v1/print_jobs"))
                .header("content-type", "application/json")
                .body(body);
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    for write in writes {
        assert_eq!(write.await.expect("task").ok(), Some(StatusCode::CREATED));
    }
}

/// The entry index of an event id `N` or `N.k`.
fn entry_of(id: &str) -> u64 {
    id.split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("an id N or N.k")
}

#[tokio::test]
async fn every_change_arrives_once_in_log_order_with_the_object_after_it() {
    let node = spawn_node().await;
    let mut stream = Subscriber::open(&node, "?after=0", None).await;
    node.seed().await;
    let created = node.post("/api/v1/print_jobs", &job_body("j1", 100)).await;
    let job_index: u64 = created.headers()["x-raft3d-index"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("index");
    node.post("/api/v1/print_jobs/j1/status?status=running", "")
        .await;
    node.post("/api/v1/print_jobs/j1/status?status=done", "")
        .await;
    // Token administration never appears in the stream.
    node.post("/api/v1/tokens", r#"{"name":"desk","role":"viewer"}"#)
        .await;
    // A refused write changes nothing and sends nothing.
    node.post("/api/v1/print_jobs", &job_body("j1", 1)).await;
    let events = stream.take(7).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "printer.created",
            "filament.created",
            "job.created",
            "filament.updated",
            "job.status",
            "job.status",
            "filament.updated",
        ]
    );
    assert_eq!(events[2].data["id"], "j1");
    assert_eq!(
        events[2].id,
        format!("{job_index}.1"),
        "the job's entry also changed the spool"
    );
    assert_eq!(events[3].id, job_index.to_string());
    assert_eq!(events[3].data["available_weight_in_grams"], 900);
    assert_eq!(events[5].data["status"], "Done");
    assert_eq!(events[6].data["remaining_weight_in_grams"], 900);
    assert_eq!(
        events[6].data,
        node.get_json("/api/v1/filaments/f1").await,
        "the object after the change"
    );
    let entries: Vec<u64> = events.iter().map(|e| entry_of(&e.id)).collect();
    assert!(entries.windows(2).all(|w| w[0] <= w[1]), "{entries:?}");
    assert_eq!(
        stream.next(Duration::from_millis(500)).await,
        None,
        "nothing more"
    );
}

#[tokio::test]
async fn resuming_after_any_event_gives_exactly_the_rest() {
    let node = spawn_node().await;
    node.seed().await;
    // Concurrent writes go into shared entries: ids `N.k` appear.
    create_at_once(&node, (0..40).map(|n| job_body(&format!("j{n:02}"), 1))).await;
    let total = 2 + 40 * 2;
    let all = Subscriber::open(&node, "?after=0", None)
        .await
        .take(total)
        .await;
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), total, "every id is unique");
    assert!(
        ids.iter().any(|id| id.contains('.')),
        "40 concurrent writes shared no entry: {ids:?}"
    );
    for (n, event) in all.iter().enumerate().step_by(7) {
        let rest = total - n - 1;
        // Both ways a client resumes: the header a reconnect sends, and `after`.
        let by_header = Subscriber::open(&node, "?after=0", Some(&event.id))
            .await
            .take(rest)
            .await;
        assert_eq!(by_header, all[n + 1..], "after {}", event.id);
        let mut by_query = Subscriber::open(&node, &format!("?after={}", event.id), None).await;
        assert_eq!(by_query.take(rest).await, all[n + 1..]);
        assert_eq!(by_query.next(Duration::from_millis(200)).await, None);
    }
}

#[tokio::test]
async fn a_restarted_node_resumes_positions_from_before_its_restart() {
    let mut node = spawn_node().await;
    node.seed().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 1)).await;
    let before = Subscriber::open(&node, "?after=0", None)
        .await
        .take(4)
        .await;
    node.restart().await;
    // From the file (`state.redb`'s events table), exactly as before the restart.
    let after = Subscriber::open(&node, "?after=0", None)
        .await
        .take(4)
        .await;
    assert_eq!(after, before);
    let mut stream = Subscriber::open(&node, "", Some(&before[1].id)).await;
    assert_eq!(stream.take(2).await, before[2..]);
    node.post("/api/v1/print_jobs", &job_body("j2", 1)).await;
    let next = stream.take(2).await;
    assert_eq!(next[0].kind, "job.created");
    assert!(entry_of(&next[0].id) > entry_of(&before[3].id));
}

/// A subscriber holds the node's state open (its feeder reads the journal) until its
/// stream ends; a shut-down node must have let go of its files all the same, or the
/// restart on the same directory meets `DatabaseAlreadyOpen`.
#[tokio::test]
async fn a_node_with_an_open_stream_shuts_down_with_its_files_closed() {
    let mut node = spawn_node().await;
    node.seed().await;
    let mut open = Subscriber::open(&node, "?after=0", None).await;
    open.take(2).await;
    node.restart().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 1)).await;
    drop(open);
}

#[tokio::test]
async fn bad_positions_are_422_and_an_idle_stream_sends_heartbeats() {
    let dir = TempDir::new().expect("temp dir");
    let raft_port = raft3d_launcher::ports::free_port();
    let mut settings = config(&dir, raft_port);
    settings.events_heartbeat_ms = 100;
    let node = TestNode::start(settings, dir, raft_port).await;
    for query in ["?after=-1", "?after=x", "?after=1.2.3"] {
        let response = node.get(&format!("/api/v1/events{query}")).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
    }
    let response = node
        .client
        .get(node.url("/api/v1/events"))
        .header("last-event-id", "nope")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut stream = Subscriber::open(&node, "", None).await;
    assert_eq!(stream.next(Duration::from_millis(700)).await, None);
    let heartbeats = stream.comments.iter().filter(|c| *c == "heartbeat").count();
    assert!(heartbeats >= 3, "{:?}", stream.comments);
}

/// Reads `raft3d_event_subscribers_cut_off_total` from `/metrics`.
async fn cut_off_count(node: &TestNode) -> u64 {
    let text = node.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("raft3d_event_subscribers_cut_off_total "))
        .and_then(|v| v.parse().ok())
        .expect("the cut-off counter")
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_cut_off_and_writes_go_on() {
    use tokio::io::AsyncWriteExt;
    let dir = TempDir::new().expect("temp dir");
    let raft_port = raft3d_launcher::ports::free_port();
    let mut settings = config(&dir, raft_port);
    settings.events_slow_subscriber_ms = 300;
    let node = TestNode::start(settings, dir, raft_port).await;
    node.seed().await;
    // Events of ~1 KiB each: enough of them to fill the socket buffers of a client that
    // never reads.
    let path = "p".repeat(1000);
    let spool = r#"{"id":"big","type":"PLA","color":"red","total_weight_in_grams":1000000}"#;
    assert_eq!(
        node.post("/api/v1/filaments", spool).await.status(),
        StatusCode::CREATED
    );
    let job = |n: u64| {
        format!(
            r#"{{"id":"j{n:05}","printer_id":"p1","filament_id":"big","filepath":"{path}","print_weight_in_grams":1}}"#
        )
    };
    let addr = node.base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!("GET /api/v1/events?after=0 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stalled
        .write_all(request.as_bytes())
        .await
        .expect("request");
    let started = Instant::now();
    let mut written = 0u64;
    // Writes in parallel batches until the server gives up on the stalled stream.
    while cut_off_count(&node).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "never cut off");
        let batch: Vec<String> = (0..16)
            .map(|_| {
                written += 1;
                job(written)
            })
            .collect();
        create_at_once(&node, batch.into_iter()).await;
    }
    // Cut off, and the farm still takes writes at once.
    let write_started = Instant::now();
    assert_eq!(
        node.post("/api/v1/print_jobs", &job(written + 1))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert!(write_started.elapsed() < Duration::from_secs(2));
    drop(stalled);
}
