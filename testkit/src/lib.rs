//! Real Raft3D node processes (work in progress).
