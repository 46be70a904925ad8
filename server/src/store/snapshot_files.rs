//! The current snapshot's bytes, as a file of its own in `snapshots/` beside
//! `state.redb`: built, sent, received and installed a buffer at a time, so no node holds
//! a farm-sized snapshot in memory to send or receive one (the decoded farm it installs
//! aside: that is the state it runs on).
//!
//! The directory holds `<snapshot id>.snap`, the snapshot whose meta `state.redb`'s
//! `snapshot` table holds, and `*.tmp` files being built or received. A snapshot becomes
//! current in this order, and the power-loss tests cut at every step:
//!
//! 1. its bytes are written to a `.tmp` file and `fdatasync`ed;
//! 2. the file is renamed to `<snapshot id>.snap` and the directory synced;
//! 3. only then does the meta naming it commit in `state.redb`;
//! 4. only after that are the other `.snap` files removed (under [`SnapshotFiles`]'s
//!    lock, together with the commit, so a removal never takes the file a committed
//!    meta names).
//!
//! A cut before 3 leaves the older meta naming its own file, which step 4 of that older
//! snapshot kept; a cut after 3 leaves the new meta and its synced file. At open, every
//! file no meta names is removed.
//!
//! Owns: the directory and its files. Must not touch: the farm's rows or the meta (the
//! state machine commits those, see `state_machine`).

use super::wal::{WalDisk, WalFile};
// The bytes type of a streamed body (a re-export of `bytes`).
use axum::body::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// How much of a snapshot is read or written at a time: by its encoder and decoder, and
/// between its file and the network.
pub const SNAPSHOT_BUFFER: usize = 1 << 20;

/// The snapshot directory.
#[derive(Debug)]
pub struct SnapshotFiles {
    disk: Arc<dyn WalDisk>,
    /// Held from a meta's commit to the removal of the files it no longer names.
    swap: Mutex<()>,
}

impl SnapshotFiles {
    /// The directory on `disk`, with every file but `current`'s removed (temporary files
    /// of builds and transfers cut short, snapshots no meta names).
    pub fn open(disk: Arc<dyn WalDisk>, current: Option<&str>) -> io::Result<Self> {
        let files = Self {
            disk,
            swap: Mutex::new(()),
        };
        let mut removed = false;
        for name in files.disk.list()? {
            let keep = current.is_some_and(|id| name == file_name(id));
            let ours = name.ends_with(SNAPSHOT_SUFFIX) || name.ends_with(TEMP_SUFFIX);
            if ours && !keep {
                files.disk.remove(&name)?;
                removed = true;
            }
        }
        if removed {
            files.disk.sync_dir()?;
        }
        Ok(files)
    }

    /// A new, empty temporary file to write a snapshot into.
    pub fn create(&self) -> io::Result<SnapshotFile> {
        let name = format!("{}{TEMP_SUFFIX}", uuid::Uuid::now_v7().simple());
        let file = self.disk.create(&name)?;
        Ok(SnapshotFile::new(file, name, 0, Some(self.disk.clone())))
    }

    /// The stored snapshot `snapshot_id`, to read from its start.
    pub fn open_snapshot(&self, snapshot_id: &str) -> io::Result<SnapshotFile> {
        let name = file_name(snapshot_id);
        // Named, so that a directory someone emptied says which file it lacks.
        let named = |e: io::Error| io::Error::new(e.kind(), format!("snapshots/{name}: {e}"));
        let file = self.disk.open(&name).map_err(named)?;
        let len = file.size().map_err(named)?;
        Ok(SnapshotFile::new(file, name, len, None))
    }

    /// Steps 1 and 2: makes `file` (written by [`Self::create`]) durable as snapshot
    /// `snapshot_id`. Its meta may commit once this returns.
    pub fn publish(&self, file: &mut SnapshotFile, snapshot_id: &str) -> io::Result<()> {
        file.file.sync_data()?;
        let name = file_name(snapshot_id);
        self.disk.rename(&file.name, &name)?;
        self.disk.sync_dir()?;
        file.name = name;
        file.temp_in = None;
        Ok(())
    }

