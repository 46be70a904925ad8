//! The Rust client of Raft3D's REST API: what an integration, the `raft3d ctl` command,
//! the benchmark, the chaos suite and the process tests all use to talk to a cluster.
//!
//! Any node takes any request; the client adds what a careful caller needs around that:
//! - it follows a follower's `307` to the leader (a bounded number of times in a row, so
//!   a leader that keeps moving cannot loop it forever) and remembers the leader;
//! - it waits out `503` (no leader yet, or a write whose commit was not confirmed in
//!   time) for as long as the server asks (`retry_after_ms` in the problem body, else
//!   `Retry-After`), then tries again;
//! - it moves on to another member when a node does not answer;
//! - every write carries one `Idempotency-Key` across all of its retries, so a write
//!   whose first attempt timed out is applied at most once;
//! - it knows the cluster's members: the URLs it was given, every leader it is sent to,
//!   and, after [`Client::refresh_members`], every member's client URL.
//!
//! Errors say what the caller must do ([`ClientError::outcome_unknown`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), raft3d_client::ClientError> {
//! use raft3d_client::{Client, NewPrinterBody};
//! let client = Client::new(["http://127.0.0.1:8081", "http://127.0.0.1:8082"])?;
//! let printer = client
//!     .create_printer(&NewPrinterBody { id: None, company: "Prusa".into(), model: "MK4".into() })
//!     .await?;
//! println!("created {}", printer.id);
//! # Ok(()) }
//! ```
//!
//! Must not know node internals: only the public HTTP API and its documented headers.

mod error;
pub mod events;
mod members;
mod pages;

pub use app::api::{
    AddNodeRequest, ClusterView, CreatedToken, Endpoint, LoadSpoolBody, MaterialBody, MemberView,
    NewConnectionBody, NewCopiesBody, NewFilamentBody, NewPrintJobBody, NewPrinterBody,
    NewTokenBody, Problem, QueuePlaceBody, Role,
};
pub use app::domain::{GcodeFile, PrinterLive};
pub use app::{AccessRole, Filament, JobStatus, PrintJob, Printer, TokenView};
pub use error::ClientError;
pub use events::{ChangeEvent, EventStream};
pub use pages::{ListQuery, Page};
pub use reqwest::{Method, StatusCode};

use app::api::{IDEMPOTENCY_KEY_HEADER, LEADER_URL_HEADER};
use members::Members;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The HTTP client under a [`Client`], trusting `roots` for `https://` members.
fn http_client(
    policy: &RetryPolicy,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, ClientError> {
    let builder = reqwest::Client::builder()
        // Redirects are followed by `Client`, where they are counted and the leader noted.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(policy.request_timeout);
    roots
        .iter()
        .fold(builder, |builder, root| {
            builder.add_root_certificate(root.clone())
        })
        .build()
        .map_err(|e| ClientError::Invalid(e.to_string()))
}

/// How long `add_node` waits for its answer.
const ADD_NODE_TIMEOUT: Duration = Duration::from_secs(35);

/// How hard one operation tries before it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Everything one operation may take, retries included.
    pub deadline: Duration,
    /// One HTTP exchange; a write is answered within the node's write timeout (5 s by
    /// default), so this must be longer.
    pub request_timeout: Duration,
    /// `307`s followed in a row before the operation stops following and starts over
    /// from another member after a pause.
    pub max_redirects: u32,
    /// First pause after a round of members that all failed; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Rides out an election (about a second) many times over; a caller that wants an
    /// answer sooner sets a shorter deadline.
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            max_redirects: 5,
            min_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// One request of the API, reusable across attempts.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    /// Path and query, e.g. `/api/v1/print_jobs?status=queued`.
    path: String,
    body: Option<Vec<u8>>,
    /// The body's media type: JSON unless set ([`Call::bytes`]).
    content_type: &'static str,
    idempotency_key: Option<String>,
    /// Overrides the policy's `request_timeout` for this call.
    timeout: Option<Duration>,
}

const JSON: &str = "application/json";

