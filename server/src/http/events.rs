//! `GET /api/v1/events`: the farm's change stream as Server-Sent Events, served by any
//! node from what it has applied (`store::event_journal`).
//!
//! ```text
//! id: 1234
//! event: job.status
//! data: {"id":"…","status":"Running",…}
//! ```
//!
//! `id:` is the log index of the entry that made the change. An entry that carries
//! several changes (concurrent writes are batched into one entry) gives its last event
//! the plain index and the ones before it `index.k` (the first k events of the entry
//! seen), so that `Last-Event-ID` (or `?after=`) resumes exactly after the last event a
//! client processed, on any node. A position older than the node holds gets one
//! `event: reset` whose `id:` is the node's applied index: read the lists again (with
//! `?min_index=` that index) and go on with the events that follow.
//!
//! Each subscriber has a feeding task that reads the journal at its own pace and hands
//! at most [`CHUNKS_AHEAD`] chunks to the connection; a subscriber that takes none of
//! them for [`StreamSettings::slow_subscriber`] is cut off. Writes never wait for
//! subscribers.

use super::error::ApiError;
use super::{query_params, streamed_body, with_index, ApiResult, ApiState, QueryParams};
use crate::store::event_journal::{EventJournal, Position, Read};
use app::api::{FieldProblem, RequestError};
use app::AccessRole;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, watch};

/// Chunks handed to a connection ahead of what it has sent: with [`CHUNK_BUDGET`],
/// a subscriber costs the node at most about a quarter of a megabyte.
const CHUNKS_AHEAD: usize = 4;
/// About this many bytes of events go into one chunk.
const CHUNK_BUDGET: usize = 64 * 1024;
/// How a node's change streams behave (`--events-heartbeat-ms`,
/// `--events-slow-subscriber-ms`).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// A comment is sent after this long without events, so proxies and clients see the
    /// stream is alive (and a dead client is noticed).
    pub heartbeat: Duration,
    /// A subscriber whose connection takes nothing for this long is cut off.
    pub slow_subscriber: Duration,
    pub metrics: Arc<StreamMetrics>,
    /// Turns true when the node stops: every stream ends then (a client goes on from its
    /// last event id on another node), so no stream keeps a stopped node's files open.
    pub stopped: watch::Receiver<bool>,
}

/// Shown on `/metrics`.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    /// Open change streams.
    pub subscribers: AtomicU64,
    /// Streams ended because their subscriber stopped taking events.
    pub cut_off: AtomicU64,
}

/// `GET /api/v1/events[?after=POSITION]`, or with `Last-Event-ID: POSITION` (which wins:
/// a reconnecting `EventSource` sends it with the URL it first used). Without either,
/// the stream starts with the next change.
pub async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult {
    let params = query_params(query)?;
    let bad = |field: &'static str| RequestError::Invalid {
        field,
        problem: FieldProblem::EventPosition,
    };
    let resume = match (headers.get("last-event-id"), params.get("after")) {
        (Some(header), _) => Some(
            header
                .to_str()
                .ok()
                .and_then(Position::parse)
                .ok_or(bad("Last-Event-ID"))?,
        ),
        (None, Some(raw)) => Some(Position::parse(raw).ok_or(bad("after"))?),
        (None, None) => None,
    };
    let journal = state.farm.journal();
    let applied = *journal.watch_applied().borrow();
    let position = resume.unwrap_or(Position::after(applied));
    let (chunks, body) = mpsc::channel(CHUNKS_AHEAD);
    // The token was checked when the stream opened (`auth::authorize`); a stream must
    // not outlive its revocation, so it is checked again before every chunk.
    let allowed = {
        let (auth, farm) = (state.auth.clone(), state.farm.clone());
        move || {
            auth.caller(&headers, &farm.local_state().farm)
                .is_ok_and(|caller| caller.role.is_some_and(|r| r.allows(AccessRole::Viewer)))
        }
    };
    let feeder = Feeder {
        journal,
        chunks,
        settings: state.streams.clone(),
        allowed: Box::new(allowed),
    };
    tokio::spawn(feeder.run(position));
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        // Reverse proxies (nginx) must pass events on as they come.
        .header("x-accel-buffering", "no")
        .body(streamed_body(body))
        .map_err(|_| ApiError::Internal("building the event stream"))?;
    Ok(with_index(response, Some(applied)))
}

