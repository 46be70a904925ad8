//! The Moonraker adapter (`raft3d::driver::moonraker`) against a fake Moonraker.
//!
//! No Klipper can run here, so the fake (axum, in this process) answers each route as
//! Moonraker's documentation shows it (Arksine/moonraker `docs/external_api/*.md`,
//! <https://moonraker.readthedocs.io/en/latest/external_api/>; the section is named at
//! each route), with the behaviour of Klipper that matters to the driver: a start while
//! printing is refused ("SD busy"), a start while *paused* replaces the paused print (as
//! Klipper's `SDCARD_PRINT_FILE` does). A tiny state machine stands for the printer;
//! tests drive what a printer does by itself (finish, pause, shut down) through
//! [`Fake`]'s hooks.

use app::domain::PrinterState;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use raft3d::driver::host::{HostError, PrintRecord, Temperature};
use raft3d::driver::moonraker::Moonraker;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

const KEY: &str = "raft3d-test-key-7a21c0";
const FILE: &str = "raft3d-j1.gcode";
const GCODE: &[u8] = b"; raft3d moonraker test\nG28\nG1 Z0.2 F720\nG4 P1500\nM84\n";

/// How Moonraker stands with Klippy.
#[derive(Clone)]
enum Klippy {
    /// Never connected since Moonraker started: Klipper's endpoints (`/printer/info`,
    /// `/printer/objects/query`) are not registered yet.
    NeverConnected,
    /// Connected once, not now: "Klippy Host not connected" (503).
    Disconnected,
    /// `/printer/info` `state` and `state_message`.
    Connected(&'static str, &'static str),
}

/// One job history entry ("Job History" › "Get job list", Job History object).
struct Job {
    id: u32,
    filename: String,
    status: &'static str,
    start_time: f64,
    end_time: Option<f64>,
}

/// The fake printer and its host.
struct Machine {
    klippy: Klippy,
    files: BTreeMap<String, Vec<u8>>,
    /// `print_stats`.
    state: &'static str,
    filename: String,
    message: String,
    print_duration: f64,
    /// `virtual_sdcard.progress`, 0..=1.
    progress: f64,
    nozzle: (f64, f64),
    bed: (f64, f64),
    history: Vec<Job>,
    /// Index in `history` of the job under way.
    current: Option<usize>,
    /// `print/start` requests that reached the fake.
    starts: u32,
    /// `print/cancel` requests that reached the fake.
    cancels: u32,
    clock: f64,
}

impl Machine {
    fn tick(&mut self) -> f64 {
        self.clock += 1.0;
        self.clock
    }

    /// Ends the job under way in the history (Moonraker's `history.finish_job`).
    fn finish_job(&mut self, status: &'static str) {
        let now = self.tick();
        if let Some(i) = self.current.take() {
            self.history[i].status = status;
            self.history[i].end_time = Some(now);
        }
    }

    fn add_job(&mut self, filename: &str, status: &'static str) -> usize {
        let now = self.tick();
        let id = self.history.len() as u32 + 1;
        self.history.push(Job {
            id,
            filename: filename.to_owned(),
            status,
            start_time: now,
            end_time: (status != "in_progress").then_some(now),
        });
        self.history.len() - 1
    }
}

/// The fake, shared by its routes and the test.
#[derive(Clone)]
struct Fake {
    machine: Arc<Mutex<Machine>>,
    key: Option<&'static str>,
}

