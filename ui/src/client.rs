//! The dashboard's only door to the cluster (browser only): builds every URL, sends it
//! with `gloo-net`, and turns what comes back into [`FarmData`] or an [`ApiFailure`].
//!
//! It also holds the few other browser calls the pages need (storage, clock, files
//! picked or dropped, downloads, whether the tab is visible), so that pages call no
//! `web_sys` API themselves.
//!
//! Every request carries the tab's token, if it holds one, as `Authorization: Bearer`,
//! whichever member it goes to (see "Signing in" in [`super::store`]): the browser adds
//! no credential of its own, so nothing here depends on cookies.
//!
//! Writes never follow redirects by themselves (`redirect: manual`): a `307` from a
//! follower becomes [`ApiFailure::NotLeader`] and the store asks the cluster where the
//! leader is, so a write is never replayed by the browser behind our back.

use super::model::{EventIds, FarmData};
use super::requests::{ApiFailure, BoardQuery, Write};
use app::api::contract::path_segment;
use app::api::{ClusterView, Endpoint, Method, Problem, IDEMPOTENCY_KEY_HEADER};
use app::domain::{GcodeFile, PrinterLive};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use web_sys::{AbortSignal, RequestRedirect, ResponseType};

/// How long a read may take before the node counts as not answering. A live node on a
/// LAN answers in milliseconds; a linearizable read waits at most for one election.
const READ_TIMEOUT_MS: u32 = 4_000;
/// How long a cluster probe may take: these only ask a node about itself.
const PROBE_TIMEOUT_MS: u32 = 1_500;
const WRITE_TIMEOUT_MS: u32 = 6_000;

/// The `sessionStorage` key of the tab's token.
const TOKEN_KEY: &str = "raft3d.token";

/// Where a write goes and what it carries.
impl Write {
    fn endpoint(&self) -> Endpoint {
        match self {
            Self::CreatePrinter(_) => Endpoint::CreatePrinter,
            Self::CreateFilament(_) => Endpoint::CreateFilament,
            Self::CreatePrintJob(_) => Endpoint::CreatePrintJob,
            Self::SetJobStatus { .. } => Endpoint::SetJobStatus,
            Self::ConnectPrinter { .. } => Endpoint::ConnectPrinter,
            Self::DisconnectPrinter { .. } => Endpoint::DisconnectPrinter,
            Self::QueueCopies(_) => Endpoint::QueueCopies,
            Self::PlaceInQueue { .. } => Endpoint::PlaceInQueue,
            Self::LoadSpool { .. } => Endpoint::LoadSpool,
            Self::UnloadSpool { .. } => Endpoint::UnloadSpool,
            Self::ClearBed { .. } => Endpoint::ClearBed,
            Self::DeleteFile { .. } => Endpoint::DeleteFile,
        }
    }

    fn path(&self) -> String {
        let endpoint = self.endpoint();
        match self {
            Self::CreatePrinter(_)
            | Self::CreateFilament(_)
            | Self::CreatePrintJob(_)
            | Self::QueueCopies(_) => endpoint.url(&[]),
            Self::PlaceInQueue { job_id, .. } => endpoint.url(&[job_id]),
            Self::SetJobStatus { job_id, status } => format!(
                "{}?status={}",
                endpoint.url(&[job_id]),
                path_segment(status)
            ),
            Self::ConnectPrinter { printer_id, .. }
            | Self::DisconnectPrinter { printer_id }
            | Self::LoadSpool { printer_id, .. }
            | Self::UnloadSpool { printer_id }
            | Self::ClearBed { printer_id } => endpoint.url(&[printer_id]),
            Self::DeleteFile { file_id } => endpoint.url(&[file_id]),
        }
    }

