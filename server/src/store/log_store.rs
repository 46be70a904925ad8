//! The Raft log: entries in `wal/` (segment files, [`Wal`]), the vote, the purge point
//! and the node's identity in `raft-log.redb`.
//!
//! Every `append` batch is one WAL write and one `fdatasync`, and openraft is told the
//! entries are flushed only after that returns: nothing is acknowledged to a leader,
//! and so to a client, before it is on disk. The leader's `append` of its own proposals
//! returns once the write is started (its followers get the entries meanwhile); any
//! other append writes before returning. The newest entries are readable from memory at
//! once ([`RecentEntries`]).
//!
//! A purge writes the purge point durably (redb), then deletes the WAL segments wholly
//! behind it. A truncation is a durable WAL record. A data directory of the previous
//! layout (entries in the `log` table) has them moved into the WAL at open
//! ([`open_wal`]).

use super::db::{self, get_json, put_json, DbError, OpenDatabase};
use super::queue_thread::QueueThread;
use super::recent_entries::RecentEntries;
use super::tables::{KEY_COMMITTED, KEY_IDENTITY, KEY_PURGED, KEY_VOTE, LOG, LOG_META, LOG_SCHEMA};
use super::wal::{self, Record, Wal, WalDir, WalDisk};
use super::{blocking, io_error};
use crate::histogram::SharedHistogram;
use crate::raft::typ::{Entry, LogId, NodeId, StorageError, Vote};
use crate::raft::TypeConfig;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use redb::{Database, ReadableDatabase, ReadableTableMetadata};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Handle on the log; cheap to clone (it is also the log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<OpenDatabase>,
    wal: Arc<Wal>,
    /// The commit hint the WAL held at open.
    committed_at_open: Option<LogId>,
    /// This node: entries it proposed as leader are written on the log writer thread.
    local_id: NodeId,
    committed: Arc<Mutex<CommittedHint>>,
    /// Index of the last purged entry plus one (0: none).
    purged_end: Arc<AtomicU64>,
    recent: Arc<Mutex<RecentEntries>>,
    writer: Arc<LogWriter>,
    /// How long each durable append took (see [`LogStore::append_timing`]).
    append_timing: SharedHistogram,
}

/// The thread that writes the log: the leader's own appends, every truncation, purge
/// and vote, and a follower's append whenever something is still queued (see
/// `append`). One queue keeps them in the order openraft issued them: the patched core
/// does not wait for a leader's append (vendor/README.md), so a truncation or a vote
/// issued after it must not reach the disk before it.
///
/// A thread of its own rather than tokio's blocking pool: the pool gives each write to
/// whichever idle thread comes first (five took turns on a leader), and that measured
/// slower at 1 client (docs/perf.md).
struct LogWriter {
    thread: QueueThread<WriteJob>,
    /// Jobs queued and not yet finished.
    queued: Arc<AtomicU64>,
}

type WriteJob = Box<dyn FnOnce() + Send>;

fn writer_stopped(subject: ErrorSubject<u64>, verb: ErrorVerb) -> StorageError {
    let stopped = std::io::Error::other("the log writer thread has stopped");
    io_error(subject, verb, stopped)
}

impl LogWriter {
    fn start() -> std::io::Result<Self> {
        let thread = QueueThread::start("log-writer", |jobs: Receiver<WriteJob>| {
            jobs.into_iter().for_each(|job| job())
        })?;
        Ok(Self {
            thread,
            queued: Arc::default(),
        })
    }

    /// Whether nothing is queued or being written: only then may a write skip the queue
    /// (openraft issues log writes one call at a time, so none can be queued meanwhile).
    fn idle(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Queues `job` behind everything queued before.
    fn queue(&self, job: impl FnOnce() + Send + 'static) -> Result<(), StorageError> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let queued = self.queued.clone();
        let job: WriteJob = Box::new(move || {
            job();
            queued.fetch_sub(1, Ordering::AcqRel);
        });
        self.thread.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            writer_stopped(ErrorSubject::Logs, ErrorVerb::Write)
        })
    }

    /// Runs `work` behind everything queued before, and waits for it.
    async fn run<T: Send + 'static>(
        &self,
        subject: ErrorSubject<u64>,
        verb: ErrorVerb,
        work: impl FnOnce() -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue(move || {
            let _ = done.send(work());
        })?;
        match result.await {
            Ok(result) => result.map_err(|e| io_error(subject, verb, e)),
            Err(_) => Err(writer_stopped(subject, verb)),
        }
    }
}

