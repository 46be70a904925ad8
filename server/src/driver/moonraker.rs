//! Moonraker's HTTP API (Klipper's API server), in the terms of [`super::host`], with the
//! same methods as [`super::octoprint::OctoPrint`].
//!
//! No Klipper runs here: what this relies on is Moonraker's documentation
//! (`docs/external_api/*.md` and `docs/printer_objects.md` of Arksine/moonraker at
//! d5ee171, published at <https://moonraker.readthedocs.io/en/latest/>; the former
//! `docs/web_api.md` was split into these pages), checked against Moonraker's source
//! where the documentation is silent (named below). The integration test
//! `server/tests/moonraker` runs it against a fake Moonraker that answers as documented.
//!
//! # Endpoints
//! Every dynamic endpoint answers `{"result": …}` and fails with
//! `{"error": {"code", "message"}}` ("Introduction" › "HTTP API Overview").
//! - [`Moonraker::probe`]: `GET /printer/info` ("Printer Administration" › "Get Klippy
//!   host information"): Klippy's `state`; only when it is `ready`,
//!   `GET /printer/objects/query?print_stats&virtual_sdcard&extruder&heater_bed`
//!   ("Printer Administration" › "Query printer object status", the query-string form;
//!   the objects in "Printer Objects" › `print_stats`, `virtual_sdcard`, `extruder`,
//!   `heater_bed`). Moonraker registers `/printer/info` only once Klippy has connected
//!   (Klipper's own endpoints, `klippy_connection.py` `_request_endpoints`): its 404 is
//!   then checked with `GET /server/info` ("Server Administration" › "Query Server Info",
//!   `klippy_state`); 503 "Klippy Host not connected" says the same after a disconnect.
//! - [`Moonraker::upload`]: `POST /server/files/upload`, multipart, fields `root=gcodes`
//!   and `file` (streamed from disk; "File Management" › "File upload"), without `print`. Its answer is not
//!   wrapped in `result` (the documented example is not, and the source finishes it
//!   unwrapped): only its status (201) is read.
//! - [`Moonraker::record`]: `GET /server/history/list?limit=100&start=…&order=desc`
//!   ("Job History" › "Get job list"), every page, counting this file's jobs by `status`;
//!   then, if none ended, `GET /server/files/metadata?filename=<name>` ("File Management"
//!   › "Get GCode Metadata"; 404 "Metadata not available for <…>" when there is no such
//!   file) for whether the file is there; when the newest ended job was `interrupted` or
//!   `klippy_disconnect`, `GET /printer/objects/query?print_stats` ("The print record").
//! - [`Moonraker::start`]: `GET /printer/objects/query?print_stats`, then
//!   `POST /printer/print/start?filename=<name>` ("Print Job Management" › "Start a print
//!   job").
//! - [`Moonraker::cancel`]: `GET /printer/objects/query?print_stats`, then
//!   `POST /printer/print/cancel` ("Print Job Management" › "Cancel a print job").
//!
//! # States
//! Klippy's `state` (`/printer/info`, table "Klippy State") first, then `print_stats.state`
//! ("Printer Objects" › `print_stats`, table "Print Stats State"). The words stay in
//! [`HostReport::message`] (`standby`, `error: <print_stats.message>`,
//! `Klippy shutdown: <state_message>`, …); any other word is an error, never a guess.
//!
//! | Moonraker says | state |
//! | --- | --- |
//! | no answer | [`HostError::Unreachable`] (the driver shows Offline) |
//! | `/printer/info` 503, or 404 and `/server/info` `klippy_state` `disconnected`/`startup` | Offline |
//! | Klippy `startup` | Offline |
//! | Klippy `shutdown`, `error` | Error (`state_message`) |
//! | Klippy `ready`, `print_stats.state` `standby` | Idle |
//! | … `complete`, `cancelled` (the last job ended; ready for a new one) | Idle |
//! | … `printing` | Printing |
//! | … `paused` | Paused |
//! | … `error` (the last job ended with an error) | Error (`print_stats.message`) |
//! | … no `print_stats` (no `[virtual_sdcard]` in `printer.cfg`) | Error |
//! | any other word | Error |
//!
//! Progress (`virtual_sdcard.progress` × 100) and time left (from `print_duration` and
//! progress, as "Introduction" › "Basic Print Status" computes it) are reported while
//! Printing or Paused only: both persist after a print ends ("Printer Objects" ›
//! `virtual_sdcard`, note). The file is `print_stats.filename` whenever it is not empty.
//! Temperatures are `extruder` and `heater_bed` (`temperature`, `target`), when Klippy is
//! ready and the printer has them (a missing object is left out, not an error).
//!
//! # Never replacing a print
//! Klipper's `SDCARD_PRINT_FILE`, which `print/start` runs, refuses only while the
//! virtual SD card is *working* ("SD busy"): a **paused** print is reset and replaced by
//! the new file (`klippy/extras/virtual_sdcard.py`; Moonraker then records the paused job
//! as `cancelled`). So [`Moonraker::start`] asks for `print_stats.state` right before it
//! sends the start and refuses ([`HostError::Conflict`]) unless it is `standby`,
//! `complete`, `cancelled` or `error` (what Moonraker itself counts as idle,
//! `job_state.py` `_check_idle`). Between that query and the start are milliseconds; a
//! print started by someone else in between makes Klipper answer "SD busy" (a
//! Conflict); one started *and paused* in between would still be replaced.
//! [`Moonraker::cancel`] likewise asks first, and refuses unless a print runs or is
//! paused (Klipper's cancel does not refuse on an idle printer, and may run a macro).
//!
//! # The print record
//! Moonraker keeps no per-file counts: [`Moonraker::record`] reads the whole job history,
//! newest first, and counts this file's jobs: `completed` is a success; `cancelled`,
//! `error`, `klippy_shutdown`, `klippy_disconnect`, `interrupted` and any other ended
//! status a failure; `last_success` is the newest ended one. It differs from OctoPrint's
//! `prints` in these ways, the first three towards never starting a file twice:
//! - The history outlives the file: a file printed and then deleted on the host still
//!   has its record (`Some`), not `None`.
//! - A job of the file still `in_progress` is a [`HostError::Conflict`], not a record:
//!   `print_stats` says `complete` a moment before Moonraker ends the history entry
//!   (it learns of the change through its own subscription), and no count is given that
//!   could be read as "never printed" while a print is under way.
//! - A history that cannot be read (the `history` component not loaded: 404; more than
//!   10 000 entries) is an error, never "no prints".
//! - Klipper prints on while Moonraker restarts (its job is then `interrupted`) or loses
//!   Klippy (`klippy_disconnect`), and once back Moonraker records nothing when that
//!   print ends (`job_state.py` `_handle_started` starts no job; `history.py`
//!   `finish_job` has none to end). So when the newest ended job of the file is one of
//!   these two, `print_stats` is asked too: `complete` with this file as `filename` makes
//!   that job a success (Klipper's `print_stats` are of its last print, reset by the next
//!   one and by a Klipper restart).
//!
//! Entries the user deletes from the history are forgotten: the record is only as good as
//! the history.
//!
//! # Errors
//! No answer (refused, reset, timed out, a body cut short) is [`HostError::Unreachable`].
//! 401 (Moonraker's answer to a missing or wrong key, `authorization.py`) and 403 are
//! [`HostError::Unauthorized`], except a 403 on upload: Moonraker answers "File is loaded,
//! upload not permitted" when the file is the one loaded in Klipper, a
//! [`HostError::Conflict`]. 503 (Klippy not connected) is a Conflict; so is a 400 on
//! `/printer/print/*` (Klipper refused the G-code: "SD busy", …). Anything else is
//! [`HostError::Protocol`]. Moonraker's `traceback` field is never shown.
//!
//! # The API key
//! Sent as `X-Api-Key` ("Authorization and Authentication"), marked sensitive, and
//! nowhere else: not in URLs, not in errors (host texts are scrubbed of it too), not in
//! `Debug`, not in logs. A client Moonraker trusts by address (`trusted_clients`) is let
//! in whatever key it sends: a wrong key is refused only from an untrusted address.
//!
//! This file owns Moonraker's routes, JSON shapes, state tables, print record and status
//! mapping; the HTTP plumbing it shares with OctoPrint (client, key header, URL and name
//! checks, multipart upload, texts of failures) is `http_host`'s.
//!
//! # TLS
//! As for OctoPrint: `http://` works; an `https://` base URL is accepted, but every
//! request fails certificate verification until roots are configured for hosts.

