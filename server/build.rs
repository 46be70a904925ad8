//! Embeds the dashboard bundle in the node binary, so that one file deploys a node.
//!
//! Owns: finding the bundle at build time (Trunk's `target/site/pkg`, written by
//! `scripts/build-dashboard.sh`, or the directory in `RAFT3D_DASHBOARD_DIR`) and writing
//! `$OUT_DIR/dashboard_bundle.rs`: a table of its files (`include_bytes!` of each, its
//! ETag, and its `.gz` sibling if any) that `src/http/dashboard.rs` serves under `/pkg`.
//! Must not: fail when there is no bundle. CI lints and tests before it builds the
//! dashboard; the table is then empty and the node says so when it starts.
//!
//! No build-dependencies: std does all of it, and nothing here is worth a crate.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use std::{env, fs, io};

/// Overrides where the bundle is taken from: a directory like `target/site/pkg`,
/// absolute or relative to `server/`.
const DIR_ENV: &str = "RAFT3D_DASHBOARD_DIR";
const OUTPUT_FILE: &str = "dashboard_bundle.rs";

fn main() -> Result<(), BuildError> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={DIR_ENV}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or(BuildError::NoOutDir)?);
    let bundle_dir = match env::var_os(DIR_ENV).filter(|dir| !dir.is_empty()) {
        Some(dir) => {
            // Asked for explicitly: a missing directory is a mistake, not "no bundle".
            // Absolute, because `include_bytes!` resolves relative paths from OUT_DIR; a
            // relative one is taken from `server/`, where cargo runs this script.
            let dir = PathBuf::from(dir);
            match fs::canonicalize(&dir) {
                Ok(dir) if dir.is_dir() => Some(dir),
                _ => return Err(BuildError::NotADirectory(dir)),
            }
        }
        None => default_bundle_dir()?,
    };
    let files = match &bundle_dir {
        Some(dir) => {
            println!("cargo:rerun-if-changed={}", utf8(dir)?);
            let files = bundle_files(dir)?;
            for file in &files {
                println!("cargo:rerun-if-changed={}", utf8(&file.source)?);
                if let Some(gzip) = &file.gzip {
                    println!("cargo:rerun-if-changed={}", utf8(gzip)?);
                }
            }
            files
        }
        None => Vec::new(),
    };
    let table = table_source(&files)?;
    let target = out_dir.join(OUTPUT_FILE);
    fs::write(&target, table).map_err(|source| BuildError::Io {
        path: target,
        source,
    })
}

/// The workspace's `target/site/pkg` if it exists. Found from this crate's directory at
/// build time only: the binary never looks there.
///
/// When it does not exist yet, its parent `target/site` is watched instead (created if
/// need be), so that a dashboard built later makes the next cargo build embed it. Cargo
/// reruns a build script on every build while a watched path is missing, and watching
/// `target/` itself would see every build: neither will do.
fn default_bundle_dir() -> Result<Option<PathBuf>, BuildError> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or(BuildError::NoManifestDir)?);
    let site = manifest_dir.join("..").join("target").join("site");
    let pkg = site.join("pkg");
    if pkg.is_dir() {
        return Ok(Some(pkg));
    }
    if !site.is_dir() {
        if let Err(error) = fs::create_dir_all(&site) {
            // Read-only checkout: the build goes on without the watch.
            println!(
                "cargo:warning=cannot create {} ({error}): a dashboard built later is embedded only after `touch server/build.rs`",
                site.display()
            );
            return Ok(None);
        }
        backdate(&site, &manifest_dir);
    }
    println!("cargo:rerun-if-changed={}", utf8(&site)?);
    Ok(None)
}

/// Gives a directory this script just created the age of `build.rs`. Cargo compares
/// watched paths with the time the script started, so a directory created during the
/// run would make the next build rerun it (and recompile the crate) once for nothing.
/// Best effort: failing costs that one rebuild.
fn backdate(dir: &Path, manifest_dir: &Path) {
    let old = fs::metadata(manifest_dir.join("build.rs"))
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let _ = fs::File::open(dir).and_then(|dir| dir.set_modified(old));
}

