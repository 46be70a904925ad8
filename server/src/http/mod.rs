//! The client-facing HTTP API on `--http-addr`: `/api/v1/*`, `/metrics`, `/healthz`,
//! `/readyz`, and the dashboard (`dashboard.rs`).
//!
//! Owns: turning HTTP into validated requests (via `app::api`) and outcomes into HTTP
//! (via `error.rs`, the one place statuses are chosen). Must not hold farm rules (ask
//! `app`) nor talk to openraft directly (ask [`farm::Farm`]).

pub mod auth;
pub mod backup;
pub mod board;
pub mod cluster;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod farm;
pub mod filaments;
pub mod files;
pub mod hosts;
pub mod jobs;
pub mod metrics;
pub mod ops;
pub mod printers;
pub mod queue;
pub mod reference;
pub mod tokens;

use crate::raft::batcher::Written;
use crate::store::StoredList;
use crate::write_timing::WriteTimings;
use app::api::etag::{self, Condition};
use app::api::{
    fingerprint, Endpoint, FieldProblem, Paging, RequestError, IDEMPOTENCY_KEY_HEADER,
    INDEX_HEADER, LEADER_URL_HEADER, MAX_PAGE_LIMIT,
};
use app::{Command, IdempotencyClaim, Outcome};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, OriginalUri, Path, Query,
    Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use error::ApiError;
use farm::{Consistency, Farm, ReadWish};
use metrics::HttpMetrics;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

/// What every handler can reach, behind one `Arc`: axum clones the state for every
/// middleware and handler a request passes, and a struct of a dozen `Arc`s cloned and
/// dropped that often was ~4% of a leader's CPU at 64 clients (perf, 2026-12-07).
#[derive(Clone)]
pub struct ApiState(std::sync::Arc<ApiShared>);

impl ApiState {
    pub fn new(shared: ApiShared) -> Self {
        Self(std::sync::Arc::new(shared))
    }
}

impl std::ops::Deref for ApiState {
    type Target = ApiShared;

    fn deref(&self) -> &ApiShared {
        &self.0
    }
}

/// The parts of [`ApiState`].
pub struct ApiShared {
    pub farm: Farm,
    pub metrics: HttpMetrics,
    /// The stages of writes on this node, shown on `/metrics`.
    pub write_timings: WriteTimings,
    /// When the peer certificates lapse (`crate::pki::PeerTls::expiries`), for `/metrics`.
    pub certificate_expiries: Vec<(&'static str, i64)>,
    pub max_body_bytes: usize,
    /// How change streams behave, and their counters.
    pub streams: events::StreamSettings,
    pub auth: auth::AuthConfig,
    /// Host names this node answers to besides its members' (see `hosts`).
    pub allowed_hosts: std::sync::Arc<Vec<String>>,
    /// Stored G-code files' bytes (`crate::files`).
    pub files: crate::files::FileStore,
    /// Largest upload (`--max-upload-mib`), in bytes.
    pub max_upload_bytes: u64,
    /// The printers' live values (`crate::driver::live`).
    pub live: crate::driver::live::LiveBoard,
    /// Seals printers' API keys; `None`: this node has none (`crate::secret`).
    pub secret: Option<std::sync::Arc<crate::secret::ClusterSecret>>,
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

/// The API (with CORS for the cluster's own origins) plus the dashboard.
pub fn router(state: ApiState, site_dir: Option<&std::path::Path>) -> Router {
    api_routes()
        .fallback(
            |request: Request| async move { ApiError::NoRoute(request.uri().path().to_owned()) },
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Bodies are read by `Body`, which turns "too large" into a 413 problem.
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_cross_site_writes,
        ))
        .layer(middleware::from_fn(add_redirect_location))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            add_index_header,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state.clone())
        .merge(dashboard::router(
            state.farm.clone(),
            state.auth.anonymous_may_read(),
            site_dir,
        ))
        // Pages too: a rebound host name must not get the dashboard's origin either.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            hosts::check_host,
        ))
        // Outermost, so that preflight requests are answered before routing.
        .layer(dashboard::cors(state.farm.clone()))
}