use super::host::{HostError, HostReport, PrintRecord, Temperature};
use super::http_host::{check_name, clip, host_text, Answer, HttpHost, MAX_MESSAGE_CHARS};
use app::domain::PrinterState;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// A print command: Moonraker answers once Klipper has run the G-code, which waits for
/// the G-code queue (a homing or heating under way).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Job history entries asked for per request.
const HISTORY_PAGE: usize = 100;
/// History pages read at most before `record` gives up (10 000 entries).
const MAX_HISTORY_PAGES: usize = 100;

/// What the driver polls: every object the report needs.
const OBJECTS_QUERY: &str = "/printer/objects/query?print_stats&virtual_sdcard&extruder&heater_bed";
/// The print job's state only (before a start or cancel).
const PRINT_STATS_QUERY: &str = "/printer/objects/query?print_stats";
/// `print_stats.state`s in which a start replaces nothing.
const STARTABLE: [&str; 4] = ["standby", "complete", "cancelled", "error"];

/// One Moonraker instance, reached at its base URL with one API key (or none).
#[derive(Debug)]
pub struct Moonraker {
    host: HttpHost,
}

impl Moonraker {
    /// A Moonraker at `base_url` (`http(s)://host[:port][/path]`; no user, query or
    /// fragment), sending `api_key` when there is one. Nothing is sent yet.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, HostError> {
        Ok(Self {
            host: HttpHost::new(base_url, api_key)?,
        })
    }

    /// The base URL requests go to (normalised, no trailing `/`).
    pub fn base_url(&self) -> &str {
        self.host.base_url()
    }

    /// What the host says now: Klippy's state (`GET /printer/info`), and when it is
    /// ready the print job, progress and temperatures (`GET /printer/objects/query`).
    pub async fn probe(&self) -> Result<HostReport, HostError> {
        let path = "/printer/info";
        let answer = self.host.send(Method::GET, path, |r| r).await?;
        match answer.status.as_u16() {
            200..=299 => {}
            // "Klippy Host not connected": Moonraker runs, Klipper does not answer it.
            503 => {
                return Ok(offline(format!(
                    "Klippy: {}",
                    self.host.scrub(&refusal_text(&answer))
                )))
            }
            // Not registered yet: Klippy has not connected since Moonraker started.
            404 => return self.probe_server().await,
            _ => return Err(self.refusal(&Method::GET, path, &answer)),
        }
        let info: KlippyInfo = parse_result(&answer.body, "GET /printer/info")?;
        if let Some(report) = report_from_klippy(&info.state, info.state_message.as_deref()) {
            return Ok(report);
        }
        let answer = self.host.send(Method::GET, OBJECTS_QUERY, |r| r).await?;
        match answer.status.as_u16() {
            200..=299 => report_from_objects(&answer.body),
            // Klippy went away since /printer/info.
            503 => Ok(offline(format!(
                "Klippy: {}",
                self.host.scrub(&refusal_text(&answer))
            ))),
            _ => Err(self.refusal(&Method::GET, "/printer/objects/query", &answer)),
        }
    }

    /// `/printer/info` is not there: what `/server/info` says of Klippy.
    async fn probe_server(&self) -> Result<HostReport, HostError> {
        let path = "/server/info";
        let answer = self.host.send(Method::GET, path, |r| r).await?;
        if !answer.status.is_success() {
            return Err(self.refusal(&Method::GET, path, &answer));
        }
        let info: ServerInfo = parse_result(&answer.body, "GET /server/info")?;
        match report_from_klippy(&info.klippy_state, None) {
            Some(report) => Ok(report),
            // "ready", yet no /printer/info: not what Moonraker does.
            None => Err(HostError::Protocol(
                "GET /printer/info: 404 while /server/info says Klippy is ready".to_owned(),
            )),
        }
    }

    /// Stores the local `file` (`size` bytes, streamed from disk) as the file `name` in
    /// the `gcodes` root (replacing one of that name), without printing it.
    pub async fn upload(&self, name: &str, file: &Path, size: u64) -> Result<(), HostError> {
        let path = "/server/files/upload";
        let answer = self
            .host
            .upload(path, &[("root", "gcodes")], name, file, size)
            .await?;
        match answer.status.as_u16() {
            200..=299 => Ok(()),
            // "File is loaded, upload not permitted" (file_manager.py): not our key.
            403 => Err(HostError::Conflict(self.host.scrub(&refusal_text(&answer)))),
            _ => Err(self.refusal(&Method::POST, path, &answer)),
        }
    }

    /// How often the file `name` was printed to the end and failed, from the job
    /// history; `None`: never printed and not on the host. See the module docs ("The
    /// print record") for how it differs from OctoPrint's.
    pub async fn record(&self, name: &str) -> Result<Option<PrintRecord>, HostError> {
        check_name(name)?;
        let tally = self.history_of(name).await?;
        if tally.in_progress {
            return Err(HostError::Conflict(format!(
                "a job of {name} is still in progress in the host's job history"
            )));
        }
        if tally.record.success + tally.record.failure > 0 {
            let mut record = tally.record;
            if matches!(
                tally.last_status.as_deref(),
                Some("interrupted" | "klippy_disconnect")
            ) && self.completed_in_klipper(name).await?
            {
                // The newest ended entry is a print Moonraker lost sight of, and Klipper
                // says it ran this file to the end.
                record.success += 1;
                record.failure -= 1;
                record.last_success = Some(true);
            }
            return Ok(Some(record));
        }
        let path = format!("/server/files/metadata?filename={name}");
        let answer = self.host.send(Method::GET, &path, |r| r).await?;
        match answer.status {
            status if status.is_success() => Ok(Some(PrintRecord::default())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.refusal(&Method::GET, "/server/files/metadata", &answer)),
        }
    }

    /// Whether Klipper's `print_stats` says its last print was of `name` and completed.
    async fn completed_in_klipper(&self, name: &str) -> Result<bool, HostError> {
        let answer = self
            .host
            .send(Method::GET, PRINT_STATS_QUERY, |r| r)
            .await?;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            // Klippy away: it cannot say; the history's word stands.
            return Ok(false);
        }
        if !answer.status.is_success() {
            return Err(self.refusal(&Method::GET, "/printer/objects/query", &answer));
        }
        let objects: ObjectsAnswer = parse_result(&answer.body, "GET /printer/objects/query")?;
        Ok(objects.status.print_stats.is_some_and(|p| {
            p.state.as_deref() == Some("complete") && p.filename.as_deref() == Some(name)
        }))
    }

    /// This file's jobs in the whole history, newest first.
    async fn history_of(&self, name: &str) -> Result<Tally, HostError> {
        let mut tally = Tally::default();
        let mut seen = HashSet::new();
        for page in 0..MAX_HISTORY_PAGES {
            let path = format!(
                "/server/history/list?limit={HISTORY_PAGE}&start={}&order=desc",
                page * HISTORY_PAGE
            );
            let answer = self.host.send(Method::GET, &path, |r| r).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Err(HostError::Protocol(format!(
                    "GET /server/history/list: {} (is Moonraker's [history] component loaded?)",
                    self.host.scrub(&refusal_text(&answer))
                )));
            }
            if !answer.status.is_success() {
                return Err(self.refusal(&Method::GET, "/server/history/list", &answer));
            }
            let list: HistoryList = parse_result(&answer.body, "GET /server/history/list")?;
            let full = list.jobs.len() >= HISTORY_PAGE;
            tally.add(name, list.jobs, &mut seen);
            if !full {
                return Ok(tally);
            }
        }
        Err(HostError::Protocol(format!(
            "the host's job history has more than {} entries: cannot tell whether {name} was printed",
            MAX_HISTORY_PAGES * HISTORY_PAGE
        )))
    }

    /// Prints the file `name`. [`HostError::Conflict`] when a print runs or is paused
    /// (asked just before: a start would replace a paused print), or Klipper refuses.
    pub async fn start(&self, name: &str) -> Result<(), HostError> {
        check_name(name)?;
        let state = self.job_state().await?;
        if !STARTABLE.contains(&state.as_str()) {
            return Err(HostError::Conflict(format!(
                "the printer's job is {state}: a start would replace it"
            )));
        }
        let path = format!("/printer/print/start?filename={name}");
        self.command(&path).await
    }

    /// Cancels the running (or paused) print. [`HostError::Conflict`] when none runs.
    pub async fn cancel(&self) -> Result<(), HostError> {
        let state = self.job_state().await?;
        if !matches!(state.as_str(), "printing" | "paused") {
            return Err(HostError::Conflict(format!(
                "no print to cancel: the printer's job is {state}"
            )));
        }
        self.command("/printer/print/cancel").await
    }

    /// `print_stats.state` now.
    async fn job_state(&self) -> Result<String, HostError> {
        let answer = self
            .host
            .send(Method::GET, PRINT_STATS_QUERY, |r| r)
            .await?;
        if !answer.status.is_success() {
            return Err(self.refusal(&Method::GET, "/printer/objects/query", &answer));
        }
        let objects: ObjectsAnswer = parse_result(&answer.body, "GET /printer/objects/query")?;
        objects
            .status
            .print_stats
            .and_then(|p| p.state)
            .ok_or_else(|| {
                HostError::Protocol(
                    "Klipper reports no print_stats (no [virtual_sdcard] in printer.cfg?)"
                        .to_owned(),
                )
            })
    }

    /// A `POST /printer/print/…` command; Moonraker answers `"ok"`.
    async fn command(&self, path_and_query: &str) -> Result<(), HostError> {
        let answer = self
            .host
            .send(Method::POST, path_and_query, |r| r.timeout(COMMAND_TIMEOUT))
            .await?;
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.refusal(&Method::POST, path, &answer))
        }
    }

    /// The error for an answer that is not what we asked for (`path` without its query).
    fn refusal(&self, method: &Method, path: &str, answer: &Answer) -> HostError {
        let message = self.host.scrub(&refusal_text(answer));
        match answer.status.as_u16() {
            status @ (401 | 403) => HostError::Unauthorized { status, message },
            503 => HostError::Conflict(format!("Klippy: {message}")),
            400 if path.starts_with("/printer/print/") => HostError::Conflict(message),
            status => HostError::Protocol(format!("HTTP {status} on {method} {path}: {message}")),
        }
    }
}

