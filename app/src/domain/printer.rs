//! A printer of the farm: who made it, which model it is, how Raft3D reaches its host
//! (OctoPrint or Moonraker), and what the host last reported.
//!
//! Only the public part of a connection lives here. Its API key is a secret: the server
//! seals it (`server/src/secret.rs`) and the state keeps the sealed bytes apart from the
//! printer ([`SealedSecret`]), so no answer, event or dashboard that shows a printer can
//! carry it.

use super::{Id, Text, Timestamp};
use serde::{Deserialize, Serialize};

/// A stored printer. Built from a request by [`crate::api::NewPrinter::into_printer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Printer {
    pub id: Id,
    pub company: Text,
    pub model: Text,
    /// How Raft3D drives this printer; absent: not connected (its jobs move by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
    /// What the printer's host last reported, as committed by the node driving it.
    /// Absent while not connected, or before the first report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PrinterStatus>,
    /// The spool on the printer, as staff say (`PUT /api/v1/printers/{id}/spool`): the
    /// farm queue sends it jobs of that spool, or of its material and colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_filament_id: Option<Id>,
    /// Set when a job the printer was sent ends, unless it clears its own bed: nothing
    /// more is sent until someone confirms the bed is clear
    /// (`POST /api/v1/printers/{id}/clear`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_clear: Option<BedWait>,
}

/// A printer's bed holds the print of `job_id` (since `since`): it waits to be cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BedWait {
    pub job_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

impl Printer {
    /// A printer with no connection, as a create request makes it.
    pub fn new(id: Id, company: Text, model: Text) -> Self {
        Self {
            id,
            company,
            model,
            connection: None,
            status: None,
            loaded_filament_id: None,
            awaiting_clear: None,
        }
    }

    /// Whether a node drives it (its jobs start and end on the printer's word).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }
}

/// The kind of host a printer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// OctoPrint's REST API (`X-Api-Key`).
    #[serde(rename = "octoprint")]
    OctoPrint,
    /// Moonraker (Klipper), its REST API (`X-Api-Key` when it asks for one).
    Moonraker,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OctoPrint => "octoprint",
            Self::Moonraker => "moonraker",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::OctoPrint, Self::Moonraker]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

/// The public part of a printer's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connection {
    pub kind: ConnectionKind,
    /// The host's base URL, `http(s)://host[:port][/path]`, without a trailing `/`.
    pub url: String,
    /// Whether an API key is stored (the key itself is never shown).
    pub api_key_set: bool,
    /// Whether an idle printer is given the first queued job it fits by itself (default
    /// on).
    pub auto_dispatch: bool,
    /// Whether the printer clears its own bed (a belt printer, an ejecting one): it then
    /// takes its next job as soon as one ends, without waiting for a person (default off).
    #[serde(default)]
    pub self_clearing: bool,
}

/// An API key sealed with the cluster's secret (ChaCha20-Poly1305, the printer's id as
/// associated data): what the log, the snapshots and the state files hold instead of the
/// key. Hex, so it travels in JSON unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub nonce: String,
    pub ciphertext: String,
}

/// What a printer's host says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrinterState {
    /// The host does not answer, or its printer is not connected to it.
    Offline,
    /// Ready for a job.
    Idle,
    Printing,
    Paused,
    /// The host answers but refuses us (a wrong API key) or reports a printer error.
    Error,
}

impl PrinterState {
    pub const ALL: [PrinterState; 5] = [
        Self::Offline,
        Self::Idle,
        Self::Printing,
        Self::Paused,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Idle => "idle",
            Self::Printing => "printing",
            Self::Paused => "paused",
            Self::Error => "error",
        }
    }
}

/// A printer's committed status: what matters enough to go through the log (progress and
/// temperatures do not: they change every second).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrinterStatus {
    pub state: PrinterState,
    /// The host's own words ("Operational", "Offline after error", "HTTP 403: Invalid
    /// API key"), when it gave any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    /// The Raft3D job the printer is printing, when it prints one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Id>,
    /// When the printer entered `state` (stamped on apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

impl PrinterStatus {
    /// Whether `other` says the same (everything but the time).
    pub fn same_report(&self, other: &PrinterStatus) -> bool {
        self.state == other.state && self.message == other.message && self.job_id == other.job_id
    }
}

/// What a printer's host says right now, beyond its committed status: progress and
/// temperatures. Not replicated through the log (it changes every second): the leader's
/// driver observes it and every node relays the leader's latest
/// (`GET /api/v1/telemetry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrinterLive {
    pub printer_id: Id,
    pub state: PrinterState,
    /// The file the host has selected or prints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The Raft3D job it prints, if it prints one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Id>,
    /// Percent done, 0-100, while printing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// The host's estimate of the time left, while printing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nozzle: Option<Temperature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bed: Option<Temperature>,
    /// When the leader's driver asked the host (Unix milliseconds).
    pub observed_ms: u64,
}

/// A heater's temperature and its target, in °C.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Temperature {
    pub actual: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
}
