//! The Grafana dashboard and the alert rules in `ops/` watch metrics a real node
//! exports: every `raft3d_*` name they use is on a secure node's `/metrics` after a
//! write, and the dashboard is valid JSON whose every panel has a query.

use crate::harness::{printer, Cluster};
use std::collections::BTreeSet;

fn repo_file(path: &str) -> String {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/../").to_owned() + path;
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Every `raft3d_...` metric name in `text`.
fn names_used(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("raft3d_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alerts_use_metrics_a_node_exports() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    let (status, _) = cluster
        .write(leader, "/api/v1/printers", &printer("p1"), "k1")
        .await;
    assert!(status.is_success(), "{status}");
    let call = raft3d_client::Call::get("/metrics");
    let answer = cluster
        .client
        .once(&cluster.node(leader).url(), &call)
        .await
        .expect("metrics");
    let metrics = String::from_utf8_lossy(&answer.body).into_owned();
    let exported: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let is_exported = |name: &str| {
        ["", "_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| exported.contains(format!("{name}{suffix}").as_str()))
    };

    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("ops/grafana/raft3d.json")).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for panel in panels {
        let exprs = panel["targets"].as_array().map_or(0, Vec::len);
        assert!(exprs > 0, "panel without a query: {}", panel["title"]);
    }
    let alerts = repo_file("ops/prometheus/alerts.yml");
    assert!(alerts.matches("- alert: ").count() >= 6, "{alerts}");
    for (file, text) in [("dashboard", dashboard.to_string()), ("alerts", alerts)] {
        let used = names_used(&text);
        assert!(used.len() >= 5, "{file}: {used:?}");
        for name in used {
            // Suffixes are written out in queries; the base name must be exported.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                is_exported(base),
                "{file} uses {name}, which /metrics lacks:\n{metrics}"
            );
        }
    }
}
