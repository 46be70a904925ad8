//! A simulated disk for redb (`redb::StorageBackend`) and the WAL (`WalDisk`) that knows
//! what `sync_data` made durable: a power cut drops every write since the last sync, as
//! a real disk may lose its page cache, and every file created, renamed or removed
//! since the WAL directory's last sync; a fault makes every later write and sync fail,
//! as a full or broken disk does. SIGKILL tests cannot tell a missing fsync apart (the
//! kernel keeps the page cache); these can.

use raft3d::store::db::Disks;
use raft3d::store::wal::{WalDisk, WalFile};
use redb::StorageBackend;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a write or `set_len` replaced, to put back at a power cut.
#[derive(Debug)]
enum Undo {
    Bytes { offset: usize, old: Vec<u8> },
    Len(usize),
}

#[derive(Debug, Default)]
struct FileState {
    data: Vec<u8>,
    /// Everything since the last `sync_data`, oldest first.
    unsynced: Vec<Undo>,
    /// Set by a power cut or a fault: every later write or sync fails with this.
    broken: Option<&'static str>,
}

impl FileState {
    fn check(&self) -> io::Result<()> {
        match self.broken {
            Some(why) => Err(io::Error::other(why)),
            None => Ok(()),
        }
    }

    fn resize(&mut self, len: usize) {
        let old_len = self.data.len();
        if len < old_len {
            let old = self.data[len..].to_vec();
            self.unsynced.push(Undo::Bytes { offset: len, old });
        }
        self.unsynced.push(Undo::Len(old_len));
        self.data.resize(len, 0);
    }

    fn revert_unsynced(&mut self) {
        while let Some(undo) = self.unsynced.pop() {
            match undo {
                Undo::Len(len) => self.data.resize(len, 0),
                Undo::Bytes { offset, old } => {
                    let end = offset + old.len();
                    if self.data.len() < end {
                        self.data.resize(end, 0);
                    }
                    self.data[offset..end].copy_from_slice(&old);
                }
            }
        }
    }
}

/// One simulated file; the backend redb is given is a handle on it.
#[derive(Debug, Default, Clone)]
pub struct SimFile(Arc<Mutex<FileState>>);

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_data(data: Vec<u8>) -> Self {
        let file = Self::default();
        file.lock().data = data;
        file
    }
}

fn offset_of(offset: u64) -> io::Result<usize> {
    usize::try_from(offset).map_err(io::Error::other)
}

impl StorageBackend for SimFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().data.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.lock();
        let start = offset_of(offset)?;
        let bytes = state
            .data
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.check()?;
        state.resize(offset_of(len)?);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.check()?;
        state.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        state.check()?;
        let (start, end) = (offset_of(offset)?, offset_of(offset)? + data.len());
        if end > state.data.len() {
            state.resize(end);
        }
        let old = state.data[start..end].to_vec();
        state.unsynced.push(Undo::Bytes { offset: start, old });
        state.data[start..end].copy_from_slice(data);
        Ok(())
    }
}

impl WalFile for SimWalFile {
    fn size(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write(offset, data)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.stall.wait();
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        if len > self.file.len()? {
            self.file.set_len(len)?;
        }
        Ok(())
    }
}

/// A directory: the names it shows now, and those its last sync made durable.
#[derive(Debug, Default)]
struct DirState {
    now: BTreeMap<String, SimFile>,
    durable: BTreeMap<String, SimFile>,
    broken: Option<&'static str>,
    stall: Arc<Stall>,
}

