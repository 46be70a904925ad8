//! Bad input of every kind gets a problem body and changes nothing.

use crate::helpers::{spawn_node, status_json};
use reqwest::StatusCode;

#[tokio::test]
async fn malformed_and_invalid_bodies_get_problem_json_with_the_field() {
    let node = spawn_node().await;
    let cases = [
        ("/api/v1/printers", "", StatusCode::BAD_REQUEST, None),
        (
            "/api/v1/printers",
            "{not json",
            StatusCode::BAD_REQUEST,
            None,
        ),
        ("/api/v1/printers", "[1,2]", StatusCode::BAD_REQUEST, None),
        (
            "/api/v1/printers",
            r#"{"company":7,"model":"m"}"#,
            StatusCode::BAD_REQUEST,
            Some("company"),
        ),
        (
            "/api/v1/printers",
            r#"{"company":"","model":"m"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("company"),
        ),
        (
            "/api/v1/printers",
            r#"{"company":"Prusa","model":"MK4\u202Eexe.gcode"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("model"),
        ),
        (
            "/api/v1/cluster/nodes",
            r#"{"id":9,"raft_addr":"user@evil host:9081"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("raft_addr"),
        ),
        (
            "/api/v1/filaments",
            r#"{"type":"wood","color":"x","total_weight_in_grams":5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("type"),
        ),
        (
            "/api/v1/filaments",
            r#"{"type":"PLA","color":"x","total_weight_in_grams":"5"}"#,
            StatusCode::BAD_REQUEST,
            Some("total_weight_in_grams"),
        ),
        (
            "/api/v1/filaments",
            r#"{"type":"PLA","color":"x","total_weight_in_grams":5,"remaining_weight_in_grams":6}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("remaining_weight_in_grams"),
        ),
        (
            "/api/v1/print_jobs",
            r#"{"printer_id":"p","filament_id":"f","filepath":"x","print_weight_in_grams":-1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("print_weight_in_grams"),
        ),
        (
            "/api/v1/print_jobs",
            r#"{"printer_id":"p","filament_id":"f","filepath":"x","print_weight_in_grams":2.5}"#,
            StatusCode::BAD_REQUEST,
            Some("print_weight_in_grams"),
        ),
    ];
    for (path, body, want, field) in cases {
        let response = node.post(path, body).await;
        let content_type = response.headers().get("content-type").cloned();
        let (status, problem) = status_json(response).await;
        assert_eq!(status, want, "{path} {body}");
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        assert_eq!(problem["field"].as_str(), field, "{path} {body}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    for list in [
        "/api/v1/printers",
        "/api/v1/filaments",
        "/api/v1/print_jobs",
    ] {
        assert_eq!(
            node.get_json(list).await.as_array().map(Vec::len),
            Some(0),
            "{list}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_the_node_keeps_serving() {
    let node = spawn_node().await;
    let huge = format!(
        r#"{{"company":"{}","model":"m"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, problem) = status_json(node.post("/api/v1/printers", &huge).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["status"], 413);
    assert_eq!(node.get("/readyz").await.status(), StatusCode::OK);
    let (status, _) = status_json(
        node.post("/api/v1/printers", r#"{"company":"a","model":"b"}"#)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_bodies() {
    let node = spawn_node().await;
    let (status, problem) = status_json(node.get("/api/v1/spaceships").await).await;
    assert_eq!(
        (status, problem["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    let response = node
        .client
        .put(node.url("/api/v1/printers"))
        .send()
        .await
        .expect("sent");
    let (status, problem) = status_json(response).await;
    assert_eq!(
        (status, problem["status"].as_u64()),
        (StatusCode::METHOD_NOT_ALLOWED, Some(405))
    );
    let (status, problem) = status_json(node.get("/api/v1/printers/a%2Fb").await).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id"))
    );
    let (status, _) = status_json(node.get("/api/v1/printers?consistency=sometimes").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn garbage_never_gets_a_5xx() {
    let node = spawn_node().await;
    let bodies = [
        "\u{0}",
        "null",
        "true",
        "{}",
        "{\"id\":{}}",
        "\"\u{fffd}\"",
        "{\"a\":",
        &"[".repeat(10_000),
    ];
    for path in [
        "/api/v1/printers",
        "/api/v1/filaments",
        "/api/v1/print_jobs",
        "/api/v1/print_jobs/x/status?status=%ff",
    ] {
        for body in bodies {
            let status = node.post(path, body).await.status();
            assert!(status.is_client_error(), "{path} {body:?} -> {status}");
        }
    }
    assert_eq!(node.get("/readyz").await.status(), StatusCode::OK);
}
