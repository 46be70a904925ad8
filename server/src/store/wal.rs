//! The Raft log's entries as append-only segment files in `wal/`: one `pwrite` and one
//! `fdatasync` per append (merging everything handed over at once), where a redb
//! transaction wrote ~9 copy-on-write pages before its fsync (docs/perf.md).
//!
//! Owns: the segment files, the record framing, recovery at open, truncation records,
//! and purging whole segments. Must not touch: what an entry means (bytes in, bytes
//! out), the vote and the purge point (both stay in `raft-log.redb`, see `log_store`).
//!
//! # Layout
//! Segments are `wal/<seq>.wal` (16 hex digits), preallocated with `fallocate` (the
//! blocks are reserved, read back as zeros, and an append does not grow the file; on
//! this kind of disk that measured as fast as zero-filling them, docs/perf.md). Each
//! record is
//!
//! ```text
//! len: u32 LE (bytes after the checksum) | crc32c: u32 LE (of those bytes)
//! kind: u8 | index: u64 LE | term: u64 LE | node: u64 LE | payload
//! ```
//!
//! `kind` is an entry (its log id and its bytes), a truncation (entries from `index` on
//! are gone) or a commit hint (`index` committed, with the log id of that entry). One
//! append is one `pwrite` of all its records and one `fdatasync`; nothing is reported
//! written before that returns. A batch never spans two segments.
//!
//! # Recovery (the safety argument; every path that writes keeps it)
//! 1. *Only the last segment can end in a torn write.* Records are written in order,
//!    each append is synced before the next one starts, and a new segment is taken only
//!    for an append that comes after the previous segment's last one was synced.
//! 2. *Past the last good record of the last segment there are only zeros.* At open
//!    the last segment is cut at its last good record and reallocated (zeros), and
//!    synced, before anything is appended (`Wal::open`); a new segment is all zeros.
//!    So bytes of an append that was never acknowledged cannot line up behind a later
//!    one and be read as records (a retried entry of the same length would otherwise
//!    leave the unacknowledged next record perfectly framed behind it).
//! 3. *A bad record is a torn tail only where the write was cut.* A record whose
//!    checksum fails, or whose length runs past the file, ends the log if it is in the
//!    last segment and one of its 512-byte sectors is all zeros (a sector the cut write
//!    never reached, as etcd's WAL decides). Anything else is corruption of something
//!    that was acknowledged: the node refuses to start rather than forget it.
//! 4. *Truncation never resurrects.* A truncation is a record, synced like an append,
//!    replayed in order after the entries it removes; entries written after it follow
//!    it. Nothing is ever overwritten in place.
//! 5. *Purging deletes whole segments, oldest first, only behind a durable purge point.*
//!    The caller writes the purge point first; a segment goes only if every entry in it
//!    is at or below that point and every older segment is gone. A deleted segment
//!    that a power cut brings back holds only purged entries, which are skipped, and
//!    replays before the segments that came after it.
//! 6. *Directory entries are synced.* A segment is created as `prepared.tmp`, allocated
//!    and synced, then renamed to its `<seq>.wal` name and the directory synced before
//!    the first record is written to it. `*.tmp` files are removed at open.

use super::db::{CloseSignal, OpenFile};
use crate::raft::typ::LogId;
use openraft::CommittedLeaderId;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// The files of one WAL directory; the real one is [`WalDir`], tests give a simulated
/// disk that knows what a power cut keeps (see `db::Disks`).
pub trait WalDisk: Send + Sync + Debug {
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates (or empties) `name`. Not durable before [`WalDisk::sync_dir`].
    fn create(&self, name: &str) -> io::Result<Arc<dyn WalFile>>;
    fn open(&self, name: &str) -> io::Result<Arc<dyn WalFile>>;
    /// Not durable before [`WalDisk::sync_dir`].
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Not durable before [`WalDisk::sync_dir`].
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes every create, rename and removal so far durable.
    fn sync_dir(&self) -> io::Result<()>;
}

/// One file of a [`WalDisk`].
pub trait WalFile: Send + Sync + Debug {
    /// Its length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `out` from `offset`; an error if the file ends first.
    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes the writes so far durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves blocks up to `len` bytes (zeros), growing the file to that length.
    fn allocate(&self, len: u64) -> io::Result<()>;
}

