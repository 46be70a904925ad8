//! Cluster tests over real `raft3d` processes: each test starts its own nodes on free
//! ports with their own temp data dirs, kills them with SIGKILL through their `Child`
//! handles, restarts and wipes them, and checks what clients see over HTTP.

mod harness;

mod backup;
mod concurrency;
mod ctl;
mod election;
mod events;
mod failover;
mod fast_restart;
mod idempotency;
mod local_cluster;
mod membership;
mod monitoring;
mod printing;
mod quiet_start;
mod snapshot;
mod wipe;
