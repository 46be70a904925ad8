//! `/api/v1/printers`.

use super::{propose, read_list, read_one, ApiResult, ApiState, Body, QueryParams, WriteContext};
use app::api::NewPrinter;
use app::{Command, Printer};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewPrinter::from_json(&body.0)?;
    propose(&state, &write, request, |r| {
        Command::CreatePrinter(r.into_printer(super::new_id()))
    })
    .await
}

pub async fn list(
    State(state): State<ApiState>,
    query: QueryParams,
) -> ApiResult<Json<Vec<Printer>>> {
    read_list(&state, query, |farm, _| {
        Ok(farm.printers().cloned().collect())
    })
    .await
}

pub async fn get_one(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> ApiResult<Json<Printer>> {
    read_one(&state, path, query, "printer", |farm, id| {
        farm.printer(id).cloned()
    })
    .await
}
