//! What the dashboard shows, computed from the farm data it fetched: pure functions over
//! [`FarmData`], unit-tested here without a browser. Components only lay these out.
//! [`printing`] does the same for printers driven through their hosts and stored G-code,
//! [`queue`] for the farm queue (its order and moves, spools on printers, the job form).

pub mod printing;
pub mod queue;

use app::api::{column_order, Board, ClusterView, Order};
use app::domain::time::human_duration;
use app::state::FilamentView;
use app::{FilamentType, JobStatus, PrintJob, Printer, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the dashboard reads from one node: a [`Board`] (every printer and spool,
/// the first jobs of each column and how many each holds) and the node's cluster view.
/// The first copy is rendered into the page by the node; the bundle reads the same copy
/// back so that hydration sees equal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmData {
    pub printers: Vec<Printer>,
    pub filaments: Vec<FilamentView>,
    /// The first jobs of each job board column (not every job of the farm).
    pub jobs: Vec<PrintJob>,
    /// How many jobs each status holds in the farm (with the board's filter).
    #[serde(default)]
    pub job_counts: BTreeMap<JobStatus, usize>,
    /// The log index the data reflects.
    #[serde(default)]
    pub index: Option<u64>,
    /// The answering node's view of the cluster.
    pub cluster: Option<ClusterView>,
    /// The node needs a token to show the farm, and this page has none (or it was
    /// refused): the page asks for one instead.
    #[serde(default)]
    pub login_required: bool,
}

impl FarmData {
    /// What `board` and `cluster` show.
    pub fn from_board(board: Board, cluster: Option<ClusterView>) -> Self {
        Self {
            printers: board.printers,
            filaments: board.filaments,
            jobs: board.jobs,
            job_counts: board.job_counts,
            index: board.index,
            cluster,
            login_required: false,
        }
    }

    /// How many jobs have `status`.
    pub fn job_count(&self, status: JobStatus) -> usize {
        self.job_counts.get(&status).copied().unwrap_or(0)
    }

    /// What a page shows a caller who may not read the farm: nothing, and a login form.
    pub fn login_required() -> Self {
        Self {
            login_required: true,
            ..Self::default()
        }
    }
}

/// A spool is "low" when less than this share of its total weight is still available.
pub const LOW_SPOOL_SHARE: f64 = 0.15;

/// A printer is busy while one of its jobs is running.
pub fn is_busy(jobs: &[PrintJob], printer: &Printer) -> bool {
    jobs.iter()
        .any(|job| job.printer_id.as_ref() == Some(&printer.id) && job.status == JobStatus::Running)
}

/// `(busy, idle)` printers.
pub fn printer_usage(data: &FarmData) -> (usize, usize) {
    let busy = data
        .printers
        .iter()
        .filter(|printer| is_busy(&data.jobs, printer))
        .count();
    (busy, data.printers.len() - busy)
}

/// How many jobs are in each status, in [`JobStatus::ALL`] order.
pub fn jobs_per_status(data: &FarmData) -> [(JobStatus, usize); 4] {
    JobStatus::ALL.map(|status| (status, data.job_count(status)))
}

/// Spools whose available weight is below [`LOW_SPOOL_SHARE`] of their total, emptiest first.
pub fn low_spools(filaments: &[FilamentView]) -> Vec<&FilamentView> {
    let mut low: Vec<&FilamentView> = filaments.iter().filter(|f| is_low(f)).collect();
    low.sort_by_key(|f| f.available_weight_in_grams);
    low
}

pub fn is_low(spool: &FilamentView) -> bool {
    (spool.available_weight_in_grams as f64)
        < LOW_SPOOL_SHARE * spool.filament.total_weight_in_grams as f64
}

/// Widths (percent of the spool's total) of the three bar segments: filament already
/// used, reserved by live jobs, and available. They add up to 100 for a non-empty spool.
pub fn spool_bar(spool: &FilamentView) -> (f64, f64, f64) {
    let total = spool.filament.total_weight_in_grams;
    if total == 0 {
        return (0.0, 0.0, 0.0);
    }
    let share = |grams: u64| 100.0 * grams as f64 / total as f64;
    let used = total - spool.filament.remaining_weight_in_grams;
    (
        share(used),
        share(spool.reserved_weight_in_grams),
        share(spool.available_weight_in_grams),
    )
}

/// The spool filter of the Filament page: by type (none = all) and colour substring.
pub fn filter_spools<'a>(
    filaments: &'a [FilamentView],
    kind: Option<FilamentType>,
    color: &str,
) -> Vec<&'a FilamentView> {
    let color = color.trim().to_lowercase();
    filaments
        .iter()
        .filter(|f| kind.is_none_or(|k| f.filament.kind == k))
        .filter(|f| color.is_empty() || f.filament.color.as_str().to_lowercase().contains(&color))
        .collect()
}

