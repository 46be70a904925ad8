//! A node's configuration: a typed struct built from command-line flags (each also
//! settable from the environment), with defaults tuned for a loaded 2-core machine.
//! Tests build it directly and change fields (port 0, temp dir, short timeouts).

use crate::pki::{PeerTls, PkiError};
use crate::raft::typ::NodeId;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `raft3d serve` flags. A node made by `raft3d init` needs one: `--node-dir`; every
/// other flag overrides what its `node.json` says.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Node directory made by `raft3d init`: `node.json` (id, cluster id, addresses,
    /// peers), the cluster's CA certificate, this node's certificate and key, and `data/`.
    #[arg(long, env = "RAFT3D_NODE_DIR", value_name = "DIR")]
    pub node_dir: Option<PathBuf>,
    /// Run without peer TLS: anyone who reaches the Raft port can join the cluster's
    /// traffic and replace its data. For experiments on one machine only.
    #[arg(long, env = "RAFT3D_INSECURE")]
    pub insecure: bool,
    /// This node's id: a positive integer, unique in the cluster, never reused.
    #[arg(long, env = "RAFT3D_ID", value_parser = clap::value_parser!(u64).range(1..))]
    pub id: Option<NodeId>,
    /// Where clients (REST API, dashboard, metrics) connect. Default: 127.0.0.1:8081.
    #[arg(long, env = "RAFT3D_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Where peers connect for Raft traffic. Default: 127.0.0.1:9081.
    #[arg(long, env = "RAFT3D_RAFT_ADDR")]
    pub raft_addr: Option<SocketAddr>,
    /// Directory for this node's redb files (created if missing). Default: DIR/data of
    /// --node-dir.
    #[arg(long, env = "RAFT3D_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Initial voters of a NEW cluster, as `id=host:port` of their Raft addresses, the same
    /// list on every node. Ignored once the node has state; omit it on a node that will be
    /// added to a running cluster with `raft3d add-node`.
    #[arg(long, env = "RAFT3D_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<(NodeId, String)>,
    /// This farm's cluster id, the same on every node. A data directory of another cluster
    /// is refused, and so are peers of another cluster. Default: derived from --peers when
    /// the data directory is created (two farms with different peer lists never mix); a
    /// node started without --peers takes the id of the cluster that adds it.
    #[arg(long, env = "RAFT3D_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// URL clients should use for this node when it differs from --http-addr (e.g. the node
    /// listens on 0.0.0.0). Default: `http://<http-addr>`.
    #[arg(long, env = "RAFT3D_ADVERTISE_HTTP")]
    pub advertise_http: Option<String>,
    #[command(flatten)]
    pub node: NodeConfig,
}