/// Moonraker's words in a refusal: its `error.message` (a plain `error` string too), else
/// the body as text, else the status's name. Never the `traceback` Moonraker may add.
fn refusal_text(answer: &Answer) -> String {
    host_text(answer, |v| {
        let error = v.get("error")?;
        error
            .get("message")
            .and_then(|m| m.as_str())
            .or_else(|| error.as_str())
    })
}

/// `{"result": T}`, Moonraker's answer to every dynamic endpoint.
#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

fn parse_result<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, HostError> {
    serde_json::from_slice::<Envelope<T>>(body)
        .map(|e| e.result)
        .map_err(|e| HostError::Protocol(format!("{what}: {e}")))
}

/// `/printer/info`'s result (the fields we read).
#[derive(Deserialize)]
struct KlippyInfo {
    state: String,
    #[serde(default)]
    state_message: Option<String>,
}

/// `/server/info`'s result (the field we read).
#[derive(Deserialize)]
struct ServerInfo {
    klippy_state: String,
}

fn offline(message: String) -> HostReport {
    HostReport {
        state: PrinterState::Offline,
        message: Some(clip(message.trim(), MAX_MESSAGE_CHARS)),
        file: None,
        progress: None,
        seconds_left: None,
        nozzle: None,
        bed: None,
    }
}

