//! `/api/v1/filaments`. Spools are shown with what their live jobs reserve
//! (`reserved_weight_in_grams`) and what is left for new jobs (`available_weight_in_grams`).

use super::{
    propose, read_all, read_one, read_page, ApiResult, ApiState, Body, ListRequest, ObjectRequest,
    WriteContext,
};
use app::api::NewFilament;
use app::state::FilamentView;
use app::Command;
use axum::extract::State;

pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewFilament::from_json(&body.0)?;
    propose(&state, &write, request, |r| {
        Command::CreateFilament(r.into_filament(super::new_id()))
    })
    .await
}

/// `GET /api/v1/filaments[?limit=N&after=ID&order=desc]`. The whole list comes from
/// the in-memory farm (its derived weights are not stored): a farm has spools by the
/// hundred, not by the hundred thousand.
pub async fn list(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    if list.paging.limit.is_none() {
        return read_all(&state, &list, |farm| farm.filaments().collect::<Vec<_>>()).await;
    }
    let page = |farm: &app::FarmState, paging: &_, n| farm.filaments_from(paging).take(n).collect();
    read_page(&state, &list, &[], page, |f: &FilamentView| &f.filament.id).await
}

pub async fn get_one(State(state): State<ApiState>, request: ObjectRequest) -> ApiResult {
    read_one(&state, request, "filament", |farm, id| farm.filament(id)).await
}
