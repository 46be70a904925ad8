//! The server side of peer traffic: the axum router on `--raft-addr`.
//!
//! Each handler decodes an openraft request, hands it to the local `Raft`, and returns
//! openraft's result as JSON. Append-entries come over append streams instead: HTTP
//! connections upgraded to a sequence of [`frame`]s, served one request at a time (see
//! `network`). Nothing here makes decisions of its own; client traffic never reaches
//! this listener.

use super::network::{
    NodeInfo, APPEND_STREAM_PATH, APPEND_STREAM_PROTOCOL, SNAPSHOT_META_HEADER,
    SNAPSHOT_VOTE_HEADER,
};
use super::typ::{NodeId, Raft, SnapshotMeta, Vote};
use super::{frame, TypeConfig};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{CONNECTION, UPGRADE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use std::io::Cursor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// Largest peer request accepted: a whole snapshot travels in one body.
const MAX_PEER_BODY: usize = 1 << 30;

/// What the peer service needs: the local Raft, who this node is, and when it stops
/// (upgraded connections outlive the HTTP server's graceful shutdown).
#[derive(Clone)]
pub struct PeerState {
    pub raft: Raft,
    pub info: NodeInfo,
    pub stopped: watch::Receiver<bool>,
}

pub fn router(raft: Raft, node: NodeInfo, stopped: watch::Receiver<bool>) -> Router {
    Router::new()
        .route(APPEND_STREAM_PATH, get(append_stream))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/read-index", post(read_index))
        .route("/raft/info", get(info))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .with_state(PeerState {
            raft,
            info: node,
            stopped,
        })
}

/// Upgrades the connection to an append stream and serves it on a task of its own.
async fn append_stream(State(state): State<PeerState>, mut request: Request) -> Response {
    let asks_for_stream = request
        .headers()
        .get(UPGRADE)
        .is_some_and(|protocol| protocol == APPEND_STREAM_PROTOCOL);
    if !asks_for_stream {
        let why = format!("expected `Upgrade: {APPEND_STREAM_PROTOCOL}`");
        return (StatusCode::UPGRADE_REQUIRED, why).into_response();
    }
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                serve_append_stream(io, state.raft, state.stopped).await;
            }
            Err(error) => tracing::warn!(%error, "append stream upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, APPEND_STREAM_PROTOCOL)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Answers append-entries frames in order until the leader closes the stream, a frame
/// is bad (then the stream is closed: the leader opens a new one), or the node stops.
async fn serve_append_stream<S>(mut io: S, raft: Raft, mut stopped: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let request = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            request = frame::read::<_, AppendEntriesRequest<TypeConfig>>(&mut io) => request,
        };
        let request = match request {
            Ok(request) => request,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(error) => {
                tracing::warn!(%error, "bad frame on an append stream; closing it");
                return;
            }
        };
        let reply = raft.append_entries(request).await;
        if let Err(error) = frame::write(&mut io, &reply).await {
            tracing::debug!(%error, "append stream closed while answering");
            return;
        }
    }
}

async fn vote(
    State(PeerState { raft, .. }): State<PeerState>,
    Json(request): Json<VoteRequest<NodeId>>,
) -> impl IntoResponse {
    Json(raft.vote(request).await)
}

async fn snapshot(
    State(PeerState { raft, .. }): State<PeerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

async fn read_index(State(PeerState { raft, .. }): State<PeerState>) -> impl IntoResponse {
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