impl Fake {
    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().expect("the fake's lock")
    }

    // The printer's own doings, as hooks.

    /// The print runs to its end: `complete`, and the history entry `completed`.
    fn finish(&self) {
        let mut m = self.machine();
        m.state = "complete";
        m.progress = 1.0;
        m.finish_job("completed");
    }

    /// `print_stats` says `complete`, but Moonraker has not ended the history entry yet.
    fn finish_print_stats_only(&self) {
        let mut m = self.machine();
        m.state = "complete";
        m.progress = 1.0;
    }

    fn pause(&self) {
        let mut m = self.machine();
        assert_eq!(m.state, "printing", "only a print pauses");
        m.state = "paused";
    }

    fn advance(&self, progress: f64, print_duration: f64) {
        let mut m = self.machine();
        m.progress = progress;
        m.print_duration = print_duration;
    }

    /// Moonraker restarts mid-print: its startup marks the job under way `interrupted`
    /// (`history.py`), and it starts no new one for the print Klipper goes on with.
    fn restart_moonraker(&self) {
        self.machine().finish_job("interrupted");
    }

    /// Klipper restarts: its `print_stats` start over (`standby`, no file).
    fn restart_klipper(&self) {
        let mut m = self.machine();
        m.state = "standby";
        m.filename.clear();
        m.progress = 0.0;
        m.finish_job("klippy_disconnect");
    }

    fn set_klippy(&self, klippy: Klippy) {
        self.machine().klippy = klippy;
    }
}

/// A Moonraker error body, as `write_error` makes it ("Introduction" › "HTTP API
/// Overview": an error code and message wrapped in an object).
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// A dynamic endpoint's success: `{"result": …}` ("Introduction" › "HTTP API Overview").
fn result(value: Value) -> Response {
    Json(json!({ "result": value })).into_response()
}

fn query_args(raw: &Option<String>) -> BTreeMap<String, String> {
    raw.as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect()
}

/// "Authorization and Authentication": untrusted clients send `X-Api-Key`; a missing or
/// wrong one is a 401 "Unauthorized".
async fn check_key(State(fake): State<Fake>, request: Request, next: Next) -> Response {
    if let Some(key) = fake.key {
        let sent = request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok());
        if sent != Some(key) {
            return error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
    }
    next.run(request).await
}

/// "Printer Administration" › "Get Klippy host information".
async fn printer_info(State(fake): State<Fake>) -> Response {
    match fake.machine().klippy.clone() {
        Klippy::NeverConnected => error(StatusCode::NOT_FOUND, "Not Found"),
        Klippy::Disconnected => error(StatusCode::SERVICE_UNAVAILABLE, "Klippy Host not connected"),
        Klippy::Connected(state, message) => result(json!({
            "state": state,
            "state_message": message,
            "hostname": "fake-pi",
            "klipper_path": "/home/pi/klipper",
            "python_path": "/home/pi/klipper/venv/bin/python",
            "process_id": 275124,
            "user_id": 1000,
            "group_id": 1000,
            "log_file": "/home/pi/printer_data/logs/klippy.log",
            "config_file": "/home/pi/printer_data/config/printer.cfg",
            "software_version": "v0.12.0-85-gd785b396",
            "cpu_info": "4 core ?"
        })),
    }
}

/// "Server Administration" › "Query Server Info".
async fn server_info(State(fake): State<Fake>) -> Response {
    let (connected, state) = match fake.machine().klippy {
        Klippy::NeverConnected | Klippy::Disconnected => (false, "disconnected"),
        Klippy::Connected(state, _) => (true, state),
    };
    result(json!({
        "klippy_connected": connected,
        "klippy_state": state,
        "components": ["database", "file_manager", "klippy_apis", "history"],
        "failed_components": [],
        "registered_directories": ["config", "gcodes"],
        "warnings": [],
        "websocket_count": 0,
        "moonraker_version": "v0.9.3-fake",
        "api_version": [1, 5, 0],
        "api_version_string": "1.5.0"
    }))
}

