//! [`WriteTimings`]: where the time of one client write goes, stage by stage, on the
//! leader and on the followers. Each stage is a histogram `/metrics` exports and the
//! benchmark reads (`raft3d-bench` prints the mean and p99 of each per level), so a slow
//! write can be traced to the step that held it.
//!
//! One write, in order (leader unless said otherwise):
//! 1. the HTTP request: `raft3d_http_request_duration_seconds` (token check, body, rules,
//!    everything below, the answer);
//! 2. [`WriteStage::Propose`]: the proposal handed to the batcher until its outcome is
//!    back; it holds
//! 3. [`WriteStage::BatchWait`]: waiting in the batcher's queue for the entry before to
//!    commit, and
//! 4. [`WriteStage::Commit`]: openraft's `client_write` of the batch's entry, which holds
//!    the leader's own append (`raft3d_log_append_duration_seconds`, not awaited by the
//!    patched core), [`WriteStage::Replicate`] to each follower (whose side of it is
//!    [`WriteStage::FollowerAppend`], itself mostly the follower's log append), and
//!    [`WriteStage::Apply`] once a quorum holds the entry.
//!
//! Owns: the names of the stages and their histograms. Must not touch: the work it
//! times (each stage is recorded where that work is done).

use crate::histogram::{Histogram, SharedHistogram};
use std::fmt::Write;

/// A stage of a write with a histogram of its own (see the module doc for the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStage {
    /// A proposal from its submission to the batcher until its outcome is back.
    Propose,
    /// A proposal waiting in the batcher's queue until its batch is handed to openraft.
    BatchWait,
    /// openraft's `client_write` of one batch: append, replicate, commit, apply.
    Commit,
    /// One AppendEntries carrying entries, from sending it to a follower until its answer
    /// (encoding, the network and TLS, the follower's work).
    Replicate,
    /// A follower's handling of one AppendEntries carrying entries: from the decoded
    /// frame to its answer written (openraft's checks, the log append and its fdatasync).
    FollowerAppend,
    /// Applying a run of committed entries to the state machine (every node).
    Apply,
}

impl WriteStage {
    pub const ALL: [WriteStage; 6] = [
        WriteStage::Propose,
        WriteStage::BatchWait,
        WriteStage::Commit,
        WriteStage::Replicate,
        WriteStage::FollowerAppend,
        WriteStage::Apply,
    ];

    /// The `stage` label.
    pub fn name(self) -> &'static str {
        match self {
            WriteStage::Propose => "propose",
            WriteStage::BatchWait => "batch_wait",
            WriteStage::Commit => "commit",
            WriteStage::Replicate => "replicate",
            WriteStage::FollowerAppend => "follower_append",
            WriteStage::Apply => "apply",
        }
    }
}

/// The histograms of one node. Cheap to clone: every clone records into the same ones.
#[derive(Debug, Clone, Default)]
pub struct WriteTimings {
    /// The log store's durable appends (it keeps its own histogram: see
    /// `LogStore::append_timing`).
    log_append: SharedHistogram,
    stages: [SharedHistogram; WriteStage::ALL.len()],
}

impl WriteTimings {
    /// Timings around the log store's and the state machine's own histograms.
    pub fn new(log_append: SharedHistogram, apply: SharedHistogram) -> Self {
        let mut stages: [SharedHistogram; WriteStage::ALL.len()] = Default::default();
        stages[WriteStage::Apply as usize] = apply;
        Self { log_append, stages }
    }

    pub fn histogram(&self, stage: WriteStage) -> &SharedHistogram {
        &self.stages[stage as usize]
    }

    pub fn record(&self, stage: WriteStage, elapsed: std::time::Duration) {
        self.histogram(stage).record(elapsed);
    }

    /// The log appends' and the stages' lines of `/metrics`.
    pub fn render(&self, out: &mut String) {
        let name = "raft3d_log_append_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time to write one batch of log entries durably (WAL write and fdatasync); the disk's share of every write's latency.\n# TYPE {name} histogram");
        self.log_append.snapshot().render(out, name, "");
        let name = "raft3d_write_stage_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time of each stage of a client write (propose, batch_wait, commit on the leader; replicate per follower round trip; follower_append on a follower; apply on every node).\n# TYPE {name} histogram");
        for stage in WriteStage::ALL {
            let histogram: Histogram = self.histogram(stage).snapshot();
            histogram.render(out, name, &format!("stage=\"{}\"", stage.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_stage_renders_under_its_label_and_apply_is_the_stores_own() {
        let apply = SharedHistogram::default();
        let timings = WriteTimings::new(SharedHistogram::default(), apply.clone());
        apply.record(Duration::from_millis(2));
        timings.record(WriteStage::Replicate, Duration::from_micros(300));
        timings
            .clone()
            .record(WriteStage::Replicate, Duration::from_micros(400));
        let mut out = String::new();
        timings.render(&mut out);
        let count = |stage: &str| {
            let series = format!("raft3d_write_stage_duration_seconds_count{{stage=\"{stage}\"}} ");
            out.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map(str::to_owned)
        };
        assert_eq!(count("replicate").as_deref(), Some("2"));
        assert_eq!(count("apply").as_deref(), Some("1"));
        for stage in WriteStage::ALL {
            assert!(count(stage.name()).is_some(), "{} missing", stage.name());
        }
        assert!(out.contains("raft3d_log_append_duration_seconds_count 0\n"));
    }
}
