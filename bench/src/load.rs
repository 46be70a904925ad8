//! The load generator both systems get: closed-loop clients (each sends its next request
//! when the previous one is answered) and an open-loop schedule (requests leave at a fixed
//! rate whatever the answers, and latency counts from the scheduled send time, so a slow
//! server cannot hide its queueing behind a slow client).
//!
//! Owns: driving [`Requester`]s, timing them and summarising the timings. Knows nothing
//! of protocols or of what a request means: the systems ([`crate::raft3d`],
//! [`crate::etcd`]) implement [`Requester`] on their own client connections.

use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// One connection to one node of a system, ready to send requests of one kind; clones
/// share the connection.
pub trait Requester: Clone + Send + Sync + 'static {
    /// Sends request `seq` of client `client_no` (writes of distinct records need both)
    /// and says whether it succeeded. Failures of any kind (transport, timeout, refusal)
    /// are `false`: the load loops only count them.
    fn send(&self, client_no: u64, seq: u64) -> impl Future<Output = bool> + Send;
}

/// When a level runs: requests are recorded only if sent in `[measure_from, stop_at)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub stop_at: Instant,
}

impl Window {
    /// Starts now: `warmup` unrecorded, then `measured` recorded.
    pub fn after(warmup: Duration, measured: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Self {
            measure_from,
            stop_at: measure_from + measured,
        }
    }

    fn measured(&self) -> Duration {
        self.stop_at - self.measure_from
    }
}

/// What the clients of one level saw in the measured part of its window.
#[derive(Debug, Default)]
struct Sample {
    latencies_us: Vec<u64>,
    errors: u64,
}

impl Sample {
    fn record(&mut self, ok: bool, latency: Duration) {
        if ok {
            self.latencies_us.push(micros(latency));
        } else {
            self.errors += 1;
        }
    }

    fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
    }
}

/// Runs one closed loop per requester through `window` and summarises the measured part.
pub async fn closed_loop<R: Requester>(requesters: Vec<R>, window: Window) -> LoadStats {
    let tasks: Vec<_> = (0u64..)
        .zip(requesters)
        .map(|(client_no, requester)| {
            tokio::spawn(async move {
                let mut sample = Sample::default();
                for seq in 0.. {
                    let sent = Instant::now();
                    if sent >= window.stop_at {
                        break;
                    }
                    let ok = requester.send(client_no, seq).await;
                    if sent >= window.measure_from {
                        sample.record(ok, sent.elapsed());
                    }
                }
                sample
            })
        })
        .collect();
    let mut sample = Sample::default();
    for task in tasks {
        match task.await {
            Ok(part) => sample.merge(part),
            Err(e) => tracing::warn!(error = %e, "a benchmark client task failed"),
        }
    }
    LoadStats::summarize(sample, window.measured())
}

/// Sends `rate` requests per second through `window`, each on its own task, whatever
/// the answers. Latency counts from the scheduled send time. At most `max_in_flight`
/// requests wait at once: a send that finds them all busy is not made and counts as an
/// error (the server is not keeping up with the offered rate).
pub async fn open_loop<R: Requester>(
    requester: R,
    rate: u64,
    max_in_flight: usize,
    window: Window,
) -> LoadStats {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut sample = Sample::default();
    for seq in 0u32.. {
        let scheduled = start + interval * seq;
        if scheduled >= window.stop_at {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let measured = scheduled >= window.measure_from;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if measured {
                sample.errors += 1;
            }
            continue;
        };
        let requester = requester.clone();
        tasks.push(tokio::spawn(async move {
            let ok = requester.send(0, u64::from(seq)).await;
            drop(slot);
            (measured, ok, scheduled.elapsed())
        }));
    }
    for task in tasks {
        match task.await {
            Ok((true, ok, latency)) => sample.record(ok, latency),
            Ok((false, _, _)) => {}
            Err(e) => tracing::warn!(error = %e, "a benchmark request task failed"),
        }
    }
    LoadStats::summarize(sample, window.measured())
}

/// Throughput and latency of one system at one level.
#[derive(Debug, Clone, Serialize)]
pub struct LoadStats {
    /// Successes per second of the measured period.
    pub ops_per_sec: f64,
    /// Latency percentiles of the successes (`null` if there were none).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// Requests of the measured period that succeeded.
    pub count: u64,
    /// Requests of the measured period that failed: transport error, timeout, any status
    /// but the expected one, or (open loop) not sent because too many were waiting.
    pub errors: u64,
    /// CPU and durable appends per successful request ([`crate::usage`]), filled in by
    /// the caller that sampled them.
    pub usage: Option<crate::usage::UsagePerOp>,
}

impl LoadStats {
    /// A level that could not run (no connection): nothing measured.
    pub fn none() -> Self {
        Self::summarize(Sample::default(), Duration::from_secs(1))
    }

    fn summarize(mut sample: Sample, measured: Duration) -> Self {
        sample.latencies_us.sort_unstable();
        let sorted = &sample.latencies_us;
        let count = sorted.len() as u64;
        Self {
            // One decimal is all the precision a rate measured over seconds has.
            ops_per_sec: (count as f64 / measured.as_secs_f64() * 10.0).round() / 10.0,
            p50_ms: percentile_ms(sorted, 0.50),
            p99_ms: percentile_ms(sorted, 0.99),
            p999_ms: percentile_ms(sorted, 0.999),
            count,
            errors: sample.errors,
            usage: None,
        }
    }
}

/// The nearest-rank `p` percentile (0 < p <= 1) of ascending microseconds, in
/// milliseconds; `None` when there are no samples.
pub fn percentile_ms(sorted_us: &[u64], p: f64) -> Option<f64> {
    let last = sorted_us.len().checked_sub(1)?;
    let rank = (p * sorted_us.len() as f64).ceil() as usize;
    let index = rank.saturating_sub(1).min(last);
    sorted_us.get(index).map(|&us| us as f64 / 1000.0)
}

pub fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u64> = (1..=1000).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.50), Some(500.0));
        assert_eq!(percentile_ms(&us, 0.99), Some(990.0));
        assert_eq!(percentile_ms(&us, 0.999), Some(999.0));
        assert_eq!(percentile_ms(&us[..1], 0.999), Some(1.0));
        assert_eq!(percentile_ms(&[], 0.5), None);
    }

    #[test]
    fn a_level_without_successes_reports_no_latency() {
        let sample = Sample {
            latencies_us: Vec::new(),
            errors: 7,
        };
        let stats = LoadStats::summarize(sample, Duration::from_secs(2));
        assert_eq!((stats.count, stats.errors), (0, 7));
        assert_eq!((stats.p50_ms, stats.p99_ms), (None, None));
        assert_eq!(stats.ops_per_sec, 0.0);
    }

    #[test]
    fn throughput_counts_successes_over_the_measured_time() {
        let sample = Sample {
            latencies_us: vec![3000, 1000, 2000],
            errors: 1,
        };
        let stats = LoadStats::summarize(sample, Duration::from_secs(2));
        assert_eq!(stats.ops_per_sec, 1.5);
        assert_eq!(stats.p50_ms, Some(2.0));
        assert_eq!(stats.p999_ms, Some(3.0));
    }
}
