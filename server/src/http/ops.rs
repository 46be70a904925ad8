//! Operator endpoints: `/healthz` (the process is up), `/readyz` (a member of a cluster
//! that has a leader, with its Raft core running) and `/metrics` (Prometheus).

use super::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    let metrics = state.farm.metrics();
    let member = metrics
        .membership_config
        .membership()
        .get_node(&state.farm.id())
        .is_some();
    if let Err(fatal) = &metrics.running_state {
        let why = format!("not ready: the Raft core stopped: {fatal}\n");
        return (StatusCode::SERVICE_UNAVAILABLE, why);
    }
    match (member, metrics.current_leader) {
        (true, Some(leader)) => (StatusCode::OK, format!("ready: leader is node {leader}\n")),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not a member of a cluster yet\n".to_owned(),
        ),
        (true, None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader known\n".to_owned(),
        ),
    }
}

pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let mut text = state
        .metrics
        .render(&state.farm.metrics(), &state.write_timings);
    state.streams.metrics.render(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
