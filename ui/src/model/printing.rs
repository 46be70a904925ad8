//! Printers driven through their hosts, and stored G-code, as staff read them: a
//! printer's condition (its committed status, with the live figures of
//! `GET /api/v1/telemetry` laid over it) and a file's slicer figures. Pure functions,
//! unit-tested here; components only lay them out.

use super::grams;
use app::domain::time::human_duration;
use app::domain::{GcodeFile, PrinterLive, PrinterState, Temperature};
use app::{Id, PrintJob, Printer};

/// What a printer's card says first, and the badge's look. Offline and error differ
/// from the rest in colour *and* border, and their word says it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// No connection: a person moves its jobs.
    Manual,
    /// Connected, no report from its host yet.
    Waiting,
    Offline,
    Error,
    Idle,
    Printing,
    Paused,
}

impl Tone {
    /// The badge's CSS class (style/printers.css).
    pub fn class(self) -> &'static str {
        match self {
            Self::Manual => "printer-manual",
            Self::Waiting => "printer-waiting",
            Self::Offline => "printer-offline",
            Self::Error => "printer-error",
            Self::Idle => "printer-ready",
            Self::Printing => "printer-printing",
            Self::Paused => "printer-paused",
        }
    }

    /// Whether someone should go and look at the printer.
    pub fn needs_attention(self) -> bool {
        matches!(self, Self::Offline | Self::Error)
    }
}

/// The job a printer prints: its id and what to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub id: Id,
    pub name: String,
}

/// Everything a printer's card shows about what the printer does.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub tone: Tone,
    /// "Offline", "Error: HTTP 403: Invalid API key", "Printing", …
    pub headline: String,
    /// What the host said, when the headline does not already say it.
    pub detail: Option<String>,
    /// The job it prints or has paused.
    pub job: Option<JobRef>,
    /// Percent done (0-100), while printing or paused.
    pub progress: Option<f64>,
    /// "42 % · 12 min left".
    pub progress_text: Option<String>,
    /// "Nozzle 214 / 215 °C · Bed 60 / 60 °C", when the host reports temperatures.
    pub temperatures: Option<String>,
}

/// How `printer` reads now. Its state is the committed one (it comes with the board and
/// every change event); `live` (the telemetry report for it, if any) only adds figures,
/// because it is not in the log and may be a poll or two behind or ahead. `jobs` name
/// the job it prints.
pub fn condition(printer: &Printer, live: Option<&PrinterLive>, jobs: &[PrintJob]) -> Condition {
    let mut condition = Condition {
        tone: Tone::Manual,
        headline: "Not connected (jobs move by hand)".to_owned(),
        detail: None,
        job: None,
        progress: None,
        progress_text: None,
        temperatures: None,
    };
    if printer.connection.is_none() {
        return condition;
    }
    condition.temperatures = live.and_then(temperatures);
    let Some(status) = &printer.status else {
        condition.tone = Tone::Waiting;
        condition.headline = "Connected: waiting for its host's first report".to_owned();
        return condition;
    };
    let message = status.message.as_ref().map(|m| m.as_str().to_owned());
    let (tone, word) = match status.state {
        PrinterState::Offline => (Tone::Offline, "Offline"),
        PrinterState::Error => (Tone::Error, "Error"),
        PrinterState::Idle => (Tone::Idle, "Idle"),
        PrinterState::Printing => (Tone::Printing, "Printing"),
        PrinterState::Paused => (Tone::Paused, "Paused"),
    };
    condition.tone = tone;
    condition.headline = match (status.state, &message) {
        (PrinterState::Error, Some(message)) => format!("Error: {message}"),
        _ => word.to_owned(),
    };
    // OctoPrint's own word for printing is "Printing": said once is enough.
    if status.state != PrinterState::Error {
        condition.detail = message.filter(|m| !m.eq_ignore_ascii_case(word));
    }
    if matches!(status.state, PrinterState::Printing | PrinterState::Paused) {
        let job_id = status
            .job_id
            .clone()
            .or_else(|| live.and_then(|l| l.job_id.clone()));
        condition.job = job_id.map(|id| JobRef {
            name: jobs
                .iter()
                .find(|job| job.id == id)
                .map(|job| job.filepath.as_str().to_owned())
                .or_else(|| live.and_then(|l| l.file.clone()))
                .unwrap_or_else(|| id.to_string()),
            id,
        });
        condition.progress = live.and_then(|l| l.progress).map(|p| p.clamp(0.0, 100.0));
        condition.progress_text = live.and_then(progress_text);
    }
    condition
}

