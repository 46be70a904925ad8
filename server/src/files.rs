//! The node's G-code file store, and keeping a copy of every stored file on every node.
//!
//! A file's bytes never go through the Raft log. The node that takes an upload writes it
//! to `DATA/files/incoming/`, hashing it (SHA-256) and reading its slicer's comments as
//! it streams in, fsyncs it, renames it to `DATA/files/<sha256>` and fsyncs the directory;
//! then it pushes the file to the other voters, each of which does the same and checks the
//! hash, and only once a majority of the voters (itself included) hold it durably does it
//! propose `AddFile` (`crate::http::files`). So an acknowledged upload survives the loss
//! of any minority: every majority that can elect a leader holds a node with the bytes.
//! A node that lacks a file the farm names (it was down, or is new) fetches it from a peer
//! that has it, checked against the hash, in the background ([`maintain`]) or when it is
//! asked for it ([`ensure_local`]).
//!
//! Owns: the files under `DATA/files`. Must not touch: the farm's state (it only reads
//! which files the farm names).

use crate::http::farm::Farm;
use app::domain::gcode::{is_plausible_gcode, GcodeMeta, MetaScanner, SNIFF_LEN};
use axum::body::Bytes;
use futures::{Stream, StreamExt};
use ring::digest::{Context, SHA256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The file store's directory in a node's data directory: `DATA/files/<sha256>`.
pub const DIR: &str = "files";

/// A stored file's bytes, on this node's disk.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// What a file turned out to be once stored.
#[derive(Debug, Clone)]
pub struct Received {
    pub sha256: String,
    pub size: u64,
    pub meta: GcodeMeta,
}

/// Why a file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than {limit} bytes (--max-upload-mib)")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error(
        "the file is not G-code text (binary data, or a binary .bgcode): send the plain .gcode"
    )]
    NotGcode,
    #[error("the bytes received hash to {got}, not {expected}")]
    HashMismatch { expected: String, got: String },
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("the file store failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("no member holds the file {0}")]
    Unavailable(String),
}

