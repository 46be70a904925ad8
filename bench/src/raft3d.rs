//! Raft3D as a system under test: `nodes` `raft3d serve` processes of the `raft3d`
//! binary given by `--raft3d-bin`, a printer and a spool that every job uses, and the
//! REST requests of the benchmark (reqwest, HTTP/1.1 keep-alive, as our REST clients).
//!
//! The nodes are started here for now; testkit's `ProcessCluster` replaces this launcher
//! later. Which node leads is testkit's one rule ([`raft3d_testkit::leader::wait_for`]).
//!
//! Owns: those processes (killed when dropped) and their log files
//! (`<data dir>/node<i>.log`). Speaks only the public REST API, as any client would.

use crate::load::Requester;
use crate::{BenchError, Op, System, LEADER_WAIT, LOCALHOST, REQUEST_TIMEOUT};
use app::api::{ClusterView, NewFilament, NewPrinter};
use app::domain::{Text, MAX_WEIGHT_GRAMS};
use app::{FilamentType, Id};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

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

/// One `raft3d serve` process as started by the benchmark.
struct Node {
    /// Raft node id (1-based).
    id: u64,
    http_url: String,
    http_addr: String,
    raft_addr: String,
    data_dir: PathBuf,
    child: Option<Child>,
}

/// A running Raft3D cluster with the benchmark's fixture.
pub struct Raft3dCluster {
    exe: PathBuf,
    /// For the benchmark's own control requests (cluster views, fixture).
    http: reqwest::Client,
    nodes: Vec<Node>,
    peers: String,
    /// Settings flags of every node.
    flags: Vec<String>,
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
        let mut planned = Vec::new();
        for i in 0..nodes {
            let (http, raft) = (crate::port(http_port, i)?, crate::port(raft_port, i)?);
            planned.push(Node {
                id: i + 1,
                http_url: format!("http://{LOCALHOST}:{http}"),
                http_addr: format!("{LOCALHOST}:{http}"),
                raft_addr: format!("{LOCALHOST}:{raft}"),
                data_dir: dir.join(format!("node{}", i + 1)),
                child: None,
            });
        }
        let peers = planned
            .iter()
            .map(|n| format!("{}={}", n.id, n.raft_addr))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            exe: exe.to_path_buf(),
            http: http_client()?,
            nodes: planned,
            peers,
            flags,
        };
        // On error, `cluster` is dropped and kill_on_drop stops the nodes already started.
        for node in 0..cluster.nodes.len() {
            cluster.restart(node)?;
        }
        let leader = cluster.nodes[cluster.leader().await?].http_url.clone();
        create_fixture(&cluster.http, &leader).await?;
        Ok(cluster)
    }

    /// This node's own view of the cluster (`None` if it does not answer).
    async fn view(&self, node: usize) -> Option<ClusterView> {
        let url = format!("{}/api/v1/cluster", self.nodes.get(node)?.http_url);
        let response = self.http.get(url).timeout(Duration::from_secs(1)).send();
        response.await.ok()?.json().await.ok()
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.http_url.clone()).collect()
    }
}

impl System for Raft3dCluster {
    type Requester = RestRequester;

    fn name(&self) -> &'static str {
        NAME
    }

    fn nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn leader(&self) -> Result<usize, BenchError> {
        let id = raft3d_testkit::leader::wait_for(&self.urls(), LEADER_WAIT)
            .await?
            .id;
        let index = self.nodes.iter().position(|n| n.id == id);
        index.ok_or(BenchError::Unready("a leader among the started nodes"))
    }

    /// A reqwest client of its own: one HTTP/1.1 keep-alive connection while one request
    /// is in flight at a time (closed loop), as our REST clients hold.
    async fn connect(&self, op: Op, node: usize) -> Result<RestRequester, BenchError> {
        let base = &self
            .nodes
            .get(node)
            .ok_or(BenchError::Unready("a Raft3D node with that index"))?
            .http_url;
        let url = match op {
            Op::Write => format!("{base}/api/v1/print_jobs"),
            Op::Read => format!("{base}/api/v1/printers/{PRINTER_ID}"),
        };
        Ok(RestRequester {
            client: http_client()?,
            url: url.into(),
            op,
        })
    }

    async fn kill(&mut self, node: usize) -> Result<(), BenchError> {
        let mut child = self
            .nodes
            .get_mut(node)
            .and_then(|n| n.child.take())
            .ok_or(BenchError::Unready("a running Raft3D node to kill"))?;
        // Fails only if it already exited; wait() reaps it either way.
        let _ = child.start_kill();
        child.wait().await.map_err(process_error)?;
        Ok(())
    }

    /// Starts node `node` (again) on its data directory, with the same command line;
    /// its output goes to `<data dir>.log`.
    fn restart(&mut self, node: usize) -> Result<(), BenchError> {
        let Some(n) = self.nodes.get_mut(node) else {
            return Err(BenchError::Unready("a Raft3D node with that index"));
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.data_dir.with_extension("log"))
            .map_err(process_error)?;
        let log_err = log.try_clone().map_err(process_error)?;
        let child = Command::new(&self.exe)
            // Node logs at info would fill the disk over a run; warnings still show.
            .args(["--log", "warn", "serve"])
            .args(["--id", &n.id.to_string()])
            .args(["--http-addr", &n.http_addr])
            .args(["--raft-addr", &n.raft_addr])
            .arg("--data-dir")
            .arg(&n.data_dir)
            .args(["--peers", &self.peers])
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(process_error)?;
        n.child = Some(child);
        Ok(())
    }

    fn pid(&self, node: usize) -> Option<u32> {
        self.nodes.get(node)?.child.as_ref()?.id()
    }

    async fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    /// From `GET /metrics`: `raft3d_log_append_duration_seconds` (write and fsync of a
    /// redb commit of the log, one per Raft entry; concurrent writes share an entry).
    async fn durable_appends(&self, node: usize) -> Option<(f64, f64)> {
        let url = format!("{}/metrics", self.nodes.get(node)?.http_url);
        let response = self.http.get(url).timeout(Duration::from_secs(1)).send();
        let text = response.await.ok()?.text().await.ok()?;
        crate::usage::histogram_totals(&text, "raft3d_log_append_duration_seconds")
    }

    /// Kills follower `node`, wipes its data directory and starts it again; returns how
    /// long it took, from the start, to apply everything the leader had applied (the
    /// leader sends it a snapshot: its log was purged long ago).
    async fn wipe_and_catch_up(&mut self, node: usize) -> Result<Duration, BenchError> {
        let leader = self.leader().await?;
        let target = self
            .view(leader)
            .await
            .and_then(|view| view.applied_index)
            .ok_or(BenchError::Unready("the leader's applied index"))?;
        self.kill(node).await?;
        let dir = self.nodes[node].data_dir.clone();
        std::fs::remove_dir_all(&dir)
            .map_err(|source| BenchError::DataDir { path: dir, source })?;
        self.restart(node)?;
        let started = tokio::time::Instant::now();
        crate::poll_until(crate::SERVE_WAIT, "the wiped node's catch-up", || async {
            let applied = self.view(node).await.and_then(|v| v.applied_index);
            applied.is_some_and(|index| index >= target).then_some(())
        })
        .await?;
        Ok(started.elapsed())
    }
}