/// Whether `printer`'s host says it is offline or in error (someone should look).
pub fn needs_attention(printer: &Printer) -> bool {
    condition(printer, None, &[]).tone.needs_attention()
}

/// The printers connected to a host, those that need attention first, then by id: on a
/// wall screen, the ones someone should walk over to lead.
pub fn connected_first_in_trouble(printers: &[Printer]) -> Vec<&Printer> {
    let mut connected: Vec<&Printer> = printers.iter().filter(|p| p.is_connected()).collect();
    connected.sort_by_key(|p| (!needs_attention(p), p.id.clone()));
    connected
}

/// "42 % · 12 min left", "42 %", or "12 min left".
fn progress_text(live: &PrinterLive) -> Option<String> {
    let percent = live
        .progress
        .map(|p| format!("{:.0}\u{a0}%", p.clamp(0.0, 100.0)));
    let left = live
        .seconds_left
        .map(|s| format!("{} left", human_duration(s.saturating_mul(1000))));
    match (percent, left) {
        (Some(p), Some(l)) => Some(format!("{p} · {l}")),
        (p, l) => p.or(l),
    }
}

fn temperatures(live: &PrinterLive) -> Option<String> {
    let parts: Vec<String> = [("Nozzle", live.nozzle), ("Bed", live.bed)]
        .into_iter()
        .filter_map(|(heater, t)| t.map(|t| format!("{heater} {}", temperature(t))))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// "214 / 215 °C" (actual / target), "23 °C (off)" for a heater set to 0, "23 °C" when
/// the host gives no target.
pub fn temperature(t: Temperature) -> String {
    match t.target {
        Some(target) if target > 0.0 => format!("{:.0} / {:.0} °C", t.actual, target),
        Some(_) => format!("{:.0} °C (off)", t.actual),
        None => format!("{:.0} °C", t.actual),
    }
}

/// The telemetry report for `printer`, if its host answered lately.
pub fn live_of<'a>(reports: &'a [PrinterLive], printer: &Id) -> Option<&'a PrinterLive> {
    reports.iter().find(|r| &r.printer_id == printer)
}

/// A slicer's time estimate: "45 s", "1 min 5 s", "1 h 02 min", "2 d 04 h" (the seconds
/// matter for the short prints a person checks a file by; hours do not need them).
pub fn print_time(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => match seconds % 60 {
            0 => format!("{} min", seconds / 60),
            s => format!("{} min {s} s", seconds / 60),
        },
        _ => human_duration(seconds.saturating_mul(1000)),
    }
}

/// Grams as a slicer gives them: "3.71 g" (at most two decimals), grouped like
/// [`grams`] from a kilogram up.
pub fn slicer_grams(value: f64) -> String {
    if value >= 1000.0 {
        return grams(value.round() as u64);
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} g")
}

