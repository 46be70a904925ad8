//! A simulated disk for redb (`redb::StorageBackend`) that knows what `sync_data` made
//! durable: a power cut drops every write since the last sync, as a real disk may lose
//! its page cache; a fault makes every later write and sync fail, as a full or broken
//! disk does. SIGKILL tests cannot tell a missing fsync apart (the kernel keeps the
//! page cache); these can.

use raft3d::store::db::Disks;
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

/// The disks of one node: a `SimFile` per redb file.
#[derive(Debug, Default)]
pub struct SimDisks {
    files: Mutex<BTreeMap<String, SimFile>>,
}

impl Disks for SimDisks {
    fn open(&self, file: &str) -> Box<dyn StorageBackend> {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Box::new(files.entry(file.to_owned()).or_default().clone())
    }
}

impl SimDisks {
    fn each(&self, mut action: impl FnMut(&mut FileState)) {
        let files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for file in files.values() {
            action(&mut file.lock());
        }
    }

    /// Power is lost: everything written since each file's last sync is gone, and the
    /// running node can write nothing more.
    pub fn power_cut(&self) {
        self.each(|file| {
            file.revert_unsynced();
            file.broken = Some("power lost");
        });
    }

    /// The disk fails: every later write and sync is an I/O error.
    pub fn fail(&self) {
        self.each(|file| file.broken = Some("I/O error (simulated disk fault)"));
    }

    /// The disks as they come back after a power cut: what was synced.
    pub fn after_power_cut(&self) -> Self {
        let files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let restored = files
            .iter()
            .map(|(name, file)| {
                let state = file.lock();
                assert!(state.unsynced.is_empty(), "power_cut() first");
                (name.clone(), SimFile::with_data(state.data.clone()))
            })
            .collect();
        Self {
            files: Mutex::new(restored),
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
