//! Membership upkeep by the leader: every member's client URL and incarnation recorded
//! in the replicated membership, and the rejoin of a member that came back with a wiped
//! data directory.
//!
//! Owns: deciding the next membership change from what the members report
//! ([`next_change`], pure and unit-tested) and making it ([`maintain`]). Must not touch:
//! how peers are trusted (`crate::identity`, `raft::network`, `raft::service`).
//!
//! A wiped member rejoins in three changes, each a Raft membership change that the
//! *other* members commit (the wiped node's votes and answers are refused by its peers
//! until step 2, see `crate::identity`):
//! 1. a voter with a new incarnation is demoted to learner (`RemoveVoters`, retained);
//! 2. the learner's record gets the new incarnation and `rejoining` (`SetNodes`): from
//!    now on the leader replicates to it, as to any learner, and it votes nowhere;
//! 3. once it holds everything the leader has applied, it is promoted (`AddVoterIds`),
//!    and `rejoining` is cleared.
//!
//! A new leader picks up wherever the previous one stopped: every step is read off the
//! replicated membership and the members' answers, nothing is kept in memory.

use crate::raft::network::{Network, NodeInfo};
use crate::raft::typ::{NodeId, Raft};
use crate::raft::NodeAddr;
use openraft::ChangeMembers;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::watch;

/// How often the leader asks every member who it is.
const ROUND: Duration = Duration::from_millis(500);

/// The membership as the leader sees it, and how far each member has caught up.
pub struct MembershipView {
    pub nodes: BTreeMap<NodeId, NodeAddr>,
    pub voters: BTreeSet<NodeId>,
    /// Highest log index replicated to each member.
    pub matched: BTreeMap<NodeId, u64>,
    /// The leader's applied index: a learner holding it has caught up.
    pub applied: u64,
}

/// One membership change, the next one to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// New or changed records (client URL, first incarnation, `rejoining` cleared).
    Record(BTreeMap<NodeId, NodeAddr>),
    /// A voter came back with a new incarnation: it stops being a voter (stays a learner).
    Demote(NodeId),
    /// A learner came back with a new incarnation: record it, mark it rejoining.
    Readmit(NodeId, NodeAddr),
    /// A rejoining learner has caught up: it votes again.
    Promote(NodeId),
}

impl MemberChange {
    fn into_raft(self) -> (ChangeMembers<NodeId, NodeAddr>, bool) {
        match self {
            Self::Record(nodes) => (ChangeMembers::SetNodes(nodes), false),
            // Retained as a learner: the leader keeps replicating to it.
            Self::Demote(id) => (ChangeMembers::RemoveVoters(BTreeSet::from([id])), true),
            Self::Readmit(id, node) => {
                (ChangeMembers::SetNodes(BTreeMap::from([(id, node)])), false)
            }
            Self::Promote(id) => (ChangeMembers::AddVoterIds(BTreeSet::from([id])), false),
        }
    }
}

/// The client URL a member reported, if it is one (`app::api::parse_client_url`):
/// it is recorded in the membership and trusted as an origin and host name everywhere,
/// so a malformed one (a peer of another version, a broken `--advertise-http`) is not
/// recorded; the member keeps the URL recorded before.
fn reported_url(report: &NodeInfo) -> Option<String> {
    match app::api::parse_client_url(&report.http_url) {
        Ok(url) => Some(url),
        Err(problem) => {
            tracing::warn!(node = report.id, url = %report.http_url, %problem, "member reports a client URL that is not one; not recorded");
            None
        }
    }
}

/// The next change, given what each member reported (`None`: it did not answer; this
/// leader's own report included). Rejoins come first: until they are done the cluster
/// runs with one voter fewer.
pub fn next_change(
    view: &MembershipView,
    reports: &BTreeMap<NodeId, NodeInfo>,
) -> Option<MemberChange> {
    for (id, node) in &view.nodes {
        let voter = view.voters.contains(id);
        if let Some(report) = reports.get(id) {
            let recorded = node.incarnation.as_deref();
            if recorded.is_some_and(|recorded| recorded != report.incarnation) {
                return Some(match voter {
                    true => MemberChange::Demote(*id),
                    false => MemberChange::Readmit(
                        *id,
                        NodeAddr {
                            raft_addr: node.raft_addr.clone(),
                            http_url: reported_url(report),
                            incarnation: Some(report.incarnation.clone()),
                            rejoining: true,
                        },
                    ),
                });
            }
        }
        let caught_up = view.matched.get(id).is_some_and(|m| *m >= view.applied);
        if node.rejoining && !voter && caught_up {
            return Some(MemberChange::Promote(*id));
        }
    }
    let records: BTreeMap<NodeId, NodeAddr> = view
        .nodes
        .iter()
        .filter_map(|(id, node)| {
            let voter = view.voters.contains(id);
            let report = reports.get(id);
            let record = NodeAddr {
                raft_addr: node.raft_addr.clone(),
                // A member that does not answer keeps what is recorded.
                http_url: report
                    .and_then(reported_url)
                    .or_else(|| node.http_url.clone()),
                incarnation: node
                    .incarnation
                    .clone()
                    .or_else(|| report.map(|r| r.incarnation.clone())),
                rejoining: node.rejoining && !voter,
            };
            (record != *node).then_some((*id, record))
        })
        .collect();
    (!records.is_empty()).then_some(MemberChange::Record(records))
}

