//! A cluster holding many records: how long loading them takes, how much memory each node
//! holds, how long a killed node takes to serve again, and (Raft3D) how long a wiped
//! follower takes to catch up from a snapshot.
//!
//! Owns: filling a fresh cluster and those measurements; reads memory from `/proc`.

use super::load::{send, MakeRequest};
use super::{BenchError, Op, System};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Concurrent writers while filling.
const FILL_CLIENTS: u64 = 64;
/// Attempts per record while filling before the run is abandoned.
const FILL_ATTEMPTS: u32 = 3;

/// What was measured on one system holding `records` records.
#[derive(Debug, Clone, Serialize)]
pub struct BulkStats {
    pub records: u64,
    /// Seconds to write them all with 64 clients.
    pub fill_secs: f64,
    /// Resident memory of every node once filled.
    pub memory: Vec<NodeMemory>,
    /// SIGKILL of a follower, then start until it answers a linearizable read, per try.
    pub restart_ms: Vec<f64>,
    /// A follower's data directory wiped (etcd: and the member replaced), start until it
    /// has caught up with what the leader had.
    pub wiped_catch_up_ms: f64,
}

/// One node's memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeMemory {
    /// 0-based index of the node in its cluster.
    pub node: usize,
    /// `VmRSS` once filled, in MiB.
    pub rss_mib: f64,
    /// `VmHWM`, the highest RSS of the process so far (filling included), in MiB.
    pub peak_rss_mib: f64,
    /// `VmHWM` of the same node after it was restarted on its 100k-record data (the
    /// restart is when a node loads everything at once).
    pub peak_rss_after_restart_mib: Option<f64>,
}

/// Fills `system` with `records` writes, then measures memory, `restarts` restarts of
/// one follower and the catch-up of a wiped follower.
pub async fn measure(
    client: &reqwest::Client,
    system: &mut impl System,
    records: u64,
    restarts: u32,
) -> Result<BulkStats, BenchError> {
    let leader = system.leader(client).await?;
    let started = Instant::now();
    fill(
        client,
        system.requests(Op::Write, &system.urls()[leader]),
        records,
    )
    .await?;
    let fill_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bench: {} filled with {records} records in {fill_secs:.1} s",
        system.name()
    );
    let mut memory: Vec<NodeMemory> = (0..system.urls().len())
        .map(|node| {
            let (rss, peak) = system.pid(node).and_then(read_memory).unwrap_or_default();
            NodeMemory {
                node,
                rss_mib: rss,
                peak_rss_mib: peak,
                peak_rss_after_restart_mib: None,
            }
        })
        .collect();
    let follower = (leader + 1) % memory.len().max(1);
    let mut restart_ms = Vec::new();
    for _ in 0..restarts {
        system.kill(follower).await?;
        system.restart(follower)?;
        let started = Instant::now();
        super::wait_until_serving(client, system, follower).await?;
        restart_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    if let Some(entry) = memory.get_mut(follower) {
        entry.peak_rss_after_restart_mib = system.pid(follower).and_then(read_memory).map(|m| m.1);
    }
    eprintln!(
        "bench: {} restarts with {records} records: {restart_ms:.0?} ms",
        system.name()
    );
    let follower = (system.leader(client).await? + 1) % memory.len().max(1);
    let catch_up = system.wipe_and_catch_up(client, follower).await?;
    eprintln!(
        "bench: {} wiped follower caught up in {catch_up:.2?}",
        system.name()
    );
    Ok(BulkStats {
        records,
        fill_secs,
        memory,
        restart_ms,
        wiped_catch_up_ms: catch_up.as_secs_f64() * 1000.0,
    })
}

/// Writes `records` records with [`FILL_CLIENTS`] closed-loop writers; a record whose
/// write fails is retried, and after [`FILL_ATTEMPTS`] failures the run stops.
async fn fill(client: &reqwest::Client, make: MakeRequest, records: u64) -> Result<(), BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for client_no in 0..FILL_CLIENTS {
        let (client, make, next) = (client.clone(), Arc::clone(&make), Arc::clone(&next));
        writers.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= records {
                    return Ok(());
                }
                let request = make(client_no, seq);
                let mut attempt = 1;
                while !matches!(send(&client, &request).await, Ok(true)) {
                    if attempt == FILL_ATTEMPTS {
                        return Err(BenchError::Fill { seq });
                    }
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.map_err(|_| BenchError::Fill { seq: 0 })??;
    }
    Ok(())
}

/// `(VmRSS, VmHWM)` of a process in MiB, or `None` if it is gone or not Linux.
pub fn read_memory(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((field_mib(&status, "VmRSS:")?, field_mib(&status, "VmHWM:")?))
}

/// A `Name:   123 kB` line of `/proc/<pid>/status`, in MiB.
fn field_mib(status: &str, name: &str) -> Option<f64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    let kib: f64 = line
        .get(name.len()..)?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_fields_are_read_in_mib() {
        let status = "Name:\traft3d\nVmHWM:\t  158720 kB\nVmRSS:\t   81920 kB\n";
        assert_eq!(field_mib(status, "VmRSS:"), Some(80.0));
        assert_eq!(field_mib(status, "VmHWM:"), Some(155.0));
        assert_eq!(field_mib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let memory = read_memory(std::process::id());
        assert!(memory.is_some_and(|(rss, peak)| rss > 0.0 && peak >= rss));
    }
}
