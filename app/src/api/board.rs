//! [`Board`]: the dashboard's view of the farm at one log index, bounded whatever the
//! farm holds (`GET /api/v1/board`, and what a node renders into a page).
//!
//! Every printer and spool (a farm has them by the hundred), and of the jobs the first
//! `limit` of each column in its order: queued in queue order (the next to print on top,
//! `domain::queue`), running oldest first, done and canceled newest first, plus how many
//! each column holds.

use super::{JobFilter, Order, Paging};
use crate::state::FilamentView;
use crate::{FarmState, JobStatus, PrintJob, Printer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Jobs per column a board holds unless asked for more.
pub const BOARD_LIMIT: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Board {
    /// The log index the board reflects.
    pub index: Option<u64>,
    pub printers: Vec<Printer>,
    pub filaments: Vec<FilamentView>,
    /// The first `limit` jobs of each column, column after column.
    pub jobs: Vec<PrintJob>,
    /// How many jobs each column holds (with the filter applied).
    pub job_counts: BTreeMap<JobStatus, usize>,
    /// Jobs per column asked for.
    pub limit: usize,
}

/// The order a job board column is shown in.
pub fn column_order(status: JobStatus) -> Order {
    if status.is_final() {
        Order::Desc
    } else {
        Order::Asc
    }
}

impl Board {
    /// The board of `farm` (at `index`), its job columns restricted by `filter`.
    pub fn of(farm: &FarmState, filter: &JobFilter, limit: usize, index: Option<u64>) -> Self {
        let mut jobs = Vec::new();
        let mut job_counts = BTreeMap::new();
        for status in JobStatus::ALL {
            let column = JobFilter {
                status: Some(status),
                ..filter.clone()
            };
            let paging = Paging {
                limit: Some(limit),
                after: None,
                order: column_order(status),
            };
            match status {
                JobStatus::Queued => jobs.extend(
                    farm.queue_from(&Paging::default())
                        .filter(|job| column.matches(job))
                        .take(limit)
                        .cloned(),
                ),
                _ => jobs.extend(farm.jobs_from(&column, &paging).take(limit).cloned()),
            }
            let count = if filter.is_empty() {
                farm.job_count(status)
            } else {
                farm.jobs_from(&column, &Paging::default()).count()
            };
            job_counts.insert(status, count);
        }
        Self {
            index,
            printers: farm.printers().cloned().collect(),
            filaments: farm.filaments().collect(),
            jobs,
            job_counts,
            limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Filament, FilamentType, Id, Text};
    use crate::{Command, Proposal};

    fn apply(farm: &mut FarmState, command: Command) {
        farm.apply(&Proposal {
            command,
            at_ms: 0,
            idempotency: None,
        });
    }

    #[test]
    fn a_board_holds_each_column_up_to_its_limit_in_column_order_and_counts_all() {
        let id = |s: &str| Id::parse(s).expect("id");
        let text = |s: &str| Text::parse(s).expect("text");
        let mut farm = FarmState::default();
        apply(
            &mut farm,
            Command::CreatePrinter(Printer::new(id("p1"), text("Prusa"), text("MK4"))),
        );
        apply(
            &mut farm,
            Command::CreateFilament(Filament {
                id: id("f1"),
                kind: FilamentType::Pla,
                color: text("red"),
                total_weight_in_grams: 1000,
                remaining_weight_in_grams: 1000,
            }),
        );
        for n in 0..10 {
            let job =
                PrintJob::queued(id(&format!("j{n}")), id("p1"), id("f1"), text("a.gcode"), 1);
            apply(&mut farm, Command::CreatePrintJob(job));
            if n < 6 {
                for status in [JobStatus::Running, JobStatus::Done] {
                    apply(
                        &mut farm,
                        Command::SetJobStatus {
                            job_id: id(&format!("j{n}")),
                            status,
                            if_match: None,
                        },
                    );
                }
            }
        }
        let board = Board::of(&farm, &JobFilter::default(), 3, Some(7));
        let ids: Vec<String> = board.jobs.iter().map(|j| j.id.to_string()).collect();
        assert_eq!(
            ids,
            ["j6", "j7", "j8", "j5", "j4", "j3"],
            "queued oldest first, done newest first"
        );
        assert_eq!(board.job_counts[&JobStatus::Queued], 4);
        apply(
            &mut farm,
            Command::PlaceInQueue {
                job_id: id("j9"),
                place: crate::domain::QueuePlace::First,
            },
        );
        let board = Board::of(&farm, &JobFilter::default(), 3, Some(8));
        let queued: Vec<String> = board.jobs[..3].iter().map(|j| j.id.to_string()).collect();
        assert_eq!(queued, ["j9", "j6", "j7"], "queued in queue order");
        assert_eq!(board.job_counts[&JobStatus::Done], 6);
        assert_eq!(board.job_counts[&JobStatus::Running], 0);
        let none = JobFilter {
            printer_id: Some(id("p9")),
            ..JobFilter::default()
        };
        let empty = Board::of(&farm, &none, 3, None);
        assert!(empty.jobs.is_empty());
        assert_eq!(empty.job_counts[&JobStatus::Done], 0);
        assert_eq!(
            empty.printers.len(),
            1,
            "printers and spools are not filtered"
        );
    }
}
