//! [`FarmState`]: the replicated state machine.
//!
//! `apply` is a pure, deterministic function of the log: it reads nothing but the proposal
//! and the current state, iterates only ordered maps, and never looks at a clock. Two
//! replicas fed the same proposals end up byte-for-byte equal, which the state digest
//! lets operators and tests check.
//!
//! Business rejections (unknown printer, over-reservation, illegal transition, …) are
//! *values* ([`Outcome::Rejected`]), not errors: a rejected command is still a committed
//! log entry whose outcome every replica agrees on.

use crate::api::{JobFilter, Order, Paging};
use crate::command::{Command, DriverReport, IdempotencyClaim, PrintOutcome, Proposal};
use crate::digest::fnv1a;
use crate::domain::queue::{self, LoadedSpool, QueueKey, RANK_GAP};
use crate::domain::{
    ApiToken, BedWait, Connection, Dispatch, Filament, GcodeFile, Id, JobStatus, PrintJob, Printer,
    QueuePlace, SealedSecret, Text, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// How long an idempotency key is remembered after its first use.
pub const IDEMPOTENCY_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// At most this many idempotency keys are remembered; the oldest go first.
pub const MAX_IDEMPOTENCY_RECORDS: usize = 100_000;

/// What applying a proposal produced. Stored with idempotency keys, so a retry gets the
/// very same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Created(Entity),
    Updated(Entity),
    Rejected(Rejection),
}

/// A farm object as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entity {
    Printer(Printer),
    Filament(FilamentView),
    PrintJob(PrintJob),
    Token(ApiToken),
    File(GcodeFile),
    /// Copies of one print, queued together.
    PrintJobs(Vec<PrintJob>),
}

/// A spool plus what its live jobs hold of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FilamentView {
    #[serde(flatten)]
    pub filament: Filament,
    /// Sum of `print_weight_in_grams` of its `Queued` and `Running` jobs.
    pub reserved_weight_in_grams: u64,
    /// `remaining - reserved`: what a new job may still take.
    pub available_weight_in_grams: u64,
}

/// One change to the farm as the change stream shows it: what kind of change, and the
/// object after it. Applying a proposal yields its events in order (a job's event before
/// the event of the spool it changed); refusals, idempotent replays and token changes
/// yield none (who holds which token is not the stream's business).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmEvent {
    pub kind: EventKind,
    pub data: Entity,
}

/// The kinds of change, as the stream names them (`event:` of Server-Sent Events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    PrinterCreated,
    FilamentCreated,
    /// A spool's remaining, reserved or available weight changed (a job was queued,
    /// finished or canceled).
    FilamentUpdated,
    JobCreated,
    /// A job moved to another status.
    JobStatus,
    /// A printer was connected or disconnected, or its host reported a new status.
    PrinterUpdated,
    /// A job changed without changing status (its printer's driver dispatched it).
    JobUpdated,
    FileAdded,
    FileDeleted,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        Self::PrinterCreated,
        Self::FilamentCreated,
        Self::FilamentUpdated,
        Self::JobCreated,
        Self::JobStatus,
        Self::PrinterUpdated,
        Self::JobUpdated,
        Self::FileAdded,
        Self::FileDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrinterCreated => "printer.created",
            Self::FilamentCreated => "filament.created",
            Self::FilamentUpdated => "filament.updated",
            Self::JobCreated => "job.created",
            Self::JobStatus => "job.status",
            Self::PrinterUpdated => "printer.updated",
            Self::JobUpdated => "job.updated",
            Self::FileAdded => "file.added",
            Self::FileDeleted => "file.deleted",
        }
    }
}

/// A command the farm's rules refuse. Every replica refuses it the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("a {kind} with id '{id}' already exists")]
    DuplicateId { kind: EntityKind, id: Id },
    #[error("no printer with id '{0}'")]
    UnknownPrinter(Id),
    #[error("no filament with id '{0}'")]
    UnknownFilament(Id),
    #[error("no print job with id '{0}'")]
    UnknownJob(Id),
    #[error("no token with id '{0}'")]
    UnknownToken(Id),
    #[error("the job needs {requested} g but filament '{filament_id}' has only {available} g available (remaining minus what queued and running jobs reserve)")]
    InsufficientFilament {
        filament_id: Id,
        requested: u64,
        available: u64,
    },
    #[error("a {from} job cannot become {to}")]
    IllegalTransition { from: JobStatus, to: JobStatus },
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// `If-Match` named another version of the job than the one it has now.
    #[error("print job '{job_id}' changed since it was read (If-Match): it is now {current}; read it again")]
    JobChanged { job_id: Id, current: String },
    #[error("no file with id '{0}'")]
    UnknownFile(Id),
    #[error("file '{0}' does not say how much filament it uses (its slicer wrote no grams): give print_weight_in_grams")]
    FileWithoutWeight(Id),
    #[error("file '{file_id}' is used by print job '{job_id}', which is queued or running")]
    FileInUse { file_id: Id, job_id: Id },
    #[error("printer '{0}' has no connection")]
    NotConnected(Id),
    /// A report of a driver deposed by a later leader (see `Command::Drive`).
    #[error("a driver of term {term} may no longer act: the driver of term {current} has")]
    Fenced { term: u64, current: u64 },
    #[error("print job '{job_id}' is driven by its printer, which reports when it runs and ends; it can only be canceled")]
    DrivenByPrinter { job_id: Id },
    #[error("print job '{job_id}' cannot be sent to its printer: {why}")]
    NotDispatchable { job_id: Id, why: String },
    /// A manual move of a job the farm queue has not given a printer yet.
    #[error(
        "print job '{job_id}' waits for a printer that fits it: it has no printer to run on yet"
    )]
    Unassigned { job_id: Id },
    #[error("filament '{filament_id}' is loaded on printer '{printer_id}': unload it there first")]
    SpoolLoadedElsewhere { filament_id: Id, printer_id: Id },
    #[error("print job '{job_id}' is not waiting in the queue: it is {status}{sent}", sent = if *.dispatched { ", sent to its printer" } else { "" })]
    NotWaiting {
        job_id: Id,
        status: JobStatus,
        dispatched: bool,
    },
}

impl Rejection {
    /// The request field the rejection is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::DuplicateId { .. } => Some("id"),
            Self::UnknownPrinter(_) => Some("printer_id"),
            Self::UnknownFilament(_) => Some("filament_id"),
            Self::InsufficientFilament { .. } => Some("print_weight_in_grams"),
            Self::IllegalTransition { .. } => Some("status"),
            Self::UnknownJob(_) | Self::UnknownToken(_) | Self::IdempotencyKeyReused => None,
            Self::JobChanged { .. } => Some("If-Match"),
            Self::UnknownFile(_) => Some("file_id"),
            Self::FileWithoutWeight(_) => Some("print_weight_in_grams"),
            Self::DrivenByPrinter { .. } | Self::Unassigned { .. } => Some("status"),
            Self::SpoolLoadedElsewhere { .. } => Some("filament_id"),
            Self::NotWaiting { .. } => None,
            Self::FileInUse { .. }
            | Self::NotConnected(_)
            | Self::Fenced { .. }
            | Self::NotDispatchable { .. } => None,
        }
    }
}