/// The job board's filter: by printer, by spool (empty = any) and free text over the
/// job's id, file path, printer and spool ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub printer_id: String,
    pub filament_id: String,
    pub text: String,
}

impl JobFilter {
    pub fn matches(&self, job: &PrintJob) -> bool {
        let text = self.text.trim().to_lowercase();
        let printer_id = job.printer_id.as_ref().map_or("", |p| p.as_str());
        let filament_id = job.filament_id.as_ref().map_or("", |f| f.as_str());
        (self.printer_id.is_empty() || printer_id == self.printer_id)
            && (self.filament_id.is_empty() || filament_id == self.filament_id)
            && (text.is_empty()
                || [
                    job.id.as_str(),
                    job.filepath.as_str(),
                    printer_id,
                    filament_id,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&text)))
    }
}

/// Jobs of one status that pass the filter, in the column's order: queued in queue
/// order (the next to print on top, [`queue::sort_in_queue_order`], as the node sends
/// them), the rest as [`column_order`] says (running oldest first, done and canceled
/// newest first; server ids are UUIDv7, so their order is creation order).
pub fn board_column<'a>(
    jobs: &'a [PrintJob],
    status: JobStatus,
    filter: &JobFilter,
) -> Vec<&'a PrintJob> {
    let mut column: Vec<&PrintJob> = jobs
        .iter()
        .filter(|job| job.status == status && filter.matches(job))
        .collect();
    match (status, column_order(status)) {
        (JobStatus::Queued, _) => queue::sort_in_queue_order(&mut column),
        (_, Order::Asc) => column.sort_by(|a, b| a.id.cmp(&b.id)),
        (_, Order::Desc) => column.sort_by(|a, b| b.id.cmp(&a.id)),
    }
    column
}

/// A printer's running and queued jobs: running first, then queued in queue order.
pub fn printer_jobs<'a>(jobs: &'a [PrintJob], printer: &Printer) -> Vec<&'a PrintJob> {
    let mut running: Vec<&PrintJob> = Vec::new();
    let mut queued: Vec<&PrintJob> = Vec::new();
    for job in jobs
        .iter()
        .filter(|job| job.printer_id.as_ref() == Some(&printer.id))
    {
        match job.status {
            JobStatus::Running => running.push(job),
            JobStatus::Queued => queued.push(job),
            JobStatus::Done | JobStatus::Canceled => {}
        }
    }
    running.sort_by(|a, b| a.id.cmp(&b.id));
    queue::sort_in_queue_order(&mut queued);
    running.extend(queued);
    running
}

/// The moves a job card offers: the legal ones, except that a job its printer's driver
/// has been sent (`dispatch`) starts and ends on the printer's word, so only Cancel is
/// left to a person (the API refuses the rest with `409 driven-by-printer`), and a job
/// still waiting for the farm queue to give it a printer or a spool has nothing to start
/// on (`409`, "waits for a printer that fits it").
pub fn offered_moves(job: &PrintJob) -> Vec<JobStatus> {
    let assigned = job.printer_id.is_some() && job.filament_id.is_some();
    job.status
        .next_statuses()
        .filter(|next| job.dispatch.is_none() || *next == JobStatus::Canceled)
        .filter(|next| assigned || *next != JobStatus::Running)
        .collect()
}

/// "sent to printer at 10:02 UTC" for a job its printer's driver has taken on.
pub fn dispatch_line(job: &PrintJob) -> Option<String> {
    job.dispatch
        .map(|d| format!("sent to printer at {}", time_of_day(d.at)))
}

