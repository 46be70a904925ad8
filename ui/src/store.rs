//! The browser's copy of the farm and the rules for keeping it fresh.
//!
//! - The store reads the board ([`app::api::Board`]: every printer and spool, the first
//!   [`BoardQuery::limit`] jobs of each column and each column's count) and the cluster
//!   view from the node it talks to (linearizable; if there is no leader, the node's own
//!   copy, marked stale). Then it follows that node's change stream
//!   (`/api/v1/events`) and reads the board again, at the index the events reached
//!   (`min_index`, no leader round trip), whenever changes arrive: an idle page sends
//!   nothing but the member probes, and a busy farm costs it one bounded read per burst
//!   of changes, however many. It does not patch its copy from the events: the board is
//!   small, and reading it again can never leave the copy inconsistent.
//! - Every second it asks every member for its own view, for the header and the Cluster
//!   page.
//! - When the stream breaks, the store moves to another member if its node is gone, and
//!   resumes the stream there from the last event id it saw (`Last-Event-ID`): no change
//!   is missed.
//! - A node that stops answering is replaced by the first other member that does; the
//!   page says so in a banner and keeps working.
//! - What is not on the board is read on demand from the same node: stored G-code files
//!   (for the job form), a file's bytes (a download), the farm queue around a job that is
//!   being moved, and the printers' live figures (polled by [`super::live`] while a page
//!   shows them).
//! - Writes go to the leader the cluster names. A `307`, a `503` or silence makes the
//!   store ask again where the leader is and resend with the same Idempotency-Key, so a
//!   write that did land is not applied twice, for at most [`WRITE_PATIENCE_MS`]. A
//!   G-code upload goes the same way.
//!
//! On the server the store only holds the data the page is rendered with.
//!
//! # Signing in: the page holds the token
//!
//! Nodes of a secured cluster want `Authorization: Bearer <token>` on `/api/v1` (roles
//! viewer < operator < admin). The dashboard asks for the token in a login form and keeps
//! it in [`FarmStore::session`] and in the tab's `sessionStorage` (this tab and this
//! node's origin only; it survives a reload and is gone when the tab closes). `client.rs`
//! puts it on every API request, to whichever member the page talks to: the node that
//! served it, a leader on another host, the member it fails over to. Nodes let member
//! origins send that header (CORS), so this works across every node's origin.
//!
//! - CSRF-proof by construction: the browser attaches nothing by itself. A page of
//!   another site that makes the browser post to a node (a form, a `no-cors` fetch)
//!   cannot send the token, because it cannot read it; the node answers 401 (and, besides,
//!   refuses foreign `Origin`s with 403 and non-JSON bodies with 415).
//! - Cost: a navigation carries no token, so a node of a cluster that needs one renders
//!   pages without the farm ([`FarmData::login_required`]) unless it runs with
//!   `--anonymous-reads`; the bundle loads the farm after sign-in. `sessionStorage` is per
//!   origin: opening another node's URL in a new tab asks again. A script injected into
//!   the page could read the token (an HttpOnly cookie would hide it, though such a
//!   script could still send requests with it).
//! - Why not an HttpOnly cookie set by the node at sign-in: a cookie belongs to the host
//!   that set it, so a leader or failover member on another host never gets it (writes
//!   go there from the page, cross-origin), unless every node shares a cookie domain; a
//!   cross-origin fetch only carries it with `credentials: include`, and a cross-site one
//!   only with `SameSite=None`, which again lets other sites' requests carry it. Cookies
//!   also ignore ports, so nodes on one host would share them with anything else served
//!   there. A cookie is attached by the browser to requests any page makes, so CSRF
//!   defence would rest on `Origin` checks and `SameSite` alone.
//! - Hydration: the node cannot see `sessionStorage`, so the stored token is read after
//!   hydration (in `FarmStore::start`'s task); the first render in the browser equals
//!   the node's. A stored token makes the form disappear a moment after the page loads.
//! - A `401` to any call, or a sign-out, forgets the token and the farm on screen and
//!   shows the form again ([`REFUSED`] when a token was refused).