/// "Printer Administration" › "Query printer object status" (query-string form:
/// `?a&b=x,y`), the objects as "Printer Objects" describes them; an object the printer
/// does not have is left out.
async fn objects_query(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let m = fake.machine();
    match m.klippy {
        Klippy::NeverConnected => return error(StatusCode::NOT_FOUND, "Not Found"),
        Klippy::Disconnected => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "Klippy Host not connected")
        }
        Klippy::Connected(..) => {}
    }
    let mut status = serde_json::Map::new();
    for (object, attributes) in query_args(&raw) {
        let value = match object.as_str() {
            "print_stats" => json!({
                "filename": m.filename,
                "total_duration": m.print_duration,
                "print_duration": m.print_duration,
                "filament_used": 0.0,
                "state": m.state,
                "message": m.message,
                "info": {"total_layer": null, "current_layer": null}
            }),
            "virtual_sdcard" => json!({
                "file_path": (!m.filename.is_empty())
                    .then(|| format!("/home/pi/printer_data/gcodes/{}", m.filename)),
                "progress": m.progress,
                "is_active": m.state == "printing",
                "file_position": 0,
                "file_size": m.files.get(&m.filename).map_or(0, Vec::len)
            }),
            "extruder" => json!({
                "temperature": m.nozzle.0, "target": m.nozzle.1, "power": 0.0,
                "can_extrude": false, "pressure_advance": 0.0, "smooth_time": 0.04,
                "motion_queue": null
            }),
            "heater_bed" => json!({"temperature": m.bed.0, "target": m.bed.1, "power": 0.0}),
            _ => continue,
        };
        let value = match (attributes.is_empty(), value) {
            (false, Value::Object(all)) => {
                let wanted: Vec<&str> = attributes.split(',').collect();
                Value::Object(
                    all.into_iter()
                        .filter(|(k, _)| wanted.contains(&k.as_str()))
                        .collect(),
                )
            }
            (_, value) => value,
        };
        status.insert(object, value);
    }
    result(json!({"eventtime": m.clock, "status": status}))
}

/// The parts of a `multipart/form-data` body: (field name, file name, content).
fn parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let delimiter = format!("--{}", boundary.trim_matches('"'));
    let delimiter = delimiter.as_bytes();
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content = &rest[head_end + 4..];
        let Some(end) = find(content, delimiter) else {
            break;
        };
        let data = content[..end]
            .strip_suffix(b"\r\n")
            .unwrap_or(&content[..end]);
        let quoted = |key: &str| {
            let from = head.find(&format!("{key}=\""))? + key.len() + 2;
            let len = head[from..].find('"')?;
            Some(head[from..from + len].to_owned())
        };
        if let Some(name) = quoted(" name") {
            out.push((name, quoted("filename"), data.to_vec()));
        }
        rest = &content[end..];
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// "File Management" › "File upload": multipart field `file`, optional `root` (default
/// `gcodes`); 201 and an answer that is *not* wrapped in `result` (the documented example;
/// Moonraker's `FileUploadHandler` finishes it so).
async fn upload(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    // The adapter streams the file with its length: some hosts (and proxies) want it.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if length != Some(body.len()) {
        return error(
            StatusCode::LENGTH_REQUIRED,
            &format!("Content-Length {length:?} for {} bytes", body.len()),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = parts(content_type, &body);
    let root = parts
        .iter()
        .find(|(name, ..)| name == "root")
        .map_or("gcodes".to_owned(), |(_, _, v)| {
            String::from_utf8_lossy(v).into_owned()
        });
    if root != "gcodes" {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid root request: {root}"),
        );
    }
    let Some((_, Some(filename), data)) = parts.into_iter().find(|(name, ..)| name == "file")
    else {
        return error(StatusCode::BAD_REQUEST, "Multipart filename omitted");
    };
    let mut m = fake.machine();
    if filename == m.filename && matches!(m.state, "printing" | "paused") {
        return error(
            StatusCode::FORBIDDEN,
            "File is loaded, upload not permitted",
        );
    }
    let size = data.len();
    m.files.insert(filename.clone(), data);
    let modified = m.tick();
    (
        StatusCode::CREATED,
        Json(json!({
            "item": {
                "path": filename,
                "root": "gcodes",
                "modified": modified,
                "size": size,
                "permissions": "rw"
            },
            "print_started": false,
            "print_queued": false,
            "action": "create_file"
        })),
    )
        .into_response()
}

/// "Print Job Management" › "Start a print job" (`"ok"`), with Klipper's
/// `SDCARD_PRINT_FILE` behind it: "SD busy" while printing; while *paused* the paused
/// print is replaced (Moonraker records it `cancelled`).
async fn print_start(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let Some(filename) = query_args(&raw).remove("filename") else {
        return error(StatusCode::BAD_REQUEST, "No data for argument: filename");
    };
    let mut m = fake.machine();
    m.starts += 1;
    if m.state == "printing" {
        return error(StatusCode::BAD_REQUEST, "SD busy");
    }
    if !m.files.contains_key(&filename) {
        return error(StatusCode::BAD_REQUEST, "Unable to open file");
    }
    if m.current.is_some() {
        m.finish_job("cancelled");
    }
    m.state = "printing";
    m.filename = filename.clone();
    m.message.clear();
    m.progress = 0.0;
    m.print_duration = 0.0;
    m.current = Some(m.add_job(&filename, "in_progress"));
    result(json!("ok"))
}