/// Every operation of the contract (`app::api::contract`), at its path, for its method:
/// the match below is where each meets its handler, and the compiler sees to it that none
/// is left out.
fn api_routes() -> Router<ApiState> {
    Endpoint::ALL
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            let op = endpoint.operation();
            let method = match op.method {
                app::api::Method::Get => MethodFilter::GET,
                app::api::Method::Post => MethodFilter::POST,
                app::api::Method::Put => MethodFilter::PUT,
                app::api::Method::Delete => MethodFilter::DELETE,
            };
            router.route(op.path, handler(endpoint, method))
        })
}

fn handler(endpoint: Endpoint, method: MethodFilter) -> MethodRouter<ApiState> {
    match endpoint {
        Endpoint::ListPrinters => on(method, printers::list),
        Endpoint::CreatePrinter => on(method, printers::create),
        Endpoint::GetPrinter => on(method, printers::get_one),
        Endpoint::ListFilaments => on(method, filaments::list),
        Endpoint::CreateFilament => on(method, filaments::create),
        Endpoint::GetFilament => on(method, filaments::get_one),
        Endpoint::ListPrintJobs => on(method, jobs::list),
        Endpoint::CreatePrintJob => on(method, jobs::create),
        Endpoint::GetPrintJob => on(method, jobs::get_one),
        Endpoint::SetJobStatus => on(method, jobs::set_status),
        Endpoint::Events => on(method, events::stream),
        Endpoint::Board => on(method, board::board),
        Endpoint::Cluster => on(method, cluster::view),
        Endpoint::AddNode => on(method, cluster::add_node),
        Endpoint::RemoveNode => on(method, cluster::remove_node),
        Endpoint::Backup => on(method, backup::backup),
        Endpoint::ListTokens => on(method, tokens::list),
        Endpoint::CreateToken => on(method, tokens::create),
        Endpoint::RevokeToken => on(method, tokens::revoke),
        Endpoint::ConnectPrinter => on(method, printers::connect),
        Endpoint::DisconnectPrinter => on(method, printers::disconnect),
        Endpoint::PrintersLive => on(method, printers::live),
        Endpoint::UploadFile => on(method, files::upload),
        Endpoint::ListFiles => on(method, files::list),
        Endpoint::GetFile => on(method, files::get_one),
        Endpoint::GetFileContent => on(method, files::content),
        Endpoint::DeleteFile => on(method, files::delete),
        Endpoint::GetQueue => on(method, queue::list),
        Endpoint::QueueCopies => on(method, queue::copies),
        Endpoint::PlaceInQueue => on(method, queue::place),
        Endpoint::LoadSpool => on(method, printers::load_spool),
        Endpoint::UnloadSpool => on(method, printers::unload_spool),
        Endpoint::ClearBed => on(method, printers::clear_bed),
        Endpoint::OpenApi => on(method, reference::document),
        Endpoint::Reference => on(method, reference::page),
        Endpoint::Metrics => on(method, ops::metrics),
        Endpoint::Healthz => on(method, ops::healthz),
        Endpoint::Readyz => on(method, ops::readyz),
    }
}

/// A `307` from a follower points at the same path and query on the leader.
async fn add_redirect_location(request: Request, next: Next) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::TEMPORARY_REDIRECT {
        let leader = response
            .headers()
            .get(LEADER_URL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|url| format!("{}{path_and_query}", url.trim_end_matches('/')));
        if let Some(location) = leader.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    response
}

async fn record_metrics(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    state.metrics.record(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The `method` label of a request: the standard methods by name, anything else as
/// `other`. Clients choose the method, so a label per method would let anyone add series
/// to `/metrics` forever (300 made-up methods once grew it from 8.5 KB to 617 KB).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Refuses a write (any method but GET, HEAD, OPTIONS) whose `Origin` is not one of the
/// cluster's members: a page of another site open in a shop-floor browser could
/// otherwise write to the farm (a `no-cors` POST needs no CORS permission). Clients that
/// are not browsers send no `Origin` and are not affected.
async fn refuse_cross_site_writes(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS].contains(method);
    if let (false, Some(origin)) = (safe, request.headers().get(header::ORIGIN)) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        let ours = state
            .farm
            .member_urls()
            .iter()
            .any(|url| dashboard::same_origin(url, &origin));
        if !ours {
            return ApiError::CrossSiteWrite(origin).into_response();
        }
    }
    next.run(request).await
}