/// While on, every `sync_data` of a WAL file waits: a disk that takes its time.
#[derive(Debug, Default)]
struct Stall {
    on: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Stall {
    fn set(&self, on: bool) {
        *self
            .on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = on;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let mut on = self
            .on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *on {
            on = self
                .changed
                .wait(on)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// A WAL file handed out by [`SimDir`]: its syncs obey the directory's stall.
#[derive(Debug)]
struct SimWalFile {
    file: SimFile,
    stall: Arc<Stall>,
}

/// The WAL's directory on the simulated disk.
#[derive(Debug, Default, Clone)]
pub struct SimDir(Arc<Mutex<DirState>>);

impl SimDir {
    fn lock(&self) -> MutexGuard<'_, DirState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handle(&self, file: SimFile) -> Arc<dyn WalFile> {
        let stall = self.lock().stall.clone();
        Arc::new(SimWalFile { file, stall })
    }

    fn changed(&self) -> io::Result<MutexGuard<'_, DirState>> {
        let dir = self.lock();
        match dir.broken {
            Some(why) => Err(io::Error::other(why)),
            None => Ok(dir),
        }
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

impl WalDisk for SimDir {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().now.keys().cloned().collect())
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn WalFile>> {
        let file = SimFile::default();
        self.changed()?.now.insert(name.to_owned(), file.clone());
        Ok(self.handle(file))
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn WalFile>> {
        let file = self.lock().now.get(name).cloned();
        Ok(self.handle(file.ok_or_else(|| not_found(name))?))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut dir = self.changed()?;
        let file = dir.now.remove(from).ok_or_else(|| not_found(from))?;
        dir.now.insert(to.to_owned(), file);
        Ok(())
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        let mut dir = self.changed()?;
        dir.now
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        let mut dir = self.changed()?;
        dir.durable = dir.now.clone();
        Ok(())
    }
}

/// The disks of one node: a `SimFile` per redb file, and the WAL's directory.
#[derive(Debug, Default)]
pub struct SimDisks {
    files: Mutex<BTreeMap<String, SimFile>>,
    wal: SimDir,
    snapshots: SimDir,
}

impl Disks for SimDisks {
    fn open(&self, file: &str) -> Box<dyn StorageBackend> {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Box::new(files.entry(file.to_owned()).or_default().clone())
    }

    fn wal(&self) -> Arc<dyn WalDisk> {
        Arc::new(self.wal.clone())
    }

    fn snapshots(&self) -> Arc<dyn WalDisk> {
        Arc::new(self.snapshots.clone())
    }
}

impl SimDisks {
    /// Every file: the redb files, and every file the WAL's and the snapshots'
    /// directories show or made durable.
    fn each(&self, mut action: impl FnMut(&mut FileState)) {
        let files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (wal, snapshots) = (self.wal.lock(), self.snapshots.lock());
        let mut seen: Vec<*const Mutex<FileState>> = Vec::new();
        for file in files.values().chain(
            [&wal, &snapshots]
                .into_iter()
                .flat_map(|dir| dir.now.values().chain(dir.durable.values())),
        ) {
            if !seen.contains(&Arc::as_ptr(&file.0)) {
                seen.push(Arc::as_ptr(&file.0));
                action(&mut file.lock());
            }
        }
    }

    /// Power is lost: everything written since each file's last sync is gone, and the
    /// running node can write nothing more.
    pub fn power_cut(&self) {
        self.each(|file| {
            file.revert_unsynced();
            file.broken = Some("power lost");
        });
        for dir in [&self.wal, &self.snapshots] {
            let mut dir = dir.lock();
            dir.now = dir.durable.clone();
            dir.broken = Some("power lost");
        }
    }

    /// From now on until `resume_log_syncs`, every sync of the WAL waits (a slow disk).
    pub fn stall_log_syncs(&self) {
        self.wal.lock().stall.set(true);
    }

    pub fn resume_log_syncs(&self) {
        self.wal.lock().stall.set(false);
    }

    /// The disk fails: every later write and sync is an I/O error.
    pub fn fail(&self) {
        const FAULT: &str = "I/O error (simulated disk fault)";
        self.each(|file| file.broken = Some(FAULT));
        self.wal.lock().broken = Some(FAULT);
        self.snapshots.lock().broken = Some(FAULT);
    }

    /// The disks as they come back after a power cut: what was synced.
    pub fn after_power_cut(&self) -> Self {
        let files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let synced = |(name, file): (&String, &SimFile)| {
            let state = file.lock();
            assert!(state.unsynced.is_empty(), "power_cut() first");
            (name.clone(), SimFile::with_data(state.data.clone()))
        };
        let synced_dir = |dir: &SimDir| {
            let durable: BTreeMap<String, SimFile> =
                dir.lock().durable.iter().map(synced).collect();
            SimDir(Arc::new(Mutex::new(DirState {
                now: durable.clone(),
                durable,
                ..DirState::default()
            })))
        };
        Self {
            files: Mutex::new(files.iter().map(synced).collect()),
            wal: synced_dir(&self.wal),
            snapshots: synced_dir(&self.snapshots),
        }
    }
}

#[test]
fn a_power_cut_keeps_exactly_what_was_synced() {
    let disks = SimDisks::default();
    let file = disks.open("f");
    file.write(0, b"synced").expect("write");
    file.sync_data().expect("sync");
    file.write(2, b"XX").expect("overwrite");
    file.write(6, b" and more").expect("append");
    file.set_len(3).expect("shrink");
    disks.power_cut();
    assert!(
        file.write(0, b"late").is_err(),
        "a dead disk takes no writes"
    );
    let back = disks.after_power_cut().open("f");
    let mut out = vec![0; 6];
    back.read(0, &mut out).expect("read");
    assert_eq!(&out, b"synced");
    assert_eq!(back.len().expect("len"), 6);
}

#[test]
fn a_power_cut_keeps_only_the_directory_entries_a_sync_made_durable() {
    let disks = SimDisks::default();
    let dir = disks.wal();
    let kept = dir.create("kept").expect("create");
    kept.write_at(0, b"kept").expect("write");
    kept.sync_data().expect("sync");
    dir.create("gone").expect("create");
    dir.sync_dir().expect("sync dir");
    dir.rename("kept", "renamed").expect("rename");
    dir.remove("gone").expect("remove");
    dir.create("new")
        .expect("create")
        .sync_data()
        .expect("sync");
    disks.power_cut();
    let back = disks.after_power_cut().wal();
    // Neither the rename, the removal nor the creation was followed by a sync_dir.
    assert_eq!(back.list().expect("list"), ["gone", "kept"]);
    let mut out = vec![0; 4];
    back.open("kept")
        .expect("open")
        .read_at(0, &mut out)
        .expect("read");
    assert_eq!(&out, b"kept");
}
