//! A cluster holding many records: how long loading them takes, how much memory each node
//! holds, how long a killed node takes to serve again, and how long a wiped follower
//! takes to catch up (Raft3D: from a snapshot; etcd: replaced as a new member).
//!
//! Memory is RssAnon (`/proc/<pid>/status`: heap, stacks, anonymous maps) and PSS
//! (`/proc/<pid>/smaps_rollup`: every resident page, shared ones divided among their
//! users), not VmRSS: etcd maps its whole bbolt file, and the pages of it that the kernel
//! holds would count as etcd's RSS although they are file cache the kernel can drop.
//! Both still show in PSS; RssAnon is what the process itself allocated.
//!
//! Owns: filling a fresh cluster and those measurements; reads memory from `/proc`.

use crate::load::Requester;
use crate::{BenchError, Op, System};
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
    /// Memory of every node once filled.
    pub memory: Vec<NodeMemory>,
    /// Memory of the restarted follower after its last restart on the filled data (the
    /// restart is when a node loads everything at once).
    pub after_restart: Option<NodeMemory>,
    /// SIGKILL of a follower, then start until it answers a linearizable read, per try.
    pub restart_ms: Vec<f64>,
    /// A follower's data directory wiped (etcd: and the member replaced), start until it
    /// has caught up with what the leader had.
    pub wiped_catch_up_ms: f64,
    /// The highest RssAnon of the leader, MiB, sampled every 20 ms while the wiped
    /// follower caught up (it sends the snapshot), and the wiped follower's VmHWM (peak
    /// resident set since its start) once caught up.
    pub catch_up_peak_mib: (f64, f64),
    /// Raft3D only: two backups taken one after the other from a follower with
    /// `raft3d backup`.
    pub backups: Vec<BackupRun>,
}

/// One `raft3d backup` of the filled farm from a follower.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRun {
    pub secs: f64,
    pub bytes: u64,
    /// The serving follower's RssAnon before, and its highest while serving it (MiB,
    /// sampled every 20 ms).
    pub node_rss_anon_mib: (f64, f64),
    /// The `raft3d backup` process's highest RssAnon seen (MiB, every 20 ms).
    pub client_peak_mib: f64,
}

/// One node's memory, in MiB (see the module doc for why these measures).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeMemory {
    /// 0-based index of the node in its cluster.
    pub node: usize,
    /// `RssAnon` of `/proc/<pid>/status`.
    pub rss_anon_mib: f64,
    /// `Pss` of `/proc/<pid>/smaps_rollup`.
    pub pss_mib: f64,
    /// `RssFile` of `/proc/<pid>/status` (file pages mapped, e.g. etcd's bbolt), for
    /// reference only.
    pub rss_file_mib: f64,
}

/// Fills `system` with `records` writes, then measures memory, `restarts` restarts of
/// one follower and the catch-up of a wiped follower.
pub async fn measure<S: System>(
    system: &mut S,
    records: u64,
    restarts: u32,
) -> Result<BulkStats, BenchError> {
    let leader = system.leader().await?;
    let mut writers = Vec::new();
    for _ in 0..FILL_CLIENTS {
        writers.push(system.connect(Op::Write, leader).await?);
    }
    let started = Instant::now();
    fill(writers, records).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bench: {} filled with {records} records in {fill_secs:.1} s",
        system.name()
    );
    let memory: Vec<NodeMemory> = (0..system.nodes())
        .map(|node| node_memory(system, node))
        .collect();
    let follower = (leader + 1) % memory.len().max(1);
    let mut restart_ms = Vec::new();
    for _ in 0..restarts {
        system.kill(follower).await?;
        system.restart(follower)?;
        let started = Instant::now();
        crate::wait_until_serving(system, follower).await?;
        restart_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let after_restart = (restarts > 0).then(|| node_memory(system, follower));
    eprintln!(
        "bench: {} restarts with {records} records: {restart_ms:.0?} ms",
        system.name()
    );
    // Twice: the follower was just restarted, and its memory still moves (a snapshot of
    // what it loaded); the second run shows what serving a backup itself takes.
    let mut backups = Vec::new();
    for _ in 0..2 {
        let Some(run) = system.backup(follower).await.transpose()? else {
            break;
        };
        eprintln!(
            "bench: {} backup of {records} records: {:.2} s, {} bytes, node RssAnon {:?} MiB, client peak {} MiB",
            system.name(),
            run.secs,
            run.bytes,
            run.node_rss_anon_mib,
            run.client_peak_mib
        );
        backups.push(run);
    }
    let leader = system.leader().await?;
    let follower = (leader + 1) % memory.len().max(1);
    let leader_pid = system.pid(leader);
    let (catch_up, leader_peak) = peak_while(
        move || leader_pid.into_iter().collect(),
        system.wipe_and_catch_up(follower),
    )
    .await;
    let catch_up = catch_up?;
    let follower_peak = system.pid(follower).and_then(peak_mib).unwrap_or(0.0);
    eprintln!(
        "bench: {} wiped follower caught up in {catch_up:.2?} (leader RssAnon peak {leader_peak:?} MiB, follower VmHWM {follower_peak} MiB)",
        system.name()
    );
    Ok(BulkStats {
        records,
        fill_secs,
        memory,
        after_restart,
        restart_ms,
        wiped_catch_up_ms: catch_up.as_secs_f64() * 1000.0,
        catch_up_peak_mib: (leader_peak.first().copied().unwrap_or(0.0), follower_peak),
        backups,
    })
}

