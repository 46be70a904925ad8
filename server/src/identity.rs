//! Who a node is: the cluster it belongs to, its node id, and the incarnation of its data
//! directory — stored with the Raft log, and carried by every peer request and answer.
//!
//! Owns: creating the identity with a new data directory, refusing to start on a
//! directory of another node or cluster, adopting the cluster id of the cluster that adds
//! a node, and checking the identity a peer presents. Must not touch: Raft decisions.
//! Which incarnation each member has is recorded in the replicated membership
//! ([`crate::raft::NodeAddr`]); what the leader does about a member that came back with
//! a new one is [`crate::members`]' job (see `raft/DESIGN.md`, "Node identity and wiped
//! disks").
//!
//! Why an incarnation: Raft assumes a voter never forgets its vote or its log. A node
//! whose disk was wiped has forgotten both, and as the same voter it could elect a leader
//! that lacks acknowledged writes. Its new incarnation tells its peers it is not the
//! voter they knew; they refuse its votes and answers until it has caught up as a learner
//! and been promoted again.

use crate::raft::typ::NodeId;
use crate::store::db::DbError;
use crate::store::LogStore;
use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Header names of the identity triple on peer requests and answers.
pub const CLUSTER_HEADER: &str = "x-raft3d-cluster";
pub const NODE_HEADER: &str = "x-raft3d-node";
pub const INCARNATION_HEADER: &str = "x-raft3d-incarnation";

/// A node's identity: stored in its data directory, presented in the headers of every
/// peer request and answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// `None` for a node started without `--peers` until a cluster adds it.
    pub cluster_id: Option<String>,
    pub node_id: NodeId,
    /// Random, new with every data directory: a wiped and restarted node has a new one.
    pub incarnation: String,
}

/// Why a node may not start on its data directory.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "this data directory belongs to node {stored} of cluster {cluster}, not to node \
         {configured}: start it with --id {stored}, or give node {configured} a directory of its own"
    )]
    OtherNode {
        stored: NodeId,
        configured: NodeId,
        cluster: String,
    },
    #[error(
        "this data directory belongs to cluster {stored}, not to cluster {configured} (--cluster-id)"
    )]
    OtherCluster { stored: String, configured: String },
    #[error("cannot read or write the node identity: {0}")]
    Storage(#[from] DbError),
}

/// The cluster id a new cluster gets from its `--peers` (the same list on every node, so
/// every node derives the same id without talking): a 64-bit FNV-1a hash of the sorted
/// list. Two farms with different peer lists never accept each other's traffic.
pub fn cluster_id_from_peers(peers: &[(NodeId, String)]) -> String {
    let mut sorted: Vec<String> = peers
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect();
    sorted.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sorted.join(",").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Loads the identity of the directory `log` lives in, or creates one for a new directory.
///
/// `configured_cluster` is `--cluster-id` (checked against a stored one) and
/// `derived_cluster` the id `--peers` gives (used only when the identity is created).
pub fn load_or_create(
    log: &LogStore,
    node_id: NodeId,
    configured_cluster: Option<&str>,
    derived_cluster: Option<String>,
) -> Result<NodeIdentity, IdentityError> {
    let (stored, has_raft_state) = log.stored_identity::<NodeIdentity>()?;
    if let Some(mut stored) = stored {
        if stored.node_id != node_id {
            return Err(IdentityError::OtherNode {
                stored: stored.node_id,
                configured: node_id,
                cluster: stored
                    .cluster_id
                    .unwrap_or_else(|| "(not joined)".to_owned()),
            });
        }
        match (&stored.cluster_id, configured_cluster) {
            (Some(stored_id), Some(configured)) if stored_id != configured => {
                return Err(IdentityError::OtherCluster {
                    stored: stored_id.clone(),
                    configured: configured.to_owned(),
                })
            }
            (None, Some(configured)) => {
                stored.cluster_id = Some(configured.to_owned());
                log.save_identity(&stored)?;
            }
            _ => {}
        }
        return Ok(stored);
    }
    let identity = NodeIdentity {
        cluster_id: configured_cluster.map(str::to_owned).or(derived_cluster),
        node_id,
        incarnation: uuid::Uuid::now_v7().simple().to_string(),
    };
    if has_raft_state {
        tracing::warn!(
            incarnation = %identity.incarnation,
            "data directory from before node identities: identity created; the leader records it"
        );
    }
    log.save_identity(&identity)?;
    Ok(identity)
}

impl NodeIdentity {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Refusal> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let node_id = text(NODE_HEADER)
            .and_then(|v| v.parse().ok())
            .ok_or(Refusal::Anonymous)?;
        let incarnation = text(INCARNATION_HEADER).ok_or(Refusal::Anonymous)?;
        Ok(Self {
            cluster_id: text(CLUSTER_HEADER).map(str::to_owned),
            node_id,
            incarnation: incarnation.to_owned(),
        })
    }

    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        if let Some(cluster) = &self.cluster_id {
            put(CLUSTER_HEADER, cluster);
        }
        put(NODE_HEADER, &self.node_id.to_string());
        put(INCARNATION_HEADER, &self.incarnation);
    }
}

