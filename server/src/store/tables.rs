//! Every redb table, in one place. Values are JSON: small, self-describing and easy to
//! inspect; bump a file's [`Schema`] whenever a stored type changes shape.

use redb::TableDefinition;

/// Each file's layout version, stored in it under `meta["schema"]`. A file of a version
/// that a build does not know refuses to start; an older one it can upgrade is
/// upgraded at open (see [`Schema`]).
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub version: u64,
    /// Older versions this build upgrades at open.
    pub upgrades_from: &'static [u64],
}

/// `raft-log.redb`. 3: the entries are in `wal/`, not in the `log` table (a file of
/// version 2 has its entries moved there at open, `log_store::move_entries_to_wal`);
/// a build that reads only version 2 refuses it instead of seeing a log with a vote
/// and no entries.
pub const LOG_SCHEMA: Schema = Schema {
    version: 3,
    upgrades_from: &[2],
};
/// `state.redb`. 3: the current snapshot's bytes are a file in `snapshots/`, the table
/// holds only its meta (a file of version 2 has them moved there at open,
/// `state_machine::move_snapshot_to_file`); a build that reads only version 2 refuses it
/// instead of finding a snapshot without bytes.
pub const STATE_SCHEMA: Schema = Schema {
    version: 3,
    upgrades_from: &[2],
};

// ---- raft-log.redb ----
/// Log entries by index, up to schema 2 (since 3 they are in `wal/`; emptied at open).
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// `vote`, `committed`, `purged`, `schema`, `identity` (see `crate::identity`).
pub const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("log_meta");

// ---- state.redb ----
pub const PRINTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("printers");
pub const FILAMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("filaments");
pub const PRINT_JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("print_jobs");
pub const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// API tokens by id (their secrets' hashes, never the secrets). Created when missing, so
/// files from before tokens open as they are.
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Stored G-code files' metadata by id (their bytes are in the node's file store,
/// `crate::files`). Created when missing.
pub const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// Printers' API keys, sealed (`crate::secret`), by printer id. Created when missing.
pub const PRINTER_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("printer_keys");
/// The change stream's recent entries (`store::event_journal`), by 20-digit log index:
/// one `kind` TAB `data` line per event. Created when missing.
pub const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
/// Every table of the farm's rows (and its change stream): what a snapshot replaces.
pub const FARM_TABLES: [TableDefinition<&str, &[u8]>; 8] = [
    PRINTERS,
    FILAMENTS,
    PRINT_JOBS,
    IDEMPOTENCY,
    TOKENS,
    FILES,
    PRINTER_KEYS,
    EVENTS,
];
/// `last_applied`, `membership`, `clock_ms`, `schema`, `events_from`, `driver_term`.
pub const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
/// The current snapshot's `meta` (its bytes: `store::snapshot_files`); up to schema 2
/// also its `data`.
pub const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

pub const KEY_VOTE: &str = "vote";
pub const KEY_COMMITTED: &str = "committed";
pub const KEY_PURGED: &str = "purged";
pub const KEY_SCHEMA: &str = "schema";
/// In the log file, so that wiping the log wipes the identity with it.
pub const KEY_IDENTITY: &str = "identity";
pub const KEY_LAST_APPLIED: &str = "last_applied";
pub const KEY_MEMBERSHIP: &str = "membership";
pub const KEY_CLOCK: &str = "clock_ms";
/// The fencing term of the printers' driver (`app::Command::Drive`); absent: 0.
pub const KEY_DRIVER_TERM: &str = "driver_term";
/// The events table holds every event of the entries after this index (absent: after
/// `last_applied`, as in files from before the table).
pub const KEY_EVENTS_FROM: &str = "events_from";
pub const KEY_SNAPSHOT_META: &str = "meta";
/// Up to schema 2 only (moved into `snapshots/` at open).
pub const KEY_SNAPSHOT_DATA: &str = "data";