/// Whether `text` is a SHA-256 as the store names files (64 lowercase hex digits): the
/// only names a peer may ask for or send, so no path can escape the store.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FileStore {
    /// The store under `data_dir`; what an interrupted upload left in `incoming/` is
    /// removed (it was never acknowledged).
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join(DIR);
        let incoming = dir.join("incoming");
        if incoming.exists() {
            std::fs::remove_dir_all(&incoming)?;
        }
        std::fs::create_dir_all(&incoming)?;
        sync_dir(&dir)?;
        Ok(Self { dir })
    }

    /// Where the file with this hash is, if this node holds it.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        let path = self.dir.join(sha256);
        (is_sha256(sha256) && path.is_file()).then_some(path)
    }

    /// The hashes of every file this node holds.
    pub fn held(&self) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(name) = name.to_str().filter(|n| is_sha256(n)) {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    /// Removes the file with this hash (and says so in the directory, durably).
    pub fn remove(&self, sha256: &str) -> std::io::Result<()> {
        if let Some(path) = self.path(sha256) {
            std::fs::remove_file(path)?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Stores what `body` streams, at most `limit` bytes; with `expect`, only if it hashes
    /// to that. Durable once this returns: the file and its directory entry are fsynced.
    pub async fn receive<S, E>(
        &self,
        body: S,
        limit: u64,
        expect: Option<&str>,
    ) -> Result<Received, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let temp = self
            .dir
            .join("incoming")
            .join(format!("{}.part", uuid::Uuid::now_v7()));
        let received = self.write_checked(&temp, body, limit, expect).await;
        let received = match received {
            Ok(received) => received,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e);
            }
        };
        let target = self.dir.join(&received.sha256);
        tokio::fs::rename(&temp, &target).await?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || sync_dir(&dir))
            .await
            .map_err(std::io::Error::other)??;
        Ok(received)
    }

    async fn write_checked<S, E>(
        &self,
        temp: &Path,
        mut body: S,
        limit: u64,
        expect: Option<&str>,
    ) -> Result<Received, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(temp).await?;
        let mut hash = Context::new(&SHA256);
        let mut scanner = MetaScanner::new();
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| FileError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(FileError::TooLarge { limit });
            }
            if head.len() < SNIFF_LEN {
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                // Refuse a binary file at its first bytes, not after 512 MiB of it.
                if head.len() == SNIFF_LEN && !is_plausible_gcode(&head) {
                    return Err(FileError::NotGcode);
                }
            }
            hash.update(&chunk);
            scanner.feed(&chunk);
            file.write_all(&chunk).await?;
        }
        if size == 0 {
            return Err(FileError::Empty);
        }
        if !is_plausible_gcode(&head) {
            return Err(FileError::NotGcode);
        }
        let sha256 = hex(hash.finish().as_ref());
        if let Some(expected) = expect.filter(|e| *e != sha256) {
            return Err(FileError::HashMismatch {
                expected: expected.to_owned(),
                got: sha256,
            });
        }
        file.sync_all().await?;
        Ok(Received {
            sha256,
            size,
            meta: scanner.finish(),
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// fsyncs a directory, so that a file created, renamed or removed in it survives a
/// power loss.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// How long pushing or fetching one file to or from a peer may take: generous, at an
/// assumed 10 MB/s floor, plus a margin.
pub fn transfer_timeout(size: u64) -> Duration {
    Duration::from_secs(30 + size / 10_000_000)
}

/// Pushes the file with this hash to every other voter, and answers once a majority of
/// the voters (this node included) hold it, or with how many did when that cannot happen
/// any more. The pushes that are still under way go on.
pub async fn replicate(
    farm: &Farm,
    store: &FileStore,
    sha256: &str,
    size: u64,
) -> Result<(), usize> {
    let voters = farm.voters();
    let needed = voters.len() / 2 + 1;
    let mut held = usize::from(voters.iter().any(|(id, _)| *id == farm.id()));
    let Some(path) = store.path(sha256) else {
        return Err(0);
    };
    let mut pushes = futures::stream::FuturesUnordered::new();
    for (id, node) in voters.into_iter().filter(|(id, _)| *id != farm.id()) {
        let network = farm.network().clone();
        let path = path.clone();
        let sha = sha256.to_owned();
        pushes.push(tokio::spawn(async move {
            let pushed = network
                .push_file(id, &node, &sha, &path, size, transfer_timeout(size))
                .await;
            if let Err(error) = &pushed {
                tracing::warn!(peer = id, %error, file = %sha, "pushing a file to a peer failed");
            }
            pushed.is_ok()
        }));
    }
    while held < needed {
        match pushes.next().await {
            Some(Ok(true)) => held += 1,
            Some(_) => {}
            None => return Err(held),
        }
    }
    Ok(())
}

/// The path of the file with this hash on this node, fetched from a member that has it
/// when this node does not.
pub async fn ensure_local(
    farm: &Farm,
    store: &FileStore,
    sha256: &str,
    size: u64,
) -> Result<PathBuf, FileError> {
    if let Some(path) = store.path(sha256) {
        return Ok(path);
    }
    for (id, node) in farm.members() {
        if id == farm.id() {
            continue;
        }
        let fetched = farm
            .network()
            .fetch_file(id, &node, sha256, transfer_timeout(size))
            .await;
        let response = match fetched {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(peer = id, %error, file = sha256, "peer has no copy");
                continue;
            }
        };
        match store
            .receive(response.bytes_stream(), size, Some(sha256))
            .await
        {
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(peer = id, %error, file = sha256, "fetching a file from a peer failed");
            }
        }
    }
    store
        .path(sha256)
        .ok_or_else(|| FileError::Unavailable(sha256.to_owned()))
}

/// How often a node looks for files it lacks, and for files the farm no longer names.
const MAINTAIN_EVERY: Duration = Duration::from_secs(5);
/// A file no stored file names is removed once this old: an upload under way pushes its
/// file to the peers before the farm names it.
const ORPHAN_AFTER: Duration = Duration::from_secs(15 * 60);