/// While this node leads, asks every member who it is (`/raft/info`) each round and
/// makes the next change [`next_change`] names. Runs until `stopped`.
pub async fn maintain(
    raft: Raft,
    network: Network,
    me: NodeInfo,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), std::io::Error> {
    let mut interval = tokio::time::interval(ROUND);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            _ = interval.tick() => {}
        }
        let Some(view) = view_if_leader(&raft, me.id) else {
            continue;
        };
        let mut reports = BTreeMap::from([(me.id, me.clone())]);
        for (id, node) in view.nodes.iter().filter(|(id, _)| **id != me.id) {
            if let Ok(report) = network.node_info(*id, node).await {
                reports.insert(*id, report);
            }
        }
        let Some(change) = next_change(&view, &reports) else {
            continue;
        };
        match &change {
            MemberChange::Record(_) => tracing::debug!(?change, "recording members"),
            _ => tracing::warn!(?change, "rejoin of a member with a new data directory"),
        }
        let (change, retain) = change.into_raft();
        if let Err(e) = raft.change_membership(change, retain).await {
            tracing::info!(error = %e, "membership change failed; the next round retries");
        }
    }
}

/// The membership and replication state, if this node is the leader. Copied out of the
/// metrics at once (never held: openraft#1238).
fn view_if_leader(raft: &Raft, me: NodeId) -> Option<MembershipView> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    if metrics.current_leader != Some(me) {
        return None;
    }
    let membership = metrics.membership_config.membership();
    let matched = metrics
        .replication
        .iter()
        .flatten()
        .filter_map(|(id, log_id)| log_id.map(|l| (*id, l.index)))
        .collect();
    Some(MembershipView {
        nodes: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
        voters: membership.voter_ids().collect(),
        matched,
        applied: metrics.last_applied.map_or(0, |l| l.index),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(incarnation: Option<&str>, rejoining: bool) -> NodeAddr {
        NodeAddr {
            raft_addr: "r".into(),
            http_url: Some("http://n:8081".into()),
            incarnation: incarnation.map(str::to_owned),
            rejoining,
        }
    }

    fn report(id: NodeId, incarnation: &str) -> (NodeId, NodeInfo) {
        let info = NodeInfo {
            id,
            http_url: "http://n:8081".into(),
            incarnation: incarnation.into(),
            initialized: true,
        };
        (id, info)
    }

    fn view(
        nodes: &[(NodeId, NodeAddr)],
        voters: &[NodeId],
        matched: &[(NodeId, u64)],
    ) -> MembershipView {
        MembershipView {
            nodes: nodes.iter().cloned().collect(),
            voters: voters.iter().copied().collect(),
            matched: matched.iter().copied().collect(),
            applied: 10,
        }
    }

    #[test]
    fn nothing_to_do_when_every_record_matches() {
        let v = view(
            &[(1, node(Some("a"), false)), (2, node(Some("b"), false))],
            &[1, 2],
            &[],
        );
        let reports = BTreeMap::from([report(1, "a"), report(2, "b")]);
        assert_eq!(next_change(&v, &reports), None);
        // A member that does not answer changes nothing either.
        assert_eq!(next_change(&v, &BTreeMap::from([report(1, "a")])), None);
    }

    #[test]
    fn first_incarnations_and_urls_are_recorded_together() {
        let bare = NodeAddr {
            raft_addr: "r".into(),
            ..NodeAddr::default()
        };
        let v = view(&[(1, bare.clone()), (2, bare)], &[1, 2], &[]);
        let reports = BTreeMap::from([report(1, "a"), report(2, "b")]);
        let Some(MemberChange::Record(records)) = next_change(&v, &reports) else {
            panic!("expected a record");
        };
        assert_eq!(records[&1], node(Some("a"), false));
        assert_eq!(records[&2], node(Some("b"), false));
    }

    #[test]
    fn a_wiped_voter_is_demoted_then_readmitted_then_promoted_once_caught_up() {
        let reports = BTreeMap::from([report(1, "a"), report(2, "b2")]);
        // Step 1: still a voter with its old record.
        let v = view(
            &[(1, node(Some("a"), false)), (2, node(Some("b"), false))],
            &[1, 2],
            &[],
        );
        assert_eq!(next_change(&v, &reports), Some(MemberChange::Demote(2)));
        // Step 2: a learner with its old record.
        let v = view(
            &[(1, node(Some("a"), false)), (2, node(Some("b"), false))],
            &[1],
            &[],
        );
        assert_eq!(
            next_change(&v, &reports),
            Some(MemberChange::Readmit(2, node(Some("b2"), true)))
        );
        // Step 3: not before it has caught up ...
        let rejoining = [(1, node(Some("a"), false)), (2, node(Some("b2"), true))];
        let v = view(&rejoining, &[1], &[(2, 9)]);
        assert_eq!(next_change(&v, &reports), None);
        // ... then promoted, and the mark cleared once it votes.
        let v = view(&rejoining, &[1], &[(2, 10)]);
        assert_eq!(next_change(&v, &reports), Some(MemberChange::Promote(2)));
        let v = view(&rejoining, &[1, 2], &[(2, 10)]);
        assert_eq!(
            next_change(&v, &reports),
            Some(MemberChange::Record(BTreeMap::from([(
                2,
                node(Some("b2"), false)
            )])))
        );
    }

    #[test]
    fn an_incarnation_once_recorded_is_never_overwritten_by_a_record() {
        let v = view(&[(2, node(Some("b"), false))], &[2], &[]);
        let change = next_change(&v, &BTreeMap::from([report(2, "b2")]));
        assert_eq!(change, Some(MemberChange::Demote(2)));
    }
}
