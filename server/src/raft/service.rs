//! The server side of peer traffic: the axum router on `--raft-addr`.
//!
//! Each handler decodes an openraft request, hands it to the local `Raft`, and returns
//! openraft's result as JSON. Nothing here makes decisions of its own; client traffic
//! never reaches this listener.

use super::network::{RegisterReply, RegisterRequest, SNAPSHOT_META_HEADER, SNAPSHOT_VOTE_HEADER};
use super::typ::{NodeId, Raft, SnapshotMeta, Vote};
use super::{NodeAddr, TypeConfig};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::ChangeMembers;
use std::collections::BTreeMap;
use std::io::Cursor;

/// Largest peer request accepted: a whole snapshot travels in one body.
const MAX_PEER_BODY: usize = 1 << 30;

pub fn router(raft: Raft) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/read-index", post(read_index))
        .route("/raft/register", post(register))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .with_state(raft)
}

async fn append(
    State(raft): State<Raft>,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> impl axum::response::IntoResponse {
    Json(raft.append_entries(request).await)
}

async fn vote(
    State(raft): State<Raft>,
    Json(request): Json<VoteRequest<NodeId>>,
) -> impl axum::response::IntoResponse {
    Json(raft.vote(request).await)
}

async fn snapshot(
    State(raft): State<Raft>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header_json = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(vote), Some(meta)) = (
        header_json(SNAPSHOT_VOTE_HEADER),
        header_json(SNAPSHOT_META_HEADER),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing snapshot headers").into_response();
    };
    let (Ok(vote), Ok(meta)) = (
        serde_json::from_str::<Vote>(&vote),
        serde_json::from_str::<SnapshotMeta>(&meta),
    ) else {
        return (StatusCode::BAD_REQUEST, "bad snapshot headers").into_response();
    };
    let snapshot = openraft::Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(body.to_vec())),
    };
    Json(raft.install_full_snapshot(vote, snapshot).await).into_response()
}

async fn read_index(State(raft): State<Raft>) -> impl axum::response::IntoResponse {
    Json(
        raft.get_read_log_id()
            .await
            .map(|(read_log_id, _applied)| read_log_id),
    )
}

/// Stores a member's client URL in the membership (leader only), so every node can
/// redirect clients to every other node.
async fn register(
    State(raft): State<Raft>,
    Json(request): Json<RegisterRequest>,
) -> Json<RegisterReply> {
    Json(store_client_url(&raft, request.id, request.http_url).await)
}

/// Writes `http_url` into member `id`'s entry of the membership, if it differs. Only
/// succeeds on the leader; used by the register RPC and by the leader for itself.
pub async fn store_client_url(raft: &Raft, id: NodeId, http_url: String) -> RegisterReply {
    // Copy what we need out of the metrics: never hold the watch borrow across an await.
    let current = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&id)
        .cloned();
    let Some(current) = current else {
        return Err(format!("node {id} is not a member"));
    };
    if current.http_url.as_deref() == Some(http_url.as_str()) {
        return Ok(());
    }
    let updated = NodeAddr {
        http_url: Some(http_url),
        ..current
    };
    let change = ChangeMembers::SetNodes(BTreeMap::from([(id, updated)]));
    raft.change_membership(change, false)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
