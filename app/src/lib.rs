//! What a Raft3D farm *means*: its data model, its rules and the shapes of its API.
//!
//! Everything in this crate is pure: no tokio, no axum, no openraft, no redb, no files,
//! no clocks, no randomness. The server decides *when* things happen and stores them;
//! this crate decides *what* they mean, so every rule can be unit-tested without a cluster
//! and reused by the dashboard for early feedback.
//!
//! # Layout
//! - [`domain`]: one module per noun (printer, filament, print job) with the validation
//!   and status rules for each.
//! - [`command`]: [`Proposal`] and [`Command`], the only things ever written to the Raft log.
//! - [`state`]: [`FarmState`], the replicated state machine: a deterministic function of
//!   the log, including filament reservation accounting and idempotency records.
//! - [`api`]: request parsing (JSON → validated domain values) and the error body
//!   (`application/problem+json`) shared by the server, the CLI and the UI.
//! - [`digest`]: a stable, order-independent digest of the state, used to compare replicas.

pub mod api;
pub mod command;
pub mod digest;
pub mod domain;
pub mod state;

pub use command::{Command, IdempotencyClaim, Proposal};
pub use domain::Id;
pub use domain::{
    AccessRole, ApiToken, Filament, FilamentType, JobStatus, PrintJob, Printer, Timestamp,
    TokenView,
};
pub use state::{
    Change, Entity, EventKind, FarmEvent, FarmRestore, FarmSnapshot, FarmState, Outcome, Rejection,
};