/// The report for a Klippy that is not `ready` (`None` when it is): the table in the
/// module docs.
fn report_from_klippy(state: &str, state_message: Option<&str>) -> Option<HostReport> {
    let printer = match state {
        "ready" => return None,
        "startup" | "disconnected" => PrinterState::Offline,
        _ => PrinterState::Error,
    };
    let message = match state_message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(words) => format!("Klippy {state}: {words}"),
        None => format!("Klippy {state}"),
    };
    Some(HostReport {
        state: printer,
        message: Some(clip(&message, MAX_MESSAGE_CHARS)),
        ..offline(String::new())
    })
}

/// [`PrinterState`] for `print_stats.state` (Klippy ready): the table in the module docs.
fn map_job_state(state: &str) -> PrinterState {
    match state {
        "standby" | "complete" | "cancelled" => PrinterState::Idle,
        "printing" => PrinterState::Printing,
        "paused" => PrinterState::Paused,
        _ => PrinterState::Error,
    }
}

/// `/printer/objects/query`'s result.
#[derive(Deserialize)]
struct ObjectsAnswer {
    status: Objects,
}

/// The objects we ask for; one the printer does not have is left out of the answer.
#[derive(Deserialize)]
struct Objects {
    #[serde(default)]
    print_stats: Option<PrintStats>,
    #[serde(default)]
    virtual_sdcard: Option<VirtualSdcard>,
    #[serde(default)]
    extruder: Option<Heater>,
    #[serde(default)]
    heater_bed: Option<Heater>,
}

