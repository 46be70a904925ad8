//! What the log file promises on its own, cut off right after the call returns: a saved
//! vote and a created identity are on disk. (Appends are checked through a cluster in
//! `power_loss`.) A vote written without fsync would usually be saved by the next append
//! anyway, so only a cut right behind it can show it missing.

use crate::sim_disk::SimDisks;
use openraft::storage::RaftLogStorage;
use raft3d::raft::typ::Vote;
use raft3d::store::LogStore;
use tempfile::TempDir;

#[tokio::test]
async fn a_vote_and_an_identity_survive_a_power_cut_right_after_they_are_saved() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("raft-log.redb");
    let disks = SimDisks::default();
    let mut log = LogStore::open_on(&path, Some(&disks), 1).expect("open");
    let identity = raft3d::identity::load_or_create(&log, 1, Some("farm"), None).expect("identity");
    let vote = Vote::new(7, 2);
    log.save_vote(&vote).await.expect("vote saved");

    disks.power_cut();
    drop(log);
    let back = disks.after_power_cut();
    let mut log = LogStore::open_on(&path, Some(&back), 1).expect("reopen");
    assert_eq!(log.read_vote().await.expect("read"), Some(vote));
    let again = raft3d::identity::load_or_create(&log, 1, None, None).expect("identity");
    assert_eq!(again, identity);
}

/// The WAL on a simulated disk whose segments are a few records long: every append it
/// acknowledged survives a power cut, across segment rolls (a segment renamed without a
/// directory sync would vanish with its records) and purges.
#[test]
fn every_acknowledged_append_survives_a_power_cut_across_segment_rolls() {
    use raft3d::store::wal::{Record, Wal, WalDisk};
    use std::sync::Arc;
    let log_id =
        |index| raft3d::raft::typ::LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
    let mut disks = SimDisks::default();
    let mut acknowledged = 0;
    for round in 0..4u64 {
        let disk: Arc<dyn WalDisk> = raft3d::store::db::Disks::wal(&disks);
        let wal = Wal::open(disk, 512, 0).expect("open").wal;
        let held: Vec<u64> = wal
            .read(0, u64::MAX)
            .expect("read")
            .iter()
            .map(|(l, _)| l.index)
            .collect();
        assert_eq!(
            held,
            (1..=acknowledged).collect::<Vec<_>>(),
            "round {round}"
        );
        for _ in 0..40 {
            let bytes = vec![b'e'; 60];
            let next = acknowledged + 1;
            wal.append(&[Record::Entry {
                log_id: log_id(next),
                bytes: &bytes,
            }])
            .expect("append");
            acknowledged = next;
        }
        disks.power_cut();
        drop(wal);
        disks = disks.after_power_cut();
    }
}
