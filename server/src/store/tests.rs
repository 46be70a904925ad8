//! openraft's own storage test suite against the redb stores, plus a restart test.

use super::{LogStore, StateMachineStore};
use crate::raft::typ::{StorageError, Vote};
use crate::raft::TypeConfig;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb};
use tempfile::TempDir;

/// Builds stores for a node with this id. The suite's entries are all proposed by node 0,
/// so id 0 takes the leader's append path (write on the log-writer thread) and any other id
/// the follower's (write before returning).
struct RedbBuilder {
    local_id: u64,
}

const LEADER: RedbBuilder = RedbBuilder { local_id: 0 };
const FOLLOWER: RedbBuilder = RedbBuilder { local_id: 1 };

fn open(dir: &TempDir, local_id: u64) -> Result<(LogStore, StateMachineStore), StorageError> {
    let log = LogStore::open(&dir.path().join("raft-log.redb"), local_id)
        .map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    let sm = StateMachineStore::open(&dir.path().join("state.redb"))
        .map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    Ok((log, sm))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new()
            .map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let (log, sm) = open(&dir, self.local_id)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn the_redb_store_passes_openraft_storage_suite_as_leader() -> Result<(), StorageError> {
    Suite::test_all(LEADER)
}

#[test]
fn the_redb_store_passes_openraft_storage_suite_as_follower() -> Result<(), StorageError> {
    Suite::test_all(FOLLOWER)
}

#[tokio::test]
async fn vote_log_and_state_survive_a_restart() -> Result<(), StorageError> {
    use app::{Command, Printer, Proposal};
    use openraft::{Entry, EntryPayload, LogId, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    let dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let vote = Vote::new(3, 1);
    let printer = Printer::new(
        app::Id::parse("p1").expect("id"),
        serde_json::from_str("\"Prusa\"").expect("text"),
        serde_json::from_str("\"MK4\"").expect("text"),
    );
    let members = BTreeMap::from([(1u64, crate::raft::NodeAddr::default())]);
    let entries = vec![
        Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), 1),
            payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], members)),
        },
        Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), 2),
            payload: EntryPayload::Normal(vec![Proposal {
                command: Command::CreatePrinter(printer.clone()),
                at_ms: 5,
                idempotency: None,
            }]),
        },
    ];
    {
        let (mut log, mut sm) = open(&dir, FOLLOWER.local_id)?;
        log.save_vote(&vote).await?;
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries.clone()).await?;
        sm.apply(entries.clone()).await?;
    }
    let (mut log, mut sm) = open(&dir, FOLLOWER.local_id)?;
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

/// A farm of 100k jobs goes through a snapshot build on one store and an install on a
/// fresh one (what a wiped follower gets), ending with the same farm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_100k_jobs_installs_on_a_fresh_store() -> Result<(), StorageError> {
    use app::{Command, Filament, FilamentType, PrintJob, Printer, Proposal};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};

    const JOBS: u64 = 100_000;
    let text = |s: &str| serde_json::from_value(serde_json::json!(s)).expect("text");
    let id = |s: String| app::Id::parse(&s).expect("id");
    let mut commands = vec![
        Command::CreatePrinter(Printer::new(id("p1".into()), text("Prusa"), text("MK4"))),
        Command::CreateFilament(Filament {
            id: id("f1".into()),
            kind: FilamentType::Pla,
            color: text("red"),
            total_weight_in_grams: JOBS * 10,
            remaining_weight_in_grams: JOBS * 10,
        }),
    ];
    commands.extend((0..JOBS).map(|n| {
        Command::CreatePrintJob(PrintJob::queued(
            id(format!("job-{n:06}")),
            id("p1".into()),
            id("f1".into()),
            text("plates/bracket-v2.gcode"),
            7,
        ))
    }));
    let entries: Vec<Entry<TypeConfig>> = commands
        .into_iter()
        .enumerate()
        .map(|(i, command)| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i as u64 + 1),
            payload: EntryPayload::Normal(vec![Proposal {
                command,
                at_ms: 0,
                // A few keys with odd characters: the snapshot copies them as JSON strings.
                idempotency: (i % 20_000 == 0).then(|| app::IdempotencyClaim {
                    key: format!("key \"{i}\" \\ é"),
                    fingerprint: i as u64,
                }),
            }]),
        })
        .collect();

    let source_dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let (_, mut source) = open(&source_dir, FOLLOWER.local_id)?;
    for batch in entries.chunks(5_000) {
        source.apply(batch.to_vec()).await?;
    }
    let started = std::time::Instant::now();
    let snapshot = source.build_snapshot().await?;
    let built = started.elapsed();
    let mut snapshot = snapshot;
    let bytes = snapshot.snapshot.len();
    // The bytes, copied from the stored rows, are exactly the farm's snapshot format.
    let decoded: app::FarmSnapshot =
        serde_json::from_reader(std::io::BufReader::new(&mut *snapshot.snapshot))
            .expect("snapshot is JSON");
    assert_eq!(decoded, source.read().farm.to_snapshot());

    let target_dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let (_, mut target) = open(&target_dir, FOLLOWER.local_id)?;
    let started = std::time::Instant::now();
    target
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await?;
    let installed = started.elapsed();
    println!("100k-job snapshot: {bytes} bytes, built in {built:?}, installed in {installed:?}");

    assert_eq!(target.read().farm.counts(), (1, 1, JOBS as usize));
    assert_eq!(target.read().farm.digest(), source.read().farm.digest());
    assert_eq!(target.read().farm.reserved(&id("f1".into())), JOBS * 7);
    // And the installed state is on disk, not only in memory.
    drop(target);
    let (_, reopened) = open(&target_dir, FOLLOWER.local_id)?;
    assert_eq!(reopened.read().farm.digest(), source.read().farm.digest());
    assert_eq!(reopened.read().last_applied, snapshot.meta.last_log_id);
    Ok(())
}