/// A WAL in a directory of the real file system, locked (`flock` on `LOCK`) while this
/// value lives: a second writer, in this process or another, is refused.
#[derive(Debug)]
pub struct WalDir {
    dir: PathBuf,
    _lock: Option<std::fs::File>,
}

impl WalDir {
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        let mut this = Self::unlocked(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(this.dir.join("LOCK"))?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another running node", this.dir.display()),
            ));
        }
        this._lock = Some(lock);
        Ok(this)
    }

    /// A directory of files that another lock already guards (`snapshots/`, under
    /// `state.redb`'s).
    pub fn unlocked(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        // The directory itself must survive a power cut too.
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(Self { dir, _lock: None })
    }
}

impl WalDisk for WalDir {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn WalFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.dir.join(name))?;
        Ok(Arc::new(DiskFile(file)))
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn WalFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(name))?;
        Ok(Arc::new(DiskFile(file)))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

#[derive(Debug)]
struct DiskFile(std::fs::File);

impl WalFile for DiskFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, out, offset)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, data, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        match fallocate(&self.0, FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            // A file system without fallocate: a sparse file, allocated as it is written.
            Err(rustix::io::Errno::OPNOTSUPP) => self.0.set_len(len.max(self.size()?)),
            Err(errno) => Err(errno.into()),
        }
    }
}

/// Why a WAL cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("wal/{segment}: record at byte {offset} is damaged ({why}); it is not a torn last write, so it was acknowledged: refusing to start without it")]
    Corrupt {
        segment: String,
        offset: u64,
        why: &'static str,
    },
}

const SEGMENT_SUFFIX: &str = ".wal";
const PREPARED: &str = "prepared.tmp";
/// 64 MiB, as etcd's WAL.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
const SECTOR: u64 = 512;
/// `len` and `crc32c`.
const FRAME: usize = 8;
/// `kind`, `index`, `term`, `node`.
const FIXED: usize = 1 + 8 + 8 + 8;

const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_COMMITTED: u8 = 3;

/// What an append writes, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    Entry {
        log_id: LogId,
        bytes: &'a [u8],
    },
    /// The entries from this index on are gone.
    Truncate {
        from: u64,
    },
    /// A commit hint (see `log_store::CommittedHint`).
    Committed {
        log_id: LogId,
    },
}

fn log_id(index: u64, term: u64, node: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

impl Record<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        let (kind, index, term, node, payload): (u8, u64, u64, u64, &[u8]) = match self {
            Record::Entry { log_id, bytes } => (
                KIND_ENTRY,
                log_id.index,
                log_id.leader_id.term,
                log_id.leader_id.node_id,
                bytes,
            ),
            Record::Truncate { from } => (KIND_TRUNCATE, *from, 0, 0, &[]),
            Record::Committed { log_id } => (
                KIND_COMMITTED,
                log_id.index,
                log_id.leader_id.term,
                log_id.leader_id.node_id,
                &[],
            ),
        };
        let start = out.len();
        // A u32 length: `Wal::append` refuses an entry that does not fit one.
        let len = (FIXED + payload.len()) as u32;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(kind);
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&term.to_le_bytes());
        out.extend_from_slice(&node.to_le_bytes());
        out.extend_from_slice(payload);
        let crc = crc32c(&out[start + FRAME..]);
        out[start + 4..start + FRAME].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A record as read back: where its payload is.
struct Decoded {
    kind: u8,
    log_id: LogId,
    payload: std::ops::Range<usize>,
}

/// Decodes the record body `body` (what follows the frame) checked against `crc`.
fn decode(body: &[u8], crc: u32) -> Result<Decoded, &'static str> {
    if body.len() < FIXED {
        return Err("shorter than a record");
    }
    if crc32c(body) != crc {
        return Err("checksum mismatch");
    }
    let word = |at: usize| {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let kind = body[0];
    if !matches!(kind, KIND_ENTRY | KIND_TRUNCATE | KIND_COMMITTED) {
        return Err("unknown record kind");
    }
    Ok(Decoded {
        kind,
        log_id: log_id(word(1), word(9), word(17)),
        payload: FIXED..body.len(),
    })
}