/// Runs `work` while sampling, every 20 ms, the RssAnon of the processes `pids` names;
/// returns its output and each one's highest RssAnon in MiB (in `pids`' order).
pub async fn peak_while<T>(
    pids: impl Fn() -> Vec<u32>,
    work: impl std::future::Future<Output = T>,
) -> (T, Vec<f64>) {
    let mut peaks: Vec<f64> = Vec::new();
    let sample = |peaks: &mut Vec<f64>| {
        for (at, pid) in pids().into_iter().enumerate() {
            let rss = read_memory(pid).map_or(0.0, |m| m.rss_anon_mib);
            match peaks.get_mut(at) {
                Some(peak) => *peak = peak.max(rss),
                None => peaks.push(rss),
            }
        }
    };
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            output = &mut work => {
                sample(&mut peaks);
                return (output, peaks);
            }
            _ = tick.tick() => sample(&mut peaks),
        }
    }
}

/// `VmHWM` of a process: its peak resident set since it started, in MiB.
pub fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_mib(&status, "VmHWM:")
}

/// Writes `records` records with one closed-loop writer per requester; a record whose
/// write fails is retried, and after [`FILL_ATTEMPTS`] failures the run stops.
async fn fill<R: Requester>(requesters: Vec<R>, records: u64) -> Result<(), BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for (client_no, requester) in (0u64..).zip(requesters) {
        let next = Arc::clone(&next);
        writers.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= records {
                    return Ok(());
                }
                let mut attempt = 1;
                while !requester.send(client_no, seq).await {
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

/// The memory of `node` now; zeros if it is not running or `/proc` cannot be read.
fn node_memory(system: &impl System, node: usize) -> NodeMemory {
    let memory = system.pid(node).and_then(read_memory);
    NodeMemory {
        node,
        ..memory.unwrap_or_default()
    }
}

/// RssAnon, RssFile and PSS of a process, or `None` if it is gone or not Linux.
pub fn read_memory(pid: u32) -> Option<NodeMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(NodeMemory {
        node: 0,
        rss_anon_mib: field_mib(&status, "RssAnon:")?,
        pss_mib: field_mib(&rollup, "Pss:")?,
        rss_file_mib: field_mib(&status, "RssFile:")?,
    })
}

/// A `Name:   123 kB` line of a `/proc` file, in MiB.
fn field_mib(text: &str, name: &str) -> Option<f64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
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
        let status = "Name:\traft3d\nRssAnon:\t  158720 kB\nRssFile:\t   81920 kB\n";
        assert_eq!(field_mib(status, "RssAnon:"), Some(155.0));
        assert_eq!(field_mib(status, "RssFile:"), Some(80.0));
        assert_eq!(field_mib(status, "VmSwap:"), None);
        // smaps_rollup has both `Pss:` and `Pss_Anon:`; only the exact name matches.
        let rollup = "Rss:  2048 kB\nPss:  1024 kB\nPss_Anon:  512 kB\n";
        assert_eq!(field_mib(rollup, "Pss:"), Some(1.0));
    }

    #[test]
    fn this_process_has_anonymous_memory_and_a_pss() {
        let memory = read_memory(std::process::id());
        assert!(memory.is_some_and(|m| m.rss_anon_mib > 0.0 && m.pss_mib > 0.0));
    }
}