/// The kinds of farm object, for messages and change tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    Printer,
    Filament,
    PrintJob,
    Token,
    File,
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Printer => "printer",
            Self::Filament => "filament",
            Self::PrintJob => "print job",
            Self::Token => "token",
            Self::File => "file",
        })
    }
}

/// A key whose stored value changed (or vanished) since the last [`FarmState::take_changes`].
/// The storage layer writes exactly these rows, so an apply costs O(change), not O(farm).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Printer(Id),
    Filament(Id),
    PrintJob(Id),
    Idempotency(String),
    Token(Id),
    File(Id),
    /// A printer's sealed API key.
    PrinterKey(Id),
    /// The fencing term of the printers' driver.
    DriverTerm,
}

/// What the cluster remembers about a used idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub fingerprint: u64,
    pub first_seen_ms: u64,
    pub outcome: Outcome,
}

/// The whole farm in a plain, serialisable form: the snapshot format, and what the
/// storage layer loads at start-up. Vectors are in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FarmSnapshot {
    pub printers: Vec<Printer>,
    pub filaments: Vec<Filament>,
    pub print_jobs: Vec<PrintJob>,
    pub idempotency: Vec<(String, IdempotencyRecord)>,
    pub clock_ms: u64,
    /// API tokens (absent from snapshots made before tokens existed).
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// Stored G-code files (absent from snapshots made before files existed).
    #[serde(default)]
    pub files: Vec<GcodeFile>,
    /// Printers' sealed API keys, by printer id.
    #[serde(default)]
    pub printer_keys: Vec<(Id, SealedSecret)>,
    /// The term of the last driver that wrote (see `Command::Drive`).
    #[serde(default)]
    pub driver_term: u64,
}

/// The farm: printers, spools, jobs and idempotency records, plus derived indexes.
#[derive(Debug, Clone, Default)]
pub struct FarmState {
    printers: BTreeMap<Id, Printer>,
    filaments: BTreeMap<Id, Filament>,
    jobs: BTreeMap<Id, PrintJob>,
    idempotency: BTreeMap<String, IdempotencyRecord>,
    tokens: BTreeMap<Id, ApiToken>,
    files: BTreeMap<Id, GcodeFile>,
    printer_keys: BTreeMap<Id, SealedSecret>,
    /// Reports of drivers of an earlier term are refused (`Command::Drive`).
    driver_term: u64,
    /// The largest `at_ms` applied so far: leaders' clocks differ, this never goes back.
    clock_ms: u64,
    // Derived, rebuilt by `from_snapshot`:
    reserved: BTreeMap<Id, u64>,
    /// Job ids by status, printer and spool: a filtered page walks only jobs it may show
    /// (the few running jobs of a farm with a year of finished ones).
    jobs_by_status: BTreeMap<JobStatus, IdSet>,
    jobs_by_printer: BTreeMap<Id, IdSet>,
    jobs_by_filament: BTreeMap<Id, IdSet>,
    /// The queued jobs in the order printers take them (`domain::queue`).
    queue: BTreeSet<QueueKey>,
    idempotency_by_age: BTreeSet<(u64, String)>,
    token_by_hash: BTreeMap<String, Id>,
    digest: u64,
    changes: BTreeSet<Change>,
    /// What the proposals applied since the last [`FarmState::take_events`] changed.
    events: Vec<FarmEvent>,
}

/// A [`FarmState`] being rebuilt ([`FarmState::restore`]). Give it the items in the
/// snapshot's order (printers, spools, jobs, idempotency records, tokens, files, keys),
/// each kind in id order, then [`FarmRestore::finish`].
pub struct FarmRestore(FarmState);

impl FarmRestore {
    pub fn printer(&mut self, printer: Printer) {
        self.0.put_printer(printer);
    }
    pub fn filament(&mut self, filament: Filament) {
        self.0.put_filament(filament);
    }
    pub fn job(&mut self, job: PrintJob) {
        self.0.put_job(job);
    }
    pub fn idempotency(&mut self, key: String, record: IdempotencyRecord) {
        self.0.put_idempotency(key, record);
    }
    pub fn token(&mut self, token: ApiToken) {
        self.0.put_token(token);
    }
    pub fn file(&mut self, file: GcodeFile) {
        self.0.put_file(file);
    }
    pub fn printer_key(&mut self, printer_id: Id, key: SealedSecret) {
        self.0.put_printer_key(printer_id, key);
    }
    /// The state, with nothing to report as changed (it was restored, not applied).
    pub fn finish(mut self) -> FarmState {
        self.0.changes.clear();
        self.0.events.clear();
        self.0
    }
}

impl FarmState {
    /// Rebuilds a state (and its derived indexes) from its plain form.
    pub fn from_snapshot(snapshot: FarmSnapshot) -> Self {
        let mut restore = Self::restore(snapshot.clock_ms, snapshot.driver_term);
        snapshot
            .printers
            .into_iter()
            .for_each(|p| restore.printer(p));
        snapshot
            .filaments
            .into_iter()
            .for_each(|f| restore.filament(f));
        snapshot.print_jobs.into_iter().for_each(|j| restore.job(j));
        for (key, record) in snapshot.idempotency {
            restore.idempotency(key, record);
        }
        snapshot.tokens.into_iter().for_each(|t| restore.token(t));
        snapshot.files.into_iter().for_each(|f| restore.file(f));
        for (printer_id, key) in snapshot.printer_keys {
            restore.printer_key(printer_id, key);
        }
        restore.finish()
    }

    /// Starts rebuilding a state one stored item at a time ([`FarmRestore`]), as
    /// [`Self::from_snapshot`] does from a whole [`FarmSnapshot`]: a store loading its
    /// rows never holds the farm twice (a snapshot's vectors beside the maps built from
    /// them were ~60 MiB at 300k jobs).
    pub fn restore(clock_ms: u64, driver_term: u64) -> FarmRestore {
        FarmRestore(Self {
            clock_ms,
            driver_term,
            ..Self::default()
        })
    }

    /// The plain form of this state (the snapshot format).
    pub fn to_snapshot(&self) -> FarmSnapshot {
        FarmSnapshot {
            printers: self.printers.values().cloned().collect(),
            filaments: self.filaments.values().cloned().collect(),
            print_jobs: self.jobs.values().cloned().collect(),
            idempotency: self
                .idempotency
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            clock_ms: self.clock_ms,
            tokens: self.tokens.values().cloned().collect(),
            files: self.files.values().cloned().collect(),
            printer_keys: self
                .printer_keys
                .iter()
                .map(|(id, key)| (id.clone(), key.clone()))
                .collect(),
            driver_term: self.driver_term,
        }
    }

