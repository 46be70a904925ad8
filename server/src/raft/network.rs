//! The client side of peer traffic: openraft's `RaftNetworkFactory` over HTTP.
//!
//! Peers are called over HTTPS with mutual TLS (`crate::pki`), or plain HTTP with
//! `--insecure`; openraft's per-target clients are cheap handles on pooled `reqwest`
//! clients ([`PeerClients`]). Every call has a timeout, and every
//! outcome is recorded in [`PeerHealth`] so the cluster view can say which members the
//! leader currently reaches.
//!
//! Wire format: JSON bodies of openraft's own request types, answered with a JSON
//! `Result<Response, RaftError>` — this is a private protocol between Raft3D nodes of the
//! same version, so mirroring openraft's types is the simplest correct encoding.
//! Snapshots are the exception: the data is sent as a raw binary body (JSON would turn
//! every byte into a number), with the vote and snapshot meta in headers.
//!
//! Every request carries this node's identity (`crate::identity`) and every answer is
//! checked against the member the membership names: another cluster, another node at
//! that address, or a member that came back with a wiped data directory (a new
//! incarnation) is treated as unreachable, so its vote or acknowledgement never counts.
//!
//! Append-entries, every round of every write, skip HTTP: they go on connections
//! upgraded to a plain stream of [`frame`]s (request, response, ...), pooled per peer in
//! [`Network`] and used by one call at a time. Over HTTP each call crossed to the pool's
//! connection task and back, two more thread wake-ups per round on the leader, and paid
//! for request parsing on both sides.

use super::typ::{LogId, NodeId, RPCError, Snapshot, Vote};
use super::{frame, NodeAddr, TypeConfig};
use crate::identity::{LocalIdentity, NodeIdentity, Refusal, RefusalLog};
use crate::pki::PeerTls;
use crate::write_timing::{WriteStage, WriteTimings};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, PayloadTooLarge, RaftError, RemoteError,
    ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a peer's append stream is opened, and the protocol its connection upgrades to.
pub const APPEND_STREAM_PATH: &str = "/raft/append-stream";
pub const APPEND_STREAM_PROTOCOL: &str = "raft3d-append/1";

/// Where a follower copies the leader's printer telemetry.
pub const TELEMETRY_PATH: &str = "/raft/telemetry";

/// Where stored G-code files travel between peers: `{FILES_PATH}/<sha256>`.
pub const FILES_PATH: &str = "/raft/files";

/// Header carrying the sender's vote with a snapshot.
pub const SNAPSHOT_VOTE_HEADER: &str = "x-raft3d-vote";
/// Header carrying the snapshot's meta (JSON).
pub const SNAPSHOT_META_HEADER: &str = "x-raft3d-snapshot-meta";

/// Timeouts for peer calls.
#[derive(Debug, Clone, Copy)]
pub struct PeerTimeouts {
    /// Append-entries and vote calls.
    pub rpc: Duration,
    /// Whole-snapshot transfer (can be tens of MB on a large farm).
    pub snapshot: Duration,
    /// Pause between append-entries to a peer that could not be reached (openraft's
    /// default is 500 ms; see [`PeerClient`]'s `backoff`).
    pub unreachable_retry: Duration,
    /// How long an idle pooled connection to a peer is kept: shorter than the peers'
    /// own idle limit (`--header-timeout-secs`), so a call never goes out on a
    /// connection the peer is closing at that moment.
    pub pool_idle: Duration,
}

/// The last outcome of calls to each peer, as seen from this node, and the reports of
/// peers that stay unreachable.
///
/// openraft logs the calls that fail here (no connection, no answer) at debug only
/// (vendor patch, `network_reports`): a follower that is restarting, or a peer started a
/// moment after this node, is normal and says nothing. This is where a peer down for
/// long is reported: a warning once no call has reached it for [`DOWN_WARNING_AFTER`],
/// repeated every [`DOWN_WARNING_EVERY`] while it lasts, and a line when it answers again.
#[derive(Debug, Clone, Default)]
pub struct PeerHealth {
    inner: Arc<Mutex<HashMap<NodeId, PeerStatus>>>,
}

