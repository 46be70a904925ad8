//! Print jobs: reservations, transitions, filters.

use crate::helpers::{job_body, spawn_node, status_json};
use reqwest::StatusCode;

#[tokio::test]
async fn a_job_over_the_available_weight_is_422_on_the_weight_field() {
    let node = spawn_node().await;
    node.seed().await;
    assert_eq!(
        node.post("/api/v1/print_jobs", &job_body("j1", 700))
            .await
            .status(),
        StatusCode::CREATED
    );
    let (status, problem) =
        status_json(node.post("/api/v1/print_jobs", &job_body("j2", 301)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "print_weight_in_grams");
    let spool = node.get_json("/api/v1/filaments/f1").await;
    assert_eq!(spool["reserved_weight_in_grams"], 700);
    assert_eq!(spool["available_weight_in_grams"], 300);
}

#[tokio::test]
async fn a_job_on_an_unknown_printer_or_spool_is_422_naming_the_field() {
    let node = spawn_node().await;
    node.seed().await;
    let ghost_printer = r#"{"printer_id":"ghost","filament_id":"f1","filepath":"a.gcode","print_weight_in_grams":1}"#;
    let (status, problem) = status_json(node.post("/api/v1/print_jobs", ghost_printer).await).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("printer_id"))
    );
    let ghost_spool = r#"{"printer_id":"p1","filament_id":"ghost","filepath":"a.gcode","print_weight_in_grams":1}"#;
    let (status, problem) = status_json(node.post("/api/v1/print_jobs", ghost_spool).await).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("filament_id"))
    );
}

#[tokio::test]
async fn a_job_runs_to_done_and_the_spool_loses_its_weight() {
    let node = spawn_node().await;
    node.seed().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 250)).await;
    let (status, job) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=RUNNING", "")
            .await,
    )
    .await;
    assert_eq!(
        (status, &job["status"]),
        (StatusCode::OK, &serde_json::json!("Running"))
    );
    let (status, job) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=done", "")
            .await,
    )
    .await;
    assert_eq!(
        (status, &job["status"]),
        (StatusCode::OK, &serde_json::json!("Done"))
    );
    let spool = node.get_json("/api/v1/filaments/f1").await;
    assert_eq!(spool["remaining_weight_in_grams"], 750);
    assert_eq!(spool["reserved_weight_in_grams"], 0);
}

#[tokio::test]
async fn illegal_transitions_are_409_and_unknown_jobs_404() {
    let node = spawn_node().await;
    node.seed().await;
    node.post("/api/v1/print_jobs", &job_body("j1", 10)).await;
    let (status, problem) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=done", "")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/invalid-transition"
    );
    assert_eq!(
        node.post("/api/v1/print_jobs/j1/status?status=cancelled", "")
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=running", "")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "Canceled is final");
    let (status, _) = status_json(
        node.post("/api/v1/print_jobs/ghost/status?status=running", "")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, problem) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=paused", "")
            .await,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let (status, _) = status_json(node.post("/api/v1/print_jobs/j1/status", "").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn jobs_are_filtered_by_status_case_insensitively() {
    let node = spawn_node().await;
    node.seed().await;
    for id in ["j1", "j2", "j3"] {
        node.post("/api/v1/print_jobs", &job_body(id, 10)).await;
    }
    node.post("/api/v1/print_jobs/j2/status?status=running", "")
        .await;
    node.post("/api/v1/print_jobs/j3/status?status=canceled", "")
        .await;
    let ids = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        ids(node.get_json("/api/v1/print_jobs?status=QUEUED").await),
        ["j1"]
    );
    assert_eq!(
        ids(node.get_json("/api/v1/print_jobs?status=Running").await),
        ["j2"]
    );
    assert_eq!(
        ids(node.get_json("/api/v1/print_jobs?status=cancelled").await),
        ["j3"]
    );
    assert_eq!(ids(node.get_json("/api/v1/print_jobs").await).len(), 3);
    let (status, _) = status_json(node.get("/api/v1/print_jobs?status=nope").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_job_cannot_be_created_in_another_status() {
    let node = spawn_node().await;
    node.seed().await;
    let body = r#"{"printer_id":"p1","filament_id":"f1","filepath":"a.gcode","print_weight_in_grams":5,"status":"Done"}"#;
    let (status, problem) = status_json(node.post("/api/v1/print_jobs", body).await).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let body = r#"{"printer_id":"p1","filament_id":"f1","filepath":"a.gcode","print_weight_in_grams":5,"status":"queued"}"#;
    let (status, job) = status_json(node.post("/api/v1/print_jobs", body).await).await;
    assert_eq!(
        (status, &job["status"]),
        (StatusCode::CREATED, &serde_json::json!("Queued"))
    );
}

#[tokio::test]
async fn jobs_carry_the_times_they_were_queued_started_and_finished() {
    let node = spawn_node().await;
    node.seed().await;
    let before = std::time::SystemTime::now();
    let (_, queued) = status_json(node.post("/api/v1/print_jobs", &job_body("j1", 5)).await).await;
    let time = |v: &serde_json::Value| {
        app::Timestamp::parse_rfc3339(v.as_str().expect("an RFC 3339 string"))
            .expect("RFC 3339 UTC")
    };
    let created = time(&queued["created_at"]);
    let since_epoch = before
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    assert!(created.unix_ms() + 1000 >= since_epoch, "{created}");
    assert!(queued.get("started_at").is_none() && queued.get("finished_at").is_none());
    let (_, running) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=running", "")
            .await,
    )
    .await;
    let started = time(&running["started_at"]);
    assert!(started >= created);
    let (_, done) = status_json(
        node.post("/api/v1/print_jobs/j1/status?status=done", "")
            .await,
    )
    .await;
    assert_eq!(time(&done["started_at"]), started);
    assert!(time(&done["finished_at"]) >= started);
    assert_eq!(time(&done["created_at"]), created);
    assert_eq!(node.get_json("/api/v1/print_jobs/j1").await, done);
}
