//! `/api/v1/filaments`. Spools are shown with what their live jobs reserve
//! (`reserved_weight_in_grams`) and what is left for new jobs (`available_weight_in_grams`).

use super::{consistency, path_id, propose, query_params, ApiResult, ApiState, Body, QueryParams};
use crate::http::error::ApiError;
use app::api::NewFilament;
use app::state::FilamentView;
use app::Command;
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
    let request = NewFilament::from_json(&body.0)?;
    propose(&state, &headers, uri.path(), request, |r| {
        Command::CreateFilament(r.into_filament(super::new_id()))
    })
    .await
}

pub async fn list(
    State(state): State<ApiState>,
    query: QueryParams,
) -> ApiResult<Json<Vec<FilamentView>>> {
    let consistency = consistency(&query_params(query)?)?;
    let applied = state.farm.read(consistency).await?;
    Ok(Json(applied.farm.filaments().collect()))
}

pub async fn get_one(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> ApiResult<Json<FilamentView>> {
    let id = path_id(path)?;
    let consistency = consistency(&query_params(query)?)?;
    let applied = state.farm.read(consistency).await?;
    let filament = applied.farm.filament(&id);
    filament.map(Json).ok_or_else(|| ApiError::NotFound {
        kind: "filament",
        id: id.to_string(),
    })
}