/// A peer no call has reached for this long is reported as a warning. A node that
/// restarts is back well within it (a second or two, loading its files included), and
/// so are the peers of a new cluster started together; longer is worth an operator's
/// look.
const DOWN_WARNING_AFTER: Duration = Duration::from_secs(10);
/// While a peer stays down, the warning is repeated this often (not at every retry).
const DOWN_WARNING_EVERY: Duration = Duration::from_secs(60);
/// An outage at least this long is noted (info) when the peer answers again: a restart
/// leaves one line, a single failed call none.
const BACK_NOTE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Default)]
pub struct PeerStatus {
    pub last_ok: Option<Instant>,
    pub last_error: Option<Instant>,
    /// Since when every call has failed; `None` while calls succeed.
    down_since: Option<Instant>,
    /// When the current outage was last reported as a warning.
    warned_at: Option<Instant>,
}

/// What a call's outcome says to log about its peer.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    /// Unreachable for this long: a warning.
    Down(Duration),
    /// Answering again after an outage this long.
    Back(Duration),
}

impl PeerStatus {
    /// Records one call's outcome at `now`; says what to log, if anything.
    fn note(&mut self, now: Instant, ok: bool) -> Option<Report> {
        if ok {
            self.last_ok = Some(now);
            self.warned_at = None;
            let down_for = now.saturating_duration_since(self.down_since.take()?);
            return (down_for >= BACK_NOTE_AFTER).then_some(Report::Back(down_for));
        }
        self.last_error = Some(now);
        let down_for = now.saturating_duration_since(*self.down_since.get_or_insert(now));
        let due = match self.warned_at {
            None => down_for >= DOWN_WARNING_AFTER,
            Some(warned) => now.saturating_duration_since(warned) >= DOWN_WARNING_EVERY,
        };
        due.then(|| {
            self.warned_at = Some(now);
            Report::Down(down_for)
        })
    }
}

impl PeerHealth {
    /// Records the outcome of a call to `target` (`failure`: why it got no answer).
    fn record(&self, target: NodeId, failure: Option<&PeerCallError>) {
        let report = {
            let mut peers = self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let status = peers.entry(target).or_default();
            status.note(Instant::now(), failure.is_none())
        };
        match (report, failure) {
            (Some(Report::Down(down_for)), Some(error)) => tracing::warn!(
                peer = target,
                error = %with_cause(error),
                "peer unreachable for {} s; still retrying",
                down_for.as_secs()
            ),
            (Some(Report::Back(down_for)), _) => tracing::info!(
                peer = target,
                "peer reachable again after {:.1} s",
                down_for.as_secs_f64()
            ),
            _ => {}
        }
    }

    /// Whether the last call to `target` succeeded, and within `window`.
    pub fn reachable(&self, target: NodeId, window: Duration) -> Option<bool> {
        let peers = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = peers.get(&target)?;
        let ok_recent = status.last_ok.is_some_and(|t| t.elapsed() <= window);
        let failed_after = match (status.last_ok, status.last_error) {
            (Some(ok), Some(err)) => err > ok,
            (None, Some(_)) => true,
            _ => false,
        };
        Some(ok_recent && !failed_after)
    }
}

/// Builds per-peer clients over shared connection pools.
#[derive(Clone)]
pub struct Network {
    clients: PeerClients,
    timeouts: PeerTimeouts,
    health: PeerHealth,
    idle_streams: IdleStreams,
    identity: LocalIdentity,
    refusals: RefusalLog,
    /// Where replication round trips are recorded.
    write_timings: WriteTimings,
}

/// HTTP clients for peer calls. Without TLS one client (one keep-alive pool) serves every
/// peer. With TLS each peer gets its own, whose handshake accepts only that node's
/// certificate (`crate::pki`): an address now held by another node, or by anyone without
/// a certificate of this cluster, gets no request at all.
#[derive(Clone)]
struct PeerClients {
    tls: Option<PeerTls>,
    source_ip: Option<std::net::IpAddr>,
    timeouts: PeerTimeouts,
    plain: reqwest::Client,
    by_peer: Arc<Mutex<HashMap<NodeId, reqwest::Client>>>,
}