#[derive(Deserialize)]
struct PrintStats {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    print_duration: Option<f64>,
}

#[derive(Deserialize)]
struct VirtualSdcard {
    #[serde(default)]
    progress: Option<f64>,
}

#[derive(Deserialize)]
struct Heater {
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    target: Option<f64>,
}

impl Heater {
    fn temperature(&self) -> Option<Temperature> {
        Some(Temperature {
            actual: self.temperature.filter(|t| t.is_finite())?,
            target: self.target.filter(|t| t.is_finite()),
        })
    }
}

/// A report from a `/printer/objects/query` body (Klippy ready).
fn report_from_objects(body: &[u8]) -> Result<HostReport, HostError> {
    let objects: ObjectsAnswer = parse_result(body, "GET /printer/objects/query")?;
    let objects = objects.status;
    let nozzle = objects.extruder.as_ref().and_then(Heater::temperature);
    let bed = objects.heater_bed.as_ref().and_then(Heater::temperature);
    let Some(stats) = objects.print_stats.filter(|p| p.state.is_some()) else {
        return Ok(HostReport {
            state: PrinterState::Error,
            message: Some(
                "Klipper reports no print_stats (no [virtual_sdcard] in printer.cfg?)".to_owned(),
            ),
            nozzle,
            bed,
            ..offline(String::new())
        });
    };
    let word = stats.state.unwrap_or_default();
    let state = map_job_state(&word);
    let message = match stats.message.as_deref().map(str::trim) {
        Some(words) if !words.is_empty() => format!("{word}: {words}"),
        _ => word.clone(),
    };
    let busy = matches!(state, PrinterState::Printing | PrinterState::Paused);
    let fraction = objects
        .virtual_sdcard
        .and_then(|v| v.progress)
        .filter(|p| busy && p.is_finite())
        .map(|p| p.clamp(0.0, 1.0));
    // "Basic Print Status": total = print_duration / progress; left = total - duration.
    let seconds_left = match (fraction, stats.print_duration) {
        (Some(p), Some(done)) if p > 0.0 && done.is_finite() && done > 0.0 => {
            Some((done / p - done).max(0.0).round() as u64)
        }
        _ => None,
    };
    Ok(HostReport {
        state,
        message: Some(clip(message.trim(), MAX_MESSAGE_CHARS)).filter(|m| !m.is_empty()),
        file: stats.filename.filter(|name| !name.is_empty()),
        progress: fraction.map(|p| p * 100.0),
        seconds_left,
        nozzle,
        bed,
    })
}

/// `/server/history/list`'s result (the fields we read).
#[derive(Deserialize)]
struct HistoryList {
    jobs: Vec<HistoryJob>,
}

#[derive(Deserialize)]
struct HistoryJob {
    #[serde(default)]
    job_id: Option<String>,
    filename: String,
    status: String,
}

/// One file's jobs, counted newest first.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    record: PrintRecord,
    in_progress: bool,
    /// The status of the newest ended job.
    last_status: Option<String>,
}

