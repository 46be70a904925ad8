//! `raft3d init`: prepares a new cluster — its certificate authority and one node
//! directory per node (`node.json`, the CA certificate, the node's certificate and key)
//! — and, with `--add-node`, the directory of a node that joins the cluster later.
//!
//! Owns: deciding each node's listen addresses from its peer address, and the layout of
//! the directory it writes. Must not touch: a running cluster (adding the node to the
//! membership is `raft3d ctl cluster add-node`).
//!
//! ```text
//! DIR/cluster.json        the cluster id
//! DIR/ca.pem, DIR/ca.key  the CA (keep the key off the nodes; it signs new nodes)
//! DIR/admin.token         the first admin token (`Authorization: Bearer ...`)
//! DIR/cluster.secret      seals printers' API keys (`crate::secret`); in every node dir
//! DIR/node-<id>/          copy to host <id>; run `raft3d serve --node-dir node-<id>`
//! ```

use crate::config::{parse_peer, NodeFile, NODE_FILE};
use crate::pki::{ClusterCa, PkiError};
use crate::raft::typ::NodeId;
use crate::secret::{ClusterSecret, SECRET_FILE};
use clap::Args;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory to write (created; must not hold a cluster already, unless --add-node).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Voters of the new cluster, `id=host:port` of their Raft addresses, e.g.
    /// `1=farm1:9081,2=farm2:9081,3=farm3:9081`.
    #[arg(long, value_delimiter = ',', value_parser = parse_peer, required_unless_present = "add_node")]
    pub peers: Vec<(NodeId, String)>,
    /// Issue the directory of one more node (`id=host:port`) of the cluster in DIR, signed
    /// by its CA; then start it and run `raft3d ctl cluster add-node`.
    #[arg(long, value_parser = parse_peer, conflicts_with = "peers")]
    pub add_node: Option<(NodeId, String)>,
    /// Each node's client (HTTP) port is its Raft port minus this: 9081 gives 8081.
    #[arg(long, default_value_t = 1000)]
    pub http_port_offset: u16,
    /// Also give each node an HTTPS certificate for its client port, for the host name
    /// or address in its peer address, signed by the cluster's CA (clients trust
    /// `DIR/ca.pem`: `raft3d ctl --ca-file`, `curl --cacert`); URLs become `https://`.
    #[arg(long)]
    pub https: bool,
    /// The cluster id to use instead of a new random one: to move a running cluster
    /// (started with --peers, without certificates) to TLS, give the id its nodes
    /// already have (`cluster_id` in `GET /api/v1/cluster`), then restart
    /// each node with its new directory and `--data-dir` of its existing data.
    #[arg(long, conflicts_with = "add_node")]
    pub cluster_id: Option<String>,
}

/// Why `init` could not write the cluster.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already holds a cluster (cluster.json): use another --dir, or --add-node")]
    Exists(PathBuf),
    #[error("{0} holds no cluster (cluster.json): run `raft3d init --peers ...` first")]
    NoCluster(PathBuf),
    #[error("node {0} already has a directory here")]
    NodeExists(NodeId),
    #[error("peer {peer}: {why}")]
    Address { peer: String, why: String },
    #[error("cannot read or write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// `DIR/cluster.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ClusterFile {
    cluster_id: String,
    /// Of the admin token in `DIR/admin.token`; every node's `node.json` has it too.
    #[serde(default)]
    admin_token_sha256: Option<String>,
}

/// The first admin token's secret: send as `Authorization: Bearer $(cat DIR/admin.token)`.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

const CLUSTER_FILE: &str = "cluster.json";