/// One entry carrying several proposals yields one outcome per proposal, in order, and
/// a rejected proposal in the middle changes nothing for the ones around it (as if each
/// had been an entry of its own).
#[tokio::test]
async fn a_batch_entry_applies_each_proposal_in_order() -> Result<(), StorageError> {
    use app::{Command, Outcome, Printer, Proposal, Rejection};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    let dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let (_, mut sm) = open(&dir, FOLLOWER.local_id)?;
    let printer = |id: &str| {
        Printer::new(
            app::Id::parse(id).expect("id"),
            serde_json::from_str("\"Prusa\"").expect("text"),
            serde_json::from_str("\"MK4\"").expect("text"),
        )
    };
    let create = |p: Printer| Proposal {
        command: Command::CreatePrinter(p),
        at_ms: 1,
        idempotency: None,
    };
    let batch = vec![
        create(printer("p1")),
        create(printer("p1")),
        create(printer("p2")),
    ];
    let entry = Entry::<TypeConfig> {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Normal(batch),
    };
    let outcomes = sm.apply(vec![entry]).await?;
    let [outcomes] = outcomes.as_slice() else {
        panic!("one entry must give one list of outcomes, got {outcomes:?}");
    };
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                Outcome::Created(_),
                Outcome::Rejected(Rejection::DuplicateId { .. }),
                Outcome::Created(_),
            ]
        ),
        "{outcomes:?}"
    );
    let farm = &sm.read().farm;
    assert_eq!(farm.printers().count(), 2);
    Ok(())
}

/// Writes `raft-log.redb` as schema 2 did: the entries in the `log` table.
fn write_schema_2_log(path: &std::path::Path, entries: &[crate::raft::typ::Entry], vote: Vote) {
    use super::tables::{KEY_COMMITTED, KEY_PURGED, KEY_SCHEMA, KEY_VOTE, LOG, LOG_META};
    let db = redb::Database::create(path).expect("redb");
    let txn = db.begin_write().expect("txn");
    {
        let mut meta = txn.open_table(LOG_META).expect("meta");
        fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
            serde_json::to_vec(value).expect("encode")
        }
        meta.insert(KEY_SCHEMA, json(&2u64).as_slice())
            .expect("schema");
        meta.insert(KEY_VOTE, json(&vote).as_slice()).expect("vote");
        let committed = Some(entries[1].log_id);
        meta.insert(KEY_COMMITTED, json(&committed).as_slice())
            .expect("committed");
        meta.insert(KEY_PURGED, json(&entries[0].log_id).as_slice())
            .expect("purged");
        let mut log = txn.open_table(LOG).expect("log");
        for entry in entries {
            let bytes = serde_json::to_vec(entry).expect("encode");
            log.insert(entry.log_id.index, bytes.as_slice())
                .expect("entry");
        }
    }
    txn.commit().expect("commit");
}

