//! What the dashboard asks of the cluster and how an ask fails: the vocabulary shared by
//! the store (`store.rs`, which decides what to ask and what to do about a failure) and
//! the client (`client.rs`, browser only, which sends). Neither depends on the other.

use app::api::Problem;

/// What a write asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    CreatePrinter(app::api::NewPrinterBody),
    CreateFilament(app::api::NewFilamentBody),
    CreatePrintJob(app::api::NewPrintJobBody),
    /// Copies of one print, all or none (`POST /api/v1/queue`).
    QueueCopies(app::api::NewCopiesBody),
    /// Moves a waiting job in the farm queue.
    PlaceInQueue {
        job_id: String,
        body: app::api::QueuePlaceBody,
    },
    SetJobStatus {
        job_id: String,
        status: String,
    },
    /// Connects a printer to its host (replacing any connection it had).
    ConnectPrinter {
        printer_id: String,
        body: app::api::NewConnectionBody,
    },
    /// Its jobs move by hand again.
    DisconnectPrinter {
        printer_id: String,
    },
    /// Says which spool is on a printer.
    LoadSpool {
        printer_id: String,
        body: app::api::LoadSpoolBody,
    },
    /// Says the printer has no spool.
    UnloadSpool {
        printer_id: String,
    },
    /// Someone took the last print off: the printer may take its next job.
    ClearBed {
        printer_id: String,
    },
    /// Deletes a stored G-code file (refused while a live job prints it).
    DeleteFile {
        file_id: String,
    },
}

/// What the dashboard asks a node for: how many jobs per column, and which printer and
/// spool the job board is filtered to (empty: all; filtering is done by the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardQuery {
    pub limit: usize,
    pub printer_id: String,
    pub filament_id: String,
}

impl Default for BoardQuery {
    fn default() -> Self {
        Self {
            limit: app::api::BOARD_LIMIT,
            printer_id: String::new(),
            filament_id: String::new(),
        }
    }
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiFailure {
    /// The node answered with a problem (validation, conflict, no leader, …).
    #[error("{}", .0.detail)]
    Problem(Problem),
    /// A follower pointed the write at the leader.
    #[error("this node is not the leader")]
    NotLeader,
    /// No answer in time (node down, network cut, request refused by the browser).
    #[error("{url} did not answer ({reason})")]
    Unreachable { url: String, reason: String },
    #[error("unexpected answer from {url}: {reason}")]
    Unexpected { url: String, reason: String },
    /// Only in server-side rendering, where nothing is ever sent.
    #[error("the dashboard is not running in a browser")]
    NotInBrowser,
}

impl ApiFailure {
    /// Whether asking the cluster again (and resending) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Problem(problem) => problem.status == 503 || problem.status == 307,
            Self::NotLeader | Self::Unreachable { .. } => true,
            Self::Unexpected { .. } | Self::NotInBrowser => false,
        }
    }

    /// The node does not know the caller: no token, or an unknown or revoked one (`401`).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Self::Problem(problem) if problem.status == 401)
    }

    /// The request field this failure is about, if the server named one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Problem(problem) => problem.field.as_deref(),
            _ => None,
        }
    }
}
