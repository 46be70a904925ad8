//! Failover: SIGKILL the leader under a light write load, then time how long until the
//! first write sent after the kill is acknowledged by a survivor; restart the killed node
//! and repeat.
//!
//! Owns: the kill/restart cycle and its timings. The same code measures both systems.

use crate::load::Requester;
use crate::{BenchError, Op, System};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often a new probe write leaves after the kill. A probe that waits (etcd holds a
/// proposal made without a leader) does not delay the next one, so the measurement's
/// resolution is this interval, the same for both systems.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// A kill whose first acknowledged write takes longer than this counts as failed.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Load on the leader before the kill, so that followers are mid-replication, not idle.
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(500);
/// Pause after the restarted node serves, so the next kill starts from a settled cluster.
const SETTLE: Duration = Duration::from_secs(1);

/// The failover times of one system.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverStats {
    /// Kills made.
    pub kills: u32,
    /// Kill-to-first-acknowledged-write time of each kill that recovered, in order.
    pub times_ms: Vec<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Kills after which no write was acknowledged within 30 s.
    pub failed: u32,
}

/// Kills the leader of `system` `kills` times; see the module doc.
pub async fn measure(system: &mut impl System, kills: u32) -> Result<FailoverStats, BenchError> {
    let mut times_us = Vec::new();
    let mut failed = 0;
    for kill in 1..=kills {
        let leader = system.leader().await?;
        match kill_leader(system, leader).await? {
            Some(time) => {
                eprintln!(
                    "bench: {} kill {kill}/{kills}: write acknowledged {:.0} ms after SIGKILL",
                    system.name(),
                    time.as_secs_f64() * 1000.0
                );
                times_us.push(crate::load::micros(time));
            }
            None => {
                eprintln!(
                    "bench: {} kill {kill}/{kills}: no write in 30 s",
                    system.name()
                );
                failed += 1;
            }
        }
        system.restart(leader)?;
        crate::wait_until_serving(system, leader).await?;
        tokio::time::sleep(SETTLE).await;
    }
    let times_ms = times_us.iter().map(|&us| us as f64 / 1000.0).collect();
    times_us.sort_unstable();
    Ok(FailoverStats {
        kills,
        times_ms,
        p50_ms: crate::load::percentile_ms(&times_us, 0.50),
        p99_ms: crate::load::percentile_ms(&times_us, 0.99),
        max_ms: times_us.last().map(|&us| us as f64 / 1000.0),
        failed,
    })
}

/// One cycle: load on the leader, SIGKILL, then probes on the survivors until one is
/// acknowledged. Returns the time from the signal to that acknowledgement. The probes'
/// connections to the survivors are opened before the kill, as a client's would be.
async fn kill_leader<S: System>(
    system: &mut S,
    leader: usize,
) -> Result<Option<Duration>, BenchError> {
    let mut survivors: Vec<S::Requester> = Vec::new();
    for node in (0..system.nodes()).filter(|&node| node != leader) {
        survivors.push(system.connect(Op::Write, node).await?);
    }
    let load = system.connect(Op::Write, leader).await?;
    let background = tokio::spawn(keep_writing(load));
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    let killed_at = Instant::now();
    system.kill(leader).await?;
    background.abort();
    Ok(first_ack(&survivors, killed_at).await)
}

/// One closed-loop writer, until aborted.
async fn keep_writing(requester: impl Requester) {
    for seq in 0.. {
        // Failures are expected once the leader is killed; this task only makes load.
        requester.send(0, seq).await;
    }
}

/// Sends a write every [`PROBE_INTERVAL`], round-robin over `targets`, and returns the
/// time from `since` to the first acknowledgement (`None` after [`GIVE_UP`]).
async fn first_ack<R: Requester>(targets: &[R], since: Instant) -> Option<Duration> {
    let (acked, mut first) = mpsc::channel::<Instant>(1);
    // Dropped on return, which aborts the probes still waiting.
    let mut probes = JoinSet::new();
    let mut ticker = tokio::time::interval(PROBE_INTERVAL);
    let give_up = tokio::time::sleep_until(since + GIVE_UP);
    tokio::pin!(give_up);
    for seq in 0u64.. {
        tokio::select! {
            at = first.recv() => return at.map(|at| at - since),
            () = &mut give_up => return None,
            _ = ticker.tick() => {}
        }
        let target = targets.get(seq as usize % targets.len().max(1))?.clone();
        let acked = acked.clone();
        probes.spawn(async move {
            if target.send(1, seq).await {
                let _ = acked.try_send(Instant::now());
            }
        });
    }
    None
}