    fn body(&self) -> Option<serde_json::Result<String>> {
        match self {
            Self::CreatePrinter(b) => Some(serde_json::to_string(b)),
            Self::CreateFilament(b) => Some(serde_json::to_string(b)),
            Self::CreatePrintJob(b) => Some(serde_json::to_string(b)),
            Self::ConnectPrinter { body, .. } => Some(serde_json::to_string(body)),
            Self::QueueCopies(b) => Some(serde_json::to_string(b)),
            Self::PlaceInQueue { body, .. } => Some(serde_json::to_string(body)),
            Self::LoadSpool { body, .. } => Some(serde_json::to_string(body)),
            Self::SetJobStatus { .. }
            | Self::DisconnectPrinter { .. }
            | Self::UnloadSpool { .. }
            | Self::ClearBed { .. }
            | Self::DeleteFile { .. } => None,
        }
    }
}

/// A request builder for `method` (the contract's) on `url`.
fn request(method: Method, url: &str) -> RequestBuilder {
    match method {
        Method::Get => Request::get(url),
        Method::Post => Request::post(url),
        Method::Put => Request::put(url),
        Method::Delete => Request::delete(url),
    }
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

fn board_path(query: &BoardQuery, stale: bool, min_index: Option<u64>) -> String {
    let mut path = format!("{}?limit={}", Endpoint::Board.url(&[]), query.limit);
    for (key, value) in [
        ("printer_id", &query.printer_id),
        ("filament_id", &query.filament_id),
    ] {
        if !value.is_empty() {
            path.push_str(&format!("&{key}={}", path_segment(value)));
        }
    }
    if stale {
        path.push_str("&consistency=stale");
    }
    if let Some(index) = min_index {
        path.push_str(&format!("&min_index={index}"));
    }
    path
}

/// The board ([`app::api::Board`]) and the cluster view from one node. `stale` asks for
/// the node's own copy (answers without a leader); `min_index` for at least that log
/// index (after a change event, no leader round trip); otherwise reads are linearizable.
pub async fn fetch_farm(
    base: &str,
    query: &BoardQuery,
    stale: bool,
    min_index: Option<u64>,
    token: Option<&str>,
) -> Result<FarmData, ApiFailure> {
    let path = board_path(query, stale, min_index);
    let (board, cluster) = futures::join!(
        get::<app::api::Board>(base, &path, READ_TIMEOUT_MS, token),
        cluster_view(base, token),
    );
    Ok(FarmData::from_board(board?, Some(cluster?)))
}

/// One page of a printer's or a spool's jobs, newest first: `filter` is `printer_id` or
/// `filament_id`; `after` the last id of the page before. Asks one more than it shows,
/// to know whether there is a next page.
pub async fn job_history(
    base: &str,
    filter: &str,
    id: &str,
    after: Option<&str>,
    token: Option<&str>,
) -> Result<(Vec<app::PrintJob>, bool), ApiFailure> {
    let mut path = format!(
        "{}?{filter}={}&order=desc&limit={}&consistency=stale",
        Endpoint::ListPrintJobs.url(&[]),
        path_segment(id),
        HISTORY_PAGE + 1
    );
    if let Some(after) = after {
        path.push_str(&format!("&after={}", path_segment(after)));
    }
    let mut jobs: Vec<app::PrintJob> = get(base, &path, READ_TIMEOUT_MS, token).await?;
    let more = jobs.len() > HISTORY_PAGE;
    jobs.truncate(HISTORY_PAGE);
    Ok((jobs, more))
}

/// Jobs per page of a history.
const HISTORY_PAGE: usize = 20;

/// One page of the farm queue past job `after`: the jobs after it in queue order, or
/// (`back`) the jobs before it, nearest first. Linearizable: a move is placed next to
/// the neighbour the leader has now.
pub async fn queue_page(
    base: &str,
    after: &str,
    back: bool,
    limit: usize,
    token: Option<&str>,
) -> Result<Vec<app::PrintJob>, ApiFailure> {
    let order = if back { "desc" } else { "asc" };
    let path = format!(
        "{}?after={}&order={order}&limit={limit}",
        Endpoint::GetQueue.url(&[]),
        path_segment(after),
    );
    get(base, &path, READ_TIMEOUT_MS, token).await
}

/// One node's view of the cluster (never waits for a leader).
pub async fn cluster_view(base: &str, token: Option<&str>) -> Result<ClusterView, ApiFailure> {
    get(base, &Endpoint::Cluster.url(&[]), PROBE_TIMEOUT_MS, token).await
}

/// What the connected printers report right now (`GET /api/v1/telemetry`).
pub async fn telemetry(base: &str, token: Option<&str>) -> Result<Vec<PrinterLive>, ApiFailure> {
    get(
        base,
        &Endpoint::PrintersLive.url(&[]),
        PROBE_TIMEOUT_MS,
        token,
    )
    .await
}

/// The newest [`FILE_CHOICES`] stored G-code files, newest first, as this node has them.
pub async fn list_files(base: &str, token: Option<&str>) -> Result<Vec<GcodeFile>, ApiFailure> {
    let path = format!(
        "{}?order=desc&limit={FILE_CHOICES}&consistency=stale",
        Endpoint::ListFiles.url(&[])
    );
    get(base, &path, READ_TIMEOUT_MS, token).await
}

/// How many stored files the job form offers (the newest; the API pages the rest).
const FILE_CHOICES: usize = 200;

/// How long an upload may take: the body streams from disk to the leader, which answers
/// once a majority of the voters hold the file (up to `--max-upload-mib`, 512 MiB).
const UPLOAD_TIMEOUT_MS: u32 = 300_000;

/// Sends a picked or dropped G-code file to `base` once, the `File` itself as the body
/// (the browser reads it from disk as it sends, so a large file is never copied into the
/// page). Retrying (with the same key) is the store's business.
pub async fn upload_file(
    base: &str,
    file: &web_sys::File,
    idempotency_key: &str,
    token: Option<&str>,
) -> Result<GcodeFile, ApiFailure> {
    let path = format!(
        "{}?name={}",
        Endpoint::UploadFile.url(&[]),
        path_segment(&file.name())
    );
    let signal = AbortSignal::timeout_with_u32(UPLOAD_TIMEOUT_MS);
    let builder = Request::post(&url(base, &path))
        .header(IDEMPOTENCY_KEY_HEADER, idempotency_key)
        .header("content-type", "application/octet-stream")
        .redirect(RequestRedirect::Manual)
        .abort_signal(Some(&signal));
    let request = authorized(builder, token)
        .body(file.clone())
        .map_err(|e| unexpected(base, e))?;
    let response = request.send().await.map_err(|e| unreachable(base, e))?;
    decode(base, response).await
}

/// Fetches a stored file's bytes with the token and hands them to the browser as a
/// download named `name`. A plain link cannot carry the token (a navigation sends no
/// `Authorization`), so the bytes come through `fetch` into a `Blob` first.
pub async fn download_file(
    base: &str,
    file_id: &str,
    name: &str,
    token: Option<&str>,
) -> Result<(), ApiFailure> {
    use wasm_bindgen::JsCast;
    let path = Endpoint::GetFileContent.url(&[file_id]);
    let response = authorized(Request::get(&url(base, &path)), token)
        .send()
        .await
        .map_err(|e| unreachable(base, e))?;
    if !response.ok() {
        let failure = decode::<serde_json::Value>(base, response).await.err();
        return Err(failure.unwrap_or(ApiFailure::NotInBrowser));
    }
    let js = |e: wasm_bindgen::JsValue| unexpected(base, format!("{e:?}"));
    let blob = web_sys::Response::from(response).blob().map_err(js)?;
    let blob: web_sys::Blob = wasm_bindgen_futures::JsFuture::from(blob)
        .await
        .map_err(js)?
        .unchecked_into();
    save_blob(&blob, name).map_err(js)
}

/// Makes the browser save `blob` as `name` (a click on a link to a `blob:` URL).
fn save_blob(blob: &web_sys::Blob, name: &str) -> Result<(), wasm_bindgen::JsValue> {
    use wasm_bindgen::JsCast;
    let href = web_sys::Url::create_object_url_with_blob(blob)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a")?.unchecked_into();
    link.set_href(&href);
    link.set_download(name);
    link.click();
    // The download has started from the URL by now; a minute later it can go.
    leptos::task::spawn_local(async move {
        sleep(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&href);
    });
    Ok(())
}

/// The file an `<input type=file>` holds after its `change` event, if any.
pub fn picked_file(ev: &leptos::ev::Event) -> Option<web_sys::File> {
    use wasm_bindgen::JsCast;
    ev.target()?
        .dyn_into::<web_sys::HtmlInputElement>()
        .ok()?
        .files()?
        .get(0)
}

/// Empties an `<input type=file>` (so picking the same file again is a change).
pub fn clear_picked(ev: &leptos::ev::Event) {
    use wasm_bindgen::JsCast;
    if let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    {
        input.set_value("");
    }
}

/// The first file dropped with a `drop` event, if any.
pub fn dropped_file(ev: &leptos::ev::DragEvent) -> Option<web_sys::File> {
    ev.data_transfer()?.files()?.get(0)
}

/// Whether the tab is on screen (a hidden tab polls nothing).
pub fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
}