impl Call {
    /// Any method; every method but `GET` gets a fresh idempotency key.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        if method == Method::GET {
            return Self::get(path);
        }
        Self::write(method, path.into(), None)
    }

    /// Sets a JSON body.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self, ClientError> {
        self.body =
            Some(serde_json::to_vec(body).map_err(|e| ClientError::Invalid(e.to_string()))?);
        Ok(self)
    }

    /// Sets a body that is JSON already (sent as it is).
    pub fn json_bytes(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self.content_type = JSON;
        self
    }

    /// Sets a body of raw bytes (`application/octet-stream`: a G-code file).
    pub fn bytes(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self.content_type = "application/octet-stream";
        self
    }

    /// A call of one operation of the contract (`app::api::contract`), its path filled
    /// with `segments`; a write gets a fresh idempotency key.
    pub fn to(endpoint: Endpoint, segments: &[&str]) -> Self {
        let method = match endpoint.operation().method {
            app::api::Method::Get => Method::GET,
            app::api::Method::Post => Method::POST,
            app::api::Method::Put => Method::PUT,
            app::api::Method::Delete => Method::DELETE,
        };
        Self::new(method, endpoint.url(segments))
    }

    /// Adds `key=value` to the query (both URL-safe already: ids, words, numbers).
    pub fn query(mut self, key: &str, value: &str) -> Self {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        self.path = format!("{}{sep}{key}={value}", self.path);
        self
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            content_type: JSON,
            idempotency_key: None,
            timeout: None,
        }
    }

    /// A write with a JSON body and a fresh idempotency key.
    pub fn post<B: Serialize + ?Sized>(
        path: impl Into<String>,
        body: &B,
    ) -> Result<Self, ClientError> {
        Self::new(Method::POST, path).json(body)
    }

    /// A write without a body (a job's status change), with a fresh idempotency key.
    pub fn post_empty(path: impl Into<String>) -> Self {
        Self::write(Method::POST, path.into(), None)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::write(Method::DELETE, path.into(), None)
    }

    fn write(method: Method, path: String, body: Option<Vec<u8>>) -> Self {
        Self {
            method,
            path,
            body,
            content_type: JSON,
            idempotency_key: Some(uuid::Uuid::now_v7().to_string()),
            timeout: None,
        }
    }

    /// A call that may take longer (or must answer sooner) than the policy's
    /// `request_timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Replaces the key, e.g. to retry a write whose outcome was unknown in an earlier
    /// run, or to send none at all (`None`).
    pub fn with_idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }

    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// One node's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The node that answered (its client URL).
    pub node: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode {
            url: self.node.clone(),
            detail: e.to_string(),
        })
    }

    /// The problem in an error answer (a made-up one if the body is not a problem).
    pub fn problem(&self) -> Problem {
        self.json().unwrap_or_else(|_| Problem {
            kind: String::new(),
            title: self.status.to_string(),
            status: self.status.as_u16(),
            detail: String::from_utf8_lossy(&self.body).into_owned(),
            field: None,
            leader_id: None,
            leader_url: None,
            retry_after_ms: None,
        })
    }

    /// How long the node asked us to wait before trying again: the problem's
    /// `retry_after_ms` (finer), else the `Retry-After` header in seconds.
    fn retry_after(&self) -> Option<Duration> {
        if let Some(ms) = self.problem().retry_after_ms {
            return Some(Duration::from_millis(ms));
        }
        let seconds = self
            .headers
            .get(RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_secs(seconds))
    }
}

/// A client of one cluster. Cheap to clone; clones share what they learn about the
/// members and the leader.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    policy: RetryPolicy,
    members: Arc<Mutex<Members>>,
    /// Sent as `Authorization: Bearer <token>` with every request.
    token: Option<Arc<str>>,
}

impl Client {
    /// A client that starts from `urls` (client URLs of some members, e.g.
    /// `http://10.0.0.1:8081`) with the default [`RetryPolicy`].
    pub fn new<U: Into<String>>(urls: impl IntoIterator<Item = U>) -> Result<Self, ClientError> {
        Self::with_policy(urls, RetryPolicy::default())
    }

    pub fn with_policy<U: Into<String>>(
        urls: impl IntoIterator<Item = U>,
        policy: RetryPolicy,
    ) -> Result<Self, ClientError> {
        let members = Members::new(urls.into_iter().map(Into::into))?;
        let http = http_client(&policy, &[])?;
        Ok(Self {
            http,
            policy,
            members: Arc::new(Mutex::new(members)),
            token: None,
        })
    }

