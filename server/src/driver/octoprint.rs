//! OctoPrint's REST API, in the terms of [`super::host`]. What it relies on was measured
//! against OctoPrint 1.11.8 (`scripts/octoprint/API-FACTS.md`); the integration test
//! `server/tests/octoprint` runs it against a real one.
//!
//! # Endpoints
//! - [`OctoPrint::probe`]: `GET /api/job`, then `GET /api/printer` for temperatures when
//!   the printer is connected (its 409 "Printer is not operational" only means none).
//!   Right after the printer connects, `/api/printer` has `"temperature": {}` until its
//!   first reading (~2 s, seen in the integration test): no temperatures then either.
//! - [`OctoPrint::upload`]: `POST /api/files/local`, multipart field `file` (streamed
//!   from disk), without `select`/`print` (with `print`, a busy printer still answers 201
//!   and prints nothing).
//! - [`OctoPrint::record`]: `GET /api/files/local/<name>`, its `prints`.
//! - [`OctoPrint::start`]: `POST /api/files/local/<name>` `{"command":"select","print":true}`.
//! - [`OctoPrint::cancel`]: `POST /api/job` `{"command":"cancel"}`.
//!
//! # States
//! `/api/job`'s `state` becomes a [`PrinterState`] by this table (the words themselves
//! stay in [`HostReport::message`]). Words OctoPrint 1.11.8 has in its code but that were
//! never seen are mapped by what they mean; any other text is an error, never a guess.
//!
//! | OctoPrint `state` | state |
//! | --- | --- |
//! | `Operational` | Idle |
//! | `Printing`, `Cancelling` (still busy), `Starting`, `Starting print from SD`, `Printing from SD`, `Sending file to SD`, `Transferring file to SD`, `Resuming`, `Finishing` | Printing |
//! | `Pausing`, `Paused` | Paused |
//! | `Offline`, `Closed`, `Opening serial connection`, `Detecting serial connection`, `Connecting` | Offline |
//! | `Offline after error` with a non-empty top-level `error` | Error |
//! | `Offline after error` without one | Offline |
//! | `Error`, or anything starting with `Error` | Error |
//! | anything else (`Unknown State (…)`, …) | Error |
//!
//! Progress and time left are reported while Printing or Paused only (a finished job
//! stays in `/api/job` at 100 %); the file name whenever one is selected.
//!
//! # Errors
//! No answer (refused, reset, timed out, a broken status line while OctoPrint starts, a
//! body cut short) is [`HostError::Unreachable`]. 401, 403 (a GET with a wrong key) and
//! 400 "CSRF validation failed" (a POST with a wrong key) are
//! [`HostError::Unauthorized`]; 409 is [`HostError::Conflict`] with OctoPrint's `error`
//! text. Note that a start while *disconnected* also answers 409 "Printer is already
//! printing, cannot select a new file": the text does not prove a print runs.
//!
//! # The API key
//! Sent as `X-Api-Key` (marked sensitive) and nowhere else: not in URLs, not in errors
//! (host texts are scrubbed of it too), not in `Debug`, not in logs.
//!
//! This file owns OctoPrint's routes, JSON shapes, state table and status mapping; the
//! HTTP plumbing it shares with Moonraker (client, key header, URL and name checks,
//! multipart upload, texts of failures) is `http_host`'s.
//!
//! # TLS
//! `http://` is what OctoPrint serves by default, and works. The workspace's reqwest has
//! rustls without built-in roots (`rustls-tls-manual-roots`: peers trust only their
//! cluster's CA), so an `https://` base URL is accepted but every request fails
//! certificate verification (an [`HostError::Unreachable`] naming the TLS error) until
//! roots are configured for hosts.

use super::host::{HostError, HostReport, PrintRecord, Temperature};
use super::http_host::{check_name, clip, host_text, Answer, HttpHost, MAX_MESSAGE_CHARS};
use app::domain::PrinterState;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::path::Path;

/// One OctoPrint instance, reached at its base URL with one API key.
#[derive(Debug)]
pub struct OctoPrint {
    host: HttpHost,
}