/// Encoded bytes of entries kept in memory: a few thousand single-write entries or
/// ~100 full batches, far more than replication and apply lag behind in normal running.
const RECENT_ENTRIES_BUDGET: usize = 2 << 20;

/// Entries moved from a `log` table of the previous layout per WAL write.
const MOVE_CHUNK: usize = 1024;

/// The latest commit index openraft reported, and when one was last written.
///
/// openraft awaits `save_committed` between a commit and its apply, on every node, for
/// every entry, so a transaction of its own (even without fsync) sat on every write's
/// path. It needs none: the commit index is only a restart hint (Raft keeps it in
/// memory; openraft re-applies up to `max(committed, last_applied)`), and a stale one is
/// always safe because committed entries are never truncated. So it rides along with
/// the next log append, at most every [`COMMITTED_EVERY`].
#[derive(Default)]
struct CommittedHint {
    latest: Option<LogId>,
    written: Option<LogId>,
    written_at: Option<Instant>,
}

/// How often the commit index is written with an append.
const COMMITTED_EVERY: Duration = Duration::from_millis(100);

impl CommittedHint {
    /// The value to write with the transaction being prepared now, if one is due.
    fn due(&mut self) -> Option<LogId> {
        let fresh = self
            .written_at
            .is_some_and(|at| at.elapsed() < COMMITTED_EVERY);
        if self.latest == self.written || fresh {
            return None;
        }
        self.written = self.latest;
        self.written_at = Some(Instant::now());
        self.latest
    }
}

impl LogStore {
    pub fn open(path: &Path, local_id: NodeId) -> Result<Self, DbError> {
        Self::open_on(path, None, local_id)
    }

    /// [`LogStore::open`], on `disks` when given (tests; see [`db::Disks`]).
    pub fn open_on(
        path: &Path,
        disks: Option<&dyn db::Disks>,
        local_id: NodeId,
    ) -> Result<Self, DbError> {
        let db = db::open(path, disks, LOG_META, LOG_SCHEMA, |txn| {
            txn.open_table(LOG)?;
            Ok(())
        })?;
        let purged: Option<LogId> = get_json(&db.begin_read()?.open_table(LOG_META)?, KEY_PURGED)?;
        let wal_disk: Arc<dyn WalDisk> = match disks {
            Some(disks) => disks.wal(),
            None => Arc::new(WalDir::new(path.with_file_name("wal"))?),
        };
        let (wal, committed_at_open) = open_wal(&db, wal_disk, end_of(purged))?;
        Ok(Self {
            db: Arc::new(OpenDatabase::new(db)),
            wal: Arc::new(wal),
            committed_at_open,
            local_id,
            committed: Arc::default(),
            purged_end: Arc::new(AtomicU64::new(end_of(purged))),
            recent: Arc::new(Mutex::new(RecentEntries::new(RECENT_ENTRIES_BUDGET))),
            writer: Arc::new(LogWriter::start()?),
            append_timing: SharedHistogram::default(),
        })
    }

    /// The identity stored with this log (see `crate::identity`), and whether the log
    /// holds any Raft state (a vote or entries): a data directory from before identities
    /// were stored has state but no identity. Read once, at startup.
    pub fn stored_identity<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<(Option<T>, bool), DbError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(LOG_META)?;
        let identity = get_json(&meta, KEY_IDENTITY)?;
        let has_vote = meta.get(KEY_VOTE)?.is_some();
        Ok((identity, has_vote || !self.wal.is_empty()))
    }

    /// Writes the identity durably (at creation, and once more if the node adopts the
    /// cluster id of the cluster that adds it).
    pub fn save_identity<T: serde::Serialize>(&self, identity: &T) -> Result<(), DbError> {
        let txn = self.db.begin_write()?;
        put_json(&mut txn.open_table(LOG_META)?, KEY_IDENTITY, identity)?;
        txn.commit()?;
        Ok(())
    }

    /// Durations of the appends written so far (WAL write and fdatasync, on either path):
    /// the disk's share of every write's latency, for `/metrics`.
    pub fn append_timing(&self) -> SharedHistogram {
        self.append_timing.clone()
    }

    /// `raft-log.redb` and `wal/`, to learn when they are closed (see [`db::OpenFile`]).
    pub fn open_files(&self) -> [db::OpenFile; 2] {
        [self.db.open_file("raft-log.redb"), self.wal.open_file()]
    }

    async fn read_meta<T>(
        &self,
        key: &'static str,
        subject: ErrorSubject<u64>,
    ) -> Result<Option<T>, StorageError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let db = self.db.clone();
        blocking(subject, ErrorVerb::Read, move || {
            let txn = db.begin_read()?;
            get_json(&txn.open_table(LOG_META)?, key)
        })
        .await
    }

    /// Writes a meta value durably, in order with every other log write.
    async fn write_meta<T>(
        &self,
        key: &'static str,
        value: T,
        subject: ErrorSubject<u64>,
    ) -> Result<(), StorageError>
    where
        T: serde::Serialize + Send + 'static,
    {
        let db = self.db.clone();
        let write = move || {
            let txn = db.begin_write()?;
            put_json(&mut txn.open_table(LOG_META)?, key, &value)?;
            txn.commit()?;
            Ok(())
        };
        self.writer.run(subject, ErrorVerb::Write, write).await
    }
}

