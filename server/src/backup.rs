//! Backups of a farm: `GET /api/v1/backup` streams one from any node, `raft3d backup`
//! saves it to a file, `raft3d restore` turns it into the node directories of a **new**
//! cluster holding the same farm.
//!
//! A backup is the farm as one node's `state.redb` holds it at one log index (a redb
//! read transaction: writes go on meanwhile), streamed in chunks, plus the bytes of every
//! stored G-code file (the node fetches any it lacks from a peer first). Format,
//! version 1; every byte before the last line is in its checksum:
//!
//! ```text
//! {"format":"raft3d-backup","version":1,"cluster_id":..,"node_id":..,"index":..,"clock_ms":..,"taken_at":..}
//! {"table":"print_jobs","key":"j1","value":<the row's JSON, as stored>}     one per row
//! {"file":"<sha256>","size":N}                                             one per stored file,
//! <N bytes>\n                                                              its bytes, then a newline
//! {"end":{"rows":R,"files":F,"sha256":"<SHA-256 of every byte above>"}}
//! ```
//!
//! Reading checks everything: the header's format and version, each line's shape, each
//! table's name, each file's size and hash, the counts, the checksum and that nothing
//! follows the end. A restore writes into a directory of its own and moves it into place
//! only once all of that held and the farm loaded as a node would load it
//! (`store::restored_state`), so a corrupt, truncated or foreign file writes nothing.
//!
//! Owns: the format, its checking, and the two commands. Must not touch: a running
//! node's files (a backup reads a node through its API; a restore writes new
//! directories only).

use crate::files::{hex, FileStore};
use crate::http::farm::Farm;
use crate::store::restored_state::{backed_up_tables, RestoreError, RestoredState};
use crate::store::FarmView;
use redb::TableHandle;
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

const FORMAT: &str = "raft3d-backup";
const VERSION: u32 = 1;
/// About this many bytes go into one chunk of the stream.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks made ahead of what the client has taken.
const CHUNKS_AHEAD: usize = 2;
/// Longest line a reader accepts: a row is at most a request body (1 MiB by default);
/// a longer "line" is not a backup.
const MAX_LINE: u64 = 64 << 20;

/// The first line of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The cluster it was taken from.
    pub cluster_id: Option<String>,
    /// The node that served it.
    pub node_id: u64,
    /// The last log index the farm in it reflects.
    pub index: Option<u64>,
    /// The farm's clock (the last proposal's time, Unix ms): a restored cluster's
    /// timestamps go on from it.
    pub clock_ms: u64,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
}

#[derive(Debug, Deserialize)]
struct RowLine<'a> {
    table: String,
    #[serde(borrow)]
    key: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    value: &'a RawValue,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileLine {
    file: String,
    size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct EndLine {
    end: End,
}

#[derive(Debug, Serialize, Deserialize)]
struct End {
    rows: u64,
    files: u64,
    sha256: String,
}

/// Why a backup could not be made, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a Raft3D backup: {0}")]
    Foreign(String),
    #[error("backup format version {0} is not one this build reads (it reads {VERSION})")]
    Version(u32),
    #[error("the backup is cut short: {0}")]
    Truncated(String),
    #[error("the backup is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Store(#[from] crate::store::db::DbError),
    #[error(transparent)]
    Init(#[from] crate::init::InitError),
    #[error("{0}")]
    Client(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A stored file the backup carries, and where this node holds its bytes.
pub struct StoredFile {
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
}

/// The header of a backup of `view`, taken on `farm`'s node now.
pub fn header(farm: &Farm, view: &FarmView) -> Result<Header, crate::store::db::DbError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Ok(Header {
        format: FORMAT.to_owned(),
        version: VERSION,
        cluster_id: farm.cluster_id(),
        node_id: farm.id(),
        index: view.index,
        clock_ms: view.clock_ms()?,
        taken_at: app::Timestamp::from_unix_ms(now).to_string(),
    })
}

/// The backup of `view` as chunks, made on a blocking thread no further ahead than
/// [`CHUNKS_AHEAD`] of the receiver (memory stays at a few chunks whatever the farm
/// holds). The receiver dropping stops the work; an error ends the stream early, so the
/// copy has no end line and every reader refuses it.
pub fn stream(
    view: FarmView,
    header: Header,
    files: Vec<StoredFile>,
) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (chunks, receiver) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkSink::new(&chunks);
        if let Err(error) = write_backup(&mut out, &view, &header, &files) {
            tracing::warn!(%error, "a backup stopped before its end");
            let _ = chunks.blocking_send(Err(error));
        }
    });
    receiver
}