fn normal_entries(
    term: u64,
    indexes: std::ops::RangeInclusive<u64>,
) -> Vec<crate::raft::typ::Entry> {
    indexes
        .map(|index| openraft::Entry::<TypeConfig> {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), index),
            payload: openraft::EntryPayload::Blank,
        })
        .collect()
}

/// A data directory of the previous layout (schema 2, entries in redb) opens with the
/// same log, vote and commit hint; its entries are moved into `wal/` once; a move cut
/// short (a half-written WAL beside the old table) starts over.
#[tokio::test]
async fn a_log_of_the_previous_layout_moves_into_the_wal_once() -> Result<(), StorageError> {
    use openraft::RaftLogReader;
    let dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let path = dir.path().join("raft-log.redb");
    let entries = normal_entries(3, 1..=2500);
    let vote = Vote::new(3, 1);
    // What a move cut short by a crash leaves: a WAL holding other entries beside a
    // file of schema 2 that still has its `log` table.
    {
        let (mut log, _) = open(&dir, 1)?;
        let other = normal_entries(9, 1..=3);
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, other).await?;
    }
    std::fs::remove_file(&path).expect("the new-layout file");
    write_schema_2_log(&path, &entries, vote);

    for reopen in 0..2 {
        let (mut log, _) = open(&dir, 1)?;
        assert_eq!(log.read_vote().await?, Some(vote), "reopen {reopen}");
        assert_eq!(log.read_committed().await?, Some(entries[1].log_id));
        let state = log.get_log_state().await?;
        assert_eq!(state.last_purged_log_id, Some(entries[0].log_id));
        assert_eq!(state.last_log_id, entries.last().map(|e| e.log_id));
        let read = log.try_get_log_entries(0..).await?;
        assert_eq!(
            read.iter().map(|e| e.log_id).collect::<Vec<_>>(),
            entries[1..].iter().map(|e| e.log_id).collect::<Vec<_>>(),
            "reopen {reopen}: the entries after the purge point, once, of term 3"
        );
    }
    let db = redb::Database::create(&path).expect("redb");
    let txn = redb::ReadableDatabase::begin_read(&db).expect("txn");
    let table = txn.open_table(super::tables::LOG).expect("log table");
    assert_eq!(redb::ReadableTableMetadata::len(&table).expect("len"), 0);
    Ok(())
}

/// A few applied printers and the snapshot built of them.
async fn store_with_snapshot(
    dir: &TempDir,
) -> Result<(StateMachineStore, crate::raft::typ::Snapshot), StorageError> {
    use openraft::RaftSnapshotBuilder;
    let (_, mut sm) = open(dir, FOLLOWER.local_id)?;
    let entries = (1..=3)
        .map(|index| openraft::Entry::<TypeConfig> {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: openraft::EntryPayload::Normal(vec![app::Proposal {
                command: app::Command::CreatePrinter(app::Printer::new(
                    app::Id::parse(&format!("p{index}")).expect("id"),
                    serde_json::from_str("\"Prusa\"").expect("text"),
                    serde_json::from_str("\"MK4\"").expect("text"),
                )),
                at_ms: 1,
                idempotency: None,
            }]),
        })
        .collect::<Vec<_>>();
    sm.apply(entries).await?;
    let snapshot = sm.build_snapshot().await?;
    Ok((sm, snapshot))
}

fn snapshot_bytes(snapshot: &mut crate::raft::typ::Snapshot) -> Vec<u8> {
    let mut bytes = Vec::new();
    snapshot.snapshot.rewind();
    std::io::Read::read_to_end(&mut *snapshot.snapshot, &mut bytes).expect("read");
    bytes
}

