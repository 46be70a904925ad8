//! Raft plumbing: the openraft type configuration, the node address type, the network
//! client ([`network`]) and the peer-facing HTTP service ([`service`]).
//!
//! Owns: how nodes talk to each other. Must not touch: farm rules (those live in `app`)
//! or client-facing HTTP (that is `crate::http`). See `DESIGN.md` beside this file.

pub mod batcher;
pub mod frame;
pub mod network;
pub mod read_index;
pub mod service;

use serde::{Deserialize, Serialize};
use std::fmt;

openraft::declare_raft_types!(
    /// Raft3D's openraft configuration: farm proposals in, farm outcomes out. An entry
    /// carries a batch of proposals (see [`batcher`]) and yields one outcome for each.
    pub TypeConfig:
        D = Vec<app::Proposal>,
        R = Vec<app::Outcome>,
        NodeId = u64,
        Node = NodeAddr,
        // A file of `snapshots/`, read and written a buffer at a time.
        SnapshotData = crate::store::snapshot_files::SnapshotFile,
);

/// Where a member can be reached: its Raft address (peers only) and, once learned, the
/// URL its clients use. Stored in the replicated membership, so every node knows every
/// other node's client URL (for redirects) without extra configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// `host:port` of the node's Raft listener.
    pub raft_addr: String,
    /// `http://host:port` of the node's client listener; `None` until the leader has
    /// asked the node (see [`crate::members::maintain`]).
    pub http_url: Option<String>,
    /// The incarnation of the node's data directory (`crate::identity`); `None` until the
    /// leader has asked the node. Peers refuse a node whose incarnation differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
    /// Set while a node that came back with a new data directory catches up as a
    /// learner; the leader promotes it to voter again once it has ([`crate::members`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejoining: bool,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.http_url {
            Some(url) => write!(f, "raft={} http={url}", self.raft_addr),
            None => write!(f, "raft={}", self.raft_addr),
        }
    }
}

/// Short aliases for openraft's generic types.
pub mod typ {
    use super::TypeConfig;

    pub type NodeId = u64;
    pub type Raft = openraft::Raft<TypeConfig>;
    pub type Entry = openraft::Entry<TypeConfig>;
    pub type LogId = openraft::LogId<NodeId>;
    pub type Vote = openraft::Vote<NodeId>;
    pub type StorageError = openraft::StorageError<NodeId>;
    pub type StoredMembership = openraft::StoredMembership<NodeId, super::NodeAddr>;
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, super::NodeAddr>;
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    pub type RaftMetrics = openraft::RaftMetrics<NodeId, super::NodeAddr>;
    pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
    pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, super::NodeAddr>;
    pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, super::NodeAddr>;
    pub type ForwardToLeader = openraft::error::ForwardToLeader<NodeId, super::NodeAddr>;
    pub type RPCError<E = openraft::error::Infallible> =
        openraft::error::RPCError<NodeId, super::NodeAddr, RaftError<E>>;
}
