//! The host-neutral vocabulary of the drivers: what a printer's host reports
//! ([`HostReport`]), a file's print history on it ([`PrintRecord`]), and how talking to it
//! fails ([`HostError`]).
//!
//! Each host adapter (`octoprint`, `moonraker`, over the HTTP plumbing of `http_host`)
//! speaks its own API and answers in these terms only. Nothing here talks to Raft or to the farm's state: deciding what a
//! report means for a job, and committing it, is the caller's business.

use app::domain::PrinterState;

/// What a printer's host says at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HostReport {
    pub state: PrinterState,
    /// The host's own words for its state ("Operational", "Offline after error", ...), and
    /// its error text if any.
    pub message: Option<String>,
    /// Base name of the file selected/printing (e.g. "raft3d-j1.gcode"), if any.
    pub file: Option<String>,
    /// 0.0..=100.0 while printing.
    pub progress: Option<f64>,
    pub seconds_left: Option<u64>,
    pub nozzle: Option<Temperature>,
    pub bed: Option<Temperature>,
}

/// A heater's temperature in °C, and the one it is set to (`None`: the host did not say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature {
    pub actual: f64,
    pub target: Option<f64>,
}

/// A file's print history on the host (OctoPrint `prints`): how often it was printed to
/// the end and how often it failed or was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrintRecord {
    pub success: u64,
    pub failure: u64,
    /// How the last print of the file ended (`None`: never printed, or the host did not say).
    pub last_success: Option<bool>,
}

/// Why a host did not do what we asked. No variant ever carries the API key.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No answer (connection refused/reset, timeout, a broken status line while it starts).
    #[error("no answer from {url}: {why}")]
    Unreachable { url: String, why: String },
    /// The host refused our key (OctoPrint: 403 on GET, 400 "CSRF validation failed" on
    /// POST/DELETE; 401 too).
    #[error("the host refused the API key (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// The host refused the command in its current state (OctoPrint 409), with its words.
    #[error("the host refused: {0}")]
    Conflict(String),
    /// Anything else unexpected (other status, unparsable body).
    #[error("unexpected answer from the host: {0}")]
    Protocol(String),
}

impl HostError {
    /// The host answered but refused our key: retrying will not help until the key changes.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// No answer at all: the host may be down, or not up yet.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}
