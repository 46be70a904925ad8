//! `/api/v1/print_jobs`, including status changes.

use super::{
    path_id, propose, query_params, read_list, read_one, ApiResult, ApiState, Body, QueryParams,
    WriteContext,
};
use app::api::{parse_status, NewPrintJob};
use app::{Command, JobStatus, PrintJob};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewPrintJob::from_json(&body.0)?;
    propose(&state, &write, request, |r| {
        Command::CreatePrintJob(r.into_job(super::new_id()))
    })
    .await
}

/// `GET /api/v1/print_jobs[?status=queued]`.
pub async fn list(
    State(state): State<ApiState>,
    query: QueryParams,
) -> ApiResult<Json<Vec<PrintJob>>> {
    read_list(&state, query, |farm, params| {
        let wanted = params.get("status").map(|s| parse_status(s)).transpose()?;
        let jobs = farm
            .jobs()
            .filter(|job| wanted.is_none_or(|s| job.status == s));
        Ok(jobs.cloned().collect())
    })
    .await
}

pub async fn get_one(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> ApiResult<Json<PrintJob>> {
    read_one(&state, path, query, "print job", |farm, id| {
        farm.job(id).cloned()
    })
    .await
}

/// What a status change asks for; also what its idempotency fingerprint covers.
#[derive(Serialize)]
struct StatusChange {
    status: JobStatus,
}

/// `POST /api/v1/print_jobs/{id}/status?status=running`.
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
    let request = StatusChange {
        status: parse_status(raw)?,
    };
    propose(&state, &write, request, |r| Command::SetJobStatus {
        job_id,
        status: r.status,
    })
    .await
}
