//! Which printers this node drives: all the connected ones while it leads, none
//! otherwise. One [`PrinterDriver`] per printer and term; a new term, or a changed
//! connection, gets a new driver.
//!
//! Owns: starting and stopping drivers. Must not touch: a printer (the drivers do).

use super::moonraker::Moonraker;
use super::octoprint::OctoPrint;
use super::printer::{Host, PrinterDriver};
use crate::files::FileStore;
use crate::http::farm::Farm;
use crate::secret::ClusterSecret;
use app::domain::{Connection, ConnectionKind, SealedSecret};
use app::Id;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the supervisor looks at leadership and connections.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// What a driver was started for: when any of it changes, the driver is replaced.
#[derive(PartialEq)]
struct Assignment {
    term: u64,
    connection: Connection,
    key: Option<SealedSecret>,
}

struct Running {
    assignment: Assignment,
    task: JoinHandle<()>,
}

/// Runs the drivers this node should run, until the node stops.
pub async fn supervise(
    farm: Farm,
    files: FileStore,
    live: super::live::LiveBoard,
    secret: Option<Arc<ClusterSecret>>,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut running: BTreeMap<Id, Running> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = stopped.changed() => break,
        }
        let wanted = wanted(&farm);
        running.retain(|id, driver| {
            let keep = wanted.get(id) == Some(&driver.assignment) && !driver.task.is_finished();
            if !keep {
                driver.task.abort();
                live.forget(id);
            }
            keep
        });
        for (printer_id, assignment) in wanted {
            if running.contains_key(&printer_id) {
                continue;
            }
            let Some(host) = host_for(&printer_id, &assignment, secret.as_deref()) else {
                // Said once (in `host_for`); tried again when the connection changes.
                let task = tokio::spawn(std::future::pending());
                running.insert(printer_id, Running { assignment, task });
                continue;
            };
            let driver = PrinterDriver::new(
                farm.clone(),
                files.clone(),
                live.clone(),
                printer_id.clone(),
                host,
                assignment.term,
            );
            let id = printer_id.clone();
            let task = tokio::spawn(async move {
                let stop = driver.run().await;
                tracing::info!(printer = %id, %stop, "printer driver stopped");
            });
            running.insert(printer_id, Running { assignment, task });
        }
    }
    for driver in running.into_values() {
        driver.task.abort();
    }
    Ok(())
}

/// The drivers this node should run now: one per connected printer while it leads.
fn wanted(farm: &Farm) -> BTreeMap<Id, Assignment> {
    let Some(term) = farm.leading_term() else {
        return BTreeMap::new();
    };
    let applied = farm.local_state();
    applied
        .farm
        .printers()
        .filter_map(|printer| {
            let connection = printer.connection.clone()?;
            let assignment = Assignment {
                term,
                connection,
                key: applied.farm.printer_key(&printer.id).cloned(),
            };
            Some((printer.id.clone(), assignment))
        })
        .collect()
}

/// The host client for a printer's connection, with its key opened; `None` (logged)
/// when it cannot be made.
fn host_for(
    printer_id: &Id,
    assignment: &Assignment,
    secret: Option<&ClusterSecret>,
) -> Option<Host> {
    let key = match (&assignment.key, secret) {
        (None, _) => None,
        (Some(sealed), Some(secret)) => match secret.open(printer_id, sealed) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::error!(printer = %printer_id, %error, "cannot open the printer's API key: not driving it");
                return None;
            }
        },
        (Some(_), None) => {
            tracing::error!(printer = %printer_id, "this node has no cluster secret to open the printer's API key with: not driving it");
            return None;
        }
    };
    let url = &assignment.connection.url;
    let host = match assignment.connection.kind {
        ConnectionKind::OctoPrint => OctoPrint::new(url, key).map(Host::OctoPrint),
        ConnectionKind::Moonraker => Moonraker::new(url, key).map(Host::Moonraker),
    };
    host.inspect_err(|error| {
        tracing::error!(printer = %printer_id, %error, "cannot reach the printer's host");
    })
    .ok()
}
