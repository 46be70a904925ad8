//! etcd as a system under test: a 3-node cluster of Debian's `etcd` (installed by
//! `scripts/install-etcd.sh`), one data directory per member, driven over its native
//! gRPC API (tonic, HTTP/2), the protocol etcd's own clients and `etcd benchmark` use:
//! `KV/Put`, `KV/Range` (linearizable: `serializable = false`), `Maintenance/Status`,
//! `Cluster/MemberAdd` and `Cluster/MemberRemove`.
//!
//! Owns: the etcd processes it starts (killed when dropped), their log files, and the
//! few etcd messages it needs ([`pb`], declared by hand: no protoc at build time).

use crate::load::Requester;
use crate::{BenchError, Op, System, LEADER_WAIT, LOCALHOST, REQUEST_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

/// The key every linearizable read asks for.
const READ_KEY: &[u8] = b"bench/fixture";
/// Bytes of value per put: with a key of 28 bytes, a record of about 150 bytes, like a
/// Raft3D job.
const VALUE_BYTES: usize = 122;
/// A status or revision poll waits at most this long for one member.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
const NAME: &str = "etcd";

/// The messages of etcd's `etcdserverpb` (etcd 3.4 `rpc.proto`) that the benchmark
/// sends or reads, with etcd's field numbers. Fields the benchmark never sets or reads
/// are left out: protobuf skips unknown fields and defaults missing ones.
pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResponseHeader {
        #[prost(uint64, tag = "1")]
        pub cluster_id: u64,
        #[prost(uint64, tag = "2")]
        pub member_id: u64,
        #[prost(int64, tag = "3")]
        pub revision: i64,
        #[prost(uint64, tag = "4")]
        pub raft_term: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PutRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub key: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PutResponse {
        #[prost(message, optional, tag = "1")]
        pub header: Option<ResponseHeader>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RangeRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub key: Vec<u8>,
        /// `false`: linearizable (a read index through the leader); `true`: whatever
        /// this member has applied.
        #[prost(bool, tag = "7")]
        pub serializable: bool,
    }

    /// Its key-values (field 2) are skipped: only the answer and its revision matter.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RangeResponse {
        #[prost(message, optional, tag = "1")]
        pub header: Option<ResponseHeader>,
        #[prost(int64, tag = "4")]
        pub count: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusRequest {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusResponse {
        #[prost(message, optional, tag = "1")]
        pub header: Option<ResponseHeader>,
        #[prost(string, tag = "2")]
        pub version: String,
        /// The member this one believes leads (0: none).
        #[prost(uint64, tag = "4")]
        pub leader: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Member {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, repeated, tag = "3")]
        pub peer_urls: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemberAddRequest {
        #[prost(string, repeated, tag = "1")]
        pub peer_urls: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemberAddResponse {
        #[prost(message, optional, tag = "1")]
        pub header: Option<ResponseHeader>,
        #[prost(message, optional, tag = "2")]
        pub member: Option<Member>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemberRemoveRequest {
        #[prost(uint64, tag = "1")]
        pub id: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemberRemoveResponse {
        #[prost(message, optional, tag = "1")]
        pub header: Option<ResponseHeader>,
    }
}

/// gRPC method paths (`/<package>.<service>/<method>`).
const PUT: &str = "/etcdserverpb.KV/Put";
const RANGE: &str = "/etcdserverpb.KV/Range";
const STATUS: &str = "/etcdserverpb.Maintenance/Status";
const MEMBER_ADD: &str = "/etcdserverpb.Cluster/MemberAdd";
const MEMBER_REMOVE: &str = "/etcdserverpb.Cluster/MemberRemove";

/// One unary gRPC call on `channel` (a clone shares its HTTP/2 connection).
async fn call<Req, Resp>(
    channel: &Channel,
    path: &'static str,
    request: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let response = grpc
        .unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(path),
            codec,
        )
        .await?;
    Ok(response.into_inner())
}

/// A membership change, retried every 100 ms for up to [`crate::SERVE_WAIT`]: etcd
/// refuses one ("unhealthy cluster") until every voter has been connected for 5 s
/// (`--strict-reconfig-check`, on by default), and the benchmark has just restarted a
/// member. An operator retries; so does this, before the timed part.
async fn reconfigure<Req, Resp>(
    channel: &Channel,
    path: &'static str,
    request: Req,
) -> Result<Resp, BenchError>
where
    Req: prost::Message + Clone + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let until = tokio::time::Instant::now() + crate::SERVE_WAIT;
    loop {
        match call(channel, path, request.clone()).await {
            Ok(response) => return Ok(response),
            Err(status) if tokio::time::Instant::now() >= until => {
                let status = Box::new(status);
                return Err(BenchError::GrpcCall { call: path, status });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// An HTTP/2 channel to `url`, connected now (so that a measured request never pays
/// for the connection), with the per-request timeout of the whole benchmark.
async fn channel(url: &str, connect_timeout: Duration) -> Result<Channel, BenchError> {
    let endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true);
    Ok(endpoint.connect().await?)
}

/// Makes what etcd's members need to talk over mutual TLS, as Raft3D's nodes do, in
/// `dir`: a CA, and one certificate for 127.0.0.1 that every member serves and presents
/// to its peers (all run on this host); answers the flags that use them. ECDSA P-256,
/// as `raft3d init` makes. Clients stay on plain gRPC, as Raft3D's REST API is plain
/// HTTP.
fn peer_tls_files(dir: &Path) -> Result<Vec<String>, BenchError> {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer};
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut peer = CertificateParams::new(vec![LOCALHOST.to_owned()])?;
    peer.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let peer_key = rcgen::KeyPair::generate()?;
    let peer_pem = peer.signed_by(&peer_key, &issuer)?.pem();
    crate::create_dir(dir)?;
    let files = [
        ("ca.pem", ca_pem),
        ("peer.pem", peer_pem),
        ("peer.key", peer_key.serialize_pem()),
    ];
    for (name, pem) in &files {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(|source| BenchError::DataDir { path, source })?;
    }
    let path = |name: &str| dir.join(name).display().to_string();
    Ok(vec![
        "--peer-trusted-ca-file".to_owned(),
        path("ca.pem"),
        "--peer-cert-file".to_owned(),
        path("peer.pem"),
        "--peer-key-file".to_owned(),
        path("peer.key"),
        "--peer-client-cert-auth".to_owned(),
    ])
}

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
    /// Settings flags of every member.
    flags: Vec<String>,
    /// For `/metrics` only (served over HTTP/1.1 on the client port).
    http: reqwest::Client,
}

impl EtcdCluster {
    /// Starts `nodes` members (clients on `port + i`, peers on `port + 10 + i`, over
    /// mutual TLS when `peer_tls`, with [`peer_tls_files`]'s certificates in `dir/pki`) in
    /// `dir`, waits for a leader and writes the key that reads ask for.
    pub async fn start(
        exe: &Path,
        nodes: u64,
        dir: &Path,
        port: u16,
        mut flags: Vec<String>,
        peer_tls: bool,
    ) -> Result<Self, BenchError> {
        let peer_scheme = if peer_tls {
            flags.extend(peer_tls_files(&dir.join("pki"))?);
            "https"
        } else {
            "http"
        };
        let mut members = Vec::new();
        for i in 0..nodes {
            let (client, peer) = (crate::port(port, i)?, crate::port(port, 10 + i)?);
            members.push(Member {
                name: format!("etcd{}", i + 1),
                client_url: format!("http://{LOCALHOST}:{client}"),
                peer_url: format!("{peer_scheme}://{LOCALHOST}:{peer}"),
                data_dir: dir.join(format!("etcd{}", i + 1)),
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
            flags,
            http: reqwest::Client::builder().timeout(POLL_TIMEOUT).build()?,
        };
        for node in 0..cluster.members.len() {
            cluster.restart(node)?;
        }
        let leader = cluster.leader().await?;
        let fixture = cluster.connect(Op::Write, leader).await?;
        if !fixture.put(READ_KEY.to_vec()).await {
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
            .map_err(process_error)?;
        let log_err = log.try_clone().map_err(process_error)?;
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
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(process_error)?;
        member.child = Some(child);
        Ok(())
    }

    /// `(member_id, leader_id)` as member `url` reports them (`None`: no answer).
    async fn status(url: &str) -> Option<(u64, u64)> {
        let ask = async {
            let channel = channel(url, POLL_TIMEOUT).await.ok()?;
            let status: pb::StatusResponse =
                call(&channel, STATUS, pb::StatusRequest {}).await.ok()?;
            Some((status.header?.member_id, status.leader))
        };
        tokio::time::timeout(POLL_TIMEOUT, ask).await.ok()?
    }
}

impl System for EtcdCluster {
    type Requester = GrpcRequester;

    fn name(&self) -> &'static str {
        NAME
    }

    fn nodes(&self) -> usize {
        self.members.len()
    }

    /// The member that says it leads and that a majority of all members names.
    async fn leader(&self) -> Result<usize, BenchError> {
        crate::poll_until(LEADER_WAIT, "an etcd leader", || async {
            let mut statuses = Vec::new();
            for member in &self.members {
                statuses.push(Self::status(&member.client_url).await);
            }
            agreed_leader(&statuses)
        })
        .await
    }

    /// A gRPC channel of its own (one HTTP/2 connection), as one etcd client holds.
    async fn connect(&self, op: Op, node: usize) -> Result<GrpcRequester, BenchError> {
        let member = self
            .members
            .get(node)
            .ok_or(BenchError::Unready("an etcd member with that index"))?;
        let channel = channel(&member.client_url, POLL_TIMEOUT).await?;
        Ok(GrpcRequester { channel, op })
    }

    async fn kill(&mut self, node: usize) -> Result<(), BenchError> {
        let mut child = self
            .members
            .get_mut(node)
            .and_then(|m| m.child.take())
            .ok_or(BenchError::Unready("a running etcd member to kill"))?;
        // Fails only if it already exited; wait() reaps it either way.
        let _ = child.start_kill();
        child.wait().await.map_err(process_error)?;
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

    /// `GET /metrics` of the member.
    async fn metrics(&self, node: usize) -> Option<String> {
        let url = format!("{}/metrics", self.members.get(node)?.client_url);
        self.http.get(url).send().await.ok()?.text().await.ok()
    }

    /// The fdatasync of the WAL after each batch of Raft entries (proposals arriving
    /// together share one).
    fn append_series(&self) -> &'static str {
        "etcd_disk_wal_fsync_duration_seconds"
    }

    /// Kills member `node`, wipes its data directory and replaces it the way etcd's
    /// operations guide says (remove the member, add it again, start it with
    /// `--initial-cluster-state existing`); returns how long it took, from the start, to
    /// reach the revision the leader had.
    async fn wipe_and_catch_up(&mut self, node: usize) -> Result<Duration, BenchError> {
        let leader = self.leader().await?;
        let leader_url = self.members[leader].client_url.clone();
        let to_leader = channel(&leader_url, POLL_TIMEOUT).await?;
        let target = revision(&to_leader, false)
            .await
            .ok_or(BenchError::Unready("the etcd leader's revision"))?;
        let member = self
            .members
            .get(node)
            .ok_or(BenchError::Unready("an etcd member with that index"))?;
        let (member_id, _) = Self::status(&member.client_url)
            .await
            .ok_or(BenchError::Unready("the etcd member's id"))?;
        let (peer_url, data_dir, url) = (
            member.peer_url.clone(),
            member.data_dir.clone(),
            member.client_url.clone(),
        );
        self.kill(node).await?;
        let remove = pb::MemberRemoveRequest { id: member_id };
        let _: pb::MemberRemoveResponse = reconfigure(&to_leader, MEMBER_REMOVE, remove).await?;
        std::fs::remove_dir_all(&data_dir).map_err(|source| BenchError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let add = pb::MemberAddRequest {
            peer_urls: vec![peer_url],
        };
        let _: pb::MemberAddResponse = reconfigure(&to_leader, MEMBER_ADD, add).await?;
        self.start_member(node, "existing")?;
        let started = tokio::time::Instant::now();
        crate::poll_until(
            crate::SERVE_WAIT,
            "the wiped etcd member's catch-up",
            || async {
                let to_member = channel(&url, POLL_TIMEOUT).await.ok()?;
                let reached = revision(&to_member, true).await;
                reached.is_some_and(|r| r >= target).then_some(())
            },
        )
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

/// One gRPC channel to one member: puts distinct records or reads the fixture key
/// linearizably.
#[derive(Clone)]
pub struct GrpcRequester {
    channel: Channel,
    op: Op,
}

impl GrpcRequester {
    /// Puts one record of about 150 bytes (key + value) under `key`.
    async fn put(&self, key: Vec<u8>) -> bool {
        let request = pb::PutRequest {
            key,
            value: vec![b'x'; VALUE_BYTES],
        };
        let response: Result<pb::PutResponse, _> = call(&self.channel, PUT, request).await;
        response.is_ok()
    }
}

impl Requester for GrpcRequester {
    async fn send(&self, client_no: u64, seq: u64) -> bool {
        match self.op {
            Op::Write => self.put(record_key(client_no, seq)).await,
            Op::Read => {
                let request = pb::RangeRequest {
                    key: READ_KEY.to_vec(),
                    serializable: false,
                };
                let response: Result<pb::RangeResponse, _> =
                    call(&self.channel, RANGE, request).await;
                // The fixture is there from the start: an empty answer is a failure.
                response.is_ok_and(|range| range.count == 1)
            }
        }
    }
}

/// The 28-byte key of record `seq` of client `client_no`.
fn record_key(client_no: u64, seq: u64) -> Vec<u8> {
    format!("bench/client-{client_no:04}/{seq:010}").into_bytes()
}

/// The store revision a member has applied: linearizable (through the leader) or
/// `serializable` (the member's own, as far as it has caught up). `None`: no answer.
async fn revision(channel: &Channel, serializable: bool) -> Option<i64> {
    let request = pb::RangeRequest {
        key: READ_KEY.to_vec(),
        serializable,
    };
    let ask = call::<_, pb::RangeResponse>(channel, RANGE, request);
    let range = tokio::time::timeout(POLL_TIMEOUT, ask).await.ok()?.ok()?;
    Some(range.header?.revision)
}

/// The index of the member that names itself leader and that a strict majority of all
/// members names, from each member's `(member_id, leader_id)` (`None`: no answer).
fn agreed_leader(statuses: &[Option<(u64, u64)>]) -> Option<usize> {
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
    match version(exe) {
        Some(_) => Ok(exe.to_path_buf()),
        None => Err(BenchError::EtcdMissing(exe.display().to_string())),
    }
}

/// The first line of `etcd --version` (`etcd Version: 3.4.23`), if it runs.
pub fn version(exe: &Path) -> Option<String> {
    let output = std::process::Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    output
        .status
        .success()
        .then(|| text.lines().next().unwrap_or_default().trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn the_leader_must_name_itself_and_have_a_majority() {
        let all = [Some((1, 2)), Some((2, 2)), Some((3, 2))];
        assert_eq!(agreed_leader(&all), Some(1));
        let two = [None, Some((2, 2)), Some((3, 2))];
        assert_eq!(agreed_leader(&two), Some(1));
        let alone = [None, Some((2, 2)), None];
        assert_eq!(agreed_leader(&alone), None);
        let stale = [Some((1, 1)), Some((2, 3)), Some((3, 3))];
        assert_eq!(agreed_leader(&stale), Some(2));
    }

    #[test]
    fn a_put_carries_a_record_of_about_150_bytes() {
        assert_eq!(record_key(1, 2).len() + VALUE_BYTES, 150);
        assert_eq!(record_key(1, 2), b"bench/client-0001/0000000002".to_vec());
    }

    /// The bytes etcd's generated Go code writes for these messages: a field's key is
    /// `tag << 3 | wire type`.
    #[test]
    fn messages_use_etcds_field_numbers() {
        let range = pb::RangeRequest {
            key: b"k".to_vec(),
            serializable: true,
        };
        // key: field 1, length-delimited (0x0a); serializable: field 7, varint (0x38).
        assert_eq!(range.encode_to_vec(), vec![0x0a, 1, b'k', 0x38, 1]);
        let put = pb::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        };
        assert_eq!(put.encode_to_vec(), vec![0x0a, 1, b'k', 0x12, 1, b'v']);
        // StatusResponse{header{member_id: 5}, leader: 7}: header field 1 holding field 2.
        let status = pb::StatusResponse::decode(&[0x0a, 2, 0x10, 5, 0x20, 7][..]);
        let Ok(status) = status else {
            panic!("a status answer must decode");
        };
        assert_eq!(status.header.map(|h| h.member_id), Some(5));
        assert_eq!(status.leader, 7);
    }
}
