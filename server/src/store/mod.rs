//! Durable storage on redb: the Raft log and vote ([`log_store`]) and the farm state
//! machine with its snapshots ([`state_machine`]) and consistent views for whole-list
//! answers ([`FarmView`]), in two files under the node's data
//! directory so the two never queue on redb's single writer.
//!
//! Owns: bytes on disk and their durability. Must not touch: farm rules (it calls
//! `app::FarmState::apply`) or the network. See `DESIGN.md` beside this file.

pub mod db;
pub mod event_journal;
mod farm_view;
pub mod log_store;
mod queue_thread;
mod recent_entries;
pub mod restored_state;
pub mod snapshot_files;
pub mod state_machine;
mod state_writer;
mod tables;
#[cfg(test)]
mod tests;
pub mod wal;

pub use farm_view::{FarmView, StoredList};
pub use log_store::LogStore;
pub use state_machine::StateMachineStore;

use crate::raft::typ;
use openraft::{ErrorSubject, ErrorVerb, StorageIOError};

/// Wraps any storage failure as openraft's `StorageError` (which stops the Raft core: a
/// node that cannot trust its disk must not go on voting).
pub(crate) fn io_error(
    subject: ErrorSubject<typ::NodeId>,
    verb: ErrorVerb,
    error: impl std::error::Error + 'static,
) -> typ::StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&error)).into()
}

/// Runs blocking redb work off the async runtime; a failure is reported to openraft as
/// a storage error about `subject`.
pub(crate) async fn blocking<T, F>(
    subject: ErrorSubject<typ::NodeId>,
    verb: ErrorVerb,
    work: F,
) -> Result<T, typ::StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, db::DbError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| io_error(subject, verb, e)),
        Err(join) => Err(io_error(subject, verb, join)),
    }
}
