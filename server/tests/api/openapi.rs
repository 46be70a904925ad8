//! The API's description: `/api/v1/openapi.json` and `/api/v1/reference` need no token,
//! and every operation the document names is routed and answers only statuses the
//! document gives it (the full fuzzing run is `scripts/fuzz-api.sh`).

use crate::auth::{spawn_with_auth, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn the_document_and_its_page_are_open_and_agree() {
    let node = spawn_with_auth().await;
    let response = node
        .client
        .get(node.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("document");
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let page = node
        .client
        .get(node.url("/api/v1/reference"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let content_type = page.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert!(content_type.to_str().unwrap_or("").starts_with("text/html"));
    let page = page.text().await.expect("page text");
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("operations").values() {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(
                page.contains(&format!("id=\"{id}\"")),
                "{id} not on the page"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_as_documented() {
    let node = spawn_with_auth().await;
    let doc: Value = node
        .client
        .get(node.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("document")
        .json()
        .await
        .expect("JSON");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            // No such object: a path parameter every route accepts and nothing names.
            let url = path.replace("{id}", "9999");
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("m");
            let mut request = node.client.request(method.clone(), node.url(&url));
            request = request.bearer_auth(ADMIN);
            if op.get("requestBody").is_some() {
                request = request.json(&json!({}));
            }
            let response = request.send().await.expect("answer");
            let status = response.status();
            let documented = op["responses"].get(status.as_str()).is_some();
            assert!(
                documented,
                "{method} {url}: {status} is not in the document"
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {url}");
            if status == StatusCode::NOT_FOUND {
                // The object is missing, not the route.
                let problem: Value = response.json().await.expect("problem");
                let detail = problem["detail"].as_str().unwrap_or_default();
                assert!(
                    !detail.starts_with("no such resource"),
                    "{method} {url}: {detail}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, app::api::Endpoint::ALL.len());
}