impl PeerClients {
    fn builder(
        timeouts: &PeerTimeouts,
        source_ip: Option<std::net::IpAddr>,
    ) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .local_address(source_ip)
            .connect_timeout(timeouts.rpc)
            .pool_idle_timeout(timeouts.pool_idle)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
    }

    /// The client for calls to `target`.
    fn client(&self, target: NodeId) -> Result<reqwest::Client, PeerCallError> {
        let Some(tls) = &self.tls else {
            return Ok(self.plain.clone());
        };
        let mut by_peer = self
            .by_peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = by_peer.get(&target) {
            return Ok(client.clone());
        }
        let config = tls
            .client_config(target)
            .map_err(|e| PeerCallError::Tls(e.to_string()))?;
        let client = Self::builder(&self.timeouts, self.source_ip)
            .use_preconfigured_tls(config)
            .build()?;
        by_peer.insert(target, client.clone());
        Ok(client)
    }

    /// The URL of `path` on the Raft listener at `raft_addr`.
    fn url(&self, raft_addr: &str, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{raft_addr}{path}")
    }
}

impl Network {
    pub fn new(
        timeouts: PeerTimeouts,
        health: PeerHealth,
        source_ip: Option<std::net::IpAddr>,
        identity: LocalIdentity,
        tls: Option<PeerTls>,
        write_timings: WriteTimings,
    ) -> Result<Self, reqwest::Error> {
        let clients = PeerClients {
            plain: PeerClients::builder(&timeouts, source_ip).build()?,
            tls,
            source_ip,
            timeouts,
            by_peer: Arc::default(),
        };
        Ok(Self {
            clients,
            timeouts,
            health,
            idle_streams: IdleStreams::default(),
            identity,
            refusals: RefusalLog::default(),
            write_timings,
        })
    }

    /// A request to peer `target`, carrying this node's identity.
    fn request(
        &self,
        target: NodeId,
        method: reqwest::Method,
        url: String,
    ) -> Result<reqwest::RequestBuilder, PeerCallError> {
        let mut headers = reqwest::header::HeaderMap::new();
        self.identity.sign(&mut headers);
        Ok(self
            .clients
            .client(target)?
            .request(method, url)
            .headers(headers))
    }

    /// Checks who answered: `target` itself, of this cluster, with the incarnation the
    /// membership records (`recorded`; `None` when it is not recorded yet). A peer that
    /// refused us (`403`) is an error too; either is logged, at most every few seconds.
    async fn check_answer(
        &self,
        response: reqwest::Response,
        target: NodeId,
        recorded: Option<&str>,
    ) -> Result<reqwest::Response, PeerCallError> {
        let refusal = if response.status() == reqwest::StatusCode::FORBIDDEN {
            let why = response.text().await.unwrap_or_default();
            PeerCallError::RefusedByPeer(why)
        } else {
            let checked = NodeIdentity::from_headers(response.headers())
                .and_then(|peer| self.identity.check_answer(&peer, target, recorded));
            match checked {
                Ok(()) => return Ok(response),
                Err(refusal) => PeerCallError::Refused(refusal),
            }
        };
        self.refusals
            .warn(target, "its answers do not count", &refusal);
        Err(refusal)
    }

    /// Asks `leader` for a linearizable read index (the Raft "read index" protocol: the
    /// leader confirms with a quorum that it is still leader, then names its commit index).
    pub async fn read_index(
        &self,
        leader: NodeId,
        node: &NodeAddr,
    ) -> Result<ReadIndexReply, PeerCallError> {
        let url = self.clients.url(&node.raft_addr, "/raft/read-index");
        let target = (leader, node.incarnation.as_deref());
        self.post_json(&url, &(), self.timeouts.rpc, target).await
    }