impl Tally {
    /// Counts `name`'s jobs of one page; `seen` drops a job met twice (a job added while
    /// the pages are read shifts the next page by one).
    fn add(&mut self, name: &str, jobs: Vec<HistoryJob>, seen: &mut HashSet<String>) {
        for job in jobs.into_iter().filter(|job| job.filename == name) {
            if let Some(id) = job.job_id {
                if !seen.insert(id) {
                    continue;
                }
            }
            let success = match job.status.as_str() {
                "in_progress" => {
                    self.in_progress = true;
                    continue;
                }
                "completed" => true,
                // cancelled, error, klippy_shutdown, klippy_disconnect, interrupted, and
                // any status not documented yet: it ran and did not complete.
                _ => false,
            };
            if success {
                self.record.success += 1;
            } else {
                self.record.failure += 1;
            }
            if self.record.last_success.is_none() {
                self.record.last_success = Some(success);
                self.last_status = Some(job.status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies as "Example Response"s in Moonraker's documentation show them (the result
    // only; HTTP wraps it in {"result": …}, "Introduction" › "HTTP API Overview").

    /// "Printer Administration" › "Get Klippy host information".
    const PRINTER_INFO: &str = r#"{"result": {
    "state": "ready",
    "state_message": "Printer is ready",
    "hostname": "pi-debugger",
    "klipper_path": "/home/pi/klipper",
    "python_path": "/home/pi/klipper/venv/bin/python",
    "process_id": 275124,
    "user_id": 1000,
    "group_id": 1000,
    "log_file": "/home/pi/printer_data/logs/klippy.log",
    "config_file": "/home/pi/printer_data/config/printer.cfg",
    "software_version": "v0.12.0-85-gd785b396",
    "cpu_info": "4 core ?"
}}"#;

    /// "Printer Administration" › "Query printer object status", with the objects as the
    /// "Printer Object Example"s of `print_stats`, `virtual_sdcard`, `extruder` and
    /// `heater_bed` show them ("Printer Objects"; the trailing comma of `heater_bed`'s
    /// example removed: it is not JSON).
    const OBJECTS_STANDBY: &str = r#"{"result": {
    "eventtime": 578243.57824499,
    "status": {
        "print_stats": {
            "filename": "",
            "total_duration": 0.0,
            "print_duration": 0.0,
            "filament_used": 0.0,
            "state": "standby",
            "message": "",
            "info": {"total_layer": null, "current_layer": null}
        },
        "virtual_sdcard": {
            "file_path": null,
            "progress": 0,
            "is_active": false,
            "file_position": 0,
            "file_size": 0
        },
        "extruder": {
            "temperature": 0,
            "target": 0,
            "power": 0,
            "can_extrude": true,
            "pressure_advance": 0,
            "smooth_time": 0.04,
            "motion_queue": null
        },
        "heater_bed": {"temperature": 0.0, "target": 0.0, "power": 0.0}
    }
}}"#;

