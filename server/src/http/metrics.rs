//! Prometheus metrics: HTTP request counters and latency histograms by route, method and
//! status (recorded by a middleware), plus Raft gauges read from openraft's metrics when
//! scraped. Hand-rolled text format: a dozen lines, no registry crate needed.

use crate::raft::typ::RaftMetrics;
use openraft::ServerState;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// HTTP metrics shared by all requests of one node.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    series: Arc<Mutex<BTreeMap<Labels, Series>>>,
}

impl HttpMetrics {
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = Labels {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        let seconds = elapsed.as_secs_f64();
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = series.entry(labels).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        for (bucket, bound) in entry.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The whole `/metrics` page.
    pub fn render(&self, raft: &RaftMetrics) -> String {
        let mut out = String::new();
        render_raft(&mut out, raft);
        let series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP raft3d_http_requests_total HTTP requests served, by route, method and status.\n");
        out.push_str("# TYPE raft3d_http_requests_total counter\n");
        for (labels, s) in series.iter() {
            let _ = writeln!(
                out,
                "raft3d_http_requests_total{{{}}} {}",
                label_text(labels),
                s.count
            );
        }
        out.push_str("# HELP raft3d_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE raft3d_http_request_duration_seconds histogram\n");
        for (labels, s) in series.iter() {
            let text = label_text(labels);
            for (count, bound) in s.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "raft3d_http_request_duration_seconds_bucket{{{text},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "raft3d_http_request_duration_seconds_bucket{{{text},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "raft3d_http_request_duration_seconds_sum{{{text}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "raft3d_http_request_duration_seconds_count{{{text}}} {}",
                s.count
            );
        }
        out
    }
}

fn label_text(labels: &Labels) -> String {
    format!(
        "route=\"{}\",method=\"{}\",status=\"{}\"",
        escape(&labels.route),
        escape(&labels.method),
        labels.status
    )
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_raft(out: &mut String, m: &RaftMetrics) {
    let gauges: [(&str, &str, u64); 8] = [
        ("raft3d_node_id", "This node's id.", m.id),
        (
            "raft3d_is_leader",
            "1 if this node is the leader.",
            u64::from(m.state == ServerState::Leader),
        ),
        ("raft3d_term", "Current Raft term.", m.current_term),
        (
            "raft3d_last_log_index",
            "Index of the last log entry.",
            m.last_log_index.unwrap_or(0),
        ),
        (
            "raft3d_applied_index",
            "Index of the last applied entry.",
            m.last_applied.map_or(0, |l| l.index),
        ),
        (
            "raft3d_snapshot_index",
            "Last log index in the current snapshot.",
            m.snapshot.map_or(0, |l| l.index),
        ),
        (
            "raft3d_purged_index",
            "Last purged log index.",
            m.purged.map_or(0, |l| l.index),
        ),
        (
            "raft3d_has_leader",
            "1 if this node knows a leader.",
            u64::from(m.current_leader.is_some()),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    if let Some(ms) = m.millis_since_quorum_ack {
        let name = "raft3d_millis_since_quorum_ack";
        let _ = writeln!(out, "# HELP {name} Leader only: ms since a quorum acknowledged it.\n# TYPE {name} gauge\n{name} {ms}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_and_bucketed_by_labels() {
        let metrics = HttpMetrics::default();
        metrics.record("/api/v1/printers", "POST", 201, Duration::from_millis(3));
        metrics.record("/api/v1/printers", "POST", 201, Duration::from_millis(30));
        let text = metrics.render(&RaftMetrics::new_initial(1));
        let labels = r#"route="/api/v1/printers",method="POST",status="201""#;
        assert!(
            text.contains(&format!("raft3d_http_requests_total{{{labels}}} 2")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "raft3d_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"
        )));
        assert!(text.contains(&format!(
            "raft3d_http_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2"
        )));
        assert!(text.contains("raft3d_is_leader 0"));
    }
}