    /// Writes a snapshot arriving as `body` into a new temporary file, [`SNAPSHOT_BUFFER`]
    /// at a time on a blocking thread: it is never held in memory. A body that fails or
    /// grows past `limit` bytes is an error (and its file, dropped, is removed).
    pub async fn receive<S, E>(&self, mut body: S, limit: usize) -> io::Result<SnapshotFile>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        use futures::StreamExt;
        use std::io::Write;
        let mut file = self.create()?;
        let mut buffer = Vec::with_capacity(SNAPSHOT_BUFFER);
        let mut received = 0usize;
        loop {
            let chunk = body.next().await.transpose().map_err(io::Error::other)?;
            if let Some(chunk) = &chunk {
                received += chunk.len();
                if received > limit {
                    return Err(io::Error::other(format!(
                        "snapshot larger than {limit} bytes"
                    )));
                }
                buffer.extend_from_slice(chunk);
            }
            let last = chunk.is_none();
            if buffer.len() >= SNAPSHOT_BUFFER || (last && !buffer.is_empty()) {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(SNAPSHOT_BUFFER));
                file = tokio::task::spawn_blocking(move || {
                    file.write_all(&full)?;
                    Ok::<_, io::Error>(file)
                })
                .await
                .map_err(io::Error::other)??;
            }
            if last {
                return Ok(file);
            }
        }
    }

    /// `file` as a temporary file of this directory, ready to publish: itself when it is
    /// one, else a copy (a snapshot of another store's directory, as the storage tests
    /// install).
    pub fn adopt(&self, mut file: SnapshotFile) -> io::Result<SnapshotFile> {
        let ours = file
            .temp_in
            .as_ref()
            .is_some_and(|dir| std::ptr::addr_eq(Arc::as_ptr(dir), Arc::as_ptr(&self.disk)));
        if ours {
            return Ok(file);
        }
        let mut copy = self.create()?;
        file.rewind();
        io::copy(
            &mut io::BufReader::with_capacity(SNAPSHOT_BUFFER, &mut file),
            &mut copy,
        )?;
        Ok(copy)
    }

    /// Step 3 and 4's lock: hold it across the meta's commit and [`Swap::keep_only`].
    pub fn swap(&self) -> Swap<'_> {
        Swap {
            files: self,
            _held: self.swap.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// [`SnapshotFiles::swap`]'s guard.
pub struct Swap<'a> {
    files: &'a SnapshotFiles,
    _held: MutexGuard<'a, ()>,
}

impl Swap<'_> {
    /// Step 4: removes every snapshot but `current`, whose meta has committed.
    /// Temporary files are left to the builds and transfers that write them.
    pub fn keep_only(&self, current: &str) -> io::Result<()> {
        let keep = file_name(current);
        let disk = &self.files.disk;
        let mut removed = false;
        for name in disk.list()? {
            if name.ends_with(SNAPSHOT_SUFFIX) && name != keep {
                disk.remove(&name)?;
                removed = true;
            }
        }
        if removed {
            disk.sync_dir()?;
        }
        Ok(())
    }
}

fn file_name(snapshot_id: &str) -> String {
    format!("{snapshot_id}{SNAPSHOT_SUFFIX}")
}

/// One snapshot file and a position in it: what openraft moves around as a snapshot's
/// data. Reads and writes go straight to the file (positioned, no buffer of its own):
/// wrap it in a `BufReader` / `BufWriter` for small pieces. A temporary file that is
/// dropped before it was published (a build that failed, a transfer cut off or refused,
/// a snapshot openraft did not need) is removed.
#[derive(Debug)]
pub struct SnapshotFile {
    file: Arc<dyn WalFile>,
    /// Its name in the directory (`.tmp` until published).
    name: String,
    pos: u64,
    len: u64,
    /// The directory of a temporary file, to remove it when dropped unpublished.
    temp_in: Option<Arc<dyn WalDisk>>,
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_in {
            // Not durable without a directory sync, and need not be: an unpublished
            // file that comes back after a power cut is removed at open.
            if let Err(error) = dir.remove(&self.name) {
                tracing::warn!(%error, file = %self.name, "an unused snapshot file stays");
            }
        }
    }
}

impl SnapshotFile {
    fn new(
        file: Arc<dyn WalFile>,
        name: String,
        len: u64,
        temp_in: Option<Arc<dyn WalDisk>>,
    ) -> Self {
        Self {
            file,
            name,
            pos: 0,
            len,
            temp_in,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Back to its first byte.
    pub fn rewind(&mut self) {
        self.pos = 0;
    }

    /// Its bytes from the current position as a stream of [`SNAPSHOT_BUFFER`]-sized
    /// pieces, each read on a blocking thread: sent without ever being held in memory.
    pub fn into_stream(self) -> impl futures::Stream<Item = io::Result<Bytes>> {
        futures::stream::unfold(Some(self), |file| async move {
            let mut file = file?;
            let read = tokio::task::spawn_blocking(move || {
                let mut piece = vec![0; SNAPSHOT_BUFFER];
                let n = io::Read::read(&mut file, &mut piece)?;
                piece.truncate(n);
                Ok::<_, io::Error>((piece, file))
            })
            .await
            .map_err(io::Error::other)
            .and_then(|read| read);
            match read {
                Ok((piece, _)) if piece.is_empty() => None,
                Ok((piece, file)) => Some((Ok(Bytes::from(piece)), Some(file))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    fn read_here(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let n = out.len().min(left);
        if n == 0 {
            return Ok(0);
        }
        self.file.read_at(self.pos, &mut out[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn write_here(&mut self, data: &[u8]) -> io::Result<usize> {
        self.file.write_at(self.pos, data)?;
        self.pos += data.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(data.len())
    }

    fn seek_to(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let target = match to {
            io::SeekFrom::Start(at) => Some(at),
            io::SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            io::SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the file's start")
        })?;
        Ok(self.pos)
    }
}

impl io::Read for SnapshotFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_here(out)
    }
}

impl io::Write for SnapshotFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_here(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// openraft wants its snapshot data async. The file's reads and writes are positioned
// calls that complete at once (the page cache, or the simulated disk's memory); they
// are made right in the poll, as tokio's own `File` would block a worker for them.
// Raft3D's own transfers use the blocking `Read` / `Write` on a blocking thread.
impl tokio::io::AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.read_here(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_here(data))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, to: io::SeekFrom) -> io::Result<()> {
        self.get_mut().seek_to(to).map(|_| ())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}