    /// Applies one committed proposal. Deterministic; never panics.
    pub fn apply(&mut self, proposal: &Proposal) -> Outcome {
        self.advance_clock(proposal.at_ms);
        if let Some(claim) = &proposal.idempotency {
            if let Some(record) = self.idempotency.get(&claim.key) {
                return if record.fingerprint == claim.fingerprint {
                    record.outcome.clone()
                } else {
                    Outcome::Rejected(Rejection::IdempotencyKeyReused)
                };
            }
        }
        let outcome = match &proposal.command {
            Command::CreatePrinter(printer) => self.create_printer(printer),
            Command::CreateFilament(filament) => self.create_filament(filament),
            Command::CreatePrintJob(job) => self.create_job(job),
            Command::CreatePrintJobs(jobs) => self.create_jobs(jobs),
            Command::PlaceInQueue { job_id, place } => self.place_in_queue(job_id, place),
            Command::LoadSpool {
                printer_id,
                filament_id,
            } => self.load_spool(printer_id, filament_id.as_ref()),
            Command::ClearBed { printer_id } => self.clear_bed(printer_id),
            Command::SetJobStatus {
                job_id,
                status,
                if_match,
            } => self.set_job_status(job_id, *status, if_match.as_deref()),
            Command::CreateToken(token) => self.create_token(token),
            Command::RevokeToken { token_id } => self.revoke_token(token_id),
            Command::RevokeBootstrapToken { secret_sha256 } => {
                self.revoke_bootstrap_token(secret_sha256)
            }
            Command::ConnectPrinter {
                printer_id,
                connection,
                api_key,
            } => self.connect_printer(printer_id, Some(connection), api_key.as_ref()),
            Command::DisconnectPrinter { printer_id } => {
                self.connect_printer(printer_id, None, None)
            }
            Command::AddFile(file) => self.add_file(file),
            Command::DeleteFile { file_id } => self.delete_file(file_id),
            Command::Drive { term, report } => self.drive(*term, report),
        };
        if let Some(claim) = &proposal.idempotency {
            self.remember(claim, outcome.clone());
        }
        outcome
    }

    /// The changes of the proposals applied since the last call, in apply order.
    pub fn take_events(&mut self) -> Vec<FarmEvent> {
        std::mem::take(&mut self.events)
    }