    /// Sends the stored file at `path` (`crate::files`) to peer `target`, which stores it
    /// durably and checks it against `sha256` before it answers.
    pub async fn push_file(
        &self,
        target: NodeId,
        node: &NodeAddr,
        sha256: &str,
        path: &std::path::Path,
        size: u64,
        timeout: Duration,
    ) -> Result<(), PeerCallError> {
        let url = self
            .clients
            .url(&node.raft_addr, &format!("{FILES_PATH}/{sha256}"));
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| PeerCallError::File(e.to_string()))?;
        let response = self
            .request(target, reqwest::Method::PUT, url)?
            .timeout(timeout)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::from(file))
            .send()
            .await?;
        let response = self
            .check_answer(response, target, node.incarnation.as_deref())
            .await?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(PeerCallError::Status(response.status().as_u16())),
        }
    }

    /// Asks peer `target` for its copy of a stored file; the answer streams it.
    pub async fn fetch_file(
        &self,
        target: NodeId,
        node: &NodeAddr,
        sha256: &str,
        timeout: Duration,
    ) -> Result<reqwest::Response, PeerCallError> {
        let url = self
            .clients
            .url(&node.raft_addr, &format!("{FILES_PATH}/{sha256}"));
        let response = self
            .request(target, reqwest::Method::GET, url)?
            .timeout(timeout)
            .send()
            .await?;
        let response = self
            .check_answer(response, target, node.incarnation.as_deref())
            .await?;
        match response.status().is_success() {
            true => Ok(response),
            false => Err(PeerCallError::Status(response.status().as_u16())),
        }
    }

    /// The leader's printer telemetry (`crate::driver::live`).
    pub async fn telemetry(
        &self,
        leader: NodeId,
        node: &NodeAddr,
    ) -> Result<Vec<app::domain::PrinterLive>, PeerCallError> {
        let url = self.clients.url(&node.raft_addr, TELEMETRY_PATH);
        let response = self
            .request(leader, reqwest::Method::GET, url)?
            .timeout(self.timeouts.rpc)
            .send()
            .await?;
        let response = self
            .check_answer(response, leader, node.incarnation.as_deref())
            .await?;
        if !response.status().is_success() {
            return Err(PeerCallError::Status(response.status().as_u16()));
        }
        Ok(response.json().await?)
    }

    /// Asks member `id` who it is and where its clients reach it. Its incarnation is not
    /// checked here: this is how the leader learns it.
    pub async fn node_info(&self, id: NodeId, node: &NodeAddr) -> Result<NodeInfo, PeerCallError> {
        let url = self.clients.url(&node.raft_addr, "/raft/info");
        let response = self
            .request(id, reqwest::Method::GET, url)?
            .timeout(self.timeouts.rpc)
            .send()
            .await?;
        let response = self.check_answer(response, id, None).await?;
        if !response.status().is_success() {
            return Err(PeerCallError::Status(response.status().as_u16()));
        }
        Ok(response.json().await?)
    }

    async fn post_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        url: &str,
        body: &Req,
        timeout: Duration,
        (target, recorded): (NodeId, Option<&str>),
    ) -> Result<Resp, PeerCallError> {
        let response = self
            .request(target, reqwest::Method::POST, url.to_owned())?
            .timeout(timeout)
            .json(body)
            .send()
            .await?;
        let response = self.check_answer(response, target, recorded).await?;
        if !response.status().is_success() {
            return Err(PeerCallError::Status(response.status().as_u16()));
        }
        Ok(response.json().await?)
    }

    /// Opens an append stream to the peer whose Raft URLs start with `base`. Its
    /// identity is checked once, here: a restarted peer means a new connection.
    async fn open_append_stream(
        &self,
        base: &str,
        target: NodeId,
        recorded: Option<&str>,
    ) -> Result<AppendStream, PeerCallError> {
        use reqwest::header::{CONNECTION, UPGRADE};
        let response = self
            .request(
                target,
                reqwest::Method::GET,
                format!("{base}/append-stream"),
            )?
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, APPEND_STREAM_PROTOCOL)
            .send()
            .await?;
        let response = self.check_answer(response, target, recorded).await?;
        if response.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(PeerCallError::Status(response.status().as_u16()));
        }
        Ok(response.upgrade().await?)
    }
}

/// A connection upgraded to a stream of append-entries frames.
type AppendStream = reqwest::Upgraded;

/// Open append streams not in use, per peer. openraft makes a new client for each
/// leadership check of a linearizable read, so streams are pooled here rather than kept
/// by a client (as reqwest pools HTTP connections): otherwise every read would open a
/// connection to every follower. Keyed by the peer's URL, so a member that moves to a
/// new address does not get its old streams.
#[derive(Clone, Default)]
struct IdleStreams {
    by_peer: Arc<Mutex<HashMap<String, Vec<IdleStream>>>>,
}

/// An idle stream and when it was last used.
type IdleStream = (Instant, AppendStream);

