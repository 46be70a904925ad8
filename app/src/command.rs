//! The only things ever written to the Raft log.
//!
//! A [`Proposal`] is fully decided before it is proposed: the HTTP handler has already
//! parsed and validated the request, generated any missing id and stamped the time, so
//! that applying it is a pure function of the log (no clock, no randomness on apply).

use crate::domain::{ApiToken, Filament, Id, JobStatus, PrintJob, Printer};
use serde::{Deserialize, Serialize};

/// One change to the farm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreatePrinter(Printer),
    CreateFilament(Filament),
    CreatePrintJob(PrintJob),
    SetJobStatus {
        job_id: Id,
        status: JobStatus,
        /// `If-Match`: the entity tags (`crate::api::etag`) the job must still have.
        /// Absent from entries written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<Vec<u64>>,
    },
    CreateToken(ApiToken),
    RevokeToken {
        token_id: Id,
    },
    /// Revokes the admin token `raft3d init` made, which the nodes know by its hash
    /// (`node.json`) only: the hash is recorded as a revoked token.
    RevokeBootstrapToken {
        secret_sha256: String,
    },
}

/// A client's claim that this request must be applied at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyClaim {
    /// The client's `Idempotency-Key` header.
    pub key: String,
    /// A digest of the request (method, path, canonical body) *as the client sent it*,
    /// before any server-side id was generated: a retry of the same request matches it,
    /// a different request under the same key does not.
    pub fingerprint: u64,
}

/// A log entry's payload: a command plus what the proposer decided about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub command: Command,
    /// Wall-clock milliseconds on the proposing leader; only used to expire idempotency
    /// records, through a clock that never goes backwards (see [`crate::FarmState`]).
    pub at_ms: u64,
    pub idempotency: Option<IdempotencyClaim>,
}
