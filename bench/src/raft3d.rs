//! Raft3D as a system under test: a `raft3d-launcher` [`ProcessCluster`] of the `raft3d`
//! binary given by `--raft3d-bin` (the launcher and leader rule the tests use), a
//! printer and a spool that every job uses, and the benchmark's REST requests through
//! `raft3d-client` (one keep-alive HTTP/1.1 connection per client).
//!
//! Owns: those processes (killed when dropped) and their log files
//! (`<data dir>/node<i>.log`). Speaks only the public REST API, as any client would.

use crate::bulk::BackupRun;
use crate::load::Requester;
use crate::{BenchError, Op, System, LEADER_WAIT, LOCALHOST, REQUEST_TIMEOUT};
use app::domain::MAX_WEIGHT_GRAMS;
use raft3d_client::{
    Call, Client, Method, NewFilamentBody, NewPrinterBody, RetryPolicy, StatusCode,
};
use raft3d_launcher::{Output, PortPlan, ProcessCluster, Spec};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

const PRINTER_ID: &str = "bench-printer";
const SPOOL_ID: &str = "bench-spool";
const NAME: &str = "Raft3D";

/// The `raft3d` executable to start: `--raft3d-bin`, or `raft3d` next to this
/// executable; checked by running `raft3d --version`.
pub fn check_binary(given: Option<&Path>) -> Result<PathBuf, BenchError> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("raft3d")))
            .ok_or_else(|| BenchError::Raft3dMissing("next to raft3d-bench".to_owned()))?,
    };
    let runs = std::process::Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    match runs {
        true => Ok(path),
        false => Err(BenchError::Raft3dMissing(path.display().to_string())),
    }
}

/// A running Raft3D cluster with the benchmark's fixture. Node `i` of the [`System`]
/// trait is the process with Raft id `i + 1`.
pub struct Raft3dCluster {
    processes: ProcessCluster,
    /// The `raft3d` executable (for `raft3d backup`) and the cluster's directory.
    exe: PathBuf,
    dir: PathBuf,
    /// For the benchmark's own control requests (fixture, metrics).
    control: Client,
}

impl Raft3dCluster {
    /// Starts `nodes` nodes (clients on `http_port + i`, Raft on `raft_port + i`) in
    /// `dir`, waits for a leader and creates the printer and the spool.
    pub async fn start(
        exe: &Path,
        nodes: u64,
        dir: &Path,
        (http_port, raft_port): (u16, u16),
        flags: Vec<String>,
    ) -> Result<Self, BenchError> {
        let spec = Spec {
            host: LOCALHOST.to_owned(),
            ports: PortPlan::From {
                http: http_port,
                raft: raft_port,
            },
            data_root: Some(dir.to_path_buf()),
            output: Output::Files,
            ..Spec::new(exe, nodes)
        }
        // Node logs at info would fill the disk over a run; warnings still show.
        .args(["--log", "warn"])
        .args(flags);
        let processes = ProcessCluster::start(spec)?;
        let control = processes.client()?;
        let cluster = Self {
            processes,
            control,
            exe: exe.to_owned(),
            dir: dir.to_owned(),
        };
        cluster.processes.wait_for_leader(LEADER_WAIT).await?;
        cluster.create_fixture().await?;
        Ok(cluster)
    }

    fn id(node: usize) -> u64 {
        node as u64 + 1
    }

    /// Creates the printer and the spool every job uses (the largest spool the domain
    /// accepts: at 1 g per job, which stays `Queued` and keeps its gram, no run comes
    /// close to using it up).
    async fn create_fixture(&self) -> Result<(), BenchError> {
        let printer = NewPrinterBody {
            id: Some(PRINTER_ID.to_owned()),
            company: "Prusa".to_owned(),
            model: "MK4".to_owned(),
        };
        let spool = NewFilamentBody {
            id: Some(SPOOL_ID.to_owned()),
            kind: "PLA".to_owned(),
            color: "grey".to_owned(),
            total_weight_in_grams: MAX_WEIGHT_GRAMS,
            remaining_weight_in_grams: None,
        };
        self.control.create_printer(&printer).await?;
        self.control.create_filament(&spool).await?;
        Ok(())
    }
}