    /// The same objects while a print runs (values changed, fields as documented).
    const OBJECTS_PRINTING: &str = r#"{"result": {
    "eventtime": 578300.1,
    "status": {
        "print_stats": {
            "filename": "raft3d-j1.gcode",
            "total_duration": 40.5,
            "print_duration": 30.0,
            "filament_used": 12.5,
            "state": "printing",
            "message": "",
            "info": {"total_layer": null, "current_layer": null}
        },
        "virtual_sdcard": {
            "file_path": "/home/pi/printer_data/gcodes/raft3d-j1.gcode",
            "progress": 0.25,
            "is_active": true,
            "file_position": 159,
            "file_size": 636
        },
        "extruder": {"temperature": 209.6, "target": 210.0, "power": 0.419},
        "heater_bed": {"temperature": 60.2, "target": 60.0, "power": 0.362}
    }
}}"#;

    /// "Job History" › "Get job list" (its `// Object containing metadata at time of job`
    /// comment removed: it is not JSON; `auxiliary_data` shortened).
    const HISTORY: &str = r#"{"result": {
    "count": 1,
    "jobs": [
        {
            "job_id": "000001",
            "exists": true,
            "end_time": 1615764265.6493807,
            "filament_used": 7.83,
            "filename": "test/history_test.gcode",
            "metadata": {},
            "print_duration": 18.37201827496756,
            "status": "completed",
            "start_time": 1615764496.622146,
            "total_duration": 18.37201827496756,
            "user": "testuser",
            "auxiliary_data": [
                {
                    "provider": "sensor hist_test",
                    "name": "power_consumption",
                    "value": 4.119977,
                    "description": "Printer Power Consumption",
                    "units": "kWh"
                }
            ]
        }
    ]
}}"#;

    fn answer(status: u16, body: &str) -> Answer {
        Answer::of(status, body)
    }

    fn host(key: Option<&str>) -> Moonraker {
        Moonraker::new("http://127.0.0.1:7125/", key.map(str::to_owned)).expect("a host")
    }

    fn job(id: &str, filename: &str, status: &str) -> HistoryJob {
        HistoryJob {
            job_id: Some(id.to_owned()),
            filename: filename.to_owned(),
            status: status.to_owned(),
        }
    }

    #[test]
    fn job_states_map_by_the_table() {
        use PrinterState::*;
        for (word, want) in [
            ("standby", Idle),
            ("complete", Idle),
            ("cancelled", Idle),
            ("printing", Printing),
            ("paused", Paused),
            ("error", Error),
            ("Printing", Error),
            ("", Error),
        ] {
            assert_eq!(map_job_state(word), want, "{word:?}");
        }
    }

    #[test]
    fn klippy_states_map_by_the_table() {
        assert_eq!(report_from_klippy("ready", Some("Printer is ready")), None);
        let startup = report_from_klippy("startup", Some("Startup")).expect("a report");
        assert_eq!(startup.state, PrinterState::Offline);
        assert_eq!(startup.message.as_deref(), Some("Klippy startup: Startup"));
        let gone = report_from_klippy("disconnected", None).expect("a report");
        assert_eq!(gone.state, PrinterState::Offline);
        assert_eq!(gone.message.as_deref(), Some("Klippy disconnected"));
        let shutdown = report_from_klippy(
            "shutdown",
            Some("MCU 'mcu' shutdown: Timer too close\nOnce the underlying issue is corrected…"),
        )
        .expect("a report");
        assert_eq!(shutdown.state, PrinterState::Error);
        assert_eq!(
            shutdown.message.as_deref(),
            Some("Klippy shutdown: MCU 'mcu' shutdown: Timer too close Once the underlying issue is corrected…")
        );
        for word in ["error", "Ready", ""] {
            let report = report_from_klippy(word, None).expect("a report");
            assert_eq!(report.state, PrinterState::Error, "{word:?}");
        }
    }

    #[test]
    fn printer_info_parses() {
        let info: KlippyInfo = parse_result(PRINTER_INFO.as_bytes(), "x").expect("parses");
        assert_eq!(info.state, "ready");
        assert_eq!(info.state_message.as_deref(), Some("Printer is ready"));
        let server: ServerInfo = parse_result(
            br#"{"result": {"klippy_connected": true, "klippy_state": "ready", "components": []}}"#,
            "x",
        )
        .expect("parses");
        assert_eq!(server.klippy_state, "ready");
    }

    #[test]
    fn a_standby_printer_is_idle_with_temperatures_and_no_file() {
        let report = report_from_objects(OBJECTS_STANDBY.as_bytes()).expect("parses");
        let cold = Some(Temperature {
            actual: 0.0,
            target: Some(0.0),
        });
        assert_eq!(
            report,
            HostReport {
                state: PrinterState::Idle,
                message: Some("standby".to_owned()),
                file: None,
                progress: None,
                seconds_left: None,
                nozzle: cold,
                bed: cold,
            }
        );
    }

    #[test]
    fn a_printing_printer_reports_file_progress_and_time_left() {
        let report = report_from_objects(OBJECTS_PRINTING.as_bytes()).expect("parses");
        assert_eq!(
            report,
            HostReport {
                state: PrinterState::Printing,
                message: Some("printing".to_owned()),
                file: Some("raft3d-j1.gcode".to_owned()),
                progress: Some(25.0),
                // 30 s for a quarter: 120 s in all, 90 s left.
                seconds_left: Some(90),
                nozzle: Some(Temperature {
                    actual: 209.6,
                    target: Some(210.0)
                }),
                bed: Some(Temperature {
                    actual: 60.2,
                    target: Some(60.0)
                }),
            }
        );
    }

    #[test]
    fn a_finished_print_keeps_its_file_but_no_progress() {
        let body = OBJECTS_PRINTING
            .replace("\"printing\"", "\"complete\"")
            .replace("0.25", "1.0");
        let report = report_from_objects(body.as_bytes()).expect("parses");
        assert_eq!(report.state, PrinterState::Idle);
        assert_eq!(report.message.as_deref(), Some("complete"));
        assert_eq!(report.file.as_deref(), Some("raft3d-j1.gcode"));
        assert_eq!((report.progress, report.seconds_left), (None, None));
    }

    #[test]
    fn a_print_error_is_an_error_with_klippers_words() {
        let body = r#"{"result": {"eventtime": 1.0, "status": {"print_stats": {
            "filename": "raft3d-j1.gcode", "state": "error",
            "message": "Move out of range: 0.000 0.000 -5.000 [0.000]"}}}}"#;
        let report = report_from_objects(body.as_bytes()).expect("parses");
        assert_eq!(report.state, PrinterState::Error);
        assert_eq!(
            report.message.as_deref(),
            Some("error: Move out of range: 0.000 0.000 -5.000 [0.000]")
        );
        assert_eq!(
            (report.nozzle, report.bed),
            (None, None),
            "objects left out"
        );
    }

    #[test]
    fn no_print_stats_is_an_error_report_and_bad_bodies_are_protocol_errors() {
        let body = r#"{"result": {"eventtime": 1.0, "status": {"extruder": {"temperature": 21.0, "target": 0.0}}}}"#;
        let report = report_from_objects(body.as_bytes()).expect("parses");
        assert_eq!(report.state, PrinterState::Error);
        assert!(report.nozzle.is_some());
        for bad in [
            "{}",
            "not json",
            r#"{"eventtime": 1.0, "status": {}}"#,
            r#"{"result": {"status": {"print_stats": {"state": 3}}}}"#,
        ] {
            let error = report_from_objects(bad.as_bytes()).expect_err(bad);
            assert!(matches!(error, HostError::Protocol(_)), "{bad}: {error:?}");
        }
    }

    #[test]
    fn the_documented_history_parses_and_counts_by_file() {
        let list: HistoryList = parse_result(HISTORY.as_bytes(), "x").expect("parses");
        let mut tally = Tally::default();
        tally.add("test/history_test.gcode", list.jobs, &mut HashSet::new());
        assert_eq!(
            tally.record,
            PrintRecord {
                success: 1,
                failure: 0,
                last_success: Some(true)
            }
        );
        let list: HistoryList = parse_result(HISTORY.as_bytes(), "x").expect("parses");
        let mut other = Tally::default();
        other.add("history_test.gcode", list.jobs, &mut HashSet::new());
        assert_eq!(other, Tally::default(), "the path must match exactly");
    }

    #[test]
    fn every_ended_status_but_completed_is_a_failure_and_the_newest_decides() {
        let name = "raft3d-j1.gcode";
        let mut tally = Tally::default();
        let mut seen = HashSet::new();
        // Newest first, as order=desc gives them.
        tally.add(
            name,
            vec![
                job("00000A", name, "cancelled"),
                job("000009", "benchy.gcode", "completed"),
                job("000008", name, "completed"),
                job("000007", name, "error"),
                job("000006", name, "klippy_shutdown"),
                job("000005", name, "klippy_disconnect"),
                job("000004", name, "interrupted"),
                job("000003", name, "some_future_status"),
            ],
            &mut seen,
        );
        // The next page, shifted by a job added meanwhile: 000003 again.
        tally.add(
            name,
            vec![job("000003", name, "some_future_status")],
            &mut seen,
        );
        assert_eq!(
            tally,
            Tally {
                record: PrintRecord {
                    success: 1,
                    failure: 6,
                    last_success: Some(false)
                },
                in_progress: false,
                last_status: Some("cancelled".to_owned()),
            }
        );
        let mut running = Tally::default();
        running.add(name, vec![job("00000B", name, "in_progress")], &mut seen);
        assert!(running.in_progress);
        assert_eq!(running.record, PrintRecord::default());
    }

    #[test]
    fn refusals_map_by_status() {
        let mr = host(Some("SECRETKEY123"));
        let get = Method::GET;
        let post = Method::POST;
        // authorization.py: HTTPError(401, "Unauthorized"), written by write_error.
        let unauthorized = r#"{"error": {"code": 401, "message": "Unauthorized"}}"#;
        match mr.refusal(&get, "/printer/info", &answer(401, unauthorized)) {
            HostError::Unauthorized { status, message } => {
                assert_eq!((status, message.as_str()), (401, "Unauthorized"));
            }
            other => panic!("{other:?}"),
        }
        assert!(mr.refusal(&get, "/x", &answer(403, "")).is_auth());
        let busy = answer(400, r#"{"error": {"code": 400, "message": "SD busy"}}"#);
        match mr.refusal(&post, "/printer/print/start", &busy) {
            HostError::Conflict(text) => assert_eq!(text, "SD busy"),
            other => panic!("{other:?}"),
        }
        let down = answer(
            503,
            r#"{"error": {"code": 503, "message": "Klippy Host not connected"}}"#,
        );
        match mr.refusal(&get, "/printer/objects/query", &down) {
            HostError::Conflict(text) => assert_eq!(text, "Klippy: Klippy Host not connected"),
            other => panic!("{other:?}"),
        }
        let bad = answer(
            400,
            r#"{"error": {"code": 400, "message": "Invalid `order` value: UP", "traceback": "Traceback (most recent call last): …"}}"#,
        );
        match mr.refusal(&get, "/server/history/list", &bad) {
            HostError::Protocol(text) => assert_eq!(
                text,
                "HTTP 400 on GET /server/history/list: Invalid `order` value: UP"
            ),
            other => panic!("{other:?}"),
        }
        match mr.refusal(&get, "/printer/info", &answer(502, "")) {
            HostError::Protocol(text) => {
                assert_eq!(text, "HTTP 502 on GET /printer/info: Bad Gateway")
            }
            other => panic!("{other:?}"),
        }
        let plain = answer(500, r#"{"error": "plain words"}"#);
        assert!(mr
            .refusal(&get, "/x", &plain)
            .to_string()
            .ends_with("plain words"));
        let long = format!("<html>{}</html>", "x".repeat(1000));
        match mr.refusal(&get, "/printer/info", &answer(500, &long)) {
            HostError::Protocol(text) => assert!(text.chars().count() < 260, "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_api_key_never_shows() {
        let mr = host(Some("SECRETKEY123"));
        let debug = format!("{mr:?}");
        assert!(debug.contains("api_key: <set>"), "{debug}");
        assert!(!debug.contains("SECRETKEY123"), "{debug}");
        assert!(format!("{:?}", host(None)).contains("api_key: <none>"));
        let echo = answer(
            401,
            r#"{"error": {"code": 401, "message": "bad key SECRETKEY123"}}"#,
        );
        let error = mr.refusal(&Method::GET, "/printer/info", &echo);
        assert!(
            !format!("{error} {error:?}").contains("SECRETKEY123"),
            "{error:?}"
        );
    }
}