fn snapshot_dir_names(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))
        .expect("snapshots/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A data directory of the previous layout (schema 2: the snapshot's bytes in the
/// `snapshot` table) opens with the same snapshot, its bytes moved into `snapshots/`
/// and out of the table; a move cut short (the file written, the bytes still in the
/// table) starts over.
#[tokio::test]
async fn a_snapshot_of_the_previous_layout_moves_into_its_file() -> Result<(), StorageError> {
    use super::tables::{KEY_SCHEMA, KEY_SNAPSHOT_DATA, SM_META, SNAPSHOT};
    let dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let (sm, mut built) = store_with_snapshot(&dir).await?;
    let bytes = snapshot_bytes(&mut built);
    let meta = built.meta.clone();
    drop((sm, built));
    // Back to schema 2: the bytes in the table, the directory holding a stray copy.
    {
        let db = redb::Database::create(dir.path().join("state.redb")).expect("redb");
        let txn = db.begin_write().expect("txn");
        txn.open_table(SNAPSHOT)
            .expect("table")
            .insert(KEY_SNAPSHOT_DATA, bytes.as_slice())
            .expect("data");
        txn.open_table(SM_META)
            .expect("meta")
            .insert(KEY_SCHEMA, b"2".as_slice())
            .expect("schema");
        txn.commit().expect("commit");
    }
    for reopen in 0..2 {
        let (_, mut sm) = open(&dir, FOLLOWER.local_id)?;
        let mut current = sm.get_current_snapshot().await?.expect("a snapshot");
        assert_eq!(current.meta, meta, "reopen {reopen}");
        assert_eq!(snapshot_bytes(&mut current), bytes, "reopen {reopen}");
        assert_eq!(
            snapshot_dir_names(&dir),
            [format!("{}.snap", current.meta.snapshot_id)]
        );
        let db_bytes = {
            drop(current);
            drop(sm);
            let db = redb::Database::create(dir.path().join("state.redb")).expect("redb");
            let txn = redb::ReadableDatabase::begin_read(&db).expect("txn");
            let table = txn.open_table(SNAPSHOT).expect("table");
            let data = redb::ReadableTable::get(&table, KEY_SNAPSHOT_DATA).expect("get");
            data.map(|d| d.value().len())
        };
        assert_eq!(db_bytes, None, "reopen {reopen}: the bytes left the table");
    }
    Ok(())
}

/// At open, a build or transfer cut short (`.tmp`) and a snapshot no meta names go; the
/// current one stays. A snapshot installed from elsewhere becomes the current one and
/// replaces the file of the one before.
#[tokio::test]
async fn strays_go_at_open_and_an_installed_snapshot_replaces_the_current_one(
) -> Result<(), StorageError> {
    let dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let (sm, built) = store_with_snapshot(&dir).await?;
    let current = format!("{}.snap", built.meta.snapshot_id);
    drop((sm, built));
    for stray in ["0190aa.tmp", "1-2-0190ab.snap"] {
        std::fs::write(dir.path().join("snapshots").join(stray), b"{").expect("stray");
    }
    let (_, mut sm) = open(&dir, FOLLOWER.local_id)?;
    assert_eq!(snapshot_dir_names(&dir), [current]);

    // Another store's (newer) snapshot, installed here.
    let other_dir =
        TempDir::new().map_err(|e| super::io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
    let (mut other, mut newer) = store_with_snapshot(&other_dir).await?;
    newer.meta.last_log_id = Some(openraft::LogId::new(
        openraft::CommittedLeaderId::new(2, 1),
        9,
    ));
    let bytes = snapshot_bytes(&mut newer);
    sm.install_snapshot(&newer.meta, newer.snapshot).await?;
    let mut installed = sm.get_current_snapshot().await?.expect("a snapshot");
    assert_eq!(installed.meta.last_log_id, newer.meta.last_log_id);
    assert_eq!(snapshot_bytes(&mut installed), bytes);
    assert_eq!(
        snapshot_dir_names(&dir),
        [format!("{}.snap", newer.meta.snapshot_id)]
    );
    // A snapshot that does not decode is refused and leaves nothing behind.
    let mut broken = sm.begin_receiving_snapshot().await?;
    std::io::Write::write_all(&mut *broken, b"{\"printers\":[").expect("write");
    let mut meta = newer.meta.clone();
    meta.snapshot_id = "3-10-broken".into();
    assert!(sm.install_snapshot(&meta, broken).await.is_err());
    assert_eq!(
        snapshot_dir_names(&dir),
        [format!("{}.snap", newer.meta.snapshot_id)]
    );
    // The other store still serves its own.
    assert!(other.get_current_snapshot().await?.is_some());
    Ok(())
}