/// Why a peer's request or answer is refused. Each is logged with the peer's id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no node identity headers: not a Raft3D peer of this version")]
    Anonymous,
    #[error("node {node} belongs to cluster {theirs}, this node to cluster {ours}")]
    OtherCluster {
        node: NodeId,
        theirs: String,
        ours: String,
    },
    #[error("expected node {expected} at this address, found node {found}")]
    OtherNode { expected: NodeId, found: NodeId },
    #[error(
        "node {node} has a new data directory (incarnation {found}, the membership records \
         {recorded}): it may not vote or count toward a quorum until it has caught up as a \
         learner and been promoted again (the leader does this)"
    )]
    NewIncarnation {
        node: NodeId,
        found: String,
        recorded: String,
    },
    #[error("the peer claims to be node {node} but its TLS certificate does not name that node of this cluster")]
    Certificate { node: NodeId },
    #[error("node {node} is not a member of this cluster")]
    NotMember { node: NodeId },
    #[error("the request speaks for node {claimed} but comes from node {node}")]
    Impersonation { node: NodeId, claimed: NodeId },
    #[error("cannot record the cluster id: {0}")]
    Storage(String),
}

/// This node's identity, shared by the peer service and the network client.
#[derive(Clone)]
pub struct LocalIdentity {
    current: Arc<Mutex<NodeIdentity>>,
    log: LogStore,
}

impl LocalIdentity {
    pub fn new(identity: NodeIdentity, log: LogStore) -> Self {
        Self {
            current: Arc::new(Mutex::new(identity)),
            log,
        }
    }

    pub fn get(&self) -> NodeIdentity {
        self.lock().clone()
    }

    /// Puts this node's identity in the headers of a request or answer.
    pub fn sign(&self, headers: &mut HeaderMap) {
        self.lock().write_headers(headers);
    }

    /// Admits a request from `peer`, whose incarnation the membership records as
    /// `recorded` (`None`: not recorded yet, or not a member). A node not yet in any
    /// cluster joins the cluster of the first leader that talks to it (`adopt`).
    pub fn admit(
        &self,
        peer: &NodeIdentity,
        recorded: Option<&str>,
        adopt: bool,
    ) -> Result<(), Refusal> {
        self.same_cluster(peer, adopt)?;
        same_incarnation(peer, recorded)
    }

    /// Checks the answer of `target`, whose incarnation the membership records as
    /// `recorded` (`None`: learn it, do not check it).
    pub fn check_answer(
        &self,
        peer: &NodeIdentity,
        target: NodeId,
        recorded: Option<&str>,
    ) -> Result<(), Refusal> {
        if peer.node_id != target {
            return Err(Refusal::OtherNode {
                expected: target,
                found: peer.node_id,
            });
        }
        self.same_cluster(peer, false)?;
        same_incarnation(peer, recorded)
    }