fn write_backup(
    out: &mut ChunkSink<'_>,
    view: &FarmView,
    header: &Header,
    files: &[StoredFile],
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(header)?;
    line.push(b'\n');
    out.write_all(&line)?;
    let mut rows = 0u64;
    let mut failed = None;
    for table in backed_up_tables() {
        let name = serde_json::to_string(table.name())?;
        view.each_row(table, |key, value| {
            let written = serde_json::to_string(key)
                .map_err(std::io::Error::from)
                .and_then(|key| {
                    out.write_all(
                        format!("{{\"table\":{name},\"key\":{key},\"value\":").as_bytes(),
                    )?;
                    out.write_all(value)?;
                    out.write_all(b"}\n")
                });
            rows += 1;
            if let Err(error) = written {
                failed = Some(error);
            }
            failed.is_none() && !out.closed
        })
        .map_err(std::io::Error::other)?;
        if let Some(error) = failed.take() {
            return Err(error);
        }
    }
    for file in files {
        let mut line = serde_json::to_vec(&FileLine {
            file: file.sha256.clone(),
            size: file.size,
        })?;
        line.push(b'\n');
        out.write_all(&line)?;
        let opened = std::fs::File::open(&file.path)?;
        let copied = std::io::copy(&mut opened.take(file.size), out)?;
        if copied != file.size {
            return Err(std::io::Error::other(format!(
                "stored file {} is {copied} bytes, not {}",
                file.sha256, file.size
            )));
        }
        out.write_all(b"\n")?;
    }
    let end = EndLine {
        end: End {
            rows,
            files: files.len() as u64,
            sha256: hex(out.hash.clone().finish().as_ref()),
        },
    };
    let mut line = serde_json::to_vec(&end)?;
    line.push(b'\n');
    out.write_unhashed(&line)?;
    out.flush()
}

/// Gathers written bytes into chunks for the stream, hashing them on the way.
struct ChunkSink<'a> {
    chunks: &'a mpsc::Sender<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    hash: Context,
    /// The receiver went away: nothing more is wanted.
    closed: bool,
}

impl<'a> ChunkSink<'a> {
    fn new(chunks: &'a mpsc::Sender<std::io::Result<Vec<u8>>>) -> Self {
        Self {
            chunks,
            chunk: Vec::with_capacity(CHUNK_BYTES + 1024),
            hash: Context::new(&SHA256),
            closed: false,
        }
    }

    fn write_unhashed(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.chunk.extend_from_slice(bytes);
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }
}

impl Write for ChunkSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.hash.update(bytes);
        self.write_unhashed(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES + 1024));
        if self.chunks.blocking_send(Ok(full)).is_err() {
            self.closed = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        Ok(())
    }
}

/// What reading a backup does with its parts (a restore writes them; a check only
/// reads them).
pub trait BackupSink {
    fn row(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), BackupError>;
    /// Takes exactly `size` bytes of file `sha256` from `bytes` (already checked to be
    /// that many and to have that hash only once they are all read: a sink keeps them
    /// aside until then).
    fn file(&mut self, sha256: &str, size: u64, bytes: &mut dyn Read) -> Result<(), BackupError>;
}

/// What a backup held, once read to its end and found whole.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub header: Header,
    pub rows: u64,
    pub files: u64,
}

