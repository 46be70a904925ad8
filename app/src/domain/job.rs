//! A print job and its life cycle:
//!
//! ```text
//! Queued ──► Running ──► Done
//!    │          │
//!    └──────────┴──────► Canceled
//! ```
//!
//! `Done` and `Canceled` are final. A job holds a *reservation* of its weight on its
//! filament while it is `Queued` or `Running`; reaching `Done` turns the reservation into
//! a deduction from the spool's remaining weight, `Canceled` simply releases it.

use super::{Id, Text, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a job is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Canceled,
}

/// The input named no known job status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of Queued, Running, Done, Canceled")]
pub struct UnknownJobStatus;

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [Self::Queued, Self::Running, Self::Done, Self::Canceled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Done => "Done",
            Self::Canceled => "Canceled",
        }
    }

    /// The only legal moves; everything else (including staying put) is refused.
    pub fn can_become(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Queued, Running) | (Running, Done) | (Queued, Canceled) | (Running, Canceled)
        )
    }

    /// The statuses a job in this status may move to, in display order.
    pub fn next_statuses(self) -> impl Iterator<Item = JobStatus> {
        Self::ALL
            .into_iter()
            .filter(move |next| self.can_become(*next))
    }

    /// Whether a job in this status holds a reservation on its filament.
    pub fn reserves_filament(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Canceled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;

    /// Case-insensitive; the British `cancelled` is accepted for `Canceled`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("cancelled") {
            return Ok(Self::Canceled);
        }
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(raw))
            .ok_or(UnknownJobStatus)
    }
}

/// A stored print job.
///
/// Its times are stamped when the job is applied ([`super::time`]); whatever a proposal
/// carries in them is replaced. Absent when unknown: jobs stored before times existed
/// have none, and a job that never ran has no `started_at` (a cancelled queued job) .
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrintJob {
    pub id: Id,
    pub printer_id: Id,
    pub filament_id: Id,
    pub filepath: Text,
    pub print_weight_in_grams: u64,
    pub status: JobStatus,
    /// When the job was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When it became `Running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it became `Done` or `Canceled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl PrintJob {
    /// How long the job ran: from `started_at` to `finished_at`, or to `now` while it
    /// runs; `None` if it never started (or started before times were kept).
    pub fn run_millis(&self, now: Timestamp) -> Option<u64> {
        let started = self.started_at?;
        Some(started.millis_until(self.finished_at.unwrap_or(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::*;
    use super::*;

    #[test]
    fn exactly_four_transitions_are_legal() {
        let legal = [
            (Queued, Running),
            (Running, Done),
            (Queued, Canceled),
            (Running, Canceled),
        ];
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn final_statuses_have_no_next_status() {
        for status in JobStatus::ALL {
            assert_eq!(status.is_final(), status.next_statuses().next().is_none());
        }
        assert_eq!(
            Queued.next_statuses().collect::<Vec<_>>(),
            [Running, Canceled]
        );
        assert_eq!(
            Running.next_statuses().collect::<Vec<_>>(),
            [Done, Canceled]
        );
    }

    #[test]
    fn only_live_jobs_reserve_filament() {
        assert!(Queued.reserves_filament());
        assert!(Running.reserves_filament());
        assert!(!Done.reserves_filament());
        assert!(!Canceled.reserves_filament());
    }

    #[test]
    fn statuses_parse_case_insensitively_with_the_british_spelling() {
        for (raw, want) in [
            ("queued", Queued),
            ("QUEUED", Queued),
            ("Running", Running),
            ("done", Done),
            ("canceled", Canceled),
            ("cancelled", Canceled),
            ("CANCELLED", Canceled),
        ] {
            assert_eq!(raw.parse::<JobStatus>(), Ok(want), "{raw}");
        }
        for bad in ["", "paused", "finished", "cancel"] {
            assert_eq!(bad.parse::<JobStatus>(), Err(UnknownJobStatus), "{bad}");
        }
        assert_eq!(Canceled.to_string(), "Canceled");
    }
}
