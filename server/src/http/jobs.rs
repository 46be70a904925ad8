//! `/api/v1/print_jobs`, including status changes.

use super::error::ApiError;
use super::farm::ReadWish;
use super::{
    path_id, propose, query_params, read_one, read_page, stream_list, ApiResult, ApiState, Body,
    ListRequest, ObjectRequest, QueryParams, WriteContext,
};
use crate::store::StoredList;
use app::api::etag::Condition;
use app::api::{parse_status, JobFilter, NewPrintJob};
use app::{Command, JobStatus, PrintJob};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use serde::Serialize;

pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewPrintJob::from_json(&body.0)?;
    // The file's name and grams fill in the job: read them as the cluster has them (a
    // leader just elected may not have applied the upload yet).
    let file = match request.file_id() {
        None => None,
        Some(id) => {
            let applied = state.farm.read(ReadWish::LINEARIZABLE).await?;
            applied.farm.file(id).cloned()
        }
    };
    let job = request
        .clone()
        .into_job(super::new_id(), file.as_ref())
        .map_err(ApiError::Rejected)?;
    propose(&state, &write, request, |_| Command::CreatePrintJob(job)).await
}

/// `GET /api/v1/print_jobs[?status=queued&printer_id=P&filament_id=F&limit=N&after=ID&order=desc]`.
pub async fn list(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    let filter = JobFilter::from_params(&list.params)?;
    if list.paging.limit.is_none() {
        // Rows are decoded only to filter them; unfiltered, they are copied as they are.
        let keep = move |row: &[u8]| {
            filter.is_empty()
                || serde_json::from_slice::<PrintJob>(row).is_ok_and(|job| filter.matches(&job))
        };
        return stream_list(&state, &list, StoredList::PrintJobs, keep).await;
    }
    let filters = filter.params();
    let page = |farm: &app::FarmState, paging: &_, n| {
        farm.jobs_from(&filter, paging).take(n).cloned().collect()
    };
    read_page(&state, &list, &filters, page, |j: &PrintJob| &j.id).await
}

pub async fn get_one(State(state): State<ApiState>, request: ObjectRequest) -> ApiResult {
    read_one(&state, request, "print job", |farm, id| {
        farm.job(id).cloned()
    })
    .await
}

/// What a status change asks for; also what its idempotency fingerprint covers.
#[derive(Serialize)]
struct StatusChange {
    status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    if_match: Option<Vec<u64>>,
}

/// `POST /api/v1/print_jobs/{id}/status?status=running`, with `If-Match: <ETag>` to
/// refuse (`412`) the move if the job changed since it was read.
pub async fn set_status(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> ApiResult {
    let job_id = path_id(path)?;
    let params = query_params(query)?;
    let raw = params
        .get("status")
        .ok_or(app::api::RequestError::Missing { field: "status" })?;
    // `If-Match: *` asks only that the job exists, which the change needs anyway.
    let if_match = match super::condition(&write.headers, header::IF_MATCH)? {
        None | Some(Condition::Any) => None,
        Some(Condition::OneOf(tags)) => Some(tags),
    };
    let request = StatusChange {
        status: parse_status(raw)?,
        if_match,
    };
    propose(&state, &write, request, |r| Command::SetJobStatus {
        job_id,
        status: r.status,
        if_match: r.if_match,
    })
    .await
}
