//! `/api/v1/printers`.

use super::{
    propose, read_one, read_page, stream_list, ApiResult, ApiState, Body, ListRequest,
    ObjectRequest, WriteContext,
};
use crate::store::StoredList;
use app::api::NewPrinter;
use app::Command;
use axum::extract::State;

pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewPrinter::from_json(&body.0)?;
    propose(&state, &write, request, |r| {
        Command::CreatePrinter(r.into_printer(super::new_id()))
    })
    .await
}

/// `GET /api/v1/printers[?limit=N&after=ID&order=desc]`.
pub async fn list(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    if list.paging.limit.is_none() {
        return stream_list(&state, &list, StoredList::Printers, |_| true).await;
    }
    let page = |farm: &app::FarmState, paging: &_, n| {
        farm.printers_from(paging).take(n).cloned().collect()
    };
    read_page(&state, &list, &[], page, |p: &app::Printer| &p.id).await
}

pub async fn get_one(State(state): State<ApiState>, request: ObjectRequest) -> ApiResult {
    read_one(&state, request, "printer", |farm, id| {
        farm.printer(id).cloned()
    })
    .await
}