    /// The keys changed since the last call, in a deterministic order.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes).into_iter().collect()
    }

    pub fn printer(&self, id: &Id) -> Option<&Printer> {
        self.printers.get(id)
    }
    pub fn printers(&self) -> impl Iterator<Item = &Printer> {
        self.printers.values()
    }
    pub fn filament(&self, id: &Id) -> Option<FilamentView> {
        self.filaments.get(id).map(|f| self.view(f))
    }
    pub fn filaments(&self) -> impl Iterator<Item = FilamentView> + '_ {
        self.filaments.values().map(|f| self.view(f))
    }
    pub fn job(&self, id: &Id) -> Option<&PrintJob> {
        self.jobs.get(id)
    }
    pub fn jobs(&self) -> impl Iterator<Item = &PrintJob> {
        self.jobs.values()
    }
    /// Printers in `paging`'s order, after its cursor (the caller takes its limit).
    pub fn printers_from<'a>(&'a self, paging: &Paging) -> impl Iterator<Item = &'a Printer> + 'a {
        walk(&self.printers, paging).map(|(_, printer)| printer)
    }

    /// Spools in `paging`'s order, after its cursor.
    pub fn filaments_from<'a>(
        &'a self,
        paging: &Paging,
    ) -> impl Iterator<Item = FilamentView> + 'a {
        walk(&self.filaments, paging).map(|(_, filament)| self.view(filament))
    }

    /// The jobs `filter` lets through, in `paging`'s order, after its cursor. Walks the
    /// smallest index among the filters given, so a page of the 5 running jobs among
    /// 100,000 costs 5 lookups, not a scan.
    pub fn jobs_from<'a>(
        &'a self,
        filter: &'a JobFilter,
        paging: &Paging,
    ) -> Box<dyn Iterator<Item = &'a PrintJob> + 'a> {
        let empty = &EMPTY_IDS;
        let candidates = [
            filter
                .status
                .map(|s| self.jobs_by_status.get(&s).unwrap_or(empty)),
            filter
                .printer_id
                .as_ref()
                .map(|p| self.jobs_by_printer.get(p).unwrap_or(empty)),
            filter
                .filament_id
                .as_ref()
                .map(|f| self.jobs_by_filament.get(f).unwrap_or(empty)),
        ];
        let smallest = candidates.into_iter().flatten().min_by_key(|ids| ids.len());
        match smallest {
            None => Box::new(walk(&self.jobs, paging).map(|(_, job)| job)),
            Some(ids) => Box::new(
                walk(ids, paging)
                    .filter_map(|(id, ())| self.jobs.get(id))
                    .filter(move |job| filter.matches(job)),
            ),
        }
    }

    /// Jobs per status, from the index (the overview's counts without a scan).
    pub fn job_count(&self, status: JobStatus) -> usize {
        self.jobs_by_status.get(&status).map_or(0, BTreeMap::len)
    }

    pub fn idempotency_record(&self, key: &str) -> Option<&IdempotencyRecord> {
        self.idempotency.get(key)
    }
    pub fn raw_filament(&self, id: &Id) -> Option<&Filament> {
        self.filaments.get(id)
    }
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }
    pub fn token(&self, id: &Id) -> Option<&ApiToken> {
        self.tokens.get(id)
    }
    pub fn tokens(&self) -> impl Iterator<Item = &ApiToken> {
        self.tokens.values()
    }
    /// The token whose secret hashes to `secret_sha256` (lowercase hex), if any.
    pub fn token_by_secret_hash(&self, secret_sha256: &str) -> Option<&ApiToken> {
        let id = self.token_by_hash.get(secret_sha256)?;
        self.tokens.get(id)
    }
    pub fn file(&self, id: &Id) -> Option<&GcodeFile> {
        self.files.get(id)
    }
    /// Files in `paging`'s order, after its cursor.
    pub fn files_from<'a>(&'a self, paging: &Paging) -> impl Iterator<Item = &'a GcodeFile> + 'a {
        walk(&self.files, paging).map(|(_, file)| file)
    }
    pub fn files(&self) -> impl Iterator<Item = &GcodeFile> {
        self.files.values()
    }
    /// A printer's sealed API key, if its connection has one.
    pub fn printer_key(&self, printer_id: &Id) -> Option<&SealedSecret> {
        self.printer_keys.get(printer_id)
    }
    pub fn driver_term(&self) -> u64 {
        self.driver_term
    }

    /// The queued and running jobs of a printer (from the smaller index).
    pub fn live_jobs_of<'a>(
        &'a self,
        printer_id: &'a Id,
    ) -> impl Iterator<Item = &'a PrintJob> + 'a {
        let of_printer = self.jobs_by_printer.get(printer_id).unwrap_or(&EMPTY_IDS);
        let live = [JobStatus::Queued, JobStatus::Running]
            .map(|s| self.jobs_by_status.get(&s).unwrap_or(&EMPTY_IDS));
        let live_count = live[0].len() + live[1].len();
        let ids: Box<dyn Iterator<Item = &Id>> = match of_printer.len() < live_count {
            true => Box::new(of_printer.keys()),
            false => Box::new(live[0].keys().chain(live[1].keys())),
        };
        ids.filter_map(|id| self.jobs.get(id))
            .filter(move |job| job.printer_id.as_ref() == Some(printer_id))
            .filter(|job| job.status.reserves_filament())
    }

    /// The job a printer's driver is responsible for: one it dispatched that is still
    /// queued or running. At most one, as the driver dispatches only to an idle printer
    /// with no such job; the oldest dispatch wins should there ever be two.
    pub fn dispatched_job_of<'a>(&'a self, printer_id: &'a Id) -> Option<&'a PrintJob> {
        self.live_jobs_of(printer_id)
            .filter(|job| job.dispatch.is_some())
            .min_by_key(|job| (job.dispatch.map(|d| d.at), &job.id))
    }

    /// The job an idle printer should print next: the first of the queue, not yet sent
    /// anywhere, that it fits (`domain::queue::spool_for`). Jobs with only a `filepath`
    /// are moved by hand: there is nothing to send.
    pub fn next_job_for(&self, printer_id: &Id) -> Option<&PrintJob> {
        let printer = self.printers.get(printer_id)?;
        let loaded = self.loaded_spool(printer);
        self.queued_jobs()
            .filter(|job| job.dispatch.is_none())
            .find(|job| queue::spool_for(job, printer, loaded).is_ok())
    }

    /// The queued jobs in queue order.
    pub fn queued_jobs(&self) -> impl Iterator<Item = &PrintJob> + '_ {
        self.queue.iter().filter_map(|(_, _, id)| self.jobs.get(id))
    }

    /// The queue after `after` (a job, queued or not: its place when it left), in
    /// `order`, for `GET /api/v1/queue`.
    pub fn queue_from<'a>(
        &'a self,
        paging: &Paging,
    ) -> Box<dyn Iterator<Item = &'a PrintJob> + 'a> {
        let after = paging.after.as_ref().map(|id| match self.jobs.get(id) {
            Some(job) => queue::queue_key(job),
            // An id that never was a job: by its id alone, among unranked jobs.
            None => (i64::MIN, None, id.clone()),
        });
        let keys: Box<dyn Iterator<Item = &QueueKey>> = match (after, paging.order) {
            (None, Order::Asc) => Box::new(self.queue.iter()),
            (None, Order::Desc) => Box::new(self.queue.iter().rev()),
            (Some(key), Order::Asc) => {
                Box::new(self.queue.range((Bound::Excluded(key), Bound::Unbounded)))
            }
            (Some(key), Order::Desc) => Box::new(
                self.queue
                    .range((Bound::Unbounded, Bound::Excluded(key)))
                    .rev(),
            ),
        };
        Box::new(keys.filter_map(|(_, _, id)| self.jobs.get(id)))
    }

    /// The spool a printer says it has, with what its jobs leave of it.
    fn loaded_spool(&self, printer: &Printer) -> Option<LoadedSpool<'_>> {
        let filament = self.filaments.get(printer.loaded_filament_id.as_ref()?)?;
        Some(LoadedSpool {
            filament,
            available_grams: self.view(filament).available_weight_in_grams,
        })
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.printers.len(), self.filaments.len(), self.jobs.len())
    }

    /// A digest of everything replicated, independent of insertion order: equal on two
    /// replicas at the same applied index, or they have diverged.
    pub fn digest(&self) -> u64 {
        self.digest
            ^ fnv1a(&[
                &self.clock_ms.to_le_bytes(),
                &self.driver_term.to_le_bytes(),
            ])
    }

    /// Grams of a filament held by its `Queued` and `Running` jobs.
    pub fn reserved(&self, filament_id: &Id) -> u64 {
        self.reserved.get(filament_id).copied().unwrap_or(0)
    }

    fn view(&self, filament: &Filament) -> FilamentView {
        let reserved = self.reserved(&filament.id);
        FilamentView {
            filament: filament.clone(),
            reserved_weight_in_grams: reserved,
            available_weight_in_grams: filament.remaining_weight_in_grams.saturating_sub(reserved),
        }
    }

    fn create_printer(&mut self, printer: &Printer) -> Outcome {
        if self.printers.contains_key(&printer.id) {
            return duplicate(EntityKind::Printer, &printer.id);
        }
        self.put_printer(printer.clone());
        self.emit(EventKind::PrinterCreated, Entity::Printer(printer.clone()));
        Outcome::Created(Entity::Printer(printer.clone()))
    }

    fn create_filament(&mut self, filament: &Filament) -> Outcome {
        if self.filaments.contains_key(&filament.id) {
            return duplicate(EntityKind::Filament, &filament.id);
        }
        self.put_filament(filament.clone());
        let view = Entity::Filament(self.view(filament));
        self.emit(EventKind::FilamentCreated, view.clone());
        Outcome::Created(view)
    }

    fn create_job(&mut self, job: &PrintJob) -> Outcome {
        match self.check_new_job(job, 0) {
            Err(rejection) => Outcome::Rejected(rejection),
            Ok(()) => Outcome::Created(Entity::PrintJob(self.queue_job(job))),
        }
    }

    /// Copies of one print: checked together (their weights add up on their spool),
    /// queued together, one after the other.
    fn create_jobs(&mut self, jobs: &[PrintJob]) -> Outcome {
        let mut ids = BTreeSet::new();
        let mut reserving: BTreeMap<&Id, u64> = BTreeMap::new();
        for job in jobs {
            if !ids.insert(&job.id) {
                return duplicate(EntityKind::PrintJob, &job.id);
            }
            let before = job
                .filament_id
                .as_ref()
                .and_then(|f| reserving.get(f).copied())
                .unwrap_or(0);
            if let Err(rejection) = self.check_new_job(job, before) {
                return Outcome::Rejected(rejection);
            }
            if let Some(filament) = &job.filament_id {
                *reserving.entry(filament).or_insert(0) += job.print_weight_in_grams;
            }
        }
        let queued = jobs.iter().map(|job| self.queue_job(job)).collect();
        Outcome::Created(Entity::PrintJobs(queued))
    }

    /// Whether `job` may be queued, `reserving` grams of its spool being taken already
    /// by copies queued with it.
    fn check_new_job(&self, job: &PrintJob, reserving: u64) -> Result<(), Rejection> {
        if self.jobs.contains_key(&job.id) {
            return Err(Rejection::DuplicateId {
                kind: EntityKind::PrintJob,
                id: job.id.clone(),
            });
        }
        if let Some(printer_id) = job
            .printer_id
            .as_ref()
            .filter(|id| !self.printers.contains_key(*id))
        {
            return Err(Rejection::UnknownPrinter(printer_id.clone()));
        }
        if let Some(file_id) = job
            .file_id
            .as_ref()
            .filter(|id| !self.files.contains_key(*id))
        {
            return Err(Rejection::UnknownFile(file_id.clone()));
        }
        // A job of a material reserves its grams when a printer takes it; one of a spool
        // reserves them now.
        let Some(filament_id) = &job.filament_id else {
            return Ok(());
        };
        let Some(filament) = self.filaments.get(filament_id) else {
            return Err(Rejection::UnknownFilament(filament_id.clone()));
        };
        let available = self
            .view(filament)
            .available_weight_in_grams
            .saturating_sub(reserving);
        if job.print_weight_in_grams > available {
            return Err(Rejection::InsufficientFilament {
                filament_id: filament_id.clone(),
                requested: job.print_weight_in_grams,
                available,
            });
        }
        Ok(())
    }

    /// Stores a checked new job at the end of the queue.
    fn queue_job(&mut self, job: &PrintJob) -> PrintJob {
        // A new job always starts queued, whatever the proposal carried, at the time
        // of the proposal (see `domain::time`), last in the queue.
        let last = self.queue.iter().next_back().map(|(rank, _, _)| *rank);
        let job = PrintJob {
            status: JobStatus::Queued,
            created_at: Some(self.now()),
            started_at: None,
            finished_at: None,
            dispatch: None,
            reason: None,
            queue_rank: queue::rank_between(last, None).or(last),
            ..job.clone()
        };
        self.put_job(job.clone());
        self.emit(EventKind::JobCreated, Entity::PrintJob(job.clone()));
        self.emit_filament(job.filament_id.as_ref());
        job
    }

    fn create_token(&mut self, token: &ApiToken) -> Outcome {
        // Two tokens with one secret could not be told apart: refused like a reused id
        // (with 256 random bits it never happens by chance).
        if self.tokens.contains_key(&token.id)
            || self.token_by_hash.contains_key(&token.secret_sha256)
        {
            return duplicate(EntityKind::Token, &token.id);
        }
        self.put_token(token.clone());
        Outcome::Created(Entity::Token(token.clone()))
    }

    /// Revoked tokens stay, marked: revoking one again answers the same.
    fn revoke_token(&mut self, token_id: &Id) -> Outcome {
        let Some(token) = self.tokens.get(token_id) else {
            return Outcome::Rejected(Rejection::UnknownToken(token_id.clone()));
        };
        if token.revoked_ms.is_some() {
            return Outcome::Updated(Entity::Token(token.clone()));
        }
        let revoked = ApiToken {
            revoked_ms: Some(self.clock_ms),
            ..token.clone()
        };
        self.put_token(revoked.clone());
        Outcome::Updated(Entity::Token(revoked))
    }

    fn revoke_bootstrap_token(&mut self, secret_sha256: &str) -> Outcome {
        let id = Id::parse(crate::domain::BOOTSTRAP_TOKEN_ID)
            .unwrap_or_else(|_| unreachable!("a valid id"));
        if let Some(token) = self.tokens.get(&id) {
            return Outcome::Updated(Entity::Token(token.clone()));
        }
        let token = ApiToken {
            id,
            name: crate::domain::Text::parse("admin token of raft3d init")
                .unwrap_or_else(|_| unreachable!("valid text")),
            role: crate::domain::AccessRole::Admin,
            secret_sha256: secret_sha256.to_owned(),
            created_ms: 0,
            revoked_ms: Some(self.clock_ms),
        };
        self.put_token(token.clone());
        Outcome::Updated(Entity::Token(token))
    }

    fn set_job_status(
        &mut self,
        job_id: &Id,
        next: JobStatus,
        if_match: Option<&[u64]>,
    ) -> Outcome {
        let Some(job) = self.jobs.get(job_id) else {
            return Outcome::Rejected(Rejection::UnknownJob(job_id.clone()));
        };
        if let Some(accepted) = if_match {
            let current = crate::api::etag::of(job);
            if !accepted.contains(&current) {
                return Outcome::Rejected(Rejection::JobChanged {
                    job_id: job_id.clone(),
                    current: crate::api::etag::header_value(current),
                });
            }
        }
        if !job.status.can_become(next) {
            return Outcome::Rejected(Rejection::IllegalTransition {
                from: job.status,
                to: next,
            });
        }
        if job.dispatch.is_some() && next != JobStatus::Canceled {
            return Outcome::Rejected(Rejection::DrivenByPrinter {
                job_id: job_id.clone(),
            });
        }
        if next == JobStatus::Running && (job.printer_id.is_none() || job.filament_id.is_none()) {
            return Outcome::Rejected(Rejection::Unassigned {
                job_id: job_id.clone(),
            });
        }
        let job = job.clone();
        self.move_job(job, next, None)
    }

    /// Moves a job to `next` (already checked), stamping its times; `Done` deducts its
    /// weight from its spool.
    fn move_job(&mut self, job: PrintJob, next: JobStatus, reason: Option<Text>) -> Outcome {
        let now = Some(self.now());
        let job = PrintJob {
            status: next,
            started_at: if next == JobStatus::Running
                || (next == JobStatus::Done && job.started_at.is_none())
            {
                now
            } else {
                job.started_at
            },
            finished_at: if next.is_final() {
                now
            } else {
                job.finished_at
            },
            reason: reason.or(job.reason),
            ..job
        };
        if next == JobStatus::Done {
            if let Some(filament) = job.filament_id.as_ref().and_then(|f| self.filaments.get(f)) {
                // Cannot underflow: the weight was reserved out of `remaining`, and
                // reservations never exceed it. Saturating keeps that a non-panic anyway.
                let filament = Filament {
                    remaining_weight_in_grams: filament
                        .remaining_weight_in_grams
                        .saturating_sub(job.print_weight_in_grams),
                    ..filament.clone()
                };
                // Order matters: release the reservation (inside put_job) after lowering
                // remaining, both within this one apply, so no reader sees a half state.
                self.put_filament(filament);
            }
        }
        self.put_job(job.clone());
        self.emit(EventKind::JobStatus, Entity::PrintJob(job.clone()));
        if next != JobStatus::Running {
            // Running keeps the reservation; finishing or canceling changes the spool.
            self.emit_filament(job.filament_id.as_ref());
        }
        if next.is_final() && job.dispatch.is_some() {
            self.await_clear(&job);
        }
        Outcome::Updated(Entity::PrintJob(job))
    }

    /// A job sent to its printer ended: whatever it left on the bed (a print, a failed
    /// one, a cancelled start) must be taken off before the next print, unless the
    /// printer clears its own bed. Ended before it started, a print may still have left
    /// something (the start can reach the printer just before a cancel): a person looks.
    fn await_clear(&mut self, job: &PrintJob) {
        let Some(printer) = job.printer_id.as_ref().and_then(|p| self.printers.get(p)) else {
            return;
        };
        let clears_itself = printer.connection.as_ref().is_some_and(|c| c.self_clearing);
        if clears_itself {
            return;
        }
        let printer = Printer {
            awaiting_clear: Some(BedWait {
                job_id: job.id.clone(),
                since: Some(self.now()),
            }),
            ..printer.clone()
        };
        self.put_printer(printer.clone());
        self.emit(EventKind::PrinterUpdated, Entity::Printer(printer));
    }

    fn clear_bed(&mut self, printer_id: &Id) -> Outcome {
        let Some(printer) = self.printers.get(printer_id) else {
            return Outcome::Rejected(Rejection::UnknownPrinter(printer_id.clone()));
        };
        if printer.awaiting_clear.is_none() {
            return Outcome::Updated(Entity::Printer(printer.clone()));
        }
        let printer = Printer {
            awaiting_clear: None,
            ..printer.clone()
        };
        self.put_printer(printer.clone());
        self.emit(EventKind::PrinterUpdated, Entity::Printer(printer.clone()));
        Outcome::Updated(Entity::Printer(printer))
    }

    /// Says which spool is on a printer. A spool is on one printer at a time: loading it
    /// on a second is refused until it is unloaded from the first.
    fn load_spool(&mut self, printer_id: &Id, filament_id: Option<&Id>) -> Outcome {
        let Some(printer) = self.printers.get(printer_id) else {
            return Outcome::Rejected(Rejection::UnknownPrinter(printer_id.clone()));
        };
        if let Some(filament_id) = filament_id {
            if !self.filaments.contains_key(filament_id) {
                return Outcome::Rejected(Rejection::UnknownFilament(filament_id.clone()));
            }
            let elsewhere = self.printers.values().find(|p| {
                p.id != *printer_id && p.loaded_filament_id.as_ref() == Some(filament_id)
            });
            if let Some(other) = elsewhere {
                return Outcome::Rejected(Rejection::SpoolLoadedElsewhere {
                    filament_id: filament_id.clone(),
                    printer_id: other.id.clone(),
                });
            }
        }
        if printer.loaded_filament_id.as_ref() == filament_id {
            return Outcome::Updated(Entity::Printer(printer.clone()));
        }
        let printer = Printer {
            loaded_filament_id: filament_id.cloned(),
            ..printer.clone()
        };
        self.put_printer(printer.clone());
        self.emit(EventKind::PrinterUpdated, Entity::Printer(printer.clone()));
        Outcome::Updated(Entity::Printer(printer))
    }

    /// Moves a job that waits in the queue (queued, not sent to a printer) to `place`.
    fn place_in_queue(&mut self, job_id: &Id, place: &QueuePlace) -> Outcome {
        let job = match self.waiting_job(job_id) {
            Ok(job) => job.clone(),
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        let others: Vec<(i64, Id)> = self
            .queue
            .iter()
            .filter(|(_, _, id)| id != job_id)
            .map(|(rank, _, id)| (*rank, id.clone()))
            .collect();
        let at = match place {
            QueuePlace::First => 0,
            QueuePlace::Last => others.len(),
            QueuePlace::Before(anchor) | QueuePlace::After(anchor) => {
                if anchor == job_id {
                    return Outcome::Updated(Entity::PrintJob(job));
                }
                let Some(index) = others.iter().position(|(_, id)| id == anchor) else {
                    return Outcome::Rejected(match self.waiting_job(anchor) {
                        Err(rejection) => rejection,
                        // Queued jobs are all in the queue; dispatched ones too.
                        Ok(_) => Rejection::UnknownJob(anchor.clone()),
                    });
                };
                index + usize::from(matches!(place, QueuePlace::After(_)))
            }
        };
        let lower = at.checked_sub(1).map(|i| others[i].0);
        let upper = others.get(at).map(|(rank, _)| *rank);
        match queue::rank_between(lower, upper) {
            Some(rank) => self.rerank(job, rank),
            None => {
                // No room between the neighbours: number the whole queue afresh, the job
                // at its new place.
                let mut order: Vec<Id> = others.into_iter().map(|(_, id)| id).collect();
                order.insert(at, job_id.clone());
                for (place, id) in order.iter().enumerate() {
                    let rank = i64::try_from(place).unwrap_or(i64::MAX / RANK_GAP) * RANK_GAP;
                    if let Some(job) = self.jobs.get(id).cloned() {
                        self.rerank(job, rank);
                    }
                }
            }
        }
        match self.jobs.get(job_id) {
            Some(job) => Outcome::Updated(Entity::PrintJob(job.clone())),
            None => Outcome::Rejected(Rejection::UnknownJob(job_id.clone())),
        }
    }

    /// A job that waits in the queue: queued and not sent to any printer yet.
    fn waiting_job(&self, job_id: &Id) -> Result<&PrintJob, Rejection> {
        let job = self
            .jobs
            .get(job_id)
            .ok_or_else(|| Rejection::UnknownJob(job_id.clone()))?;
        if job.status != JobStatus::Queued || job.dispatch.is_some() {
            return Err(Rejection::NotWaiting {
                job_id: job_id.clone(),
                status: job.status,
                dispatched: job.dispatch.is_some(),
            });
        }
        Ok(job)
    }

    fn rerank(&mut self, job: PrintJob, rank: i64) {
        if job.queue_rank == Some(rank) {
            return;
        }
        let job = PrintJob {
            queue_rank: Some(rank),
            ..job
        };
        self.put_job(job.clone());
        self.emit(EventKind::JobUpdated, Entity::PrintJob(job));
    }

    /// Connects (`Some`) or disconnects (`None`) a printer. Either way its last status is
    /// forgotten: it was about the old connection.
    fn connect_printer(
        &mut self,
        printer_id: &Id,
        connection: Option<&Connection>,
        api_key: Option<&SealedSecret>,
    ) -> Outcome {
        let Some(printer) = self.printers.get(printer_id) else {
            return Outcome::Rejected(Rejection::UnknownPrinter(printer_id.clone()));
        };
        if connection.is_none() && !printer.is_connected() {
            return Outcome::Updated(Entity::Printer(printer.clone()));
        }
        let printer = Printer {
            connection: connection.cloned(),
            status: None,
            ..printer.clone()
        };
        match api_key {
            Some(key) => self.put_printer_key(printer_id.clone(), key.clone()),
            None => self.forget_printer_key(printer_id),
        }
        self.put_printer(printer.clone());
        self.emit(EventKind::PrinterUpdated, Entity::Printer(printer.clone()));
        Outcome::Updated(Entity::Printer(printer))
    }

    fn add_file(&mut self, file: &GcodeFile) -> Outcome {
        if self.files.contains_key(&file.id) {
            return duplicate(EntityKind::File, &file.id);
        }
        let file = GcodeFile {
            uploaded_at: Some(self.now()),
            ..file.clone()
        };
        self.put_file(file.clone());
        self.emit(EventKind::FileAdded, Entity::File(file.clone()));
        Outcome::Created(Entity::File(file))
    }

    fn delete_file(&mut self, file_id: &Id) -> Outcome {
        let Some(file) = self.files.get(file_id).cloned() else {
            return Outcome::Rejected(Rejection::UnknownFile(file_id.clone()));
        };
        let user = [JobStatus::Queued, JobStatus::Running]
            .iter()
            .filter_map(|status| self.jobs_by_status.get(status))
            .flat_map(BTreeMap::keys)
            .filter_map(|id| self.jobs.get(id))
            .find(|job| job.file_id.as_ref() == Some(file_id));
        if let Some(job) = user {
            return Outcome::Rejected(Rejection::FileInUse {
                file_id: file_id.clone(),
                job_id: job.id.clone(),
            });
        }
        self.forget_file(file_id);
        self.emit(EventKind::FileDeleted, Entity::File(file.clone()));
        Outcome::Updated(Entity::File(file))
    }

    /// Applies a driver's report, fenced by its term (see `Command::Drive`).
    fn drive(&mut self, term: u64, report: &DriverReport) -> Outcome {
        if term < self.driver_term {
            return Outcome::Rejected(Rejection::Fenced {
                term,
                current: self.driver_term,
            });
        }
        if term > self.driver_term {
            self.driver_term = term;
            self.changes.insert(Change::DriverTerm);
        }
        match report {
            DriverReport::Status { printer_id, status } => self.report_status(printer_id, status),
            DriverReport::Dispatching { job_id, printer_id } => {
                self.dispatch(job_id, printer_id.as_ref(), term)
            }
            DriverReport::Started { job_id } => self.driver_moves(job_id, JobStatus::Running, None),
            DriverReport::Finished { job_id, outcome } => match outcome {
                PrintOutcome::Done => self.driver_moves(job_id, JobStatus::Done, None),
                PrintOutcome::Failed { reason } => {
                    self.driver_moves(job_id, JobStatus::Canceled, Some(reason.clone()))
                }
            },
        }
    }

    fn report_status(&mut self, printer_id: &Id, status: &crate::domain::PrinterStatus) -> Outcome {
        let Some(printer) = self.printers.get(printer_id) else {
            return Outcome::Rejected(Rejection::UnknownPrinter(printer_id.clone()));
        };
        if !printer.is_connected() {
            return Outcome::Rejected(Rejection::NotConnected(printer_id.clone()));
        }
        let since = match &printer.status {
            Some(old) if old.same_report(status) => {
                return Outcome::Updated(Entity::Printer(printer.clone()))
            }
            Some(old) if old.state == status.state => old.since,
            _ => Some(self.now()),
        };
        let printer = Printer {
            status: Some(crate::domain::PrinterStatus {
                since,
                ..status.clone()
            }),
            ..printer.clone()
        };
        self.put_printer(printer.clone());
        self.emit(EventKind::PrinterUpdated, Entity::Printer(printer.clone()));
        Outcome::Updated(Entity::Printer(printer))
    }

    /// Records that the driver sends `job_id` to `printer_id` (the job's own printer
    /// when absent). Once only: a job two printers' drivers both picked goes to the first
    /// whose report is applied, the other's is refused (`driver/DESIGN.md`, rule 1).
    fn dispatch(&mut self, job_id: &Id, printer_id: Option<&Id>, term: u64) -> Outcome {
        let Some(job) = self.jobs.get(job_id) else {
            return Outcome::Rejected(Rejection::UnknownJob(job_id.clone()));
        };
        let refuse = |why: String| {
            Outcome::Rejected(Rejection::NotDispatchable {
                job_id: job_id.clone(),
                why,
            })
        };
        if job.status != JobStatus::Queued {
            return refuse("it is not queued".to_owned());
        }
        if job.dispatch.is_some() {
            return refuse("it was sent to a printer already".to_owned());
        }
        let Some(printer) = printer_id.or(job.printer_id.as_ref()) else {
            return refuse("no printer was named".to_owned());
        };
        let Some(printer) = self.printers.get(printer) else {
            return Outcome::Rejected(Rejection::UnknownPrinter(printer.clone()));
        };
        if let Some(busy) = self.dispatched_job_of(&printer.id) {
            return refuse(format!("the printer has job '{}' to print first", busy.id));
        }
        let spool = match queue::spool_for(job, printer, self.loaded_spool(printer)) {
            Ok(spool) => spool,
            Err(unfit) => return refuse(unfit.to_string()),
        };
        let reserves = job.filament_id.is_none();
        let job = PrintJob {
            printer_id: Some(printer.id.clone()),
            filament_id: Some(spool),
            dispatch: Some(Dispatch {
                term,
                at: self.now(),
            }),
            ..job.clone()
        };
        self.put_job(job.clone());
        self.emit(EventKind::JobUpdated, Entity::PrintJob(job.clone()));
        if reserves {
            self.emit_filament(job.filament_id.as_ref());
        }
        Outcome::Updated(Entity::PrintJob(job))
    }

    /// A move its printer reported. Idempotent: reporting what the job already is (a new
    /// driver reconciling after a failover) changes nothing; a job that ended is left as
    /// it ended (a user's cancel wins over a late report).
    fn driver_moves(&mut self, job_id: &Id, next: JobStatus, reason: Option<Text>) -> Outcome {
        let Some(job) = self.jobs.get(job_id) else {
            return Outcome::Rejected(Rejection::UnknownJob(job_id.clone()));
        };
        if job.status == next || job.status.is_final() {
            return Outcome::Updated(Entity::PrintJob(job.clone()));
        }
        if job.dispatch.is_none() {
            return Outcome::Rejected(Rejection::NotDispatchable {
                job_id: job_id.clone(),
                why: "it was never dispatched".to_owned(),
            });
        }
        // A print can end before its driver saw it run (a short print, a failover):
        // Queued -> Done/Canceled is then legal for the driver.
        let job = job.clone();
        self.move_job(job, next, reason)
    }

    fn emit(&mut self, kind: EventKind, data: Entity) {
        self.events.push(FarmEvent { kind, data });
    }

    fn emit_filament(&mut self, id: Option<&Id>) {
        if let Some(view) = id.and_then(|id| self.filament(id)) {
            self.emit(EventKind::FilamentUpdated, Entity::Filament(view));
        }
    }

    fn remember(&mut self, claim: &IdempotencyClaim, outcome: Outcome) {
        let record = IdempotencyRecord {
            fingerprint: claim.fingerprint,
            first_seen_ms: self.clock_ms,
            outcome,
        };
        self.put_idempotency(claim.key.clone(), record);
        while self.idempotency.len() > MAX_IDEMPOTENCY_RECORDS {
            let Some((_, oldest)) = self.idempotency_by_age.iter().next().cloned() else {
                break;
            };
            self.forget_idempotency(&oldest);
        }
    }

    /// The time of the proposal being applied: the largest proposer's stamp so far.
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_ms(self.clock_ms)
    }

    fn advance_clock(&mut self, at_ms: u64) {
        self.clock_ms = self.clock_ms.max(at_ms);
        let horizon = self.clock_ms.saturating_sub(IDEMPOTENCY_RETENTION_MS);
        while let Some((seen, key)) = self.idempotency_by_age.iter().next().cloned() {
            if seen >= horizon {
                break;
            }
            self.forget_idempotency(&key);
        }
    }

    // The put_/forget_ helpers are the only writers of the maps: they keep the derived
    // indexes (reservations, idempotency ages, digest) and the change set in step.

    fn put_printer(&mut self, printer: Printer) {
        let id = printer.id.clone();
        self.digest = self.digest.wrapping_add(hash("printer", &printer));
        if let Some(old) = self.printers.insert(id.clone(), printer) {
            self.digest = self.digest.wrapping_sub(hash("printer", &old));
        }
        self.changes.insert(Change::Printer(id));
    }

    fn put_filament(&mut self, filament: Filament) {
        let id = filament.id.clone();
        self.digest = self.digest.wrapping_add(hash("filament", &filament));
        if let Some(old) = self.filaments.insert(id.clone(), filament) {
            self.digest = self.digest.wrapping_sub(hash("filament", &old));
        }
        self.changes.insert(Change::Filament(id));
    }

    fn put_job(&mut self, mut job: PrintJob) {
        // Share the stored printer's and spool's id text: 100k jobs on a few printers
        // would otherwise hold 200k copies of a few ids (~10 MB).
        if let Some((id, _)) = job
            .printer_id
            .as_ref()
            .and_then(|p| self.printers.get_key_value(p))
        {
            job.printer_id = Some(id.clone());
        }
        if let Some((id, _)) = job
            .filament_id
            .as_ref()
            .and_then(|f| self.filaments.get_key_value(f))
        {
            job.filament_id = Some(id.clone());
        }
        let id = job.id.clone();
        if let Some(old) = self.jobs.remove(&id) {
            self.digest = self.digest.wrapping_sub(hash("job", &old));
            self.adjust_reservation(&old, false);
            self.index_job(&old, false);
        }
        self.digest = self.digest.wrapping_add(hash("job", &job));
        self.adjust_reservation(&job, true);
        self.index_job(&job, true);
        self.jobs.insert(id.clone(), job);
        self.changes.insert(Change::PrintJob(id));
    }

    fn index_job(&mut self, job: &PrintJob, add: bool) {
        fn update<K: Ord + Clone>(index: &mut BTreeMap<K, IdSet>, key: &K, id: &Id, add: bool) {
            if add {
                index.entry(key.clone()).or_default().insert(id.clone(), ());
            } else if let Some(ids) = index.get_mut(key) {
                ids.remove(id);
                if ids.is_empty() {
                    index.remove(key);
                }
            }
        }
        update(&mut self.jobs_by_status, &job.status, &job.id, add);
        if let Some(printer_id) = &job.printer_id {
            update(&mut self.jobs_by_printer, printer_id, &job.id, add);
        }
        if let Some(filament_id) = &job.filament_id {
            update(&mut self.jobs_by_filament, filament_id, &job.id, add);
        }
        if job.status == JobStatus::Queued {
            match add {
                true => self.queue.insert(queue::queue_key(job)),
                false => self.queue.remove(&queue::queue_key(job)),
            };
        }
    }

    fn adjust_reservation(&mut self, job: &PrintJob, add: bool) {
        let Some(filament_id) = job.filament_id.as_ref() else {
            return;
        };
        if !job.status.reserves_filament() {
            return;
        }
        let reserved = self.reserved.entry(filament_id.clone()).or_insert(0);
        *reserved = if add {
            reserved.saturating_add(job.print_weight_in_grams)
        } else {
            reserved.saturating_sub(job.print_weight_in_grams)
        };
        if *reserved == 0 {
            self.reserved.remove(filament_id);
        }
    }

    fn put_idempotency(&mut self, key: String, record: IdempotencyRecord) {
        self.forget_idempotency(&key);
        self.digest = self.digest.wrapping_add(hash_keyed("idem", &key, &record));
        self.idempotency_by_age
            .insert((record.first_seen_ms, key.clone()));
        self.idempotency.insert(key.clone(), record);
        self.changes.insert(Change::Idempotency(key));
    }

    fn put_token(&mut self, token: ApiToken) {
        let id = token.id.clone();
        // The old one out first: a revoked token keeps its hash.
        if let Some(old) = self.tokens.remove(&id) {
            self.digest = self.digest.wrapping_sub(hash("token", &old));
            self.token_by_hash.remove(&old.secret_sha256);
        }
        self.digest = self.digest.wrapping_add(hash("token", &token));
        self.token_by_hash
            .insert(token.secret_sha256.clone(), id.clone());
        self.tokens.insert(id.clone(), token);
        self.changes.insert(Change::Token(id));
    }

    fn put_file(&mut self, file: GcodeFile) {
        let id = file.id.clone();
        self.digest = self.digest.wrapping_add(hash("file", &file));
        if let Some(old) = self.files.insert(id.clone(), file) {
            self.digest = self.digest.wrapping_sub(hash("file", &old));
        }
        self.changes.insert(Change::File(id));
    }

    fn forget_file(&mut self, id: &Id) {
        if let Some(old) = self.files.remove(id) {
            self.digest = self.digest.wrapping_sub(hash("file", &old));
            self.changes.insert(Change::File(id.clone()));
        }
    }

    fn put_printer_key(&mut self, printer_id: Id, key: SealedSecret) {
        self.forget_printer_key(&printer_id);
        self.digest = self
            .digest
            .wrapping_add(hash_keyed("key", printer_id.as_str(), &key));
        self.printer_keys.insert(printer_id.clone(), key);
        self.changes.insert(Change::PrinterKey(printer_id));
    }

    fn forget_printer_key(&mut self, printer_id: &Id) {
        if let Some(old) = self.printer_keys.remove(printer_id) {
            self.digest = self
                .digest
                .wrapping_sub(hash_keyed("key", printer_id.as_str(), &old));
            self.changes.insert(Change::PrinterKey(printer_id.clone()));
        }
    }

    fn forget_idempotency(&mut self, key: &str) {
        if let Some(old) = self.idempotency.remove(key) {
            self.digest = self.digest.wrapping_sub(hash_keyed("idem", key, &old));
            self.idempotency_by_age
                .remove(&(old.first_seen_ms, key.to_owned()));
            self.changes.insert(Change::Idempotency(key.to_owned()));
        }
    }
}

