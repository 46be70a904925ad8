//! The Raft log, vote and commit marker in `raft-log.redb`.
//!
//! Every `append` batch is one durable redb transaction (one fsync), and openraft is told
//! the entries are flushed only after that commit returns: nothing is acknowledged to a
//! leader, and so to a client, before it is on disk. The leader's `append` of its own
//! proposals returns once the write is started (its followers get the entries meanwhile);
//! any other append writes before returning. The newest entries are readable from memory
//! at once ([`RecentEntries`]).
//!
//! A purge only records the purge point (one small transaction); the entries are deleted
//! behind it in small chunks (see [`delete_purged`]). openraft 0.9 awaits
//! `purge` inside its core, and deleting the entries a snapshot frees in one transaction
//! held up every write for tens of milliseconds (docs/perf.md).

use super::db::{self, get_json, put_json, DbError, OpenDatabase};
use super::queue_thread::QueueThread;
use super::recent_entries::RecentEntries;
use super::tables::{KEY_COMMITTED, KEY_IDENTITY, KEY_PURGED, KEY_VOTE, LOG, LOG_META};
use super::{blocking, io_error};
use crate::histogram::SharedHistogram;
use crate::raft::typ::{Entry, LogId, NodeId, StorageError, Vote};
use crate::raft::TypeConfig;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Handle on the log file; cheap to clone (it is also the log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<OpenDatabase>,
    /// This node: entries it proposed as leader are written on the log writer thread.
    local_id: NodeId,
    committed: Arc<Mutex<CommittedHint>>,
    /// Index of the last purged entry plus one (0: none). Entries at or below it may
    /// still be on disk until [`delete_purged`] gets to them; readers skip them.
    purged_end: Arc<AtomicU64>,
    /// Held by the task deleting purged entries, so two purges do not delete at once.
    deleting: Arc<tokio::sync::Mutex<()>>,
    recent: Arc<Mutex<RecentEntries>>,
    writer: Arc<LogWriter>,
    /// How long each durable append took (see [`LogStore::append_timing`]).
    append_timing: SharedHistogram,
}

/// The thread that writes the leader's own proposals (see `append`), in order.
///
/// A thread of its own rather than tokio's blocking pool: the pool gives each write to
/// whichever idle thread comes first (five took turns on a leader), and that measured
/// slower at 1 client (docs/perf.md).
type LogWriter = QueueThread<WriteJob>;

type WriteJob = Box<dyn FnOnce() + Send>;

fn start_log_writer() -> std::io::Result<LogWriter> {
    QueueThread::start("log-writer", |jobs: Receiver<WriteJob>| {
        jobs.into_iter().for_each(|job| job())
    })
}

/// Encoded bytes of entries kept in memory: a few thousand single-write entries or
/// ~100 full batches, far more than replication and apply lag behind in normal running.
const RECENT_ENTRIES_BUDGET: usize = 2 << 20;