/// What a stored file's slicer says it needs: "3.71 g · 1 min 5 s", or `None` when it
/// says nothing.
pub fn file_figures(file: &GcodeFile) -> Option<String> {
    let parts: Vec<String> = [
        file.filament_grams.map(|g| slicer_grams(g.get())),
        file.print_seconds.map(print_time),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// A file's size for people: bytes below a KiB, then KiB, MiB, GiB with one decimal.
pub fn file_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A stored file as a choice in a list: "benchy.gcode · 3.71 g · 1 min 5 s".
pub fn file_choice(file: &GcodeFile) -> String {
    match file_figures(file) {
        Some(figures) => format!("{} · {figures}", file.name.as_str()),
        None => file.name.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::{Connection, ConnectionKind, PrinterStatus, Quantity, Text};

    fn id(s: &str) -> Id {
        Id::parse(s).expect("valid id")
    }

    fn connected(state: Option<(PrinterState, Option<&str>, Option<&str>)>) -> Printer {
        let mut printer = Printer::new(
            id("p1"),
            Text::parse("Prusa").expect("text"),
            Text::parse("MK4").expect("text"),
        );
        printer.connection = Some(Connection {
            kind: ConnectionKind::OctoPrint,
            url: "http://127.0.0.1:9".to_owned(),
            api_key_set: true,
            auto_dispatch: true,
            self_clearing: false,
        });
        printer.status = state.map(|(state, message, job)| PrinterStatus {
            state,
            message: message.map(|m| Text::parse(m).expect("text")),
            job_id: job.map(id),
            since: None,
        });
        printer
    }

    fn live(progress: Option<f64>, seconds_left: Option<u64>) -> PrinterLive {
        PrinterLive {
            printer_id: id("p1"),
            state: PrinterState::Printing,
            file: Some("raft3d-j1.gcode".to_owned()),
            job_id: Some(id("j1")),
            progress,
            seconds_left,
            nozzle: Some(Temperature {
                actual: 214.6,
                target: Some(215.0),
            }),
            bed: Some(Temperature {
                actual: 23.2,
                target: Some(0.0),
            }),
            observed_ms: 0,
        }
    }

    #[test]
    fn a_printer_without_a_connection_says_its_jobs_move_by_hand() {
        let mut printer = connected(None);
        printer.connection = None;
        let c = condition(&printer, Some(&live(Some(10.0), None)), &[]);
        assert_eq!(c.tone, Tone::Manual);
        assert_eq!(c.headline, "Not connected (jobs move by hand)");
        assert_eq!(
            c.temperatures, None,
            "a stale report of a former host is ignored"
        );
    }

    #[test]
    fn offline_and_error_say_so_in_words_and_need_attention() {
        let offline = condition(
            &connected(Some((
                PrinterState::Offline,
                Some("connection refused"),
                None,
            ))),
            None,
            &[],
        );
        assert_eq!(offline.headline, "Offline");
        assert_eq!(offline.detail.as_deref(), Some("connection refused"));
        assert!(offline.tone.needs_attention());
        let error = condition(
            &connected(Some((
                PrinterState::Error,
                Some("HTTP 403: Invalid API key"),
                None,
            ))),
            None,
            &[],
        );
        assert_eq!(error.headline, "Error: HTTP 403: Invalid API key");
        assert_eq!(error.detail, None, "the message is in the headline once");
        assert!(error.tone.needs_attention());
        let idle = condition(
            &connected(Some((PrinterState::Idle, None, None))),
            None,
            &[],
        );
        assert_eq!((idle.tone, idle.headline.as_str()), (Tone::Idle, "Idle"));
        assert!(!idle.tone.needs_attention());
        let waiting = condition(&connected(None), None, &[]);
        assert_eq!(waiting.tone, Tone::Waiting);
    }

    #[test]
    fn a_printing_printer_names_its_job_with_progress_time_left_and_temperatures() {
        let printer = connected(Some((PrinterState::Printing, Some("Printing"), Some("j1"))));
        let job = PrintJob::queued(
            id("j1"),
            id("p1"),
            id("s1"),
            Text::parse("benchy.gcode").expect("text"),
            12,
        );
        let c = condition(&printer, Some(&live(Some(42.4), Some(725))), &[job]);
        assert_eq!(c.headline, "Printing");
        assert_eq!(c.detail, None, "the host's \"Printing\" is not said twice");
        assert_eq!(
            c.job,
            Some(JobRef {
                id: id("j1"),
                name: "benchy.gcode".to_owned()
            })
        );
        assert_eq!(c.progress, Some(42.4));
        assert_eq!(c.progress_text.as_deref(), Some("42\u{a0}% · 12 min left"));
        assert_eq!(
            c.temperatures.as_deref(),
            Some("Nozzle 215 / 215 °C · Bed 23 °C (off)")
        );
        // Not on the board (more than a column's worth of jobs): the host's file name.
        let unknown = condition(&printer, Some(&live(None, Some(30))), &[]);
        assert_eq!(
            unknown.job.map(|j| j.name).as_deref(),
            Some("raft3d-j1.gcode")
        );
        assert_eq!(unknown.progress_text.as_deref(), Some("30 s left"));
        // No telemetry (yet): the state and the job, no figures.
        let bare = condition(&printer, None, &[]);
        assert_eq!(bare.job.map(|j| j.name).as_deref(), Some("j1"));
        assert_eq!((bare.progress, bare.temperatures), (None, None));
    }

    #[test]
    fn connected_printers_in_trouble_come_first() {
        let named = |name: &str, state: Option<PrinterState>| Printer {
            id: id(name),
            ..connected(state.map(|s| (s, None, None)))
        };
        let mut manual = named("a-manual", None);
        manual.connection = None;
        let printers = vec![
            manual,
            named("b-idle", Some(PrinterState::Idle)),
            named("c-error", Some(PrinterState::Error)),
            named("d-waiting", None),
            named("e-offline", Some(PrinterState::Offline)),
        ];
        let order: Vec<&str> = connected_first_in_trouble(&printers)
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(order, ["c-error", "e-offline", "b-idle", "d-waiting"]);
        assert_eq!(printers.iter().filter(|p| needs_attention(p)).count(), 2);
    }

    #[test]
    fn temperatures_read_actual_over_target() {
        let t = |actual, target| temperature(Temperature { actual, target });
        assert_eq!(t(59.6, Some(60.0)), "60 / 60 °C");
        assert_eq!(t(21.0, Some(0.0)), "21 °C (off)");
        assert_eq!(t(21.4, None), "21 °C");
    }

    #[test]
    fn a_file_size_reads_in_bytes_then_binary_units() {
        for (bytes, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (5 * 1024 * 1024 + 300 * 1024, "5.3 MiB"),
            (3 << 30, "3.0 GiB"),
            (5000 << 30, "5000.0 GiB"),
        ] {
            assert_eq!(file_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn slicer_figures_read_as_the_slicer_wrote_them() {
        assert_eq!(print_time(45), "45 s");
        assert_eq!(print_time(65), "1 min 5 s");
        assert_eq!(print_time(120), "2 min");
        assert_eq!(print_time(3_725), "1 h 02 min");
        assert_eq!(slicer_grams(3.71), "3.71 g");
        assert_eq!(slicer_grams(12.0), "12 g");
        assert_eq!(slicer_grams(0.5), "0.5 g");
        assert_eq!(slicer_grams(1234.4), "1\u{202f}234 g");
        let mut file = GcodeFile {
            id: id("f1"),
            name: Text::parse("benchy.gcode").expect("text"),
            size: 10,
            sha256: "00".repeat(32),
            filament_grams: Some(Quantity::new(3.71).expect("grams")),
            filament_mm: None,
            print_seconds: Some(65),
            slicer: None,
            uploaded_at: None,
        };
        assert_eq!(file_choice(&file), "benchy.gcode · 3.71 g · 1 min 5 s");
        file.filament_grams = None;
        file.print_seconds = None;
        assert_eq!(file_figures(&file), None);
        assert_eq!(file_choice(&file), "benchy.gcode");
    }
}
