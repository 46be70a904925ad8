//! `Idempotency-Key` on a single node (across nodes and failover: tests/cluster).

use crate::helpers::{job_body, spawn_node, status_json};
use reqwest::StatusCode;

#[tokio::test]
async fn a_keyed_retry_returns_the_first_response_and_creates_nothing_new() {
    let node = spawn_node().await;
    node.seed().await;
    // No id in the body: the server generates one, and the retry must get the same one.
    let body = r#"{"printer_id":"p1","filament_id":"f1","filepath":"a.gcode","print_weight_in_grams":100}"#;
    let first = status_json(node.post_keyed("/api/v1/print_jobs", "k-1", body).await).await;
    let retry = status_json(node.post_keyed("/api/v1/print_jobs", "k-1", body).await).await;
    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(first, retry);
    assert_eq!(
        node.get_json("/api/v1/print_jobs")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        node.get_json("/api/v1/filaments/f1").await["reserved_weight_in_grams"],
        100
    );
}

#[tokio::test]
async fn a_keyed_rejection_is_replayed_too() {
    let node = spawn_node().await;
    node.seed().await;
    let first = status_json(
        node.post_keyed("/api/v1/print_jobs", "k-2", &job_body("j1", 5000))
            .await,
    )
    .await;
    assert_eq!(first.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        first,
        status_json(
            node.post_keyed("/api/v1/print_jobs", "k-2", &job_body("j1", 5000))
                .await
        )
        .await
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let node = spawn_node().await;
    node.seed().await;
    node.post_keyed("/api/v1/print_jobs", "k-3", &job_body("j1", 10))
        .await;
    let (status, problem) = status_json(
        node.post_keyed("/api/v1/print_jobs", "k-3", &job_body("j1", 11))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/idempotency-key-reused"
    );
    // The same key on another endpoint is another request too.
    let (status, _) = status_json(
        node.post_keyed("/api/v1/printers", "k-3", r#"{"company":"a","model":"b"}"#)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_keyed_status_change_is_applied_once() {
    let node = spawn_node().await;
    node.seed().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 10)).await;
    let path = "/api/v1/print_jobs/j1/status?status=running";
    let first = status_json(node.post_keyed(path, "move-1", "").await).await;
    let retry = status_json(node.post_keyed(path, "move-1", "").await).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(first, retry, "a plain retry would have been a 409");
}

#[tokio::test]
async fn an_unusable_key_is_400() {
    let node = spawn_node().await;
    let long = "k".repeat(256);
    for key in [long.as_str(), "with space"] {
        let (status, problem) = status_json(
            node.post_keyed("/api/v1/printers", key, r#"{"company":"a","model":"b"}"#)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}");
        assert_eq!(problem["field"], "Idempotency-Key");
    }
    assert_eq!(
        node.get_json("/api/v1/printers")
            .await
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}