use super::model::FarmData;
pub use super::requests::{ApiFailure, BoardQuery, Write};
use app::api::ClusterView;
use app::domain::GcodeFile;
use leptos::prelude::*;

/// Shown above the login form when the cluster refused the tab's token.
pub const REFUSED: &str = "That token was refused (unknown or revoked)";

/// How long a write keeps looking for a leader before the form reports failure.
pub const WRITE_PATIENCE_MS: f64 = 15_000.0;

/// Context: the farm a node renders the first page with (and the bundle hydrates with).
#[derive(Debug, Clone, Default)]
pub struct InitialFarm(pub FarmData);

/// Which node the browser talks to and how that is going.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// Base URL of the node this page talks to; empty = the node that served the page.
    pub base_url: String,
    /// Set after a failover: which node stopped answering and which one took over.
    pub notice: Option<String>,
    /// The data on screen is the node's own copy, read without a leader.
    pub stale: bool,
    /// The last refresh failed: why.
    pub trouble: Option<String>,
    /// Wall-clock time of the last successful refresh (browser only).
    pub refreshed_at: Option<String>,
    /// The browser's clock at the last successful refresh (how long running jobs have
    /// run); `None` on the node's render, so that hydration sees the same page.
    pub refreshed_ms: Option<u64>,
}

/// This tab's sign-in (see "Signing in" above).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// The token every API request carries. Only ever set in the browser, after hydration.
    pub token: Option<String>,
    /// The cluster wants a token: the page was rendered without the farm, or a call
    /// answered `401`.
    pub login_needed: bool,
    /// Why the login form is shown again, e.g. [`REFUSED`].
    pub message: Option<String>,
}

/// Shared by every component through the context. Cheap to copy (signals are handles).
#[derive(Debug, Clone, Copy)]
pub struct FarmStore {
    pub data: RwSignal<FarmData>,
    /// Each member's own view, as last probed by this browser (`None`: did not answer).
    pub member_views: RwSignal<Vec<(u64, Option<ClusterView>)>>,
    pub link: RwSignal<Link>,
    pub session: RwSignal<Session>,
    /// What the board reads (its size and the job board's filter).
    pub board: RwSignal<BoardQuery>,
    /// Refreshes are numbered so that a slow older answer never replaces a newer one.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    refresh_seq: StoredValue<(u64, u64)>,
}

impl FarmStore {
    pub fn new(initial: FarmData) -> Self {
        let member_views = initial
            .cluster
            .as_ref()
            .map(|c| vec![(c.node_id, Some(c.clone()))])
            .unwrap_or_default();
        let session = Session {
            login_needed: initial.login_required,
            ..Session::default()
        };
        Self {
            session: RwSignal::new(session),
            data: RwSignal::new(initial),
            member_views: RwSignal::new(member_views),
            link: RwSignal::new(Link::default()),
            board: RwSignal::new(BoardQuery::default()),
            refresh_seq: StoredValue::new((0, 0)),
        }
    }

    /// The node this page talks to: id and URL, from its own cluster view.
    pub fn current_node(&self) -> Option<(u64, Option<String>)> {
        self.data.with(|d| {
            d.cluster.as_ref().map(|c| {
                let url = c
                    .members
                    .iter()
                    .find(|m| m.id == c.node_id)
                    .and_then(|m| m.http_url.clone());
                (c.node_id, url)
            })
        })
    }
}

/// Signing in and out (the browser's half is in the `hydrate` impl below).
impl FarmStore {
    /// Whether the page shows the login form: the cluster wants a token and the tab has
    /// none.
    pub fn show_login(&self) -> bool {
        self.session.with(|s| s.login_needed && s.token.is_none())
    }

    /// Whether the tab holds a token (the header then offers "Sign out").
    pub fn signed_in(&self) -> bool {
        self.session.with(|s| s.token.is_some())
    }

