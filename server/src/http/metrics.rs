//! Prometheus metrics: HTTP request counters and latency histograms by route, method and
//! status (recorded by a middleware), plus Raft gauges read from openraft's metrics when
//! scraped and the log store's append-time histogram. Hand-rolled text format: a dozen
//! lines, no registry crate needed.

use crate::histogram::Histogram;
use crate::raft::typ::RaftMetrics;
use crate::write_timing::WriteTimings;
use openraft::ServerState;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    route: String,
    method: String,
    status: u16,
}

/// HTTP metrics shared by all requests of one node.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    series: Arc<Mutex<BTreeMap<Labels, Histogram>>>,
}

impl HttpMetrics {
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = Labels {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(labels)
            .or_default()
            .record(elapsed);
    }

    /// The whole `/metrics` page: Raft's state, the stages of writes (the log's durable
    /// appends among them) and the HTTP requests.
    pub fn render(&self, raft: &RaftMetrics, writes: &WriteTimings) -> String {
        let mut out = String::new();
        render_raft(&mut out, raft);
        writes.render(&mut out);
        let series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP raft3d_http_requests_total HTTP requests served, by route, method and status.\n");
        out.push_str("# TYPE raft3d_http_requests_total counter\n");
        for (labels, histogram) in series.iter() {
            let _ = writeln!(
                out,
                "raft3d_http_requests_total{{{}}} {}",
                label_text(labels),
                histogram.count()
            );
        }
        out.push_str("# HELP raft3d_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE raft3d_http_request_duration_seconds histogram\n");
        for (labels, histogram) in series.iter() {
            let name = "raft3d_http_request_duration_seconds";
            histogram.render(&mut out, name, &label_text(labels));
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
        let text = metrics.render(&RaftMetrics::new_initial(1), &WriteTimings::default());
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