/// Reads a whole backup from `input` into `sink`, checking everything the module doc
/// lists; any failure is an error (what the sink got is then to be thrown away).
pub fn read(input: impl Read, sink: &mut dyn BackupSink) -> Result<BackupSummary, BackupError> {
    let mut input = Hashing::new(std::io::BufReader::new(input));
    let first = match next_line(&mut input) {
        Ok(Some(line)) => line,
        Ok(None) => return Err(BackupError::Foreign("the file is empty".into())),
        Err(BackupError::Truncated(_) | BackupError::Corrupt(_)) => {
            return Err(BackupError::Foreign(
                "no header line (or cut off within it)".into(),
            ))
        }
        Err(error) => return Err(error),
    };
    #[derive(Deserialize)]
    struct Probe {
        format: String,
        version: u32,
    }
    let probe: Probe = serde_json::from_slice(&first)
        .map_err(|_| BackupError::Foreign("its first line is not a backup header".into()))?;
    if probe.format != FORMAT {
        return Err(BackupError::Foreign(format!("format {:?}", probe.format)));
    }
    if probe.version != VERSION {
        return Err(BackupError::Version(probe.version));
    }
    let header: Header =
        serde_json::from_slice(&first).map_err(|e| BackupError::Corrupt(format!("header: {e}")))?;
    let (mut rows, mut files) = (0u64, 0u64);
    loop {
        let hashed_so_far = input.hash.clone().finish();
        let line = next_line(&mut input)?
            .ok_or_else(|| BackupError::Truncated(format!("no end line after {rows} rows")))?;
        if line.starts_with(br#"{"table":"#) {
            let row: RowLine<'_> = serde_json::from_slice(&line)
                .map_err(|e| BackupError::Corrupt(format!("row {}: {e}", rows + 1)))?;
            sink.row(&row.table, &row.key, row.value.get().as_bytes())?;
            rows += 1;
        } else if line.starts_with(br#"{"file":"#) {
            let file: FileLine = serde_json::from_slice(&line)
                .map_err(|e| BackupError::Corrupt(format!("file {}: {e}", files + 1)))?;
            read_file(&mut input, &file, sink)?;
            files += 1;
        } else if line.starts_with(br#"{"end":"#) {
            let end: EndLine = serde_json::from_slice(&line)
                .map_err(|e| BackupError::Corrupt(format!("end line: {e}")))?;
            let (want, got) = (end.end, hex(hashed_so_far.as_ref()));
            if want.sha256 != got {
                return Err(BackupError::Corrupt(format!(
                    "checksum {got} is not the recorded {}",
                    want.sha256
                )));
            }
            if (want.rows, want.files) != (rows, files) {
                return Err(BackupError::Corrupt(format!(
                    "{rows} rows and {files} files, the end line says {} and {}",
                    want.rows, want.files
                )));
            }
            if next_line(&mut input)?.is_some() {
                return Err(BackupError::Corrupt("bytes after the end line".into()));
            }
            return Ok(BackupSummary {
                header,
                rows,
                files,
            });
        } else {
            return Err(BackupError::Corrupt(format!(
                "line after {rows} rows is none of this format's"
            )));
        }
    }
}

fn read_file(
    input: &mut Hashing<impl BufRead>,
    file: &FileLine,
    sink: &mut dyn BackupSink,
) -> Result<(), BackupError> {
    if !crate::files::is_sha256(&file.file) {
        return Err(BackupError::Corrupt(format!("file name {:?}", file.file)));
    }
    let mut content = Hashing::new(input.by_ref().take(file.size));
    sink.file(&file.file, file.size, &mut content)?;
    // Whatever the sink left unread counts too.
    std::io::copy(&mut content, &mut std::io::sink()).map_err(read_error)?;
    if content.read != file.size {
        return Err(BackupError::Truncated(format!(
            "file {} has {} of its {} bytes",
            file.file, content.read, file.size
        )));
    }
    if hex(content.hash.finish().as_ref()) != file.file {
        return Err(BackupError::Corrupt(format!(
            "file {}'s bytes have another hash",
            file.file
        )));
    }
    let mut newline = [0u8; 1];
    match input.read_exact(&mut newline) {
        Ok(()) if newline == *b"\n" => Ok(()),
        Ok(()) => Err(BackupError::Corrupt(format!(
            "no newline after file {}",
            file.file
        ))),
        Err(_) => Err(BackupError::Truncated(format!("after file {}", file.file))),
    }
}

/// The next line without its newline; `None` at the end of the input. A last line
/// without a newline is a cut-off line.
fn next_line(input: &mut Hashing<impl BufRead>) -> Result<Option<Vec<u8>>, BackupError> {
    let mut line = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .map_err(read_error)?;
    match (read, line.last()) {
        (0, _) => Ok(None),
        (_, Some(b'\n')) => {
            line.pop();
            Ok(Some(line))
        }
        _ if read as u64 >= MAX_LINE => Err(BackupError::Corrupt("a line over 64 MiB".into())),
        _ => Err(BackupError::Truncated("its last line is cut off".into())),
    }
}

fn read_error(error: std::io::Error) -> BackupError {
    BackupError::Truncated(format!("reading: {error}"))
}