/// A node's configuration, resolved ([`ServeArgs::resolve`]) or built by a test.
#[derive(Debug, Clone, Args)]
pub struct NodeConfig {
    #[arg(skip)]
    pub id: NodeId,
    #[arg(skip = SocketAddr::from(([127, 0, 0, 1], 8081)))]
    pub http_addr: SocketAddr,
    #[arg(skip = SocketAddr::from(([127, 0, 0, 1], 9081)))]
    pub raft_addr: SocketAddr,
    #[arg(skip)]
    pub data_dir: PathBuf,
    #[arg(skip)]
    pub peers: Vec<(NodeId, String)>,
    #[arg(skip)]
    pub cluster_id: Option<String>,
    #[arg(skip)]
    pub advertise_http: Option<String>,
    /// Peer TLS; `None` runs without (`--insecure`).
    #[arg(skip)]
    pub peer_tls: Option<PeerTls>,
    /// Whether API callers need a token (off with `--insecure`).
    #[arg(skip)]
    pub client_auth: bool,
    /// SHA-256 (hex) of the admin token `raft3d init` made (`node.json`).
    #[arg(skip)]
    pub admin_token_sha256: Option<String>,
    /// Seals printers' API keys (`crate::secret`): `cluster.secret` of the node
    /// directory. `None` without one: connections then cannot store an API key.
    #[arg(skip)]
    pub cluster_secret: Option<std::sync::Arc<crate::secret::ClusterSecret>>,
    /// Largest G-code file accepted by `POST /api/v1/files`, in MiB.
    #[arg(long, env = "RAFT3D_MAX_UPLOAD_MIB", default_value_t = 512)]
    pub max_upload_mib: u64,
    /// Serve the client port over HTTPS with this certificate (PEM chain; with
    /// --https-key). `raft3d init --https` makes one signed by the cluster's CA; any
    /// other (your own CA, a public one) works too.
    #[arg(
        long,
        env = "RAFT3D_HTTPS_CERT",
        requires = "https_key",
        value_name = "FILE"
    )]
    pub https_cert: Option<PathBuf>,
    /// The private key of --https-cert (PEM).
    #[arg(
        long,
        env = "RAFT3D_HTTPS_KEY",
        requires = "https_cert",
        value_name = "FILE"
    )]
    pub https_key: Option<PathBuf>,
    /// Another host name (or IP) clients use for this node, besides the members' URLs,
    /// this node's own address and the loopback names; repeat for several. Requests
    /// naming any other `Host` are refused (DNS rebinding).
    #[arg(
        long = "allowed-host",
        env = "RAFT3D_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Let callers without a token read the farm and the cluster view (a wall screen);
    /// writes still need one.
    #[arg(long, env = "RAFT3D_ANONYMOUS_READS")]
    pub anonymous_reads: bool,
    /// Local IP that outgoing Raft connections are bound to (multi-homed hosts; the
    /// fault-injection suite tells nodes apart by it). Default: chosen by the OS.
    #[arg(long, env = "RAFT3D_PEER_SOURCE_IP")]
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// Milliseconds between leader heartbeats; openraft also gives up on an append-entries
    /// call after this long.
    #[arg(long, env = "RAFT3D_HEARTBEAT_MS", default_value_t = HEARTBEAT_MS)]
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout, in milliseconds; also the timeout
    /// of a vote call to a peer.
    #[arg(long, env = "RAFT3D_ELECTION_TIMEOUT_MIN_MS", default_value_t = ELECTION_TIMEOUT_MIN_MS)]
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomised election timeout, in milliseconds.
    #[arg(long, env = "RAFT3D_ELECTION_TIMEOUT_MAX_MS", default_value_t = ELECTION_TIMEOUT_MAX_MS)]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and purge the log) after this many new log entries.
    #[arg(long, env = "RAFT3D_SNAPSHOT_THRESHOLD", default_value_t = 10_000)]
    pub snapshot_threshold: u64,
    /// How long a write may wait for its commit before the client gets 503 (outcome
    /// unknown; retry with the same Idempotency-Key).
    #[arg(long, env = "RAFT3D_WRITE_TIMEOUT_MS", default_value_t = 5_000)]
    pub write_timeout_ms: u64,
    /// Largest accepted request body, in bytes. Give every node the same value: a node
    /// accepts Raft entries sized for its own limit (`raft::frame::max_append_frame`).
    #[arg(long, env = "RAFT3D_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Serve the dashboard bundle from DIR/pkg (e.g. `target/site`, where
    /// `scripts/build-dashboard.sh` writes it) instead of the one built into the binary:
    /// for working on the UI without rebuilding the node. Default: the built-in bundle.
    #[arg(long, env = "RAFT3D_SITE_DIR", value_name = "DIR")]
    pub site_dir: Option<PathBuf>,
    /// Open connections at most on each listener; more wait until one closes.
    #[arg(long, env = "RAFT3D_MAX_CONNECTIONS", default_value_t = MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a TLS handshake or a request's headers may take; a keep-alive connection
    /// idle this long is closed.
    #[arg(long, env = "RAFT3D_HEADER_TIMEOUT_SECS", default_value_t = HEADER_TIMEOUT_SECS)]
    pub header_timeout_secs: u64,
    /// A change stream (`GET /api/v1/events`) sends a comment after this many
    /// milliseconds without events.
    #[arg(long, env = "RAFT3D_EVENTS_HEARTBEAT_MS", default_value_t = 15_000)]
    pub events_heartbeat_ms: u64,
    /// A change stream whose client takes nothing for this many milliseconds is cut off.
    #[arg(
        long,
        env = "RAFT3D_EVENTS_SLOW_SUBSCRIBER_MS",
        default_value_t = 10_000
    )]
    pub events_slow_subscriber_ms: u64,
    /// Tests only: the node's redb files on simulated disks instead of in --data-dir.
    #[arg(skip)]
    pub disks: Option<std::sync::Arc<dyn crate::store::db::Disks>>,
}

