//! The WAL on real files: what a reopen finds after appends, truncations, purges, torn
//! writes and damage (the recovery rules of the module's doc, one test each or more).

use super::*;
use tempfile::TempDir;

const SMALL: u64 = 4096;

fn id(index: u64, term: u64) -> LogId {
    log_id(index, term, 1)
}

fn bytes_of(index: u64, term: u64) -> Vec<u8> {
    format!("entry {index} of term {term}").into_bytes()
}

fn open(dir: &TempDir, segment_bytes: u64, purged_end: u64) -> Result<Opened, WalError> {
    let disk = WalDir::new(dir.path().join("wal")).expect("wal dir");
    Wal::open(Arc::new(disk), segment_bytes, purged_end)
}

fn append(wal: &Wal, range: std::ops::RangeInclusive<u64>, term: u64) {
    let payloads: Vec<(LogId, Vec<u8>)> = range.map(|i| (id(i, term), bytes_of(i, term))).collect();
    let records: Vec<Record<'_>> = payloads
        .iter()
        .map(|(log_id, bytes)| Record::Entry {
            log_id: *log_id,
            bytes,
        })
        .collect();
    wal.append(&records).expect("append");
}

/// (index, term) of every entry, checking each one's bytes.
fn contents(wal: &Wal) -> Vec<(u64, u64)> {
    wal.read(0, u64::MAX)
        .expect("read")
        .into_iter()
        .map(|(log_id, bytes)| {
            assert_eq!(bytes, bytes_of(log_id.index, log_id.leader_id.term));
            (log_id.index, log_id.leader_id.term)
        })
        .collect()
}

fn terms(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<(u64, u64)> {
    range.map(|i| (i, term)).collect()
}

fn segments(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(SEGMENT_SUFFIX))
        .collect();
    names.sort();
    names
}

fn segment_path(dir: &TempDir, name: &str) -> std::path::PathBuf {
    dir.path().join("wal").join(name)
}

/// Overwrites bytes of a segment file behind the WAL's back.
fn poke(dir: &TempDir, name: &str, offset: u64, data: &[u8]) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir, name))
        .expect("segment");
    std::os::unix::fs::FileExt::write_all_at(&file, data, offset).expect("poke");
}

fn encoded(records: &[Record<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    for record in records {
        record.encode(&mut buf);
    }
    buf
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn entries_and_the_commit_hint_survive_a_reopen() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    assert!(opened.wal.is_empty());
    append(&opened.wal, 1..=3, 1);
    opened
        .wal
        .append(&[Record::Committed { log_id: id(2, 1) }])
        .expect("hint");
    append(&opened.wal, 4..=4, 1);
    assert_eq!(contents(&opened.wal), terms(1..=4, 1));
    let ranged: Vec<u64> = opened
        .wal
        .read(2, 4)
        .expect("read")
        .iter()
        .map(|(log_id, _)| log_id.index)
        .collect();
    assert_eq!(ranged, [2, 3]);
    drop(opened);
    let reopened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("reopen");
    assert_eq!(contents(&reopened.wal), terms(1..=4, 1));
    assert_eq!(reopened.committed, Some(id(2, 1)));
    assert_eq!(reopened.wal.last_log_id(), Some(id(4, 1)));
}

#[test]
fn a_truncation_is_durable_and_later_entries_replace_the_old_ones() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    append(&opened.wal, 1..=5, 1);
    opened.wal.truncate(3).expect("truncate");
    assert_eq!(opened.wal.last_log_id(), Some(id(2, 1)));
    drop(opened);
    let reopened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("reopen");
    assert_eq!(contents(&reopened.wal), terms(1..=2, 1));
    append(&reopened.wal, 3..=4, 2);
    drop(reopened);
    let again = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("reopen");
    let mut expected = terms(1..=2, 1);
    expected.extend(terms(3..=4, 2));
    assert_eq!(contents(&again.wal), expected);
}

#[test]
fn a_torn_last_write_is_cut_and_appending_goes_on() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    append(&opened.wal, 1..=3, 1);
    let end = opened.wal.lock().end;
    drop(opened);
    // An append of two sectors of which only the first reached the disk.
    let long = vec![b'x'; 700];
    let record = encoded(&[Record::Entry {
        log_id: id(4, 1),
        bytes: &long,
    }]);
    let first_sector_end = (end / SECTOR + 1) * SECTOR;
    let kept = (first_sector_end - end) as usize;
    poke(&dir, &segments(&dir)[0], end, &record[..kept]);
    let reopened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("a torn tail opens");
    assert_eq!(contents(&reopened.wal), terms(1..=3, 1));
    append(&reopened.wal, 4..=5, 2);
    drop(reopened);
    let again = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("reopen");
    let mut expected = terms(1..=3, 1);
    expected.extend(terms(4..=5, 2));
    assert_eq!(contents(&again.wal), expected);
}