/// "Print Job Management" › "Cancel a print job" (`"ok"`; Klipper's cancel does not
/// refuse on an idle printer).
async fn print_cancel(State(fake): State<Fake>) -> Response {
    let mut m = fake.machine();
    m.cancels += 1;
    if matches!(m.state, "printing" | "paused") {
        m.state = "cancelled";
        m.finish_job("cancelled");
    }
    result(json!("ok"))
}

/// "Print Job Management" › "Pause a print job".
async fn print_pause(State(fake): State<Fake>) -> Response {
    let mut m = fake.machine();
    if m.state == "printing" {
        m.state = "paused";
    }
    result(json!("ok"))
}

/// "File Management" › "Get GCode Metadata"; 404 "Metadata not available for <…>" when
/// there is none (Moonraker's `_handle_metadata_request`).
async fn metadata(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let filename = query_args(&raw).remove("filename").unwrap_or_default();
    let m = fake.machine();
    let Some(data) = m.files.get(&filename) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Metadata not available for <{filename}>"),
        );
    };
    let last = m.history.iter().rev().find(|j| j.filename == filename);
    result(json!({
        "size": data.len(),
        "modified": 1706359465.4947228,
        "uuid": "473a41d2-15f4-434b-aeb4-ab96eb122bbf",
        "file_processors": [],
        "slicer": null,
        "thumbnails": [],
        "print_start_time": last.map(|j| j.start_time),
        "job_id": last.map(|j| format!("{:06X}", j.id)),
        "filename": filename
    }))
}

/// "Job History" › "Get job list": `limit` (50), `start` (0), `order` (`desc`).
async fn history_list(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let args = query_args(&raw);
    let number = |key: &str, default: usize| {
        args.get(key)
            .map_or(Some(default), |v| v.parse::<usize>().ok())
    };
    let (Some(limit), Some(start)) = (number("limit", 50), number("start", 0)) else {
        return error(StatusCode::BAD_REQUEST, "Invalid argument");
    };
    let order = args.get("order").map_or("desc", String::as_str);
    let m = fake.machine();
    let ordered: Vec<&Job> = match order {
        "desc" => m.history.iter().rev().collect(),
        "asc" => m.history.iter().collect(),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid `order` value: {}", other.to_uppercase()),
            )
        }
    };
    let jobs: Vec<Value> = ordered
        .into_iter()
        .skip(start)
        .take(if limit > 0 { limit } else { usize::MAX })
        .map(|j| {
            json!({
                "job_id": format!("{:06X}", j.id),
                "exists": m.files.contains_key(&j.filename),
                "end_time": j.end_time,
                "filament_used": 7.83,
                "filename": j.filename,
                "metadata": {},
                "print_duration": 18.4,
                "status": j.status,
                "start_time": j.start_time,
                "total_duration": 18.4,
                "user": "_API_KEY_USER_",
                "auxiliary_data": []
            })
        })
        .collect();
    result(json!({"count": jobs.len(), "jobs": jobs}))
}

