//! `Farm`: the narrow facade HTTP handlers use instead of talking to openraft.
//!
//! It owns the cluster-facing decisions of a request: whether this node may write (or
//! must point the client at the leader), how long a write may wait, and what makes a
//! read linearizable on a leader (read index via `ensure_linearizable`) and on a follower
//! (ask the leader for its read index, then wait until this node has applied it).

use crate::raft::batcher::{ProposalBatcher, Written};
use crate::raft::network::{Network, PeerHealth};
use crate::raft::read_index::ReadIndex;
use crate::raft::typ::{ClientWriteError, LogId, NodeId, Raft, RaftMetrics};
use crate::raft::NodeAddr;
use crate::store::state_machine::Applied;
use crate::store::StateMachineStore;
use app::api::{ClusterView, MemberView, Role};
use app::{Command, IdempotencyClaim, Proposal};
use openraft::error::{ChangeMembershipError, CheckIsLeaderError, RaftError};
use openraft::{ChangeMembers, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Never older than any write that returned before the read started (default).
    Linearizable,
    /// Whatever this node has applied; may lag the leader. Opt-in: `?consistency=stale`.
    Stale,
}

/// What a read asks of the node before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWish {
    pub consistency: Consistency,
    /// `?min_index=N`: answer once this node has applied entry N (read-your-writes on any
    /// node, with the index a write was answered with, and no leader round trip).
    pub min_index: Option<u64>,
}

impl ReadWish {
    /// A linearizable read with no `min_index`.
    pub const LINEARIZABLE: ReadWish = ReadWish {
        consistency: Consistency::Linearizable,
        min_index: None,
    };
}

/// Why the cluster could not serve a request right now. Mapped to HTTP in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    #[error("this node is not the leader; node {leader_id} is")]
    NotLeader {
        leader_id: NodeId,
        leader_url: Option<String>,
    },
    #[error("no leader is known (an election is in progress or there is no quorum)")]
    NoLeader,
    #[error("the leader has not heard from a quorum recently; the write was not attempted")]
    NoQuorum,
    #[error(
        "no commit within {0:?}: the outcome is unknown (retry with the same Idempotency-Key)"
    )]
    Timeout(Duration),
    #[error("the local Raft node has stopped")]
    Stopped,
    #[error(
        "this node has applied up to index {applied:?}, not yet {wanted} (min_index), \
         after waiting {waited:?}: retry, or ask another node"
    )]
    IndexNotReached {
        wanted: u64,
        applied: Option<u64>,
        waited: Duration,
    },
    /// `min_index` past the end of the confirmed leader's log: no answer ever carried it.
    #[error(
        "no entry {wanted} exists: the cluster's log ends at {last:?} (min_index must come \
         from an answer's X-Raft3D-Index)"
    )]
    IndexInFuture { wanted: u64, last: Option<u64> },
    #[error("membership change refused: {0}")]
    Membership(#[from] ChangeMembershipError<NodeId>),
    #[error(
        "node {id} was added as a learner but has not caught up within {within:?}: is it \
         running, reachable at its Raft address, with a certificate of this cluster? It \
         stays a learner (not counted for quorum): run add-node again once it has caught \
         up, or remove-node"
    )]
    LearnerBehind { id: NodeId, within: Duration },
}

/// How long adding a node waits for it to catch up as a learner before promoting it
/// (below the API's 30 s request timeout, so the client gets this answer, not a 408).
const LEARNER_CATCH_UP: Duration = Duration::from_secs(20);

/// Cheap to clone; one per node.
#[derive(Clone)]
pub struct Farm {
    inner: Arc<FarmParts>,
}

/// What a `Farm` is built from.
pub struct FarmParts {
    pub id: NodeId,
    pub raft: Raft,
    /// Groups concurrent writes into one Raft entry (see `raft::batcher`).
    pub proposals: ProposalBatcher,
    /// One leadership check for all the linearizable reads waiting (`raft::read_index`).
    pub reads: ReadIndex,
    pub state: StateMachineStore,
    pub network: Network,
    pub health: PeerHealth,
    /// Longest a write (or a linearizable read) may wait before `503`.
    pub write_timeout: Duration,
    /// A leader that has not heard from a quorum for this long refuses writes.
    pub election_timeout_max: Duration,
    /// Shown in the cluster view (`ClusterView::warnings`).
    pub warnings: Vec<String>,
    /// Who this node is (its cluster id is shown in the cluster view).
    pub identity: crate::identity::LocalIdentity,
}