/// One write, one fdatasync, for a whole batch of encoded entries (and the commit
/// index, when one is due).
fn write_entries(
    wal: &Wal,
    rows: &[(LogId, Vec<u8>)],
    committed: Option<LogId>,
    timing: &SharedHistogram,
) -> std::io::Result<()> {
    let started = Instant::now();
    let mut records: Vec<Record<'_>> = rows
        .iter()
        .map(|(log_id, bytes)| Record::Entry {
            log_id: *log_id,
            bytes,
        })
        .collect();
    if let Some(log_id) = committed {
        records.push(Record::Committed { log_id });
    }
    wal.append(&records)?;
    timing.record(started.elapsed());
    Ok(())
}

/// Opens the WAL. A log file of the previous layout (schema 2) still holds its entries
/// in the `log` table: they are copied into an emptied WAL, synced, and only then is the
/// table dropped, in one transaction. A copy cut short by a crash finds the table still
/// there and starts over, so every entry is in exactly one place that counts.
fn open_wal(
    db: &Database,
    disk: Arc<dyn WalDisk>,
    purged_end: u64,
) -> Result<(Wal, Option<LogId>), DbError> {
    let txn = db.begin_read()?;
    let old = txn.open_table(LOG)?;
    if old.len()? == 0 {
        let opened = Wal::open(disk, wal::DEFAULT_SEGMENT_BYTES, purged_end)?;
        return Ok((opened.wal, opened.committed));
    }
    wal::remove_all(&*disk)?;
    let wal = Wal::open(disk, wal::DEFAULT_SEGMENT_BYTES, purged_end)?.wal;
    let committed: Option<LogId> =
        get_json::<Option<LogId>>(&txn.open_table(LOG_META)?, KEY_COMMITTED)?.flatten();
    // A one-off copy, not the disk's share of any write: kept out of the metric.
    let untimed = SharedHistogram::default();
    let mut moved = 0;
    let mut chunk: Vec<(LogId, Vec<u8>)> = Vec::with_capacity(MOVE_CHUNK);
    for row in old.range::<u64>(purged_end..)? {
        let bytes = row?.1.value().to_vec();
        chunk.push((decode_entry(&bytes)?.log_id, bytes));
        if chunk.len() == MOVE_CHUNK {
            moved += chunk.len();
            write_entries(&wal, &chunk, None, &untimed)?;
            chunk.clear();
        }
    }
    moved += chunk.len();
    write_entries(&wal, &chunk, committed, &untimed)?;
    drop((old, txn));
    let txn = db.begin_write()?;
    txn.delete_table(LOG)?;
    txn.open_table(LOG)?;
    txn.open_table(LOG_META)?.remove(KEY_COMMITTED)?;
    txn.commit()?;
    tracing::info!(
        entries = moved,
        "moved the log's entries from raft-log.redb into wal/"
    );
    Ok((wal, committed))
}

/// Lets [`RecentEntries`] evict `rows` once they are written.
fn mark_durable(
    recent: &Mutex<RecentEntries>,
    rows: &[(LogId, Vec<u8>)],
    written: &std::io::Result<()>,
) {
    if let (Ok(()), Some((last, _))) = (written, rows.last()) {
        recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .mark_durable(last.index);
    }
}

