//! Black-box tests of the REST API against a real, in-process, single-node cluster
//! (real redb files in a temp dir, real HTTP on port 0). Cluster behaviour across
//! processes is tested in `tests/cluster`.

mod helpers;

mod auth;
mod client;
mod cross_site;
mod errors;
mod etag;
mod events;
mod files;
mod https;
mod idempotency;
mod jobs;
mod limits;
mod membership;
mod openapi;
mod ops;
mod page;
mod paging;
mod peer;
mod peer_tls;
mod queue;
mod resources;
