//! The farm queue as staff work it: the Queued column in queue order, the moves a
//! waiting job's card offers (Move up, Move down, To top) and where each one puts the
//! job, what a card calls a printer or spool the queue is still to choose, a printer's
//! loaded spool and its wait for a cleared bed, and the job form's request (one job or
//! copies; any printer, any spool of a material). Pure functions, unit-tested here;
//! components only lay them out and send.

use super::{grams, number_json};
use app::api::QueuePlaceBody;
use app::domain::queue::queue_key;
use app::domain::Material;
use app::state::FilamentView;
use app::{FilamentType, Id, JobStatus, PrintJob, Printer};
use serde_json::{json, Value};

/// Whether `job` waits in the queue: queued and not sent to a printer yet. Only such a
/// job can be moved (`PUT /api/v1/queue/{id}` answers `409` for the others).
pub fn is_waiting(job: &PrintJob) -> bool {
    job.status == JobStatus::Queued && job.dispatch.is_none()
}

/// Sorts queued jobs the way the farm queue orders them (`app::domain::queue`): by rank
/// (none: first), then queue time, then id. Printers take the first waiting job they fit.
pub fn sort_in_queue_order(jobs: &mut [&PrintJob]) {
    jobs.sort_by_cached_key(|job| queue_key(job));
}

/// A button on a waiting job's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    /// Just before the nearest waiting job above it.
    Up,
    /// Just after the nearest waiting job below it.
    Down,
    /// First in the queue.
    Top,
}

impl QueueMove {
    pub const ALL: [QueueMove; 3] = [Self::Up, Self::Down, Self::Top];

    pub fn label(self) -> &'static str {
        match self {
            Self::Up => "Move up",
            Self::Down => "Move down",
            Self::Top => "To top",
        }
    }

    /// Whether the move looks at the jobs before this one (else: after it).
    pub fn looks_back(self) -> bool {
        !matches!(self, Self::Down)
    }

    /// What the card says when there is nowhere to go.
    pub fn nowhere(self) -> &'static str {
        match self {
            Self::Up | Self::Top => "Already the first waiting job in the queue",
            Self::Down => "Already the last waiting job in the queue",
        }
    }
}

/// The nearest waiting job of `beyond`: the queue past a job in one direction, nearest
/// first (`GET /api/v1/queue?after=<job>[&order=desc]`). Jobs already sent to a printer
/// are stepped over: they print wherever they stand, so passing one changes nothing.
pub fn nearest_waiting(beyond: &[PrintJob]) -> Option<&PrintJob> {
    beyond.iter().find(|job| is_waiting(job))
}

/// The body of `PUT /api/v1/queue/{id}` for `step`, given the nearest waiting job in its
/// direction ([`nearest_waiting`] of the *whole* queue, not only of the jobs on screen);
/// `None` when there is none, so the job stays where it is.
pub fn place_for(step: QueueMove, neighbour: Option<&PrintJob>) -> Option<QueuePlaceBody> {
    let neighbour = neighbour?;
    Some(match step {
        QueueMove::Up => QueuePlaceBody::before(neighbour.id.as_str()),
        QueueMove::Down => QueuePlaceBody::after(neighbour.id.as_str()),
        QueueMove::Top => QueuePlaceBody::to("first"),
    })
}

/// Which of a waiting job's moves can go anywhere, as far as the board tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfferedMoves {
    /// Move up and To top.
    pub up: bool,
    pub down: bool,
}

impl OfferedMoves {
    pub fn allows(self, step: QueueMove) -> bool {
        match step {
            QueueMove::Up | QueueMove::Top => self.up,
            QueueMove::Down => self.down,
        }
    }
}

/// The board's queued jobs in queue order, as the cards' buttons need them: which job
/// comes where and whether it waits, and how much of the queue the board holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLine {
    /// Each queued job of the board, in queue order, and whether it waits.
    jobs: Vec<(Id, bool)>,
    head_known: bool,
    complete: bool,
}

impl QueueLine {
    /// The line of the board's queued jobs (`jobs`, any order). `head_known`: the board is
    /// not filtered by printer or spool, so its queued jobs are the head of the whole
    /// queue. `queued_count`: how many jobs the Queued column holds (all on the board or
    /// not).
    pub fn of(jobs: &[PrintJob], head_known: bool, queued_count: usize) -> Self {
        let mut queued: Vec<&PrintJob> = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .collect();
        sort_in_queue_order(&mut queued);
        Self {
            complete: head_known && queued.len() >= queued_count,
            jobs: queued
                .into_iter()
                .map(|j| (j.id.clone(), is_waiting(j)))
                .collect(),
            head_known,
        }
    }