    /// Takes the token typed into the login form, keeps it for this tab and reloads the
    /// farm with it at once.
    pub fn sign_in(self, typed: &str) {
        let token = typed.trim();
        if token.is_empty() {
            self.session
                .update(|s| s.message = Some("Paste a token first".to_owned()));
            return;
        }
        #[cfg(feature = "hydrate")]
        super::client::remember_token(token);
        self.session.update(|s| {
            s.token = Some(token.to_owned());
            s.message = None;
        });
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(self.refresh(None));
    }

    /// Forgets the token and the farm on screen; the login form comes back.
    pub fn sign_out(self) {
        self.signed_out(None);
    }

    /// Forgets the token (here and in `sessionStorage`) and everything read with it, and
    /// asks for a token, saying `message`.
    fn signed_out(self, message: Option<String>) {
        #[cfg(feature = "hydrate")]
        super::client::forget_token();
        // Answers to requests already under way carry the old token's data: drop them.
        self.refresh_seq.update_value(|s| {
            s.0 += 1;
            s.1 = s.0;
        });
        self.session.set(Session {
            token: None,
            login_needed: true,
            message,
        });
        self.data.update(|d| {
            *d = FarmData {
                cluster: d.cluster.take(),
                ..FarmData::login_required()
            }
        });
        self.link.update(|l| {
            l.stale = false;
            l.trouble = None;
            l.refreshed_at = None;
        });
    }

    /// A call sent with `used` answered `401`. Ignored if the tab has changed its token
    /// since (an old answer must not sign out a newer token).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn refused(self, used: Option<&str>) {
        let current = self.session.with_untracked(|s| s.token.clone());
        if current.as_deref() != used {
            return;
        }
        self.signed_out(used.map(|_| REFUSED.to_owned()));
    }

    /// Shows `BOARD_LIMIT` more jobs in every column (up to the API's page limit).
    pub fn show_more(self) {
        self.board.update(|b| {
            b.limit = (b.limit + app::api::BOARD_LIMIT).min(app::api::MAX_PAGE_LIMIT);
        });
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(self.refresh(None));
    }

    /// Filters the job board to a printer and a spool (empty: all), on the node.
    pub fn filter_board(self, printer_id: String, filament_id: String) {
        let changed = self
            .board
            .with_untracked(|b| b.printer_id != printer_id || b.filament_id != filament_id);
        if !changed {
            return;
        }
        self.board.update(|b| {
            b.printer_id = printer_id;
            b.filament_id = filament_id;
        });
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(self.refresh(None));
    }

    /// The token requests carry now.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn token(&self) -> Option<String> {
        self.session.with_untracked(|s| s.token.clone())
    }
}

#[cfg(not(feature = "hydrate"))]
impl FarmStore {
    /// Never called during server-side rendering (histories open on a click).
    pub async fn job_history(
        self,
        _filter: &'static str,
        _id: String,
        _after: Option<String>,
    ) -> Result<(Vec<app::PrintJob>, bool), ApiFailure> {
        Err(ApiFailure::NotInBrowser)
    }

    /// Never called during server-side rendering; there is nothing to send from there.
    pub async fn write(self, _write: Write) -> Result<(), ApiFailure> {
        Err(ApiFailure::NotInBrowser)
    }

    /// Never called during server-side rendering (the job form loads them in the browser).
    pub async fn files(self) -> Result<Vec<GcodeFile>, ApiFailure> {
        Err(ApiFailure::NotInBrowser)
    }

    /// Never called during server-side rendering (downloads start on a click).
    pub async fn download(self, _file_id: String, _name: String) -> Result<(), ApiFailure> {
        Err(ApiFailure::NotInBrowser)
    }

    /// Never called during server-side rendering (moves start on a click).
    pub async fn queue_neighbour(
        self,
        _job_id: String,
        _back: bool,
    ) -> Result<Option<app::PrintJob>, ApiFailure> {
        Err(ApiFailure::NotInBrowser)
    }
}

