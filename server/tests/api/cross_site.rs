//! Writes from web pages of other sites (CSRF) and bodies that do not say they are JSON
//! are refused and change nothing; the cluster's own pages and non-browser clients write.

use crate::helpers::{spawn_node, TestNode};
use reqwest::StatusCode;

/// A POST to `path` with the given `Origin` and `Content-Type` headers (left out when
/// `None`) and body; returns its status.
async fn post(
    node: &TestNode,
    path: &str,
    origin: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> StatusCode {
    let mut request = node.client.post(node.url(path)).body(body.to_owned());
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.expect("answered").status()
}

#[tokio::test]
async fn a_page_of_another_site_cannot_write_and_a_form_body_is_not_json() {
    let node = spawn_node().await;
    let printers = "/api/v1/printers";
    let body = r#"{"id":"evil","company":"A","model":"B"}"#;
    let evil = Some("http://evil.example");

    // What a `fetch(url, {mode: "no-cors", method: "POST", body})` from another site sends.
    let forged = post(
        &node,
        printers,
        evil,
        Some("text/plain;charset=UTF-8"),
        body,
    )
    .await;
    assert_eq!(forged, StatusCode::FORBIDDEN);
    // Even with a JSON type (a CORS preflight would stop a browser; a script need not be
    // a browser, but then it sends no Origin of another site).
    let forged_json = post(&node, printers, evil, Some("application/json"), body).await;
    assert_eq!(forged_json, StatusCode::FORBIDDEN);
    // A bodiless write (a job's status change) is a write too.
    let status_change = "/api/v1/print_jobs/j1/status?status=running";
    let moved = post(&node, status_change, Some("null"), None, "").await;
    assert_eq!(moved, StatusCode::FORBIDDEN);

    // `curl -d` without a type sends a form: refused, not guessed at.
    let form = Some("application/x-www-form-urlencoded");
    assert_eq!(
        post(&node, printers, None, form, body).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        post(&node, printers, None, None, body).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let listed = node.get_json("/api/v1/printers").await;
    assert_eq!(listed, serde_json::json!([]), "nothing was created");

    // The cluster's own page (its origin is a member's URL) writes; so does a client
    // that sends no Origin.
    let json = Some("application/json; charset=utf-8");
    let own = post(&node, printers, Some(node.base.as_str()), json, body).await;
    assert_eq!(own, StatusCode::CREATED);
    let plain = node
        .post(
            "/api/v1/printers",
            r#"{"id":"p2","company":"A","model":"B"}"#,
        )
        .await;
    assert_eq!(plain.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_host_name_that_is_not_the_clusters_is_refused_dns_rebinding() {
    let node = spawn_node().await;
    let port = node.base.rsplit(':').next().expect("port").to_owned();
    // A rebinding page's requests name its own host: refused, reads and writes, pages too.
    for path in ["/api/v1/printers", "/printers"] {
        let answer = node
            .client
            .get(node.url(path))
            .header("host", format!("evil.example:{port}"))
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
    let write = node
        .client
        .post(node.url("/api/v1/printers"))
        .header("host", "evil.example")
        .json(&serde_json::json!({"id": "evil", "company": "A", "model": "B"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(write.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(
        node.get("/api/v1/printers/evil").await.status(),
        StatusCode::NOT_FOUND
    );
    // The node's own names work; health checks answer any name.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let answer = node
            .client
            .get(node.url("/api/v1/printers"))
            .header("host", host.as_str())
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), StatusCode::OK, "{host}");
    }
    let health = node
        .client
        .get(node.url("/healthz"))
        .header("host", "lb.internal")
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_a_member_page_allows_every_method_of_the_api() {
    let node = crate::helpers::spawn_node().await;
    let origin = node.base.clone();
    let answer = node
        .client
        .request(
            reqwest::Method::OPTIONS,
            node.url("/api/v1/printers/p1/connection"),
        )
        .header("origin", &origin)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .expect("sent");
    let allowed = answer
        .headers()
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for method in ["GET", "POST", "PUT", "DELETE"] {
        assert!(
            allowed.contains(method),
            "{method} missing from {allowed:?}"
        );
    }
}
