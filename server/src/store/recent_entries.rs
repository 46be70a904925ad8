//! The newest Raft log entries, kept in memory beside the WAL (`wal/`).
//!
//! Replication reads back, at once, the entries the leader has just appended, and the
//! state machine reads them again when they commit. Served from redb, each read was a
//! blocking-pool hop, a read transaction and a JSON decode per entry: ~13% of the
//! leader's CPU at 16 clients (docs/perf.md). An entry is readable here from the moment
//! `append` is called, before its WAL write returns, so replication need not wait
//! for the local fsync to read it.
//!
//! Owns only memory: no I/O. The log store keeps it in step with the file (append,
//! truncate, purge); it is a cache, so forgetting entries is always safe.

use crate::raft::typ::Entry;
use std::collections::VecDeque;

/// Contiguous entries `first_index..first_index + len`, bounded by their encoded size.
pub(super) struct RecentEntries {
    /// Each entry with its encoded size in bytes.
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
    budget: usize,
    /// Entries below this index are on disk (`mark_durable`); the others are never
    /// evicted, as readers could not find them in the WAL yet.
    durable_end: u64,
}

impl RecentEntries {
    /// Keeps at most `budget` encoded bytes, except that entries not yet on disk are
    /// always kept (a leader may have several appends in flight).
    pub(super) fn new(budget: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            budget,
            durable_end: 0,
        }
    }

    /// The entries up to and including `index` are on disk.
    pub(super) fn mark_durable(&mut self, index: u64) {
        self.durable_end = self.durable_end.max(index + 1);
        self.evict();
    }

    fn evict(&mut self) {
        while self.bytes > self.budget
            && self
                .first_index()
                .is_some_and(|first| first < self.durable_end)
        {
            self.pop_front();
        }
    }

    /// Index of the oldest entry held.
    pub(super) fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(entry, _)| entry.log_id.index)
    }

    fn next_index(&self) -> Option<u64> {
        self.entries.back().map(|(entry, _)| entry.log_id.index + 1)
    }

    /// Adds a batch of consecutive entries (with their encoded sizes). A batch that
    /// does not follow the last entry held (after a snapshot install, say) replaces
    /// everything, so the entries held stay contiguous.
    pub(super) fn push(&mut self, batch: Vec<(Entry, usize)>) {
        let Some((first, _)) = batch.first() else {
            return;
        };
        if self.next_index() != Some(first.log_id.index) {
            self.clear();
        }
        // What comes now is not on disk, whatever was at its indexes before.
        self.durable_end = self.durable_end.min(first.log_id.index);
        for (entry, size) in batch {
            self.bytes += size;
            self.entries.push_back((entry, size));
        }
        self.evict();
    }

    /// Forgets `index` and everything after it (a follower's conflicting tail).
    pub(super) fn truncate_from(&mut self, index: u64) {
        self.durable_end = self.durable_end.min(index);
        while self.next_index().is_some_and(|next| next > index) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Forgets everything up to and including `index`.
    pub(super) fn purge_upto(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    /// Copies of the entries held in `start..end` (`end` exclusive, `None`: to the
    /// last one). Empty if `start` is past the last entry.
    pub(super) fn get(&self, start: u64, end: Option<u64>) -> Vec<Entry> {
        let Some(first) = self.first_index() else {
            return Vec::new();
        };
        let skip = usize::try_from(start.saturating_sub(first)).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .skip(skip)
            .map(|(entry, _)| entry)
            .take_while(|entry| end.is_none_or(|end| entry.log_id.index < end))
            .cloned()
            .collect()
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    fn entry(index: u64) -> (Entry, usize) {
        let log_id = LogId::new(CommittedLeaderId::new(1, 1), index);
        (
            Entry {
                log_id,
                payload: EntryPayload::Blank,
            },
            10,
        )
    }

    fn batch(indexes: std::ops::RangeInclusive<u64>) -> Vec<(Entry, usize)> {
        indexes.map(entry).collect()
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|entry| entry.log_id.index).collect()
    }

    #[test]
    fn serves_the_requested_range_of_what_it_holds() {
        let mut recent = RecentEntries::new(1000);
        recent.push(batch(5..=9));
        assert_eq!(indexes(&recent.get(6, Some(8))), vec![6, 7]);
        assert_eq!(indexes(&recent.get(0, None)), vec![5, 6, 7, 8, 9]);
        assert_eq!(indexes(&recent.get(9, Some(100))), vec![9]);
        assert!(recent.get(10, None).is_empty());
        assert!(recent.get(3, Some(5)).is_empty());
    }

    #[test]
    fn evicts_the_oldest_beyond_its_budget_but_never_what_is_not_on_disk() {
        let mut recent = RecentEntries::new(30);
        recent.push(batch(1..=3));
        recent.mark_durable(3);
        recent.push(batch(4..=5));
        assert_eq!(recent.first_index(), Some(3));
        recent.push(batch(6..=10));
        recent.push(batch(11..=12));
        assert_eq!(
            recent.first_index(),
            Some(4),
            "batches still in flight are kept whole, over budget"
        );
        recent.mark_durable(10);
        assert_eq!(indexes(&recent.get(0, None)), vec![10, 11, 12]);
        // New entries at truncated indexes are not on disk, though the old ones were.
        recent.truncate_from(10);
        recent.push(batch(10..=14));
        assert_eq!(recent.first_index(), Some(10));
    }

    #[test]
    fn a_batch_that_does_not_follow_replaces_everything() {
        let mut recent = RecentEntries::new(1000);
        recent.push(batch(1..=3));
        recent.push(batch(10..=11));
        assert_eq!(indexes(&recent.get(0, None)), vec![10, 11]);
    }

    #[test]
    fn truncate_and_purge_forget_their_side() {
        let mut recent = RecentEntries::new(1000);
        recent.push(batch(1..=10));
        recent.truncate_from(8);
        recent.purge_upto(2);
        assert_eq!(indexes(&recent.get(0, None)), vec![3, 4, 5, 6, 7]);
        recent.push(batch(8..=8));
        assert_eq!(indexes(&recent.get(7, None)), vec![7, 8]);
        recent.purge_upto(100);
        assert_eq!(recent.first_index(), None);
        recent.push(batch(200..=201));
        assert_eq!(recent.first_index(), Some(200));
    }
}