/// Hashes and counts every byte read through it: the whole backup (as `BufRead`), and
/// each stored file's bytes in it.
struct Hashing<R> {
    inner: R,
    hash: Context,
    read: u64,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Context::new(&SHA256),
            read: 0,
        }
    }

    fn seen(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.read += bytes.len() as u64;
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Hashing<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let amount = amount.min(buf.len());
            self.hash.update(&buf[..amount]);
            self.read += amount as u64;
        }
        self.inner.consume(amount);
    }
}

/// The error of an I/O operation on `path`, for `map_err`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { path, source }
}

/// Reads a backup only to check it (`raft3d backup` checks what it saved).
pub struct CheckOnly;

impl BackupSink for CheckOnly {
    fn row(&mut self, _: &str, _: &str, _: &[u8]) -> Result<(), BackupError> {
        Ok(())
    }

    fn file(&mut self, _: &str, _: u64, _: &mut dyn Read) -> Result<(), BackupError> {
        Ok(())
    }
}

/// Writes a backup's farm into one node's data directory (`state.redb` and
/// `files/<sha256>`).
pub struct RestoreSink {
    data_dir: PathBuf,
    state: Option<RestoredState>,
}

impl RestoreSink {
    pub fn new(data_dir: &Path) -> Result<Self, BackupError> {
        std::fs::create_dir_all(data_dir.join(crate::files::DIR)).map_err(io_at(data_dir))?;
        Ok(Self {
            data_dir: data_dir.to_owned(),
            state: Some(RestoredState::create(&data_dir.join("state.redb"))?),
        })
    }

    /// Completes `state.redb` with the farm's clock; returns the farm's state digest.
    pub fn finish(mut self, clock_ms: u64) -> Result<u64, BackupError> {
        let state = self
            .state
            .take()
            .ok_or_else(|| BackupError::Corrupt("the restored state was finished twice".into()))?;
        Ok(state.finish(&self.data_dir.join("state.redb"), clock_ms)?)
    }
}

impl BackupSink for RestoreSink {
    fn row(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), BackupError> {
        match &mut self.state {
            Some(state) => Ok(state.put(table, key, value)?),
            None => Err(BackupError::Corrupt("a row after the end".into())),
        }
    }

    fn file(&mut self, sha256: &str, _size: u64, bytes: &mut dyn Read) -> Result<(), BackupError> {
        // Checked by `read` once all of it is read; a failure throws the whole new
        // directory away.
        let path = self.data_dir.join(crate::files::DIR).join(sha256);
        let mut file = std::fs::File::create(&path).map_err(io_at(&path))?;
        std::io::copy(bytes, &mut file).map_err(io_at(&path))?;
        file.sync_all().map_err(io_at(&path))?;
        Ok(())
    }
}

/// `raft3d restore`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The backup file (`raft3d backup --out`).
    #[arg(long, value_name = "FILE")]
    pub backup: PathBuf,
    /// The old cluster's `cluster.secret`, so that printers' API keys in the backup open
    /// in the new cluster; without it, connect each printer again.
    #[arg(long, value_name = "FILE")]
    pub cluster_secret: Option<PathBuf>,
    #[command(flatten)]
    pub init: crate::init::InitArgs,
}

/// What `raft3d restore` made.
#[derive(Debug)]
pub struct Restored {
    pub summary: BackupSummary,
    pub node_dirs: Vec<PathBuf>,
    /// The restored farm's state digest (`GET /api/v1/cluster` of the new cluster shows
    /// it until its first write).
    pub digest: u64,
}

/// Runs `raft3d restore`: `raft3d init` of a new cluster in a directory of its own,
/// the backup read into the first node's data directory and copied to the others, then
/// that directory moved to `--dir`. Any failure removes it: nothing is left at `--dir`.
pub fn restore(args: &RestoreArgs) -> Result<Restored, BackupError> {
    let target = args.init.dir.clone();
    if target.exists() {
        return Err(BackupError::Io {
            path: target,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists: a restore makes a new directory",
            ),
        });
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cluster".to_owned());
    let work = target.with_file_name(format!(".{name}.restoring"));
    let _ = std::fs::remove_dir_all(&work);
    let result = restore_into(args, &work);
    match result {
        Ok(mut restored) => {
            std::fs::rename(&work, &target).map_err(io_at(&target))?;
            restored.node_dirs = restored
                .node_dirs
                .iter()
                .filter_map(|d| d.file_name().map(|n| target.join(n)))
                .collect();
            Ok(restored)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&work);
            Err(error)
        }
    }
}

