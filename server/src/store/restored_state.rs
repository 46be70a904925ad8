//! [`RestoredState`]: a node's `state.redb` written from a backup's rows by
//! `raft3d restore` (the format is `crate::backup`'s).
//!
//! The file holds the farm's rows and its clock at **no log position**: the restored
//! cluster is a new one, its log starts empty, and its nodes apply their own log (the
//! first membership, then every write) over this farm. Every node of the new cluster
//! gets a file with the same rows, so their farms start equal, as Raft needs. Nothing
//! that belongs to the old cluster's log comes along: not its last applied index or
//! membership, not the change stream's journal, not the printers' driver term (the new
//! cluster's terms start at 1 again; the old term would fence every driver report).
//!
//! Owns: writing and checking such a file. Must not touch: a file a node has opened.

use super::db::{put_json, DbError};
use super::tables::{EVENTS, FARM_TABLES, KEY_CLOCK, SM_META};
use super::StateMachineStore;
use redb::{Database, TableDefinition, TableHandle, WriteTransaction};
use std::path::Path;

/// The tables of a farm a backup carries: every farm table but the change stream's
/// journal (a restored cluster's stream starts afresh).
pub fn backed_up_tables(
) -> impl Iterator<Item = TableDefinition<'static, &'static str, &'static [u8]>> {
    FARM_TABLES
        .into_iter()
        .filter(|t| t.name() != EVENTS.name())
}

/// Rows per write transaction: a big farm is written in bounded steps, not in one
/// transaction as large as the farm (the file is only used once it is complete).
const ROWS_PER_COMMIT: usize = 10_000;

/// Why a restored file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the backup names a table this build does not know: {0:?}")]
    UnknownTable(String),
    #[error("the restored farm does not load: {0}")]
    Unloadable(DbError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A `state.redb` being filled; see the module doc.
pub struct RestoredState {
    db: Database,
    txn: Option<WriteTransaction>,
    in_txn: usize,
}

impl RestoredState {
    /// Creates the file at `path` (which must not exist) with the node's schema.
    pub fn create(path: &Path) -> Result<Self, RestoreError> {
        // A node's own open makes every table and the schema record; closing it leaves
        // an empty farm file to fill.
        drop(StateMachineStore::open_on(path, None)?);
        let db = Database::open(path).map_err(DbError::from)?;
        Ok(Self {
            db,
            txn: None,
            in_txn: 0,
        })
    }

    /// Writes one row of table `table` (its name in the backup).
    pub fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), RestoreError> {
        let definition = backed_up_tables()
            .find(|t| t.name() == table)
            .ok_or_else(|| RestoreError::UnknownTable(table.to_owned()))?;
        if self.txn.is_none() {
            self.txn = Some(self.db.begin_write().map_err(DbError::from)?);
        }
        if let Some(txn) = &self.txn {
            let mut rows = txn.open_table(definition).map_err(DbError::from)?;
            rows.insert(key, value).map_err(DbError::from)?;
        }
        self.in_txn += 1;
        if self.in_txn >= ROWS_PER_COMMIT {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), RestoreError> {
        if let Some(txn) = self.txn.take() {
            txn.commit().map_err(DbError::from)?;
        }
        self.in_txn = 0;
        Ok(())
    }

    /// Stores the farm's clock, commits durably, closes the file and opens it as a node
    /// would (so rows a node could not load are refused now, not at its first start);
    /// returns the farm's state digest (the one `GET /api/v1/cluster` shows).
    pub fn finish(mut self, path: &Path, clock_ms: u64) -> Result<u64, RestoreError> {
        self.commit()?;
        let txn = self.db.begin_write().map_err(DbError::from)?;
        {
            let mut meta = txn.open_table(SM_META).map_err(DbError::from)?;
            put_json(&mut meta, KEY_CLOCK, &clock_ms)?;
        }
        txn.commit().map_err(DbError::from)?;
        drop(self.db);
        let store = StateMachineStore::open_on(path, None).map_err(RestoreError::Unloadable)?;
        let digest = store.read().farm.digest();
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_farm_tables_restore_and_load_and_others_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.redb");
        let mut state = RestoredState::create(&path).expect("created");
        let printer = br#"{"id":"p1","company":"Prusa","model":"MK4"}"#;
        state.put("printers", "p1", printer).expect("a printer row");
        for table in ["events", "sm_meta", "log", "nonsense"] {
            let refused = state.put(table, "k", b"{}");
            assert!(
                matches!(refused, Err(RestoreError::UnknownTable(ref t)) if t == table),
                "{table}: {refused:?}"
            );
        }
        let digest = state.finish(&path, 42).expect("finished");
        let store = StateMachineStore::open_on(&path, None).expect("opens as a node's file");
        let applied = store.read();
        assert_eq!(applied.farm.digest(), digest);
        assert_eq!(applied.farm.clock_ms(), 42);
        assert!(applied.last_applied.is_none(), "no log position");
        assert_eq!(applied.farm.counts().0, 1, "the printer");
    }

    #[test]
    fn a_row_a_node_cannot_load_fails_the_restore() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.redb");
        let mut state = RestoredState::create(&path).expect("created");
        state
            .put("printers", "p1", b"{\"id\":7}")
            .expect("stored as given");
        let failed = state.finish(&path, 0);
        assert!(
            matches!(failed, Err(RestoreError::Unloadable(_))),
            "{failed:?}"
        );
    }
}