pub(crate) fn parse_peer(raw: &str) -> Result<(NodeId, String), String> {
    let (id, addr) = raw
        .split_once('=')
        .ok_or_else(|| format!("'{raw}' is not id=host:port"))?;
    let id: NodeId = id
        .trim()
        .parse()
        .map_err(|_| format!("'{id}' is not a node id (a positive integer)"))?;
    if id == 0 {
        return Err("node id 0 is reserved".to_owned());
    }
    let addr = app::api::parse_address(addr).map_err(|e| format!("'{}' {e}", addr.trim()))?;
    Ok((id, addr))
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--peers names node {0} twice")]
    DuplicatePeer(NodeId),
    #[error("--peers must include this node's own id ({0})")]
    SelfNotInPeers(NodeId),
    #[error(
        "election timeouts must satisfy heartbeat < min < max (got {heartbeat} / {min} / {max} ms)"
    )]
    Timeouts { heartbeat: u64, min: u64, max: u64 },
    #[error("--http-addr {0} is a wildcard address: give --advertise-http with the URL clients should use")]
    NeedAdvertise(SocketAddr),
    #[error("--advertise-http {0}: must be http://host:port or https://host:port")]
    AdvertiseUrl(String),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error("give --{0} (or --node-dir, a node directory made by `raft3d init`)")]
    Missing(&'static str),
    #[error(
        "peers must authenticate: give --node-dir, a node directory made by `raft3d init` \
         (certificates and settings), or --insecure to run without peer TLS"
    )]
    NoPeerTls,
    #[error("peer TLS needs the cluster id: give --cluster-id (node.json has it)")]
    NoClusterId,
    #[error("cannot read {path}: {why}")]
    NodeFile { path: PathBuf, why: String },
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// `node.json` in a node directory: what `raft3d init` decided for the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeFile {
    pub id: NodeId,
    pub cluster_id: String,
    pub http_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_http: Option<String>,
    /// `id=host:port` of a new cluster's voters; empty for a node added later.
    #[serde(default)]
    pub peers: Vec<String>,
    /// SHA-256 (hex) of the cluster's first admin token (`raft3d init` prints where it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_sha256: Option<String>,
    /// The client port serves HTTPS with the directory's `https.pem` / `https.key`.
    #[serde(default)]
    pub https: bool,
}

/// The node file's name in a node directory.
pub const NODE_FILE: &str = "node.json";

