//! openraft's own storage test suite against the redb stores, plus a restart test.

use super::{LogStore, StateMachineStore};
use crate::raft::typ::{StorageError, Vote};
use crate::raft::TypeConfig;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb};
use tempfile::TempDir;

struct RedbBuilder;

fn open(dir: &TempDir) -> Result<(LogStore, StateMachineStore), StorageError> {
    let log = LogStore::open(&dir.path().join("raft-log.redb"))
        .map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    let sm = StateMachineStore::open(&dir.path().join("state.redb"))
        .map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    Ok((log, sm))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new()
            .map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let (log, sm) = open(&dir)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn the_redb_store_passes_openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(RedbBuilder)
}

#[tokio::test]
async fn vote_log_and_state_survive_a_restart() -> Result<(), StorageError> {
    use app::{Command, Printer, Proposal};
    use openraft::{Entry, EntryPayload, LogId, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    let dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let vote = Vote::new(3, 1);
    let printer = Printer {
        id: app::Id::parse("p1").expect("id"),
        company: serde_json::from_str("\"Prusa\"").expect("text"),
        model: serde_json::from_str("\"MK4\"").expect("text"),
    };
    let members = BTreeMap::from([(1u64, crate::raft::NodeAddr::default())]);
    let entries = vec![
        Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), 1),
            payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], members)),
        },
        Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), 2),
            payload: EntryPayload::Normal(Proposal {
                command: Command::CreatePrinter(printer.clone()),
                at_ms: 5,
                idempotency: None,
            }),
        },
    ];
    {
        let (mut log, mut sm) = open(&dir)?;
        log.save_vote(&vote).await?;
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries.clone()).await?;
        sm.apply(entries.clone()).await?;
    }
    let (mut log, mut sm) = open(&dir)?;
    assert_eq!(log.read_vote().await?, Some(vote));
    assert_eq!(
        log.get_log_state().await?.last_log_id,
        Some(entries[1].log_id)
    );
    let (applied, membership) = sm.applied_state().await?;
    assert_eq!(applied, Some(entries[1].log_id));
    assert_eq!(membership.log_id(), &Some(entries[0].log_id));
    assert_eq!(sm.read().farm.printer(&printer.id), Some(&printer));
    Ok(())
}
