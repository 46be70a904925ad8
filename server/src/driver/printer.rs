//! One printer's driver: polls its host, commits what matters, and starts, adopts, ends
//! or cancels its jobs. It runs on the leader only, for one term (`super::supervisor`).
//!
//! Never twice: the rules that keep a job from being started twice, after any failover,
//! are written down in `server/src/driver/DESIGN.md`; each is marked here where it is
//! kept (`[rule N]`).

use super::host::{HostError, HostReport, PrintRecord};
use super::moonraker::Moonraker;
use super::octoprint::OctoPrint;
use crate::files::FileStore;
use crate::http::farm::Farm;
use app::command::{DriverReport, PrintOutcome};
use app::domain::job::job_of_printer_file;
use app::domain::{PrinterState, PrinterStatus, Text};
use app::{Command, Id, JobStatus, Outcome, PrintJob, Rejection};
use std::time::{Duration, Instant};

/// How often a host is asked what it does.
pub const POLL: Duration = Duration::from_secs(1);
/// Longest pause between polls of a host that does not answer (or refuses us).
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A status report that differs only in its message is committed at most this often
/// (a host's error text can change every poll; the log must not fill with it).
const MESSAGE_EVERY: Duration = Duration::from_secs(10);
/// Polls in a row that must find the printer idle, with no record of the job's file,
/// before a running job is called lost: OctoPrint says "Operational" a moment before it
/// counts the finished print.
const LOST_AFTER_POLLS: u32 = 3;
/// A start this driver sent is not sent again for this long, whatever the host says.
const START_QUIET: Duration = Duration::from_secs(60);

/// A printer's host, by kind.
pub enum Host {
    OctoPrint(OctoPrint),
    Moonraker(Moonraker),
}

impl Host {
    async fn probe(&self) -> Result<HostReport, HostError> {
        match self {
            Self::OctoPrint(host) => host.probe().await,
            Self::Moonraker(host) => host.probe().await,
        }
    }
    async fn record(&self, name: &str) -> Result<Option<PrintRecord>, HostError> {
        match self {
            Self::OctoPrint(host) => host.record(name).await,
            Self::Moonraker(host) => host.record(name).await,
        }
    }
    async fn upload(&self, name: &str, file: &std::path::Path, size: u64) -> Result<(), HostError> {
        match self {
            Self::OctoPrint(host) => host.upload(name, file, size).await,
            Self::Moonraker(host) => host.upload(name, file, size).await,
        }
    }
    async fn start(&self, name: &str) -> Result<(), HostError> {
        match self {
            Self::OctoPrint(host) => host.start(name).await,
            Self::Moonraker(host) => host.start(name).await,
        }
    }
    async fn cancel(&self) -> Result<(), HostError> {
        match self {
            Self::OctoPrint(host) => host.cancel().await,
            Self::Moonraker(host) => host.cancel().await,
        }
    }
}

/// Why a driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverStop {
    #[error("a later leader's driver has written (term {current}): this one is deposed")]
    Fenced { current: u64 },
    #[error("this node no longer leads in term {0}")]
    NotLeader(u64),
}

/// One printer's driver for one term.
pub struct PrinterDriver {
    pub farm: Farm,
    pub files: FileStore,
    /// Where what the host says now goes (progress, temperatures: not the log).
    pub live: super::live::LiveBoard,
    pub printer_id: Id,
    pub host: Host,
    pub term: u64,
    /// When the last status with only a new message was committed.
    message_at: Option<Instant>,
    /// The job this driver sent a start for, and when.
    started: Option<(Id, Instant)>,
    /// Polls in a row that found a running job's printer idle with no record of it.
    lost_polls: u32,
}

impl PrinterDriver {
    pub fn new(
        farm: Farm,
        files: FileStore,
        live: super::live::LiveBoard,
        printer_id: Id,
        host: Host,
        term: u64,
    ) -> Self {
        Self {
            farm,
            files,
            live,
            printer_id,
            host,
            term,
            message_at: None,
            started: None,
            lost_polls: 0,
        }
    }