/// Who leads, as far as this node knows.
#[derive(Debug, Clone)]
pub struct LeaderInfo {
    pub id: Option<NodeId>,
    pub node: Option<NodeAddr>,
}

impl Farm {
    pub fn new(parts: FarmParts) -> Self {
        Self {
            inner: Arc::new(parts),
        }
    }

    /// The cluster this node belongs to (`None` before it learned one).
    pub fn cluster_id(&self) -> Option<String> {
        self.inner.identity.get().cluster_id
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// A copy of the current Raft metrics (never hold the watch borrow: openraft#1238).
    pub fn metrics(&self) -> RaftMetrics {
        self.inner.raft.metrics().borrow().clone()
    }

    pub fn leader(&self) -> LeaderInfo {
        let metrics = self.metrics();
        let node = metrics.current_leader.and_then(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .cloned()
        });
        LeaderInfo {
            id: metrics.current_leader,
            node,
        }
    }

    /// Commits a command through Raft and returns what applying it produced.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn propose(
        &self,
        command: Command,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Written, FarmError> {
        self.ensure_writable_leader()?;
        let proposal = Proposal {
            command,
            at_ms: now_ms(),
            idempotency,
        };
        let timeout = self.inner.write_timeout;
        match tokio::time::timeout(timeout, self.inner.proposals.submit(proposal)).await {
            Err(_) => Err(FarmError::Timeout(timeout)),
            Ok(None | Some(Err(RaftError::Fatal(_)))) => Err(FarmError::Stopped),
            Ok(Some(Ok(written))) => Ok(written),
            Ok(Some(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))))) => {
                Err(not_leader(forward.leader_id, forward.leader_node))
            }
            Ok(Some(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))))) => {
                Err(e.into())
            }
        }
    }

    /// Waits until reading local state satisfies `consistency`, then lends it out.
    /// Do not hold the returned guard across an `.await`.
    pub async fn read(&self, wish: ReadWish) -> Result<RwLockReadGuard<'_, Applied>, FarmError> {
        self.reach(wish).await?;
        Ok(self.local_state())
    }

    /// What `read` computes from the farm once `wish` holds, and the log index it was
    /// computed at (the answer's `X-Raft3D-Index`). `read` runs under the farm's lock.
    pub async fn read_at<T>(
        &self,
        wish: ReadWish,
        read: impl FnOnce(&app::FarmState) -> T,
    ) -> Result<(T, Option<u64>), FarmError> {
        let applied = self.read(wish).await?;
        Ok((read(&applied.farm), applied.last_applied.map(|l| l.index)))
    }

    /// Waits until this node's applied state satisfies `wish`; the state read after this
    /// does.
    pub async fn reach(&self, wish: ReadWish) -> Result<(), FarmError> {
        let deadline = self.inner.write_timeout;
        if let Some(wanted) = wish.min_index {
            self.refuse_future_index(wanted).await?;
            let reached = self
                .inner
                .raft
                .wait(Some(deadline))
                .applied_index_at_least(Some(wanted), "min_index read")
                .await;
            match reached {
                Ok(_) => {}
                Err(openraft::metrics::WaitError::ShuttingDown) => return Err(FarmError::Stopped),
                Err(openraft::metrics::WaitError::Timeout(..)) => {
                    return Err(FarmError::IndexNotReached {
                        wanted,
                        applied: self.local_state().last_applied.map(|l| l.index),
                        waited: deadline,
                    })
                }
            }
        }
        if wish.consistency == Consistency::Linearizable {
            tokio::time::timeout(deadline, self.read_barrier())
                .await
                .map_err(|_| FarmError::Timeout(deadline))??;
        }
        Ok(())
    }

    /// Refuses, on the leader, a `min_index` past the end of its log, instead of waiting
    /// for it and answering `503` (which tells a client to retry: forever, here). Only
    /// once leadership is confirmed: a leader holds every committed entry, and an index
    /// reaches a client only once committed, so an index past the end of a confirmed
    /// leader's log was never given out. A follower cannot tell a future index from one
    /// it has yet to receive, so it waits.
    async fn refuse_future_index(&self, wanted: u64) -> Result<(), FarmError> {
        let id = self.id();
        let past_end = |m: &RaftMetrics| {
            m.current_leader == Some(id) && m.last_log_index.is_none_or(|last| wanted > last)
        };
        if !past_end(&self.metrics()) {
            return Ok(());
        }
        let deadline = self.inner.write_timeout;
        tokio::time::timeout(deadline, self.read_barrier())
            .await
            .map_err(|_| FarmError::Timeout(deadline))??;
        let metrics = self.metrics();
        match past_end(&metrics) {
            true => Err(FarmError::IndexInFuture {
                wanted,
                last: metrics.last_log_index,
            }),
            false => Ok(()),
        }
    }

    /// A consistent view of the farm's stored rows for a whole-list answer, reflecting
    /// at least `wish` (see `store::FarmView`).
    pub async fn view(&self, wish: ReadWish) -> Result<crate::store::FarmView, FarmError> {
        self.reach(wish).await?;
        // The in-memory farm runs ahead of the rows queued for the file while an apply
        // is under way (it updates the farm, then queues the rows); openraft reports an
        // index applied only once that apply has returned. Without this, a stale read
        // right after a catch-up batch saw the file before the whole batch (CI once:
        // 597 of 800 printers on a follower rebuilt from a snapshot).
        if let Some(index) = self.applied_index() {
            let deadline = self.inner.write_timeout;
            self.inner
                .raft
                .wait(Some(deadline))
                .applied_index_at_least(Some(index), "the applied state's rows queued")
                .await
                .map_err(|_| FarmError::Timeout(deadline))?;
        }
        self.inner.state.view().await.map_err(|error| {
            tracing::error!(%error, "opening a view of the farm failed");
            FarmError::Stopped
        })
    }

    /// The recent changes this node applied (the change stream reads them).
    pub fn journal(&self) -> crate::store::event_journal::EventJournal {
        self.inner.state.journal().clone()
    }

    /// The last log index this node has applied.
    pub fn applied_index(&self) -> Option<u64> {
        self.local_state().last_applied.map(|l| l.index)
    }

    /// This node's applied state as it is now, with no freshness promise (the dashboard's
    /// first page). Do not hold the guard across an `.await`.
    pub fn local_state(&self) -> RwLockReadGuard<'_, Applied> {
        self.inner.state.read()
    }

    /// The peer network (files travel on it too: `crate::files`).
    pub fn network(&self) -> &Network {
        &self.inner.network
    }

    /// The voters and how to reach them, as this node knows the membership.
    pub fn voters(&self) -> Vec<(NodeId, NodeAddr)> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.clone())))
            .collect()
    }

    /// Every member (voters and learners) and how to reach it.
    pub fn members(&self) -> Vec<(NodeId, NodeAddr)> {
        self.metrics()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }

    /// The term this node leads in, if it is the leader (as far as it knows: see
    /// [`Self::confirm_leader`] before acting on it outside the cluster).
    pub fn leading_term(&self) -> Option<u64> {
        let metrics = self.metrics();
        (metrics.current_leader == Some(self.id()) && metrics.state == ServerState::Leader)
            .then_some(metrics.current_term)
    }

    /// Whether this node still leads in `term`, confirmed with a quorum now (the read
    /// index protocol): what a printer's driver asks before it starts a print.
    pub async fn confirm_leader(&self, term: u64) -> bool {
        let deadline = self.inner.write_timeout;
        let confirmed = tokio::time::timeout(deadline, self.inner.reads.read_log_id()).await;
        matches!(confirmed, Ok(Ok(_))) && self.leading_term() == Some(term)
    }

    /// Client URLs of the members, as the membership records them.
    pub fn member_urls(&self) -> Vec<String> {
        self.metrics()
            .membership_config
            .membership()
            .nodes()
            .filter_map(|(_, node)| node.http_url.clone())
            .collect()
    }

    /// Read-index: make sure this node has applied everything committed before now.
    async fn read_barrier(&self) -> Result<(), FarmError> {
        let leader = self.leader();
        match leader.id {
            None => Err(FarmError::NoLeader),
            Some(id) if id == self.inner.id => {
                // Confirms leadership with a quorum (in a round shared with the reads
                // waiting), then waits for the local apply.
                let read_log_id = self.inner.reads.read_log_id().await.map_err(|e| match e {
                    RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
                        not_leader(f.leader_id, f.leader_node)
                    }
                    RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => {
                        FarmError::NoQuorum
                    }
                    RaftError::Fatal(_) => FarmError::Stopped,
                })?;
                self.applied_up_to(read_log_id).await
            }
            Some(id) => {
                let leader_node = leader.node.ok_or(FarmError::NoLeader)?;
                let asked = self.inner.network.read_index(id, &leader_node).await;
                let read_log_id = match asked {
                    Ok(Ok(read_log_id)) => read_log_id,
                    // The leader moved or lost its quorum between our look and its answer.
                    Ok(Err(_)) | Err(_) => return Err(FarmError::NoLeader),
                };
                self.applied_up_to(read_log_id).await
            }
        }
    }

    /// Waits until this node has applied `read_log_id` (a read index's answer).
    async fn applied_up_to(&self, read_log_id: Option<LogId>) -> Result<(), FarmError> {
        let Some(log_id) = read_log_id else {
            return Ok(());
        };
        self.inner
            .raft
            .wait(None)
            .applied_index_at_least(Some(log_id.index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|_| FarmError::Stopped)
    }

    /// Refuses early (and cheaply) what only the leader may do, and refuses writes a
    /// leader cut off from its quorum could not commit anyway (also before a write that
    /// starts with work of its own, such as storing an upload).
    pub fn ensure_writable_leader(&self) -> Result<(), FarmError> {
        let metrics = self.metrics();
        match metrics.current_leader {
            Some(id) if id == self.inner.id => {
                // A leader with no quorum ack yet (openraft reports none until one
                // arrives); with peers to hear from, treat that like silence rather than
                // wait out the write timeout. A lone voter is its own quorum.
                let alone = metrics.membership_config.membership().voter_ids().count() <= 1;
                let limit = self.inner.election_timeout_max.as_millis() as u64;
                match metrics.millis_since_quorum_ack {
                    Some(silent_ms) if silent_ms > limit => Err(FarmError::NoQuorum),
                    None if !alone => Err(FarmError::NoQuorum),
                    _ => Ok(()),
                }
            }
            Some(id) => Err(not_leader(
                Some(id),
                metrics
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .cloned(),
            )),
            None => Err(FarmError::NoLeader),
        }
    }

    /// Adds a node as a learner, waits for it to catch up, then makes it a voter.
    pub async fn add_node(&self, id: NodeId, raft_addr: String) -> Result<(), FarmError> {
        self.ensure_writable_leader()?;
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        if membership.voter_ids().any(|voter| voter == id) {
            return Ok(());
        }
        let node = NodeAddr {
            raft_addr,
            ..NodeAddr::default()
        };
        let added = self
            .inner
            .raft
            .add_learner(id, node, false)
            .await
            .map_err(|e| self.membership_error(e))?;
        // Promoted only once it holds the log up to its own addition: a voter that cannot
        // be reached (or is far behind) would count toward quorum from the joint
        // configuration on, and a one-node cluster would stop writing. openraft's own
        // "blocking" add_learner waits 500 ms and then returns Ok regardless.
        // On timeout the learner stays in the membership (replicated to, not counted);
        // the next add-node promotes it.
        let caught_up = |metrics: &openraft::RaftMetrics<NodeId, NodeAddr>| {
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id))
                .cloned();
            matched.flatten() >= Some(added.log_id)
        };
        self.inner
            .raft
            .wait(Some(LEARNER_CATCH_UP))
            .metrics(caught_up, "the new learner to catch up")
            .await
            .map_err(|_| FarmError::LearnerBehind {
                id,
                within: LEARNER_CATCH_UP,
            })?;
        self.inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(())
    }

    /// Removes a node from the voters and from the membership.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), FarmError> {
        self.ensure_writable_leader()?;
        let membership = self.metrics().membership_config.membership().clone();
        if membership.voter_ids().any(|voter| voter == id) {
            self.inner
                .raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.membership_error(e))?;
        } else if membership.get_node(&id).is_some() {
            self.inner
                .raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.membership_error(e))?;
        }
        Ok(())
    }

    fn membership_error(&self, error: RaftError<NodeId, ClientWriteError>) -> FarmError {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                not_leader(f.leader_id, f.leader_node)
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => e.into(),
            RaftError::Fatal(_) => FarmError::Stopped,
        }
    }

    /// This node's view of the cluster, for `/api/v1/cluster` and the dashboard.
    pub fn cluster_view(&self) -> ClusterView {
        let metrics = self.metrics();
        let (digest, applied_index) = {
            let applied = self.inner.state.read();
            (applied.farm.digest(), applied.last_applied.map(|l| l.index))
        };
        let is_leader = metrics.state == ServerState::Leader;
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = metrics
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, log)| (*id, log.map(|l| l.index)))
                    .collect()
            })
            .unwrap_or_default();
        let window = self.inner.election_timeout_max * 2;
        let members = membership
            .nodes()
            .map(|(id, node)| MemberView {
                id: *id,
                raft_addr: node.raft_addr.clone(),
                http_url: node.http_url.clone(),
                voter: voters.contains(id),
                reachable: match (is_leader, *id == self.inner.id) {
                    (true, true) => Some(true),
                    (true, false) => {
                        Some(self.inner.health.reachable(*id, window).unwrap_or(false))
                    }
                    (false, _) => None,
                },
                matched_index: matched.get(id).copied().flatten(),
                incarnation: node.incarnation.clone(),
                rejoining: node.rejoining,
            })
            .collect();
        let leader_url = metrics
            .current_leader
            .and_then(|id| membership.get_node(&id))
            .and_then(|node| node.http_url.clone());
        // The reported membership wins over the state: a follower it does not list as a
        // voter is a learner.
        let role = match metrics.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower if voters.contains(&self.inner.id) => Role::Follower,
            ServerState::Follower | ServerState::Learner => Role::Learner,
            ServerState::Candidate => Role::Candidate,
            ServerState::Shutdown => Role::Shutdown,
        };
        ClusterView {
            cluster_id: self.inner.identity.get().cluster_id,
            node_id: self.inner.id,
            role,
            leader_id: metrics.current_leader,
            leader_url,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            commit_index: committed_index(&metrics),
            applied_index,
            snapshot_index: metrics.snapshot.map(|l| l.index),
            purged_index: metrics.purged.map(|l| l.index),
            state_digest: format!("{digest:016x}"),
            members,
            warnings: self.inner.warnings.clone(),
        }
    }
}

/// openraft 0.9's metrics do not carry the commit index; every node applies only
/// committed entries, so the applied index is a lower bound and on the leader the
/// quorum-matched index is exact.
fn committed_index(metrics: &RaftMetrics) -> Option<u64> {
    let applied = metrics.last_applied.map(|l| l.index);
    let Some(replication) = &metrics.replication else {
        return applied;
    };
    let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    let mut matched: Vec<u64> = voters
        .iter()
        .map(|id| {
            replication
                .get(id)
                .copied()
                .flatten()
                .map(|l| l.index)
                .unwrap_or(0)
        })
        .collect();
    matched.sort_unstable_by(|a, b| b.cmp(a));
    let quorum = voters.len() / 2;
    matched.get(quorum).copied().max(applied)
}

fn not_leader(leader_id: Option<NodeId>, node: Option<NodeAddr>) -> FarmError {
    match leader_id {
        Some(leader_id) => FarmError::NotLeader {
            leader_id,
            leader_url: node.and_then(|n| n.http_url),
        },
        None => FarmError::NoLeader,
    }
}

/// Wall-clock milliseconds since the epoch on this node (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
