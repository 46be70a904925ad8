//! The server side of peer traffic: the axum router on `--raft-addr`.
//!
//! Each handler decodes an openraft request, hands it to the local `Raft`, and returns
//! openraft's result as JSON. Append-entries come over append streams instead: HTTP
//! connections upgraded to a sequence of [`frame`]s, served one request at a time (see
//! `network`). Nothing here makes decisions of its own; client traffic never reaches
//! this listener.
//!
//! With TLS (the default), a peer must present a certificate of this cluster's CA naming
//! the node it claims to be, and be a member (`admit`). Every request must carry the
//! sender's identity (`crate::identity`): another cluster,
//! or a member whose incarnation differs from the one the membership records (it came
//! back with a wiped data directory), gets `403` and changes nothing; a request that
//! speaks for another node than its sender (a vote or append naming someone else) too.
//! Every answer carries this node's identity.

use super::network::{
    NodeInfo, APPEND_STREAM_PATH, APPEND_STREAM_PROTOCOL, FILES_PATH, SNAPSHOT_META_HEADER,
    SNAPSHOT_VOTE_HEADER, TELEMETRY_PATH,
};
use super::typ::{NodeId, Raft, SnapshotMeta, Vote};
use super::{frame, TypeConfig};
use crate::identity::{LocalIdentity, NodeIdentity, Refusal, RefusalLog};
use crate::listener::PeerCertificate;
use crate::pki::PeerTls;
use crate::write_timing::{WriteStage, WriteTimings};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::header::{CONNECTION, UPGRADE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// Largest peer request accepted: a whole snapshot travels in one body (into a file, a
/// buffer at a time: `SnapshotFiles::receive`).
const MAX_PEER_BODY: usize = 1 << 30;

/// Where a peer asks who this node is.
const INFO_PATH: &str = "/raft/info";

/// What peers exchange besides Raft's own traffic: stored G-code files (`crate::files`)
/// and the printers' live values, which followers copy from the leader.
#[derive(Clone)]
pub struct PeerShared {
    /// Answers followers' read index requests, in rounds shared with local reads.
    pub reads: super::read_index::ReadIndex,
    pub files: crate::files::FileStore,
    /// Largest file accepted (`--max-upload-mib`).
    pub max_file_bytes: u64,
    pub live: crate::driver::live::LiveBoard,
    /// Where a snapshot sent by the leader is received into.
    pub snapshots: std::sync::Arc<crate::store::snapshot_files::SnapshotFiles>,
}

/// What the peer service needs: the local Raft, who this node is, and when it stops
/// (upgraded connections outlive the HTTP server's graceful shutdown).
#[derive(Clone)]
pub struct PeerState {
    pub raft: Raft,
    /// This node's client URL (for `/raft/info`).
    pub http_url: String,
    pub identity: LocalIdentity,
    /// `None` with `--insecure`: then peers are not authenticated.
    pub tls: Option<PeerTls>,
    /// Largest append-entries frame accepted (`frame::max_append_frame`).
    pub max_frame: usize,
    pub stopped: watch::Receiver<bool>,
    /// What peers fetch and push besides Raft's own traffic.
    pub shared: PeerShared,
    refusals: RefusalLog,
    /// Where this node's side of replication is recorded (see [`PeerState::timed_by`]).
    write_timings: WriteTimings,
}

impl PeerState {
    pub fn new(
        raft: Raft,
        http_url: String,
        identity: LocalIdentity,
        tls: Option<PeerTls>,
        max_frame: usize,
        stopped: watch::Receiver<bool>,
        shared: PeerShared,
    ) -> Self {
        Self {
            raft,
            http_url,
            identity,
            tls,
            max_frame,
            stopped,
            shared,
            refusals: RefusalLog::default(),
            write_timings: WriteTimings::default(),
        }
    }

    /// Records the follower's side of each append in `timings` (the node's `/metrics`).
    pub fn timed_by(self, write_timings: WriteTimings) -> Self {
        Self {
            write_timings,
            ..self
        }
    }

    fn refuse(&self, peer: NodeId, refusal: Refusal) -> Response {
        self.refusals.warn(peer, "request refused", &refusal);
        (StatusCode::FORBIDDEN, refusal.to_string()).into_response()
    }
}

pub fn router(state: PeerState) -> Router {
    Router::new()
        .route(APPEND_STREAM_PATH, get(append_stream))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/read-index", post(read_index))
        .route(INFO_PATH, get(info))
        .route(TELEMETRY_PATH, get(telemetry))
        .route(
            &format!("{FILES_PATH}/{{sha256}}"),
            get(send_file).put(receive_file),
        )
        .layer(middleware::from_fn_with_state(state.clone(), admit_peer))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .with_state(state)
}

/// A peer pushes a stored file: kept once it is on disk, fsynced, with the hash it is
/// named by (`crate::files`).
async fn receive_file(
    State(state): State<PeerState>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
    body: Body,
) -> Response {
    if !crate::files::is_sha256(&sha256) {
        return (StatusCode::BAD_REQUEST, "not a SHA-256").into_response();
    }
    let stream = body.into_data_stream();
    match state
        .shared
        .files
        .receive(stream, state.shared.max_file_bytes, Some(&sha256))
        .await
    {
        Ok(_) => StatusCode::CREATED.into_response(),
        Err(error) => {
            tracing::warn!(%error, file = %sha256, "a file pushed by a peer was not stored");
            (StatusCode::UNPROCESSABLE_ENTITY, error.to_string()).into_response()
        }
    }
}

/// A follower copies this node's printer telemetry.
async fn telemetry(State(state): State<PeerState>) -> Json<Vec<app::domain::PrinterLive>> {
    Json(state.shared.live.snapshot())
}

/// A peer fetches a stored file this node holds.
async fn send_file(
    State(state): State<PeerState>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
) -> Response {
    let Some(path) = state.shared.files.path(&sha256) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::File::open(path).await {
        Ok(file) => Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Lets through only requests from a member of this cluster (see [`admit`]), and signs
/// every answer with this node's identity.
async fn admit_peer(State(state): State<PeerState>, mut request: Request, next: Next) -> Response {
    let presented = NodeIdentity::from_headers(request.headers());
    let sender = presented.as_ref().map_or(0, |peer| peer.node_id);
    let verdict = presented.and_then(|peer| admit(&state, &request, peer));
    let mut response = match verdict {
        Ok(peer) => {
            request.extensions_mut().insert(peer);
            next.run(request).await
        }
        Err(refusal) => state.refuse(sender, refusal),
    };
    state.identity.sign(response.headers_mut());
    response
}

/// Admits `peer`'s request only if, in this order:
/// - with TLS, the connection's certificate (from this cluster's CA: the handshake
///   checked that) names the node id the request claims;
/// - that id is a member (voter or learner) of the membership this node knows, or this
///   node knows none yet (it is being added, or was wiped, and waits for the leader);
/// - its cluster and incarnation are the ones this node knows (`crate::identity`;
///   `/raft/info` skips the incarnation: it is how the leader learns it). A node in no
///   cluster yet joins the cluster of the first peer that talks to it.
fn admit(
    state: &PeerState,
    request: &Request,
    peer: NodeIdentity,
) -> Result<NodeIdentity, Refusal> {
    if let Some(tls) = &state.tls {
        let certificate = request.extensions().get::<PeerCertificate>();
        if !certificate.is_some_and(|cert| tls.names(&cert.0, peer.node_id)) {
            return Err(Refusal::Certificate { node: peer.node_id });
        }
    }
    let membership = Membership::of(&state.raft, peer.node_id);
    if !membership.admits {
        return Err(Refusal::NotMember { node: peer.node_id });
    }
    let asks_who = request.uri().path() == INFO_PATH;
    let recorded = membership.incarnation.filter(|_| !asks_who);
    state
        .identity
        .admit(&peer, recorded.as_deref(), !asks_who)?;
    Ok(peer)
}

/// What the membership this node knows says about a sender.
struct Membership {
    /// It is a member, or no membership is known yet.
    admits: bool,
    /// The incarnation recorded for it, if any.
    incarnation: Option<String>,
}

impl Membership {
    /// Reads the metrics without holding them across an await (openraft#1238).
    fn of(raft: &Raft, id: NodeId) -> Self {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let node = membership.get_node(&id);
        Self {
            admits: node.is_some() || membership.nodes().next().is_none(),
            incarnation: node.and_then(|node| node.incarnation.clone()),
        }
    }
}

/// Refuses a request that speaks for (carries the vote of) another node than its sender.
fn speaks_for_itself(peer: &NodeIdentity, claimed: NodeId) -> Result<(), Refusal> {
    match peer.node_id == claimed {
        true => Ok(()),
        false => Err(Refusal::Impersonation {
            node: peer.node_id,
            claimed,
        }),
    }
}

/// Upgrades the connection to an append stream and serves it on a task of its own.
async fn append_stream(
    State(state): State<PeerState>,
    Extension(peer): Extension<NodeIdentity>,
    mut request: Request,
) -> Response {
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
                serve_append_stream(io, state, peer).await;
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
/// is bad or speaks for another leader than the stream's sender (then the stream is
/// closed: the leader opens a new one), or the node stops.
async fn serve_append_stream<S>(mut io: S, state: PeerState, peer: NodeIdentity)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let PeerState {
        raft,
        mut stopped,
        write_timings,
        ..
    } = state.clone();
    let follower_append = write_timings.histogram(WriteStage::FollowerAppend);
    loop {
        let request = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            request = frame::read::<_, AppendEntriesRequest<TypeConfig>>(&mut io, state.max_frame) => request,
        };
        let request = match request {
            Ok(request) => request,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(error) => {
                tracing::warn!(%error, "bad frame on an append stream; closing it");
                return;
            }
        };
        if let Err(refusal) = speaks_for_itself(&peer, request.vote.leader_id.node_id) {
            let _ = state.refuse(peer.node_id, refusal);
            return;
        }
        // Heartbeats (no entries) are not part of any write's time.
        let _timer = (!request.entries.is_empty()).then(|| follower_append.start_timer());
        let reply = raft.append_entries(request).await;
        if let Err(error) = frame::write(&mut io, &reply).await {
            tracing::debug!(%error, "append stream closed while answering");
            return;
        }
    }
}

async fn vote(
    State(state): State<PeerState>,
    Extension(peer): Extension<NodeIdentity>,
    Json(request): Json<VoteRequest<NodeId>>,
) -> Response {
    if let Err(refusal) = speaks_for_itself(&peer, request.vote.leader_id.node_id) {
        return state.refuse(peer.node_id, refusal);
    }
    Json(state.raft.vote(request).await).into_response()
}

async fn snapshot(
    State(state): State<PeerState>,
    Extension(peer): Extension<NodeIdentity>,
    headers: HeaderMap,
    body: Body,
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
    if let Err(refusal) = speaks_for_itself(&peer, vote.leader_id.node_id) {
        return state.refuse(peer.node_id, refusal);
    }
    let received = state
        .shared
        .snapshots
        .receive(body.into_data_stream(), MAX_PEER_BODY)
        .await;
    let file = match received {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(%error, from = peer.node_id, "a snapshot was not received whole");
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    let snapshot = openraft::Snapshot {
        meta,
        snapshot: Box::new(file),
    };
    // A snapshot openraft does not install is dropped, which removes its file.
    Json(state.raft.install_full_snapshot(vote, snapshot).await).into_response()
}

async fn read_index(State(state): State<PeerState>) -> impl IntoResponse {
    Json(state.shared.reads.read_log_id().await)
}

/// Who this node is and where its clients reach it; the leader collects these into the
/// membership (see [`crate::members::maintain`]).
async fn info(State(state): State<PeerState>) -> Response {
    let identity = state.identity.get();
    let initialized = match state.raft.is_initialized().await {
        Ok(initialized) => initialized,
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    Json(NodeInfo {
        id: identity.node_id,
        http_url: state.http_url.clone(),
        incarnation: identity.incarnation,
        initialized,
    })
    .into_response()
}
