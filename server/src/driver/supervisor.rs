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
use app::command::DriverReport;
use app::domain::{Connection, ConnectionKind, PrinterState, PrinterStatus, SealedSecret, Text};
use app::{Command, Id};
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
    task: DriverTask,
}

/// A driver's task, aborted when dropped: a driver holds the node's `Farm` (its Raft and
/// its storage), so one left running after its supervisor (a node shut down, in-process
/// restarts in tests) would keep the node's database files open.
struct DriverTask(JoinHandle<()>);

impl DriverTask {
    /// Aborts the task and waits until it is gone.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for DriverTask {
    fn drop(&mut self) {
        self.0.abort();
    }
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
            let keep = wanted.get(id) == Some(&driver.assignment) && !driver.task.0.is_finished();
            if !keep {
                live.forget(id);
            }
            keep // a driver not kept is aborted as it is dropped
        });
        for (printer_id, assignment) in wanted {
            if running.contains_key(&printer_id) {
                continue;
            }
            let host = match host_for(&printer_id, &assignment, secret.as_deref()) {
                Ok(host) => host,
                Err(why) => {
                    // Said once, on the printer itself (and logged); tried again when the
                    // connection or the term changes.
                    tracing::error!(printer = %printer_id, "not driving the printer: {why}");
                    let report = cannot_drive(&printer_id, &why);
                    let farm = farm.clone();
                    let term = assignment.term;
                    let task = DriverTask(tokio::spawn(async move {
                        if let Err(error) =
                            farm.propose(Command::Drive { term, report }, None).await
                        {
                            tracing::debug!(%error, "saying why a printer is not driven failed");
                        }
                        std::future::pending::<()>().await
                    }));
                    running.insert(printer_id, Running { assignment, task });
                    continue;
                }
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
            let task = DriverTask(tokio::spawn(async move {
                let stop = driver.run().await;
                tracing::info!(printer = %id, %stop, "printer driver stopped");
            }));
            running.insert(printer_id, Running { assignment, task });
        }
    }
    for driver in running.into_values() {
        driver.task.stop().await;
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

/// The host client for a printer's connection, with its key opened; why not when it
/// cannot be made (as the printer's status will say it).
fn host_for(
    printer_id: &Id,
    assignment: &Assignment,
    secret: Option<&ClusterSecret>,
) -> Result<Host, String> {
    let key = match (&assignment.key, secret) {
        (None, _) => None,
        (Some(sealed), Some(secret)) => match secret.open(printer_id, sealed) {
            Ok(key) => Some(key),
            Err(_) => {
                return Err(
                    "the leader cannot open the printer's API key with its cluster \
                            secret (was cluster.secret replaced?): connect the printer again"
                        .to_owned(),
                )
            }
        },
        (Some(_), None) => {
            return Err(
                "the leader has no cluster secret (cluster.secret) to open the \
                        printer's API key with"
                    .to_owned(),
            )
        }
    };
    let url = &assignment.connection.url;
    let host = match assignment.connection.kind {
        ConnectionKind::OctoPrint => OctoPrint::new(url, key).map(Host::OctoPrint),
        ConnectionKind::Moonraker => Moonraker::new(url, key).map(Host::Moonraker),
    };
    host.map_err(|error| format!("no client for the printer's host: {error}"))
}

/// The status that says why the leader does not drive a printer.
fn cannot_drive(printer_id: &Id, why: &str) -> DriverReport {
    DriverReport::Status {
        printer_id: printer_id.clone(),
        status: PrinterStatus {
            state: PrinterState::Error,
            message: Text::parse(why).ok(),
            job_id: None,
            since: None,
        },
    }
}