/// A whole number typed into a form field, as JSON: the number, or the text as typed,
/// so that the server's own parser names the field it refuses.
pub fn number_json(raw: &str) -> serde_json::Value {
    let raw = raw.trim();
    raw.parse::<u64>()
        .map(serde_json::Value::from)
        .unwrap_or_else(|_| serde_json::Value::from(raw))
}

/// "1 280 g" style weights: grouping makes four-digit grams readable at a glance.
pub fn grams(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out.push_str(" g");
    out
}

/// The time of day of a moment, `HH:MM UTC` (the page shows the farm's clock, which is
/// UTC, the same on the node's render and in every browser).
fn time_of_day(at: Timestamp) -> String {
    let text = at.to_string();
    format!("{} UTC", text.get(11..16).unwrap_or_default())
}

/// A job card's timing line: how long a job ran, or has been running until `now` (the
/// browser's clock; `None` on the node's render, which then shows when it started).
pub fn job_timing(job: &PrintJob, now: Option<Timestamp>) -> Option<String> {
    match (job.status, job.started_at, job.finished_at) {
        (JobStatus::Running, Some(started), _) => Some(match now {
            Some(now) => format!(
                "running for {} (since {})",
                human_duration(started.millis_until(now)),
                time_of_day(started)
            ),
            None => format!("running since {}", time_of_day(started)),
        }),
        (JobStatus::Done | JobStatus::Canceled, Some(started), Some(finished)) => Some(format!(
            "ran {} (ended {})",
            human_duration(started.millis_until(finished)),
            time_of_day(finished)
        )),
        (JobStatus::Canceled, None, Some(finished)) => Some(format!(
            "canceled at {} before it ran",
            time_of_day(finished)
        )),
        (JobStatus::Queued, _, _) => job
            .created_at
            .map(|t| format!("queued at {}", time_of_day(t))),
        _ => None,
    }
}

/// The positions in a change stream's bytes: the dashboard does not patch its copy
/// from the events, it reads the (bounded) board again at the index they reach, so all
/// it needs of them is the last `id:` (`N` or `N.k`) of each complete event.
#[derive(Debug, Default)]
pub struct EventIds {
    buffer: String,
}

