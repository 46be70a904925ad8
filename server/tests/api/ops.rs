//! Operator endpoints on a single node.

use crate::helpers::spawn_node;
use reqwest::StatusCode;

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let node = spawn_node().await;
    assert_eq!(node.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(node.get("/readyz").await.status(), StatusCode::OK);
    node.post("/api/v1/printers", r#"{"company":"a","model":"b"}"#)
        .await;
    let text = node.get("/metrics").await.text().await.expect("text");
    for name in [
        "raft3d_is_leader 1",
        "raft3d_term ",
        "raft3d_last_log_index ",
        "raft3d_applied_index ",
        "raft3d_snapshot_index ",
        r#"raft3d_http_requests_total{route="/api/v1/printers",method="POST",status="201"} 1"#,
        "raft3d_http_request_duration_seconds_bucket{",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    let count = |series: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    // At least the membership entry and the printer's entry were written durably.
    let appends = count("raft3d_log_append_duration_seconds_count");
    assert!(appends >= 2, "{appends} log appends counted");
    // The printer went through each stage of a write a lone node has (no followers).
    for stage in ["propose", "batch_wait", "commit", "apply"] {
        let series = format!("raft3d_write_stage_duration_seconds_count{{stage=\"{stage}\"}}");
        assert!(count(&series) >= 1, "{series} counted nothing");
    }
}

#[tokio::test]
async fn the_cluster_view_names_this_node_as_leader() {
    let node = spawn_node().await;
    let view = node.get_json("/api/v1/cluster").await;
    assert_eq!(view["node_id"], 1);
    // The wire string itself: what non-Rust clients (the Playwright tests) compare with.
    assert_eq!(view["role"], "Leader");
    assert_eq!(view["leader_id"], 1);
    assert_eq!(view["leader_url"].as_str(), Some(node.base.as_str()));
    assert_eq!(view["members"][0]["voter"], true);
    assert_eq!(view["members"][0]["reachable"], true);
    assert_eq!(view["state_digest"].as_str().map(str::len), Some(16));
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let node = spawn_node().await;
    let before = node.get("/metrics").await.text().await.expect("text");
    for n in 0..300 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).expect("method");
        let response = node
            .client
            .request(method, node.url("/api/v1/printers"))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let after = node.get("/metrics").await.text().await.expect("text");
    assert!(!after.contains("MADEUP"), "a made-up method became a label");
    // One series for all of them, and one for the first GET /metrics above.
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("raft3d_http_requests_total{"))
            .count()
    };
    assert!(
        series(&after) <= series(&before) + 2,
        "the HTTP series went from {} to {}:\n{after}",
        series(&before),
        series(&after)
    );
}