/// One file to embed, and its precompressed sibling.
struct BundleFile {
    /// Path below the bundle directory with `/` separators: what follows `/pkg/` in URLs.
    url_path: String,
    source: PathBuf,
    gzip: Option<PathBuf>,
}

/// The bundle's files, sorted by URL path so that the table is the same on every build.
/// A `x.gz` next to an `x` is `x`'s gzip variant rather than a file of its own.
fn bundle_files(dir: &Path) -> Result<Vec<BundleFile>, BuildError> {
    let mut found = Vec::new();
    walk(dir, "", &mut found)?;
    found.sort();
    let has = |url_path: &str| found.iter().any(|(other, _)| other == url_path);
    let mut files = Vec::new();
    for (url_path, source) in &found {
        if url_path.strip_suffix(".gz").is_some_and(has) {
            continue;
        }
        let gzip_url_path = format!("{url_path}.gz");
        let gzip = found
            .iter()
            .find(|(other, _)| *other == gzip_url_path)
            .map(|(_, path)| path.clone());
        files.push(BundleFile {
            url_path: url_path.clone(),
            source: source.clone(),
            gzip,
        });
    }
    Ok(files)
}

/// Every regular file below `dir` (following symlinks, as `include_bytes!` will), as its
/// URL path (after `prefix`) and its path on disk.
fn walk(dir: &Path, prefix: &str, found: &mut Vec<(String, PathBuf)>) -> Result<(), BuildError> {
    let io_error = |source| BuildError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| BuildError::NotUtf8(path.clone()))?;
        if name.starts_with('.') {
            // Not part of a bundle: e.g. a hidden staging directory a failed build left.
            continue;
        }
        let url_path = format!("{prefix}{name}");
        if path.is_dir() {
            walk(&path, &format!("{url_path}/"), found)?;
        } else if path.is_file() {
            found.push((url_path, path));
        }
    }
    Ok(())
}

/// The Rust expression `src/http/dashboard.rs` includes: a `&[EmbeddedFile]`.
fn table_source(files: &[BundleFile]) -> Result<String, BuildError> {
    let mut source = String::from("// @generated by server/build.rs: the dashboard bundle.\n&[\n");
    for file in files {
        let gzip = match &file.gzip {
            Some(path) => format!(
                "Some(EmbeddedBody {{ bytes: include_bytes!({:?}), etag: {:?} }})",
                utf8(path)?,
                etag(path)?
            ),
            None => "None".to_owned(),
        };
        // `{:?}` of a str is a valid Rust string literal, whatever the name holds.
        let _ = writeln!(
            source,
            "    EmbeddedFile {{ path: {:?}, body: EmbeddedBody {{ bytes: include_bytes!({:?}), etag: {:?} }}, gzip: {gzip} }},",
            file.url_path,
            utf8(&file.source)?,
            etag(&file.source)?,
        );
    }
    source.push(']');
    Ok(source)
}

/// A strong ETag from the file's bytes (64-bit FNV-1a, quoted): it changes when the
/// content does, which is all a browser revalidating `/pkg` needs. Computed here so the
/// node does no hashing at start.
fn etag(path: &Path) -> Result<String, BuildError> {
    let bytes = fs::read(path).map_err(|source| BuildError::Io {
        path: path.to_owned(),
        source,
    })?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Ok(format!("\"{hash:016x}\""))
}

fn utf8(path: &Path) -> Result<&str, BuildError> {
    path.to_str()
        .ok_or_else(|| BuildError::NotUtf8(path.to_owned()))
}

/// Why the bundle cannot be embedded. No thiserror: it would be this script's only
/// build-dependency, for five messages.
enum BuildError {
    NoOutDir,
    NoManifestDir,
    NotADirectory(PathBuf),
    NotUtf8(PathBuf),
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoOutDir => write!(f, "cargo did not set OUT_DIR"),
            Self::NoManifestDir => write!(f, "cargo did not set CARGO_MANIFEST_DIR"),
            Self::NotADirectory(dir) => {
                write!(f, "{DIR_ENV}={} is not a directory", dir.display())
            }
            Self::NotUtf8(path) => write!(
                f,
                "dashboard bundle path {} is not UTF-8: it cannot be embedded",
                path.display()
            ),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

// `main` returning `Err` prints the error with `Debug`: make that the readable message.
impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