/// Whether a `Content-Type` is JSON (`application/json`, or `application/<x>+json`).
fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let media = media.to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// A request body, with "too large", "unreadable" and "not JSON" turned into problem
/// responses. An empty body needs no type (a job's status change has none).
pub struct Body(pub Bytes);

impl FromRequest<ApiState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge {
                        limit: state.max_body_bytes,
                    }
                } else {
                    ApiError::Request(RequestError::MalformedJson(rejection.body_text()))
                }
            })?;
        match content_type {
            _ if body.0.is_empty() => Ok(body),
            Some(kind) if is_json(&kind) => Ok(body),
            Some(kind) => Err(ApiError::NotJson(kind)),
            None => Err(ApiError::NotJson(
                "a body without a Content-Type".to_owned(),
            )),
        }
    }
}

/// The id in a path, validated like any other id.
pub fn path_id(path: Result<Path<String>, PathRejection>) -> ApiResult<app::Id> {
    let Path(raw) = path.map_err(|e| RequestError::WrongType {
        field: format!("id ({})", e.body_text()),
        expected: "a valid path segment",
    })?;
    Ok(app::api::parse_path_id(&raw)?)
}

pub type QueryParams = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Query parameters, with undecodable ones refused.
pub fn query_params(query: QueryParams) -> ApiResult<HashMap<String, String>> {
    query.map(|Query(q)| q).map_err(|e| {
        ApiError::Request(RequestError::WrongType {
            field: format!("query ({})", e.body_text()),
            expected: "URL-encoded key=value pairs",
        })
    })
}

/// `?consistency=stale` opts into local reads; the default is linearizable, except
/// with `?min_index=N` alone, which asks for that position and no more (no leader round
/// trip): `consistency=linearizable` with it asks for both.
pub fn read_wish(params: &HashMap<String, String>) -> ApiResult<ReadWish> {
    let min_index = params
        .get("min_index")
        .map(|raw| {
            raw.trim()
                .parse::<u64>()
                .map_err(|_| RequestError::Invalid {
                    field: "min_index",
                    problem: FieldProblem::LogIndex,
                })
        })
        .transpose()?;
    let consistency = match params
        .get("consistency")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None if min_index.is_some() => Consistency::Stale,
        None | Some("linearizable") | Some("strong") => Consistency::Linearizable,
        Some("stale") => Consistency::Stale,
        Some(_) => {
            return Err(RequestError::Invalid {
                field: "consistency",
                problem: FieldProblem::Consistency,
            }
            .into())
        }
    };
    Ok(ReadWish {
        consistency,
        min_index,
    })
}

/// Sets `X-Raft3D-Index`: the log index an answer reflects.
pub fn with_index(mut response: Response, index: Option<u64>) -> Response {
    if let Some(index) = index {
        response
            .headers_mut()
            .insert(INDEX_HEADER, HeaderValue::from(index));
    }
    response
}

/// The `If-Match` / `If-None-Match` condition of a request, if it has one.
pub fn condition(headers: &HeaderMap, name: header::HeaderName) -> ApiResult<Option<Condition>> {
    let Some(value) = headers.get(&name) else {
        return Ok(None);
    };
    let label = if name == header::IF_MATCH {
        "If-Match"
    } else {
        "If-None-Match"
    };
    value
        .to_str()
        .ok()
        .and_then(Condition::parse)
        .map(Some)
        .ok_or(ApiError::BadCondition(label))
}

/// A JSON answer with its `ETag` (the hash of its bytes, `app::api::etag`), or `304 Not
/// Modified` without a body when `if_none_match` names that tag.
pub fn tagged_json<T: Serialize>(
    value: &T,
    if_none_match: Option<&Condition>,
    index: Option<u64>,
) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let tag = etag::of_bytes(&bytes);
    let mut response = match if_none_match {
        Some(condition) if condition.matches(tag) => StatusCode::NOT_MODIFIED.into_response(),
        _ => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&etag::header_value(tag)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    with_index(response, index)
}

