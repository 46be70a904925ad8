//! Small helpers over redb shared by both stores: one error type for "the disk said no",
//! and JSON get/put of meta values.

use super::tables::{Schema, KEY_SCHEMA};
use redb::{ReadableTable, StorageBackend, Table, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Anything that can go wrong talking to a redb file or decoding what it holds.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    #[error("stored value is not valid: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("state writer stopped: {0}")]
    WriterStopped(String),
    #[error("data was written by schema version {found}, this build reads version {reads}")]
    Schema { found: u64, reads: u64 },
    #[error("wal: {0}")]
    Wal(#[from] super::wal::WalError),
}

macro_rules! redb_errors_into_db_error {
    ($($error:ty),*) => {$(
        impl From<$error> for DbError {
            fn from(error: $error) -> Self {
                Self::Redb(error.into())
            }
        }
    )*};
}
redb_errors_into_db_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// redb's page cache per file. Its default (1 GiB) made RSS grow with the farm; reads
/// come from the in-memory `FarmState`, so redb only needs a cache for the B-tree pages
/// that appends and applies touch and for recently appended log entries. Anything else
/// is read from the OS page cache. 16 MiB per file cost ~25 MiB of RSS at 100k jobs
/// for no measurable write throughput (docs/perf.md).
const CACHE_BYTES: usize = 4 << 20;

pub type MetaTable<'txn> = Table<'txn, &'static str, &'static [u8]>;

pub fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, DbError> {
    match table.get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value())?)),
        None => Ok(None),
    }
}

pub fn put_json<T: Serialize>(
    table: &mut MetaTable<'_>,
    key: &str,
    value: &T,
) -> Result<(), DbError> {
    table.insert(key, serde_json::to_vec(value)?.as_slice())?;
    Ok(())
}

/// Where a node's two redb files, its WAL and its snapshot live when not in its data directory: the test hook
/// behind the power-loss and disk-fault tests (a simulated disk that drops unsynced
/// writes, or fails them). A production node never sets one.
pub trait Disks: Send + Sync + std::fmt::Debug {
    /// The storage for `file` (`raft-log.redb` or `state.redb`).
    fn open(&self, file: &str) -> Box<dyn StorageBackend>;
    /// The log's segment directory (`wal/`).
    fn wal(&self) -> std::sync::Arc<dyn super::wal::WalDisk>;
    /// The snapshot directory (`snapshots/`).
    fn snapshots(&self) -> std::sync::Arc<dyn super::wal::WalDisk>;
}

/// A boxed backend, as redb wants a sized one.
#[derive(Debug)]
struct BoxedBackend(Box<dyn StorageBackend>);

impl StorageBackend for BoxedBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
}

/// Opens (or creates) a redb file, creates the tables it needs and checks the schema.
/// With `disks`, the file named like `path`'s last part lives there instead.
pub fn open(
    path: &std::path::Path,
    disks: Option<&dyn Disks>,
    meta: TableDefinition<'static, &'static str, &'static [u8]>,
    schema: Schema,
    create: impl FnOnce(&redb::WriteTransaction) -> Result<(), DbError>,
) -> Result<redb::Database, DbError> {
    let mut builder = redb::Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    let db = match disks {
        None => builder.create(path)?,
        Some(disks) => {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            builder.create_with_backend(BoxedBackend(disks.open(file)))?
        }
    };
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(meta)?;
        match get_json::<u64>(&table, KEY_SCHEMA)? {
            Some(found) if found == schema.version => {}
            // The upgrade itself is the store's (`create`, and what it does after open).
            Some(found) if schema.upgrades_from.contains(&found) => {
                put_json(&mut table, KEY_SCHEMA, &schema.version)?;
            }
            Some(found) => {
                return Err(DbError::Schema {
                    found,
                    reads: schema.version,
                })
            }
            None => put_json(&mut table, KEY_SCHEMA, &schema.version)?,
        }
    }
    create(&txn)?;
    txn.commit()?;
    Ok(db)
}

/// A redb file open in this process, that can say when it is closed. redb closes a file
/// (and lets it be opened again) only when the last handle on it is dropped, and after a
/// node stops, handles still live for a moment in openraft's replication tasks, blocking
/// reads and HTTP connections that end on their own. A node's shutdown waits for
/// [`OpenFile::closed`] so that a restart in the same process (tests, `raft3d cluster`)
/// finds its files free.
pub struct OpenDatabase {
    // Dropped first: `closed` drops after `db` has closed the file, however long that takes.
    db: redb::Database,
    closed: CloseSignal,
}

impl OpenDatabase {
    pub fn new(db: redb::Database) -> Self {
        Self {
            db,
            closed: CloseSignal::default(),
        }
    }

    pub fn open_file(&self, name: &'static str) -> OpenFile {
        self.closed.watch(name)
    }
}

impl std::ops::Deref for OpenDatabase {
    type Target = redb::Database;

    fn deref(&self) -> &redb::Database {
        &self.db
    }
}

/// Held as the last field of what owns open files: dropped after them, it tells every
/// [`OpenFile`] watching it that they are closed.
#[derive(Debug)]
pub struct CloseSignal(tokio::sync::watch::Sender<()>);

impl Default for CloseSignal {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(()))
    }
}

impl CloseSignal {
    pub fn watch(&self, name: &'static str) -> OpenFile {
        OpenFile {
            name,
            closed: self.0.subscribe(),
        }
    }
}

/// Files of a store, seen from outside: learns when they are closed.
#[derive(Debug)]
pub struct OpenFile {
    pub name: &'static str,
    closed: tokio::sync::watch::Receiver<()>,
}

impl OpenFile {
    /// Waits until the files are closed; `false` if they are still open after `within`.
    pub async fn closed(mut self, within: std::time::Duration) -> bool {
        // Nothing is ever sent: the channel ends when its `CloseSignal` is dropped.
        let ended = async { while self.closed.changed().await.is_ok() {} };
        tokio::time::timeout(within, ended).await.is_ok()
    }
}