/// Where an entry is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    log_id: LogId,
    segment: u64,
    /// Of the record's frame.
    offset: u64,
    /// Of the whole record, frame included.
    len: u32,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    file: Arc<dyn WalFile>,
    /// Its allocated length.
    capacity: u64,
    /// The highest index of an entry written to it that the log still held when the
    /// segment was last read or written (an overestimate once later truncations remove
    /// some, which only keeps the segment longer).
    max_index: Option<u64>,
}

impl Segment {
    fn name(&self) -> String {
        segment_name(self.seq)
    }
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}{SEGMENT_SUFFIX}")
}

fn segment_seq(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

#[derive(Debug)]
struct WalState {
    /// Oldest first; the last one is written to.
    segments: Vec<Segment>,
    /// Bytes used in the last segment.
    end: u64,
    /// Entries in index order, without gaps.
    slots: VecDeque<Slot>,
    committed: Option<LogId>,
    /// The next segment, allocated and synced by a background thread.
    preparing: Option<std::thread::JoinHandle<io::Result<Arc<dyn WalFile>>>>,
}

/// The log's entries on disk. Appends and truncations must not run concurrently (the
/// log store's caller, openraft, issues them one at a time); reads may run alongside.
#[derive(Debug)]
pub struct Wal {
    disk: Arc<dyn WalDisk>,
    segment_bytes: u64,
    state: Mutex<WalState>,
    /// Last: told once the segment files above are closed.
    closed: CloseSignal,
}

/// What [`Wal::open`] found.
pub struct Opened {
    pub wal: Wal,
    /// The commit hint last written, if any survives.
    pub committed: Option<LogId>,
}

impl Wal {
    /// Opens the WAL on `disk`, replaying every segment, and drops the entries before
    /// `purged_end`. An empty directory is an empty log.
    pub fn open(
        disk: Arc<dyn WalDisk>,
        segment_bytes: u64,
        purged_end: u64,
    ) -> Result<Opened, WalError> {
        let mut seqs = Vec::new();
        for name in disk.list()? {
            match segment_seq(&name) {
                Some(seq) => seqs.push(seq),
                None if name.ends_with(".tmp") => disk.remove(&name)?,
                None => {}
            }
        }
        seqs.sort_unstable();
        let mut state = WalState {
            segments: Vec::new(),
            end: 0,
            slots: VecDeque::new(),
            committed: None,
            preparing: None,
        };
        for (n, &seq) in seqs.iter().enumerate() {
            let file = disk.open(&segment_name(seq))?;
            let last = n + 1 == seqs.len();
            state.end = replay(&mut state, seq, &*file, last)?;
            let capacity = file.size()?;
            state.segments.push(Segment {
                seq,
                file,
                capacity,
                max_index: None,
            });
            let max = state
                .slots
                .iter()
                .rev()
                .find(|slot| slot.segment == seq)
                .map(|slot| slot.log_id.index);
            if let Some(segment) = state.segments.last_mut() {
                segment.max_index = max;
            }
        }
        // Recovery rule 2: nothing but zeros after the last good record.
        let end = state.end;
        if let Some(last) = state.segments.last_mut() {
            let len = last.capacity.max(segment_bytes);
            last.file.set_len(end)?;
            last.file.allocate(len)?;
            last.file.sync_data()?;
            last.capacity = len;
        }
        while state
            .slots
            .front()
            .is_some_and(|slot| slot.log_id.index < purged_end)
        {
            state.slots.pop_front();
        }
        let committed = state.committed;
        let wal = Wal {
            disk,
            segment_bytes,
            state: Mutex::new(state),
            closed: CloseSignal::default(),
        };
        wal.start_preparing(&mut wal.lock());
        Ok(Opened { wal, committed })
    }

    /// Writes `records` with one write and one sync, then makes their entries readable.
    pub fn append(&self, records: &[Record<'_>]) -> io::Result<()> {
        let mut buf = Vec::new();
        for record in records {
            if let Record::Entry { bytes, .. } = record {
                if bytes.len() > (u32::MAX as usize) - FIXED {
                    return Err(io::Error::other("a log entry of 4 GiB or more"));
                }
            }
            record.encode(&mut buf);
        }
        let (file, seq, offset) = self.reserve(buf.len() as u64)?;
        file.write_at(offset, &buf)?;
        file.sync_data()?;
        let mut state = self.lock();
        state.end = offset + buf.len() as u64;
        let mut at = offset;
        for (record, len) in records.iter().zip(record_lens(&buf)) {
            match record {
                Record::Entry { log_id, .. } => {
                    push_entry(&mut state.slots, *log_id, seq, at, len);
                    if let Some(segment) = state.segments.last_mut() {
                        segment.max_index = Some(log_id.index);
                    }
                }
                Record::Truncate { from } => truncate(&mut state.slots, *from),
                Record::Committed { log_id } => state.committed = Some(*log_id),
            }
            at += u64::from(len);
        }
        Ok(())
    }

    /// The file, segment and offset where `len` more bytes go: the last segment, or a
    /// new one when they do not fit.
    fn reserve(&self, len: u64) -> io::Result<(Arc<dyn WalFile>, u64, u64)> {
        let mut state = self.lock();
        if let Some(last) = state.segments.last() {
            if state.end + len <= last.capacity {
                return Ok((last.file.clone(), last.seq, state.end));
            }
        }
        let seq = state.segments.last().map_or(1, |last| last.seq + 1);
        let file = self.next_segment(&mut state, seq, len)?;
        state.segments.push(Segment {
            seq,
            file: file.clone(),
            capacity: file.size()?,
            max_index: None,
        });
        state.end = 0;
        self.start_preparing(&mut state);
        Ok((file, seq, 0))
    }

    /// The prepared segment (or one made now), renamed to `seq` with the directory
    /// synced (recovery rule 6), at least `len` bytes long.
    fn next_segment(
        &self,
        state: &mut WalState,
        seq: u64,
        len: u64,
    ) -> io::Result<Arc<dyn WalFile>> {
        let prepared = match state.preparing.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Ok(file))) => Some(file),
            Some(Ok(Err(error))) => {
                tracing::warn!(%error, "preparing the next WAL segment failed; trying again now");
                None
            }
            Some(Err(_)) => None,
            None => None,
        };
        let file = match prepared {
            Some(file) => file,
            None => prepare(&*self.disk, self.segment_bytes)?,
        };
        if file.size()? < len {
            file.allocate(len)?;
            file.sync_data()?;
        }
        self.disk.rename(PREPARED, &segment_name(seq))?;
        self.disk.sync_dir()?;
        Ok(file)
    }

    fn start_preparing(&self, state: &mut WalState) {
        let (disk, len) = (self.disk.clone(), self.segment_bytes);
        let thread = std::thread::Builder::new()
            .name("wal-prepare".to_owned())
            .spawn(move || prepare(&*disk, len));
        match thread {
            Ok(handle) => state.preparing = Some(handle),
            Err(error) => tracing::warn!(%error, "cannot start preparing a WAL segment"),
        }
    }

    /// Makes entries from `from` on gone, durably (recovery rule 4).
    pub fn truncate(&self, from: u64) -> io::Result<()> {
        self.append(&[Record::Truncate { from }])
    }

    /// Forgets the entries up to `upto` and deletes every segment, oldest first, whose
    /// entries are all at or below it (recovery rule 5). The caller has made `upto`
    /// durable as the purge point. A failed removal is left for the next purge.
    pub fn purge(&self, upto: u64) {
        let mut state = self.lock();
        while state
            .slots
            .front()
            .is_some_and(|slot| slot.log_id.index <= upto)
        {
            state.slots.pop_front();
        }
        let mut removed = false;
        while state.segments.len() > 1 && state.segments[0].max_index.is_none_or(|max| max <= upto)
        {
            let name = state.segments[0].name();
            if let Err(error) = self.disk.remove(&name) {
                tracing::warn!(%error, segment = name, "cannot remove a purged WAL segment");
                break;
            }
            state.segments.remove(0);
            removed = true;
        }
        if removed {
            // Not needed for safety (a segment that comes back holds only purged
            // entries), only so the space is surely free.
            if let Err(error) = self.disk.sync_dir() {
                tracing::warn!(%error, "cannot sync the WAL directory");
            }
        }
    }

    /// To learn when every segment file is closed (see [`super::db::OpenFile`]).
    pub fn open_file(&self) -> OpenFile {
        self.closed.watch("wal")
    }

    pub fn last_log_id(&self) -> Option<LogId> {
        self.lock().slots.back().map(|slot| slot.log_id)
    }

    /// Whether any entry is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().slots.is_empty()
    }

    /// The entries in `start..end` that are stored, as (log id, bytes), in order.
    pub fn read(&self, start: u64, end: u64) -> io::Result<Vec<(LogId, Vec<u8>)>> {
        let (slots, files) = {
            let state = self.lock();
            let Some(first) = state.slots.front().map(|slot| slot.log_id.index) else {
                return Ok(Vec::new());
            };
            let from = start.saturating_sub(first) as usize;
            let to = (end.saturating_sub(first) as usize).min(state.slots.len());
            let slots: Vec<Slot> = state.slots.range(from.min(to)..to).copied().collect();
            let files: Vec<(u64, Arc<dyn WalFile>)> = state
                .segments
                .iter()
                .map(|segment| (segment.seq, segment.file.clone()))
                .collect();
            (slots, files)
        };
        let mut entries = Vec::with_capacity(slots.len());
        // Neighbouring records of one segment are read with one `pread`.
        for run in
            slots.chunk_by(|a, b| a.segment == b.segment && a.offset + u64::from(a.len) == b.offset)
        {
            let (first, last) = (run[0], run[run.len() - 1]);
            let Some((_, file)) = files.iter().find(|(seq, _)| *seq == first.segment) else {
                return Err(io::Error::other("a WAL segment went away while being read"));
            };
            let mut span = vec![0; (last.offset + u64::from(last.len) - first.offset) as usize];
            file.read_at(first.offset, &mut span)?;
            let mut at = 0;
            for slot in run {
                let record = &span[at..at + slot.len as usize];
                let crc = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
                let decoded = decode(&record[FRAME..], crc).map_err(io::Error::other)?;
                if decoded.log_id != slot.log_id {
                    return Err(io::Error::other("a WAL record is not the entry it was"));
                }
                let payload = &record[FRAME..][decoded.payload];
                entries.push((slot.log_id, payload.to_vec()));
                at += slot.len as usize;
            }
        }
        Ok(entries)
    }

    fn lock(&self) -> MutexGuard<'_, WalState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // A preparation still running finishes first: its file is then left as
        // `prepared.tmp`, removed at the next open.
        if let Some(handle) = self.lock().preparing.take() {
            let _ = handle.join();
        }
    }
}

