//! `GET /api/v1/backup`: the farm, as `crate::backup` streams it, to an admin.
//!
//! Linearizable: the backup holds every write acknowledged before it was asked for
//! (a stale view could miss one a client was told is stored). Stored files this node
//! lacks are fetched from a peer before the first byte goes out, so a file that cannot
//! be had is a `503`, never a backup without it.

use super::error::ApiError;
use super::farm::ReadWish;
use super::{ApiResult, ApiState};
use crate::backup::{self, StoredFile};
use crate::files;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

pub async fn backup(State(state): State<ApiState>) -> ApiResult {
    let view = state.farm.view(ReadWish::LINEARIZABLE).await?;
    let store_error = |error| {
        tracing::error!(%error, "reading the farm for a backup failed");
        ApiError::Internal("reading the farm for a backup failed")
    };
    let header = backup::header(&state.farm, &view).map_err(store_error)?;
    let mut stored = Vec::new();
    for (sha256, size) in view.stored_files().map_err(store_error)? {
        let path = files::ensure_local(&state.farm, &state.files, &sha256, size)
            .await
            .map_err(ApiError::File)?;
        stored.push(StoredFile { sha256, size, path });
    }
    let name = format!(
        "attachment; filename=\"raft3d-{}-{}.backup\"",
        header.cluster_id.as_deref().unwrap_or("cluster"),
        header.index.unwrap_or(0)
    );
    let index = view.index;
    let chunks = backup::stream(view, header, stored);
    let mut response = super::streamed_body(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(disposition) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(super::with_index(response, index))
}