/// Sends a write to `base` once. Retrying (with the same key) is the store's business.
pub async fn send_write(
    base: &str,
    write: &Write,
    idempotency_key: &str,
    token: Option<&str>,
) -> Result<(), ApiFailure> {
    let signal = AbortSignal::timeout_with_u32(WRITE_TIMEOUT_MS);
    let method = write.endpoint().operation().method;
    let builder = request(method, &url(base, &write.path()))
        .header(IDEMPOTENCY_KEY_HEADER, idempotency_key)
        .redirect(RequestRedirect::Manual)
        .abort_signal(Some(&signal));
    let builder = authorized(builder, token);
    let request = match write.body() {
        Some(Ok(body)) => builder
            .header("content-type", "application/json")
            .body(body),
        Some(Err(e)) => return Err(unexpected(base, e)),
        None => builder.build(),
    }
    .map_err(|e| unexpected(base, e))?;
    let response = request.send().await.map_err(|e| unreachable(base, e))?;
    decode::<serde_json::Value>(base, response).await.map(drop)
}

async fn get<T: DeserializeOwned>(
    base: &str,
    path: &str,
    timeout_ms: u32,
    token: Option<&str>,
) -> Result<T, ApiFailure> {
    let signal = AbortSignal::timeout_with_u32(timeout_ms);
    let builder = Request::get(&url(base, path)).abort_signal(Some(&signal));
    let response = authorized(builder, token)
        .send()
        .await
        .map_err(|e| unreachable(base, e))?;
    decode(base, response).await
}

