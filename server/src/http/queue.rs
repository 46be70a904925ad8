//! `/api/v1/queue`: the farm queue in the order printers take it, copies of one print,
//! and moving a waiting job (`app::domain::queue` has the rules).

use super::error::ApiError;
use super::farm::ReadWish;
use super::{
    path_id, propose, read_page, tagged_json, ApiResult, ApiState, Body, ListRequest, WriteContext,
};
use app::api::{parse_queue_place, NewPrintJob};
use app::{Command, PrintJob};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Serialize;

/// `GET /api/v1/queue[?limit=N&after=ID&order=desc]`.
pub async fn list(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    if list.paging.limit.is_some() {
        let page = |farm: &app::FarmState, paging: &_, n| {
            farm.queue_from(paging).take(n).cloned().collect()
        };
        return read_page(&state, &list, &[], page, |j: &PrintJob| &j.id).await;
    }
    // The whole queue: the jobs waiting and printing, not the farm's history.
    let (queue, index) = state
        .farm
        .read_at(list.wish, |farm| {
            farm.queue_from(&list.paging).cloned().collect::<Vec<_>>()
        })
        .await?;
    Ok(tagged_json(&queue, list.if_none_match.as_ref(), index).into_response())
}

/// What a request for copies asks; also what its idempotency fingerprint covers.
#[derive(Serialize)]
struct Copies {
    job: NewPrintJob,
    copies: u32,
}

/// `POST /api/v1/queue`: `copies` jobs of one print, all or none.
pub async fn copies(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let (job, copies) = NewPrintJob::copies_from_json(&body.0)?;
    let file = {
        let applied = state.farm.read(ReadWish::LINEARIZABLE).await?;
        job.file_id().and_then(|id| applied.farm.file(id).cloned())
    };
    let jobs = (0..copies)
        .map(|_| job.clone().into_job(super::new_id(), file.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::Rejected)?;
    propose(&state, &write, Copies { job, copies }, |_| {
        Command::CreatePrintJobs(jobs)
    })
    .await
}

/// `PUT /api/v1/queue/{id}` with `{"before": J}`, `{"after": J}` or `{"to": "first"}`.
pub async fn place(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult {
    let job_id = path_id(path)?;
    let place = parse_queue_place(&body.0)?;
    propose(&state, &write, (job_id, place), |(job_id, place)| {
        Command::PlaceInQueue { job_id, place }
    })
    .await
}