impl System for Raft3dCluster {
    type Requester = RestRequester;

    fn name(&self) -> &'static str {
        NAME
    }

    fn nodes(&self) -> usize {
        self.processes.nodes().len()
    }

    async fn leader(&self) -> Result<usize, BenchError> {
        let leader = self.processes.wait_for_leader(LEADER_WAIT).await?;
        Ok((leader.id - 1) as usize)
    }

    /// A client of its own: one HTTP/1.1 keep-alive connection while one request is in
    /// flight at a time (closed loop), as a REST client holds.
    async fn connect(&self, op: Op, node: usize) -> Result<RestRequester, BenchError> {
        let url = self.processes.url(Self::id(node));
        // One attempt per request, following a follower's redirect once, no waiting out a
        // 503: a failed request is counted, as etcd's are (a gRPC call is one attempt).
        let policy = RetryPolicy {
            deadline: Duration::ZERO,
            request_timeout: REQUEST_TIMEOUT,
            max_redirects: 1,
            ..RetryPolicy::default()
        };
        Ok(RestRequester {
            client: Client::with_policy([url.clone()], policy)?
                .with_token(self.processes.admin_token()),
            node: url.into(),
            op,
        })
    }

    async fn kill(&mut self, node: usize) -> Result<(), BenchError> {
        self.processes.kill(Self::id(node)).await?;
        Ok(())
    }

    /// Starts node `node` again on its data directory, with the same command line.
    fn restart(&mut self, node: usize) -> Result<(), BenchError> {
        Ok(self.processes.restart(Self::id(node))?)
    }

    fn pid(&self, node: usize) -> Option<u32> {
        self.processes.node(Self::id(node)).ok()?.pid()
    }

    async fn stop(&mut self) {
        self.processes.stop(Duration::ZERO).await;
    }

    /// `raft3d backup` from `node` into the cluster's directory, with the memory of the
    /// node and of the command sampled every 20 ms.
    async fn backup(&self, node: usize) -> Option<Result<BackupRun, BenchError>> {
        Some(self.take_backup(node).await)
    }

    /// `GET /metrics` of the node.
    async fn metrics(&self, node: usize) -> Option<String> {
        let url = self.processes.url(Self::id(node));
        let answer = self.control.once(&url, &Call::get("/metrics")).await.ok()?;
        String::from_utf8(answer.body).ok()
    }

    /// Write and fdatasync of a batch of log entries in the WAL (concurrent writes share
    /// an entry).
    fn append_series(&self) -> &'static str {
        "raft3d_log_append_duration_seconds"
    }

    /// Kills follower `node`, wipes its data directory and starts it again; returns how
    /// long it took, from the start, to apply everything the leader had applied (the
    /// leader sends it a snapshot: its log was purged long ago).
    async fn wipe_and_catch_up(&mut self, node: usize) -> Result<Duration, BenchError> {
        let leader = self.processes.wait_for_leader(LEADER_WAIT).await?;
        let target = self
            .processes
            .view(leader.id)
            .await
            .and_then(|view| view.applied_index)
            .ok_or(BenchError::Unready("the leader's applied index"))?;
        let id = Self::id(node);
        self.processes.wipe(id).await?;
        self.processes.restart(id)?;
        let started = tokio::time::Instant::now();
        self.processes
            .wait_applied(id, target, crate::SERVE_WAIT)
            .await?;
        Ok(started.elapsed())
    }
}

