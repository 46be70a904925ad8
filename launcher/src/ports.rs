//! Ports for nodes that this process will start, claimed without races.
//!
//! Binding port 0 and passing the number on races: until the child binds it, the kernel
//! may give the same port to another test's node, or use it as the source port of an
//! outgoing connection. So ports come from below Linux's ephemeral range (the kernel
//! never picks those by itself), each is claimed with a lock file held as long as the
//! claim lives (so concurrent test processes skip it even before a child binds it), and
//! is checked to be bindable (something unrelated may listen there).

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Lowest port handed out.
const FIRST: u32 = 20_000;
/// One past the highest, unless the ephemeral range starts lower.
const LAST: u32 = 32_000;

/// Where the next search starts (0: not chosen yet).
static NEXT: AtomicU32 = AtomicU32::new(0);
/// Claims held until this process exits, for [`free_port`].
static KEPT: Mutex<Vec<PortClaim>> = Mutex::new(Vec::new());

/// A port held for this process: no other user of this crate takes it while this lives.
#[derive(Debug)]
pub struct PortClaim {
    port: u16,
    /// The lock is held while the file is open; the OS drops it if this process dies.
    _lock: File,
}

impl PortClaim {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Why no port could be claimed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("cannot use the port lock directory {dir}: {source}")]
    LockDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("no free port between {FIRST} and {last}")]
    Exhausted { last: u32 },
}

/// Claims a free port on 127.0.0.1.
pub fn claim() -> Result<PortClaim, PortError> {
    let dir = std::env::temp_dir().join("raft3d-launcher-ports");
    std::fs::create_dir_all(&dir).map_err(|source| PortError::LockDir {
        dir: dir.clone(),
        source,
    })?;
    let last = LAST.min(ephemeral_start());
    let span = last.saturating_sub(FIRST).max(1);
    // Each process starts elsewhere in the range, so parallel test binaries rarely meet.
    let _ = NEXT.compare_exchange(
        0,
        FIRST + (std::process::id().wrapping_mul(7919)) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let candidate = FIRST + (NEXT.fetch_add(1, Ordering::SeqCst) - FIRST) % span;
        let Ok(port) = u16::try_from(candidate) else {
            continue;
        };
        let path = dir.join(format!("{port}.lock"));
        let Ok(file) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => continue,
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(PortClaim { port, _lock: file });
        }
    }
    Err(PortError::Exhausted { last })
}

/// A port claimed for the rest of this process's life (for tests that only need a number).
///
/// # Panics
/// When no port is free: a test cannot go on without one.
pub fn free_port() -> u16 {
    let claim = claim().unwrap_or_else(|e| panic!("{e}"));
    let port = claim.port();
    KEPT.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(claim);
    port
}

/// The first port of the kernel's ephemeral range (32768 when unknown).
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_ports_are_distinct_and_below_the_ephemeral_range() {
        let claims: Vec<PortClaim> = (0..20).map(|_| claim().expect("a free port")).collect();
        let mut ports: Vec<u16> = claims.iter().map(PortClaim::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20);
        assert!(ports.iter().all(|&p| u32::from(p) < ephemeral_start()));
    }

    #[test]
    fn a_claimed_port_is_not_handed_out_again_while_held() {
        let held = claim().expect("a free port");
        let path = std::env::temp_dir()
            .join("raft3d-launcher-ports")
            .join(format!("{}.lock", held.port()));
        let other = File::options()
            .write(true)
            .open(path)
            .expect("lock file exists");
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
    }
}
