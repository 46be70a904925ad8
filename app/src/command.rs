//! The only things ever written to the Raft log.
//!
//! A [`Proposal`] is fully decided before it is proposed: the HTTP handler has already
//! parsed and validated the request, generated any missing id and stamped the time, so
//! that applying it is a pure function of the log (no clock, no randomness on apply).

use crate::domain::{
    ApiToken, Connection, Filament, GcodeFile, Id, JobStatus, PrintJob, Printer, PrinterStatus,
    QueuePlace, SealedSecret, Text,
};
use serde::{Deserialize, Serialize};

/// One change to the farm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreatePrinter(Printer),
    CreateFilament(Filament),
    CreatePrintJob(PrintJob),
    /// Copies of one print, queued together: all or none (their weights are reserved
    /// together).
    CreatePrintJobs(Vec<PrintJob>),
    /// Moves a waiting job to another place in the farm queue.
    PlaceInQueue {
        job_id: Id,
        place: QueuePlace,
    },
    /// Says which spool is on a printer (`None`: none).
    LoadSpool {
        printer_id: Id,
        filament_id: Option<Id>,
    },
    /// Someone confirmed the printer's bed is clear: it may take its next job.
    ClearBed {
        printer_id: Id,
    },
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
    /// Connects a printer to its host (replacing any connection it had).
    ConnectPrinter {
        printer_id: Id,
        connection: Connection,
        /// The host's API key, sealed; `None` when the host needs none.
        api_key: Option<SealedSecret>,
    },
    DisconnectPrinter {
        printer_id: Id,
    },
    /// Records a G-code file that a majority of the voters already hold, fsynced and
    /// checked against `sha256` (`server/src/files`).
    AddFile(GcodeFile),
    DeleteFile {
        file_id: Id,
    },
    /// What the node driving the printers (the leader of `term`) decided or observed.
    /// Fenced: refused once a driver of a later term has written anything, so the
    /// reports of a deposed leader that reach the log late change nothing.
    Drive {
        term: u64,
        report: DriverReport,
    },
}

/// A driver's report (see [`Command::Drive`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverReport {
    /// The printer's host reports this (committed only when it changes).
    Status {
        printer_id: Id,
        status: PrinterStatus,
    },
    /// The driver is about to send this queued job to its printer: committed before
    /// anything reaches the printer, so the next driver knows to look for it there.
    Dispatching {
        job_id: Id,
        /// The printer it goes to; absent from entries written before the farm queue
        /// (the job's own printer then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        printer_id: Option<Id>,
    },
    /// The printer prints the job's file.
    Started { job_id: Id },
    /// The printer finished the job's file, or it failed or was cancelled there.
    Finished { job_id: Id, outcome: PrintOutcome },
}

/// How a print ended, as its printer tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrintOutcome {
    Done,
    /// Failed, or cancelled at the printer: the job ends `Canceled` with this reason.
    Failed {
        reason: Text,
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
