//! Real Raft3D nodes as child processes, for the process tests, the chaos suite, the
//! benchmark and `raft3d cluster`: one way to start, kill, pause, wipe and restart
//! nodes, one definition of "a leader is elected", one way to wait for a condition.
//!
//! - [`ProcessCluster`]: `raft3d serve` children of a binary given by path, on ports
//!   claimed without races ([`ports`]), each told to stop when this process dies.
//! - [`leader`]: when a cluster has a leader, decided from the nodes' own views.
//! - [`eventually`]: poll a condition until a deadline, with the last reason it failed.
//!
//! Must not touch node internals or processes it did not start: nodes are driven by
//! their command line and signals, and observed over the public HTTP API.

mod cluster;
pub mod leader;
pub mod octoprint;
mod output;
pub mod ports;

pub use cluster::{ClusterError, NodeProcess, Output, PortPlan, ProcessCluster, Spec};
pub use leader::Leader;
pub use octoprint::{OctoPrintError, OctoPrintProcess};

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Raft timings for test clusters: short enough for quick failover, long enough for a
/// busy 2-core machine; the process tests, the chaos suite and the dashboard's
/// end-to-end tests all run this configuration.
pub const TEST_RAFT_TIMINGS: [&str; 6] = [
    "--heartbeat-ms",
    "100",
    "--election-timeout-min-ms",
    "500",
    "--election-timeout-max-ms",
    "1000",
];

/// A condition that did not hold in time.
#[derive(Debug, thiserror::Error)]
#[error("{what}: not within {within:?}; last: {last}")]
pub struct NotInTime {
    pub what: String,
    pub within: Duration,
    /// Why the condition did not hold on the last try.
    pub last: String,
}

/// How often [`eventually`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Tries `check` until it returns `Ok` or `within` has passed. `Err(reason)` says why the
/// condition does not hold yet; the last reason ends up in the error, so a failure
/// explains itself. Never a fixed sleep: it returns as soon as the condition holds.
pub async fn eventually<T, F, Fut>(
    what: &str,
    within: Duration,
    mut check: F,
) -> Result<T, NotInTime>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(value) => return Ok(value),
            Err(reason) => reason,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(NotInTime {
                what: what.to_owned(),
                within,
                last,
            });
        }
        tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn eventually_returns_as_soon_as_the_condition_holds() {
        let tries = AtomicU32::new(0);
        let value = eventually("third try", Duration::from_secs(5), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err("not yet".to_owned()),
                n => Ok(n),
            }
        })
        .await
        .expect("holds on the third try");
        assert_eq!(value, 2);
    }

    #[tokio::test]
    async fn eventually_reports_the_last_reason_when_time_is_up() {
        let error = eventually("never", Duration::from_millis(120), || async {
            Err::<(), _>("still red".to_owned())
        })
        .await
        .expect_err("never holds");
        assert_eq!(error.last, "still red");
        assert!(error.to_string().contains("never"));
    }
}
