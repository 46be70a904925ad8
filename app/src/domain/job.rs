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

use super::{Id, Material, Text, Timestamp};
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
    /// The printer it prints on: the one the request named, or the one the farm queue
    /// sent it to. `null` while it waits for any printer that fits (`domain::queue`).
    #[serde(default)]
    pub printer_id: Option<Id>,
    /// The spool it prints with and reserves its weight on: the one the request named, or
    /// the printer's spool it was sent with. `null` while it waits for any spool of its
    /// `material`.
    #[serde(default)]
    pub filament_id: Option<Id>,
    /// What a job that named no spool needs: a spool of this material and colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<Material>,
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
    /// The stored G-code file it prints (`/api/v1/files/{id}`); absent for a job that
    /// only names a `filepath` (it is moved by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Id>,
    /// Set when the node driving its printer decided to send it there, before anything
    /// reached the printer (see `Command::Drive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<Dispatch>,
    /// Why a job ended `Canceled` when the printer ended it (failed, cancelled there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
    /// Its place in the farm queue, an opaque sort key: lower goes first (jobs queued
    /// before the queue could be reordered have none and go first, oldest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_rank: Option<i64>,
}

/// A job's dispatch to its printer: by the driver of which Raft term, and when. The file
/// on the printer is [`PrintJob::printer_file_name`], so the printer itself says which job
/// it prints after any failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dispatch {
    pub term: u64,
    pub at: Timestamp,
}

/// Prefix and suffix of the name a job's file gets on its printer.
const PRINTER_FILE_PREFIX: &str = "raft3d-";
const PRINTER_FILE_SUFFIX: &str = ".gcode";

impl PrintJob {
    /// A new job as a request makes it: queued, no times yet (stamped on apply), printing
    /// no stored file.
    pub fn queued(
        id: Id,
        printer_id: Id,
        filament_id: Id,
        filepath: Text,
        print_weight_in_grams: u64,
    ) -> Self {
        Self {
            printer_id: Some(printer_id),
            filament_id: Some(filament_id),
            ..Self::waiting(id, filepath, print_weight_in_grams)
        }
    }

    /// A new job that names neither printer nor spool yet (set them, or a material).
    pub fn waiting(id: Id, filepath: Text, print_weight_in_grams: u64) -> Self {
        Self {
            id,
            printer_id: None,
            filament_id: None,
            material: None,
            filepath,
            print_weight_in_grams,
            status: JobStatus::Queued,
            created_at: None,
            started_at: None,
            finished_at: None,
            file_id: None,
            dispatch: None,
            reason: None,
            queue_rank: None,
        }
    }

    /// The name of this job's file on its printer: `raft3d-<job id>.gcode`. Job ids are
    /// URL-safe (`Id`), so the name is a safe file name on every host.
    pub fn printer_file_name(&self) -> String {
        printer_file_name(&self.id)
    }

    /// How long the job ran: from `started_at` to `finished_at`, or to `now` while it
    /// runs; `None` if it never started (or started before times were kept).
    pub fn run_millis(&self, now: Timestamp) -> Option<u64> {
        let started = self.started_at?;
        Some(started.millis_until(self.finished_at.unwrap_or(now)))
    }
}

/// See [`PrintJob::printer_file_name`].
pub fn printer_file_name(job_id: &Id) -> String {
    format!("{PRINTER_FILE_PREFIX}{job_id}{PRINTER_FILE_SUFFIX}")
}

/// The job a printer's file name names, if it is one of ours (`raft3d-<id>.gcode`, in
/// any folder of the host).
pub fn job_of_printer_file(name: &str) -> Option<Id> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let id = base
        .strip_prefix(PRINTER_FILE_PREFIX)?
        .strip_suffix(PRINTER_FILE_SUFFIX)?;
    Id::parse(id).ok()
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
    fn a_printer_file_name_names_its_job_and_nothing_else_does() {
        let id = Id::parse("job-01.a~b").expect("valid id");
        let name = printer_file_name(&id);
        assert_eq!(name, "raft3d-job-01.a~b.gcode");
        assert_eq!(job_of_printer_file(&name), Some(id.clone()));
        assert_eq!(job_of_printer_file(&format!("farm/{name}")), Some(id));
        for other in [
            "benchy.gcode",
            "raft3d-.gcode",
            "raft3d-a b.gcode",
            "raft3d-x.gco",
            "xraft3d-x.gcode",
            "raft3d-../x.gcode",
        ] {
            assert_eq!(job_of_printer_file(other), None, "{other}");
        }
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
