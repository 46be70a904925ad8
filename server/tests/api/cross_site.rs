//! Writes from web pages of other sites (CSRF) and bodies that do not say they are JSON
//! are refused and change nothing; the cluster's own pages and non-browser clients write.

use crate::helpers::spawn_node;
use reqwest::StatusCode;

#[tokio::test]
async fn a_page_of_another_site_cannot_write_and_a_form_body_is_not_json() {
    let node = spawn_node().await;
    let printers = node.url("/api/v1/printers");
    let body = r#"{"id":"evil","company":"A","model":"B"}"#;

    // What a `fetch(url, {mode: "no-cors", method: "POST", body})` from another site sends.
    let forged = node
        .client
        .post(&printers)
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Even with a JSON type (a CORS preflight would stop a browser; a script need not be
    // a browser, but then it sends no Origin of another site).
    let forged_json = node
        .client
        .post(&printers)
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(forged_json.status(), StatusCode::FORBIDDEN);
    // A bodiless write (a job's status change) is a write too.
    let moved = node
        .client
        .post(node.url("/api/v1/print_jobs/j1/status?status=running"))
        .header("origin", "null")
        .send()
        .await
        .expect("answered");
    assert_eq!(moved.status(), StatusCode::FORBIDDEN);

    // `curl -d` without a type sends a form: refused, not guessed at.
    let form = node
        .client
        .post(&printers)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let untyped = node
        .client
        .post(&printers)
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let listed = node.get_json("/api/v1/printers").await;
    assert_eq!(listed, serde_json::json!([]), "nothing was created");

    // The cluster's own page (its origin is a member's URL) writes; so does a client
    // that sends no Origin.
    let own = node
        .client
        .post(&printers)
        .header("origin", node.base.as_str())
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(own.status(), StatusCode::CREATED);
    let plain = node
        .post(
            "/api/v1/printers",
            r#"{"id":"p2","company":"A","model":"B"}"#,
        )
        .await;
    assert_eq!(plain.status(), StatusCode::CREATED);
}