/// Keeps this node's store in step with the farm: fetches every file the farm names that
/// this node lacks, and removes files it no longer names (at once when it named them at
/// the last look, else once they are old: an upload under way).
pub async fn maintain(
    farm: Farm,
    store: FileStore,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut named_before: Vec<(String, u64)> = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MAINTAIN_EVERY) => {}
            _ = stopped.changed() => return Ok(()),
        }
        let named: Vec<(String, u64)> = {
            let applied = farm.local_state();
            applied
                .farm
                .files()
                .map(|f| (f.sha256.clone(), f.size))
                .collect()
        };
        for (sha, size) in &named {
            if store.path(sha).is_none() {
                if let Err(error) = ensure_local(&farm, &store, sha, *size).await {
                    tracing::debug!(%error, "a stored file is not on this node yet");
                }
            }
        }
        remove_orphans(&store, &named, &named_before);
        named_before = named;
    }
}

fn remove_orphans(store: &FileStore, named: &[(String, u64)], named_before: &[(String, u64)]) {
    let Ok(held) = store.held() else {
        return;
    };
    let is_in = |list: &[(String, u64)], sha: &str| list.iter().any(|(n, _)| n == sha);
    for sha in held.iter().filter(|sha| !is_in(named, sha)) {
        let deleted = is_in(named_before, sha);
        let old = store
            .path(sha)
            .and_then(|p| p.metadata().ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ORPHAN_AFTER);
        if deleted || old {
            if let Err(error) = store.remove(sha) {
                tracing::warn!(%error, file = %sha, "removing a file no longer stored failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::copy_from_slice(p)))
                .collect::<Vec<_>>(),
        )
    }

    const GCODE: &[u8] =
        b"; generated by PrusaSlicer 2.7.1\nG28\nG1 X10 Y10\n; filament used [g] = 3.71\n";

    #[tokio::test]
    async fn a_file_is_stored_under_its_hash_with_its_slicers_numbers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path()).expect("store");
        let got = store
            .receive(chunks(&[&GCODE[..10], &GCODE[10..]]), 1 << 20, None)
            .await
            .expect("stored");
        assert_eq!(got.size, GCODE.len() as u64);
        assert_eq!(got.meta.filament_grams, Some(3.71));
        let path = store.path(&got.sha256).expect("held");
        assert_eq!(std::fs::read(path).expect("readable"), GCODE);
        assert_eq!(store.held().expect("listed"), vec![got.sha256.clone()]);
        let again = store
            .receive(chunks(&[GCODE]), 1 << 20, Some(&got.sha256))
            .await
            .expect("the same bytes again");
        assert_eq!(again.sha256, got.sha256);
    }

    #[tokio::test]
    async fn bad_files_leave_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path()).expect("store");
        let zeros = "0".repeat(64);
        /// Chunks, limit, expected hash.
        type Case<'a> = (Vec<&'a [u8]>, u64, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![], 100, None),
            (vec![b"\x00\x01\x02binary\xff"], 100, None),
            (vec![b"GCDE\x01\x00\x00\x00"], 100, None),
            (vec![GCODE, GCODE], GCODE.len() as u64, None),
            (vec![GCODE], 1000, Some(&zeros)),
        ];
        for (parts, limit, expect) in cases {
            let refused = store.receive(chunks(&parts), limit, expect).await;
            assert!(refused.is_err(), "{parts:?} was stored");
        }
        assert!(store.held().expect("listed").is_empty());
        let leftovers = std::fs::read_dir(dir.path().join("files/incoming"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 0, "no partial file is left");
    }

    #[test]
    fn only_hashes_name_files() {
        assert!(is_sha256(&"a1".repeat(32)));
        for bad in [
            "",
            "../etc/passwd",
            &"A1".repeat(32),
            &"a".repeat(63),
            "incoming",
        ] {
            assert!(!is_sha256(bad), "{bad}");
        }
    }
}