/// Removes every segment and temporary file of `disk`, durably (an emptied WAL).
pub fn remove_all(disk: &dyn WalDisk) -> io::Result<()> {
    for name in disk.list()? {
        if segment_seq(&name).is_some() || name.ends_with(".tmp") {
            disk.remove(&name)?;
        }
    }
    disk.sync_dir()
}

/// Allocates and syncs `prepared.tmp`.
fn prepare(disk: &dyn WalDisk, len: u64) -> io::Result<Arc<dyn WalFile>> {
    let file = disk.create(PREPARED)?;
    file.allocate(len)?;
    file.sync_data()?;
    Ok(file)
}

/// The lengths of the records encoded one after another in `buf`.
fn record_lens(buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let frame = buf.get(at..at + 4)?;
        let len = FRAME as u32 + u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        at += len as usize;
        Some(len)
    })
}

fn push_entry(slots: &mut VecDeque<Slot>, log_id: LogId, segment: u64, offset: u64, len: u32) {
    // An entry replaces any at its index and after (openraft truncates first; replay
    // must not depend on that).
    truncate(slots, log_id.index);
    // openraft leaves a gap only after a purge past the end of its log (a snapshot
    // installed): everything before the gap was purged.
    if slots
        .back()
        .is_some_and(|slot| slot.log_id.index + 1 != log_id.index)
    {
        slots.clear();
    }
    slots.push_back(Slot {
        log_id,
        segment,
        offset,
        len,
    });
}

