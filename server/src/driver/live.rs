//! What the connected printers report right now (progress, time left, temperatures):
//! kept in memory, never in the log (it changes every second).
//!
//! On the leader, its drivers write it ([`LiveBoard::observe`]); every other node copies
//! the leader's board about once a second ([`relay`], over the peer channel), so any node
//! answers `GET /api/v1/telemetry` a second or two behind the printers at most. Entries
//! not refreshed for [`STALE_AFTER`] are dropped: a printer nobody drives any more shows
//! no live values rather than old ones.

use super::host::HostReport;
use crate::http::farm::Farm;
use app::domain::job::job_of_printer_file;
use app::domain::{PrinterLive, PrinterState, Temperature};
use app::Id;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Live values older than this are not shown.
pub const STALE_AFTER: Duration = Duration::from_secs(15);
/// How often a follower copies the leader's board.
const RELAY_EVERY: Duration = Duration::from_millis(1000);

/// The printers' live values on this node. Cheap to clone.
#[derive(Clone, Default)]
pub struct LiveBoard {
    printers: Arc<Mutex<BTreeMap<Id, PrinterLive>>>,
}

impl LiveBoard {
    /// Records what a driver just heard from a printer's host.
    pub fn observe(&self, printer_id: &Id, report: &HostReport) {
        let printing = matches!(report.state, PrinterState::Printing | PrinterState::Paused);
        let live = PrinterLive {
            printer_id: printer_id.clone(),
            state: report.state,
            file: report.file.clone(),
            job_id: report
                .file
                .as_deref()
                .filter(|_| printing)
                .and_then(job_of_printer_file),
            progress: report.progress,
            seconds_left: report.seconds_left,
            nozzle: report.nozzle.map(temperature),
            bed: report.bed.map(temperature),
            observed_ms: now_ms(),
        };
        self.lock().insert(printer_id.clone(), live);
    }

    /// Forgets a printer (its host did not answer, or it is no longer driven here).
    pub fn forget(&self, printer_id: &Id) {
        self.lock().remove(printer_id);
    }

    /// The fresh entries, in printer id order.
    pub fn snapshot(&self) -> Vec<PrinterLive> {
        let horizon = now_ms().saturating_sub(STALE_AFTER.as_millis() as u64);
        let mut printers = self.lock();
        printers.retain(|_, live| live.observed_ms >= horizon);
        printers.values().cloned().collect()
    }

    /// Replaces the whole board with the leader's.
    fn replace(&self, from_leader: Vec<PrinterLive>) {
        let board = from_leader
            .into_iter()
            .map(|live| (live.printer_id.clone(), live))
            .collect();
        *self.lock() = board;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Id, PrinterLive>> {
        // A panic while holding it leaves a map that is still whole: keep serving it.
        self.printers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn temperature(t: super::host::Temperature) -> Temperature {
    Temperature {
        actual: t.actual,
        target: t.target,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// On a follower, copies the leader's board once a second; on the leader, does nothing
/// (its drivers write the board).
pub async fn relay(
    farm: Farm,
    board: LiveBoard,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RELAY_EVERY) => {}
            _ = stopped.changed() => return Ok(()),
        }
        let leader = farm.leader();
        let (Some(id), Some(node)) = (leader.id, leader.node) else {
            continue;
        };
        if id == farm.id() {
            continue;
        }
        match farm.network().telemetry(id, &node).await {
            Ok(from_leader) => board.replace(from_leader),
            Err(error) => tracing::debug!(%error, "copying the leader's printer telemetry failed"),
        }
    }
}