#[cfg(feature = "hydrate")]
impl FarmStore {
    /// Starts the refresh loop (once, from [`super::App`] in the browser).
    pub fn start(self) {
        self.link
            .update(|l| l.base_url = super::client::page_origin());
        leptos::task::spawn_local(async move {
            // After hydration (this task runs once `hydrate_body` has returned): the
            // node rendered the page without knowing this tab's token.
            if let Some(token) = super::client::stored_token() {
                self.session.update(|s| s.token = Some(token));
            }
            loop {
                self.probe_members().await;
                super::client::sleep(1_000).await;
            }
        });
        leptos::task::spawn_local(self.follow_changes());
    }

    /// Reads the board, then follows the change stream of the node the page talks to from
    /// the board's index, reading the board again when changes arrive; when the stream
    /// breaks, moves on (another member if this one is gone) and resumes after the last
    /// event seen.
    async fn follow_changes(self) {
        use super::client::{follow_events, sleep};
        let mut last: Option<String> = None;
        loop {
            self.refresh(None).await;
            if self.token().is_none() && self.session.with_untracked(|s| s.login_needed) {
                sleep(1_000).await;
                continue;
            }
            let base = self.link.with_untracked(|l| l.base_url.clone());
            let token = self.token();
            // The first stream starts where the board just read stands, not with the next
            // change: one committed in between would be in neither.
            let from = last
                .clone()
                .or_else(|| self.data.with_untracked(|d| d.index).map(|i| i.to_string()));
            let (seen, failure) = follow_events(&base, from, token.as_deref(), |index| {
                self.refresh(Some(index))
            })
            .await;
            last = seen.or(last);
            match failure {
                failure if failure.is_unauthenticated() => self.refused(token.as_deref()),
                ApiFailure::Unreachable { .. } => {
                    if !self.fail_over(&base).await {
                        self.link.update(|l| {
                            l.trouble =
                                Some("no node of the cluster answers this browser".to_owned());
                        });
                    }
                }
                other => self.link.update(|l| l.trouble = Some(other.to_string())),
            }
            sleep(250).await;
        }
    }

    /// One page of the jobs of a printer (`filter` = `printer_id`) or a spool
    /// (`filament_id`), newest first, from the node the page talks to, and whether more
    /// follow.
    pub async fn job_history(
        self,
        filter: &'static str,
        id: String,
        after: Option<String>,
    ) -> Result<(Vec<app::PrintJob>, bool), ApiFailure> {
        let base = self.link.with_untracked(|l| l.base_url.clone());
        let token = self.token();
        super::client::job_history(&base, filter, &id, after.as_deref(), token.as_deref()).await
    }

    /// Sends a write to the leader, following the cluster until it lands, is refused, or
    /// [`WRITE_PATIENCE_MS`] pass. On success the page is refreshed before returning, so
    /// the change is on screen when the form is ready again.
    pub async fn write(self, write: Write) -> Result<(), ApiFailure> {
        let write = &write;
        self.to_leader(|target, key, token| async move {
            super::client::send_write(&target, write, &key, token.as_deref()).await
        })
        .await?;
        self.refresh(None).await;
        Ok(())
    }

    /// Stores a G-code file picked or dropped in the page (through the leader, like a
    /// write) and answers what the cluster made of it: its id, and its slicer's grams and
    /// time. The board is not read again: a file is not on it.
    pub async fn upload(self, file: web_sys::File) -> Result<GcodeFile, ApiFailure> {
        let file = &file;
        self.to_leader(|target, key, token| async move {
            super::client::upload_file(&target, file, &key, token.as_deref()).await
        })
        .await
    }

    /// The newest stored files, from the node the page talks to.
    pub async fn files(self) -> Result<Vec<GcodeFile>, ApiFailure> {
        let base = self.link.with_untracked(|l| l.base_url.clone());
        super::client::list_files(&base, self.token().as_deref()).await
    }

    /// Saves a stored file's bytes as a download (from the node the page talks to: any
    /// node serves any file).
    pub async fn download(self, file_id: String, name: String) -> Result<(), ApiFailure> {
        let base = self.link.with_untracked(|l| l.base_url.clone());
        let token = self.token();
        let result = super::client::download_file(&base, &file_id, &name, token.as_deref()).await;
        if let Err(failure) = &result {
            if failure.is_unauthenticated() {
                self.refused(token.as_deref());
            }
        }
        result
    }