impl Raft3dCluster {
    async fn take_backup(&self, node: usize) -> Result<BackupRun, BenchError> {
        let out = self.dir.join("bench.backup");
        let _ = std::fs::remove_file(&out);
        let node_pid = self.pid(node);
        let before = node_pid
            .and_then(crate::bulk::read_memory)
            .map_or(0.0, |m| m.rss_anon_mib);
        let failed = |e: std::io::Error| BenchError::Backup(e.to_string());
        let mut child = tokio::process::Command::new(&self.exe)
            .arg("backup")
            .args(["--cluster", &self.processes.url(Self::id(node))])
            .arg("--out")
            .arg(&out)
            .env(
                "RAFT3D_TOKEN",
                self.processes.admin_token().unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        let started = tokio::time::Instant::now();
        let child_pid = child.id();
        let waited = async {
            let mut client_peak: f64 = 0.0;
            loop {
                tokio::select! {
                    status = child.wait() => return (status, client_peak),
                    () = tokio::time::sleep(Duration::from_millis(20)) => {
                        let memory = child_pid.and_then(crate::bulk::read_memory);
                        client_peak = client_peak.max(memory.map_or(0.0, |m| m.rss_anon_mib));
                    }
                }
            }
        };
        let ((status, client_peak), node_peak) =
            crate::bulk::peak_while(|| node_pid.into_iter().collect(), waited).await;
        let secs = started.elapsed().as_secs_f64();
        if !status.map_err(failed)?.success() {
            let mut why = String::new();
            if let Some(mut err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = err.read_to_string(&mut why).await;
            }
            return Err(BenchError::Backup(why.trim().to_owned()));
        }
        let bytes = std::fs::metadata(&out).map_err(failed)?.len();
        let _ = std::fs::remove_file(&out);
        Ok(BackupRun {
            secs,
            bytes,
            node_rss_anon_mib: (before, node_peak.first().copied().unwrap_or(before)),
            client_peak_mib: client_peak,
        })
    }
}

/// One client (one connection) to one node: creates print jobs or reads the benchmark's
/// printer.
#[derive(Clone)]
pub struct RestRequester {
    client: Client,
    node: Arc<str>,
    op: Op,
}

impl Requester for RestRequester {
    async fn send(&self, client_no: u64, seq: u64) -> bool {
        // Without an Idempotency-Key: etcd's Put has none, and a key makes every write
        // also store a replicated key record (the API's own clients should send one).
        let (call, expected) = match self.op {
            Op::Write => (
                Call::new(Method::POST, "/api/v1/print_jobs")
                    .json_bytes(job_body(client_no, seq).into_bytes())
                    .with_idempotency_key(None),
                StatusCode::CREATED,
            ),
            Op::Read => (
                Call::get(format!("/api/v1/printers/{PRINTER_ID}")),
                StatusCode::OK,
            ),
        };
        let answer = self.client.execute_from(&self.node, &call).await;
        answer.is_ok_and(|answer| answer.status == expected)
    }
}

/// A job creation of about 150 bytes, distinct per client and send. Written by hand,
/// not through `NewPrintJob`, so that building it cannot fail inside the load loop; a
/// test checks that the server's type parses it.
fn job_body(client_no: u64, seq: u64) -> String {
    format!(
        r#"{{"printer_id":"{PRINTER_ID}","filament_id":"{SPOOL_ID}","filepath":"bench/client-{client_no:04}/plate-{seq:010}.gcode","print_weight_in_grams":1}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::NewPrintJob;

    #[test]
    fn the_job_body_is_what_the_server_parses_and_about_150_bytes() {
        let body = job_body(12, 345);
        let parsed = NewPrintJob::from_json(body.as_bytes());
        let Ok(job) = parsed else {
            panic!("the server must accept {body}");
        };
        assert_eq!(
            job.printer_id.as_ref().map(app::Id::as_str),
            Some(PRINTER_ID)
        );
        let app::api::JobSource::Path { filepath, .. } = &job.source else {
            panic!("a job by path: {body}");
        };
        assert_eq!(
            filepath.as_str(),
            "bench/client-0012/plate-0000000345.gcode"
        );
        assert!((130..=170).contains(&body.len()), "{} bytes", body.len());
    }

    #[test]
    fn a_missing_raft3d_binary_is_named() {
        let missing = Path::new("/nonexistent/raft3d");
        let Err(e) = check_binary(Some(missing)) else {
            panic!("a missing binary must be refused");
        };
        assert!(e.to_string().contains("/nonexistent/raft3d"));
    }
}
