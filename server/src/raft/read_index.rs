//! [`ReadIndex`]: one leadership check for all the linearizable reads waiting.
//!
//! openraft 0.9 answers every `get_read_log_id` with a round of heartbeats of its own to
//! every voter (`handle_check_is_leader_request`), each timed out after one heartbeat
//! interval. So N concurrent reads cost N rounds: at 256 clients ~500 RPCs in flight on
//! two cores, and reads failed with `503` once rounds timed out (docs/perf.md). Here the
//! reads that arrive while a round runs wait for the next round, which answers all of
//! them at once, as etcd's read loop does.
//!
//! **Why a shared answer is still linearizable.** A read may only use a round that
//! *started after it arrived*: the core takes the round's read log id when it handles
//! the round's request, and confirms its leadership with a quorum after that. A round
//! starts after every read it answers was queued (it takes only what is queued when it
//! begins), so its read log id covers every entry committed before any of those reads
//! began, and the leadership it confirms holds at a moment after each of them arrived.
//! A read that arrives while a round runs never joins it (that round's read log id may
//! be older than the read): it waits in the queue for the next. Every caller then waits
//! for its node to apply up to the read log id before it reads, as before. Paths: every
//! linearizable read on the leader (`http::farm::Farm::read_barrier`), a follower's
//! read index asked of the leader (`raft::service`, `/raft/read-index`), and a
//! driver's check before a start (`Farm::confirm_leader`).
//!
//! Owns: grouping the reads into rounds. Must not touch: waiting for the apply (each
//! caller waits for its own answer's index) nor error mapping (`http::farm`).

use super::typ::{CheckIsLeaderError, LogId, Raft, RaftError};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Reads waiting for a round; more make `read_log_id` wait (back-pressure).
const QUEUE: usize = 4096;

/// What a round answers: the log id a read must see applied, or why this node cannot
/// serve linearizable reads now.
pub type ReadLogId = Result<Option<LogId>, RaftError<CheckIsLeaderError>>;

/// The read rounds of one node. Cheap to clone; the task ends when the last clone is
/// dropped.
#[derive(Clone)]
pub struct ReadIndex {
    rounds: Rounds<ReadLogId>,
}

impl ReadIndex {
    /// Starts the task that runs the rounds against `raft`.
    pub fn spawn(raft: Raft) -> Self {
        let rounds = Rounds::spawn(move || {
            let raft = raft.clone();
            async move { raft.get_read_log_id().await.map(|(read, _applied)| read) }
        });
        Self { rounds }
    }

    /// The read log id of a round that started after this call (see the module doc).
    pub async fn read_log_id(&self) -> ReadLogId {
        self.rounds
            .ask()
            .await
            .unwrap_or(Err(RaftError::Fatal(openraft::error::Fatal::Stopped)))
    }
}

/// Runs `round` once for every group of callers waiting when it starts, and gives each
/// of them that round's answer. Generic so that the grouping is tested without a Raft.
#[derive(Clone)]
struct Rounds<T> {
    queue: mpsc::Sender<oneshot::Sender<T>>,
}

impl<T: Clone + Send + 'static> Rounds<T> {
    fn spawn<F, Fut>(round: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(waiting, round));
        Self { queue }
    }

    /// The answer of a round that started after this call; `None` once the task is gone.
    async fn ask(&self) -> Option<T> {
        let (answer, answered) = oneshot::channel();
        self.queue.send(answer).await.ok()?;
        answered.await.ok()
    }
}

async fn run<T: Clone, F, Fut>(mut waiting: mpsc::Receiver<oneshot::Sender<T>>, round: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    while let Some(first) = waiting.recv().await {
        // Only those queued now: whoever comes during the round waits for the next.
        let mut callers = vec![first];
        while let Ok(next) = waiting.try_recv() {
            callers.push(next);
        }
        let answer = round().await;
        for caller in callers {
            // A caller that gave up (timed out) dropped its receiver: nothing to do.
            let _ = caller.send(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    /// Rounds that each wait for a permit and answer their own number (1, 2, ...).
    fn gated_rounds() -> (Rounds<u64>, Arc<Semaphore>, Arc<AtomicU64>) {
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicU64::new(0));
        let (g, s) = (gate.clone(), started.clone());
        let rounds = Rounds::spawn(move || {
            let (gate, started) = (g.clone(), s.clone());
            async move {
                let number = started.fetch_add(1, Ordering::SeqCst) + 1;
                gate.acquire().await.expect("gate open").forget();
                number
            }
        });
        (rounds, gate, started)
    }

    /// A caller asking `rounds` on a task of its own.
    fn asking(rounds: &Rounds<u64>) -> tokio::task::JoinHandle<Option<u64>> {
        let rounds = rounds.clone();
        tokio::spawn(async move { rounds.ask().await })
    }

    async fn until_started(started: &AtomicU64, rounds: u64) {
        while started.load(Ordering::SeqCst) < rounds {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn callers_during_a_round_share_the_next_round_not_that_one() {
        let (rounds, gate, started) = gated_rounds();
        // Round 1 starts for the first caller and is held open.
        let first = asking(&rounds);
        until_started(&started, 1).await;
        // Ten callers arrive while it runs.
        let during: Vec<_> = (0..10).map(|_| asking(&rounds)).collect();
        while rounds.queue.capacity() > QUEUE - 10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "no second round while one runs"
        );
        gate.add_permits(1);
        assert_eq!(first.await.expect("joined"), Some(1));
        // All ten get round 2, one round for all of them.
        until_started(&started, 2).await;
        gate.add_permits(1);
        for caller in during {
            assert_eq!(caller.await.expect("joined"), Some(2));
        }
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lone_caller_gets_a_round_of_its_own_each_time() {
        let (rounds, gate, _started) = gated_rounds();
        gate.add_permits(3);
        for expected in 1..=3 {
            assert_eq!(rounds.ask().await, Some(expected));
        }
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_stop_the_rounds() {
        let (rounds, gate, started) = gated_rounds();
        let gave_up = asking(&rounds);
        until_started(&started, 1).await;
        gave_up.abort();
        gate.add_permits(2);
        assert_eq!(rounds.ask().await, Some(2));
    }
}