fn truncate(slots: &mut VecDeque<Slot>, from: u64) {
    while slots.back().is_some_and(|slot| slot.log_id.index >= from) {
        slots.pop_back();
    }
}

/// Reads one segment's records into `state`; returns where its good records end.
fn replay(state: &mut WalState, seq: u64, file: &dyn WalFile, last: bool) -> Result<u64, WalError> {
    let len = file.size()?;
    let mut reader = SegmentReader::new(file, len);
    let mut offset = 0;
    loop {
        let Some(frame) = reader.bytes(offset, FRAME)? else {
            return Ok(offset);
        };
        let body_len = u64::from(u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]));
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if body_len == 0 {
            return Ok(offset);
        }
        let damaged = |why| -> Result<u64, WalError> {
            match last && torn(file, offset, FRAME as u64 + body_len, len)? {
                true => Ok(offset),
                false => Err(WalError::Corrupt {
                    segment: segment_name(seq),
                    offset,
                    why,
                }),
            }
        };
        let Some(body) = reader.bytes(offset + FRAME as u64, body_len as usize)? else {
            return damaged("runs past the end of the segment");
        };
        let decoded = match decode(body, crc) {
            Ok(decoded) => decoded,
            Err(why) => return damaged(why),
        };
        let record_len = (FRAME as u64 + body_len) as u32;
        match decoded.kind {
            KIND_ENTRY => push_entry(&mut state.slots, decoded.log_id, seq, offset, record_len),
            KIND_TRUNCATE => truncate(&mut state.slots, decoded.log_id.index),
            _ => state.committed = Some(decoded.log_id),
        }
        offset += u64::from(record_len);
    }
}