/// Idle streams kept per peer; more concurrent calls than this open and close their own.
const MAX_IDLE_STREAMS: usize = 64;
/// An idle stream unused this long is closed (a burst of reads leaves many behind).
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl IdleStreams {
    /// The most recently used idle stream to `peer`, closing any idle for too long.
    fn take(&self, peer: &str) -> Option<AppendStream> {
        let mut by_peer = self.lock();
        let idle = by_peer.get_mut(peer)?;
        idle.retain(|(since, _)| since.elapsed() < STREAM_IDLE_TIMEOUT);
        idle.pop().map(|(_, stream)| stream)
    }

    fn put(&self, peer: &str, stream: AppendStream) {
        let mut by_peer = self.lock();
        let idle = by_peer.entry(peer.to_owned()).or_default();
        if idle.len() < MAX_IDLE_STREAMS {
            idle.push((Instant::now(), stream));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<IdleStream>>> {
        self.by_peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The leader's answer to a read-index request.
pub type ReadIndexReply = Result<Option<LogId>, RaftError<NodeId, super::typ::CheckIsLeaderError>>;

/// A node's identity and client URL, as served on its Raft listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub http_url: String,
    /// The incarnation of its data directory (`crate::identity`).
    pub incarnation: String,
    /// Whether it holds Raft state (a member of some cluster): a node with a wiped data
    /// directory asks its peers this before it would bootstrap a new cluster.
    pub initialized: bool,
}

/// A peer call that did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum PeerCallError {
    #[error("peer unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("peer answered HTTP {0}")]
    Status(u16),
    #[error("append stream: {0}")]
    Stream(#[from] std::io::Error),
    #[error("peer did not answer within {0:?}")]
    Timeout(Duration),
    #[error("answer refused: {0}")]
    Refused(Refusal),
    #[error("the peer refused this node: {0}")]
    RefusedByPeer(String),
    #[error("cannot set up TLS for this peer: {0}")]
    Tls(String),
    #[error("cannot read the file to send: {0}")]
    File(String),
}

impl PeerCallError {
    /// Whether openraft should treat the peer as unreachable, and so pause before the
    /// next call ([`PeerClient`]'s `backoff`), instead of retrying at once: no connection,
    /// a connection dropped before any answer (a dead node behind a proxy or load
    /// balancer accepts and resets: retried at once, a snapshot was re-sent ~540 times a
    /// second in the fault-injection suite), or a peer we do not trust or that does not
    /// trust us.
    fn peer_is_unreachable(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_connect() || e.is_request() || e.is_body(),
            Self::Refused(_) | Self::RefusedByPeer(_) => true,
            Self::Status(_) | Self::Stream(_) | Self::Timeout(_) | Self::Tls(_) | Self::File(_) => {
                false
            }
        }
    }
}

/// `error` and its innermost cause: reqwest's own message names only the URL, the cause
/// says what happened ("Connection refused").
fn with_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    match std::ptr::addr_eq(cause, error) {
        true => error.to_string(),
        false => format!("{error}: {cause}"),
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerClient {
        PeerClient {
            network: self.clone(),
            target,
            incarnation: node.incarnation.clone(),
            base: self.clients.url(&node.raft_addr, "/raft"),
        }
    }
}

/// openraft's handle on one peer. openraft makes new ones whenever the membership
/// changes, so `incarnation` is always the recorded one.
pub struct PeerClient {
    network: Network,
    target: NodeId,
    incarnation: Option<String>,
    base: String,
}

/// `step`, unless `deadline` passes first: then the call took its whole `timeout`.
async fn within<T>(
    deadline: tokio::time::Instant,
    timeout: Duration,
    step: impl Future<Output = Result<T, PeerCallError>>,
) -> Result<T, PeerCallError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| PeerCallError::Timeout(timeout))?
}

/// Largest append-entries frame sent with more than one entry. A follower must read,
/// decode and fsync an append before openraft's append timeout (the heartbeat interval,
/// 100 ms) or the leader sends the same append again after it, and again: an entry is a
/// whole batch of proposals, so openraft's 300 entries for a follower catching up were
/// several MB, timed out again and again, and the restarted node started an election
/// (docs/perf.md, "Failover"). A single entry bigger than this still goes alone.
const MAX_APPEND_FRAME: usize = 1 << 20;

/// What a follower answers to append-entries.
type AppendReply = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;

