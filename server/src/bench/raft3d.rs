//! Raft3D as a system under test: a [`LocalCluster`] of this executable (so the release
//! build runs when the benchmark does), a printer and a spool that every job uses, and
//! the REST requests of the benchmark.
//!
//! Owns: that cluster. Speaks only the public REST API, as any client would.

use super::load::{MakeRequest, Request};
use super::{BenchError, Op, System, LEADER_WAIT};
use crate::local_cluster::{wait_for_leader, LocalCluster, LocalClusterArgs};
use app::api::{ClusterView, NewFilament, NewPrinter};
use app::domain::{Text, MAX_WEIGHT_GRAMS};
use app::{FilamentType, Id};
use reqwest::StatusCode;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PRINTER_ID: &str = "bench-printer";
const SPOOL_ID: &str = "bench-spool";

/// A running 3-node (or `nodes`-node) Raft3D cluster with the benchmark's fixture.
pub struct Raft3dCluster {
    cluster: LocalCluster,
}

impl Raft3dCluster {
    /// Starts the nodes, waits for a leader and creates the printer and the spool.
    pub async fn start(
        client: &reqwest::Client,
        nodes: u64,
        data_dir: PathBuf,
        http_port: u16,
        raft_port: u16,
    ) -> Result<Self, BenchError> {
        let cluster = LocalCluster::start(&LocalClusterArgs {
            nodes,
            data_dir,
            host: super::LOCALHOST.to_owned(),
            http_port,
            raft_port,
            // Node logs would drown the progress lines; warnings still show.
            extra: vec!["--log".to_owned(), "warn".to_owned()],
        })?;
        let system = Self { cluster };
        let leader = system.urls()[system.leader(client).await?].clone();
        create_fixture(client, &leader).await?;
        Ok(system)
    }

    /// This node's own view of the cluster (`None` if it does not answer).
    async fn view(&self, client: &reqwest::Client, node: usize) -> Option<ClusterView> {
        let url = format!("{}/api/v1/cluster", self.urls().get(node)?);
        let response = client.get(url).timeout(Duration::from_secs(1)).send().await;
        response.ok()?.json().await.ok()
    }
}

impl System for Raft3dCluster {
    /// Kills follower `node`, wipes its data directory and starts it again; returns how
    /// long it took, from the start, to apply everything the leader had applied (the
    /// leader sends it a snapshot: its log was purged long ago).
    async fn wipe_and_catch_up(
        &mut self,
        client: &reqwest::Client,
        node: usize,
    ) -> Result<Duration, BenchError> {
        let leader = self.leader(client).await?;
        let target = self
            .view(client, leader)
            .await
            .and_then(|view| view.applied_index)
            .ok_or(BenchError::Unready("the leader's applied index"))?;
        self.kill(node).await?;
        let dir = &self.cluster.nodes()[node].data_dir;
        std::fs::remove_dir_all(dir).map_err(|source| BenchError::DataDir {
            path: dir.clone(),
            source,
        })?;
        self.restart(node)?;
        let started = tokio::time::Instant::now();
        super::poll_until(super::SERVE_WAIT, "the wiped node's catch-up", || async {
            let applied = self.view(client, node).await.and_then(|v| v.applied_index);
            applied.is_some_and(|index| index >= target).then_some(())
        })
        .await?;
        Ok(started.elapsed())
    }

    fn name(&self) -> &'static str {
        "Raft3D"
    }

    fn urls(&self) -> Vec<String> {
        self.cluster.http_urls()
    }

    async fn leader(&self, client: &reqwest::Client) -> Result<usize, BenchError> {
        let (id, _) = wait_for_leader(client, &self.urls(), LEADER_WAIT).await?;
        let index = self.cluster.nodes().iter().position(|n| n.id == id);
        index.ok_or(BenchError::Unready("a leader among the started nodes"))
    }

    fn requests(&self, op: Op, url: &str) -> MakeRequest {
        match op {
            Op::Write => {
                let url = format!("{url}/api/v1/print_jobs");
                Arc::new(move |client_no, seq| Request {
                    url: url.clone(),
                    body: Some(job_body(client_no, seq).into_bytes()),
                    expected: StatusCode::CREATED,
                })
            }
            Op::Read => {
                let request = Request {
                    url: format!("{url}/api/v1/printers/{PRINTER_ID}"),
                    body: None,
                    expected: StatusCode::OK,
                };
                Arc::new(move |_, _| request.clone())
            }
        }
    }

    async fn kill(&mut self, node: usize) -> Result<(), BenchError> {
        let id = self.cluster.nodes()[node].id;
        self.cluster.kill(id).await?;
        Ok(())
    }

    fn restart(&mut self, node: usize) -> Result<(), BenchError> {
        let id = self.cluster.nodes()[node].id;
        Ok(self.cluster.restart(id)?)
    }

    fn pid(&self, node: usize) -> Option<u32> {
        self.cluster.nodes().get(node)?.pid()
    }

    async fn stop(&mut self) {
        self.cluster.stop().await;
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
        let request = Request {
            url: format!("{leader}/api/v1/{collection}"),
            body: Some(body),
            expected: StatusCode::CREATED,
        };
        if !super::load::send(client, &request).await? {
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
}
