//! Creating and reading printers and filaments.

use crate::helpers::{spawn_node, status_json};
use reqwest::StatusCode;

#[tokio::test]
async fn a_created_printer_is_returned_listed_and_fetched() {
    let node = spawn_node().await;
    let (status, created) = status_json(
        node.post(
            "/api/v1/printers",
            r#"{"company":"Creality","model":"Ender 3"}"#,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().expect("generated id").to_owned();
    assert!(!id.is_empty());
    assert_eq!(created["company"], "Creality");
    let listed = node.get_json("/api/v1/printers").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(
        node.get_json(&format!("/api/v1/printers/{id}")).await,
        created
    );
}

#[tokio::test]
async fn a_numeric_id_is_stored_as_its_decimal_string_and_duplicates_conflict() {
    let node = spawn_node().await;
    let body = r#"{"id":42,"company":"Prusa","model":"MK4"}"#;
    let (status, created) = status_json(node.post("/api/v1/printers", body).await).await;
    assert_eq!(
        (status, &created["id"]),
        (StatusCode::CREATED, &serde_json::json!("42"))
    );
    let (status, problem) = status_json(node.post("/api/v1/printers", body).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["field"], "id");
    assert_eq!(
        node.get_json("/api/v1/printers")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn filament_type_is_case_insensitive_and_remaining_defaults_to_total() {
    let node = spawn_node().await;
    let body = r#"{"type":"petg","color":"black","total_weight_in_grams":750}"#;
    let (status, created) = status_json(node.post("/api/v1/filaments", body).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["type"], "PETG");
    assert_eq!(created["remaining_weight_in_grams"], 750);
    assert_eq!(created["available_weight_in_grams"], 750);
}

#[tokio::test]
async fn unknown_objects_are_404() {
    let node = spawn_node().await;
    for path in [
        "/api/v1/printers/nope",
        "/api/v1/filaments/nope",
        "/api/v1/print_jobs/nope",
    ] {
        let (status, problem) = status_json(node.get(path).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(problem["status"], 404);
    }
}

#[tokio::test]
async fn data_survives_a_node_restart_on_the_same_directory() {
    let mut node = spawn_node().await;
    node.seed().await;
    node.restart().await;
    assert_eq!(node.get_json("/api/v1/printers/p1").await["model"], "MK4");
    assert_eq!(
        node.get_json("/api/v1/filaments/f1").await["remaining_weight_in_grams"],
        1000
    );
    // And it still takes writes.
    let body = r#"{"id":"p2","company":"Bambu","model":"X1C"}"#;
    assert_eq!(
        node.post("/api/v1/printers", body).await.status(),
        StatusCode::CREATED
    );
}
