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

/// `raft3d_certificate_expiry_timestamp_seconds{certificate="node"|"ca"}` (absent with
/// `--insecure`): an alert fires well before a node's certificate lapses and its peers
/// refuse it.
fn render_certificate_expiries(out: &mut String, expiries: &[(&'static str, i64)]) {
    use std::fmt::Write;
    if expiries.is_empty() {
        return;
    }
    let name = "raft3d_certificate_expiry_timestamp_seconds";
    let _ = writeln!(out, "# HELP {name} When this node's peer certificate (node) and its cluster CA's (ca) stop being valid, Unix seconds.\n# TYPE {name} gauge");
    for (which, at) in expiries {
        let _ = writeln!(out, "{name}{{certificate=\"{which}\"}} {at}");
    }
}

pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let mut text = state
        .metrics
        .render(&state.farm.metrics(), &state.write_timings);
    state.streams.metrics.render(&mut text);
    render_certificate_expiries(&mut text, &state.certificate_expiries);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