/// Recovery rule 2: the unacknowledged rest of a cut append must not line up behind
/// the next append and come back as records.
#[test]
fn what_a_cut_append_left_behind_never_comes_back() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    append(&opened.wal, 1..=2, 1);
    let end = opened.wal.lock().end;
    drop(opened);
    // Entries 3 and 4 of term 1, of which the frame of 3 never reached the disk.
    let (three, four) = (bytes_of(3, 1), bytes_of(4, 1));
    let mut cut = encoded(&[
        Record::Entry {
            log_id: id(3, 1),
            bytes: &three,
        },
        Record::Entry {
            log_id: id(4, 1),
            bytes: &four,
        },
    ]);
    cut[..FRAME].fill(0);
    poke(&dir, &segments(&dir)[0], end, &cut);
    let reopened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    assert_eq!(contents(&reopened.wal), terms(1..=2, 1));
    // The new leader's entry 3 has the same length as the old one.
    append(&reopened.wal, 3..=3, 2);
    drop(reopened);
    let again = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("reopen");
    let mut expected = terms(1..=2, 1);
    expected.push((3, 2));
    assert_eq!(
        contents(&again.wal),
        expected,
        "entry 4 of term 1 came back"
    );
}

#[test]
fn damage_to_an_acknowledged_record_refuses_to_open() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    append(&opened.wal, 1..=3, 1);
    drop(opened);
    // One flipped byte inside entry 2's payload: no sector of it is zeros.
    let first_len = encoded(&[Record::Entry {
        log_id: id(1, 1),
        bytes: &bytes_of(1, 1),
    }])
    .len() as u64;
    poke(
        &dir,
        &segments(&dir)[0],
        first_len + (FRAME + FIXED) as u64 + 2,
        b"#",
    );
    match open(&dir, DEFAULT_SEGMENT_BYTES, 0) {
        Err(WalError::Corrupt { offset, why, .. }) => {
            assert_eq!(offset, first_len);
            assert_eq!(why, "checksum mismatch");
        }
        other => panic!(
            "opened a damaged log: {:?}",
            other.map(|o| contents(&o.wal))
        ),
    }
}

#[test]
fn a_damaged_record_in_an_older_segment_refuses_to_open_even_if_torn_looking() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, SMALL, 0).expect("open");
    for i in 1..=200 {
        append(&opened.wal, i..=i, 1);
    }
    drop(opened);
    let names = segments(&dir);
    assert!(names.len() > 2, "{names:?}");
    // Entry 1's frame zeroed: in the last segment that would be a torn write.
    poke(&dir, &names[0], 4, &[0; 4]);
    assert!(matches!(
        open(&dir, SMALL, 0),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn appends_roll_over_segments_and_a_purge_deletes_whole_ones_oldest_first() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, SMALL, 0).expect("open");
    for i in 1..=300 {
        append(&opened.wal, i..=i, 1);
    }
    // A batch larger than a segment gets a segment of its own size.
    let big = vec![b'b'; 3 * SMALL as usize];
    opened
        .wal
        .append(&[Record::Entry {
            log_id: id(301, 1),
            bytes: &big,
        }])
        .expect("big");
    let before = segments(&dir);
    assert!(before.len() >= 5, "{before:?}");
    opened.wal.purge(150);
    let after = segments(&dir);
    assert!(after.len() < before.len());
    assert_eq!(
        before[before.len() - after.len()..],
        after[..],
        "oldest first"
    );
    let read = opened.wal.read(0, 301).expect("read");
    assert_eq!(read.first().map(|(l, _)| l.index), Some(151));
    assert_eq!(read.len(), 150);
    drop(opened);
    let reopened = open(&dir, SMALL, 151).expect("reopen");
    let read = reopened.wal.read(0, u64::MAX).expect("read");
    assert_eq!(read.first().map(|(l, _)| l.index), Some(151));
    assert_eq!(
        read.last().map(|(l, b)| (l.index, b.len())),
        Some((301, big.len()))
    );
}

#[test]
fn a_purge_past_the_end_then_appends_after_the_gap() {
    let dir = TempDir::new().expect("tmp");
    let opened = open(&dir, DEFAULT_SEGMENT_BYTES, 0).expect("open");
    append(&opened.wal, 1..=3, 1);
    // A snapshot up to 10 was installed: the log starts again at 11.
    opened.wal.purge(10);
    assert!(opened.wal.is_empty());
    append(&opened.wal, 11..=12, 2);
    drop(opened);
    let reopened = open(&dir, DEFAULT_SEGMENT_BYTES, 11).expect("reopen");
    assert_eq!(contents(&reopened.wal), terms(11..=12, 2));
}

#[test]
fn leftover_temporary_files_are_removed_at_open() {
    let dir = TempDir::new().expect("tmp");
    drop(open(&dir, SMALL, 0).expect("open"));
    let wal = dir.path().join("wal");
    std::fs::write(wal.join("migrate.tmp"), b"half a copy").expect("tmp file");
    let opened = open(&dir, SMALL, 0).expect("open");
    assert!(!wal.join("migrate.tmp").exists());
    assert!(opened.wal.is_empty());
}