impl OctoPrint {
    /// An OctoPrint at `base_url` (`http(s)://host[:port][/path]`; no user, query or
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

    /// What the host says now: `GET /api/job`, and `GET /api/printer` for temperatures
    /// when the printer is connected.
    pub async fn probe(&self) -> Result<HostReport, HostError> {
        let answer = self.host.send(Method::GET, "/api/job", |r| r).await?;
        if !answer.status.is_success() {
            return Err(self.refusal(&Method::GET, "/api/job", &answer));
        }
        let mut report = report_from_job(&answer.body)?;
        if matches!(
            report.state,
            PrinterState::Idle | PrinterState::Printing | PrinterState::Paused
        ) {
            let answer = self.host.send(Method::GET, "/api/printer", |r| r).await?;
            if answer.status.is_success() {
                (report.nozzle, report.bed) = temperatures(&answer.body)?;
            } else if answer.status != StatusCode::CONFLICT {
                // 409: "Printer is not operational" (it went away since /api/job): no
                // temperatures, the next probe will say so.
                return Err(self.refusal(&Method::GET, "/api/printer", &answer));
            }
        }
        Ok(report)
    }

    /// Stores the local `file` (`size` bytes, streamed from disk) as the host's local file
    /// `name` (replacing one of that name), without selecting or printing it.
    pub async fn upload(&self, name: &str, file: &Path, size: u64) -> Result<(), HostError> {
        let path = "/api/files/local";
        let answer = self.host.upload(path, &[], name, file, size).await?;
        match answer.status {
            StatusCode::OK | StatusCode::CREATED => Ok(()),
            _ => Err(self.refusal(&Method::POST, path, &answer)),
        }
    }

    /// The print history of the local file `name`; `None`: no such file.
    pub async fn record(&self, name: &str) -> Result<Option<PrintRecord>, HostError> {
        check_name(name)?;
        let path = format!("/api/files/local/{name}");
        let answer = self.host.send(Method::GET, &path, |r| r).await?;
        match answer.status {
            StatusCode::OK => print_record(&answer.body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.refusal(&Method::GET, &path, &answer)),
        }
    }

    /// Selects the local file `name` and prints it. [`HostError::Conflict`] when the
    /// printer is not ready (printing, or not connected: OctoPrint says the same).
    pub async fn start(&self, name: &str) -> Result<(), HostError> {
        check_name(name)?;
        let path = format!("/api/files/local/{name}");
        let command = serde_json::json!({"command": "select", "print": true});
        let answer = self
            .host
            .send(Method::POST, &path, |r| r.json(&command))
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.refusal(&Method::POST, &path, &answer))
        }
    }

    /// Cancels the running (or paused) print. [`HostError::Conflict`] when none runs.
    pub async fn cancel(&self) -> Result<(), HostError> {
        let path = "/api/job";
        let command = serde_json::json!({"command": "cancel"});
        let answer = self
            .host
            .send(Method::POST, path, |r| r.json(&command))
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.refusal(&Method::POST, path, &answer))
        }
    }

    /// The error for an answer that is not what we asked for.
    fn refusal(&self, method: &Method, path: &str, answer: &Answer) -> HostError {
        let message = self.host.scrub(&refusal_text(answer));
        match answer.status.as_u16() {
            401 | 403 => HostError::Unauthorized {
                status: answer.status.as_u16(),
                message,
            },
            400 if message.contains("CSRF") => HostError::Unauthorized {
                status: 400,
                message,
            },
            409 => HostError::Conflict(message),
            status => HostError::Protocol(format!("HTTP {status} on {method} {path}: {message}")),
        }
    }
}

/// OctoPrint's words in a refusal: its JSON `error` field (else the body, else the
/// status's name).
fn refusal_text(answer: &Answer) -> String {
    host_text(answer, |v| v.get("error")?.as_str())
}

