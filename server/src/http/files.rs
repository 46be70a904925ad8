//! `/api/v1/files`: stored G-code files (their bytes live in `crate::files`).

use super::error::ApiError;
use super::{
    path_id, propose, query_params, read_one, read_page, stream_list, with_index, ApiResult,
    ApiState, ListRequest, ObjectRequest, QueryParams, WriteContext,
};
use crate::files::{self, FileError};
use crate::store::StoredList;
use app::api::{parse_path_id, RequestError};
use app::domain::{GcodeFile, Quantity, Text};
use app::Command;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Longest file name kept.
const MAX_NAME_LEN: usize = 255;

/// Media types an upload may say it is: raw bytes, or G-code as text.
const UPLOAD_TYPES: [&str; 3] = ["application/octet-stream", "text/x-gcode", "text/plain"];

/// What identifies an upload for `Idempotency-Key`: a retry sends the same bytes under
/// the same name (and id, if it gave one).
#[derive(Serialize)]
struct UploadFingerprint<'a> {
    name: &'a Text,
    sha256: &'a str,
    id: Option<&'a app::Id>,
}

/// `POST /api/v1/files?name=N[&id=ID]`, the raw bytes as the body.
///
/// A refused upload says `Connection: close`: it may be answered before its body was
/// read (too large, wrong type), and the connection is then closed with bytes unread. A
/// client that put it back in its pool would write its next request into a closed
/// socket (`EPIPE`, seen in the API tests).
pub async fn upload(
    state: State<ApiState>,
    write: WriteContext,
    query: QueryParams,
    request: Request,
) -> ApiResult {
    store_upload(state, write, query, request)
        .await
        .or_else(|refused| {
            let mut answer = refused.into_response();
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Ok(answer)
        })
}

async fn store_upload(
    State(state): State<ApiState>,
    write: WriteContext,
    query: QueryParams,
    request: Request,
) -> ApiResult {
    // Before a byte is stored: only a leader in touch with its quorum can answer.
    state.farm.ensure_writable_leader()?;
    let params = query_params(query)?;
    let name = upload_name(params.get("name"))?;
    let id = params.get("id").map(|raw| parse_path_id(raw)).transpose()?;
    check_upload_type(request.headers())?;
    let stream = request.into_body().into_data_stream();
    let received = state
        .files
        .receive(stream, state.max_upload_bytes, None)
        .await
        .map_err(ApiError::File)?;
    files::replicate(&state.farm, &state.files, &received.sha256, received.size)
        .await
        .map_err(|held| ApiError::NotReplicated {
            held,
            voters: state.farm.voters().len(),
        })?;
    let fingerprint = UploadFingerprint {
        name: &name,
        sha256: &received.sha256,
        id: id.as_ref(),
    };
    let file = GcodeFile {
        id: id.clone().unwrap_or_else(super::new_id),
        name: name.clone(),
        size: received.size,
        sha256: received.sha256.clone(),
        filament_grams: received
            .meta
            .filament_grams
            .and_then(|g| Quantity::new(g).ok()),
        filament_mm: received
            .meta
            .filament_mm
            .and_then(|mm| Quantity::new(mm).ok()),
        print_seconds: received.meta.print_seconds,
        slicer: received.meta.slicer.and_then(|s| Text::parse(&s).ok()),
        uploaded_at: None,
    };
    propose(&state, &write, fingerprint, |_| Command::AddFile(file)).await
}

fn upload_name(raw: Option<&String>) -> Result<Text, RequestError> {
    let raw = raw.ok_or(RequestError::Missing { field: "name" })?;
    let invalid = |problem| RequestError::Invalid {
        field: "name",
        problem,
    };
    let name = Text::parse(raw).map_err(|e| invalid(e.into()))?;
    if name.as_str().len() > MAX_NAME_LEN {
        return Err(invalid(app::domain::TextError::TooLong.into()));
    }
    Ok(name)
}

fn check_upload_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = kind.as_deref().map(|k| {
        k.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match essence {
        Some(e) if UPLOAD_TYPES.contains(&e.as_str()) => Ok(()),
        _ => {
            Err(ApiError::NotBytes(kind.unwrap_or_else(|| {
                "a body without a Content-Type".to_owned()
            })))
        }
    }
}

/// `GET /api/v1/files[?limit=N&after=ID&order=desc]`.
pub async fn list(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    if list.paging.limit.is_none() {
        return stream_list(&state, &list, StoredList::Files, |_| true).await;
    }
    let page =
        |farm: &app::FarmState, paging: &_, n| farm.files_from(paging).take(n).cloned().collect();
    read_page(&state, &list, &[], page, |f: &GcodeFile| &f.id).await
}

pub async fn get_one(State(state): State<ApiState>, request: ObjectRequest) -> ApiResult {
    read_one(&state, request, "file", |farm, id| farm.file(id).cloned()).await
}

/// `GET /api/v1/files/{id}/content`: the bytes, from this node's copy (fetched from a
/// peer first when this node has none yet).
pub async fn content(State(state): State<ApiState>, request: ObjectRequest) -> ApiResult {
    let (file, index) = state
        .farm
        .read_at(request.wish, |farm| farm.file(&request.id).cloned())
        .await?;
    let file = file.ok_or_else(|| ApiError::NotFound {
        kind: "file",
        id: request.id.to_string(),
    })?;
    let path = files::ensure_local(&state.farm, &state.files, &file.sha256, file.size)
        .await
        .map_err(ApiError::File)?;
    let opened = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::File(FileError::Io(e)))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
        headers.insert(header::ETAG, tag);
    }
    if let Ok(disposition) = HeaderValue::from_str(&content_disposition(file.name.as_str())) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(with_index(response, index))
}

/// `attachment; filename="..."` with only characters that need no quoting rules.
fn content_disposition(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                true => c,
                false => '_',
            },
        )
        .collect();
    format!("attachment; filename=\"{safe}\"")
}

/// `DELETE /api/v1/files/{id}`: refused while a live job prints it.
pub async fn delete(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let file_id = path_id(path)?;
    let known = state.farm.local_state().farm.file(&file_id).is_some();
    if !known {
        return Err(ApiError::NotFound {
            kind: "file",
            id: file_id.to_string(),
        });
    }
    propose(&state, &write, file_id, |file_id| Command::DeleteFile {
        file_id,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downloaded_name_cannot_break_out_of_its_header() {
        assert_eq!(
            content_disposition("benchy v2.gcode"),
            "attachment; filename=\"benchy v2.gcode\""
        );
        assert_eq!(
            content_disposition("a\"b;c\\d/é.gcode"),
            "attachment; filename=\"a_b_c_d__.gcode\""
        );
    }
}