fn restore_into(args: &RestoreArgs, work: &Path) -> Result<Restored, BackupError> {
    let backup = std::fs::File::open(&args.backup).map_err(io_at(&args.backup))?;
    std::fs::create_dir_all(work).map_err(io_at(work))?;
    if let Some(secret) = &args.cluster_secret {
        // `init` keeps a secret it finds in its directory.
        let text = std::fs::read_to_string(secret).map_err(io_at(secret))?;
        if crate::secret::ClusterSecret::from_hex(text.trim()).is_none() {
            return Err(BackupError::Foreign(format!(
                "{} is not a cluster secret",
                secret.display()
            )));
        }
        let path = work.join(crate::secret::SECRET_FILE);
        crate::pki::write_secret(&path, text.trim()).map_err(|e| BackupError::Io {
            path,
            source: std::io::Error::other(e),
        })?;
    }
    let init = crate::init::InitArgs {
        dir: work.to_owned(),
        ..args.init.clone()
    };
    let node_dirs = crate::init::run(&init)?;
    let first = node_dirs
        .first()
        .ok_or_else(|| BackupError::Foreign("no node to restore into (--peers)".into()))?;
    let first_data = first.join("data");
    let mut sink = RestoreSink::new(&first_data)?;
    let summary = read(backup, &mut sink)?;
    let digest = sink.finish(summary.header.clock_ms)?;
    for other in &node_dirs[1..] {
        copy_data_dir(&first_data, &other.join("data"))?;
    }
    Ok(Restored {
        summary,
        node_dirs,
        digest,
    })
}

/// A copy of a restored data directory (`state.redb`, `files/`), each file synced.
fn copy_data_dir(from: &Path, to: &Path) -> Result<(), BackupError> {
    let files_to = to.join(crate::files::DIR);
    std::fs::create_dir_all(&files_to).map_err(io_at(&files_to))?;
    let mut copies = vec![(from.join("state.redb"), to.join("state.redb"))];
    let stored = FileStore::open(from).map_err(io_at(from))?;
    for sha256 in stored.held().map_err(io_at(from))? {
        let dir = crate::files::DIR;
        copies.push((from.join(dir).join(&sha256), files_to.join(&sha256)));
    }
    for (source, target) in copies {
        std::fs::copy(&source, &target).map_err(io_at(&source))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io_at(&target))?;
    }
    Ok(())
}