    fn same_cluster(&self, peer: &NodeIdentity, adopt: bool) -> Result<(), Refusal> {
        let mut identity = self.lock();
        match (&identity.cluster_id, &peer.cluster_id) {
            (Some(ours), Some(theirs)) if ours == theirs => Ok(()),
            (None, Some(theirs)) if adopt => {
                let mut adopted = identity.clone();
                adopted.cluster_id = Some(theirs.clone());
                // Durable before the request is served: a node must never answer two
                // clusters. Once per node lifetime, so a blocking write is fine here.
                self.log
                    .save_identity(&adopted)
                    .map_err(|e| Refusal::Storage(e.to_string()))?;
                tracing::info!(cluster = %theirs, "joined cluster (adopted its cluster id)");
                *identity = adopted;
                Ok(())
            }
            (None, _) => Ok(()),
            (Some(ours), theirs) => Err(Refusal::OtherCluster {
                node: peer.node_id,
                theirs: theirs.clone().unwrap_or_else(|| "(none)".to_owned()),
                ours: ours.clone(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NodeIdentity> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Refusals already logged, per peer: a refused peer retries every few hundred
/// milliseconds, and one line every few seconds says enough.
#[derive(Clone, Default)]
pub struct RefusalLog {
    last: Arc<Mutex<HashMap<NodeId, Instant>>>,
}

const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(5);

impl RefusalLog {
    pub fn warn(&self, peer: NodeId, consequence: &str, refusal: &impl Display) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last
            .get(&peer)
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            last.insert(peer, Instant::now());
            tracing::warn!(peer, %refusal, "peer not trusted: {consequence}");
        }
    }
}

fn same_incarnation(peer: &NodeIdentity, recorded: Option<&str>) -> Result<(), Refusal> {
    match recorded {
        Some(recorded) if recorded != peer.incarnation => Err(Refusal::NewIncarnation {
            node: peer.node_id,
            found: peer.incarnation.clone(),
            recorded: recorded.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(cluster: Option<&str>, node: NodeId, incarnation: &str) -> NodeIdentity {
        NodeIdentity {
            cluster_id: cluster.map(str::to_owned),
            node_id: node,
            incarnation: incarnation.to_owned(),
        }
    }

    fn local(dir: &tempfile::TempDir, cluster: Option<&str>) -> LocalIdentity {
        let log = LogStore::open(&dir.path().join("log.redb"), 1).expect("log");
        let identity = load_or_create(&log, 1, cluster, None).expect("identity");
        LocalIdentity::new(identity, log)
    }

    #[test]
    fn the_cluster_id_from_peers_ignores_their_order() {
        let a = cluster_id_from_peers(&[(1, "a:1".into()), (2, "b:2".into())]);
        let b = cluster_id_from_peers(&[(2, "b:2".into()), (1, "a:1".into())]);
        let other = cluster_id_from_peers(&[(1, "a:1".into()), (2, "b:3".into())]);
        assert_eq!(a, b);
        assert_ne!(a, other);
    }

    #[test]
    fn a_directory_keeps_its_identity_and_refuses_another_node_or_cluster() {
        let dir = tempfile::TempDir::new().expect("dir");
        let path = dir.path().join("log.redb");
        let first = {
            let log = LogStore::open(&path, 1).expect("log");
            load_or_create(&log, 1, Some("farm-a"), None).expect("created")
        };
        let log = LogStore::open(&path, 1).expect("log");
        let again = load_or_create(&log, 1, None, Some("derived".into())).expect("loaded");
        assert_eq!(
            again, first,
            "a restart keeps the identity, whatever --peers says"
        );
        assert!(matches!(
            load_or_create(&log, 2, None, None),
            Err(IdentityError::OtherNode {
                stored: 1,
                configured: 2,
                ..
            })
        ));
        assert!(matches!(
            load_or_create(&log, 1, Some("farm-b"), None),
            Err(IdentityError::OtherCluster { .. })
        ));
    }

    #[test]
    fn a_wiped_directory_gets_a_new_incarnation() {
        let (a, b) = (
            tempfile::TempDir::new().expect("a"),
            tempfile::TempDir::new().expect("b"),
        );
        assert_ne!(
            local(&a, Some("c")).get().incarnation,
            local(&b, Some("c")).get().incarnation
        );
    }

    #[test]
    fn peers_are_admitted_only_from_the_same_cluster_and_incarnation() {
        let dir = tempfile::TempDir::new().expect("dir");
        let me = local(&dir, Some("c"));
        assert_eq!(
            me.admit(&peer(Some("c"), 2, "i2"), Some("i2"), true),
            Ok(())
        );
        assert_eq!(me.admit(&peer(Some("c"), 2, "i2"), None, true), Ok(()));
        assert!(matches!(
            me.admit(&peer(Some("d"), 2, "i2"), Some("i2"), true),
            Err(Refusal::OtherCluster { .. })
        ));
        assert!(matches!(
            me.admit(&peer(None, 2, "i2"), None, true),
            Err(Refusal::OtherCluster { .. })
        ));
        assert!(matches!(
            me.admit(&peer(Some("c"), 2, "new"), Some("i2"), true),
            Err(Refusal::NewIncarnation { .. })
        ));
        assert!(matches!(
            me.check_answer(&peer(Some("c"), 3, "i3"), 2, None),
            Err(Refusal::OtherNode {
                expected: 2,
                found: 3
            })
        ));
    }

    #[test]
    fn a_node_without_a_cluster_adopts_the_first_one_durably() {
        let dir = tempfile::TempDir::new().expect("dir");
        let me = local(&dir, None);
        assert_eq!(me.admit(&peer(Some("c"), 2, "i2"), None, false), Ok(()));
        assert_eq!(me.get().cluster_id, None, "only a leader's request adopts");
        assert_eq!(me.admit(&peer(Some("c"), 2, "i2"), None, true), Ok(()));
        assert!(matches!(
            me.admit(&peer(Some("d"), 2, "i2"), None, true),
            Err(Refusal::OtherCluster { .. })
        ));
        drop(me);
        let log = LogStore::open(&dir.path().join("log.redb"), 1).expect("log");
        let stored = load_or_create(&log, 1, None, None).expect("loaded");
        assert_eq!(stored.cluster_id.as_deref(), Some("c"));
    }
}