    /// Drives the printer until deposed.
    pub async fn run(mut self) -> DriverStop {
        let mut pause = POLL;
        loop {
            tokio::time::sleep(pause).await;
            let probed = self.host.probe().await;
            let status = status_of(&probed);
            if let Err(stop) = self.commit_status(status).await {
                return stop;
            }
            let report = match probed {
                Ok(report) => report,
                Err(_) => {
                    self.live.forget(&self.printer_id);
                    pause = (pause * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            self.live.observe(&self.printer_id, &report);
            pause = POLL;
            if let Err(stop) = self.reconcile(&report).await {
                return stop;
            }
        }
    }

    /// Commits the host's status when it says something new.
    async fn commit_status(&mut self, status: PrinterStatus) -> Result<(), DriverStop> {
        let committed = {
            let applied = self.farm.local_state();
            applied
                .farm
                .printer(&self.printer_id)
                .and_then(|p| p.status.clone())
        };
        let news = match &committed {
            None => true,
            Some(old) if old.same_report(&status) => false,
            Some(old) if old.state != status.state || old.job_id != status.job_id => true,
            Some(_) => self
                .message_at
                .is_none_or(|at| at.elapsed() >= MESSAGE_EVERY),
        };
        if !news {
            return Ok(());
        }
        self.message_at = Some(Instant::now());
        self.report(DriverReport::Status {
            printer_id: self.printer_id.clone(),
            status,
        })
        .await
    }

    /// Brings the farm and the printer into step, from what the host says now.
    async fn reconcile(&mut self, report: &HostReport) -> Result<(), DriverStop> {
        let (dispatched, printed) = {
            let applied = self.farm.local_state();
            let farm = &applied.farm;
            let printing = printing_job(report);
            (
                farm.dispatched_job_of(&self.printer_id).cloned(),
                printing.as_ref().and_then(|id| farm.job(id)).cloned(),
            )
        };
        match report.state {
            PrinterState::Printing | PrinterState::Paused => self.while_busy(printed).await,
            PrinterState::Idle => {
                if let Some(job) = dispatched {
                    self.settle(job).await?;
                }
                // A job that just ended leaves the printer free: the next goes now, not
                // a poll later.
                self.dispatch_next().await
            }
            // A print that ended in an error (Moonraker's `error`, OctoPrint's "Offline
            // after error") is on record: its job ends. Nothing is started or called lost
            // while the printer is in error.
            PrinterState::Error => match dispatched {
                Some(job) => self.settle_recorded(job).await.map(|_| ()),
                None => Ok(()),
            },
            PrinterState::Offline => Ok(()),
        }
    }

    /// Gives the idle printer its next job, if it has no dispatched one and takes jobs by
    /// itself.
    async fn dispatch_next(&mut self) -> Result<(), DriverStop> {
        let next = {
            let applied = self.farm.local_state();
            let farm = &applied.farm;
            let auto = farm
                .printer(&self.printer_id)
                .and_then(|p| p.connection.as_ref())
                .is_some_and(|c| c.auto_dispatch);
            let free = farm.dispatched_job_of(&self.printer_id).is_none();
            (auto && free)
                .then(|| farm.next_job_for(&self.printer_id).cloned())
                .flatten()
        };
        let Some(job) = next else {
            return Ok(());
        };
        // [rule 1] a job is dispatched only to an idle printer that has no dispatched job
        // left, and the dispatch is committed before anything reaches the printer.
        // A job of the farm queue that another printer's driver picked too goes to the
        // one whose report is applied first: the state refuses the other.
        self.report(DriverReport::Dispatching {
            job_id: job.id,
            printer_id: Some(self.printer_id.clone()),
        })
        .await?;
        // Straight on to the start, not a poll later: only a job sent to this printer.
        let dispatched = {
            let applied = self.farm.local_state();
            applied.farm.dispatched_job_of(&self.printer_id).cloned()
        };
        match dispatched.filter(|j| j.status == JobStatus::Queued) {
            Some(job) => self.settle(job).await,
            None => Ok(()),
        }
    }

    /// The host prints: adopt our job, or cancel one the farm canceled.
    async fn while_busy(&mut self, printed: Option<PrintJob>) -> Result<(), DriverStop> {
        self.lost_polls = 0;
        let Some(job) = printed.filter(|job| job.printer_id.as_ref() == Some(&self.printer_id))
        else {
            // Not one of ours (or not this printer's): busy outside Raft3D; the status
            // says so, nothing is started while it lasts.
            return Ok(());
        };
        match job.status {
            // [rule 3] the printer says which job it prints: adopted, never restarted.
            JobStatus::Queued if job.dispatch.is_some() => {
                self.report(DriverReport::Started { job_id: job.id }).await
            }
            JobStatus::Canceled => {
                if let Err(error) = self.host.cancel().await {
                    tracing::warn!(printer = %self.printer_id, job = %job.id, %error, "cancelling a canceled job on its printer failed");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The printer is idle and `job` was dispatched to it: it ended, or it is to start.
    async fn settle(&mut self, job: PrintJob) -> Result<(), DriverStop> {
        let Some(record) = self.settle_recorded(job.clone()).await? else {
            return Ok(());
        };
        match job.status {
            JobStatus::Running => self.lost(job).await,
            _ => self.start(job, record.is_some()).await,
        }
    }

    /// Ends `job` if the printer's history has a print of its file. `Some(what the
    /// printer holds of the file)` when it has none (the job did not end), `None` when it
    /// ended or the printer could not be asked.
    async fn settle_recorded(
        &mut self,
        job: PrintJob,
    ) -> Result<Option<Option<PrintRecord>>, DriverStop> {
        let name = job.printer_file_name();
        let record = match self.host.record(&name).await {
            Ok(record) => record,
            Err(error) => {
                tracing::debug!(printer = %self.printer_id, %error, "reading the job's file on the printer failed");
                return Ok(None);
            }
        };
        // [rule 2] the file is named after the job and printed for no other: any print
        // of it on record is this job's, and ends it.
        if let Some(record) = record.filter(|r| r.success + r.failure > 0) {
            self.lost_polls = 0;
            let outcome = match record.last_success {
                Some(true) => PrintOutcome::Done,
                _ => PrintOutcome::Failed {
                    reason: text("the print failed or was cancelled on the printer"),
                },
            };
            self.report(DriverReport::Finished {
                job_id: job.id,
                outcome,
            })
            .await?;
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// A running job whose printer is idle and has no record of printing it (the host
    /// restarted mid-print, or the file was removed there): ended as failed, once seen
    /// so several polls in a row.
    async fn lost(&mut self, job: PrintJob) -> Result<(), DriverStop> {
        self.lost_polls += 1;
        if self.lost_polls < LOST_AFTER_POLLS {
            return Ok(());
        }
        self.lost_polls = 0;
        let reason =
            text("the printer is idle and has no record of printing it (did its host restart?)");
        self.report(DriverReport::Finished {
            job_id: job.id,
            outcome: PrintOutcome::Failed { reason },
        })
        .await
    }

    /// Sends a dispatched, never-printed job to its idle printer.
    async fn start(&mut self, job: PrintJob, on_host: bool) -> Result<(), DriverStop> {
        if self
            .started
            .as_ref()
            .is_some_and(|(id, at)| *id == job.id && at.elapsed() < START_QUIET)
        {
            return Ok(());
        }
        let name = job.printer_file_name();
        if !on_host {
            if let Err(error) = self.upload(&job, &name).await {
                tracing::warn!(printer = %self.printer_id, job = %job.id, %error, "sending the job's file to its printer failed");
                return Ok(());
            }
        }
        // [rule 4] a start goes out only once this node has confirmed with a quorum that
        // it still leads in the term that dispatched (or adopted) the job, and the host
        // has said again, just now, that it is idle and has never printed the file.
        if !self.farm.confirm_leader(self.term).await {
            return Err(DriverStop::NotLeader(self.term));
        }
        let idle = matches!(self.host.probe().await, Ok(r) if r.state == PrinterState::Idle);
        let unprinted = matches!(
            self.host.record(&name).await,
            Ok(Some(r)) if r.success + r.failure == 0
        );
        if !(idle && unprinted) {
            return Ok(());
        }
        self.started = Some((job.id.clone(), Instant::now()));
        match self.host.start(&name).await {
            Ok(()) => {
                tracing::info!(printer = %self.printer_id, job = %job.id, term = self.term, "print started");
                // The host took the start: the job runs (a print that fails at once is
                // on record, and ends it at the next poll).
                return self.report(DriverReport::Started { job_id: job.id }).await;
            }
            // OctoPrint refuses a start while it prints: someone else was quicker.
            Err(error) => {
                tracing::warn!(printer = %self.printer_id, job = %job.id, %error, "the printer refused the start")
            }
        }
        Ok(())
    }

    async fn upload(&self, job: &PrintJob, name: &str) -> Result<(), String> {
        let file = {
            let applied = self.farm.local_state();
            job.file_id
                .as_ref()
                .and_then(|id| applied.farm.file(id))
                .cloned()
        };
        let file = file.ok_or("the job's file is not stored")?;
        let path = crate::files::ensure_local(&self.farm, &self.files, &file.sha256, file.size)
            .await
            .map_err(|e| e.to_string())?;
        self.host
            .upload(name, &path, file.size)
            .await
            .map_err(|e| e.to_string())
    }

    /// Commits a report of this driver's term. Refused or not committed, it is made
    /// again from what the host says at the next poll; deposed, the driver stops.
    async fn report(&self, report: DriverReport) -> Result<(), DriverStop> {
        let command = Command::Drive {
            term: self.term,
            report,
        };
        match self.farm.propose(command, None).await {
            Ok(written) => match written.outcome {
                Outcome::Rejected(Rejection::Fenced { current, .. }) => {
                    Err(DriverStop::Fenced { current })
                }
                Outcome::Rejected(rejection) => {
                    tracing::debug!(printer = %self.printer_id, %rejection, "a driver report was refused");
                    Ok(())
                }
                Outcome::Created(_) | Outcome::Updated(_) => Ok(()),
            },
            Err(error) => {
                tracing::debug!(printer = %self.printer_id, %error, "a driver report was not committed");
                match self.farm.leading_term() == Some(self.term) {
                    true => Ok(()),
                    false => Err(DriverStop::NotLeader(self.term)),
                }
            }
        }
    }
}

/// The job the host prints, if its file is one of ours and it prints.
fn printing_job(report: &HostReport) -> Option<Id> {
    match report.state {
        PrinterState::Printing | PrinterState::Paused => {
            report.file.as_deref().and_then(job_of_printer_file)
        }
        _ => None,
    }
}

/// What a poll says about the printer, as it is committed.
fn status_of(probed: &Result<HostReport, HostError>) -> PrinterStatus {
    let (state, message, job_id) = match probed {
        Ok(report) => {
            let job = printing_job(report);
            let outside = report.file.is_some()
                && job.is_none()
                && matches!(report.state, PrinterState::Printing | PrinterState::Paused);
            let message = match outside {
                true => Some(format!(
                    "busy with {} outside Raft3D",
                    report.file.as_deref().unwrap_or_default()
                )),
                false => report.message.clone(),
            };
            (report.state, message, job)
        }
        Err(error @ HostError::Unreachable { .. }) => {
            (PrinterState::Offline, Some(error.to_string()), None)
        }
        Err(error) => (PrinterState::Error, Some(error.to_string()), None),
    };
    PrinterStatus {
        state,
        message: message.as_deref().and_then(bounded_text),
        job_id,
        since: None,
    }
}

/// `raw` as stored text: control characters dropped, at most 300 bytes.
fn bounded_text(raw: &str) -> Option<Text> {
    let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
    let mut end = clean.len().min(300);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    Text::parse(&clean[..end]).ok()
}

fn text(raw: &str) -> Text {
    Text::parse(raw).unwrap_or_else(|_| unreachable!("a fixed, valid text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: PrinterState, file: Option<&str>) -> HostReport {
        HostReport {
            state,
            message: Some("Printing".to_owned()),
            file: file.map(str::to_owned),
            progress: None,
            seconds_left: None,
            nozzle: None,
            bed: None,
        }
    }

    #[test]
    fn a_status_names_our_job_or_says_the_printer_is_busy_outside_raft3d() {
        let ours = status_of(&Ok(report(PrinterState::Printing, Some("raft3d-j1.gcode"))));
        assert_eq!(ours.job_id.as_ref().map(Id::as_str), Some("j1"));
        let other = status_of(&Ok(report(PrinterState::Printing, Some("benchy.gcode"))));
        assert_eq!(other.job_id, None);
        assert_eq!(
            other.message.as_ref().map(Text::as_str),
            Some("busy with benchy.gcode outside Raft3D")
        );
        let idle = status_of(&Ok(report(PrinterState::Idle, Some("raft3d-j1.gcode"))));
        assert_eq!(idle.job_id, None, "a selected file is not a print");
        let down = status_of(&Err(HostError::Unreachable {
            url: "http://h".into(),
            why: "refused".into(),
        }));
        assert_eq!(down.state, PrinterState::Offline);
        let refused = status_of(&Err(HostError::Unauthorized {
            status: 403,
            message: "no".into(),
        }));
        assert_eq!(refused.state, PrinterState::Error);
    }

    #[test]
    fn host_words_are_stored_bounded_and_without_control_characters() {
        let long = format!("a\nb{}", "é".repeat(400));
        let text = bounded_text(&long).expect("text");
        assert!(text.as_str().len() <= 300);
        assert!(text.as_str().starts_with("ab"));
        assert_eq!(bounded_text("\n\t"), None);
    }
}