/// Purged entries deleted per transaction: small enough that an append waiting for
/// redb's writer lock waits a few milliseconds at most.
const PURGE_CHUNK: u64 = 256;

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
        let db = db::open(path, disks, LOG_META, |txn| {
            txn.open_table(LOG)?;
            Ok(())
        })?;
        let purged: Option<LogId> = get_json(&db.begin_read()?.open_table(LOG_META)?, KEY_PURGED)?;
        Ok(Self {
            db: Arc::new(OpenDatabase::new(db)),
            local_id,
            committed: Arc::default(),
            purged_end: Arc::new(AtomicU64::new(end_of(purged))),
            deleting: Arc::default(),
            recent: Arc::new(Mutex::new(RecentEntries::new(RECENT_ENTRIES_BUDGET))),
            writer: Arc::new(start_log_writer()?),
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
        let has_entries = txn.open_table(LOG)?.last()?.is_some();
        Ok((identity, has_vote || has_entries))
    }

    /// Writes the identity durably (at creation, and once more if the node adopts the
    /// cluster id of the cluster that adds it).
    pub fn save_identity<T: serde::Serialize>(&self, identity: &T) -> Result<(), DbError> {
        let txn = self.db.begin_write()?;
        put_json(&mut txn.open_table(LOG_META)?, KEY_IDENTITY, identity)?;
        txn.commit()?;
        Ok(())
    }

    /// Durations of the appends written so far (redb commit with fsync, on either path):
    /// the disk's share of every write's latency, for `/metrics`.
    pub fn append_timing(&self) -> SharedHistogram {
        self.append_timing.clone()
    }

    /// `raft-log.redb`, to learn when it is closed (see [`db::OpenFile`]).
    pub fn open_file(&self) -> db::OpenFile {
        self.db.open_file("raft-log.redb")
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
        blocking(subject, ErrorVerb::Write, move || {
            let txn = db.begin_write()?;
            put_json(&mut txn.open_table(LOG_META)?, key, &value)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

/// One transaction, one fsync, for a whole batch of encoded entries (and the commit
/// index, when one is due).
fn write_entries(
    db: &Database,
    rows: &[(u64, Vec<u8>)],
    committed: Option<LogId>,
    timing: &SharedHistogram,
) -> Result<(), DbError> {
    let started = Instant::now();
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(LOG)?;
        for (index, bytes) in rows {
            table.insert(index, bytes.as_slice())?;
        }
    }
    if let Some(committed) = committed {
        put_json(
            &mut txn.open_table(LOG_META)?,
            KEY_COMMITTED,
            &Some(committed),
        )?;
    }
    txn.commit()?;
    timing.record(started.elapsed());
    Ok(())
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
        // Taken under one lock: everything before `cached_from` is on disk (only the
        // newest batch can still be in flight, and it is never evicted).
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
        let db = self.db.clone();
        let mut entries = blocking(ErrorSubject::Logs, ErrorVerb::Read, move || {
            let txn = db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut entries = Vec::new();
            for row in table.range::<u64>(start..disk_end)? {
                entries.push(decode_entry(row?.1.value())?);
            }
            Ok(entries)
        })
        .await?;
        entries.extend(cached);
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let db = self.db.clone();
        blocking(ErrorSubject::Logs, ErrorVerb::Read, move || {
            let txn = db.begin_read()?;
            let purged: Option<LogId> = get_json(&txn.open_table(LOG_META)?, KEY_PURGED)?;
            // Purged entries not yet deleted are not part of the log.
            let last = match txn.open_table(LOG)?.last()? {
                Some((index, value)) if index.value() >= end_of(purged) => {
                    Some(decode_entry(value.value())?.log_id)
                }
                _ => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
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
        if let Some(latest) = self.committed_hint().latest {
            return Ok(Some(latest));
        }
        Ok(self
            .read_meta::<Option<LogId>>(KEY_COMMITTED, ErrorSubject::Store)
            .await?
            .flatten())
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
            let index = entry.log_id.index;
            proposed_here = entry.log_id.leader_id.node_id == self.local_id;
            batch.push((entry, bytes.len()));
            rows.push((index, bytes));
        }
        self.recent_entries().push(batch);
        let committed = self.committed_hint().due();
        // openraft awaits `callback` before it appends, truncates or purges again, so
        // appends reach the file one at a time, in order, on either path.
        if proposed_here {
            // The leader's own proposals, on the log writer thread: patched openraft
            // sends them to the followers while this write is in flight (see
            // vendor/README.md).
            let (db, timing) = (self.db.clone(), self.append_timing.clone());
            let write: WriteJob = Box::new(move || {
                let written = write_entries(&db, &rows, committed, &timing);
                // Before the callback: whoever waits for it may reopen the file.
                drop(db);
                callback.log_io_completed(written.map_err(std::io::Error::other));
            });
            if self.writer.send(write).is_err() {
                let stopped = std::io::Error::other("the log writer thread has stopped");
                return Err(io_error(ErrorSubject::Logs, ErrorVerb::Write, stopped));
            }
        } else {
            // A follower answers its leader only after this write, so there is nothing to
            // overlap it with, and handing it to another thread only added two thread
            // wake-ups to every round (about 7% of a 1-client write, docs/perf.md).
            // It blocks this worker for one commit (~0.15 ms); the runtime has others.
            let written = write_entries(&self.db, &rows, committed, &self.append_timing);
            callback.log_io_completed(written.map_err(std::io::Error::other));
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
        let db = Arc::downgrade(&self.db);
        tokio::spawn(delete_purged(db, self.deleting.clone(), log_id.index));
        Ok(())
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
        let db = self.db.clone();
        blocking(ErrorSubject::Logs, ErrorVerb::Delete, move || {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?
                .retain_in::<u64, _>(from.., |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

/// Deletes the entries up to `upto`, already purged, a chunk per transaction. The chunks
/// skip the fsync: the next append makes them durable, and entries left after a crash
/// are below the purge point, so never read and deleted by the next purge. A failure
/// only leaves entries behind, for the next purge to delete. It stops between chunks
/// once the store is gone (`db` is weak): the node's shutdown neither waits for it nor
/// keeps the file open because of it.
async fn delete_purged(db: Weak<OpenDatabase>, deleting: Arc<tokio::sync::Mutex<()>>, upto: u64) {
    let _one_at_a_time = deleting.lock().await;
    loop {
        let Some(db) = db.upgrade() else { return };
        let chunk = blocking(ErrorSubject::Logs, ErrorVerb::Delete, move || {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)?;
            let done = {
                let mut table = txn.open_table(LOG)?;
                let first = table.first()?.map(|(index, _)| index.value());
                match first {
                    Some(first) if first <= upto => {
                        let end = upto.min(first + PURGE_CHUNK - 1);
                        table.retain_in::<u64, _>(first..=end, |_, _| false)?;
                        end == upto
                    }
                    _ => true,
                }
            };
            txn.commit()?;
            Ok(done)
        })
        .await;
        match chunk {
            Ok(false) => tokio::task::yield_now().await,
            Ok(true) => return,
            Err(e) => {
                tracing::warn!(error = %e, upto, "deleting purged log entries failed; the next purge retries");
                return;
            }
        }
    }
}
