//! When a cluster has a leader: the one definition every test, the chaos suite, the
//! benchmark and `raft3d cluster` use.
//!
//! A node L is *the elected leader* when, in the views the nodes give of themselves:
//! - L says it is `Leader` in term T (so a partitioned ex-leader that still believes in
//!   itself is not enough on its own);
//! - a strict majority of the voters in L's membership (L included) say L leads in the
//!   same term T (so an old leader that some followers still name is not chosen);
//! - L knows every member's client URL (so a follower can redirect a client to it and
//!   L can name every member: the cluster is usable, not just elected).

use crate::NotInTime;
use app::api::{ClusterView, Role};
use raft3d_client::{Client, RetryPolicy};
use std::time::Duration;

/// How long one node may take to answer a poll of its view: a paused (SIGSTOP) or dead
/// node must not stall the poll of the others.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// The elected leader.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leader {
    pub id: u64,
    /// Its client URL, as it was polled.
    pub url: String,
    pub term: u64,
}

/// The elected leader among `views` (each node's own view, with the URL it was asked
/// at), if there is one by the rules above.
pub fn elected(views: &[(String, ClusterView)]) -> Option<Leader> {
    views.iter().find_map(|(url, view)| {
        if view.role != Role::Leader || view.leader_id != Some(view.node_id) {
            return None;
        }
        let voters: Vec<u64> = view
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect();
        let following = views
            .iter()
            .filter(|(_, v)| {
                voters.contains(&v.node_id)
                    && v.leader_id == Some(view.node_id)
                    && v.term == view.term
            })
            .count();
        let reachable = view.members.iter().all(|m| m.http_url.is_some());
        (following * 2 > voters.len() && reachable).then(|| Leader {
            id: view.node_id,
            url: url.clone(),
            term: view.term,
        })
    })
}

/// The views of the nodes at `urls` that answer `poller` (one try each, in parallel),
/// in node id order.
pub async fn views(poller: &Client, urls: &[String]) -> Vec<(String, ClusterView)> {
    let mut polls = tokio::task::JoinSet::new();
    for url in urls {
        let (poller, url) = (poller.clone(), url.clone());
        polls.spawn(async move { poller.cluster_at(&url).await.ok().map(|v| (url, v)) });
    }
    let mut views = Vec::new();
    while let Some(joined) = polls.join_next().await {
        if let Ok(Some(view)) = joined {
            views.push(view);
        }
    }
    views.sort_by_key(|(_, v)| v.node_id);
    views
}

/// Waits until the nodes at `urls` have elected a leader (polling each node's own view).
pub async fn wait_for(urls: &[String], within: Duration) -> Result<Leader, NotInTime> {
    let policy = RetryPolicy {
        request_timeout: POLL_TIMEOUT,
        ..RetryPolicy::default()
    };
    let poller = Client::with_policy(urls, policy).map_err(|e| NotInTime {
        what: "a leader elected".to_owned(),
        within,
        last: e.to_string(),
    })?;
    crate::eventually("a leader elected", within, || async {
        let views = views(&poller, urls).await;
        elected(&views).ok_or_else(|| describe(&views))
    })
    .await
}

/// Why [`elected`] found no leader, for error messages.
pub fn describe(views: &[(String, ClusterView)]) -> String {
    if views.is_empty() {
        return "no node answered".to_owned();
    }
    views
        .iter()
        .map(|(_, v)| {
            let leader = v
                .leader_id
                .map_or_else(|| "none".to_owned(), |id| id.to_string());
            format!(
                "node {} {} term {} leader {leader}",
                v.node_id, v.role, v.term
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::MemberView;

    fn member(id: u64, voter: bool) -> MemberView {
        MemberView {
            id,
            raft_addr: format!("127.0.0.1:{}", 9080 + id),
            http_url: Some(format!("http://127.0.0.1:{}", 8080 + id)),
            voter,
            reachable: None,
            matched_index: None,
            incarnation: None,
            rejoining: false,
        }
    }

    fn view(node_id: u64, role: Role, leader_id: Option<u64>, term: u64) -> (String, ClusterView) {
        let view = ClusterView {
            cluster_id: None,
            node_id,
            role,
            leader_id,
            leader_url: None,
            term,
            last_log_index: None,
            commit_index: None,
            applied_index: None,
            snapshot_index: None,
            purged_index: None,
            state_digest: String::new(),
            members: (1..=3).map(|id| member(id, true)).collect(),
            warnings: Vec::new(),
        };
        (format!("http://127.0.0.1:{}", 8080 + node_id), view)
    }

    #[test]
    fn a_leader_followed_by_a_majority_in_its_term_is_elected() {
        let views = [
            view(1, Role::Follower, Some(2), 4),
            view(2, Role::Leader, Some(2), 4),
            view(3, Role::Follower, Some(2), 4),
        ];
        let leader = elected(&views).expect("elected");
        assert_eq!((leader.id, leader.term), (2, 4));
        assert_eq!(leader.url, "http://127.0.0.1:8082");
    }

    #[test]
    fn a_leader_and_one_follower_of_three_are_enough() {
        let views = [
            view(1, Role::Leader, Some(1), 2),
            view(2, Role::Follower, Some(1), 2),
        ];
        assert_eq!(elected(&views).map(|l| l.id), Some(1));
    }

    #[test]
    fn a_stale_leader_is_not_chosen_over_the_one_a_majority_follows() {
        let views = [
            view(1, Role::Leader, Some(1), 3),
            view(2, Role::Leader, Some(2), 4),
            view(3, Role::Follower, Some(2), 4),
        ];
        assert_eq!(elected(&views).map(|l| l.id), Some(2));
    }

    #[test]
    fn followers_of_an_older_term_do_not_count() {
        let views = [
            view(1, Role::Follower, Some(2), 3),
            view(2, Role::Leader, Some(2), 4),
            view(3, Role::Follower, Some(2), 3),
        ];
        assert_eq!(elected(&views), None);
    }

    #[test]
    fn a_lone_node_claiming_leadership_is_not_enough() {
        assert_eq!(elected(&[view(1, Role::Leader, Some(1), 5)]), None);
    }

    #[test]
    fn learners_do_not_make_a_majority() {
        let (url, mut leader) = view(1, Role::Leader, Some(1), 2);
        leader.members = vec![
            member(1, true),
            member(2, true),
            member(3, true),
            member(4, false),
        ];
        let learner = view(4, Role::Learner, Some(1), 2);
        assert_eq!(elected(&[(url, leader), learner]), None);
    }

    #[test]
    fn a_leader_that_cannot_name_every_members_url_is_not_ready() {
        let (url, mut leader) = view(1, Role::Leader, Some(1), 2);
        leader.members[2].http_url = None;
        let views = [(url, leader), view(2, Role::Follower, Some(1), 2)];
        assert_eq!(elected(&views), None);
    }
}