    /// The moves `job`'s card offers. With the queue's head on the board, a job with no
    /// waiting job above it is first; with all of the queue, one with none below it is
    /// last. Otherwise a move stays offered, and the click asks the node where the
    /// neighbour is.
    pub fn offered(&self, job: &Id) -> OfferedMoves {
        let Some(at) = self.jobs.iter().position(|(id, _)| id == job) else {
            return OfferedMoves::default();
        };
        let waits = |jobs: &[(Id, bool)]| jobs.iter().any(|(_, waiting)| *waiting);
        OfferedMoves {
            up: !self.head_known || waits(&self.jobs[..at]),
            down: !self.complete || waits(&self.jobs[at + 1..]),
        }
    }
}

/// "PLA red".
pub fn material_label(material: &Material) -> String {
    format!("{} {}", material.kind.as_str(), material.color.as_str())
}

/// What a job card calls its printer: "Prusa MK4", its id when the board does not hold
/// it, or "any printer" while the farm queue is to choose one.
pub fn printer_label(job: &PrintJob, printers: &[Printer]) -> String {
    let Some(id) = &job.printer_id else {
        return "any printer".to_owned();
    };
    printers.iter().find(|p| &p.id == id).map_or_else(
        || id.to_string(),
        |p| format!("{} {}", p.company.as_str(), p.model.as_str()),
    )
}

/// What a job card calls its spool: "PLA red", its id when the board does not hold it,
/// or "any PLA red" while it waits for any spool of that material and colour.
pub fn spool_label(job: &PrintJob, filaments: &[FilamentView]) -> String {
    match (&job.filament_id, &job.material) {
        (Some(id), _) => filaments.iter().find(|s| &s.filament.id == id).map_or_else(
            || id.to_string(),
            |s| format!("{} {}", s.filament.kind.as_str(), s.filament.color.as_str()),
        ),
        (None, Some(material)) => format!("any {}", material_label(material)),
        (None, None) => "any spool".to_owned(),
    }
}

/// A spool as a choice of a printer's "Loaded spool" select: "PLA red (pla-1) · 640 g"
/// (what is available of it), plus "· on p2" while another printer has it (loading it
/// here is then refused until it is unloaded there). Short: the select is narrow.
pub fn loaded_spool_choice(spool: &FilamentView, printers: &[Printer], printer: &Id) -> String {
    let mut label = format!(
        "{} {} ({}) · {}",
        spool.filament.kind.as_str(),
        spool.filament.color.as_str(),
        spool.filament.id,
        grams(spool.available_weight_in_grams),
    );
    let elsewhere = printers
        .iter()
        .find(|p| &p.id != printer && p.loaded_filament_id.as_ref() == Some(&spool.filament.id));
    if let Some(other) = elsewhere {
        label.push_str(&format!(" · on {}", other.id));
    }
    label
}

/// "Waiting for the bed to be cleared (after job cube.gcode)" while `printer` waits for
/// someone to take the last print off (the job by its file when the board holds it).
pub fn bed_wait_notice(printer: &Printer, jobs: &[PrintJob]) -> Option<String> {
    let wait = printer.awaiting_clear.as_ref()?;
    let job = jobs.iter().find(|job| job.id == wait.job_id).map_or_else(
        || wait.job_id.to_string(),
        |job| job.filepath.as_str().to_owned(),
    );
    Some(format!(
        "Waiting for the bed to be cleared (after job {job})"
    ))
}

/// The colours of the spools of `kind`, each once (case and spaces aside, as the queue
/// compares them), in the order of the spools: suggestions for the form's colour field.
pub fn colours_of(filaments: &[FilamentView], kind: FilamentType) -> Vec<String> {
    let mut colours: Vec<String> = Vec::new();
    for spool in filaments.iter().filter(|s| s.filament.kind == kind) {
        let colour = spool.filament.color.as_str().trim();
        if !colours.iter().any(|c| c.eq_ignore_ascii_case(colour)) {
            colours.push(colour.to_owned());
        }
    }
    colours
}

/// The job form's spool select: a spool, any spool of a material, or nothing chosen.
/// [`ANY_SPOOL`] is its value for "any spool of…": not an id (ids have no `*`).
pub const ANY_SPOOL: &str = "*";