/// Adds the tab's token. Cross-origin (another member), this header makes the browser
/// ask first (CORS preflight, cached for 10 minutes); nodes allow it from member origins.
fn authorized(builder: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => builder.header("Authorization", &format!("Bearer {token}")),
        None => builder,
    }
}

async fn decode<T: DeserializeOwned>(base: &str, response: Response) -> Result<T, ApiFailure> {
    if response.type_() == ResponseType::Opaqueredirect {
        return Err(ApiFailure::NotLeader);
    }
    if response.ok() {
        return response.json::<T>().await.map_err(|e| unexpected(base, e));
    }
    let status = response.status();
    match response.json::<Problem>().await {
        Ok(problem) => Err(ApiFailure::Problem(problem)),
        Err(_) => Err(ApiFailure::Unexpected {
            url: base.to_owned(),
            reason: format!("HTTP {status} without a problem body"),
        }),
    }
}

fn unreachable(base: &str, error: gloo_net::Error) -> ApiFailure {
    ApiFailure::Unreachable {
        url: base.to_owned(),
        reason: error.to_string(),
    }
}

fn unexpected(base: &str, error: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::Unexpected {
        url: base.to_owned(),
        reason: error.to_string(),
    }
}

/// The farm the node put into the page; empty if the element is missing or unreadable
/// (the first poll fills it a second later).
pub fn initial_data(element_id: &str) -> FarmData {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(element_id))
        .and_then(|e| e.text_content())
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// This tab's `sessionStorage` (per tab and per origin, emptied when the tab closes).
fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