/// Runs `raft3d init`; returns the node directories it wrote.
pub fn run(args: &InitArgs) -> Result<Vec<PathBuf>, InitError> {
    let cluster_path = args.dir.join(CLUSTER_FILE);
    if let Some(node) = &args.add_node {
        let text = std::fs::read_to_string(&cluster_path)
            .map_err(|_| InitError::NoCluster(args.dir.clone()))?;
        let cluster: ClusterFile = serde_json::from_str(&text).map_err(|e| InitError::File {
            path: cluster_path,
            source: std::io::Error::other(e),
        })?;
        let ca = ClusterCa::load(&args.dir, &cluster.cluster_id)?;
        let secret = cluster_secret(&args.dir)?;
        let dir = write_node(args, &ca, &cluster, &secret, node, &[])?;
        return Ok(vec![dir]);
    }
    if cluster_path.exists() {
        return Err(InitError::Exists(args.dir.clone()));
    }
    crate::config::check_peers(&args.peers)?;
    if let Some(id) = &args.cluster_id {
        crate::pki::check_cluster_id(id)?;
    }
    create_dir(&args.dir)?;
    let cluster = ClusterFile {
        cluster_id: args.cluster_id.clone().unwrap_or_else(new_cluster_id),
        admin_token_sha256: Some(write_admin_token(&args.dir)?),
    };
    let ca = ClusterCa::create(&cluster.cluster_id)?;
    ca.save(&args.dir)?;
    let secret = cluster_secret(&args.dir)?;
    let peers: Vec<String> = args
        .peers
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect();
    let dirs = args
        .peers
        .iter()
        .map(|node| write_node(args, &ca, &cluster, &secret, node, &peers))
        .collect::<Result<Vec<_>, _>>()?;
    // Last: a directory without it can be removed and made again.
    let text = serde_json::to_string_pretty(&cluster).unwrap_or_default();
    std::fs::write(&cluster_path, text).map_err(|source| InitError::File {
        path: cluster_path,
        source,
    })?;
    Ok(dirs)
}

/// The cluster secret of the cluster in `dir`, made and written there if it has none (a
/// new cluster, or one made before the secret existed: copy its `cluster.secret` into
/// the older nodes' directories too, or they cannot open the keys this node seals).
fn cluster_secret(dir: &Path) -> Result<String, InitError> {
    let path = dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = ClusterSecret::generate().map_err(|e| InitError::File {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
            crate::pki::write_secret(&path, &text)?;
            Ok(text)
        }
        Err(source) => Err(InitError::File { path, source }),
    }
}

/// Writes node `id`'s directory: its certificate, and `node.json` with listen addresses
/// derived from its peer address.
fn write_node(
    args: &InitArgs,
    ca: &ClusterCa,
    cluster: &ClusterFile,
    secret: &str,
    (id, peer_addr): &(NodeId, String),
    peers: &[String],
) -> Result<PathBuf, InitError> {
    let dir = args.dir.join(format!("node-{id}"));
    if dir.join(NODE_FILE).exists() {
        return Err(InitError::NodeExists(*id));
    }
    let mut listen = Listen::from_peer(peer_addr, args.http_port_offset)?;
    ca.issue(*id, &dir)?;
    crate::pki::write_secret(&dir.join(SECRET_FILE), secret)?;
    if args.https {
        let host = crate::http::hosts::host_of(peer_addr);
        let mut names = vec![host.clone()];
        if listen.raft.ip().is_loopback() {
            names.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
        }
        names.sort();
        names.dedup();
        ca.issue_https(*id, names, &dir)?;
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{host}]"),
            Err(_) => host,
        };
        listen.advertise_http = Some(format!("https://{host}:{}", listen.http.port()));
    }
    let file = NodeFile {
        id: *id,
        cluster_id: cluster.cluster_id.clone(),
        http_addr: listen.http,
        raft_addr: listen.raft,
        advertise_http: listen.advertise_http,
        peers: peers.to_vec(),
        admin_token_sha256: cluster.admin_token_sha256.clone(),
        https: args.https,
    };
    let path = dir.join(NODE_FILE);
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    std::fs::write(&path, text).map_err(|source| InitError::File { path, source })?;
    Ok(dir)
}

/// Where a node listens, from the address its peers reach it at.
#[derive(Debug, PartialEq, Eq)]
struct Listen {
    raft: SocketAddr,
    http: SocketAddr,
    advertise_http: Option<String>,
}

impl Listen {
    /// An IP address is listened on as given; a host name on every interface (0.0.0.0),
    /// with the client URL advertised under that name. `localhost` is 127.0.0.1.
    fn from_peer(peer_addr: &str, http_port_offset: u16) -> Result<Self, InitError> {
        let bad = |why: String| InitError::Address {
            peer: peer_addr.to_owned(),
            why,
        };
        let (host, port) = peer_addr
            .rsplit_once(':')
            .ok_or_else(|| bad("no port".into()))?;
        let raft_port: u16 = port.parse().map_err(|_| bad("bad port".into()))?;
        let http_port = raft_port
            .checked_sub(http_port_offset)
            .filter(|port| *port > 0)
            .ok_or_else(|| {
                bad(format!(
                    "the client port would be {raft_port} - {http_port_offset}: give another --http-port-offset"
                ))
            })?;
        let ip = match host.trim_start_matches('[').trim_end_matches(']') {
            "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            literal => literal.parse::<IpAddr>().ok(),
        };
        Ok(match ip {
            Some(ip) => Self {
                raft: SocketAddr::new(ip, raft_port),
                http: SocketAddr::new(ip, http_port),
                advertise_http: None,
            },
            None => Self {
                raft: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), raft_port),
                http: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), http_port),
                advertise_http: Some(format!("http://{host}:{http_port}")),
            },
        })
    }
}

