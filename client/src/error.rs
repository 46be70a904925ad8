//! What can go wrong with one operation, split the way a caller must act on it: a
//! definite answer from the cluster (`Api`: the write was not applied) versus no answer
//! (`GaveUp`: a write may or may not have been applied; retry it with the same key).

use app::api::Problem;

/// Why an operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster answered with an error status (4xx, or a 5xx other than `503`):
    /// nothing was applied.
    #[error("{url}: {status} {}", problem.detail)]
    Api {
        url: String,
        status: u16,
        problem: Problem,
    },
    /// No definite answer before the deadline: every node was unreachable, kept saying
    /// `503`, or kept redirecting. A write may or may not have been applied.
    #[error(
        "no answer from the cluster after {attempts} attempt(s) in {waited_ms} ms; last: {last}"
    )]
    GaveUp {
        attempts: u32,
        waited_ms: u128,
        last: String,
    },
    /// One exchange with one node failed before an answer (connection refused or reset,
    /// timeout). A write may or may not have been applied.
    #[error("{url}: no answer: {detail}")]
    Unreachable { url: String, detail: String },
    /// A success status with a body that is not what the API promises.
    #[error("{url}: unexpected answer: {detail}")]
    Decode { url: String, detail: String },
    /// The request itself cannot be built (bad URL, body not serialisable).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl ClientError {
    /// The HTTP status of a definite error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a write may have been applied although this error came back: retry it
    /// with the same `Idempotency-Key` to find out.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::GaveUp { .. } | Self::Unreachable { .. } | Self::Decode { .. }
        )
    }
}