/// [`PrinterState`] for `/api/job`'s `state` (and its top-level `error`): the table in
/// the module docs.
fn map_state(text: &str, error: Option<&str>) -> PrinterState {
    match text {
        "Operational" => PrinterState::Idle,
        "Printing"
        | "Cancelling"
        | "Starting"
        | "Starting print from SD"
        | "Printing from SD"
        | "Sending file to SD"
        | "Transferring file to SD"
        | "Resuming"
        | "Finishing" => PrinterState::Printing,
        "Pausing" | "Paused" => PrinterState::Paused,
        "Offline"
        | "Closed"
        | "Opening serial connection"
        | "Detecting serial connection"
        | "Connecting" => PrinterState::Offline,
        "Offline after error" => {
            if error.is_some_and(|e| !e.trim().is_empty()) {
                PrinterState::Error
            } else {
                PrinterState::Offline
            }
        }
        _ => PrinterState::Error,
    }
}

#[derive(Deserialize)]
struct JobAnswer {
    state: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    job: Option<Job>,
    #[serde(default)]
    progress: Option<Progress>,
}

#[derive(Deserialize)]
struct Job {
    #[serde(default)]
    file: Option<JobFile>,
}

#[derive(Deserialize)]
struct JobFile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    #[serde(default)]
    completion: Option<f64>,
    #[serde(default)]
    print_time_left: Option<f64>,
}

/// A report from a `/api/job` body (no temperatures yet).
fn report_from_job(body: &[u8]) -> Result<HostReport, HostError> {
    let job: JobAnswer = serde_json::from_slice(body)
        .map_err(|e| HostError::Protocol(format!("GET /api/job: {e}")))?;
    let error = job
        .error
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let state = map_state(&job.state, error);
    let message = match error {
        Some(error) => format!("{}: {error}", job.state),
        None => job.state.clone(),
    };
    let busy = matches!(state, PrinterState::Printing | PrinterState::Paused);
    let progress = job.progress.filter(|_| busy);
    Ok(HostReport {
        state,
        message: Some(clip(message.trim(), MAX_MESSAGE_CHARS)).filter(|m| !m.is_empty()),
        file: job
            .job
            .and_then(|j| j.file?.name)
            .filter(|name| !name.is_empty()),
        progress: progress
            .as_ref()
            .and_then(|p| p.completion)
            .filter(|c| c.is_finite())
            .map(|c| c.clamp(0.0, 100.0)),
        seconds_left: progress
            .as_ref()
            .and_then(|p| p.print_time_left)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s.round() as u64),
        nozzle: None,
        bed: None,
    })
}

#[derive(Deserialize)]
struct PrinterAnswer {
    #[serde(default)]
    temperature: Option<Temperatures>,
}

#[derive(Deserialize)]
struct Temperatures {
    #[serde(default)]
    tool0: Option<Heater>,
    #[serde(default)]
    bed: Option<Heater>,
}

#[derive(Deserialize)]
struct Heater {
    #[serde(default)]
    actual: Option<f64>,
    #[serde(default)]
    target: Option<f64>,
}

impl Heater {
    fn temperature(&self) -> Option<Temperature> {
        Some(Temperature {
            actual: self.actual?,
            target: self.target,
        })
    }
}

/// `(nozzle, bed)` from a `/api/printer` body (first tool only).
fn temperatures(body: &[u8]) -> Result<(Option<Temperature>, Option<Temperature>), HostError> {
    let printer: PrinterAnswer = serde_json::from_slice(body)
        .map_err(|e| HostError::Protocol(format!("GET /api/printer: {e}")))?;
    let Some(t) = printer.temperature else {
        return Ok((None, None));
    };
    Ok((
        t.tool0.as_ref().and_then(Heater::temperature),
        t.bed.as_ref().and_then(Heater::temperature),
    ))
}

#[derive(Deserialize)]
struct FileAnswer {
    #[serde(default)]
    prints: Option<Prints>,
}

#[derive(Deserialize)]
struct Prints {
    #[serde(default)]
    success: u64,
    #[serde(default)]
    failure: u64,
    #[serde(default)]
    last: Option<LastPrint>,
}