    /// The nearest job waiting in the farm queue before (`back`) or after job `job_id`, in
    /// the whole queue as the node has it (not only the board's first jobs, nor only
    /// those the board's filter shows), read a page at a time past jobs already sent.
    pub async fn queue_neighbour(
        self,
        job_id: String,
        back: bool,
    ) -> Result<Option<app::PrintJob>, ApiFailure> {
        use super::model::queue::nearest_waiting;
        const PAGE: usize = 50;
        let base = self.link.with_untracked(|l| l.base_url.clone());
        let token = self.token();
        let mut after = job_id;
        loop {
            let page = super::client::queue_page(&base, &after, back, PAGE, token.as_deref())
                .await
                .inspect_err(|failure| {
                    if failure.is_unauthenticated() {
                        self.refused(token.as_deref());
                    }
                })?;
            if let Some(job) = nearest_waiting(&page) {
                return Ok(Some(job.clone()));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.id.to_string(),
                _ => return Ok(None),
            }
        }
    }

    /// What the connected printers report right now, from the node the page talks to.
    pub async fn telemetry(self) -> Result<Vec<app::domain::PrinterLive>, ApiFailure> {
        let base = self.link.with_untracked(|l| l.base_url.clone());
        super::client::telemetry(&base, self.token().as_deref()).await
    }

