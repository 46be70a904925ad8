//! [`FarmView`]: the farm as `state.redb` holds it at one log index, for whole-list
//! answers.
//!
//! A list of every job of a farm with a year of history is tens of megabytes. Copying it
//! out of the in-memory farm would hold the farm's lock for the copy and the node's
//! memory for the whole answer. Instead the writer thread opens a read transaction once
//! every earlier apply is committed (MVCC: it keeps seeing that point while applies go
//! on, and the lock is never taken), and the rows, which are already the API's JSON, are
//! copied out in chunks as the client takes them: memory stays at a few chunks per
//! answer whatever the farm holds.
//!
//! Owns: reading rows for answers. Must not write anything.

use super::db::{get_json, DbError};
use super::state_machine::position_of;
use super::tables::{FILES, KEY_CLOCK, PRINTERS, PRINT_JOBS, SM_META};
use super::StateMachineStore;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc;

/// About this many bytes go into one chunk of an answer.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks made ahead of what the client has taken.
const CHUNKS_AHEAD: usize = 2;

/// A list the view can stream: rows whose JSON is the API's JSON of the object.
#[derive(Debug, Clone, Copy)]
pub enum StoredList {
    Printers,
    PrintJobs,
    Files,
}

impl StoredList {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Self::Printers => PRINTERS,
            Self::PrintJobs => PRINT_JOBS,
            Self::Files => FILES,
        }
    }
}

/// One consistent view of the farm's rows; see the module doc.
pub struct FarmView {
    txn: ReadTransaction,
    /// The last log index the view reflects.
    pub index: Option<u64>,
}

impl StateMachineStore {
    /// A view of the farm that reflects at least everything applied before the call.
    pub async fn view(&self) -> Result<FarmView, DbError> {
        let txn = self.writer().exclusive(|db| Ok(db.begin_read()?)).await?;
        let (last_applied, _) = position_of(&txn)?;
        Ok(FarmView {
            txn,
            index: last_applied.map(|l| l.index),
        })
    }
}

impl FarmView {
    /// Every row of `table` in key order, given to `each` until it returns `false`.
    pub fn each_row(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        mut each: impl FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), DbError> {
        for row in self.txn.open_table(table)?.iter()? {
            let (key, value) = row?;
            if !each(key.value(), value.value()) {
                break;
            }
        }
        Ok(())
    }

    /// `(sha256, size)` of every stored G-code file the view names.
    pub fn stored_files(&self) -> Result<Vec<(String, u64)>, DbError> {
        #[derive(serde::Deserialize)]
        struct FileRow {
            sha256: String,
            size: u64,
        }
        let mut files = Vec::new();
        for row in self.txn.open_table(FILES)?.iter()? {
            let (_, value) = row?;
            let file: FileRow = serde_json::from_slice(value.value())?;
            files.push((file.sha256, file.size));
        }
        Ok(files)
    }

    /// The farm's clock at the view (`sm_meta.clock_ms`): the last proposal's time.
    pub fn clock_ms(&self) -> Result<u64, DbError> {
        let meta = self.txn.open_table(SM_META)?;
        Ok(get_json(&meta, KEY_CLOCK)?.unwrap_or(0))
    }

    /// `list` as one JSON array, the rows `keep` accepts (given their JSON), in id order,
    /// as chunks made on a blocking thread no further ahead than [`CHUNKS_AHEAD`] of the
    /// receiver. The receiver dropping (the client went away) stops the work.
    pub fn stream_json_array(
        self,
        list: StoredList,
        keep: impl Fn(&[u8]) -> bool + Send + 'static,
    ) -> mpsc::Receiver<Result<Vec<u8>, DbError>> {
        let (chunks, receiver) = mpsc::channel(CHUNKS_AHEAD);
        tokio::task::spawn_blocking(move || {
            if let Err(error) = self.copy_rows(list, &keep, &chunks) {
                let _ = chunks.blocking_send(Err(error));
            }
        });
        receiver
    }

    fn copy_rows(
        &self,
        list: StoredList,
        keep: &dyn Fn(&[u8]) -> bool,
        chunks: &mpsc::Sender<Result<Vec<u8>, DbError>>,
    ) -> Result<(), DbError> {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES + 1024);
        chunk.push(b'[');
        let mut first = true;
        for row in self.txn.open_table(list.table())?.iter()? {
            let (_, value) = row?;
            let json = value.value();
            if !keep(json) {
                continue;
            }
            if !first {
                chunk.push(b',');
            }
            first = false;
            chunk.extend_from_slice(json);
            if chunk.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 1024));
                if chunks.blocking_send(Ok(full)).is_err() {
                    return Ok(());
                }
            }
        }
        chunk.push(b']');
        let _ = chunks.blocking_send(Ok(chunk));
        Ok(())
    }
}
