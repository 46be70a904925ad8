//! A Raft3D node: openraft consensus over redb storage, serving the farm's REST API.
pub mod raft;
pub mod store;
