//! [`OctoPrintProcess`]: a real OctoPrint with its virtual printer, as a child process,
//! for the tests of the OctoPrint driver: `scripts/octoprint.sh start BASEDIR PORT APIKEY`,
//! which execs OctoPrint, so the child is OctoPrint itself. Kill (SIGKILL), restart on the
//! same BASEDIR (uploads, users and print history survive), stop when dropped.
//!
//! It does not install OctoPrint: the test script runs `scripts/octoprint.sh install`
//! first, and [`OctoPrintProcess::start`] refuses with a clear error when the venv is
//! missing (installing from several tests at once would race).
//!
//! Each OctoPrint gets a watchdog (`sh`, polling our PID once a second) that SIGKILLs it
//! when this process dies, even by SIGKILL: a crashed test run leaves no OctoPrint behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How often [`OctoPrintProcess::wait_ready`] asks again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Why an OctoPrint could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum OctoPrintError {
    #[error("OctoPrint is not installed ({octoprint} is missing): run `scripts/octoprint.sh install` first")]
    NotInstalled { octoprint: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {script}: {source}")]
    Spawn {
        script: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "OctoPrint on port {port} ended ({status}) before it was ready; the end of {log}:\n{tail}"
    )]
    Exited {
        port: u16,
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("OctoPrint on port {port} not Operational within {within:?}; last: {last}; the end of {log}:\n{tail}")]
    NotReady {
        port: u16,
        within: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },
    #[error("OctoPrint on port {port} is not running")]
    NotRunning { port: u16 },
}

/// One OctoPrint child on 127.0.0.1:`port`, its data in `basedir`, its output in
/// `basedir/octoprint.log` (appended to across restarts).
#[derive(Debug)]
pub struct OctoPrintProcess {
    script: PathBuf,
    basedir: PathBuf,
    port: u16,
    api_key: String,
    log_path: PathBuf,
    /// In a mutex so that [`Self::wait_ready`] (`&self`) can notice an early exit.
    child: Mutex<Option<Child>>,
    /// Kills the child if this process dies.
    watchdog: Option<Child>,
}

impl OctoPrintProcess {
    /// Starts `script start basedir port api_key` (`script`: the repository's
    /// `scripts/octoprint.sh`; `api_key`: `[A-Za-z0-9_-]+`, farm's key). Returns at once:
    /// [`Self::wait_ready`] waits for it to be usable.
    pub fn start(
        script: &Path,
        basedir: &Path,
        port: u16,
        api_key: &str,
    ) -> Result<Self, OctoPrintError> {
        // The script finds its venv at <repo>/target/octoprint-venv (<repo> = its dir's parent).
        let root = script
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        let octoprint = root.join("target/octoprint-venv/bin/octoprint");
        if !octoprint.is_file() {
            return Err(OctoPrintError::NotInstalled { octoprint });
        }
        std::fs::create_dir_all(basedir).map_err(|source| OctoPrintError::Io {
            path: basedir.to_owned(),
            source,
        })?;
        let mut process = Self {
            script: script.to_owned(),
            basedir: basedir.to_owned(),
            port,
            api_key: api_key.to_owned(),
            log_path: basedir.join("octoprint.log"),
            child: Mutex::new(None),
            watchdog: None,
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> Result<(), OctoPrintError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OctoPrintError::Io { path, source }
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(io(&self.log_path))?;
        let log_err = log.try_clone().map_err(io(&self.log_path))?;
        let child = Command::new(&self.script)
            .arg("start")
            .arg(&self.basedir)
            .arg(self.port.to_string())
            .arg(&self.api_key)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| OctoPrintError::Spawn {
                script: self.script.clone(),
                source,
            })?;
        // Best effort: without it, only a test process that dies by SIGKILL leaks.
        self.watchdog = Command::new("sh")
            .args([
                "-c",
                r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null"#,
                "raft3d-octoprint-watchdog",
                &std::process::id().to_string(),
                &child.id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        *self.child_slot() = Some(child);
        Ok(())
    }

    fn child_slot(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `http://127.0.0.1:<port>`, no trailing `/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// farm's API key (for `X-Api-Key`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn basedir(&self) -> &Path {
        &self.basedir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The OctoPrint process's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child_slot().as_ref().map(Child::id)
    }

    /// The last `lines` lines of the script's and OctoPrint's output (a failing test's
    /// evidence; OctoPrint's own log is `basedir/logs/octoprint.log`).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls `GET /api/connection` (with the key) until `current.state` is
    /// `"Operational"`; any error counts as not ready (while it starts OctoPrint refuses,
    /// resets, or sends a broken status line). Fails early if the process ends.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), OctoPrintError> {
        let deadline = Instant::now() + within;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| self.not_ready(within, format!("no HTTP client: {e}")))?;
        let url = format!("{}/api/connection", self.url());
        loop {
            if let Some(status) = self.exit_status() {
                return Err(OctoPrintError::Exited {
                    port: self.port,
                    status,
                    log: self.log_path.clone(),
                    tail: self.log_tail(30),
                });
            }
            if self.child_slot().is_none() {
                return Err(OctoPrintError::NotRunning { port: self.port });
            }
            let last = match connection_state(&http, &url, &self.api_key).await {
                Ok(state) if state == "Operational" => return Ok(()),
                Ok(state) => format!("state {state:?}"),
                Err(why) => why,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(self.not_ready(within, last));
            }
            tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
        }
    }

    fn not_ready(&self, within: Duration, last: String) -> OctoPrintError {
        OctoPrintError::NotReady {
            port: self.port,
            within,
            last,
            log: self.log_path.clone(),
            tail: self.log_tail(30),
        }
    }

    /// How the process ended, if it has (it is then reaped and counts as stopped).
    fn exit_status(&self) -> Option<ExitStatus> {
        let mut slot = self.child_slot();
        let status = slot.as_mut()?.try_wait().ok()??;
        *slot = None;
        Some(status)
    }

    /// Whether the process runs (not killed, not ended on its own).
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none() && self.child_slot().is_some()
    }

    /// SIGKILL, then reap (OctoPrint has no children of its own). Nothing if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child_slot().take() {
            // Fails only if it has already exited; `wait` reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Kills it if it runs and starts it again on the same BASEDIR, port and key; then
    /// [`Self::wait_ready`] again (~1.7 s on 2 cores).
    pub fn restart(&mut self) -> Result<(), OctoPrintError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for OctoPrintProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `current.state` of `GET /api/connection`, or why there is none.
async fn connection_state(http: &reqwest::Client, url: &str, key: &str) -> Result<String, String> {
    let response = http
        .get(url)
        .header("X-Api-Key", key)
        .send()
        .await
        .map_err(|e| format!("no answer: {}", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("unreadable answer: {}", e.without_url()))?;
    body["current"]["state"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no current.state in {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_without_the_venv_names_the_install_step() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("scripts/octoprint.sh");
        let error = OctoPrintProcess::start(&script, &dir.path().join("base"), 1, "key")
            .expect_err("no venv there");
        assert!(matches!(error, OctoPrintError::NotInstalled { .. }));
        assert!(error.to_string().contains("scripts/octoprint.sh install"));
    }
}