impl PeerClient {
    /// One append-entries exchange on an idle append stream, or a new one if there is
    /// none; the stream goes back to the pool after a full exchange (after a failure its
    /// state is unknown, so it is dropped). An idle stream may have died since its last
    /// use (the peer restarted): then the request goes once more, on a new stream, as an
    /// HTTP client does with a stale keep-alive connection. Sending it twice is harmless:
    /// append-entries is idempotent.
    async fn append(&self, frame: &[u8]) -> Result<AppendReply, PeerCallError> {
        // One deadline for the whole call, however many steps it takes.
        let timeout = self.network.timeouts.rpc;
        let deadline = tokio::time::Instant::now() + timeout;
        let idle_streams = &self.network.idle_streams;
        if let Some(mut stream) = idle_streams.take(&self.base) {
            match within(deadline, timeout, Self::exchange(&mut stream, frame)).await {
                Ok(reply) => {
                    idle_streams.put(&self.base, stream);
                    return Ok(reply);
                }
                // A slow peer is not a dead stream; a second try would only wait twice.
                Err(timeout @ PeerCallError::Timeout(_)) => return Err(timeout),
                Err(_) => {}
            }
        }
        let open =
            self.network
                .open_append_stream(&self.base, self.target, self.incarnation.as_deref());
        let mut stream = within(deadline, timeout, open).await?;
        let reply = within(deadline, timeout, Self::exchange(&mut stream, frame)).await?;
        idle_streams.put(&self.base, stream);
        Ok(reply)
    }

    async fn exchange(
        stream: &mut AppendStream,
        frame: &[u8],
    ) -> Result<AppendReply, PeerCallError> {
        frame::write_encoded(stream, frame)
            .await
            .map_err(PeerCallError::Stream)?;
        frame::read(stream, frame::MAX_ANSWER_FRAME)
            .await
            .map_err(PeerCallError::Stream)
    }