/// Every API answer carries `X-Raft3D-Index`: handlers that read or write set the index
/// they read at or wrote at; any other answer (an error, the cluster view) gets the
/// index this node had applied when it answered.
async fn add_index_header(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !api || response.headers().contains_key(INDEX_HEADER) {
        return response;
    }
    with_index(response, state.farm.applied_index())
}

/// What a write handler needs to know about its request besides the body: its path,
/// its `Idempotency-Key` and who sent it.
pub struct WriteContext {
    pub path: String,
    pub headers: HeaderMap,
    pub caller: Option<auth::Caller>,
}

impl FromRequestParts<ApiState> for WriteContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &ApiState) -> Result<Self, Self::Rejection> {
        Ok(Self {
            path: parts.uri.path().to_owned(),
            headers: parts.headers.clone(),
            caller: parts.extensions.get::<auth::Caller>().cloned(),
        })
    }
}

/// The `Idempotency-Key` claim of a write, if it carries one. Keys are scoped to the
/// caller's token: two callers using the same key do not see each other's answers.
pub fn idempotency_claim<T: Serialize>(
    write: &WriteContext,
    request: &T,
) -> ApiResult<Option<IdempotencyClaim>> {
    let Some(value) = write.headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| ApiError::BadIdempotencyKey)?;
    let visible = |b: u8| (0x21..=0x7e).contains(&b);
    if key.is_empty() || key.len() > 255 || !key.bytes().all(visible) {
        return Err(ApiError::BadIdempotencyKey);
    }
    let scope = write.caller.as_ref().and_then(|c| c.scope.as_deref());
    Ok(Some(IdempotencyClaim {
        key: match scope {
            Some(scope) => format!("{scope}/{key}"),
            None => key.to_owned(),
        },
        fingerprint: fingerprint("POST", &write.path, request),
    }))
}

/// A fresh server-side id: a UUIDv7 (time-ordered, URL-safe), stamped before proposing so
/// applying stays deterministic.
pub fn new_id() -> app::Id {
    let raw = uuid::Uuid::now_v7().simple().to_string();
    app::Id::parse(&raw).unwrap_or_else(|_| unreachable!("32 hex digits are a valid id"))
}

/// Turns what applying a command produced into the response the client gets (the same on
/// a retry with the same idempotency key), at the index it was written at.
pub fn outcome_response(written: Written) -> ApiResult {
    let response = match written.outcome {
        Outcome::Created(entity) => (StatusCode::CREATED, Json(entity)).into_response(),
        Outcome::Updated(entity) => (StatusCode::OK, Json(entity)).into_response(),
        Outcome::Rejected(rejection) => ApiError::from(rejection).into_response(),
    };
    Ok(with_index(response, Some(written.index)))
}

/// The shared path of every `POST`: claim the idempotency key on what the client sent,
/// build the command (generating ids), commit it, answer with its outcome.
pub async fn propose<R: Serialize>(
    state: &ApiState,
    write: &WriteContext,
    request: R,
    into_command: impl FnOnce(R) -> Command,
) -> ApiResult {
    let claim = idempotency_claim(write, &request)?;
    let written = state.farm.propose(into_command(request), claim).await?;
    outcome_response(written)
}

/// A `GET` of a list: its path (for the next page's link), its query parameters, what
/// it asks of the node and which page.
pub struct ListRequest {
    pub path: String,
    pub params: HashMap<String, String>,
    pub wish: ReadWish,
    pub paging: Paging,
    pub if_none_match: Option<Condition>,
}

impl FromRequestParts<ApiState> for ListRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|uri| uri.path().to_owned())
            .unwrap_or_else(|| parts.uri.path().to_owned());
        let query = Query::<HashMap<String, String>>::from_request_parts(parts, state).await;
        let params = query_params(query)?;
        Ok(Self {
            path,
            wish: read_wish(&params)?,
            paging: Paging::from_params(&params)?,
            params,
            if_none_match: condition(&parts.headers, header::IF_NONE_MATCH)?,
        })
    }
}

