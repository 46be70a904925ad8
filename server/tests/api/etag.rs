//! `ETag` on objects and pages, `If-None-Match` → `304`, `If-Match` on a status change →
//! `412` when the job changed since it was read.

use crate::helpers::{job_body, spawn_node, status_json, TestNode};
use reqwest::StatusCode;

async fn get_with(node: &TestNode, path: &str, if_none_match: &str) -> reqwest::Response {
    node.client
        .get(node.url(path))
        .header("if-none-match", if_none_match)
        .send()
        .await
        .expect("sent")
}

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn an_unchanged_object_or_page_is_304_and_a_changed_one_200() {
    let node = spawn_node().await;
    node.seed().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 5)).await;
    for path in [
        "/api/v1/print_jobs/j1",
        "/api/v1/print_jobs?limit=10",
        "/api/v1/filaments",
        "/api/v1/filaments/f1",
        "/api/v1/printers/p1",
    ] {
        let first = node.get(path).await;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let tag = etag(&first);
        let again = get_with(&node, path, &tag).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(etag(&again), tag);
        assert!(again.headers().contains_key("x-raft3d-index"));
        assert!(again.bytes().await.expect("body").is_empty());
        let other = get_with(&node, path, "\"0000000000000000\", W/\"x\"").await;
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
    let before = etag(&node.get("/api/v1/print_jobs/j1").await);
    node.post("/api/v1/print_jobs/j1/status?status=running", "")
        .await;
    let after = get_with(&node, "/api/v1/print_jobs/j1", &before).await;
    assert_eq!(after.status(), StatusCode::OK, "the job changed");
    assert_ne!(etag(&after), before);
    let bad = get_with(&node, "/api/v1/print_jobs/j1", "not a tag").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn racing_moves_with_if_match_end_with_one_200_and_the_rest_412() {
    let node = spawn_node().await;
    node.seed().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 5)).await;
    let read = etag(&node.get("/api/v1/print_jobs/j1").await);
    let moves: Vec<_> = (0..8)
        .map(|n| {
            let client = node.client.clone();
            let status = if n % 2 == 0 { "running" } else { "canceled" };
            let url = node.url(&format!("/api/v1/print_jobs/j1/status?status={status}"));
            let read = read.clone();
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("if-match", read)
                    .send()
                    .await
                    .expect("sent");
                response.status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for m in moves {
        statuses.push(m.await.expect("task"));
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((ok, refused), (1, 7), "{statuses:?}");
    let (status, problem) = status_json(
        node.client
            .post(node.url("/api/v1/print_jobs/j1/status?status=done"))
            .header("if-match", &read)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/precondition-failed"
    );
    assert_eq!(problem["field"], "If-Match");
    // With the tag it has now, the move goes through; `*` asks nothing more.
    let now = etag(&node.get("/api/v1/print_jobs/j1").await);
    let job = node.get_json("/api/v1/print_jobs/j1").await;
    let next = if job["status"] == "Running" {
        "done"
    } else {
        "running"
    };
    let response = node
        .client
        .post(node.url(&format!("/api/v1/print_jobs/j1/status?status={next}")))
        .header("if-match", now)
        .send()
        .await
        .expect("sent");
    let expected = if next == "done" {
        StatusCode::OK
    } else {
        // A canceled job cannot run: the tag matched, the rule refuses.
        StatusCode::CONFLICT
    };
    assert_eq!(response.status(), expected);
    let bad = node
        .client
        .post(node.url("/api/v1/print_jobs/j1/status?status=done"))
        .header("if-match", "garbage")
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
