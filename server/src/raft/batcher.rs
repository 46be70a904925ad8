//! [`ProposalBatcher`]: many concurrent client writes, one Raft entry.
//!
//! openraft 0.9 handles every `client_write` as its own entry, and each entry costs one
//! log append (a WAL write and an fdatasync) on every node, one after the other. So
//! proposals that arrive while earlier ones are still being committed are queued here
//! and go into Raft together as one entry (a `Vec<Proposal>`), and each caller gets the
//! outcome of its own proposal. A lone write is sent at once: batching costs a single
//! client nothing; it only turns waiting time into bigger entries.
//!
//! Owns: the queue and the grouping. Must not touch farm rules (`app` applies a batch
//! proposal by proposal, in order, exactly as if they were separate entries) nor
//! HTTP (`crate::http::farm` maps the errors).

use super::typ::{ClientWriteError, Raft, RaftError};
use crate::write_timing::{WriteStage, WriteTimings};
use app::{Outcome, Proposal};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Largest number of proposals in one entry (a proposal is at most a request body).
pub const MAX_BATCH: usize = 128;
/// Entries submitted to openraft and not yet answered. One measured best every time it
/// was measured (docs/perf.md): while an entry commits, the next batch grows, and a
/// bigger entry costs little more than a small one. Re-measured once the patched core
/// stopped waiting for the leader's own flush (2026-12-07): 3 in flight made batches
/// half the size and 16 clients 1.16x etcd against 1.39x with 1. openraft 0.9 still
/// sends one AppendEntries at a time per follower, so more entries only queue there.
const MAX_IN_FLIGHT: usize = 1;
/// Proposals waiting for a batch; more make `submit` wait (back-pressure).
const QUEUE: usize = 4096;

/// Why a batched write failed; every proposal of the batch gets the same error.
pub type WriteError = RaftError<ClientWriteError>;

/// What a committed proposal produced, and the log index of the entry that carried it
/// (the position a reader must reach to see it).
#[derive(Debug, Clone)]
pub struct Written {
    pub outcome: Outcome,
    pub index: u64,
}

/// A proposal waiting for its batch, and where its outcome goes.
struct Pending {
    proposal: Proposal,
    reply: oneshot::Sender<Result<Written, WriteError>>,
    queued_at: Instant,
}

/// Handle to the batching task of one node. Cheap to clone.
#[derive(Clone)]
pub struct ProposalBatcher {
    queue: mpsc::Sender<Pending>,
    timings: WriteTimings,
}

impl ProposalBatcher {
    /// Starts the batching task for `raft`; it ends when every handle is dropped. The
    /// batch wait, commit and propose stages are recorded in `timings`.
    pub fn spawn(raft: Raft, timings: WriteTimings) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(run(raft, pending, timings.clone()));
        Self { queue, timings }
    }

    /// Commits `proposal` (in a batch) and returns its outcome. `None` means the batcher
    /// stopped before answering: the node is shutting down.
    pub async fn submit(&self, proposal: Proposal) -> Option<Result<Written, WriteError>> {
        let _timer = self.timings.histogram(WriteStage::Propose).start_timer();
        let (reply, outcome) = oneshot::channel();
        let queued_at = Instant::now();
        let pending = Pending {
            proposal,
            reply,
            queued_at,
        };
        self.queue.send(pending).await.ok()?;
        outcome.await.ok()
    }
}

/// Takes the first waiting proposal, waits for an in-flight slot (while more arrive),
/// then sends everything waiting, up to [`MAX_BATCH`], as one entry. Entries are
/// submitted in queue order, so proposals commit in the order they were submitted.
async fn run(raft: Raft, mut pending: mpsc::Receiver<Pending>, timings: WriteTimings) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = pending.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let timings = timings.clone();
        tokio::spawn(async move {
            commit(&raft, batch, &timings).await;
            drop(slot);
        });
    }
}

/// Writes one batch and answers each of its proposals.
async fn commit(raft: &Raft, batch: Vec<Pending>, timings: &WriteTimings) {
    let sent_at = Instant::now();
    for pending in &batch {
        timings.record(
            WriteStage::BatchWait,
            sent_at.saturating_duration_since(pending.queued_at),
        );
    }
    let (proposals, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.proposal, p.reply)).unzip();
    let written = raft.client_write(proposals).await;
    timings.record(WriteStage::Commit, sent_at.elapsed());
    match written {
        // One outcome per proposal, in order (`StateMachineStore::apply`). A caller
        // that gave up (timeout) has dropped its receiver; that is fine.
        Ok(response) => {
            let index = response.log_id.index;
            for (reply, outcome) in replies.into_iter().zip(response.data) {
                let _ = reply.send(Ok(Written { outcome, index }));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