#[derive(Deserialize)]
struct LastPrint {
    #[serde(default)]
    success: Option<bool>,
}

/// The record from a `/api/files/local/<name>` body; no `prints`: never printed.
fn print_record(body: &[u8]) -> Result<PrintRecord, HostError> {
    let file: FileAnswer = serde_json::from_slice(body)
        .map_err(|e| HostError::Protocol(format!("GET /api/files/local/…: {e}")))?;
    Ok(file
        .prints
        .map_or_else(PrintRecord::default, |p| PrintRecord {
            success: p.success,
            failure: p.failure,
            last_success: p.last.and_then(|l| l.success),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies recorded from OctoPrint 1.11.8 (scripts/octoprint/API-FACTS.md).
    const JOB_PRINTING: &str = r#"{"job": {"averagePrintTime": 2.0207453180009907, "estimatedPrintTime": 10.158088022903975,
         "filament": {"tool0": {"length": 10.0, "volume": 0.0}},
         "file": {"date": 1796606268, "display": "raft3d-job-abc.gcode", "name": "raft3d-job-abc.gcode",
                  "origin": "local", "path": "raft3d-job-abc.gcode", "size": 636},
         "lastPrintTime": 2.0207453180009907, "user": "farm"},
 "progress": {"completion": 79.0880503144654, "filepos": 503, "printTime": 0, "printTimeLeft": 0,
              "printTimeLeftOrigin": "linear"},
 "state": "Printing"}"#;
    const JOB_FINISHED: &str = r#"{"job": {"averagePrintTime": null, "estimatedPrintTime": 10.1,
         "filament": null,
         "file": {"date": 1796606268, "display": "raft3d-job-abc.gcode", "name": "raft3d-job-abc.gcode",
                  "origin": "local", "path": "raft3d-job-abc.gcode", "size": 636},
         "lastPrintTime": null, "user": "farm"},
 "progress": {"completion": 100.0, "filepos": 636, "printTime": 2, "printTimeLeft": 0, "printTimeLeftOrigin": null},
 "state": "Operational"}"#;
    const JOB_DISCONNECTED: &str = r#"{"job": {"averagePrintTime": null, "estimatedPrintTime": null, "filament": null,
 "file": {"date": null, "display": null, "name": null, "origin": null, "path": null, "size": null},
 "lastPrintTime": null, "user": null},
 "progress": {"completion": null, "filepos": null, "printTime": null, "printTimeLeft": null, "printTimeLeftOrigin": null},
 "state": "Offline"}"#;
    const JOB_FATAL: &str = r#"{"job": {"averagePrintTime": null, "estimatedPrintTime": null, "filament": null,
 "file": {"date": null, "display": null, "name": null, "origin": null, "path": null, "size": null},
 "lastPrintTime": null, "user": null},
 "progress": {"completion": null, "filepos": null, "printTime": null, "printTimeLeft": null, "printTimeLeftOrigin": null},
 "state": "Offline after error",
 "error": "Thermal Runaway, system stopped! Heater_ID: bed - Printer halted. kill() called!"}"#;
    const PRINTER_IDLE: &str = r#"{"sd": {"ready": true},
 "state": {"error": "",
           "flags": {"cancelling": false, "closedOrError": false, "error": false, "finishing": false,
                     "operational": true, "paused": false, "pausing": false, "printing": false,
                     "ready": true, "resuming": false, "sdReady": true},
           "text": "Operational"},
 "temperature": {"bed":   {"actual": 21.3, "offset": 0, "target": 0.0},
                 "tool0": {"actual": 21.3, "offset": 0, "target": 0.0}}}"#;
    const FILE_NEVER_PRINTED: &str = r#"{"date": 1796606268, "display": "raft3d-job-abc.gcode",
 "hash": "150c7c42ce138ca60d2a53bd160a19e5b2f860c6",
 "name": "raft3d-job-abc.gcode", "origin": "local", "path": "raft3d-job-abc.gcode",
 "refs": {}, "size": 636, "type": "machinecode", "typePath": ["machinecode", "gcode"], "user": "farm"}"#;
    const FILE_PRINTED: &str = r#"{"name": "raft3d-job-abc.gcode",
 "prints": {"failure": 0, "last": {"date": 1796606277.7554932, "printTime": 2.0207453180009907, "success": true}, "success": 1},
 "statistics": {"averagePrintTime": {"_default": 2.0207453180009907}, "lastPrintTime": {"_default": 2.0207453180009907}}}"#;
    const FILE_CANCELLED: &str = r#"{"name": "raft3d-job-abc.gcode",
 "prints": {"failure": 1, "last": {"date": 1796606290.1, "success": false}, "success": 2}}"#;

    fn answer(status: u16, body: &str) -> Answer {
        Answer::of(status, body)
    }

    fn host(key: Option<&str>) -> OctoPrint {
        OctoPrint::new("http://127.0.0.1:5000/", key.map(str::to_owned)).expect("a host")
    }

    #[test]
    fn states_map_by_the_table() {
        use PrinterState::*;
        let cases = [
            ("Operational", None, Idle),
            ("Printing", None, Printing),
            ("Cancelling", None, Printing),
            ("Starting", None, Printing),
            ("Printing from SD", None, Printing),
            ("Resuming", None, Printing),
            ("Finishing", None, Printing),
            ("Pausing", None, Paused),
            ("Paused", None, Paused),
            ("Offline", None, Offline),
            ("Closed", None, Offline),
            ("Connecting", None, Offline),
            ("Detecting serial connection", None, Offline),
            ("Offline after error", None, Offline),
            ("Offline after error", Some("  "), Offline),
            ("Offline after error", Some("Thermal Runaway"), Error),
            ("Error", None, Error),
            ("Error: no printer", None, Error),
            ("Unknown State (42)", None, Error),
            ("operational", None, Error),
            ("", None, Error),
        ];
        for (text, error, want) in cases {
            assert_eq!(map_state(text, error), want, "{text:?} with {error:?}");
        }
    }

    #[test]
    fn a_printing_job_reports_file_and_progress() {
        let report = report_from_job(JOB_PRINTING.as_bytes()).expect("parses");
        assert_eq!(
            report,
            HostReport {
                state: PrinterState::Printing,
                message: Some("Printing".to_owned()),
                file: Some("raft3d-job-abc.gcode".to_owned()),
                progress: Some(79.0880503144654),
                seconds_left: Some(0),
                nozzle: None,
                bed: None,
            }
        );
    }

    #[test]
    fn a_finished_job_keeps_its_file_but_no_progress() {
        let report = report_from_job(JOB_FINISHED.as_bytes()).expect("parses");
        assert_eq!(report.state, PrinterState::Idle);
        assert_eq!(report.message.as_deref(), Some("Operational"));
        assert_eq!(report.file.as_deref(), Some("raft3d-job-abc.gcode"));
        assert_eq!((report.progress, report.seconds_left), (None, None));
    }

    #[test]
    fn a_disconnected_printer_is_offline_with_nothing_else() {
        let report = report_from_job(JOB_DISCONNECTED.as_bytes()).expect("parses");
        assert_eq!(report.state, PrinterState::Offline);
        assert_eq!(report.message.as_deref(), Some("Offline"));
        assert_eq!((report.file, report.progress), (None, None));
    }

    #[test]
    fn a_fatal_error_is_an_error_with_the_hosts_words() {
        let report = report_from_job(JOB_FATAL.as_bytes()).expect("parses");
        assert_eq!(report.state, PrinterState::Error);
        assert_eq!(
            report.message.as_deref(),
            Some("Offline after error: Thermal Runaway, system stopped! Heater_ID: bed - Printer halted. kill() called!")
        );
    }

    #[test]
    fn a_job_body_without_state_is_a_protocol_error() {
        for body in ["{}", "not json", r#"{"state": 3}"#] {
            let error = report_from_job(body.as_bytes()).expect_err("no state");
            assert!(matches!(error, HostError::Protocol(_)), "{body}: {error:?}");
        }
    }

    #[test]
    fn temperatures_come_from_tool0_and_bed() {
        let (nozzle, bed) = temperatures(PRINTER_IDLE.as_bytes()).expect("parses");
        let ambient = Temperature {
            actual: 21.3,
            target: Some(0.0),
        };
        assert_eq!((nozzle, bed), (Some(ambient), Some(ambient)));
        let (nozzle, bed) =
            temperatures(br#"{"temperature": {"tool0": {"actual": 190.5, "target": null}}}"#)
                .expect("parses");
        assert_eq!(
            nozzle,
            Some(Temperature {
                actual: 190.5,
                target: None
            })
        );
        assert_eq!(bed, None);
        assert_eq!(temperatures(b"{}").expect("parses"), (None, None));
    }

    #[test]
    fn print_records_come_from_prints() {
        assert_eq!(
            print_record(FILE_NEVER_PRINTED.as_bytes()).expect("parses"),
            PrintRecord::default()
        );
        assert_eq!(
            print_record(FILE_PRINTED.as_bytes()).expect("parses"),
            PrintRecord {
                success: 1,
                failure: 0,
                last_success: Some(true)
            }
        );
        assert_eq!(
            print_record(FILE_CANCELLED.as_bytes()).expect("parses"),
            PrintRecord {
                success: 2,
                failure: 1,
                last_success: Some(false)
            }
        );
    }

    #[test]
    fn refusals_map_by_status() {
        let op = host(Some("SECRETKEY123"));
        let get = Method::GET;
        let forbidden = r#"{"error": "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server."}"#;
        match op.refusal(&get, "/api/job", &answer(403, forbidden)) {
            HostError::Unauthorized { status, message } => {
                assert_eq!(status, 403);
                assert!(message.starts_with("You don't have the permission"));
            }
            other => panic!("{other:?}"),
        }
        let csrf = answer(400, r#"{"error": "CSRF validation failed"}"#);
        assert!(matches!(
            op.refusal(&Method::POST, "/api/job", &csrf),
            HostError::Unauthorized { status: 400, .. }
        ));
        assert!(op.refusal(&get, "/x", &answer(401, "")).is_auth());
        let bad = answer(400, r#"{"error": "command is invalid"}"#);
        match op.refusal(&Method::POST, "/api/job", &bad) {
            HostError::Protocol(text) => {
                assert_eq!(text, "HTTP 400 on POST /api/job: command is invalid")
            }
            other => panic!("{other:?}"),
        }
        let busy = answer(
            409,
            r#"{"error": "Printer is already printing, cannot select a new file"}"#,
        );
        match op.refusal(&Method::POST, "/api/files/local/x", &busy) {
            HostError::Conflict(text) => {
                assert_eq!(
                    text,
                    "Printer is already printing, cannot select a new file"
                )
            }
            other => panic!("{other:?}"),
        }
        match op.refusal(&get, "/api/job", &answer(502, "")) {
            HostError::Protocol(text) => assert_eq!(text, "HTTP 502 on GET /api/job: Bad Gateway"),
            other => panic!("{other:?}"),
        }
        let long = format!("<html>{}</html>", "x".repeat(1000));
        match op.refusal(&get, "/api/job", &answer(500, &long)) {
            HostError::Protocol(text) => assert!(text.chars().count() < 260, "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_api_key_never_shows() {
        let op = host(Some("SECRETKEY123"));
        let debug = format!("{op:?}");
        assert!(debug.contains("api_key: <set>"), "{debug}");
        assert!(!debug.contains("SECRETKEY123"), "{debug}");
        assert!(format!("{:?}", host(None)).contains("api_key: <none>"));
        let echo = answer(403, r#"{"error": "bad key SECRETKEY123"}"#);
        let error = op.refusal(&Method::GET, "/api/job", &echo);
        assert!(
            !format!("{error} {error:?}").contains("SECRETKEY123"),
            "{error:?}"
        );
    }
}