    /// Sends `send(target, idempotency key, token)` to the leader the cluster names, and
    /// again (same key) after a `307`, a `503` or silence, until it lands, is refused,
    /// or [`WRITE_PATIENCE_MS`] pass. A `401` signs the tab out.
    async fn to_leader<T, F, Fut>(self, send: F) -> Result<T, ApiFailure>
    where
        F: Fn(String, String, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiFailure>>,
    {
        use super::client::{new_idempotency_key, now_ms, sleep};
        let key = new_idempotency_key();
        let started = now_ms();
        loop {
            let token = self.token();
            match send(self.write_target(), key.clone(), token.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(failure) if failure.is_unauthenticated() => {
                    self.refused(token.as_deref());
                    return Err(failure);
                }
                Err(failure) if !failure.is_transient() => return Err(failure),
                Err(failure) if now_ms() - started > WRITE_PATIENCE_MS => return Err(failure),
                Err(_) => {
                    sleep(250).await;
                    self.relearn_cluster().await;
                }
            }
        }
    }

    /// The leader's URL when the node we talk to knows it, else that node (which will
    /// answer 307 or 503 and so tell us more).
    fn write_target(&self) -> String {
        let leader = self
            .data
            .with_untracked(|d| d.cluster.as_ref().and_then(|c| c.leader_url.clone()));
        leader.unwrap_or_else(|| self.link.with_untracked(|l| l.base_url.clone()))
    }

    /// Reads the board from the current node (at least at `min_index` when given, else
    /// linearizable); moves to another node if it is silent.
    async fn refresh(self, min_index: Option<u64>) {
        use super::client::{clock_time, fetch_farm, now_ms};
        let seq = self.refresh_seq.try_update_value(|s| {
            s.0 += 1;
            s.0
        });
        let Some(seq) = seq else { return };
        let token = self.token();
        if token.is_none() && self.session.with_untracked(|s| s.login_needed) {
            // Nothing to read without a token; the open cluster view keeps the header
            // (and failover) current until someone signs in.
            self.relearn_cluster().await;
            return;
        }
        let token = token.as_deref();
        for _ in 0..2 {
            let base = self.link.with_untracked(|l| l.base_url.clone());
            let query = self.board.get_untracked();
            let result = match fetch_farm(&base, &query, false, min_index, token).await {
                Err(ApiFailure::Problem(p)) if p.status == 503 && min_index.is_none() => {
                    fetch_farm(&base, &query, true, None, token)
                        .await
                        .map(|d| (d, true))
                }
                other => other.map(|d| (d, false)),
            };
            match result {
                Ok((data, stale)) => {
                    if self.is_newest(seq) {
                        if self.data.with_untracked(|d| d != &data) {
                            self.data.set(data);
                        }
                        self.link.update(|l| {
                            l.stale = stale;
                            l.trouble = None;
                            l.refreshed_at = Some(clock_time());
                            l.refreshed_ms = Some(now_ms() as u64);
                        });
                    }
                    return;
                }
                Err(failure) if failure.is_unauthenticated() => {
                    self.refused(token);
                    return;
                }
                Err(ApiFailure::Unreachable { .. }) => {
                    if !self.fail_over(&base).await {
                        break;
                    }
                }
                Err(other) => {
                    self.link.update(|l| l.trouble = Some(other.to_string()));
                    return;
                }
            }
        }
        self.link.update(|l| {
            l.trouble = Some("no node of the cluster answers this browser".to_owned());
        });
    }

    fn is_newest(&self, seq: u64) -> bool {
        self.refresh_seq
            .try_update_value(|s| {
                let newest = seq > s.1;
                if newest {
                    s.1 = seq;
                }
                newest
            })
            .unwrap_or(false)
    }

    /// Asks the current node (or, if it is silent, another member) who leads now.
    async fn relearn_cluster(self) {
        let base = self.link.with_untracked(|l| l.base_url.clone());
        match super::client::cluster_view(&base, self.token().as_deref()).await {
            Ok(view) => self.data.update(|d| d.cluster = Some(view)),
            Err(_) => {
                self.fail_over(&base).await;
            }
        }
    }

    /// Moves to the first other member that answers. Returns whether one did.
    async fn fail_over(self, silent_base: &str) -> bool {
        let (silent_id, candidates) = self.data.with_untracked(|d| {
            let cluster = d.cluster.as_ref();
            let silent_id = cluster.map(|c| c.node_id);
            let candidates: Vec<(u64, String)> = cluster
                .map(|c| {
                    c.members
                        .iter()
                        .filter(|m| Some(m.id) != silent_id)
                        .filter_map(|m| m.http_url.clone().map(|url| (m.id, url)))
                        .collect()
                })
                .unwrap_or_default();
            (silent_id, candidates)
        });
        let token = self.token();
        for (id, url) in candidates {
            if let Ok(view) = super::client::cluster_view(&url, token.as_deref()).await {
                let from = match silent_id {
                    Some(old) => format!("Node {old} ({silent_base})"),
                    None => format!("The node at {silent_base}"),
                };
                let notice = format!(
                    "{from} stopped answering at {}. This page now talks to node {id} ({url}).",
                    super::client::clock_time()
                );
                self.data.update(|d| d.cluster = Some(view));
                self.link.update(|l| {
                    l.base_url = url;
                    l.notice = Some(notice);
                });
                return true;
            }
        }
        false
    }

    /// Asks every member for its own view (for the Cluster page and "nodes up").
    async fn probe_members(self) {
        let members: Vec<(u64, Option<String>)> = self.data.with_untracked(|d| {
            d.cluster
                .as_ref()
                .map(|c| {
                    c.members
                        .iter()
                        .map(|m| (m.id, m.http_url.clone()))
                        .collect()
                })
                .unwrap_or_default()
        });
        let token = self.token();
        let token = token.as_deref();
        let probes = members.into_iter().map(|(id, url)| async move {
            let view = match url {
                Some(url) => super::client::cluster_view(&url, token).await.ok(),
                None => None,
            };
            (id, view)
        });
        let views = futures::future::join_all(probes).await;
        // The header shows the own node's view: keep it current while the farm is idle
        // (the board, which also carries it, is read only when something changes).
        let own = self
            .data
            .with_untracked(|d| d.cluster.as_ref().map(|c| c.node_id));
        let fresh = views
            .iter()
            .find(|(id, _)| Some(*id) == own)
            .and_then(|(_, view)| view.clone());
        if let Some(fresh) = fresh {
            if self
                .data
                .with_untracked(|d| d.cluster.as_ref() != Some(&fresh))
            {
                self.data.update(|d| d.cluster = Some(fresh));
            }
        }
        if self.member_views.with_untracked(|v| v != &views) {
            self.member_views.set(views);
        }
    }
}