/// Any route Moonraker does not have.
async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// A fake Moonraker on a free local port: its base URL and the hooks.
async fn fake(key: Option<&'static str>) -> (String, Fake) {
    let fake = Fake {
        machine: Arc::new(Mutex::new(Machine {
            klippy: Klippy::Connected("ready", "Printer is ready"),
            files: BTreeMap::new(),
            state: "standby",
            filename: String::new(),
            message: String::new(),
            print_duration: 0.0,
            progress: 0.0,
            nozzle: (22.5, 0.0),
            bed: (21.9, 0.0),
            history: Vec::new(),
            current: None,
            starts: 0,
            cancels: 0,
            clock: 1_700_000_000.0,
        })),
        key,
    };
    let app = Router::new()
        .route("/printer/info", get(printer_info))
        .route("/server/info", get(server_info))
        .route("/printer/objects/query", get(objects_query))
        .route("/server/files/upload", post(upload))
        .route("/printer/print/start", post(print_start))
        .route("/printer/print/cancel", post(print_cancel))
        .route("/printer/print/pause", post(print_pause))
        .route("/server/files/metadata", get(metadata))
        .route("/server/history/list", get(history_list))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(fake.clone(), check_key))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the fake serves");
    });
    (url, fake)
}

async fn moonraker() -> (Moonraker, Fake) {
    let (url, fake) = fake(Some(KEY)).await;
    let host = Moonraker::new(&url, Some(KEY.to_owned())).expect("an adapter");
    (host, fake)
}

/// Uploaded and started: the fake prints `FILE`.
/// Uploads `content` as `name` the way the driver does: from a file on disk, by path.
async fn upload_file(host: &Moonraker, name: &str, content: &[u8]) -> Result<(), HostError> {
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    std::fs::write(file.path(), content).expect("written");
    let size = u64::try_from(content.len()).expect("a size");
    host.upload(name, file.path(), size).await
}

async fn printing() -> (Moonraker, Fake) {
    let (host, fake) = moonraker().await;
    upload_file(&host, FILE, GCODE).await.expect("uploaded");
    host.start(FILE).await.expect("started");
    (host, fake)
}

#[tokio::test]
async fn an_idle_printer_probes_idle_with_temperatures() {
    let (host, _fake) = moonraker().await;
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Idle);
    assert_eq!(report.message.as_deref(), Some("standby"));
    assert_eq!((report.file, report.progress), (None, None));
    assert_eq!(
        report.nozzle,
        Some(Temperature {
            actual: 22.5,
            target: Some(0.0)
        })
    );
    assert_eq!(
        report.bed,
        Some(Temperature {
            actual: 21.9,
            target: Some(0.0)
        })
    );
}

#[tokio::test]
async fn an_uploaded_file_is_stored_and_has_a_zero_record() {
    let (host, fake) = moonraker().await;
    assert_eq!(host.record(FILE).await.expect("a record"), None);
    upload_file(&host, FILE, GCODE).await.expect("uploaded");
    assert_eq!(
        fake.machine().files.get(FILE).map(Vec::as_slice),
        Some(GCODE)
    );
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord::default())
    );
    assert_eq!(
        host.record("raft3d-other.gcode").await.expect("a record"),
        None
    );
    // Uploading again replaces it.
    upload_file(&host, FILE, b"G28\n")
        .await
        .expect("uploaded again");
    assert_eq!(
        fake.machine().files.get(FILE).map(Vec::as_slice),
        Some(&b"G28\n"[..])
    );
}