/// Whether the damaged record at `offset` (`len` bytes claimed, in a file of
/// `file_len`) is a write that was cut: one of the sectors it covers is all zeros.
fn torn(file: &dyn WalFile, offset: u64, len: u64, file_len: u64) -> io::Result<bool> {
    let end = offset.saturating_add(len).min(file_len);
    if offset.saturating_add(len) > file_len {
        return Ok(true);
    }
    let mut at = offset;
    while at < end {
        let sector_end = ((at / SECTOR) + 1) * SECTOR;
        let chunk_end = sector_end.min(end);
        let mut chunk = vec![0; (chunk_end - at) as usize];
        file.read_at(at, &mut chunk)?;
        if chunk.iter().all(|&byte| byte == 0) {
            return Ok(true);
        }
        at = chunk_end;
    }
    Ok(false)
}

/// Reads a segment front to back through a 1 MiB window.
struct SegmentReader<'a> {
    file: &'a dyn WalFile,
    len: u64,
    window: Vec<u8>,
    window_at: u64,
}

const WINDOW: usize = 1 << 20;

impl<'a> SegmentReader<'a> {
    fn new(file: &'a dyn WalFile, len: u64) -> Self {
        Self {
            file,
            len,
            window: Vec::new(),
            window_at: 0,
        }
    }

    /// `count` bytes at `offset`, or `None` if the file ends first.
    fn bytes(&mut self, offset: u64, count: usize) -> io::Result<Option<&[u8]>> {
        let Some(end) = offset
            .checked_add(count as u64)
            .filter(|&end| end <= self.len)
        else {
            return Ok(None);
        };
        let window_end = self.window_at + self.window.len() as u64;
        if offset < self.window_at || end > window_end {
            let size = (self.len - offset).min(WINDOW.max(count) as u64) as usize;
            self.window.resize(size, 0);
            self.file.read_at(offset, &mut self.window)?;
            self.window_at = offset;
        }
        let from = (offset - self.window_at) as usize;
        Ok(Some(&self.window[from..from + count]))
    }
}

/// CRC-32C (Castagnoli), as etcd's WAL and ext4 use: bytewise with a table made at
/// compile time (a few hundred MB/s, far below the cost of the sync it guards).
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut crc = n as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[n] = crc;
            n += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests;
