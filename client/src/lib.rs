//! The Rust client of Raft3D's REST API (work in progress).