impl NodeFile {
    pub fn load(dir: &std::path::Path) -> Result<Self, ConfigError> {
        let path = dir.join(NODE_FILE);
        let why = |why: String| ConfigError::NodeFile {
            path: path.clone(),
            why,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| why(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| why(e.to_string()))
    }
}

impl ServeArgs {
    /// The node's configuration: flags first, then `node.json`, then defaults. Peer TLS
    /// is loaded from the node directory unless `--insecure`.
    pub fn resolve(self) -> Result<NodeConfig, ConfigError> {
        let file = self.node_dir.as_deref().map(NodeFile::load).transpose()?;
        let mut config = self.node;
        config.id = self
            .id
            .or(file.as_ref().map(|f| f.id))
            .ok_or(ConfigError::Missing("id"))?;
        config.data_dir = match (self.data_dir, &self.node_dir) {
            (Some(dir), _) => dir,
            (None, Some(node_dir)) => node_dir.join("data"),
            (None, None) => return Err(ConfigError::Missing("data-dir")),
        };
        if let Some(addr) = self.http_addr.or(file.as_ref().map(|f| f.http_addr)) {
            config.http_addr = addr;
        }
        if let Some(addr) = self.raft_addr.or(file.as_ref().map(|f| f.raft_addr)) {
            config.raft_addr = addr;
        }
        config.advertise_http = self
            .advertise_http
            .or(file.as_ref().and_then(|f| f.advertise_http.clone()));
        config.cluster_id = self
            .cluster_id
            .or(file.as_ref().map(|f| f.cluster_id.clone()));
        config.peers = match (self.peers.is_empty(), &file) {
            (true, Some(file)) => file
                .peers
                .iter()
                .map(|peer| parse_peer(peer))
                .collect::<Result<_, _>>()
                .map_err(|why| ConfigError::NodeFile {
                    path: PathBuf::from(NODE_FILE),
                    why,
                })?,
            _ => self.peers,
        };
        if let (Some(dir), true, None) = (
            &self.node_dir,
            file.as_ref().is_some_and(|f| f.https),
            &config.https_cert,
        ) {
            config.https_cert = Some(dir.join(crate::pki::HTTPS_CERT_FILE));
            config.https_key = Some(dir.join(crate::pki::HTTPS_KEY_FILE));
        }
        config.client_auth = !self.insecure;
        config.admin_token_sha256 = file.as_ref().and_then(|f| f.admin_token_sha256.clone());
        if let Some(dir) = &self.node_dir {
            config.cluster_secret = crate::secret::ClusterSecret::load(dir)?.map(Into::into);
        }
        config.peer_tls = match (self.insecure, &self.node_dir) {
            (true, _) => None,
            (false, None) => return Err(ConfigError::NoPeerTls),
            (false, Some(dir)) => {
                let cluster = config
                    .cluster_id
                    .as_deref()
                    .ok_or(ConfigError::NoClusterId)?;
                Some(PeerTls::load(dir, cluster, config.id)?)
            }
        };
        Ok(config)
    }
}

/// Default listener limits (`crate::listener`): connections at most per listener, and how
/// long a TLS handshake or a request's headers may take (an idle keep-alive connection
/// is closed after it too).
pub const MAX_CONNECTIONS: usize = 4096;
pub const HEADER_TIMEOUT_SECS: u64 = 10;

/// Default Raft timings. A follower starts an election after a random 400-800 ms without
/// hearing from the leader (the vendored openraft waits exactly that, like etcd; stock
/// 0.9 added the 800 ms leader lease on top), so a write is acknowledged again well
/// within a second of a leader's SIGKILL. Four missed heartbeats at least: shorter risks
/// needless elections on a loaded 2-core machine; the heartbeat is also openraft's
/// append-entries timeout, so it must exceed an fsync under load.
pub const HEARTBEAT_MS: u64 = 100;
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 400;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 800;

/// A peer list names each node once.
pub(crate) fn check_peers(peers: &[(NodeId, String)]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    match peers.iter().find(|(id, _)| !seen.insert(*id)) {
        Some((id, _)) => Err(ConfigError::DuplicatePeer(*id)),
        None => Ok(()),
    }
}

impl NodeConfig {
    /// A config with the defaults, for tests and embedding.
    pub fn new(id: NodeId, data_dir: PathBuf) -> Self {
        Self {
            id,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            raft_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            peers: Vec::new(),
            cluster_id: None,
            advertise_http: None,
            peer_tls: None,
            client_auth: false,
            admin_token_sha256: None,
            cluster_secret: None,
            max_upload_mib: 512,
            anonymous_reads: false,
            allowed_hosts: Vec::new(),
            https_cert: None,
            https_key: None,
            peer_source_ip: None,
            heartbeat_ms: HEARTBEAT_MS,
            election_timeout_min_ms: ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max_ms: ELECTION_TIMEOUT_MAX_MS,
            snapshot_threshold: 10_000,
            write_timeout_ms: 5_000,
            max_body_bytes: 64 * 1024,
            site_dir: None,
            max_connections: MAX_CONNECTIONS,
            header_timeout_secs: HEADER_TIMEOUT_SECS,
            events_heartbeat_ms: 15_000,
            events_slow_subscriber_ms: 10_000,
            disks: None,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_peers(&self.peers)?;
        if !self.peers.is_empty() && !self.peers.iter().any(|(id, _)| *id == self.id) {
            return Err(ConfigError::SelfNotInPeers(self.id));
        }
        let (heartbeat, min, max) = (
            self.heartbeat_ms,
            self.election_timeout_min_ms,
            self.election_timeout_max_ms,
        );
        if !(heartbeat > 0 && heartbeat < min && min < max) {
            return Err(ConfigError::Timeouts {
                heartbeat,
                min,
                max,
            });
        }
        if let Some(url) = &self.advertise_http {
            app::api::parse_client_url(url).map_err(|_| ConfigError::AdvertiseUrl(url.clone()))?;
        }
        if self.advertise_http.is_none()
            && self.http_addr.ip().is_unspecified()
            && self.http_addr.port() != 0
        {
            return Err(ConfigError::NeedAdvertise(self.http_addr));
        }
        Ok(())
    }

    /// What an operator must be told at start and in the cluster view.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.peer_tls.is_none() {
            warnings.push(format!(
                "INSECURE (--insecure): peers are not authenticated; anyone who reaches the \
                 Raft port {} can take part in Raft and replace this farm's data",
                self.raft_addr
            ));
        }
        if !self.client_auth {
            warnings.push(
                "INSECURE (--insecure): API callers are not authenticated; anyone who reaches \
                 the client port can change the farm and the cluster"
                    .to_owned(),
            );
        }
        warnings
    }

