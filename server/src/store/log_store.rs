//! The Raft log, vote and commit marker in `raft-log.redb`.
//!
//! Every `append` batch is one durable redb transaction (one fsync), and openraft is told
//! the entries are flushed only after that commit returns: nothing is acknowledged to a
//! leader, and so to a client, before it is on disk.
//!
//! A purge only records the purge point (one small transaction); the entries are deleted
//! behind it in small chunks (see [`LogStore::delete_purged`]). openraft 0.9 awaits
//! `purge` inside its core, and deleting the ~9,000 entries a snapshot frees in one
//! transaction took 64-134 ms, during which no write could commit.

use super::db::{self, get_json, put_json, DbError};
use super::tables::{KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOG, LOG_META};
use super::{blocking, io_error};
use crate::raft::typ::{Entry, LogId, StorageError, Vote};
use crate::raft::TypeConfig;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Handle on the log file; cheap to clone (it is also the log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    committed: Arc<Mutex<CommittedHint>>,
    /// Index of the last purged entry plus one (0: none). Entries at or below it may
    /// still be on disk until [`LogStore::delete_purged`] gets to them; readers skip them.
    purged_end: Arc<AtomicU64>,
    /// Held by the task deleting purged entries, so two purges do not delete at once.
    deleting: Arc<tokio::sync::Mutex<()>>,
}

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
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = db::open(path, LOG_META, |txn| {
            txn.open_table(LOG)?;
            Ok(())
        })?;
        let purged: Option<LogId> = get_json(&db.begin_read()?.open_table(LOG_META)?, KEY_PURGED)?;
        Ok(Self {
            db: Arc::new(db),
            committed: Arc::default(),
            purged_end: Arc::new(AtomicU64::new(end_of(purged))),
            deleting: Arc::default(),
        })
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
        let db = self.db.clone();
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        let purged_end = self.purged_end.load(Ordering::Acquire);
        blocking(ErrorSubject::Logs, ErrorVerb::Read, move || {
            let txn = db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut entries = Vec::new();
            for row in table.range::<u64>(bounds)? {
                let (index, value) = row?;
                if index.value() < purged_end {
                    continue;
                }
                entries.push(decode_entry(value.value())?);
            }
            Ok(entries)
        })
        .await
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
        let rows = entries
            .into_iter()
            .map(|entry| Ok((entry.log_id.index, serde_json::to_vec(&entry)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        let committed = self.committed_hint().due();
        let db = self.db.clone();
        blocking(ErrorSubject::Logs, ErrorVerb::Write, move || {
            // One transaction, one fsync, for the whole batch.
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
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
            Ok(())
        })
        .await?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Deletes `log_id.index` itself too: truncation removes the conflicting entry.
        self.truncate_from(log_id.index).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_meta(KEY_PURGED, log_id, ErrorSubject::Logs)
            .await?;
        self.purged_end
            .fetch_max(end_of(Some(log_id)), Ordering::AcqRel);
        tokio::spawn(self.clone().delete_purged(log_id.index));
        Ok(())
    }
}

impl LogStore {
    fn committed_hint(&self) -> std::sync::MutexGuard<'_, CommittedHint> {
        self.committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes the log's conflicting tail from `from` on, durably, before returning.
    async fn truncate_from(&self, from: u64) -> Result<(), StorageError> {
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

    /// Deletes the entries up to `upto`, already purged, a chunk per transaction. The
    /// chunks skip the fsync: the next append makes them durable, and entries left
    /// after a crash are below the purge point, so never read and deleted by the next
    /// purge. A failure only leaves entries behind, for the next purge to delete.
    async fn delete_purged(self, upto: u64) {
        let _one_at_a_time = self.deleting.lock().await;
        loop {
            let db = self.db.clone();
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
}