    /// This client, trusting the CA certificate(s) in `pem` (e.g. `raft3d init`'s
    /// `ca.pem`) for `https://` members, besides none other: a cluster's own CA is what
    /// its HTTPS certificates chain to.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::Invalid(format!("CA certificates: {e}")))?;
        self.http = http_client(&self.policy, &roots)?;
        Ok(self)
    }

    /// This client with an API token (`raft3d init`'s `admin.token`, or one made with
    /// `raft3d ctl tokens create`); `None` calls without one.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.map(|t| Arc::from(t.trim()));
        self
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Every client URL this client knows of.
    pub fn members(&self) -> Vec<String> {
        self.lock_members().urls().to_vec()
    }

    /// The leader's client URL, as last seen.
    pub fn leader(&self) -> Option<String> {
        self.lock_members().leader().map(str::to_owned)
    }

    // ---- The farm ----

    pub async fn printers(&self) -> Result<Vec<Printer>, ClientError> {
        self.call(Call::to(Endpoint::ListPrinters, &[])).await
    }

    pub async fn printer(&self, id: &str) -> Result<Printer, ClientError> {
        self.call(Call::to(Endpoint::GetPrinter, &[id])).await
    }

    pub async fn create_printer(&self, printer: &NewPrinterBody) -> Result<Printer, ClientError> {
        self.call(Call::to(Endpoint::CreatePrinter, &[]).json(printer)?)
            .await
    }

    pub async fn filaments(&self) -> Result<Vec<Filament>, ClientError> {
        self.call(Call::to(Endpoint::ListFilaments, &[])).await
    }

    pub async fn filament(&self, id: &str) -> Result<Filament, ClientError> {
        self.call(Call::to(Endpoint::GetFilament, &[id])).await
    }

    pub async fn create_filament(&self, spool: &NewFilamentBody) -> Result<Filament, ClientError> {
        self.call(Call::to(Endpoint::CreateFilament, &[]).json(spool)?)
            .await
    }

    /// One page of printers (`query.limit` of them, in id order unless `descending`).
    pub async fn printers_page(&self, query: &ListQuery) -> Result<Page<Printer>, ClientError> {
        self.page(Endpoint::ListPrinters, query).await
    }

    pub async fn filaments_page(&self, query: &ListQuery) -> Result<Page<Filament>, ClientError> {
        self.page(Endpoint::ListFilaments, query).await
    }

    /// One page of jobs, filtered by status, printer and spool as `query` says. Follow
    /// `page.next` for the rest: every job is on exactly one page, also while jobs are
    /// added (ids only grow).
    pub async fn jobs_page(&self, query: &ListQuery) -> Result<Page<PrintJob>, ClientError> {
        self.page(Endpoint::ListPrintJobs, query).await
    }

    async fn page<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        query: &ListQuery,
    ) -> Result<Page<T>, ClientError> {
        let answer = self.execute(&Call::get(query.path(endpoint))).await?;
        Page::from_answer(&answer, query)
    }

    /// Every job, or only those in `status`.
    pub async fn jobs(&self, status: Option<JobStatus>) -> Result<Vec<PrintJob>, ClientError> {
        let query = ListQuery {
            status,
            ..ListQuery::default()
        };
        Ok(self.jobs_page(&query).await?.items)
    }

    pub async fn job(&self, id: &str) -> Result<PrintJob, ClientError> {
        self.call(Call::to(Endpoint::GetPrintJob, &[id])).await
    }

    /// Stores a G-code file under `name` (the cluster answers once a majority holds it).
    pub async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<GcodeFile, ClientError> {
        let name = app::api::contract::path_segment(name);
        let call = Call::to(Endpoint::UploadFile, &[])
            .query("name", &name)
            .bytes(bytes);
        self.call(call).await
    }

    pub async fn files(&self) -> Result<Vec<GcodeFile>, ClientError> {
        self.call(Call::to(Endpoint::ListFiles, &[])).await
    }

    /// Connects printer `id` to its host; the answer shows `api_key_set`, never the key.
    pub async fn connect_printer(
        &self,
        id: &str,
        connection: &NewConnectionBody,
    ) -> Result<Printer, ClientError> {
        self.call(Call::to(Endpoint::ConnectPrinter, &[id]).json(connection)?)
            .await
    }

    pub async fn disconnect_printer(&self, id: &str) -> Result<Printer, ClientError> {
        self.call(Call::to(Endpoint::DisconnectPrinter, &[id]))
            .await
    }

    /// What the connected printers report now (progress, temperatures).
    pub async fn telemetry(&self) -> Result<Vec<PrinterLive>, ClientError> {
        self.call(Call::to(Endpoint::PrintersLive, &[])).await
    }

    pub async fn create_job(&self, job: &NewPrintJobBody) -> Result<PrintJob, ClientError> {
        self.call(Call::to(Endpoint::CreatePrintJob, &[]).json(job)?)
            .await
    }

    // ---- The farm queue ----

    /// The queued jobs, in the order printers take them.
    pub async fn queue(&self) -> Result<Vec<PrintJob>, ClientError> {
        self.call(Call::to(Endpoint::GetQueue, &[])).await
    }

    /// Queues `copies.copies` jobs of one print, all or none.
    pub async fn queue_copies(&self, copies: &NewCopiesBody) -> Result<Vec<PrintJob>, ClientError> {
        self.call(Call::to(Endpoint::QueueCopies, &[]).json(copies)?)
            .await
    }

    /// Moves a waiting job to another place in the queue.
    pub async fn place_in_queue(
        &self,
        id: &str,
        place: &QueuePlaceBody,
    ) -> Result<PrintJob, ClientError> {
        self.call(Call::to(Endpoint::PlaceInQueue, &[id]).json(place)?)
            .await
    }

    /// Says spool `filament_id` is on printer `id` (`None`: no spool).
    pub async fn load_spool(
        &self,
        id: &str,
        filament_id: Option<&str>,
    ) -> Result<Printer, ClientError> {
        let call = match filament_id {
            Some(filament_id) => Call::to(Endpoint::LoadSpool, &[id]).json(&LoadSpoolBody {
                filament_id: filament_id.to_owned(),
            })?,
            None => Call::to(Endpoint::UnloadSpool, &[id]),
        };
        self.call(call).await
    }

    /// Confirms printer `id`'s bed is clear: it may take its next job.
    pub async fn clear_bed(&self, id: &str) -> Result<Printer, ClientError> {
        self.call(Call::to(Endpoint::ClearBed, &[id])).await
    }

    /// Moves a job (queued → running → done, or canceled); returns it as stored.
    pub async fn set_job_status(
        &self,
        id: &str,
        status: JobStatus,
    ) -> Result<PrintJob, ClientError> {
        let call = Call::to(Endpoint::SetJobStatus, &[id]).query("status", status.as_str());
        self.call(call).await
    }

    // ---- The cluster ----

    /// The cluster as some member sees it (the leader's view names every member's state).
    pub async fn cluster(&self) -> Result<ClusterView, ClientError> {
        let view: ClusterView = self.call(Call::to(Endpoint::Cluster, &[])).await?;
        self.learn_members(&view);
        Ok(view)
    }

    /// One node's own view, asked once (no retries, no redirects): for watching a
    /// cluster node by node.
    pub async fn cluster_at(&self, node: &str) -> Result<ClusterView, ClientError> {
        let answer = self.once(node, &Call::to(Endpoint::Cluster, &[])).await?;
        success(answer)?.json()
    }

    /// Learns every member's client URL from a member's view of the cluster.
    pub async fn refresh_members(&self) -> Result<(), ClientError> {
        self.cluster().await.map(|_| ())
    }

    /// Adds a node (as a learner, then a voter once it has caught up).
    pub async fn add_node(&self, id: u64, raft_addr: &str) -> Result<ClusterView, ClientError> {
        let request = AddNodeRequest {
            id,
            raft_addr: raft_addr.to_owned(),
        };
        // The server waits up to 20 s for the new node to catch up before it promotes it
        // (or answers 409 learner-behind): longer than a usual request.
        let call = Call::to(Endpoint::AddNode, &[])
            .json(&request)?
            .with_timeout(ADD_NODE_TIMEOUT);
        self.call(call).await
    }

    pub async fn remove_node(&self, id: u64) -> Result<ClusterView, ClientError> {
        self.call(Call::to(Endpoint::RemoveNode, &[&id.to_string()]))
            .await
    }

    // ---- Tokens (admin) ----

    pub async fn tokens(&self) -> Result<Vec<TokenView>, ClientError> {
        self.call(Call::to(Endpoint::ListTokens, &[])).await
    }

    /// Makes a token; the answer holds its secret, shown this once.
    pub async fn create_token(
        &self,
        name: &str,
        role: AccessRole,
    ) -> Result<CreatedToken, ClientError> {
        let body = NewTokenBody {
            name: name.to_owned(),
            role,
        };
        self.call(Call::to(Endpoint::CreateToken, &[]).json(&body)?)
            .await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<TokenView, ClientError> {
        self.call(Call::to(Endpoint::RevokeToken, &[id])).await
    }

    /// [`Client::execute`], then the answer's JSON body.
    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        self.execute(&call).await?.json()
    }

    // ---- Any request ----

    /// Sends `call` until it gets a definite answer: a success ([`Answer`]) or an error
    /// status ([`ClientError::Api`]); [`ClientError::GaveUp`] when the deadline passes
    /// first. Writes start at the leader (when known), reads at the next member in turn.
    pub async fn execute(&self, call: &Call) -> Result<Answer, ClientError> {
        let start = self.lock_members().start(call.is_write());
        self.execute_from(&start, call).await
    }

    /// Like [`Self::execute`], but the first attempt goes to `node`.
    pub async fn execute_from(&self, node: &str, call: &Call) -> Result<Answer, ClientError> {
        let started = Instant::now();
        let deadline = started + self.policy.deadline;
        let mut target = format!("{}{}", node.trim_end_matches('/'), call.path);
        let mut attempts = 0u32;
        let mut redirects = 0u32;
        let mut failures_this_round = 0usize;
        let mut backoff = self.policy.min_backoff;
        let last = loop {
            attempts += 1;
            let (last, wait) = match self.send(&target, call).await {
                Ok(answer)
                    if answer.status == StatusCode::TEMPORARY_REDIRECT
                        && redirects < self.policy.max_redirects =>
                {
                    if let Some(next) = self.follow(&answer) {
                        redirects += 1;
                        target = next;
                        continue;
                    }
                    (format!("{}: 307 without a Location", answer.node), None)
                }
                Ok(answer) if answer.status == StatusCode::TEMPORARY_REDIRECT => (
                    format!("{redirects} redirects in a row; last from {}", answer.node),
                    None,
                ),
                Ok(answer) if answer.status == StatusCode::SERVICE_UNAVAILABLE => {
                    let problem = answer.problem();
                    let wait = answer.retry_after();
                    (format!("{}: 503 {}", answer.node, problem.detail), wait)
                }
                Ok(answer) => {
                    if call.is_write() && answer.status.is_success() {
                        self.lock_members().set_leader(&answer.node);
                    }
                    return success(answer);
                }
                Err(e) => {
                    self.lock_members().forget_leader(&target);
                    (e.to_string(), None)
                }
            };
            redirects = 0;
            failures_this_round += 1;
            let now = Instant::now();
            if now >= deadline {
                break last;
            }
            // The server's wish is honoured as given; without one, try the other members
            // at once and pause only after a whole round failed.
            let pause = match wait {
                Some(wait) => wait,
                None if failures_this_round < self.lock_members().len() => Duration::ZERO,
                None => {
                    failures_this_round = 0;
                    let pause = jittered(backoff);
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                    pause
                }
            };
            tokio::time::sleep(pause.min(deadline - now)).await;
            let next = self.lock_members().next();
            target = format!("{next}{}", call.path);
            if Instant::now() >= deadline {
                break last;
            }
        };
        Err(ClientError::GaveUp {
            attempts,
            waited_ms: started.elapsed().as_millis(),
            last,
        })
    }

    /// One exchange with one node, whatever its status: no redirects followed, no
    /// retries. For tests and tools that look at one node on purpose.
    pub async fn once(&self, node: &str, call: &Call) -> Result<Answer, ClientError> {
        let url = format!("{}{}", node.trim_end_matches('/'), call.path);
        self.send(&url, call).await
    }

    /// `call` to one node, its body written to `out` as it arrives when the status is a
    /// success (the answer then has an empty body), kept in the answer otherwise. For
    /// answers too large to hold, such as a backup.
    pub async fn download(
        &self,
        node: &str,
        call: &Call,
        out: &mut impl std::io::Write,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", node.trim_end_matches('/'), call.path);
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.clone(),
            detail: error_chain(&e),
        };
        let mut request = self.http.request(call.method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        let mut response = request.send().await.map_err(unreachable)?;
        let node = origin(response.url().as_str());
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            match status.is_success() {
                true => out
                    .write_all(&chunk)
                    .map_err(|e| ClientError::Invalid(format!("writing the answer: {e}")))?,
                false => body.extend_from_slice(&chunk),
            }
        }
        Ok(Answer {
            node,
            status,
            headers,
            body,
        })
    }

    async fn send(&self, url: &str, call: &Call) -> Result<Answer, ClientError> {
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.to_owned(),
            detail: error_chain(&e),
        };
        let mut request = self.http.request(call.method.clone(), url);
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, call.content_type)
                .body(body.clone());
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(unreachable)?;
        let node = origin(response.url().as_str());
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        Ok(Answer {
            node,
            status,
            headers,
            body,
        })
    }

    /// Where a `307` points; notes the leader it names.
    fn follow(&self, answer: &Answer) -> Option<String> {
        let location = answer.headers.get(LOCATION)?.to_str().ok()?.to_owned();
        let leader = answer
            .headers
            .get(LEADER_URL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| origin(&location), str::to_owned);
        self.lock_members().set_leader(&leader);
        Some(location)
    }

    fn learn_members(&self, view: &ClusterView) {
        let mut members = self.lock_members();
        for url in view.members.iter().filter_map(|m| m.http_url.as_deref()) {
            members.add(url);
        }
        if let Some(leader) = &view.leader_url {
            members.set_leader(leader);
        }
    }

    fn lock_members(&self) -> std::sync::MutexGuard<'_, Members> {
        // A panic while holding the lock cannot leave `Members` inconsistent (every
        // method is a few plain assignments), so a poisoned lock is still usable.
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A success answer, or its error status as [`ClientError::Api`].
fn success(answer: Answer) -> Result<Answer, ClientError> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    Err(ClientError::Api {
        url: answer.node.clone(),
        status: answer.status.as_u16(),
        problem: answer.problem(),
    })
}