#[tokio::test]
async fn a_started_print_probes_printing_with_file_and_progress() {
    let (host, fake) = printing().await;
    fake.advance(0.25, 30.0);
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Printing);
    assert_eq!(report.message.as_deref(), Some("printing"));
    assert_eq!(report.file.as_deref(), Some(FILE));
    assert_eq!(report.progress, Some(25.0));
    assert_eq!(report.seconds_left, Some(90));
    // A print under way is not a record yet, and a second start is refused.
    assert!(matches!(
        host.record(FILE).await,
        Err(HostError::Conflict(_))
    ));
    match host.start(FILE).await {
        Err(HostError::Conflict(text)) => assert!(text.contains("printing"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.machine().starts, 1, "the second start was not sent");
    // Uploading over the file being printed: Moonraker's 403 is no key problem.
    assert!(matches!(
        upload_file(&host, FILE, GCODE).await,
        Err(HostError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_start_while_paused_is_refused_and_the_paused_print_stays() {
    let (host, fake) = printing().await;
    fake.advance(0.5, 12.0);
    fake.pause();
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Paused);
    assert_eq!(report.file.as_deref(), Some(FILE));
    assert_eq!(report.progress, Some(50.0));
    upload_file(&host, "raft3d-j2.gcode", GCODE)
        .await
        .expect("uploaded");
    match host.start("raft3d-j2.gcode").await {
        Err(HostError::Conflict(text)) => assert!(text.contains("paused"), "{text}"),
        other => panic!("{other:?}"),
    }
    let m = fake.machine();
    assert_eq!((m.state, m.filename.as_str()), ("paused", FILE));
    assert_eq!(m.progress, 0.5);
    assert_eq!(m.starts, 1, "no start reached Moonraker");
    assert_eq!(m.history.len(), 1);
    assert_eq!(m.history[0].status, "in_progress");
}

/// What the adapter's check guards against: the fake, like Klipper, replaces a paused
/// print when a start does reach it.
#[tokio::test]
async fn the_fake_like_klipper_replaces_a_paused_print() {
    let (url, fake) = fake(None).await;
    let http = reqwest::Client::new();
    let host = Moonraker::new(&url, None).expect("an adapter");
    upload_file(&host, FILE, GCODE).await.expect("uploaded");
    upload_file(&host, "raft3d-j2.gcode", GCODE)
        .await
        .expect("uploaded");
    host.start(FILE).await.expect("started");
    fake.pause();
    let answer = http
        .post(format!(
            "{url}/printer/print/start?filename=raft3d-j2.gcode"
        ))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let m = fake.machine();
    assert_eq!(
        (m.state, m.filename.as_str()),
        ("printing", "raft3d-j2.gcode")
    );
    assert_eq!(m.history[0].status, "cancelled");
}

#[tokio::test]
async fn a_finished_print_is_one_success() {
    let (host, fake) = printing().await;
    fake.finish();
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Idle);
    assert_eq!(report.message.as_deref(), Some("complete"));
    assert_eq!(report.file.as_deref(), Some(FILE));
    assert_eq!(report.progress, None);
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 1,
            failure: 0,
            last_success: Some(true)
        })
    );
    // The history outlives the file.
    fake.machine().files.remove(FILE);
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 1,
            failure: 0,
            last_success: Some(true)
        })
    );
}

#[tokio::test]
async fn a_finish_not_yet_in_the_history_is_no_record() {
    let (host, fake) = printing().await;
    fake.finish_print_stats_only();
    assert_eq!(
        host.probe().await.expect("a report").state,
        PrinterState::Idle
    );
    match host.record(FILE).await {
        Err(HostError::Conflict(text)) => assert!(text.contains("in progress"), "{text}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_print_is_one_failure() {
    let (host, fake) = printing().await;
    host.cancel().await.expect("cancelled");
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Idle);
    assert_eq!(report.message.as_deref(), Some("cancelled"));
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 0,
            failure: 1,
            last_success: Some(false)
        })
    );
    // Nothing runs now: a cancel is refused before it reaches Moonraker.
    assert!(matches!(host.cancel().await, Err(HostError::Conflict(_))));
    assert_eq!(fake.machine().cancels, 1);
    // Printed again to the end: the newest ended job decides.
    host.start(FILE).await.expect("started again");
    fake.finish();
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 1,
            failure: 1,
            last_success: Some(true)
        })
    );
}

#[tokio::test]
async fn a_paused_print_can_be_cancelled() {
    let (host, fake) = printing().await;
    fake.pause();
    host.cancel().await.expect("cancelled");
    assert_eq!(fake.machine().state, "cancelled");
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 0,
            failure: 1,
            last_success: Some(false)
        })
    );
}

