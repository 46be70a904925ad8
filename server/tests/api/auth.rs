//! API tokens and roles: without a token nothing of the farm is read or changed; a
//! viewer reads, an operator changes the farm, an admin runs the cluster and its tokens;
//! a revoked token is refused; tokens survive a restart; idempotency keys are per token.

use crate::helpers::{config, TestNode};
use raft3d::http::auth::secret_sha256;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const ADMIN: &str = "r3d_admin-secret-of-this-test";

fn auth_config(dir: &TempDir, raft_port: u16) -> raft3d::NodeConfig {
    let mut config = config(dir, raft_port);
    config.client_auth = true;
    config.admin_token_sha256 = Some(secret_sha256(ADMIN));
    config
}

pub async fn spawn_with_auth() -> TestNode {
    let dir = TempDir::new().expect("temp dir");
    let raft_port = raft3d_launcher::ports::free_port();
    TestNode::start(auth_config(&dir, raft_port), dir, raft_port).await
}

/// Sends `method path` with `token` (if any) and a JSON `body` (if any).
async fn call(
    node: &TestNode,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = node.client.request(method, node.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// `GET path` with `token`.
async fn get_as(node: &TestNode, token: &str, path: &str) -> (StatusCode, Value) {
    call(node, Some(token), Method::GET, path, None, None).await
}

async fn make_token(node: &TestNode, name: &str, role: &str) -> (String, String) {
    let body = json!({"name": name, "role": role});
    let (status, made) = call(
        node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/tokens",
        Some(body),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_owned();
    (made["id"].as_str().expect("id").to_owned(), secret)
}

fn printer(model: &str) -> Value {
    json!({"company": "Prusa", "model": model})
}

#[tokio::test]
async fn without_a_token_nothing_of_the_farm_is_read_or_changed() {
    let node = spawn_with_auth().await;
    let (status, _) = call(
        &node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/printers",
        Some(printer("Hidden-MK4")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let refused = [
        (Method::GET, "/api/v1/printers", None),
        (Method::GET, "/api/v1/tokens", None),
        (Method::POST, "/api/v1/printers", Some(printer("X"))),
        (Method::DELETE, "/api/v1/cluster/nodes/1", None),
        (
            Method::POST,
            "/api/v1/cluster/nodes",
            Some(json!({"id": 9, "raft_addr": "evil:1"})),
        ),
    ];
    for (method, path, body) in refused {
        for token in [None, Some("r3d_made-up"), Some("not even bearer")] {
            let (status, problem) =
                call(&node, token, method.clone(), path, body.clone(), None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}: {problem}"
            );
            assert_eq!(
                problem["type"],
                "https://raft3d.dev/problems/unauthenticated"
            );
        }
    }
    let response = node
        .client
        .get(node.url("/api/v1/printers"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    // Open: health, metrics, the cluster view (how a client finds the leader).
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/cluster"] {
        assert_eq!(node.get(path).await.status(), StatusCode::OK, "{path}");
    }
    // A page renders, without the farm in it.
    let page = node.get("/printers").await.text().await.expect("page");
    assert!(
        !page.contains("Hidden-MK4"),
        "the farm leaked into the page"
    );
    assert!(page.contains("login_required\":true"), "{page}");
    // Nothing changed.
    let (_, printers) = get_as(&node, ADMIN, "/api/v1/printers").await;
    assert_eq!(printers.as_array().map(Vec::len), Some(1), "{printers}");
    let view = node.cluster_view().await;
    assert_eq!(view.members.len(), 1);
}

#[tokio::test]
async fn each_role_does_what_it_may_and_no_more() {
    let node = spawn_with_auth().await;
    let (_, viewer) = make_token(&node, "wall screen", "viewer").await;
    let (operator_id, operator) = make_token(&node, "front desk", "operator").await;

    let create = |token: String, model: &'static str| {
        let node = &node;
        async move {
            call(
                node,
                Some(&token),
                Method::POST,
                "/api/v1/printers",
                Some(printer(model)),
                None,
            )
            .await
        }
    };
    assert_eq!(create(operator.clone(), "A").await.0, StatusCode::CREATED);
    let (status, problem) = create(viewer.clone(), "B").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["type"], "https://raft3d.dev/problems/forbidden");
    let (status, printers) = get_as(&node, &viewer, "/api/v1/printers").await;
    assert_eq!(
        (status, printers.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );

    for (method, path, body) in [
        (Method::GET, "/api/v1/tokens", None),
        (
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (Method::DELETE, "/api/v1/cluster/nodes/1", None),
    ] {
        let (status, _) = call(&node, Some(&operator), method.clone(), path, body, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "operator: {method} {path}");
    }

    // The list never shows secrets or their hashes.
    let (_, tokens) = get_as(&node, ADMIN, "/api/v1/tokens").await;
    let listed = tokens.to_string();
    assert_eq!(tokens.as_array().map(Vec::len), Some(2), "{listed}");
    assert!(
        !listed.contains(&operator) && !listed.contains("sha256"),
        "{listed}"
    );

    // Revoked: refused from then on, listed as revoked; revoking again answers the same.
    let path = format!("/api/v1/tokens/{operator_id}");
    let revoke = |path: String| {
        let node = &node;
        async move { call(node, Some(ADMIN), Method::DELETE, &path, None, None).await }
    };
    let (status, revoked) = revoke(path.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_ms"].is_u64(), "{revoked}");
    assert_eq!(create(operator, "C").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(revoke(path).await, (StatusCode::OK, revoked));
    let unknown = revoke("/api/v1/tokens/nope".to_owned()).await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_admin_token_of_init_is_revoked_once_admins_have_their_own() {
    let node = spawn_with_auth().await;
    let (_, own_admin) = make_token(&node, "farm manager", "admin").await;
    let (status, revoked) = call(
        &node,
        Some(&own_admin),
        Method::DELETE,
        "/api/v1/tokens/bootstrap",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let (status, _) = get_as(&node, ADMIN, "/api/v1/printers").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the init token is refused now"
    );
    let (status, tokens) = get_as(&node, &own_admin, "/api/v1/tokens").await;
    assert_eq!(status, StatusCode::OK);
    assert!(tokens.to_string().contains("bootstrap"), "{tokens}");
}

#[tokio::test]
async fn idempotency_keys_are_per_token_and_a_token_secret_is_shown_once() {
    let node = spawn_with_auth().await;
    let (_, first) = make_token(&node, "one", "operator").await;
    let (_, second) = make_token(&node, "two", "operator").await;
    // The same key from two callers: two writes, not one caller seeing the other's answer.
    for (token, model) in [(&first, "A"), (&second, "B")] {
        let (status, made) = call(
            &node,
            Some(token),
            Method::POST,
            "/api/v1/printers",
            Some(printer(model)),
            Some("k1"),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["model"], model);
    }
    // A retried token creation cannot show the secret again.
    let body = json!({"name": "tablet", "role": "viewer"});
    let (status, _) = call(
        &node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/tokens",
        Some(body.clone()),
        Some("t1"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, problem) = call(
        &node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/tokens",
        Some(body),
        Some("t1"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/secret-shown-once"
    );
    // Bad requests are refused with the field named.
    let bad = json!({"name": "x", "role": "root"});
    let (status, problem) = call(
        &node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/tokens",
        Some(bad),
        None,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("role"))
    );
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let node = spawn_with_auth().await;
    let (_, viewer) = make_token(&node, "wall screen", "viewer").await;
    let TestNode {
        node: running,
        dir,
        raft_port,
        ..
    } = node;
    if let Some(running) = running {
        running.shutdown().await;
    }
    let config = auth_config(&dir, raft_port);
    let node = TestNode::start(config, dir, raft_port).await;
    let (status, _) = get_as(&node, &viewer, "/api/v1/printers").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_change_stream_needs_a_viewer_and_ends_when_its_token_is_revoked() {
    let node = spawn_with_auth().await;
    let anonymous = node.get("/api/v1/events").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (id, secret) = make_token(&node, "wall screen", "viewer").await;
    let response = node
        .client
        .get(node.url("/api/v1/events?after=0"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = raft3d_client::EventStream::new(response);
    let (status, _) = call(
        &node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/printers",
        Some(printer("MK4")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let event = stream
        .next(std::time::Duration::from_secs(5))
        .await
        .expect("a stream")
        .expect("the printer's event");
    assert_eq!(event.kind, "printer.created");
    let (status, _) = call(
        &node,
        Some(ADMIN),
        Method::DELETE,
        &format!("/api/v1/tokens/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    call(
        &node,
        Some(ADMIN),
        Method::POST,
        "/api/v1/printers",
        Some(printer("XL")),
        None,
    )
    .await;
    // The next change is not sent to the revoked token: the stream ends.
    let after = stream
        .next(std::time::Duration::from_secs(5))
        .await
        .expect("a stream");
    assert_eq!(after, None, "a revoked token got {after:?}");
}