impl EventIds {
    /// Takes more bytes of the stream; returns the last complete event's id and its log
    /// index, if any event completed.
    pub fn push(&mut self, bytes: &[u8]) -> Option<(String, u64)> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        let end = self.buffer.rfind("\n\n")?;
        let complete: String = self.buffer.drain(..end + 2).collect();
        let id = complete
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("id: "))?
            .to_owned();
        let index = id.split('.').next()?.parse().ok()?;
        Some((id, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::{Filament, Id};

    fn id(s: &str) -> Id {
        Id::parse(s).expect("valid id")
    }

    fn printer(name: &str) -> Printer {
        Printer::new(
            id(name),
            app::domain::Text::parse("Prusa").expect("text"),
            app::domain::Text::parse("MK4").expect("text"),
        )
    }

    fn job(name: &str, printer: &str, spool: &str, status: JobStatus) -> PrintJob {
        PrintJob {
            status,
            ..PrintJob::queued(
                id(name),
                id(printer),
                id(spool),
                app::domain::Text::parse(&format!("{name}.gcode")).expect("text"),
                10,
            )
        }
    }

    fn spool(
        name: &str,
        kind: FilamentType,
        color: &str,
        total: u64,
        remaining: u64,
        reserved: u64,
    ) -> FilamentView {
        FilamentView {
            filament: Filament {
                id: id(name),
                kind,
                color: app::domain::Text::parse(color).expect("text"),
                total_weight_in_grams: total,
                remaining_weight_in_grams: remaining,
            },
            reserved_weight_in_grams: reserved,
            available_weight_in_grams: remaining - reserved,
        }
    }

    #[test]
    fn a_printer_is_busy_only_while_one_of_its_jobs_runs() {
        let data = FarmData {
            printers: vec![printer("p1"), printer("p2"), printer("p3")],
            jobs: vec![
                job("j1", "p1", "s", JobStatus::Running),
                job("j2", "p2", "s", JobStatus::Queued),
                job("j3", "p3", "s", JobStatus::Done),
            ],
            ..FarmData::default()
        };
        assert_eq!(printer_usage(&data), (1, 2));
    }

    #[test]
    fn jobs_are_counted_per_status_in_board_order() {
        let data = FarmData {
            job_counts: [(JobStatus::Queued, 2), (JobStatus::Canceled, 1)].into(),
            ..FarmData::default()
        };
        assert_eq!(
            jobs_per_status(&data),
            [
                (JobStatus::Queued, 2),
                (JobStatus::Running, 0),
                (JobStatus::Done, 0),
                (JobStatus::Canceled, 1)
            ]
        );
    }

    #[test]
    fn low_spools_are_those_with_little_available_filament_emptiest_first() {
        let spools = vec![
            spool("full", FilamentType::Pla, "red", 1000, 1000, 0),
            spool("reserved-away", FilamentType::Pla, "red", 1000, 1000, 900),
            spool("nearly-empty", FilamentType::Petg, "blue", 1000, 50, 0),
            spool("at-threshold", FilamentType::Abs, "black", 1000, 150, 0),
        ];
        let low: Vec<&str> = low_spools(&spools)
            .iter()
            .map(|s| s.filament.id.as_str())
            .collect();
        assert_eq!(low, ["nearly-empty", "reserved-away"]);
    }

    #[test]
    fn the_spool_bar_splits_the_total_into_used_reserved_and_available() {
        let s = spool("s", FilamentType::Pla, "red", 1000, 800, 300);
        assert_eq!(spool_bar(&s), (20.0, 30.0, 50.0));
        let empty = spool("e", FilamentType::Pla, "red", 0, 0, 0);
        assert_eq!(spool_bar(&empty), (0.0, 0.0, 0.0));
    }

    #[test]
    fn spools_filter_by_type_and_case_insensitive_colour() {
        let spools = vec![
            spool("a", FilamentType::Pla, "Signal Red", 1000, 1000, 0),
            spool("b", FilamentType::Petg, "red", 1000, 1000, 0),
            spool("c", FilamentType::Pla, "blue", 1000, 1000, 0),
        ];
        let ids = |v: Vec<&FilamentView>| {
            v.iter()
                .map(|s| s.filament.id.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(filter_spools(&spools, None, "")), ["a", "b", "c"]);
        assert_eq!(
            ids(filter_spools(&spools, Some(FilamentType::Pla), "")),
            ["a", "c"]
        );
        assert_eq!(ids(filter_spools(&spools, None, " RED ")), ["a", "b"]);
        assert_eq!(
            ids(filter_spools(&spools, Some(FilamentType::Pla), "red")),
            ["a"]
        );
    }

    #[test]
    fn the_board_filters_by_printer_spool_and_text_in_column_order() {
        let jobs = vec![
            job("0001", "p1", "s1", JobStatus::Queued),
            job("0002", "p2", "s1", JobStatus::Queued),
            job("0003", "p1", "s2", JobStatus::Queued),
            job("0004", "p1", "s1", JobStatus::Running),
        ];
        let ids = |filter: JobFilter| {
            board_column(&jobs, JobStatus::Queued, &filter)
                .iter()
                .map(|j| j.id.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(JobFilter::default()),
            ["0001", "0002", "0003"],
            "queued: oldest first"
        );
        let on_p1 = JobFilter {
            printer_id: "p1".into(),
            ..JobFilter::default()
        };
        assert_eq!(ids(on_p1), ["0001", "0003"]);
        let p1_s1 = JobFilter {
            printer_id: "p1".into(),
            filament_id: "s1".into(),
            ..JobFilter::default()
        };
        assert_eq!(ids(p1_s1), ["0001"]);
        let text = JobFilter {
            text: "0002.GCODE".into(),
            ..JobFilter::default()
        };
        assert_eq!(ids(text), ["0002"]);
    }

    #[test]
    fn a_printers_live_jobs_list_running_before_queued_and_skip_finished_ones() {
        let jobs = vec![
            job("a", "p1", "s", JobStatus::Queued),
            job("b", "p1", "s", JobStatus::Running),
            job("c", "p1", "s", JobStatus::Done),
            job("d", "p2", "s", JobStatus::Running),
        ];
        let own: Vec<&str> = printer_jobs(&jobs, &printer("p1"))
            .iter()
            .map(|j| j.id.as_str())
            .collect();
        assert_eq!(own, ["b", "a"]);
    }

    #[test]
    fn a_job_sent_to_its_printer_can_only_be_canceled_by_hand() {
        let mut queued = job("j", "p1", "s", JobStatus::Queued);
        assert_eq!(
            offered_moves(&queued),
            [JobStatus::Running, JobStatus::Canceled]
        );
        assert_eq!(dispatch_line(&queued), None);
        queued.dispatch = Some(app::domain::Dispatch {
            term: 3,
            at: Timestamp::parse_rfc3339("2026-12-06T10:02:09Z").expect("time"),
        });
        assert_eq!(offered_moves(&queued), [JobStatus::Canceled]);
        assert_eq!(
            dispatch_line(&queued).as_deref(),
            Some("sent to printer at 10:02 UTC")
        );
        let mut running = queued.clone();
        running.status = JobStatus::Running;
        assert_eq!(offered_moves(&running), [JobStatus::Canceled]);
        running.status = JobStatus::Done;
        assert_eq!(offered_moves(&running), []);
    }

    #[test]
    fn a_job_waiting_for_any_printer_or_spool_cannot_be_started_by_hand() {
        let mut any_printer = job("j", "p1", "s", JobStatus::Queued);
        any_printer.printer_id = None;
        assert_eq!(offered_moves(&any_printer), [JobStatus::Canceled]);
        let mut any_spool = job("j", "p1", "s", JobStatus::Queued);
        any_spool.filament_id = None;
        assert_eq!(offered_moves(&any_spool), [JobStatus::Canceled]);
    }

    #[test]
    fn grams_are_grouped_by_thousands() {
        assert_eq!(grams(0), "0 g");
        assert_eq!(grams(999), "999 g");
        assert_eq!(grams(1000), "1\u{202f}000 g");
        assert_eq!(grams(1234567), "1\u{202f}234\u{202f}567 g");
    }

    #[test]
    fn a_job_card_says_how_long_the_job_ran_or_has_been_running() {
        let t = |hms: &str| Timestamp::parse_rfc3339(&format!("2026-12-06T{hms}Z"));
        let mut running = job("j", "p1", "f1", JobStatus::Running);
        running.started_at = t("10:00:00");
        assert_eq!(
            job_timing(&running, t("11:05:30")).as_deref(),
            Some("running for 1 h 05 min (since 10:00 UTC)")
        );
        assert_eq!(
            job_timing(&running, None).as_deref(),
            Some("running since 10:00 UTC"),
            "the node's render does not depend on the time it renders"
        );
        let mut done = running.clone();
        done.status = JobStatus::Done;
        done.finished_at = t("10:45:00");
        assert_eq!(
            job_timing(&done, t("23:00:00")).as_deref(),
            Some("ran 45 min (ended 10:45 UTC)")
        );
        let mut canceled = job("j", "p1", "f1", JobStatus::Canceled);
        canceled.finished_at = t("09:00:00");
        assert_eq!(
            job_timing(&canceled, None).as_deref(),
            Some("canceled at 09:00 UTC before it ran")
        );
        let mut queued = job("j", "p1", "f1", JobStatus::Queued);
        assert_eq!(
            job_timing(&queued, None),
            None,
            "a job from before times were kept"
        );
        queued.created_at = t("08:15:00");
        assert_eq!(
            job_timing(&queued, None).as_deref(),
            Some("queued at 08:15 UTC")
        );
    }

    #[test]
    fn the_stream_reader_finds_the_last_complete_events_position() {
        let mut ids = EventIds::default();
        assert_eq!(
            ids.push(b": connected\n\n"),
            None,
            "a comment moves nothing"
        );
        assert_eq!(
            ids.push(b"id: 7.1\nevent: job.created\ndata: {}\n\nid: 7\nev"),
            Some(("7.1".into(), 7))
        );
        assert_eq!(
            ids.push(b"ent: filament.updated\ndata: {}\n"),
            None,
            "not complete yet"
        );
        assert_eq!(
            ids.push(b"\nid: 9\nevent: reset\ndata: {}\n\n"),
            Some(("9".into(), 9))
        );
        assert_eq!(ids.push(b": heartbeat\n\n"), None);
    }
}