    /// Records the outcome of a call and turns it into openraft's error types.
    fn answer<Resp, E>(
        &self,
        result: Result<Result<Resp, RaftError<NodeId, E>>, PeerCallError>,
    ) -> Result<Resp, RPCError<E>>
    where
        E: std::error::Error,
    {
        self.network
            .health
            .record(self.target, result.as_ref().err());
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(openraft::error::RPCError::RemoteError(RemoteError::new(
                self.target,
                remote,
            ))),
            // openraft backs off from an unreachable peer instead of retrying at once.
            Err(e) if e.peer_is_unreachable() => Err(Unreachable::new(&e).into()),
            Err(e) => Err(NetworkError::new(&e).into()),
        }
    }

    async fn call<Req, Resp, E>(&self, path: &str, request: &Req) -> Result<Resp, RPCError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}/{path}", self.base);
        let result = self
            .network
            .post_json::<Req, Result<Resp, RaftError<NodeId, E>>>(
                &url,
                request,
                self.network.timeouts.rpc,
                (self.target, self.incarnation.as_deref()),
            )
            .await;
        self.answer(result)
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    /// openraft keeps this pause between calls from the first "unreachable" until a call
    /// succeeds, timeouts included. With its default 500 ms, a node restarting on a big
    /// farm (refused connections, then a few slow answers while it loads) got too few
    /// appends to land one before its election timer ran out, and deposed a healthy
    /// leader (docs/perf.md, "Failover"). The slow answers are gone
    /// ([`MAX_APPEND_FRAME`]); a shorter pause keeps the margin.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.network.timeouts.unreachable_retry))
    }

    /// A request of several entries over [`MAX_APPEND_FRAME`] is not sent: openraft is
    /// told how many would fit and sends that many at once instead.
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError> {
        // Heartbeats (no entries) are not part of any write's time.
        let timings = &self.network.write_timings;
        let _timer = (!request.entries.is_empty())
            .then(|| timings.histogram(WriteStage::Replicate).start_timer());
        let frame = frame::encode(&request).map_err(|e| NetworkError::new(&e))?;
        let entries = request.entries.len();
        if frame.len() > MAX_APPEND_FRAME && entries > 1 {
            let fitting = (entries * MAX_APPEND_FRAME / frame.len()).max(1);
            let hint = PayloadTooLarge::new_entries_hint(fitting as u64);
            return Err(RPCError::PayloadTooLarge(hint));
        }
        let result = self.append(&frame).await;
        self.answer(result)
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError> {
        self.call("vote", &request).await
    }

    /// Chunked transfer is not used: `full_snapshot` below sends the whole snapshot in one
    /// request, so openraft never calls this. Answering with an error (rather than a
    /// panic) keeps that assumption safe if it ever changes.
    async fn install_snapshot(
        &mut self,
        _request: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<InstallSnapshotError>> {
        let why = std::io::Error::other(
            "chunked snapshot transfer is not supported; full_snapshot is used",
        );
        Err(NetworkError::new(&why).into())
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let encode = |e: serde_json::Error| StreamingError::Network(NetworkError::new(&e));
        let vote_header = serde_json::to_string(&vote).map_err(encode)?;
        let meta_header = serde_json::to_string(&snapshot.meta).map_err(encode)?;
        let length = snapshot.snapshot.len();
        let body = reqwest::Body::wrap_stream(snapshot.snapshot.into_stream());
        let request = self.network.request(
            self.target,
            reqwest::Method::POST,
            format!("{}/snapshot", self.base),
        );
        let request = match request {
            Ok(request) => request,
            Err(e) => return Err(StreamingError::Network(NetworkError::new(&e))),
        };
        let send = request
            .timeout(self.network.timeouts.snapshot)
            .header(SNAPSHOT_VOTE_HEADER, vote_header)
            .header(SNAPSHOT_META_HEADER, meta_header)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body)
            .send();
        let response = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            response = send => response,
        };
        let result = async {
            let (target, recorded) = (self.target, self.incarnation.as_deref());
            let response = self
                .network
                .check_answer(response?, target, recorded)
                .await?;
            let answer = response.error_for_status()?.json().await?;
            Ok::<Result<SnapshotResponse<NodeId>, Fatal<NodeId>>, PeerCallError>(answer)
        }
        .await;
        self.network
            .health
            .record(self.target, result.as_ref().err());
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(fatal)) => Err(StreamingError::RemoteError(RemoteError::new(
                self.target,
                fatal,
            ))),
            Err(e) if e.peer_is_unreachable() => {
                Err(StreamingError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `note`s the outcomes at the given seconds from a start; returns what each reported.
    fn outcomes(calls: &[(f64, bool)]) -> Vec<(f64, Report)> {
        let start = Instant::now();
        let mut status = PeerStatus::default();
        calls
            .iter()
            .filter_map(|&(at, ok)| {
                let now = start + Duration::from_secs_f64(at);
                status.note(now, ok).map(|report| (at, report))
            })
            .collect()
    }

    #[test]
    fn a_peer_down_for_a_restart_is_not_a_warning_and_is_noted_when_back() {
        let reports = outcomes(&[(0.0, true), (0.1, false), (0.4, false), (1.6, true)]);
        assert_eq!(reports.len(), 1);
        assert!(matches!(reports[0], (1.6, Report::Back(d)) if d.as_millis() == 1500));
        // A single failed call is not even noted.
        assert!(outcomes(&[(0.0, false), (0.1, true)]).is_empty());
    }

    #[test]
    fn a_peer_down_for_long_is_a_warning_repeated_every_minute_not_every_retry() {
        let mut calls: Vec<(f64, bool)> = (0..=1500).map(|i| (f64::from(i) * 0.1, false)).collect();
        calls.push((150.5, true));
        let reports = outcomes(&calls);
        let warned_at: Vec<f64> = reports
            .iter()
            .filter(|(_, r)| matches!(r, Report::Down(_)))
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(warned_at.len(), 3, "{reports:?}");
        assert!((warned_at[0] - 10.0).abs() < 0.05, "{warned_at:?}");
        assert!((warned_at[1] - 70.0).abs() < 0.05, "{warned_at:?}");
        assert!(matches!(reports.last(), Some((at, Report::Back(_))) if *at == 150.5));
    }

    #[test]
    fn a_new_outage_after_a_warned_one_waits_its_own_grace() {
        let reports = outcomes(&[
            (0.0, false),
            (11.0, false),
            (12.0, true),
            (13.0, false),
            (14.0, false),
        ]);
        let warnings = reports
            .iter()
            .filter(|(_, r)| matches!(r, Report::Down(_)))
            .count();
        assert_eq!(warnings, 1, "{reports:?}");
    }
}
