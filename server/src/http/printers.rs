//! `/api/v1/printers`.

use super::error::ApiError;
use super::{
    path_id, propose, read_one, read_page, stream_list, ApiResult, ApiState, Body, ListRequest,
    ObjectRequest, WriteContext,
};
use crate::store::StoredList;
use app::api::{LoadSpoolBody, NewConnection, NewPrinter};
use app::Command;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};

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

/// What identifies a connection request for `Idempotency-Key`: never the key itself
/// (the fingerprint is stored in the farm) but its tag under the cluster secret, so a
/// retry with another key is another request.
#[derive(serde::Serialize)]
struct ConnectionFingerprint<'a> {
    printer_id: &'a app::Id,
    connection: &'a app::domain::Connection,
    api_key_tag: Option<String>,
}

/// `PUT /api/v1/printers/{id}/connection`: the API key is sealed here, on the node that
/// received it, and only the sealed bytes go into the log (`crate::secret`).
pub async fn connect(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult {
    let printer_id = path_id(path)?;
    let request = NewConnection::from_json(&body.0)?;
    let (api_key, api_key_tag) = match &request.api_key {
        None => (None, None),
        Some(key) => {
            let secret = state.secret.as_ref().ok_or(ApiError::NoClusterSecret)?;
            let sealed = secret
                .seal(&printer_id, key)
                .map_err(|_| ApiError::Internal("sealing the API key failed"))?;
            (Some(sealed), Some(secret.fingerprint_tag(&printer_id, key)))
        }
    };
    let connection = request.public();
    let fingerprint = ConnectionFingerprint {
        printer_id: &printer_id,
        connection: &connection,
        api_key_tag,
    };
    let command = Command::ConnectPrinter {
        printer_id: printer_id.clone(),
        connection: connection.clone(),
        api_key,
    };
    propose(&state, &write, fingerprint, |_| command).await
}

/// `DELETE /api/v1/printers/{id}/connection`.
pub async fn disconnect(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let printer_id = path_id(path)?;
    propose(&state, &write, printer_id, |printer_id| {
        Command::DisconnectPrinter { printer_id }
    })
    .await
}

/// `PUT /api/v1/printers/{id}/spool` with `{"filament_id": F}`.
pub async fn load_spool(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult {
    let printer_id = path_id(path)?;
    let filament_id = LoadSpoolBody::from_json(&body.0)?;
    propose(&state, &write, (printer_id, filament_id), |(p, f)| {
        Command::LoadSpool {
            printer_id: p,
            filament_id: Some(f),
        }
    })
    .await
}

/// `DELETE /api/v1/printers/{id}/spool`.
pub async fn unload_spool(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let printer_id = path_id(path)?;
    propose(&state, &write, printer_id, |printer_id| {
        Command::LoadSpool {
            printer_id,
            filament_id: None,
        }
    })
    .await
}

/// `POST /api/v1/printers/{id}/clear`: someone took the print off the bed.
pub async fn clear_bed(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let printer_id = path_id(path)?;
    propose(&state, &write, printer_id, |printer_id| Command::ClearBed {
        printer_id,
    })
    .await
}

/// `GET /api/v1/telemetry`: the printers' live values as this node has them (the
/// leader's own, or its copy of the leader's, a second or so behind).
pub async fn live(State(state): State<ApiState>) -> axum::Json<Vec<app::domain::PrinterLive>> {
    axum::Json(state.live.snapshot())
}
