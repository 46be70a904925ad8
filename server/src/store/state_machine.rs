//! The farm state machine in `state.redb`.
//!
//! The farm lives in memory as an `app::FarmState` (what reads use) and on disk as one
//! row per printer, spool, job and idempotency key. Each `apply` batch changes the memory
//! state through `FarmState::apply` and hands exactly the rows it touched, with
//! `last_applied` and the membership, to the [`StateWriter`], which commits them together
//! so a restart finds the state and the point it reached in agreement.
//!
//! Snapshots are the whole farm as JSON (`app::FarmSnapshot`), written straight from a
//! read transaction into a file of `snapshots/` and read back from it a buffer at a time
//! ([`super::snapshot_files`]); the `snapshot` table holds the current one's meta.

use super::db::{self, get_json, put_json, DbError, OpenDatabase};
use super::event_journal::{row_key, EntryEvents, EventJournal, Stored};
use super::snapshot_files::{SnapshotFile, SnapshotFiles, SNAPSHOT_BUFFER};
use super::state_writer::{self, Position, Row, StateWriter};
use super::tables::*;
use super::wal::{WalDir, WalDisk};
use super::{blocking, io_error};
use crate::histogram::SharedHistogram;
use crate::raft::typ::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership};
use crate::raft::TypeConfig;
use app::{Change, FarmSnapshot, FarmState, Outcome};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The state machine: shared between openraft (which applies) and the HTTP layer (which
/// reads). Cheap to clone.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

struct Shared {
    db: Arc<OpenDatabase>,
    /// Every write to `db` that must stay in apply order goes through it.
    writer: StateWriter,
    // A std lock, not a tokio one: it is only ever held for in-memory work, never across
    // an `.await` or disk I/O, so readers are never stuck behind an fsync.
    applied: RwLock<Applied>,
    /// What the recent entries changed, for the change stream.
    journal: EventJournal,
    /// How long each call of `apply` took (see [`StateMachineStore::apply_timing`]).
    apply_timing: SharedHistogram,
    /// The current snapshot's file, and those being built or received.
    snapshots: Arc<SnapshotFiles>,
}

/// The in-memory farm and how far into the log it reflects.
pub struct Applied {
    pub farm: FarmState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl StateMachineStore {
    /// Opens the file and loads the farm into memory.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_on(path, None)
    }

    /// [`StateMachineStore::open`], on `disks` when given (tests; see [`db::Disks`]).
    pub fn open_on(path: &Path, disks: Option<&dyn db::Disks>) -> Result<Self, DbError> {
        let db = db::open(path, disks, SM_META, STATE_SCHEMA, |txn| {
            for table in FARM_TABLES.into_iter().chain([SNAPSHOT]) {
                txn.open_table(table)?;
            }
            // A file from before the change stream was stored holds no events: its
            // journal starts at the position it reached. A new file's starts at 0.
            let mut meta = txn.open_table(SM_META)?;
            if get_json::<u64>(&meta, KEY_EVENTS_FROM)?.is_none() {
                let applied: Option<LogId> =
                    get_json::<Option<LogId>>(&meta, KEY_LAST_APPLIED)?.flatten();
                put_json(&mut meta, KEY_EVENTS_FROM, &applied.map_or(0, |l| l.index))?;
            }
            Ok(())
        })?;
        let snapshot_disk: Arc<dyn WalDisk> = match disks {
            Some(disks) => disks.snapshots(),
            None => Arc::new(WalDir::unlocked(path.with_file_name("snapshots"))?),
        };
        let current = stored_snapshot_meta(&db)?.map(|meta| meta.snapshot_id);
        let snapshots = SnapshotFiles::open(snapshot_disk, current.as_deref())?;
        move_snapshot_to_file(&db, &snapshots)?;
        let applied = load(&db)?;
        let journal = load_journal(&db, applied.last_applied.map_or(0, |l| l.index))?;
        let db = Arc::new(OpenDatabase::new(db));
        Ok(Self {
            shared: Arc::new(Shared {
                writer: StateWriter::start(db.clone())?,
                db,
                applied: RwLock::new(applied),
                journal,
                apply_timing: SharedHistogram::default(),
                snapshots: Arc::new(snapshots),
            }),
        })
    }

    /// The snapshot directory, for the peer service to receive a snapshot into.
    pub fn snapshot_files(&self) -> Arc<SnapshotFiles> {
        self.shared.snapshots.clone()
    }

    /// Durations of the applies so far (a run of committed entries each), for `/metrics`.
    pub fn apply_timing(&self) -> SharedHistogram {
        self.shared.apply_timing.clone()
    }

    /// `state.redb`, to learn when it is closed (see [`db::OpenFile`]).
    pub fn open_file(&self) -> db::OpenFile {
        self.shared.db.open_file("state.redb")
    }

    /// Read access to the applied farm. Do not hold the guard across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        self.shared
            .applied
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The recent changes, for the change stream.
    pub fn journal(&self) -> &EventJournal {
        &self.shared.journal
    }

    /// The one writer of the file (views are opened on its thread, after its queue).
    pub(super) fn writer(&self) -> &StateWriter {
        &self.shared.writer
    }

    fn write(&self) -> RwLockWriteGuard<'_, Applied> {
        self.shared
            .applied
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The farm `state.redb` holds, built row by row (never as a whole snapshot beside the
/// maps made from it: see `FarmState::restore`).
fn load(db: &Database) -> Result<Applied, DbError> {
    fn each<T: serde::de::DeserializeOwned>(
        txn: &redb::ReadTransaction,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        mut put: impl FnMut(&str, T) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        for row in txn.open_table(table)?.iter()? {
            let (key, value) = row?;
            put(key.value(), serde_json::from_slice(value.value())?)?;
        }
        Ok(())
    }
    let txn = db.begin_read()?;
    let meta = txn.open_table(SM_META)?;
    let mut farm = FarmState::restore(
        get_json(&meta, KEY_CLOCK)?.unwrap_or(0),
        get_json(&meta, KEY_DRIVER_TERM)?.unwrap_or(0),
    );
    each(&txn, PRINTERS, |_, printer| {
        farm.printer(printer);
        Ok(())
    })?;
    each(&txn, FILAMENTS, |_, filament| {
        farm.filament(filament);
        Ok(())
    })?;
    each(&txn, PRINT_JOBS, |_, job| {
        farm.job(job);
        Ok(())
    })?;
    each(&txn, IDEMPOTENCY, |key, record| {
        farm.idempotency(key.to_owned(), record);
        Ok(())
    })?;
    each(&txn, TOKENS, |_, token| {
        farm.token(token);
        Ok(())
    })?;
    each(&txn, FILES, |_, file| {
        farm.file(file);
        Ok(())
    })?;
    each(&txn, PRINTER_KEYS, |key, sealed| {
        let id = app::Id::parse(key).map_err(|e| {
            DbError::Decode(serde::de::Error::custom(format!("row key '{key}': {e}")))
        })?;
        farm.printer_key(id, sealed);
        Ok(())
    })?;
    let (last_applied, membership) = position_of(&txn)?;
    Ok(Applied {
        farm: farm.finish(),
        last_applied,
        membership,
    })
}

/// The change stream's journal as the file holds it at `applied`. Rows it cannot read
/// (none are ever written so) start it afresh at `applied`: subscribers get `reset`,
/// never a wrong event.
fn load_journal(db: &Database, applied: u64) -> Result<EventJournal, DbError> {
    let txn = db.begin_read()?;
    let from: u64 = get_json(&txn.open_table(SM_META)?, KEY_EVENTS_FROM)?.unwrap_or(applied);
    let mut entries = Vec::new();
    for row in txn.open_table(EVENTS)?.iter()? {
        let (key, value) = row?;
        let entry = key
            .value()
            .parse()
            .ok()
            .and_then(|index| EntryEvents::from_row(index, value.value()));
        match entry {
            Some(entry) => entries.push(entry),
            None => {
                tracing::warn!(
                    key = key.value(),
                    "unreadable change stream row: the stream starts afresh"
                );
                return Ok(EventJournal::new(applied));
            }
        }
    }
    Ok(EventJournal::restore(from.min(applied), applied, entries))
}

/// The rows that store what an append changed in the journal.
fn journal_rows(stored: Stored) -> Result<Vec<Row>, serde_json::Error> {
    let mut rows: Vec<Row> = stored
        .added
        .into_iter()
        .map(|(index, row)| (EVENTS, row_key(index), Some(row)))
        .collect();
    rows.extend(
        stored
            .dropped
            .into_iter()
            .map(|index| (EVENTS, row_key(index), None)),
    );
    if let Some(from) = stored.from {
        rows.push((
            SM_META,
            KEY_EVENTS_FROM.to_owned(),
            Some(serde_json::to_vec(&from)?),
        ));
    }
    Ok(rows)
}

/// The rows an apply batch changed, read from the new in-memory state.
fn changed_rows(farm: &FarmState, changes: Vec<Change>) -> Result<Vec<Row>, serde_json::Error> {
    changes
        .into_iter()
        .map(|change| {
            Ok(match change {
                Change::Printer(id) => (PRINTERS, id.to_string(), json(farm.printer(&id))?),
                Change::Filament(id) => (FILAMENTS, id.to_string(), json(farm.raw_filament(&id))?),
                Change::PrintJob(id) => (PRINT_JOBS, id.to_string(), json(farm.job(&id))?),
                Change::Idempotency(key) => {
                    let row = json(farm.idempotency_record(&key))?;
                    (IDEMPOTENCY, key, row)
                }
                Change::Token(id) => (TOKENS, id.to_string(), json(farm.token(&id))?),
                Change::File(id) => (FILES, id.to_string(), json(farm.file(&id))?),
                Change::PrinterKey(id) => {
                    (PRINTER_KEYS, id.to_string(), json(farm.printer_key(&id))?)
                }
                Change::DriverTerm => (
                    SM_META,
                    KEY_DRIVER_TERM.to_owned(),
                    json(Some(&farm.driver_term()))?,
                ),
            })
        })
        .collect()
}

fn json<T: serde::Serialize>(value: Option<&T>) -> Result<Option<Vec<u8>>, serde_json::Error> {
    value.map(serde_json::to_vec).transpose()
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Outcome>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let _timer = self.shared.apply_timing.start_timer();
        let (outcomes, mut rows, position, events) = {
            let mut applied = self.write();
            let mut outcomes = Vec::new();
            let mut events = Vec::new();
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                outcomes.push(match entry.payload {
                    // Raft's own entries carry no farm command.
                    EntryPayload::Blank => Vec::new(),
                    // In order, exactly as if each proposal were an entry of its own.
                    EntryPayload::Normal(proposals) => {
                        let outcomes = proposals.iter().map(|p| applied.farm.apply(p)).collect();
                        events.push((entry.log_id.index, applied.farm.take_events()));
                        outcomes
                    }
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Vec::new()
                    }
                });
            }
            let changes = applied.farm.take_changes();
            let rows = changed_rows(&applied.farm, changes)
                .map_err(|e| io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
            let position = Position {
                last_applied: applied.last_applied,
                membership: applied.membership.clone(),
                clock_ms: applied.farm.clock_ms(),
            };
            (outcomes, rows, position, events)
        };
        // Before openraft answers the writer: a client that got index N back and
        // subscribes after N-1 must find its change.
        if let Some(last) = position.last_applied {
            let stored = self.shared.journal.append(last.index, events);
            let journal = journal_rows(stored)
                .map_err(|e| io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
            rows.extend(journal);
        }
        // Not awaited: applied entries are committed, hence already durable in the log
        // of a majority (and of this node), and after a crash openraft re-applies them
        // from there. See `state_writer`.
        self.shared
            .writer
            .write(rows, position)
            .map_err(|e| io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let files = self.shared.snapshots.clone();
        let file = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Write, move || {
            Ok(files.create()?)
        })
        .await?;
        Ok(Box::new(file))
    }

    #[tracing::instrument(level = "info", skip_all, fields(snapshot = %meta.snapshot_id))]
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let files = self.shared.snapshots.clone();
        let snapshot_id = meta.snapshot_id.clone();
        // Decoded from the file a buffer at a time, then made durable under its id: only
        // a snapshot that decodes is ever kept.
        let farm_snapshot = blocking(
            ErrorSubject::Snapshot(signature.clone()),
            ErrorVerb::Read,
            move || {
                let mut file = files.adopt(*snapshot)?;
                file.rewind();
                let decoded = BufReader::with_capacity(SNAPSHOT_BUFFER, &mut file);
                // A snapshot that does not decode is dropped, which removes its file.
                let farm_snapshot: FarmSnapshot = serde_json::from_reader(decoded)?;
                files.publish(&mut file, &snapshot_id)?;
                Ok(farm_snapshot)
            },
        )
        .await?;
        let meta_owned = meta.clone();
        let files = self.shared.snapshots.clone();
        // The rows are written first, the decoded snapshot dropped, and the farm then
        // built from the rows (as at a start): never the snapshot and the farm made from
        // it at once. On the writer thread, so it lands after every earlier apply's rows.
        let loaded = self
            .shared
            .writer
            .exclusive(move |db| {
                let txn = db.begin_write()?;
                replace_farm_rows(&txn, &farm_snapshot)?;
                // The entries the snapshot covers were never applied here.
                let events_from = meta_owned.last_log_id.map_or(0, |l| l.index);
                put_json(&mut txn.open_table(SM_META)?, KEY_EVENTS_FROM, &events_from)?;
                let position = Position {
                    last_applied: meta_owned.last_log_id,
                    membership: meta_owned.last_membership.clone(),
                    clock_ms: farm_snapshot.clock_ms,
                };
                position.write(&txn)?;
                make_current(txn, &files, &meta_owned)?;
                drop(farm_snapshot);
                load(db)
            })
            .await
            .map_err(|e| io_error(ErrorSubject::Snapshot(signature), ErrorVerb::Write, e))?;
        {
            let mut applied = self.write();
            applied.farm = loaded.farm;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
        }
        // The entries the snapshot covers were never applied here: their changes are
        // unknown, and a subscriber from before them must read the lists again.
        self.shared
            .journal
            .restart_at(meta.last_log_id.map_or(0, |l| l.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let shared = self.shared.clone();
        blocking(ErrorSubject::Snapshot(None), ErrorVerb::Read, move || {
            let Some(meta) = stored_snapshot_meta(&shared.db)? else {
                return Ok(None);
            };
            let file = shared.snapshots.open_snapshot(&meta.snapshot_id)?;
            Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(file),
            }))
        })
        .await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    #[tracing::instrument(level = "info", skip_all)]
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // The writer thread makes every queued and unsynced apply durable, then opens a
        // read transaction there (MVCC: it keeps seeing that point while applies go on).
        // The position is read from that same transaction, so the snapshot never gets
        // ahead of what a restart finds on disk and purging the log up to it is safe.
        // The farm is encoded from the transaction, not from a copy of the in-memory
        // state: no second farm in memory, and writes go on while a large farm (over a
        // second at 600k jobs) is encoded and stored.
        let view = self
            .shared
            .writer
            .exclusive(|db| {
                state_writer::sync(db)?;
                Ok(db.begin_read()?)
            })
            .await
            .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        let (last_log_id, last_membership) = position_of(&view)
            .map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
        let snapshot_id = match last_log_id {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term,
                id.index,
                uuid::Uuid::now_v7().simple()
            ),
            None => format!("empty-{}", uuid::Uuid::now_v7().simple()),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let shared = self.shared.clone();
        let meta_owned = meta.clone();
        // Encoded straight into its file: a farm's snapshot is tens of megabytes, never
        // held in memory.
        let file = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Write, move || {
            let mut file = shared.snapshots.create()?;
            // On an error the file is dropped, which removes it.
            write_snapshot(&view, &mut file)?;
            drop(view);
            shared
                .snapshots
                .publish(&mut file, &meta_owned.snapshot_id)?;
            make_current(shared.db.begin_write()?, &shared.snapshots, &meta_owned)?;
            file.rewind();
            Ok(file)
        })
        .await?;
        tracing::info!(bytes = file.len(), index = ?last_log_id.map(|l| l.index), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

/// The last applied log id and membership that `view` sees.
pub(super) fn position_of(
    view: &ReadTransaction,
) -> Result<(Option<LogId>, StoredMembership), DbError> {
    let meta = view.open_table(SM_META)?;
    Ok((
        get_json::<Option<LogId>>(&meta, KEY_LAST_APPLIED)?.flatten(),
        get_json(&meta, KEY_MEMBERSHIP)?.unwrap_or_default(),
    ))
}

/// The farm as seen by `view`, in the snapshot format (`app::FarmSnapshot` as JSON).
/// Rows are already the JSON of their values, in id order, so they are copied as they
/// are rather than decoded and encoded again.
/// Encodes the farm `view` sees as an `app::FarmSnapshot`'s JSON into `file`.
fn write_snapshot(view: &ReadTransaction, file: &mut SnapshotFile) -> Result<(), DbError> {
    let mut out = BufWriter::with_capacity(SNAPSHOT_BUFFER, file);
    snapshot_json(view, &mut out)?;
    out.flush()?;
    Ok(())
}

fn snapshot_json(view: &ReadTransaction, out: &mut impl Write) -> Result<(), DbError> {
    fn rows(
        out: &mut impl Write,
        view: &ReadTransaction,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        with_key: bool,
    ) -> Result<(), DbError> {
        out.write_all(b"[")?;
        for (n, row) in view.open_table(table)?.iter()?.enumerate() {
            let (key, value) = row?;
            if n > 0 {
                out.write_all(b",")?;
            }
            // `Vec<(String, T)>` is encoded as `[key, value]` pairs.
            if with_key {
                out.write_all(b"[")?;
                serde_json::to_writer(&mut *out, key.value())?;
                out.write_all(b",")?;
            }
            out.write_all(value.value())?;
            if with_key {
                out.write_all(b"]")?;
            }
        }
        out.write_all(b"]")?;
        Ok(())
    }
    let meta = view.open_table(SM_META)?;
    let clock_ms: u64 = get_json(&meta, KEY_CLOCK)?.unwrap_or(0);
    let driver_term: u64 = get_json(&meta, KEY_DRIVER_TERM)?.unwrap_or(0);
    for (name, table, with_key) in [
        (r#"{"printers":"#, PRINTERS, false),
        (r#","filaments":"#, FILAMENTS, false),
        (r#","print_jobs":"#, PRINT_JOBS, false),
        (r#","idempotency":"#, IDEMPOTENCY, true),
        (r#","tokens":"#, TOKENS, false),
        (r#","files":"#, FILES, false),
        (r#","printer_keys":"#, PRINTER_KEYS, true),
    ] {
        out.write_all(name.as_bytes())?;
        rows(out, view, table, with_key)?;
    }
    write!(
        out,
        r#","clock_ms":{clock_ms},"driver_term":{driver_term}}}"#
    )?;
    Ok(())
}

/// The meta of the current snapshot, if there is one.
fn stored_snapshot_meta(db: &Database) -> Result<Option<SnapshotMeta>, DbError> {
    get_json(&db.begin_read()?.open_table(SNAPSHOT)?, KEY_SNAPSHOT_META)
}

/// Steps 3 and 4 of `snapshot_files`: commits `txn` with `meta` as the current
/// snapshot's (its file published already), then removes the snapshot files it no
/// longer names. A snapshot older than the current one (a build that finished after a
/// newer snapshot was installed) is not made current: `txn` commits without it and its
/// file goes.
fn make_current(
    txn: WriteTransaction,
    files: &SnapshotFiles,
    meta: &SnapshotMeta,
) -> Result<(), DbError> {
    let swap = files.swap();
    let current = {
        let mut table = txn.open_table(SNAPSHOT)?;
        let stored: Option<SnapshotMeta> = get_json(&table, KEY_SNAPSHOT_META)?;
        match stored {
            Some(stored) if stored.last_log_id > meta.last_log_id => stored.snapshot_id,
            _ => {
                put_json(&mut table, KEY_SNAPSHOT_META, meta)?;
                meta.snapshot_id.clone()
            }
        }
    };
    txn.commit()?;
    // Committed: a file left over is only disk space, removed at the next open.
    if let Err(error) = swap.keep_only(&current) {
        tracing::warn!(%error, "an old snapshot file could not be removed");
    }
    Ok(())
}

/// The upgrade from schema 2: a snapshot's bytes held in the `snapshot` table move into
/// its file. Safe to cut at any point: the bytes leave the table only once their file
/// is durable, and a cut before that starts over at the next open.
fn move_snapshot_to_file(db: &Database, files: &SnapshotFiles) -> Result<(), DbError> {
    let (meta, data) = {
        let txn = db.begin_read()?;
        let table = txn.open_table(SNAPSHOT)?;
        let Some(data) = table.get(KEY_SNAPSHOT_DATA)? else {
            return Ok(());
        };
        let meta: Option<SnapshotMeta> = get_json(&table, KEY_SNAPSHOT_META)?;
        (meta, data.value().to_vec())
    };
    if let Some(meta) = &meta {
        let mut file = files.create()?;
        file.write_all(&data)?;
        files.publish(&mut file, &meta.snapshot_id)?;
    }
    let txn = db.begin_write()?;
    txn.open_table(SNAPSHOT)?.remove(KEY_SNAPSHOT_DATA)?;
    txn.commit()?;
    tracing::info!(
        bytes = data.len(),
        "the snapshot's bytes moved into snapshots/"
    );
    Ok(())
}

/// Replaces every farm row with the snapshot's content.
fn replace_farm_rows(txn: &WriteTransaction, snapshot: &FarmSnapshot) -> Result<(), DbError> {
    for table in FARM_TABLES {
        txn.delete_table(table)?;
    }
    txn.open_table(EVENTS)?;
    let mut printers = txn.open_table(PRINTERS)?;
    for printer in &snapshot.printers {
        printers.insert(printer.id.as_str(), serde_json::to_vec(printer)?.as_slice())?;
    }
    let mut filaments = txn.open_table(FILAMENTS)?;
    for filament in &snapshot.filaments {
        filaments.insert(
            filament.id.as_str(),
            serde_json::to_vec(filament)?.as_slice(),
        )?;
    }
    let mut jobs = txn.open_table(PRINT_JOBS)?;
    for job in &snapshot.print_jobs {
        jobs.insert(job.id.as_str(), serde_json::to_vec(job)?.as_slice())?;
    }
    let mut idempotency = txn.open_table(IDEMPOTENCY)?;
    for (key, record) in &snapshot.idempotency {
        idempotency.insert(key.as_str(), serde_json::to_vec(record)?.as_slice())?;
    }
    let mut tokens = txn.open_table(TOKENS)?;
    for token in &snapshot.tokens {
        tokens.insert(token.id.as_str(), serde_json::to_vec(token)?.as_slice())?;
    }
    let mut files = txn.open_table(FILES)?;
    for file in &snapshot.files {
        files.insert(file.id.as_str(), serde_json::to_vec(file)?.as_slice())?;
    }
    let mut keys = txn.open_table(PRINTER_KEYS)?;
    for (printer_id, key) in &snapshot.printer_keys {
        keys.insert(printer_id.as_str(), serde_json::to_vec(key)?.as_slice())?;
    }
    put_json(
        &mut txn.open_table(SM_META)?,
        KEY_DRIVER_TERM,
        &snapshot.driver_term,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build that finishes after a newer snapshot was installed must not make its older
    /// snapshot the current one (a lagging node would then be sent a snapshot older than
    /// the log this node purged) nor keep its file.
    #[test]
    fn an_older_snapshot_does_not_replace_a_newer_one() -> Result<(), DbError> {
        let dir = tempfile::tempdir()?;
        let db = db::open(
            &dir.path().join("state.redb"),
            None,
            SM_META,
            STATE_SCHEMA,
            |txn| {
                txn.open_table(SNAPSHOT)?;
                Ok(())
            },
        )?;
        let disk = Arc::new(WalDir::unlocked(dir.path().join("snapshots"))?);
        let files = SnapshotFiles::open(disk, None)?;
        let meta = |term, index, id: &str| SnapshotMeta {
            last_log_id: Some(openraft::LogId::new(
                openraft::CommittedLeaderId::new(term, 1),
                index,
            )),
            last_membership: StoredMembership::default(),
            snapshot_id: id.to_owned(),
        };
        for snapshot in [meta(2, 20, "2-20-newer"), meta(1, 10, "1-10-older")] {
            let mut file = files.create()?;
            file.write_all(b"{}")?;
            files.publish(&mut file, &snapshot.snapshot_id)?;
            make_current(db.begin_write()?, &files, &snapshot)?;
        }
        let current = stored_snapshot_meta(&db)?.map(|m| m.snapshot_id);
        assert_eq!(current.as_deref(), Some("2-20-newer"));
        let names: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, ["2-20-newer.snap"]);
        Ok(())
    }
}
