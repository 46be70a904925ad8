//! Raft timings for test clusters of real processes: short enough for quick failover,
//! long enough for a busy 2-core machine. Shared so the process and chaos suites test
//! the same configuration.

pub const RAFT_TIMINGS: [&str; 6] = [
    "--heartbeat-ms",
    "100",
    "--election-timeout-min-ms",
    "500",
    "--election-timeout-max-ms",
    "1000",
];
