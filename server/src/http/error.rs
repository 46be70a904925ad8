//! The ONE place where errors become HTTP responses (`application/problem+json`).

use super::farm::FarmError;
use crate::files::FileError;
use app::api::{Problem, RequestError, LEADER_ID_HEADER, LEADER_URL_HEADER, PROBLEM_TYPE_BASE};
use app::Rejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How soon a client should retry after a `503` (no leader yet, or a commit not confirmed
/// in time): about one heartbeat, after which a new leader has made itself known.
const RETRY_AFTER_MS: u64 = 100;

/// Everything a client request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Farm(#[from] FarmError),
    #[error("no {kind} with id '{id}'")]
    NotFound { kind: &'static str, id: String },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    BadIdempotencyKey,
    /// An `If-Match` / `If-None-Match` that is neither `*` nor a list of entity tags.
    #[error("{0} must be * or a list of entity tags (\"…\")")]
    BadCondition(&'static str),
    #[error("no such resource: {0}")]
    NoRoute(String),
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// A write sent by a web page of another site (CSRF): browsers name it in `Origin`.
    #[error("writes from pages of {0} are refused: only the cluster's own pages may write")]
    CrossSiteWrite(String),
    /// A body that does not say it is JSON (a form or `text/plain`, as a page of another
    /// site can send without asking).
    #[error("the body must be JSON (Content-Type: application/json), not {0}")]
    NotJson(String),
    /// A `Host` that is not one of the cluster's names (DNS rebinding).
    #[error("this node does not answer to host '{0}' (give --allowed-host to add a name)")]
    UnknownHost(String),
    #[error("not authenticated: {0}")]
    Unauthenticated(&'static str),
    #[error("a {role} token may not do this: it needs {needed}")]
    Forbidden {
        role: app::AccessRole,
        needed: app::AccessRole,
    },
    /// A retried token creation: the token exists, but its secret was in the first answer.
    #[error("token '{0}' was made by an earlier try of this request, whose answer held its secret (shown once): revoke it and make another")]
    SecretShownOnce(String),
    #[error("this node has no cluster secret (cluster.secret in its node directory, made by raft3d init) to seal the API key with; see docs/operations.md")]
    NoClusterSecret,
    /// An upload that does not say it is bytes or G-code text.
    #[error("the body must be the file's bytes (Content-Type: application/octet-stream), not {0}")]
    NotBytes(String),
    #[error(transparent)]
    File(crate::files::FileError),
    /// An upload that a majority of the voters did not store: not recorded.
    #[error("only {held} of the {voters} voters stored the file, not a majority: it was not recorded (try again)")]
    NotReplicated { held: usize, voters: usize },
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Request(e) if e.is_malformed() => StatusCode::BAD_REQUEST,
            Self::Request(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Rejected(r) => match r {
                Rejection::UnknownJob(_) | Rejection::UnknownToken(_) => StatusCode::NOT_FOUND,
                Rejection::Unassigned { .. }
                | Rejection::SpoolLoadedElsewhere { .. }
                | Rejection::NotWaiting { .. } => StatusCode::CONFLICT,
                Rejection::DuplicateId { .. } | Rejection::IllegalTransition { .. } => {
                    StatusCode::CONFLICT
                }
                Rejection::UnknownPrinter(_)
                | Rejection::UnknownFilament(_)
                | Rejection::UnknownFile(_)
                | Rejection::FileWithoutWeight(_)
                | Rejection::InsufficientFilament { .. }
                | Rejection::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
                Rejection::JobChanged { .. } => StatusCode::PRECONDITION_FAILED,
                Rejection::FileInUse { .. }
                | Rejection::NotConnected(_)
                | Rejection::Fenced { .. }
                | Rejection::DrivenByPrinter { .. }
                | Rejection::NotDispatchable { .. } => StatusCode::CONFLICT,
            },
            Self::Farm(FarmError::NotLeader {
                leader_url: Some(_),
                ..
            }) => StatusCode::TEMPORARY_REDIRECT,
            Self::Farm(FarmError::Membership(_) | FarmError::LearnerBehind { .. }) => {
                StatusCode::CONFLICT
            }
            Self::Farm(FarmError::IndexInFuture { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Farm(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound { .. } | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadIdempotencyKey | Self::BadCondition(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::CrossSiteWrite(_) | Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::UnknownHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::SecretShownOnce(_) | Self::NoClusterSecret => StatusCode::CONFLICT,
            Self::NotJson(_) | Self::NotBytes(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::File(FileError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::File(FileError::Empty | FileError::NotGcode) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::File(FileError::Body(_)) => StatusCode::BAD_REQUEST,
            Self::File(FileError::Unavailable(_)) | Self::NotReplicated { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::File(FileError::HashMismatch { .. } | FileError::Io(_)) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The problem `type` slug and title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Request(e) if e.is_malformed() => ("malformed-request", "Malformed request"),
            Self::Request(_) => ("validation", "Validation failed"),
            Self::Rejected(Rejection::UnknownJob(_) | Rejection::UnknownToken(_)) => {
                ("not-found", "Not found")
            }
            Self::Rejected(Rejection::DuplicateId { .. }) => ("conflict", "Already exists"),
            Self::Rejected(Rejection::IllegalTransition { .. }) => {
                ("invalid-transition", "Transition not allowed")
            }
            Self::Rejected(Rejection::IdempotencyKeyReused) => {
                ("idempotency-key-reused", "Idempotency-Key reused")
            }
            Self::Rejected(Rejection::JobChanged { .. }) => {
                ("precondition-failed", "Changed since read")
            }
            Self::Rejected(Rejection::FileInUse { .. }) => ("file-in-use", "File in use"),
            Self::Rejected(Rejection::DrivenByPrinter { .. }) => {
                ("driven-by-printer", "Driven by its printer")
            }
            Self::Rejected(Rejection::Unassigned { .. }) => ("unassigned", "No printer yet"),
            Self::Rejected(Rejection::SpoolLoadedElsewhere { .. }) => {
                ("spool-loaded-elsewhere", "Spool on another printer")
            }
            Self::Rejected(Rejection::NotWaiting { .. }) => {
                ("not-waiting", "Not waiting in the queue")
            }
            Self::Rejected(
                Rejection::NotConnected(_)
                | Rejection::Fenced { .. }
                | Rejection::NotDispatchable { .. },
            ) => ("conflict", "Conflict"),
            Self::Rejected(_) => ("validation", "Validation failed"),
            Self::Farm(FarmError::NotLeader {
                leader_url: Some(_),
                ..
            }) => ("not-leader", "Not the leader"),
            Self::Farm(FarmError::Membership(_)) => ("conflict", "Membership change refused"),
            Self::Farm(FarmError::LearnerBehind { .. }) => {
                ("learner-behind", "New node has not caught up")
            }
            Self::Farm(FarmError::IndexNotReached { .. }) => {
                ("index-not-reached", "Not caught up to min_index")
            }
            Self::Farm(FarmError::IndexInFuture { .. }) => ("index-in-future", "No such log index"),
            Self::Farm(_) => ("unavailable", "Cluster unavailable"),
            Self::NotFound { .. } | Self::NoRoute(_) => ("not-found", "Not found"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            Self::BadIdempotencyKey | Self::BadCondition(_) => {
                ("malformed-request", "Malformed request")
            }
            Self::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            Self::CrossSiteWrite(_) => ("cross-site-write", "Cross-site write refused"),
            Self::NotJson(_) | Self::NotBytes(_) => {
                ("unsupported-media-type", "Unsupported media type")
            }
            Self::File(FileError::TooLarge { .. }) => ("payload-too-large", "Payload too large"),
            Self::File(FileError::Empty | FileError::NotGcode) => {
                ("validation", "Validation failed")
            }
            Self::File(FileError::Body(_)) => ("malformed-request", "Malformed request"),
            Self::File(FileError::Unavailable(_)) | Self::NotReplicated { .. } => {
                ("unavailable", "Cluster unavailable")
            }
            Self::File(_) => ("internal", "Internal error"),
            Self::Unauthenticated(_) => ("unauthenticated", "Not authenticated"),
            Self::UnknownHost(_) => ("unknown-host", "Unknown host"),
            Self::Forbidden { .. } => ("forbidden", "Not allowed"),
            Self::SecretShownOnce(_) => ("secret-shown-once", "Token secret already shown"),
            Self::NoClusterSecret => ("no-cluster-secret", "No cluster secret"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::Request(e) => e.field().map(str::to_owned),
            Self::Rejected(r) => r.field().map(str::to_owned),
            Self::BadIdempotencyKey => Some("Idempotency-Key".to_owned()),
            Self::BadCondition(header) => Some((*header).to_owned()),
            Self::Farm(FarmError::IndexInFuture { .. }) => Some("min_index".to_owned()),
            Self::File(FileError::Empty | FileError::NotGcode) => Some("body".to_owned()),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    /// A `307` carries the leader's URL in `X-Raft3D-Leader-Url`; the `Location` (that URL
    /// plus the request's path and query) is added by `super::add_redirect_location`,
    /// which sees the request.
    fn into_response(self) -> Response {
        let status = self.status();
        let (slug, title) = self.kind();
        let (leader_id, leader_url) = match &self {
            Self::Farm(FarmError::NotLeader {
                leader_id,
                leader_url,
            }) => (Some(*leader_id), leader_url.clone()),
            _ => (None, None),
        };
        let problem = Problem {
            kind: format!("{PROBLEM_TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field: self.field(),
            leader_id,
            leader_url: leader_url.clone(),
            retry_after_ms: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(RETRY_AFTER_MS),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(id) = leader_id {
            headers.insert(LEADER_ID_HEADER, HeaderValue::from(id));
        }
        if let Some(url) = leader_url.as_deref() {
            if let Ok(value) = HeaderValue::from_str(url) {
                headers.insert(LEADER_URL_HEADER, value);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
