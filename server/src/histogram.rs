//! [`Histogram`]: a latency histogram in Prometheus's shape (cumulative buckets, sum,
//! count), recorded by the HTTP layer (request latency) and by the stages of a write
//! (`crate::write_timing`), and rendered by `/metrics`.
//!
//! Owns: counting and the text lines of one histogram. Must not touch: what is timed.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bucket upper bounds, in seconds: from a tenth of a millisecond (a log append on a fast
/// disk) to ten seconds (a client write that timed out), finer below 10 ms, where a
/// write's stages and their tails lie (a p99 read from these is within a bucket's width).
const BUCKETS: [f64; 20] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    count: u64,
    sum_seconds: f64,
    /// Observations at or below each of [`BUCKETS`] (cumulative, as Prometheus wants).
    buckets: [u64; BUCKETS.len()],
}

impl Histogram {
    pub fn record(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.count += 1;
        self.sum_seconds += seconds;
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `_bucket`, `_sum` and `_count` lines of series `name` with `labels`
    /// (`key="value",...`, or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let with_le = |le: &str| match labels {
            "" => format!("le=\"{le}\""),
            _ => format!("{labels},le=\"{le}\""),
        };
        for (count, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{}}} {count}",
                with_le(&bound.to_string())
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{}}} {}", with_le("+Inf"), self.count);
        let braced = match labels {
            "" => String::new(),
            _ => format!("{{{labels}}}"),
        };
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum_seconds);
        let _ = writeln!(out, "{name}_count{braced} {}", self.count);
    }
}

/// A histogram recorded from several threads; cheap to clone (all clones count together).
#[derive(Debug, Clone, Default)]
pub struct SharedHistogram(Arc<Mutex<Histogram>>);

impl SharedHistogram {
    pub fn record(&self, elapsed: Duration) {
        self.lock().record(elapsed);
    }

    /// Records the time from now until the returned guard is dropped, whichever way the
    /// timed code is left.
    pub fn start_timer(&self) -> Timer {
        Timer {
            histogram: self.clone(),
            started: std::time::Instant::now(),
        }
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Histogram {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// See [`SharedHistogram::start_timer`].
pub struct Timer {
    histogram: SharedHistogram,
    started: std::time::Instant,
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.histogram.record(self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_sum_and_count_add_up() {
        let shared = SharedHistogram::default();
        shared.record(Duration::from_micros(200));
        shared.clone().record(Duration::from_millis(3));
        shared.record(Duration::from_secs(60));
        let mut out = String::new();
        shared.snapshot().render(&mut out, "t", "");
        for line in [
            "t_bucket{le=\"0.00025\"} 1",
            "t_bucket{le=\"0.002\"} 1",
            "t_bucket{le=\"0.003\"} 2",
            "t_bucket{le=\"0.005\"} 2",
            "t_bucket{le=\"10\"} 2",
            "t_bucket{le=\"+Inf\"} 3",
            "t_count 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
        let sum: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("t_sum "))
            .and_then(|sum| sum.parse().ok())
            .expect("a t_sum line");
        assert!((sum - 60.0032).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn labels_go_before_le_and_on_sum_and_count() {
        let mut histogram = Histogram::default();
        histogram.record(Duration::from_millis(1));
        let mut out = String::new();
        histogram.render(&mut out, "t", "route=\"/x\"");
        assert!(
            out.contains("t_bucket{route=\"/x\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("t_count{route=\"/x\"} 1\n"), "{out}");
    }
}