/// `scheme://host:port` of a URL (the node's client URL), or the URL itself if unparsable.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.trim_end_matches('/').to_owned())
}

pub use app::api::contract::path_segment;

/// Between half and all of `pause`, so clients that failed together do not retry in
/// lockstep.
fn jittered(pause: Duration) -> Duration {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    pause.mul_f64(fraction)
}

/// A reqwest error with its causes ("error sending request" alone says nothing).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment_whatever_they_contain() {
        assert_eq!(path_segment("p-1_a.b~c"), "p-1_a.b~c");
        assert_eq!(path_segment("../x?y"), "..%2Fx%3Fy");
    }

    #[test]
    fn the_origin_is_the_node_url() {
        assert_eq!(
            origin("http://127.0.0.1:8082/api/v1/printers?x=1"),
            "http://127.0.0.1:8082"
        );
    }

    #[test]
    fn writes_carry_a_key_and_reads_none() {
        let write = Call::post_empty("/api/v1/print_jobs/j/status?status=running");
        assert!(write.idempotency_key().is_some_and(|k| !k.is_empty()));
        assert_eq!(Call::get("/api/v1/printers").idempotency_key(), None);
        let other = Call::post_empty("/x");
        assert_ne!(write.idempotency_key(), other.idempotency_key());
    }

    #[test]
    fn the_servers_finer_wait_wins_over_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, reqwest::header::HeaderValue::from_static("1"));
        let answer = |body: &str| Answer {
            node: "http://n".to_owned(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: headers.clone(),
            body: body.as_bytes().to_vec(),
        };
        let fine =
            answer(r#"{"type":"t","title":"t","status":503,"detail":"d","retry_after_ms":150}"#);
        assert_eq!(fine.retry_after(), Some(Duration::from_millis(150)));
        assert_eq!(
            answer("not json").retry_after(),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        for _ in 0..100 {
            let pause = jittered(Duration::from_millis(100));
            assert!(pause >= Duration::from_millis(50) && pause <= Duration::from_millis(100));
        }
    }
}