/// The first index after `purged`.
fn end_of(purged: Option<LogId>) -> u64 {
    purged.map_or(0, |log_id| log_id.index + 1)
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, DbError> {
    Ok(serde_json::from_slice(bytes)?)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let purged_end = self.purged_end.load(Ordering::Acquire);
        let start = match range.start_bound() {
            Bound::Included(&index) => index,
            Bound::Excluded(&index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(purged_end);
        let end = match range.end_bound() {
            Bound::Included(&index) => Some(index.saturating_add(1)),
            Bound::Excluded(&index) => Some(index),
            Bound::Unbounded => None,
        };
        // Taken under one lock: everything before `cached_from` is on disk (entries still
        // in flight are never evicted).
        let (cached_from, cached) = {
            let recent = self.recent_entries();
            match recent.first_index() {
                Some(first) => (first, recent.get(start, end)),
                None => (u64::MAX, Vec::new()),
            }
        };
        if start >= cached_from {
            return Ok(cached);
        }
        let disk_end = end.map_or(cached_from, |end| end.min(cached_from));
        let wal = self.wal.clone();
        let mut entries = blocking(ErrorSubject::Logs, ErrorVerb::Read, move || {
            wal.read(start, disk_end)?
                .iter()
                .map(|(_, bytes)| decode_entry(bytes))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        entries.extend(cached);
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let purged: Option<LogId> = self.read_meta(KEY_PURGED, ErrorSubject::Logs).await?;
        // Purged entries still in a segment are not part of the log.
        let last = self
            .wal
            .last_log_id()
            .filter(|last| last.index >= end_of(purged))
            .or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(KEY_VOTE, *vote, ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE, ErrorSubject::Vote).await
    }

    /// No I/O here: see [`CommittedHint`].
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.committed_hint().latest = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed_hint().latest.or(self.committed_at_open))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        let mut batch = Vec::new();
        let mut proposed_here = false;
        for entry in entries {
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            let log_id = entry.log_id;
            proposed_here = log_id.leader_id.node_id == self.local_id;
            batch.push((entry, bytes.len()));
            rows.push((log_id, bytes));
        }
        self.recent_entries().push(batch);
        let committed = self.committed_hint().due();
        if proposed_here || !self.writer.idle() {
            // The leader's own proposals, on the log writer thread: patched openraft
            // sends them to the followers while this write is in flight, and goes on
            // without waiting for it (see vendor/README.md). Anything else waits here
            // only if the queue is not empty, to stay behind what is in it.
            let (wal, timing) = (self.wal.clone(), self.append_timing.clone());
            let recent = self.recent.clone();
            self.writer.queue(move || {
                let written = write_entries(&wal, &rows, committed, &timing);
                // Before the callback: whoever waits for it may reopen the files.
                drop(wal);
                mark_durable(&recent, &rows, &written);
                callback.log_io_completed(written);
            })?;
        } else {
            // A follower answers its leader only after this write, so there is nothing to
            // overlap it with, and handing it to another thread only added two thread
            // wake-ups to every round (about 7% of a 1-client write, docs/perf.md).
            // It blocks this worker for one write and sync (~0.1 ms); the runtime has
            // others.
            let written = write_entries(&self.wal, &rows, committed, &self.append_timing);
            mark_durable(&self.recent, &rows, &written);
            callback.log_io_completed(written);
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Deletes `log_id.index` itself too: truncation removes the conflicting entry.
        self.truncate_from(log_id.index).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_meta(KEY_PURGED, log_id, ErrorSubject::Logs)
            .await?;
        self.recent_entries().purge_upto(log_id.index);
        self.purged_end
            .fetch_max(end_of(Some(log_id)), Ordering::AcqRel);
        // Behind the durable purge point only (see `wal`'s recovery rule 5).
        let wal = self.wal.clone();
        let delete = move || {
            wal.purge(log_id.index);
            Ok(())
        };
        self.writer
            .run(ErrorSubject::Logs, ErrorVerb::Delete, delete)
            .await
    }
}

impl LogStore {
    fn committed_hint(&self) -> std::sync::MutexGuard<'_, CommittedHint> {
        self.committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn recent_entries(&self) -> std::sync::MutexGuard<'_, RecentEntries> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes the log's conflicting tail from `from` on, durably, before returning.
    async fn truncate_from(&self, from: u64) -> Result<(), StorageError> {
        self.recent_entries().truncate_from(from);
        let wal = self.wal.clone();
        let truncate = move || Ok(wal.truncate(from)?);
        self.writer
            .run(ErrorSubject::Logs, ErrorVerb::Delete, truncate)
            .await
    }
}