/// What the job form holds, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobForm {
    /// A printer's id; empty: any printer that fits (with a stored file; without one
    /// the request is refused, as a job of a file path is moved by hand on its printer).
    pub printer: String,
    /// A spool's id, [`ANY_SPOOL`], or empty (none chosen).
    pub spool: String,
    /// With [`ANY_SPOOL`]: the material's type and colour.
    pub material: String,
    pub colour: String,
    /// A stored file's id; empty: the job names `filepath`.
    pub file_id: String,
    pub filepath: String,
    pub weight: String,
    pub copies: String,
}

/// What the job form sends.
#[derive(Debug, Clone, PartialEq)]
pub enum JobRequest {
    /// `POST /api/v1/print_jobs`.
    One(Value),
    /// `POST /api/v1/queue`, with `copies`.
    Copies(Value),
}

/// Why the form refuses before anything is checked or sent: the field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormProblem {
    pub field: &'static str,
    pub message: &'static str,
}

impl JobForm {
    /// The request this form makes. Copies other than 1 (or empty) go to the queue's
    /// endpoint, whose parser says what is wrong with a count it refuses. A job of a file
    /// path must name its printer and spool: only a stored file can wait for the farm
    /// queue to choose (the server refuses the rest too; this says it next to the
    /// choice to change).
    pub fn request(&self) -> Result<JobRequest, FormProblem> {
        let by_path = self.file_id.trim().is_empty();
        if by_path && self.printer.is_empty() {
            return Err(FormProblem {
                field: "printer_id",
                message:
                    "Choose a printer: only a stored G-code file can go to any printer that fits",
            });
        }
        if by_path && self.spool == ANY_SPOOL {
            return Err(FormProblem {
                field: "filament_id",
                message:
                    "Choose a spool: only a stored G-code file can wait for any spool of a material",
            });
        }
        let mut body = json!({});
        if !self.printer.is_empty() {
            body["printer_id"] = self.printer.clone().into();
        }
        if self.spool == ANY_SPOOL {
            body["material"] = json!({ "type": self.material, "color": self.colour.trim() });
        } else if !self.spool.is_empty() {
            body["filament_id"] = self.spool.clone().into();
        }
        if by_path {
            body["filepath"] = self.filepath.clone().into();
            body["print_weight_in_grams"] = number_json(&self.weight);
        } else {
            body["file_id"] = self.file_id.clone().into();
            // Left empty, the cluster takes the file's own grams (rounded up).
            if !self.weight.trim().is_empty() {
                body["print_weight_in_grams"] = number_json(&self.weight);
            }
        }
        Ok(match self.copies.trim() {
            "" | "1" => JobRequest::One(body),
            copies => {
                body["copies"] = number_json(copies);
                JobRequest::Copies(body)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::{NewCopiesBody, NewPrintJob, NewPrintJobBody};
    use app::domain::{BedWait, Dispatch, Filament, Text, Timestamp};

    fn id(s: &str) -> Id {
        Id::parse(s).expect("valid id")
    }

    fn text(s: &str) -> Text {
        Text::parse(s).expect("text")
    }

    /// A waiting job of rank `rank` (none: from before ranks), queued at second `at`.
    fn job(name: &str, rank: Option<i64>, at: u64) -> PrintJob {
        PrintJob {
            queue_rank: rank,
            created_at: Some(Timestamp::from_unix_ms(at * 1000)),
            file_id: Some(id("f")),
            ..PrintJob::waiting(id(name), text(&format!("{name}.gcode")), 10)
        }
    }

    fn sent(mut job: PrintJob) -> PrintJob {
        job.dispatch = Some(Dispatch {
            term: 2,
            at: Timestamp::from_unix_ms(5),
        });
        job
    }

    fn ids(jobs: &[&PrintJob]) -> Vec<String> {
        jobs.iter().map(|j| j.id.to_string()).collect()
    }

    fn spool(name: &str, kind: FilamentType, color: &str) -> FilamentView {
        FilamentView {
            filament: Filament {
                id: id(name),
                kind,
                color: text(color),
                total_weight_in_grams: 1000,
                remaining_weight_in_grams: 1000,
            },
            reserved_weight_in_grams: 360,
            available_weight_in_grams: 640,
        }
    }

    fn printer(name: &str) -> Printer {
        Printer::new(id(name), text("Prusa"), text("MK4"))
    }

    #[test]
    fn queued_jobs_go_by_rank_then_queue_time_then_id_not_by_id() {
        let (a, b, c, d) = (
            job("a", Some(10), 1),
            job("b", Some(-5), 2),
            job("c", None, 9),
            job("d", Some(10), 0),
        );
        let mut queue = vec![&a, &b, &c, &d];
        sort_in_queue_order(&mut queue);
        assert_eq!(
            ids(&queue),
            ["c", "b", "d", "a"],
            "unranked first; equal ranks oldest first"
        );
    }

    #[test]
    fn a_move_goes_next_to_the_nearest_waiting_job_stepping_over_sent_ones() {
        // The queue before a job, nearest first: a job already sent, then a waiting one.
        let before = vec![sent(job("x", Some(3), 3)), job("y", Some(2), 2)];
        let neighbour = nearest_waiting(&before).map(|j| j.id.to_string());
        assert_eq!(neighbour.as_deref(), Some("y"));
        let y = nearest_waiting(&before);
        assert_eq!(
            place_for(QueueMove::Up, y),
            Some(QueuePlaceBody::before("y"))
        );
        assert_eq!(
            place_for(QueueMove::Down, y),
            Some(QueuePlaceBody::after("y"))
        );
        assert_eq!(
            place_for(QueueMove::Top, y),
            Some(QueuePlaceBody::to("first"))
        );
        let only_sent = vec![sent(job("x", Some(3), 3))];
        assert_eq!(nearest_waiting(&only_sent), None);
        for step in QueueMove::ALL {
            assert_eq!(place_for(step, None), None, "{step:?} has nowhere to go");
        }
        assert!(QueueMove::Up.looks_back() && QueueMove::Top.looks_back());
        assert!(!QueueMove::Down.looks_back());
    }

    #[test]
    fn a_card_offers_the_moves_the_board_does_not_rule_out() {
        // Board order: s (sent), a, b, c; d is done.
        let mut done = job("d", Some(0), 0);
        done.status = JobStatus::Done;
        let jobs = vec![
            job("c", Some(30), 3),
            done,
            job("a", Some(10), 1),
            sent(job("s", Some(0), 0)),
            job("b", Some(20), 2),
        ];
        let moves = |name: &str, head_known, count| {
            QueueLine::of(&jobs, head_known, count).offered(&id(name))
        };
        let (up, down, both) = (
            OfferedMoves {
                up: true,
                down: false,
            },
            OfferedMoves {
                up: false,
                down: true,
            },
            OfferedMoves {
                up: true,
                down: true,
            },
        );
        // The whole queue is on the board: exact.
        assert_eq!(
            moves("a", true, 4),
            down,
            "only a sent job above: first waiting"
        );
        assert_eq!(moves("b", true, 4), both);
        assert_eq!(moves("c", true, 4), up);
        // More queued jobs than the board holds: one may wait below c.
        assert_eq!(moves("c", true, 60), both);
        // Filtered by printer or spool on the node: the board is not the queue's head.
        assert_eq!(moves("a", false, 4), both);
        // Not a queued job of the board: nothing.
        assert_eq!(moves("d", true, 4), OfferedMoves::default());
        assert!(down.allows(QueueMove::Down) && !down.allows(QueueMove::Top));
    }

    #[test]
    fn a_card_says_any_printer_and_any_material_while_the_queue_is_to_choose() {
        let printers = vec![printer("p1")];
        let spools = vec![spool("s1", FilamentType::Petg, "blue")];
        let mut waiting = job("j", None, 1);
        waiting.material = Some(Material {
            kind: FilamentType::Pla,
            color: text("red"),
        });
        assert_eq!(printer_label(&waiting, &printers), "any printer");
        assert_eq!(spool_label(&waiting, &spools), "any PLA red");
        // Sent: the queue chose a printer and a spool.
        waiting.printer_id = Some(id("p1"));
        waiting.filament_id = Some(id("s1"));
        assert_eq!(printer_label(&waiting, &printers), "Prusa MK4");
        assert_eq!(spool_label(&waiting, &spools), "PETG blue");
        // Not on the board: by id.
        waiting.printer_id = Some(id("p9"));
        waiting.filament_id = Some(id("s9"));
        assert_eq!(printer_label(&waiting, &printers), "p9");
        assert_eq!(spool_label(&waiting, &spools), "s9");
    }

    #[test]
    fn a_loaded_spool_choice_says_which_other_printer_has_it() {
        let s1 = spool("s1", FilamentType::Pla, "red");
        let mut p2 = printer("p2");
        p2.loaded_filament_id = Some(id("s1"));
        let printers = vec![printer("p1"), p2];
        assert_eq!(
            loaded_spool_choice(&s1, &printers, &id("p1")),
            "PLA red (s1) · 640 g · on p2"
        );
        assert_eq!(
            loaded_spool_choice(&s1, &printers, &id("p2")),
            "PLA red (s1) · 640 g"
        );
    }

    #[test]
    fn a_printer_waiting_for_its_bed_says_after_which_job() {
        let mut p = printer("p1");
        assert_eq!(bed_wait_notice(&p, &[]), None);
        p.awaiting_clear = Some(BedWait {
            job_id: id("j1"),
            since: None,
        });
        assert_eq!(
            bed_wait_notice(&p, &[job("j1", None, 1)]).as_deref(),
            Some("Waiting for the bed to be cleared (after job j1.gcode)")
        );
        assert_eq!(
            bed_wait_notice(&p, &[]).as_deref(),
            Some("Waiting for the bed to be cleared (after job j1)"),
            "a job not on the board by its id"
        );
    }

    #[test]
    fn colour_suggestions_are_the_colours_of_that_material_each_once() {
        let spools = vec![
            spool("a", FilamentType::Pla, "Red"),
            spool("b", FilamentType::Pla, " red "),
            spool("c", FilamentType::Petg, "black"),
            spool("d", FilamentType::Pla, "white"),
        ];
        assert_eq!(colours_of(&spools, FilamentType::Pla), ["Red", "white"]);
        assert_eq!(colours_of(&spools, FilamentType::Tpu), Vec::<String>::new());
    }

    fn form() -> JobForm {
        JobForm {
            material: "PLA".into(),
            copies: "1".into(),
            ..JobForm::default()
        }
    }

    #[test]
    fn copies_of_any_pla_red_for_any_printer_go_to_the_queue_as_the_server_reads_them() {
        let form = JobForm {
            spool: ANY_SPOOL.into(),
            colour: " red ".into(),
            file_id: "file-1".into(),
            copies: "2".into(),
            ..form()
        };
        let Ok(JobRequest::Copies(body)) = form.request() else {
            panic!("copies: {:?}", form.request());
        };
        assert_eq!(
            body,
            json!({"material": {"type": "PLA", "color": "red"}, "file_id": "file-1", "copies": 2})
        );
        let (job, copies) =
            NewPrintJob::copies_from_json(body.to_string().as_bytes()).expect("valid");
        assert_eq!(copies, 2);
        assert_eq!(job.printer_id, None);
        serde_json::from_value::<NewCopiesBody>(body).expect("the body type");
    }

    #[test]
    fn one_copy_is_a_plain_job_and_a_job_by_path_still_names_printer_and_spool() {
        let by_path = JobForm {
            printer: "p1".into(),
            spool: "s1".into(),
            filepath: "benchy.gcode".into(),
            weight: "12".into(),
            ..form()
        };
        let expected = json!({"printer_id": "p1", "filament_id": "s1", "filepath": "benchy.gcode", "print_weight_in_grams": 12});
        assert_eq!(by_path.request(), Ok(JobRequest::One(expected.clone())));
        let empty_copies = JobForm {
            copies: " ".into(),
            ..by_path.clone()
        };
        assert_eq!(
            empty_copies.request(),
            Ok(JobRequest::One(expected.clone()))
        );
        serde_json::from_value::<NewPrintJobBody>(expected).expect("the body type");
        // A file path cannot wait for the queue to choose: said next to the choice.
        let any_printer = JobForm {
            printer: String::new(),
            ..by_path.clone()
        };
        assert_eq!(
            any_printer.request().map_err(|p| p.field),
            Err("printer_id")
        );
        let any_spool = JobForm {
            spool: ANY_SPOOL.into(),
            colour: "red".into(),
            ..by_path
        };
        assert_eq!(any_spool.request().map_err(|p| p.field), Err("filament_id"));
    }

    #[test]
    fn counts_the_server_refuses_still_go_to_it_to_be_named() {
        for raw in ["0", "101", "two"] {
            let form = JobForm {
                spool: "s1".into(),
                file_id: "f".into(),
                copies: raw.into(),
                ..form()
            };
            let Ok(JobRequest::Copies(body)) = form.request() else {
                panic!("{raw}: copies");
            };
            let error =
                NewPrintJob::copies_from_json(body.to_string().as_bytes()).expect_err("refused");
            assert_eq!(error.field(), Some("copies"), "{raw}");
        }
        assert_eq!(number_json(" 7 "), json!(7));
        assert_eq!(
            number_json("7.5"),
            json!("7.5"),
            "refused by the server, by name"
        );
    }
}
