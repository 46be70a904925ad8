//! [`EventJournal`]: the recent changes of the farm, by log index, for the change stream
//! (`GET /api/v1/events`).
//!
//! Every replica applies the same entries in the same order and `app::FarmState` turns
//! each proposal into the same events, so an event's position, the log index of its
//! entry plus its place in the entry, means the same thing on every node: a client may
//! resume on any member exactly where it left off.
//!
//! The journal holds the events of the entries after `from` up to the applied index, in
//! memory, bounded by [`MAX_BYTES`] (the oldest entries go first and `from` moves up).
//! It is stored in `state.redb` with the farm rows ([`Stored`]), so a restarted node
//! resumes what it held at the position its file reached (and re-applying the log adds
//! the rest); it is emptied when a snapshot replaces the farm. A position
//! before `from` gets [`Read::Reset`]: the client must read the lists again.
//!
//! Writes never wait for readers: the state machine appends under a short lock and
//! readers copy `Arc`s out of it; a slow reader only falls behind, and if it falls out
//! of the window, it is told to reset.
//!
//! Owns: which events a position resumes with. Must not touch: HTTP (the stream's
//! framing is `http::events`) or the farm itself.

use app::FarmEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Memory the journal may hold (encoded events and their bookkeeping, as counted by
/// `EntryEvents::bytes`); the oldest entries are dropped beyond. At ~2 events of ~200
/// bytes per write that is ~15k writes: days of a print shop, ~15 s of a benchmark at
/// 1,000 writes/s (positions older than that get `reset`).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// One event, encoded once for every subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// `event:` of the stream, e.g. `job.status`.
    pub kind: &'static str,
    /// `data:`: the object after the change, as JSON on one line.
    pub data: String,
}

/// The events of one log entry (entries without events are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryEvents {
    pub index: u64,
    pub events: Vec<EncodedEvent>,
}

impl EntryEvents {
    fn encode(index: u64, events: Vec<FarmEvent>) -> Self {
        let events = events
            .into_iter()
            .map(|event| EncodedEvent {
                kind: event.kind.as_str(),
                // Plain structs of strings and numbers: serialising cannot fail.
                data: serde_json::to_string(&event.data).unwrap_or_default(),
            })
            .collect();
        Self { index, events }
    }

    /// Heap bytes held for this entry: the JSON, and per event its `String` and `Vec`
    /// slot, plus the entry's `Arc`, `Vec` and queue slot (allocator rounding included
    /// roughly).
    fn bytes(&self) -> usize {
        96 + self.events.iter().map(|e| e.data.len() + 64).sum::<usize>()
    }
}

/// What an append changed in the journal, for `state.redb`'s `events` table (one row
/// per entry with events, [`EntryEvents::to_row`]) and its `events_from` mark: written
/// with the farm rows and the position they bring the farm to, so that after a restart
/// the journal is the one the node had at that position, and re-applying the entries
/// after it adds the rest.
#[derive(Debug, Default)]
pub struct Stored {
    pub added: Vec<(u64, Vec<u8>)>,
    pub dropped: Vec<u64>,
    /// The new `from`, when it moved.
    pub from: Option<u64>,
}

/// The key of an entry's row: the index with 20 digits, so text order is log order.
pub fn row_key(index: u64) -> String {
    format!("{index:020}")
}

impl EntryEvents {
    /// The stored form: one line per event, `kind` TAB `data` (the JSON has no line
    /// breaks), so the data comes back byte for byte.
    pub fn to_row(&self) -> Vec<u8> {
        let mut row = String::new();
        for event in &self.events {
            row.push_str(event.kind);
            row.push('\t');
            row.push_str(&event.data);
            row.push('\n');
        }
        row.into_bytes()
    }

    /// Reads [`EntryEvents::to_row`] back; `None` if it is not one.
    pub fn from_row(index: u64, row: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(row).ok()?;
        let events = text
            .lines()
            .map(|line| {
                let (kind, data) = line.split_once('\t')?;
                let kind = app::EventKind::ALL
                    .into_iter()
                    .map(app::EventKind::as_str)
                    .find(|k| *k == kind)?;
                Some(EncodedEvent {
                    kind,
                    data: data.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { index, events })
    }
}

/// Where a subscriber is: everything up to entry `index` seen, or, with `seen`, only
/// the first `seen` events of entry `index` (a stream cut in the middle of an entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub index: u64,
    pub seen: Option<usize>,
}

impl Position {
    pub fn after(index: u64) -> Self {
        Self { index, seen: None }
    }

    /// `N` (all of entry N) or `N.k` (its first k events), as the stream's ids read.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match raw.split_once('.') {
            None if digits(raw) => Some(Self::after(raw.parse().ok()?)),
            Some((index, seen)) if digits(index) && digits(seen) => Some(Self {
                index: index.parse().ok()?,
                seen: Some(seen.parse().ok()?),
            }),
            _ => None,
        }
    }
}

