//! A Raft3D node: the farm of `app`, replicated with openraft, stored in redb, served
//! over HTTP with axum.
//!
//! # Layout
//! - [`config`]: `raft3d serve`'s flags and `node.json`, resolved into a `NodeConfig`.
//! - [`init`]: `raft3d init`, a new cluster's CA and node directories.
//! - [`backup`]: backups of the farm (`raft3d backup`, `GET /api/v1/backup`) and `raft3d restore`.
//! - [`pki`]: peer TLS: the cluster CA, node certificates, rustls configurations.
//! - [`cert_expiry`]: when a certificate lapses (for its metric).
//! - [`listener`]: the accept loop of both listeners: TLS, HTTP/1.1, connection limits.
//! - [`identity`]: cluster id, node id and data-directory incarnation; checks on peers.
//! - [`members`]: the leader's upkeep of the membership (client URLs, wiped-node rejoins).
//! - [`node`]: assembles a node (storage, Raft, listeners, bootstrap) and runs it.
//! - [`store`]: redb-backed Raft log and state machine (durability lives here).
//! - [`raft`]: openraft types, peer network client and peer-facing service.
//! - [`http`]: the client-facing REST API, metrics and health endpoints.
//! - [`ctl`]: `raft3d ctl` (and `add-node` / `remove-node`): the farm and the cluster
//!   from a terminal, through `raft3d-client`.
//! - [`local_cluster`]: `raft3d cluster`, N local nodes as child processes.
//! - [`write_timing`]: where the time of a client write goes, stage by stage.

pub mod backup;
pub mod cert_expiry;
pub mod config;
pub mod ctl;
pub mod driver;
pub mod files;
pub mod histogram;
pub mod http;
pub mod identity;
pub mod init;
pub mod listener;
pub mod local_cluster;
pub mod members;
pub mod node;
pub mod pki;
pub mod raft;
pub mod secret;
pub mod store;
pub mod write_timing;

pub use config::NodeConfig;
pub use node::{start, Node, StartError};