/// Why a feed ended.
enum Ended {
    /// The client went away.
    Gone,
    /// The client took nothing for too long.
    Slow,
    /// The token that opened the stream was revoked.
    Revoked,
}

/// One subscriber's feeding task.
struct Feeder {
    journal: EventJournal,
    chunks: mpsc::Sender<Result<Bytes, std::convert::Infallible>>,
    settings: StreamSettings,
    allowed: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Feeder {
    async fn run(self, position: Position) {
        let metrics = self.settings.metrics.clone();
        metrics.subscribers.fetch_add(1, Ordering::Relaxed);
        match self.follow(position).await {
            Err(Ended::Slow) => {
                metrics.cut_off.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    after = ?self.settings.slow_subscriber,
                    "an event subscriber took nothing for too long and was cut off"
                );
            }
            Err(Ended::Revoked) => tracing::info!("an event stream's token was revoked: ended"),
            Ok(()) | Err(Ended::Gone) => {}
        }
        metrics.subscribers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sends one chunk; `Err` ends the feed.
    async fn send(&self, chunk: String) -> Result<(), Ended> {
        if !(self.allowed)() {
            return Err(Ended::Revoked);
        }
        match self
            .chunks
            .send_timeout(Ok(Bytes::from(chunk)), self.settings.slow_subscriber)
            .await
        {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => Err(Ended::Slow),
            Err(SendTimeoutError::Closed(_)) => Err(Ended::Gone),
        }
    }

    async fn follow(&self, mut position: Position) -> Result<(), Ended> {
        let mut applied = self.journal.watch_applied();
        let mut stopped = self.settings.stopped.clone();
        // At once, so a client knows the stream is open before the first change.
        self.send(": connected\n\n".to_owned()).await?;
        loop {
            // A sender gone without a `true` is a node dropped without a shutdown.
            if *stopped.borrow() || stopped.has_changed().is_err() {
                return Ok(());
            }
            match self.journal.read(position, CHUNK_BUDGET) {
                Read::Events { entries, skip } => {
                    let mut chunk = String::new();
                    for (n, entry) in entries.iter().enumerate() {
                        let count = entry.events.len();
                        let first = if n == 0 { skip } else { 0 };
                        for (k, event) in entry.events.iter().enumerate().skip(first) {
                            let id = if k + 1 == count {
                                entry.index.to_string()
                            } else {
                                format!("{}.{}", entry.index, k + 1)
                            };
                            let _ = write!(
                                chunk,
                                "id: {id}\nevent: {}\ndata: {}\n\n",
                                event.kind, event.data
                            );
                        }
                        position = Position::after(entry.index);
                    }
                    self.send(chunk).await?;
                }
                Read::Reset { applied } => {
                    let chunk = format!(
                        "id: {applied}\nevent: reset\ndata: {{\"index\":{applied},\"reason\":\"this node no longer holds the changes after the position asked for (a snapshot replaced them, or they are older than the 8 MiB it keeps): read the lists again with min_index={applied}\"}}\n\n"
                    );
                    self.send(chunk).await?;
                    position = Position::after(applied);
                }
                Read::UpToDate { applied: at } => {
                    tokio::select! {
                        // The guard `wait_for` gives back must not live across an await.
                        moved = async { applied.wait_for(|&now| now > at).await.is_ok() } => {
                            if !moved {
                                return Err(Ended::Gone);
                            }
                        }
                        () = tokio::time::sleep(self.settings.heartbeat) => {
                            self.send(": heartbeat\n\n".to_owned()).await?;
                        }
                        () = self.chunks.closed() => return Err(Ended::Gone),
                        () = async { let _ = stopped.wait_for(|&stop| stop).await; } => return Ok(()),
                    }
                }
            }
        }
    }
}

impl StreamMetrics {
    /// `raft3d_event_subscribers` and `raft3d_event_subscribers_cut_off_total`.
    pub fn render(&self, out: &mut String) {
        let subscribers = self.subscribers.load(Ordering::Relaxed);
        let cut_off = self.cut_off.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP raft3d_event_subscribers Open change streams (GET /api/v1/events).\n\
             # TYPE raft3d_event_subscribers gauge\n\
             raft3d_event_subscribers {subscribers}\n\
             # HELP raft3d_event_subscribers_cut_off_total Change streams ended because their client took nothing for --events-slow-subscriber-ms.\n\
             # TYPE raft3d_event_subscribers_cut_off_total counter\n\
             raft3d_event_subscribers_cut_off_total {cut_off}\n"
        );
    }
}
