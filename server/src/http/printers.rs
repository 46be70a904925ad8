//! `/api/v1/printers`.

use super::{consistency, path_id, propose, query_params, ApiResult, ApiState, Body, QueryParams};
use crate::http::error::ApiError;
use app::api::NewPrinter;
use app::{Command, Printer};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::Json;

pub async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let request = NewPrinter::from_json(&body.0)?;
    propose(&state, &headers, uri.path(), request, |r| {
        Command::CreatePrinter(r.into_printer(super::new_id()))
    })
    .await
}

pub async fn list(
    State(state): State<ApiState>,
    query: QueryParams,
) -> ApiResult<Json<Vec<Printer>>> {
    let consistency = consistency(&query_params(query)?)?;
    let applied = state.farm.read(consistency).await?;
    Ok(Json(applied.farm.printers().cloned().collect()))
}

pub async fn get_one(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> ApiResult<Json<Printer>> {
    let id = path_id(path)?;
    let consistency = consistency(&query_params(query)?)?;
    let applied = state.farm.read(consistency).await?;
    let printer = applied.farm.printer(&id).cloned();
    printer.map(Json).ok_or_else(|| ApiError::NotFound {
        kind: "printer",
        id: id.to_string(),
    })
}