fn process_error(source: std::io::Error) -> BenchError {
    BenchError::Process {
        system: NAME,
        source,
    }
}

/// HTTP/1.1 only (the workspace's reqwest has no HTTP/2), no redirects followed by
/// reqwest itself ([`send`] follows one, as a client routing itself would).
fn http_client() -> Result<reqwest::Client, BenchError> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()?)
}

/// One connection (a reqwest client) to one node: creates print jobs or reads the
/// benchmark's printer.
#[derive(Clone)]
pub struct RestRequester {
    client: reqwest::Client,
    url: Arc<str>,
    op: Op,
}

impl Requester for RestRequester {
    async fn send(&self, client_no: u64, seq: u64) -> bool {
        let (body, expected) = match self.op {
            Op::Write => (Some(job_body(client_no, seq)), StatusCode::CREATED),
            Op::Read => (None, StatusCode::OK),
        };
        let sent = send(&self.client, &self.url, body.map(String::into_bytes)).await;
        sent.is_ok_and(|status| status == expected)
    }
}

/// POSTs `body` as JSON (or GETs without one) and follows at most one `307` to the
/// `Location`, as a client that routes itself would (Raft3D followers redirect writes to
/// the leader). A second redirect is not followed: it means leadership is moving, which
/// the error count shows. Returns the final status.
async fn send(
    client: &reqwest::Client,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<StatusCode, reqwest::Error> {
    match exchange(client, url, body.clone()).await? {
        (_, Some(leader_url)) => Ok(exchange(client, &leader_url, body).await?.0),
        (status, None) => Ok(status),
    }
}

/// One HTTP exchange: its status and, for a `307`, the `Location` to follow. The body is
/// read to the end so that the connection goes back to the pool.
async fn exchange(
    client: &reqwest::Client,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Option<String>), reqwest::Error> {
    let request = match body {
        Some(body) => client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body),
        None => client.get(url),
    };
    let response = request.send().await?;
    let status = response.status();
    let location = if status == StatusCode::TEMPORARY_REDIRECT {
        response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    } else {
        None
    };
    response.bytes().await?;
    Ok((status, location))
}

/// A job creation of about 150 bytes, distinct per client and send. Written by hand,
/// not through `NewPrintJob`, so that building it cannot fail inside the load loop; a
/// test checks that the server's type parses it.
fn job_body(client_no: u64, seq: u64) -> String {
    format!(
        r#"{{"printer_id":"{PRINTER_ID}","filament_id":"{SPOOL_ID}","filepath":"bench/client-{client_no:04}/plate-{seq:010}.gcode","print_weight_in_grams":1}}"#
    )
}

/// Creates the printer and the spool every job uses (the largest spool the domain
/// accepts: at 1 g per job, which stays `Queued` and keeps its gram, no run comes close
/// to using it up).
async fn create_fixture(client: &reqwest::Client, leader: &str) -> Result<(), BenchError> {
    let printer = NewPrinter {
        id: Some(Id::parse(PRINTER_ID)?),
        company: Text::parse("Prusa")?,
        model: Text::parse("MK4")?,
    };
    let spool = NewFilament {
        id: Some(Id::parse(SPOOL_ID)?),
        kind: FilamentType::Pla,
        color: Text::parse("grey")?,
        total_weight_in_grams: MAX_WEIGHT_GRAMS,
        remaining_weight_in_grams: None,
    };
    let steps = [
        ("printer", "printers", serde_json::to_vec(&printer)?),
        ("spool", "filaments", serde_json::to_vec(&spool)?),
    ];
    for (what, collection, body) in steps {
        let url = format!("{leader}/api/v1/{collection}");
        if send(client, &url, Some(body)).await? != StatusCode::CREATED {
            return Err(BenchError::Setup(what));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::NewPrintJob;

    #[test]
    fn the_job_body_is_what_the_server_parses_and_about_150_bytes() {
        let body = job_body(12, 345);
        let parsed: Result<NewPrintJob, _> = serde_json::from_str(&body);
        let Ok(job) = parsed else {
            panic!("the server must accept {body}");
        };
        assert_eq!(job.printer_id.as_str(), PRINTER_ID);
        assert_eq!(
            job.filepath.as_str(),
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