/// A set of ids, as a map so that [`walk`] pages through it like through the farm's maps.
type IdSet = BTreeMap<Id, ()>;

static EMPTY_IDS: IdSet = BTreeMap::new();

/// The entries of `map` after `paging`'s cursor, in its order.
fn walk<'a, V>(
    map: &'a BTreeMap<Id, V>,
    paging: &Paging,
) -> Box<dyn Iterator<Item = (&'a Id, &'a V)> + 'a> {
    match (&paging.after, paging.order) {
        (None, Order::Asc) => Box::new(map.iter()),
        (None, Order::Desc) => Box::new(map.iter().rev()),
        (Some(after), Order::Asc) => {
            Box::new(map.range::<Id, _>((Bound::Excluded(after), Bound::Unbounded)))
        }
        (Some(after), Order::Desc) => Box::new(
            map.range::<Id, _>((Bound::Unbounded, Bound::Excluded(after)))
                .rev(),
        ),
    }
}

fn duplicate(kind: EntityKind, id: &Id) -> Outcome {
    Outcome::Rejected(Rejection::DuplicateId {
        kind,
        id: id.clone(),
    })
}

fn hash<T: Serialize>(tag: &str, value: &T) -> u64 {
    hash_keyed(tag, "", value)
}

fn hash_keyed<T: Serialize>(tag: &str, key: &str, value: &T) -> u64 {
    // Serialising these plain structs (strings, integers, enums) cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    fnv1a(&[tag.as_bytes(), key.as_bytes(), &bytes])
}

#[cfg(test)]
mod tests;