impl ListRequest {
    /// The `consistency` parameter as given, for the next page's link.
    fn consistency(&self) -> Option<&str> {
        self.params.get("consistency").map(String::as_str)
    }
}

/// One page of a list (`?limit=N`), read from the in-memory farm: `items` copies at most
/// the count it is given under its lock. A `Link: <...>; rel="next"` header points at the
/// next page when there is one.
pub async fn read_page<T: Serialize>(
    state: &ApiState,
    list: &ListRequest,
    filters: &[(&'static str, String)],
    items: impl FnOnce(&app::FarmState, &Paging, usize) -> Vec<T>,
    id_of: impl Fn(&T) -> &app::Id,
) -> ApiResult {
    let limit = list.paging.limit.unwrap_or(MAX_PAGE_LIMIT);
    // One more than the page, to know whether a next page exists.
    let (mut page, index) = state
        .farm
        .read_at(list.wish, |farm| items(farm, &list.paging, limit + 1))
        .await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let mut response = tagged_json(&page, list.if_none_match.as_ref(), index);
    if let (true, Some(last)) = (more, page.last()) {
        let link = list
            .paging
            .next_link(&list.path, id_of(last), filters, list.consistency());
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// A whole list (no `limit`) of objects stored as rows, streamed from one consistent
/// view of `state.redb` (`store::FarmView`): neither the farm's lock nor a farm-sized
/// buffer is held while a client reads it.
pub async fn stream_list(
    state: &ApiState,
    list: &ListRequest,
    stored: StoredList,
    keep: impl Fn(&[u8]) -> bool + Send + 'static,
) -> ApiResult {
    let view = state.farm.view(list.wish).await?;
    let index = view.index;
    let chunks = view.stream_json_array(stored, keep);
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(streamed_body(chunks))
        .map_err(|_| ApiError::Internal("building a streamed answer"))?;
    Ok(with_index(response, index))
}

/// A response body that sends what `chunks` receives, as it comes, and ends when its
/// sender is gone (or at the first error).
pub fn streamed_body<B, E>(chunks: tokio::sync::mpsc::Receiver<Result<B, E>>) -> axum::body::Body
where
    B: Into<Bytes> + Send + 'static,
    E: Into<axum::BoxError> + Send + 'static,
{
    let stream = futures::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.recv().await?;
        Some((chunk.map(Into::into), chunks))
    });
    axum::body::Body::from_stream(stream)
}

/// A whole list that is small by nature (spools, tokens), copied from the in-memory farm.
pub async fn read_all<T: Serialize>(
    state: &ApiState,
    list: &ListRequest,
    items: impl FnOnce(&app::FarmState) -> Vec<T>,
) -> ApiResult {
    let (all, index) = state.farm.read_at(list.wish, items).await?;
    Ok(tagged_json(&all, list.if_none_match.as_ref(), index))
}

/// `GET /<resource>/{id}`: one object, `404` if absent; with its `ETag`.
pub async fn read_one<T: Serialize>(
    state: &ApiState,
    request: ObjectRequest,
    kind: &'static str,
    find: impl FnOnce(&app::FarmState, &app::Id) -> Option<T>,
) -> ApiResult {
    let ObjectRequest {
        id,
        wish,
        if_none_match,
    } = request;
    let (found, index) = state.farm.read_at(wish, |farm| find(farm, &id)).await?;
    let found = found.ok_or_else(|| ApiError::NotFound {
        kind,
        id: id.to_string(),
    })?;
    Ok(tagged_json(&found, if_none_match.as_ref(), index))
}

/// A `GET` of one object: its id, what it asks of the node, its `If-None-Match`.
pub struct ObjectRequest {
    pub id: app::Id,
    pub wish: ReadWish,
    pub if_none_match: Option<Condition>,
}

impl FromRequestParts<ApiState> for ObjectRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let path = Path::<String>::from_request_parts(parts, state).await;
        let query = Query::<HashMap<String, String>>::from_request_parts(parts, state).await;
        Ok(Self {
            id: path_id(path)?,
            wish: read_wish(&query_params(query)?)?,
            if_none_match: condition(&parts.headers, header::IF_NONE_MATCH)?,
        })
    }
}