    /// The URL clients reach this node at, given the address its client listener bound.
    pub fn http_url(&self, bound: SocketAddr) -> String {
        let scheme = match self.https_cert {
            Some(_) => "https",
            None => "http",
        };
        self.advertise_http
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms)
    }

    /// Log entries kept after a snapshot, so slightly-behind followers catch up from the
    /// log rather than a whole snapshot: a tenth of the threshold, at most 1000.
    pub fn logs_kept_after_snapshot(&self) -> u64 {
        (self.snapshot_threshold / 10).min(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_peers_say_why() {
        assert_eq!(
            parse_peer("2=127.0.0.1:9082"),
            Ok((2, "127.0.0.1:9082".to_owned()))
        );
        assert_eq!(
            parse_peer("3=node3.farm:9083"),
            Ok((3, "node3.farm:9083".to_owned()))
        );
        for bad in ["2", "x=127.0.0.1:1", "0=a:1", "2=127.0.0.1", "2=host:port"] {
            assert!(parse_peer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_config_must_name_itself_once_and_have_sane_timeouts() {
        let mut config = NodeConfig::new(1, PathBuf::from("d"));
        config.peers = vec![(1, "a:1".into()), (2, "b:2".into())];
        assert!(config.validate().is_ok());
        config.peers.push((2, "c:3".into()));
        assert!(matches!(
            config.validate(),
            Err(ConfigError::DuplicatePeer(2))
        ));
        config.peers = vec![(2, "b:2".into())];
        assert!(matches!(
            config.validate(),
            Err(ConfigError::SelfNotInPeers(1))
        ));
        config.peers.clear();
        config.election_timeout_min_ms = 100;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Timeouts { .. })
        ));
    }
}
