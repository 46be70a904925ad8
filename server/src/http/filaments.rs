//! `/api/v1/filaments`. Spools are shown with what their live jobs reserve
//! (`reserved_weight_in_grams`) and what is left for new jobs (`available_weight_in_grams`).

use super::{propose, read_list, read_one, ApiResult, ApiState, Body, QueryParams, WriteContext};
use app::api::NewFilament;
use app::state::FilamentView;
use app::Command;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewFilament::from_json(&body.0)?;
    propose(&state, &write, request, |r| {
        Command::CreateFilament(r.into_filament(super::new_id()))
    })
    .await
}

pub async fn list(
    State(state): State<ApiState>,
    query: QueryParams,
) -> ApiResult<Json<Vec<FilamentView>>> {
    read_list(&state, query, |farm, _| Ok(farm.filaments().collect())).await
}

pub async fn get_one(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> ApiResult<Json<FilamentView>> {
    read_one(&state, path, query, "filament", |farm, id| {
        farm.filament(id)
    })
    .await
}
