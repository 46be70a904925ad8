//! etcd as a system under test: a 3-node cluster of Debian's `etcd` (installed by
//! `scripts/install-etcd.sh`), default settings, one data directory per member, driven over
//! its v3 JSON gateway (`/v3/kv/put`, `/v3/kv/range`, `/v3/maintenance/status`).
//!
//! Owns: the etcd processes it starts (killed when dropped) and their log files.

use super::load::{MakeRequest, Request};
use super::{BenchError, Op, System, LEADER_WAIT};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::StatusCode;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The key every linearizable read asks for.
const READ_KEY: &str = "bench/fixture";
/// Bytes of value per put: with a key of 28 bytes, a record of about 150 bytes, like a
/// Raft3D job.
const VALUE_BYTES: usize = 122;

/// One etcd member as started by the benchmark.
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster.
pub struct EtcdCluster {
    exe: PathBuf,
    initial_cluster: String,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `nodes` members (clients on `port + i`, peers on `port + 10 + i`), waits
    /// for a leader and writes the key that reads ask for.
    pub async fn start(
        client: &reqwest::Client,
        exe: &Path,
        nodes: u64,
        data_dir: &Path,
        port: u16,
    ) -> Result<Self, BenchError> {
        let url = |offset: u64| -> Result<String, BenchError> {
            let port = u16::try_from(u64::from(port) + offset).map_err(|_| BenchError::Ports)?;
            Ok(format!("http://{}:{port}", super::LOCALHOST))
        };
        let mut members = Vec::new();
        for i in 0..nodes {
            members.push(Member {
                name: format!("etcd{}", i + 1),
                client_url: url(i)?,
                peer_url: url(10 + i)?,
                data_dir: data_dir.join(format!("etcd{}", i + 1)),
                child: None,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            exe: exe.to_path_buf(),
            initial_cluster,
            members,
        };
        for node in 0..cluster.members.len() {
            cluster.restart(node)?;
        }
        let leader = cluster.urls()[cluster.leader(client).await?].clone();
        let put = put_request(&leader, READ_KEY);
        if !super::load::send(client, &put).await? {
            return Err(BenchError::Setup("etcd's read key"));
        }
        Ok(cluster)
    }

    /// Starts member `node` on its data directory; its output goes to `<data dir>.log`.
    /// With data present etcd ignores the `--initial-*` flags.
    fn start_member(&mut self, node: usize, cluster_state: &str) -> Result<(), BenchError> {
        let Some(member) = self.members.get_mut(node) else {
            return Err(BenchError::Unready("an etcd member with that index"));
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(member.data_dir.with_extension("log"))
            .map_err(BenchError::Etcd)?;
        let log_err = log.try_clone().map_err(BenchError::Etcd)?;
        let child = Command::new(&self.exe)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &member.client_url])
            .args(["--advertise-client-urls", &member.client_url])
            .args(["--listen-peer-urls", &member.peer_url])
            .args(["--initial-advertise-peer-urls", &member.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", "raft3d-bench"])
            .args(["--initial-cluster-state", cluster_state])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(BenchError::Etcd)?;
        member.child = Some(child);
        Ok(())
    }

    /// `(member_id, leader_id)` as member `url` reports them.
    async fn status(client: &reqwest::Client, url: &str) -> Option<(String, String)> {
        let response = client
            .post(format!("{url}/v3/maintenance/status"))
            .body("{}")
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()?;
        let status: Status = response.json().await.ok()?;
        Some((status.header.member_id, status.leader))
    }
}

/// The part of `/v3/maintenance/status` the benchmark reads (ids are decimal strings).
#[derive(Deserialize)]
struct Status {
    header: StatusHeader,
    leader: String,
}

#[derive(Deserialize)]
struct StatusHeader {
    member_id: String,
}

impl System for EtcdCluster {
    /// Kills member `node`, wipes its data directory and replaces it the way etcd's
    /// operations guide says (remove the member, add it again, start it with
    /// `--initial-cluster-state existing`); returns how long it took, from the start, to
    /// reach the revision the leader had.
    async fn wipe_and_catch_up(
        &mut self,
        client: &reqwest::Client,
        node: usize,
    ) -> Result<Duration, BenchError> {
        let leader_url = self.urls()[self.leader(client).await?].clone();
        let target = revision(client, &leader_url, false)
            .await
            .ok_or(BenchError::Unready("the etcd leader's revision"))?;
        let member = self
            .members
            .get(node)
            .ok_or(BenchError::Unready("an etcd member with that index"))?;
        let (member_id, _) = Self::status(client, &member.client_url)
            .await
            .ok_or(BenchError::Unready("the etcd member's id"))?;
        let (peer_url, data_dir) = (member.peer_url.clone(), member.data_dir.clone());
        self.kill(node).await?;
        let remove = serde_json::json!({ "ID": member_id });
        membership_change(client, &leader_url, "remove", &remove).await?;
        std::fs::remove_dir_all(&data_dir).map_err(|source| BenchError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let add = serde_json::json!({ "peerURLs": [peer_url] });
        membership_change(client, &leader_url, "add", &add).await?;
        self.start_member(node, "existing")?;
        let started = tokio::time::Instant::now();
        let url = self.members[node].client_url.clone();
        super::poll_until(
            super::SERVE_WAIT,
            "the wiped etcd member's catch-up",
            || async {
                let reached = revision(client, &url, true).await;
                reached.is_some_and(|r| r >= target).then_some(())
            },
        )
        .await?;
        Ok(started.elapsed())
    }

    fn name(&self) -> &'static str {
        "etcd"
    }

    fn urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The member that says it leads and that a majority of all members names.
    async fn leader(&self, client: &reqwest::Client) -> Result<usize, BenchError> {
        let urls = self.urls();
        super::poll_until(LEADER_WAIT, "an etcd leader", || async {
            let mut statuses = Vec::new();
            for url in &urls {
                statuses.push(Self::status(client, url).await);
            }
            agreed_leader(&statuses)
        })
        .await
    }

    fn requests(&self, op: Op, url: &str) -> MakeRequest {
        match op {
            Op::Write => {
                let url = url.to_owned();
                Arc::new(move |client_no, seq| {
                    put_request(&url, &format!("bench/client-{client_no:04}/{seq:010}"))
                })
            }
            Op::Read => {
                let body = format!(r#"{{"key":"{}"}}"#, BASE64.encode(READ_KEY));
                let request = Request {
                    url: format!("{url}/v3/kv/range"),
                    body: Some(body.into_bytes()),
                    expected: StatusCode::OK,
                };
                Arc::new(move |_, _| request.clone())
            }
        }
    }

    async fn kill(&mut self, node: usize) -> Result<(), BenchError> {
        let mut child = self
            .members
            .get_mut(node)
            .and_then(|m| m.child.take())
            .ok_or(BenchError::Unready("a running etcd member to kill"))?;
        // Fails only if it already exited; wait() reaps it either way.
        let _ = child.start_kill();
        child.wait().await.map_err(BenchError::Etcd)?;
        Ok(())
    }

    /// Starts member `node` (again) on its data directory.
    fn restart(&mut self, node: usize) -> Result<(), BenchError> {
        self.start_member(node, "new")
    }

    fn pid(&self, node: usize) -> Option<u32> {
        self.members.get(node)?.child.as_ref()?.id()
    }

    async fn stop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// The store revision member `url` has applied: linearizable (through the leader) or
/// `serializable` (the member's own, as far as it has caught up). `None`: no answer.
async fn revision(client: &reqwest::Client, url: &str, serializable: bool) -> Option<u64> {
    let body = serde_json::json!({ "key": BASE64.encode(READ_KEY), "serializable": serializable });
    let response = client
        .post(format!("{url}/v3/kv/range"))
        .body(body.to_string())
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let range: Range = response.json().await.ok()?;
    range.header.revision.parse().ok()
}

/// The part of a `/v3/kv/range` answer the benchmark reads (numbers are strings).
#[derive(Deserialize)]
struct Range {
    header: RangeHeader,
}

#[derive(Deserialize)]
struct RangeHeader {
    revision: String,
}

/// `POST /v3/cluster/member/{action}` with `body` on member `url`.
async fn membership_change(
    client: &reqwest::Client,
    url: &str,
    action: &str,
    body: &serde_json::Value,
) -> Result<(), BenchError> {
    let request = Request {
        url: format!("{url}/v3/cluster/member/{action}"),
        body: Some(body.to_string().into_bytes()),
        expected: StatusCode::OK,
    };
    if !super::load::send(client, &request).await? {
        return Err(BenchError::Setup("an etcd membership change"));
    }
    Ok(())
}

/// A put of one record of about 150 bytes (key + value).
fn put_request(url: &str, key: &str) -> Request {
    let value = "x".repeat(VALUE_BYTES);
    let body = format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        BASE64.encode(key),
        BASE64.encode(value)
    );
    Request {
        url: format!("{url}/v3/kv/put"),
        body: Some(body.into_bytes()),
        expected: StatusCode::OK,
    }
}

/// The index of the member that names itself leader and that a strict majority of all
/// members names, from each member's `(member_id, leader_id)` (`None`: no answer).
fn agreed_leader(statuses: &[Option<(String, String)>]) -> Option<usize> {
    statuses.iter().position(|status| {
        let Some((me, leader)) = status else {
            return false;
        };
        let votes = statuses
            .iter()
            .flatten()
            .filter(|(_, named)| named == leader)
            .count();
        me == leader && votes * 2 > statuses.len()
    })
}

/// Checks that the etcd executable (`--etcd`) runs. The benchmark installs nothing:
/// `scripts/install-etcd.sh` does (Debian's `etcd-server`, as root).
pub fn check_runs(exe: &Path) -> Result<PathBuf, BenchError> {
    let runs = std::process::Command::new(exe)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    match runs {
        true => Ok(exe.to_path_buf()),
        false => Err(BenchError::EtcdMissing(exe.display().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(me: &str, leader: &str) -> Option<(String, String)> {
        Some((me.to_owned(), leader.to_owned()))
    }

    #[test]
    fn the_leader_must_name_itself_and_have_a_majority() {
        let all = [status("1", "2"), status("2", "2"), status("3", "2")];
        assert_eq!(agreed_leader(&all), Some(1));
        let two = [None, status("2", "2"), status("3", "2")];
        assert_eq!(agreed_leader(&two), Some(1));
        let alone = [None, status("2", "2"), None];
        assert_eq!(agreed_leader(&alone), None);
        let stale = [status("1", "1"), status("2", "3"), status("3", "3")];
        assert_eq!(agreed_leader(&stale), Some(2));
    }

    #[test]
    fn a_put_carries_a_record_of_about_150_bytes_in_base64() {
        let request = put_request("http://h:1", "bench/client-0001/0000000002");
        let body = String::from_utf8(request.body.unwrap_or_default()).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let decoded_len = |field: &str| {
            let text = parsed[field].as_str().unwrap_or_default();
            BASE64.decode(text).map(|bytes| bytes.len()).unwrap_or(0)
        };
        assert_eq!(decoded_len("key") + decoded_len("value"), 150);
        assert_eq!(request.url, "http://h:1/v3/kv/put");
    }
}
