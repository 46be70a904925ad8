//! [`StateWriter`]: the one thread that writes `state.redb`, in apply order, off the
//! write path.
//!
//! An applied entry is already durable in the Raft log of this node and of a majority,
//! so a client need not wait for its farm rows to reach `state.redb`: `apply` updates the
//! in-memory farm, queues the rows it changed here and returns. This thread commits
//! whatever is queued as one transaction (group commit), without fsync except at least
//! every [`MAX_UNSYNCED`], when a caller asks for it (snapshots) and at shutdown. Rows
//! always commit together with the position they bring the farm to, so the file is
//! always the farm at some point of the log, and openraft re-applies what comes after.
//!
//! If a write fails, the thread writes nothing more: every later request gets the error,
//! which openraft turns into stopping the node (a node that cannot trust its disk must
//! not go on).
//!
//! Owns: the write order and durability of `state.redb`. Must not touch: the in-memory
//! farm (that is `state_machine`'s) or the Raft log.

use super::db::{put_json, DbError, OpenDatabase};
use super::queue_thread::QueueThread;
use super::tables::{KEY_CLOCK, KEY_LAST_APPLIED, KEY_MEMBERSHIP, SM_META};
use crate::raft::typ::{LogId, StoredMembership};
use redb::{Database, Durability, TableDefinition, WriteTransaction};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Rows are committed without fsync, but never longer than this apart (also when the
/// node goes idle): it bounds how much committed log a crashed node re-applies.
const MAX_UNSYNCED: Duration = Duration::from_millis(100);

/// How long the first queued rows wait for more before they are committed. The farm in
/// memory is already current (reads never wait for this file), so this only groups
/// commits: with one client, about a fifth as many as when each apply woke the thread
/// (docs/perf.md).
const GATHER: Duration = Duration::from_millis(5);

/// One row to write (`Some`) or delete (`None`).
pub type Row = (
    TableDefinition<'static, &'static str, &'static [u8]>,
    String,
    Option<Vec<u8>>,
);

/// How far into the log the farm on disk is, stored with every batch of rows.
#[derive(Debug, Clone)]
pub struct Position {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub clock_ms: u64,
}

impl Position {
    pub fn write(&self, txn: &WriteTransaction) -> Result<(), DbError> {
        let mut meta = txn.open_table(SM_META)?;
        put_json(&mut meta, KEY_LAST_APPLIED, &self.last_applied)?;
        put_json(&mut meta, KEY_MEMBERSHIP, &self.membership)?;
        put_json(&mut meta, KEY_CLOCK, &self.clock_ms)?;
        Ok(())
    }
}

/// Work that needs the file to itself, after every earlier write: `None` if the writer
/// has stopped.
type Exclusive = Box<dyn FnOnce(Option<&Database>) + Send>;

enum Job {
    Rows(Vec<Row>, Position),
    Exclusive(Exclusive),
}

/// Handle on the writer thread; dropping it commits what is queued, durably, and waits
/// for the thread to end (so the file is closed when the store is gone).
pub struct StateWriter {
    thread: QueueThread<Job>,
    failed: Arc<OnceLock<String>>,
}

impl StateWriter {
    pub fn start(db: Arc<OpenDatabase>) -> std::io::Result<Self> {
        let failed = Arc::new(OnceLock::new());
        let thread = QueueThread::start("state-writer", {
            let failed = failed.clone();
            move |jobs| run(&db, &jobs, &failed)
        })?;
        Ok(Self { thread, failed })
    }

    /// Queues `rows`, which bring the farm to `position`.
    pub fn write(&self, rows: Vec<Row>, position: Position) -> Result<(), DbError> {
        self.check()?;
        self.send(Job::Rows(rows, position))
    }

    /// Runs `work` on the writer thread once everything queued before it is committed,
    /// and returns its result.
    pub async fn exclusive<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
    {
        self.check()?;
        let (reply, result) = tokio::sync::oneshot::channel();
        let failed = self.failed.clone();
        self.send(Job::Exclusive(Box::new(move |db| {
            let _ = reply.send(match db {
                Some(db) => work(db),
                None => Err(stopped(&failed)),
            });
        })))?;
        result.await.unwrap_or_else(|_| Err(stopped(&self.failed)))
    }

    fn check(&self) -> Result<(), DbError> {
        match self.failed.get() {
            Some(_) => Err(stopped(&self.failed)),
            None => Ok(()),
        }
    }

    fn send(&self, job: Job) -> Result<(), DbError> {
        self.thread.send(job).map_err(|_| stopped(&self.failed))
    }
}

fn stopped(failed: &OnceLock<String>) -> DbError {
    DbError::WriterStopped(
        failed
            .get()
            .cloned()
            .unwrap_or_else(|| "the node is shutting down".into()),
    )
}

fn run(db: &Database, jobs: &mpsc::Receiver<Job>, failed: &OnceLock<String>) {
    let mut last_durable = Instant::now();
    let mut unsynced = false;
    let mut carried: Option<Job> = None;
    loop {
        let job = match carried.take() {
            Some(job) => job,
            None => match jobs.recv_timeout(MAX_UNSYNCED) {
                Ok(job) => job,
                Err(timeout_or_closed) => {
                    if unsynced && failed.get().is_none() {
                        if let Err(e) = sync(db) {
                            stop(failed, &e);
                        }
                        unsynced = false;
                        last_durable = Instant::now();
                    }
                    if timeout_or_closed == RecvTimeoutError::Disconnected {
                        return;
                    }
                    continue;
                }
            },
        };
        let (rows, position) = match job {
            Job::Exclusive(work) => {
                work((failed.get().is_none()).then_some(db));
                continue;
            }
            Job::Rows(rows, position) => (rows, position),
        };
        // Let more applies queue up first: a commit writes several pages even without
        // fsync, and every apply that finds this thread asleep wakes it (two context
        // switches, costly on a VM). Sleeping, it is not woken by each send.
        std::thread::sleep(GATHER);
        // Group commit: everything queued meanwhile goes into the same transaction, up to
        // the next exclusive job, which must see these rows committed.
        let mut batches = vec![rows];
        let mut position = position;
        while let Ok(next) = jobs.try_recv() {
            match next {
                Job::Rows(rows, next_position) => {
                    batches.push(rows);
                    position = next_position;
                }
                exclusive @ Job::Exclusive(_) => {
                    carried = Some(exclusive);
                    break;
                }
            }
        }
        if failed.get().is_some() {
            continue;
        }
        let durable = last_durable.elapsed() >= MAX_UNSYNCED;
        match commit(db, &batches, &position, durable) {
            Ok(()) if durable => {
                last_durable = Instant::now();
                unsynced = false;
            }
            Ok(()) => unsynced = true,
            Err(e) => stop(failed, &e),
        }
    }
}

/// After a failed write nothing more is written: later rows would describe a farm the
/// file does not hold.
fn stop(failed: &OnceLock<String>, error: &DbError) {
    tracing::error!(%error, "writing the farm state failed; the node stops applying");
    let _ = failed.set(error.to_string());
}

fn commit(
    db: &Database,
    batches: &[Vec<Row>],
    position: &Position,
    durable: bool,
) -> Result<(), DbError> {
    let mut txn = db.begin_write()?;
    if !durable {
        txn.set_durability(Durability::None)?;
    }
    for (table, key, value) in batches.iter().flatten() {
        let mut table = txn.open_table(*table)?;
        match value {
            Some(bytes) => table.insert(key.as_str(), bytes.as_slice())?,
            None => table.remove(key.as_str())?,
        };
    }
    position.write(&txn)?;
    txn.commit()?;
    Ok(())
}

/// An empty durable commit: redb makes every earlier unsynced commit durable with it.
pub fn sync(db: &Database) -> Result<(), DbError> {
    db.begin_write()?.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::get_json;
    use crate::store::tables::PRINTERS;
    use openraft::{CommittedLeaderId, LogId};
    use redb::{ReadableDatabase, ReadableTableMetadata};

    fn position(index: u64) -> Position {
        Position {
            last_applied: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            membership: StoredMembership::default(),
            clock_ms: index,
        }
    }

    fn rows(index: u64) -> Vec<Row> {
        vec![(PRINTERS, format!("p{index}"), Some(b"{}".to_vec()))]
    }

    /// Exclusive work sees every row queued before it, with the matching position, and
    /// dropping the writer commits what is still queued.
    #[tokio::test]
    async fn exclusive_work_and_shutdown_come_after_every_queued_write(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = Arc::new(OpenDatabase::new(Database::create(
            dir.path().join("state.redb"),
        )?));
        let writer = StateWriter::start(db.clone())?;
        for index in 1..=500 {
            writer.write(rows(index), position(index))?;
        }
        let (count, last_applied) = writer
            .exclusive(|db| {
                let txn = db.begin_read()?;
                let count = txn.open_table(PRINTERS)?.len()?;
                let last: Option<Option<LogId<u64>>> =
                    get_json(&txn.open_table(SM_META)?, KEY_LAST_APPLIED)?;
                Ok((count, last.flatten()))
            })
            .await?;
        assert_eq!(count, 500);
        assert_eq!(last_applied, position(500).last_applied);

        for index in 501..=600 {
            writer.write(rows(index), position(index))?;
        }
        drop(writer);
        let txn = db.begin_read()?;
        assert_eq!(txn.open_table(PRINTERS)?.len()?, 600);
        let clock: Option<u64> = get_json(&txn.open_table(SM_META)?, KEY_CLOCK)?;
        assert_eq!(clock, Some(600));
        Ok(())
    }
}