/// What a subscriber at a position gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The entries after the position (the first one possibly without the events
    /// already seen: `skip` of them).
    Events {
        entries: Vec<Arc<EntryEvents>>,
        skip: usize,
    },
    /// Nothing new: wait for the applied index to move past `applied`.
    UpToDate { applied: u64 },
    /// The position is older than the journal holds: read the lists again (at least at
    /// `applied`) and go on from there.
    Reset { applied: u64 },
}

struct Window {
    /// Every event of every entry after `from` (up to `applied`) is in `entries`.
    from: u64,
    applied: u64,
    entries: VecDeque<Arc<EntryEvents>>,
    bytes: usize,
}

/// See the module doc. Cheap to clone.
#[derive(Clone)]
pub struct EventJournal {
    window: Arc<Mutex<Window>>,
    applied: watch::Sender<u64>,
}

impl EventJournal {
    /// An empty journal that starts after entry `from`.
    pub fn new(from: u64) -> Self {
        Self::restore(from, from, Vec::new())
    }

    /// The journal `state.redb` holds: every event of the entries after `from`, up to
    /// `applied` (see [`Stored`]).
    pub fn restore(from: u64, applied: u64, entries: Vec<EntryEvents>) -> Self {
        let entries: VecDeque<Arc<EntryEvents>> = entries
            .into_iter()
            .filter(|e| e.index > from && e.index <= applied)
            .map(Arc::new)
            .collect();
        let bytes = entries.iter().map(|e| e.bytes()).sum();
        Self {
            window: Arc::new(Mutex::new(Window {
                from,
                applied,
                entries,
                bytes,
            })),
            applied: watch::channel(applied).0,
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records what entries up to `applied` produced (`(index, events)` in log order);
    /// returns what `state.redb` must store to hold the same journal.
    pub fn append(&self, applied: u64, produced: Vec<(u64, Vec<FarmEvent>)>) -> Stored {
        let encoded: Vec<Arc<EntryEvents>> = produced
            .into_iter()
            .filter(|(_, events)| !events.is_empty())
            .map(|(index, events)| Arc::new(EntryEvents::encode(index, events)))
            .collect();
        let mut stored = Stored {
            added: encoded.iter().map(|e| (e.index, e.to_row())).collect(),
            ..Stored::default()
        };
        {
            let mut window = self.window();
            for entry in encoded {
                window.bytes += entry.bytes();
                window.entries.push_back(entry);
            }
            window.applied = window.applied.max(applied);
            while window.bytes > MAX_BYTES {
                let Some(oldest) = window.entries.pop_front() else {
                    break;
                };
                window.bytes -= oldest.bytes();
                window.from = oldest.index;
                stored.dropped.push(oldest.index);
                stored.from = Some(oldest.index);
            }
        }
        self.applied.send_replace(applied);
        stored
    }

    /// A snapshot replaced the farm at `index`: nothing before it can be resumed.
    pub fn restart_at(&self, index: u64) {
        {
            let mut window = self.window();
            window.entries.clear();
            window.bytes = 0;
            window.from = index;
            window.applied = index;
        }
        self.applied.send_replace(index);
    }

    /// The applied index, watched: a subscriber waits on it when up to date.
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// What comes after `position`: entries up to about `budget` bytes (at least one).
    pub fn read(&self, position: Position, budget: usize) -> Read {
        let window = self.window();
        let applied = window.applied;
        // Entry `index` itself is needed when it was seen only in part.
        let needs_entry = position.seen.is_some();
        let too_old = if needs_entry {
            position.index <= window.from
        } else {
            position.index < window.from
        };
        if too_old {
            return Read::Reset { applied };
        }
        let start = window.entries.partition_point(|e| e.index < position.index);
        let (start, skip) = match (window.entries.get(start), position.seen) {
            (Some(entry), Some(seen)) if entry.index == position.index => {
                if seen >= entry.events.len() {
                    (start + 1, 0)
                } else {
                    (start, seen)
                }
            }
            (Some(entry), _) if entry.index == position.index => (start + 1, 0),
            _ => (start, 0),
        };
        let mut entries = Vec::new();
        let mut bytes = 0;
        for entry in window.entries.range(start..) {
            if !entries.is_empty() && bytes + entry.bytes() > budget {
                break;
            }
            bytes += entry.bytes();
            entries.push(entry.clone());
        }
        if entries.is_empty() {
            Read::UpToDate { applied }
        } else {
            Read::Events { entries, skip }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::{Entity, EventKind, Id, Printer};

    fn event(name: &str) -> FarmEvent {
        FarmEvent {
            kind: EventKind::PrinterCreated,
            data: Entity::Printer(Printer::new(
                Id::parse(name).expect("id"),
                app::domain::Text::parse("Prusa").expect("text"),
                app::domain::Text::parse("MK4").expect("text"),
            )),
        }
    }

    /// The printer ids a read returns, in order.
    fn names(read: &Read) -> Vec<String> {
        let Read::Events { entries, skip } = read else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (n, entry) in entries.iter().enumerate() {
            let from = if n == 0 { *skip } else { 0 };
            for e in &entry.events[from..] {
                let v: serde_json::Value = serde_json::from_str(&e.data).expect("json");
                out.push(format!(
                    "{}:{}",
                    entry.index,
                    v["id"].as_str().unwrap_or("?")
                ));
            }
        }
        out
    }

    #[test]
    fn positions_parse_as_index_or_index_dot_seen() {
        assert_eq!(Position::parse("42"), Some(Position::after(42)));
        assert_eq!(
            Position::parse(" 42.1 "),
            Some(Position {
                index: 42,
                seen: Some(1)
            })
        );
        for bad in [
            "",
            "-1",
            "4.2.1",
            "a",
            "4.",
            ".1",
            "1e3",
            "99999999999999999999999",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_position_resumes_exactly_after_what_was_seen() {
        let journal = EventJournal::new(10);
        journal.append(
            14,
            vec![
                (11, vec![event("a")]),
                (12, vec![]),
                (13, vec![event("b"), event("c"), event("d")]),
                (14, vec![event("e")]),
            ],
        );
        let all = journal.read(Position::after(10), usize::MAX);
        assert_eq!(names(&all), ["11:a", "13:b", "13:c", "13:d", "14:e"]);
        assert_eq!(
            names(&journal.read(Position::after(12), usize::MAX)),
            ["13:b", "13:c", "13:d", "14:e"]
        );
        let mid = Position {
            index: 13,
            seen: Some(2),
        };
        assert_eq!(names(&journal.read(mid, usize::MAX)), ["13:d", "14:e"]);
        let whole = Position {
            index: 13,
            seen: Some(3),
        };
        assert_eq!(names(&journal.read(whole, usize::MAX)), ["14:e"]);
        assert_eq!(
            journal.read(Position::after(14), usize::MAX),
            Read::UpToDate { applied: 14 }
        );
        // Ahead of what this node applied (another node was further): wait for it.
        assert_eq!(
            journal.read(Position::after(20), usize::MAX),
            Read::UpToDate { applied: 14 }
        );
        // A small budget still makes progress, one entry at a time.
        assert_eq!(names(&journal.read(Position::after(10), 1)), ["11:a"]);
    }

    #[test]
    fn positions_before_the_window_or_a_snapshot_are_reset() {
        let journal = EventJournal::new(10);
        journal.append(11, vec![(11, vec![event("a")])]);
        assert_eq!(
            journal.read(Position::after(9), usize::MAX),
            Read::Reset { applied: 11 }
        );
        assert_eq!(
            names(&journal.read(Position::after(10), usize::MAX)),
            ["11:a"]
        );
        let part_of_10 = Position {
            index: 10,
            seen: Some(0),
        };
        assert_eq!(
            journal.read(part_of_10, usize::MAX),
            Read::Reset { applied: 11 }
        );
        journal.restart_at(500);
        assert_eq!(
            journal.read(Position::after(11), usize::MAX),
            Read::Reset { applied: 500 }
        );
        assert_eq!(
            journal.read(Position::after(500), usize::MAX),
            Read::UpToDate { applied: 500 }
        );
    }

    #[test]
    fn a_restored_journal_resumes_like_the_one_it_was_stored_from() {
        let journal = EventJournal::new(10);
        let stored = journal.append(
            13,
            vec![(11, vec![event("a")]), (13, vec![event("b"), event("c")])],
        );
        assert!(stored.dropped.is_empty() && stored.from.is_none());
        let rows: Vec<EntryEvents> = stored
            .added
            .iter()
            .map(|(index, row)| EntryEvents::from_row(*index, row).expect("a stored row"))
            .collect();
        let restored = EventJournal::restore(10, 13, rows);
        for position in [
            Position::after(10),
            Position::after(11),
            Position {
                index: 13,
                seen: Some(1),
            },
        ] {
            assert_eq!(
                restored.read(position, usize::MAX),
                journal.read(position, usize::MAX)
            );
        }
        assert_eq!(EntryEvents::from_row(1, b"no.such\t{}\n"), None);
        assert!(row_key(9) < row_key(10), "keys sort in log order");
    }

    #[test]
    fn memory_is_bounded_and_the_window_moves_up() {
        let journal = EventJournal::new(0);
        let per_entry = EntryEvents::encode(1, vec![event("x")]).bytes();
        let entries = MAX_BYTES / per_entry + 100;
        let mut dropped = Vec::new();
        for index in 1..=entries as u64 {
            dropped.extend(
                journal
                    .append(index, vec![(index, vec![event("x")])])
                    .dropped,
            );
        }
        assert_eq!(
            dropped.first(),
            Some(&1),
            "the store is told what to delete"
        );
        assert!(journal.window().bytes <= MAX_BYTES);
        assert!(matches!(
            journal.read(Position::after(1), usize::MAX),
            Read::Reset { .. }
        ));
        let from = journal.window().from;
        assert!(matches!(
            journal.read(Position::after(from), 1),
            Read::Events { .. }
        ));
    }
}
