//! The server side of peer traffic: the axum router on `--raft-addr`.
//!
//! Each handler decodes an openraft request, hands it to the local `Raft`, and returns
//! openraft's result as JSON. Nothing here makes decisions of its own; client traffic
//! never reaches this listener.

use super::network::{NodeInfo, SNAPSHOT_META_HEADER, SNAPSHOT_VOTE_HEADER};
use super::typ::{NodeId, Raft, SnapshotMeta, Vote};
use super::TypeConfig;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use std::io::Cursor;

/// Largest peer request accepted: a whole snapshot travels in one body.
const MAX_PEER_BODY: usize = 1 << 30;

/// What the peer service needs: the local Raft and who this node is.
#[derive(Clone)]
pub struct PeerState {
    pub raft: Raft,
    pub info: NodeInfo,
}

pub fn router(raft: Raft, node: NodeInfo) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/read-index", post(read_index))
        .route("/raft/info", get(info))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .with_state(PeerState { raft, info: node })
}

async fn append(
    State(PeerState { raft, .. }): State<PeerState>,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> impl axum::response::IntoResponse {
    Json(raft.append_entries(request).await)
}

async fn vote(
    State(PeerState { raft, .. }): State<PeerState>,
    Json(request): Json<VoteRequest<NodeId>>,
) -> impl axum::response::IntoResponse {
    Json(raft.vote(request).await)
}

async fn snapshot(
    State(PeerState { raft, .. }): State<PeerState>,
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

async fn read_index(
    State(PeerState { raft, .. }): State<PeerState>,
) -> impl axum::response::IntoResponse {
    Json(
        raft.get_read_log_id()
            .await
            .map(|(read_log_id, _applied)| read_log_id),
    )
}

/// Who this node is and where its clients reach it; the leader collects these into the
/// membership (see `node::maintain_client_urls`).
async fn info(State(state): State<PeerState>) -> Json<NodeInfo> {
    Json(state.info)
}