/// Makes the first admin token: its secret in `DIR/admin.token` (owner only), its hash
/// returned for every `node.json`.
fn write_admin_token(dir: &Path) -> Result<String, InitError> {
    let secret = crate::http::auth::new_secret().map_err(|e| InitError::File {
        path: dir.join(ADMIN_TOKEN_FILE),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::pki::write_secret(&dir.join(ADMIN_TOKEN_FILE), &format!("{secret}\n"))?;
    Ok(crate::http::auth::secret_sha256(&secret))
}

/// 16 random hex digits: two `init`s with the same peers make two clusters that refuse
/// each other.
fn new_cluster_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()[16..].to_owned()
}

fn create_dir(dir: &Path) -> Result<(), InitError> {
    std::fs::create_dir_all(dir).map_err(|source| InitError::File {
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_follow_the_peer_address() {
        assert_eq!(
            Listen::from_peer("127.0.0.1:9082", 1000).expect("ip"),
            Listen {
                raft: "127.0.0.1:9082".parse().expect("addr"),
                http: "127.0.0.1:8082".parse().expect("addr"),
                advertise_http: None,
            }
        );
        let named = Listen::from_peer("farm2.shop:9081", 1000).expect("name");
        assert_eq!(named.raft, "0.0.0.0:9081".parse().expect("addr"));
        assert_eq!(
            named.advertise_http.as_deref(),
            Some("http://farm2.shop:8081")
        );
        assert!(Listen::from_peer("farm2:900", 1000).is_err());
    }

    #[test]
    fn init_writes_loadable_node_directories_and_refuses_to_overwrite() {
        let dir = tempfile::TempDir::new().expect("dir");
        let args = InitArgs {
            dir: dir.path().join("farm"),
            peers: vec![(1, "127.0.0.1:9081".into()), (2, "127.0.0.1:9082".into())],
            add_node: None,
            http_port_offset: 1000,
            https: false,
            cluster_id: None,
        };
        let dirs = run(&args).expect("init");
        assert_eq!(dirs.len(), 2);
        let node = NodeFile::load(&dirs[1]).expect("node.json");
        assert_eq!(node.id, 2);
        let admin = std::fs::read_to_string(args.dir.join(ADMIN_TOKEN_FILE)).expect("token");
        assert_eq!(
            node.admin_token_sha256,
            Some(crate::http::auth::secret_sha256(admin.trim()))
        );
        assert_eq!(node.peers, ["1=127.0.0.1:9081", "2=127.0.0.1:9082"]);
        crate::pki::PeerTls::load(&dirs[1], &node.cluster_id, 2).expect("certificates");
        assert!(matches!(run(&args), Err(InitError::Exists(_))));

        let add = InitArgs {
            peers: Vec::new(),
            add_node: Some((3, "127.0.0.1:9083".into())),
            ..args
        };
        let added = run(&add).expect("add");
        let file = NodeFile::load(&added[0]).expect("node.json");
        assert_eq!((file.cluster_id, file.peers.len()), (node.cluster_id, 0));
        assert_eq!(file.admin_token_sha256, node.admin_token_sha256);
        assert!(matches!(run(&add), Err(InitError::NodeExists(3))));
    }

    #[test]
    fn an_existing_cluster_id_can_be_kept_and_must_be_a_dns_label() {
        let dir = tempfile::TempDir::new().expect("dir");
        let peers = vec![(1, "127.0.0.1:9081".to_owned())];
        let existing = crate::identity::cluster_id_from_peers(&peers);
        let args = InitArgs {
            dir: dir.path().join("farm"),
            peers,
            add_node: None,
            http_port_offset: 1000,
            https: false,
            cluster_id: Some(existing.clone()),
        };
        let dirs = run(&args).expect("init");
        assert_eq!(
            NodeFile::load(&dirs[0]).expect("node.json").cluster_id,
            existing
        );
        let bad = InitArgs {
            dir: dir.path().join("other"),
            cluster_id: Some("Not A Label".into()),
            ..args
        };
        assert!(matches!(run(&bad), Err(InitError::Pki(_))));
    }
}