/// The token this tab signed in with, if any. Called after hydration only: the node that
/// rendered the page cannot see it, so reading it earlier would change the first render.
pub fn stored_token() -> Option<String> {
    session_storage()
        .and_then(|s| s.get_item(TOKEN_KEY).ok().flatten())
        .filter(|token| !token.is_empty())
}

/// Keeps `token` for this tab, so a reload stays signed in.
pub fn remember_token(token: &str) {
    if let Some(storage) = session_storage() {
        // Storage can be full or disabled: the token then lives in the page's memory only.
        let _ = storage.set_item(TOKEN_KEY, token);
    }
}

pub fn forget_token() {
    if let Some(storage) = session_storage() {
        let _ = storage.remove_item(TOKEN_KEY);
    }
}

/// `scheme://host:port` of the page, i.e. of the node that served it.
pub fn page_origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Milliseconds since the epoch (browser clock; only used for display and patience).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Local wall-clock time for messages, e.g. `14:03:27`.
pub fn clock_time() -> String {
    let date = js_sys::Date::new_0();
    format!(
        "{:02}:{:02}:{:02}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}

pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// A fresh Idempotency-Key for one user action: every retry of that action reuses it.
pub fn new_idempotency_key() -> String {
    let part = || (js_sys::Math::random() * 4_294_967_296.0) as u32;
    format!(
        "ui-{:08x}{:08x}{:08x}{:08x}",
        part(),
        part(),
        part(),
        part()
    )
}

/// How long the change stream may stay silent before its node counts as gone: two
/// heartbeats (`--events-heartbeat-ms`, 15 s) and some.
const STREAM_SILENCE_MS: u32 = 35_000;

/// Follows the change stream of `base` from `after` (an event id), calling `changed`
/// with the log index of every batch of events that arrives (a `reset` included), until
/// the stream ends or fails. Returns the last event id seen, and why it stopped.
///
/// `EventSource` cannot send the token, so this is `fetch` with a streamed body, and the
/// position goes in `Last-Event-ID` as a reconnecting `EventSource` would send it.
pub async fn follow_events<F, Fut>(
    base: &str,
    after: Option<String>,
    token: Option<&str>,
    mut changed: F,
) -> (Option<String>, ApiFailure)
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::future::{select, Either};
    use wasm_bindgen::JsCast;
    let mut last = after;
    let mut builder = Request::get(&url(base, &Endpoint::Events.url(&[])));
    if let Some(id) = &last {
        builder = builder.header("Last-Event-ID", id);
    }
    let response = match authorized(builder, token).send().await {
        Ok(response) => response,
        Err(e) => return (last, unreachable(base, e)),
    };
    if !response.ok() {
        let failure = decode::<serde_json::Value>(base, response).await.err();
        return (last, failure.unwrap_or(ApiFailure::NotInBrowser));
    }
    let Some(reader) = response.body().and_then(|body| {
        body.get_reader()
            .dyn_into::<web_sys::ReadableStreamDefaultReader>()
            .ok()
    }) else {
        return (last, stream_failure(base, "no readable body"));
    };
    let mut parser = EventIds::default();
    loop {
        let read = wasm_bindgen_futures::JsFuture::from(reader.read());
        let silence = sleep(STREAM_SILENCE_MS);
        futures::pin_mut!(read, silence);
        let chunk = match select(read, silence).await {
            Either::Left((Ok(chunk), _)) => chunk,
            Either::Left((Err(_), _)) => return (last, stream_failure(base, "the stream broke")),
            Either::Right(_) => {
                let _ = reader.cancel();
                return (last, stream_failure(base, "the stream went silent"));
            }
        };
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool());
        if done != Some(false) {
            return (last, stream_failure(base, "the stream ended"));
        }
        let bytes = js_sys::Reflect::get(&chunk, &"value".into())
            .map(|v| js_sys::Uint8Array::new(&v).to_vec())
            .unwrap_or_default();
        if let Some((id, index)) = parser.push(&bytes) {
            last = Some(id);
            changed(index).await;
        }
    }
}

fn stream_failure(base: &str, reason: &str) -> ApiFailure {
    ApiFailure::Unreachable {
        url: base.to_owned(),
        reason: reason.to_owned(),
    }
}