#[tokio::test]
async fn the_whole_history_is_read_page_by_page() {
    let (host, fake) = moonraker().await;
    {
        let mut m = fake.machine();
        m.add_job(FILE, "klippy_shutdown");
        for i in 0..250 {
            m.add_job(&format!("raft3d-other{i}.gcode"), "completed");
        }
    }
    // The file's one print is the oldest of 251 entries (three pages of 100).
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 0,
            failure: 1,
            last_success: Some(false)
        })
    );
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_unauthorized() {
    let (url, _fake) = fake(Some(KEY)).await;
    for key in [Some("wrong-key".to_owned()), None] {
        let host = Moonraker::new(&url, key.clone()).expect("an adapter");
        match host.probe().await {
            Err(HostError::Unauthorized { status, message }) => {
                assert_eq!((status, message.as_str()), (401, "Unauthorized"), "{key:?}");
            }
            other => panic!("{key:?}: {other:?}"),
        }
        assert!(upload_file(&host, FILE, GCODE)
            .await
            .expect_err("refused")
            .is_auth());
        assert!(host.record(FILE).await.expect_err("refused").is_auth());
        assert!(host.start(FILE).await.expect_err("refused").is_auth());
        assert!(host.cancel().await.expect_err("refused").is_auth());
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("its address").port()
    };
    let host = Moonraker::new(&format!("http://127.0.0.1:{port}"), Some(KEY.to_owned()))
        .expect("an adapter");
    match host.probe().await {
        Err(HostError::Unreachable { url, why }) => {
            assert_eq!(url, format!("http://127.0.0.1:{port}/printer/info"));
            assert!(why.contains("cannot connect"), "{why}");
            assert!(!why.contains(KEY));
        }
        other => panic!("{other:?}"),
    }
    assert!(host
        .start(FILE)
        .await
        .expect_err("no answer")
        .is_unreachable());
}

#[tokio::test]
async fn klippy_not_ready_is_offline_or_error() {
    let (host, fake) = moonraker().await;
    fake.set_klippy(Klippy::NeverConnected);
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Offline);
    assert_eq!(report.message.as_deref(), Some("Klippy disconnected"));

    fake.set_klippy(Klippy::Disconnected);
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Offline);
    assert_eq!(
        report.message.as_deref(),
        Some("Klippy: Klippy Host not connected")
    );
    assert!(matches!(
        host.start(FILE).await,
        Err(HostError::Conflict(_))
    ));

    fake.set_klippy(Klippy::Connected("startup", "Printer is not ready"));
    assert_eq!(
        host.probe().await.expect("a report").state,
        PrinterState::Offline
    );

    fake.set_klippy(Klippy::Connected(
        "shutdown",
        "Heater extruder not heating at expected rate",
    ));
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Error);
    assert_eq!(
        report.message.as_deref(),
        Some("Klippy shutdown: Heater extruder not heating at expected rate")
    );
    assert_eq!((report.nozzle, report.bed), (None, None));
}

#[tokio::test]
async fn a_print_error_is_an_error() {
    let (host, fake) = printing().await;
    {
        let mut m = fake.machine();
        m.state = "error";
        m.message = "Move out of range: 0.000 0.000 -5.000 [0.000]".to_owned();
        m.finish_job("error");
    }
    let report = host.probe().await.expect("a report");
    assert_eq!(report.state, PrinterState::Error);
    assert_eq!(
        report.message.as_deref(),
        Some("error: Move out of range: 0.000 0.000 -5.000 [0.000]")
    );
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 0,
            failure: 1,
            last_success: Some(false)
        })
    );
}

#[tokio::test]
async fn a_print_that_outlived_a_moonraker_restart_counts_as_klipper_ended_it() {
    let (host, fake) = printing().await;
    fake.restart_moonraker();
    fake.finish();
    assert_eq!(
        fake.machine().history[0].status,
        "interrupted",
        "nothing newer"
    );
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 1,
            failure: 0,
            last_success: Some(true)
        })
    );
}

#[tokio::test]
async fn a_print_lost_with_klipper_stays_a_failure() {
    let (host, fake) = printing().await;
    fake.restart_klipper();
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 0,
            failure: 1,
            last_success: Some(false)
        })
    );
    // Another file printed since: Klipper's "complete" is not this file's.
    let (host, fake) = printing().await;
    fake.restart_moonraker();
    upload_file(&host, "raft3d-j2.gcode", GCODE)
        .await
        .expect("uploaded");
    {
        let mut m = fake.machine();
        m.state = "complete";
        m.filename = "raft3d-j2.gcode".to_owned();
    }
    assert_eq!(
        host.record(FILE).await.expect("a record"),
        Some(PrintRecord {
            success: 0,
            failure: 1,
            last_success: Some(false)
        })
    );
}