/// Runs `raft3d backup`: the backup of the node at `node` saved as `out`, through a
/// `.partial` file that is checked whole (as a restore would read it) before it takes
/// `out`'s name. Any failure leaves no file at `out`.
pub async fn save(
    client: &raft3d_client::Client,
    node: &str,
    out: &Path,
) -> Result<BackupSummary, BackupError> {
    let mut partial_name = out.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let result = async {
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(&partial).map_err(io_at(&partial))?);
        // A big farm takes a while; the client's usual request timeout is for small answers.
        let call = raft3d_client::Call::get("/api/v1/backup").with_timeout(SAVE_TIMEOUT);
        let answer = client
            .download(node, &call, &mut file)
            .await
            .map_err(|e| BackupError::Client(e.to_string()))?;
        if !answer.status.is_success() {
            let problem = answer.problem();
            return Err(BackupError::Client(format!(
                "{} answered {}: {}",
                answer.node, answer.status, problem.detail
            )));
        }
        let file = file.into_inner().map_err(|e| BackupError::Io {
            path: partial.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_at(&partial))?;
        let saved = std::fs::File::open(&partial).map_err(io_at(&partial))?;
        let summary = read(saved, &mut CheckOnly)?;
        std::fs::rename(&partial, out).map_err(io_at(out))?;
        Ok(summary)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// How long `raft3d backup` waits for the whole backup.
const SAVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"format":"raft3d-backup","version":1,"cluster_id":"c","node_id":1,"index":7,"clock_ms":5,"taken_at":"2026-12-07T00:00:00.000Z"}"#;
    const ROW: &str = r#"{"table":"printers","key":"p1","value":{"id":"p1","company":"a"}}"#;
    const FILE: &[u8] = b"G28\n";

    /// A whole backup of `body` lines (each with its newline) and its end line.
    fn backup(body: &[u8], rows: u64, files: u64) -> Vec<u8> {
        let mut bytes = format!("{HEADER}\n").into_bytes();
        bytes.extend_from_slice(body);
        let mut hash = Context::new(&SHA256);
        hash.update(&bytes);
        let sha256 = hex(hash.finish().as_ref());
        let end =
            format!("{{\"end\":{{\"rows\":{rows},\"files\":{files},\"sha256\":\"{sha256}\"}}}}\n");
        bytes.extend_from_slice(end.as_bytes());
        bytes
    }

    fn file_part() -> Vec<u8> {
        let sha = hex(ring::digest::digest(&SHA256, FILE).as_ref());
        let mut part = format!("{{\"file\":\"{sha}\",\"size\":{}}}\n", FILE.len()).into_bytes();
        part.extend_from_slice(FILE);
        part.push(b'\n');
        part
    }

    fn whole() -> Vec<u8> {
        let mut body = format!("{ROW}\n").into_bytes();
        body.extend(file_part());
        backup(&body, 1, 1)
    }

    #[derive(Default)]
    struct Collect {
        rows: Vec<(String, String, String)>,
        files: Vec<(String, Vec<u8>)>,
    }

    impl BackupSink for Collect {
        fn row(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), BackupError> {
            let value = String::from_utf8_lossy(value).into_owned();
            self.rows.push((table.to_owned(), key.to_owned(), value));
            Ok(())
        }

        fn file(&mut self, sha: &str, _: u64, bytes: &mut dyn Read) -> Result<(), BackupError> {
            let mut content = Vec::new();
            bytes.read_to_end(&mut content).map_err(read_error)?;
            self.files.push((sha.to_owned(), content));
            Ok(())
        }
    }

    fn read_all(bytes: &[u8]) -> Result<(BackupSummary, Collect), BackupError> {
        let mut sink = Collect::default();
        read(bytes, &mut sink).map(|summary| (summary, sink))
    }

    #[test]
    fn a_whole_backup_gives_its_rows_byte_for_byte_and_its_files() {
        let (summary, got) = read_all(&whole()).expect("a whole backup reads");
        assert_eq!((summary.rows, summary.files), (1, 1));
        assert_eq!(summary.header.index, Some(7));
        let value = r#"{"id":"p1","company":"a"}"#.to_owned();
        assert_eq!(got.rows, [("printers".to_owned(), "p1".to_owned(), value)]);
        assert_eq!(got.files.len(), 1);
        assert_eq!(got.files[0].1, FILE);
    }

    #[test]
    fn every_cut_of_a_backup_is_refused() {
        let bytes = whole();
        for cut in 0..bytes.len() {
            assert!(
                read_all(&bytes[..cut]).is_err(),
                "cut at {cut} of {}",
                bytes.len()
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = whole();
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x01;
            assert!(
                read_all(&flipped).is_err(),
                "byte {at} flipped: {:?}",
                flipped[at] as char
            );
        }
    }

    #[test]
    fn foreign_and_newer_files_say_what_they_are() {
        let other = b"{\"format\":\"etcd\",\"version\":1}\n";
        assert!(matches!(read_all(other), Err(BackupError::Foreign(_))));
        assert!(matches!(
            read_all(b"PK\x03\x04zip"),
            Err(BackupError::Foreign(_))
        ));
        let newer = HEADER.replace("\"version\":1", "\"version\":2");
        let Err(BackupError::Version(2)) = read_all(format!("{newer}\n").as_bytes()) else {
            panic!("a version-2 file must be refused as such");
        };
    }

    #[test]
    fn counts_bytes_after_the_end_and_lines_of_no_kind_are_refused() {
        let body = format!("{ROW}\n");
        assert!(
            read_all(&backup(body.as_bytes(), 2, 0)).is_err(),
            "row count"
        );
        assert!(
            read_all(&backup(body.as_bytes(), 1, 1)).is_err(),
            "file count"
        );
        let mut trailing = backup(body.as_bytes(), 1, 0);
        trailing.extend_from_slice(b"{}\n");
        assert!(matches!(read_all(&trailing), Err(BackupError::Corrupt(_))));
        let odd = backup(b"{\"tables\":1}\n", 0, 0);
        assert!(matches!(read_all(&odd), Err(BackupError::Corrupt(_))));
        assert!(read_all(&backup(body.as_bytes(), 1, 0)).is_ok());
    }

    #[test]
    fn a_file_whose_bytes_do_not_match_its_name_is_refused() {
        let mut part = file_part();
        let at = part.len() - 2;
        part[at] = b'X';
        let Err(BackupError::Corrupt(why)) = read_all(&backup(&part, 0, 1)) else {
            panic!("another file's bytes under a name must be refused");
        };
        assert!(why.contains("hash"), "{why}");
    }
}
