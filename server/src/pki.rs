//! Peer TLS: the cluster's certificate authority, the certificate of each node, and the
//! rustls configurations with which peers prove who they are to each other.
//!
//! Owns: making a cluster CA and node certificates (`raft3d init`, adding a node), loading
//! a node's certificate directory, and the checks a TLS handshake cannot do alone (that
//! a certificate names the very node a peer claims to be). Must not touch: Raft
//! decisions, HTTP routing. Which node ids are members is `raft::service`'s question.
//!
//! Names: a node's certificate carries one DNS name, `node-<id>.<cluster-id>.raft3d`
//! ([`peer_name`]), signed by its cluster's CA. Both sides of a peer connection check it:
//! the caller expects exactly the node it dials (not whatever the address's host is), and
//! the listener checks that the certificate names the node id the request claims. So a
//! certificate of another cluster (another CA, or another cluster id under a shared CA)
//! or of another node is refused before any Raft message is read. See `raft/DESIGN.md`,
//! "Peer authentication".

use crate::raft::typ::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration as TimeSpan, OffsetDateTime};

/// Files of a node's certificate directory (and of `raft3d init`'s output for the CA).
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const NODE_CERT_FILE: &str = "node.pem";
pub const NODE_KEY_FILE: &str = "node.key";
/// The client port's certificate (`raft3d init --https`), for the names clients use.
pub const HTTPS_CERT_FILE: &str = "https.pem";
pub const HTTPS_KEY_FILE: &str = "https.key";

/// How long a new CA and a new node certificate are valid. Rotation (docs/operations.md)
/// re-issues node certificates from the same CA; a new CA means a new cluster CA rollout.
const CA_VALIDITY_DAYS: i64 = 10 * 365;
const NODE_VALIDITY_DAYS: i64 = 5 * 365;

/// Why certificates could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot read or write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}")]
    BadPem { path: PathBuf, what: &'static str },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cluster id '{0}' must be 1-63 lowercase letters, digits or '-'")]
    ClusterId(String),
    #[error("{path} is not the certificate of node {node} of cluster {cluster}")]
    NotThisNode {
        path: PathBuf,
        node: NodeId,
        cluster: String,
    },
}

/// The DNS name in node `node`'s certificate of cluster `cluster_id`.
pub fn peer_name(cluster_id: &str, node: NodeId) -> String {
    format!("node-{node}.{cluster_id}.raft3d")
}

/// A cluster id must be one DNS label: it is part of every certificate's name.
pub fn check_cluster_id(cluster_id: &str) -> Result<(), PkiError> {
    let ok = !cluster_id.is_empty()
        && cluster_id.len() <= 63
        && cluster_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !cluster_id.starts_with('-')
        && !cluster_id.ends_with('-');
    ok.then_some(())
        .ok_or_else(|| PkiError::ClusterId(cluster_id.to_owned()))
}

/// A cluster's certificate authority: the key that signs its nodes' certificates. Only
/// `raft3d init`'s directory holds the key; nodes hold the CA certificate alone.
pub struct ClusterCa {
    cluster_id: String,
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl ClusterCa {
    /// A new CA for cluster `cluster_id`.
    pub fn create(cluster_id: &str) -> Result<Self, PkiError> {
        check_cluster_id(cluster_id)?;
        let key = KeyPair::generate()?;
        let mut params = ca_params(cluster_id);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - TimeSpan::days(1);
        params.not_after = now + TimeSpan::days(CA_VALIDITY_DAYS);
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            cluster_id: cluster_id.to_owned(),
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    /// The CA saved in `dir` by [`ClusterCa::save`].
    pub fn load(dir: &Path, cluster_id: &str) -> Result<Self, PkiError> {
        check_cluster_id(cluster_id)?;
        let key_path = dir.join(CA_KEY_FILE);
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|_| PkiError::BadPem {
            path: key_path,
            what: "private key",
        })?;
        // The issuer's name must be the CA certificate's subject, and `ca_params` is what
        // made that subject: rebuilding it avoids parsing X.509 here.
        Ok(Self {
            cluster_id: cluster_id.to_owned(),
            issuer: Issuer::new(ca_params(cluster_id), key),
            cert_pem: read(&dir.join(CA_CERT_FILE))?,
        })
    }

    /// Writes the CA certificate and key into `dir` (the key readable by its owner only).
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        write(&dir.join(CA_CERT_FILE), &self.cert_pem, false)?;
        write(
            &dir.join(CA_KEY_FILE),
            &self.issuer.key().serialize_pem(),
            true,
        )
    }

    /// Issues node `node`'s certificate and writes a node's certificate directory into
    /// `dir`: the CA certificate, the node certificate and its key.
    pub fn issue(&self, node: NodeId, dir: &Path) -> Result<(), PkiError> {
        // The same certificate serves the node's listener and its calls to peers.
        let usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let names = vec![peer_name(&self.cluster_id, node)];
        let files = (NODE_CERT_FILE, NODE_KEY_FILE);
        self.issue_files(node, names, usages, dir, files)
    }

    /// Issues node `node`'s client-port (HTTPS) certificate for `names` (host names or IP
    /// addresses clients use) into `dir`; clients trust it through the CA certificate.
    pub fn issue_https(
        &self,
        node: NodeId,
        names: Vec<String>,
        dir: &Path,
    ) -> Result<(), PkiError> {
        let usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let files = (HTTPS_CERT_FILE, HTTPS_KEY_FILE);
        self.issue_files(node, names, usages, dir, files)
    }

    fn issue_files(
        &self,
        node: NodeId,
        names: Vec<String>,
        usages: Vec<ExtendedKeyUsagePurpose>,
        dir: &Path,
        (cert_file, key_file): (&str, &str),
    ) -> Result<(), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("raft3d node {node}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - TimeSpan::days(1);
        params.not_after = now + TimeSpan::days(NODE_VALIDITY_DAYS);
        let cert = params.signed_by(&key, &self.issuer)?;
        std::fs::create_dir_all(dir).map_err(|source| PkiError::File {
            path: dir.to_owned(),
            source,
        })?;
        write(&dir.join(CA_CERT_FILE), &self.cert_pem, false)?;
        write(&dir.join(cert_file), &cert.pem(), false)?;
        write(&dir.join(key_file), &key.serialize_pem(), true)
    }
}

/// The CA's parameters: its subject names the cluster, and it may sign node certificates
/// only (no intermediate CAs).
fn ca_params(cluster_id: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("raft3d cluster {cluster_id} CA"),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A node's peer TLS: its certificate and key, and the CA it trusts peers by.
#[derive(Clone)]
pub struct PeerTls {
    cluster_id: String,
    /// When the node's certificate and the (first-expiring) CA certificate lapse, Unix
    /// seconds (`crate::cert_expiry`).
    expiries: [(&'static str, Option<i64>); 2],
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Loads node `node`'s certificate directory; refuses a certificate that does not
    /// name this node of `cluster_id` (a directory copied to the wrong host).
    pub fn load(dir: &Path, cluster_id: &str, node: NodeId) -> Result<Self, PkiError> {
        check_cluster_id(cluster_id)?;
        let ca = load_certs(&dir.join(CA_CERT_FILE))?;
        let ca_expiry = ca
            .iter()
            .filter_map(|c| crate::cert_expiry::not_after(c))
            .min();
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert)?;
        }
        let roots = Arc::new(roots);
        let cert_path = dir.join(NODE_CERT_FILE);
        let chain = load_certs(&cert_path)?;
        if names(&chain[0], cluster_id, node).is_err() {
            return Err(PkiError::NotThisNode {
                path: cert_path,
                node,
                cluster: cluster_id.to_owned(),
            });
        }
        let key_path = dir.join(NODE_KEY_FILE);
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| PkiError::BadPem {
            path: key_path,
            what: "private key",
        })?;
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let node_expiry = crate::cert_expiry::not_after(&chain[0]);
        Ok(Self {
            cluster_id: cluster_id.to_owned(),
            expiries: [("node", node_expiry), ("ca", ca_expiry)],
            roots,
            chain,
            key: Arc::new(key),
            server: Arc::new(server),
        })
    }

    /// `(which, notAfter in Unix seconds)` of the node's certificate and of its CA's.
    pub fn expiries(&self) -> Vec<(&'static str, i64)> {
        self.expiries
            .iter()
            .filter_map(|&(which, at)| Some((which, at?)))
            .collect()
    }

    /// The listener's side: every peer must present a certificate of this cluster's CA.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The caller's side, for calls to node `target`: it must present `target`'s
    /// certificate, whatever host name or address it is reached by; this node presents its own.
    pub fn client_config(&self, target: NodeId) -> Result<rustls::ClientConfig, PkiError> {
        let expected = ServerName::try_from(peer_name(&self.cluster_id, target))
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            self.roots.clone(),
            provider(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ExpectPeer { inner, expected }))
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(config)
    }

    /// Whether `cert` (already verified against the CA by the handshake) names node
    /// `claimed` of this cluster.
    pub fn names(&self, cert: &CertificateDer<'_>, claimed: NodeId) -> bool {
        names(cert, &self.cluster_id, claimed).is_ok()
    }
}

/// The client port's TLS (HTTPS): a certificate chain and key, no client certificates
/// (clients authenticate with tokens).
pub fn https_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, PkiError> {
    let chain = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| PkiError::BadPem {
        path: key.to_owned(),
        what: "private key",
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // HTTP/1.1 only: the listener serves no HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn names(cert: &CertificateDer<'_>, cluster_id: &str, node: NodeId) -> Result<(), ()> {
    let name = ServerName::try_from(peer_name(cluster_id, node)).map_err(drop)?;
    let cert = webpki::EndEntityCert::try_from(cert).map_err(drop)?;
    cert.verify_is_valid_for_subject_name(&name).map_err(drop)
}

/// Verifies a server's certificate chain as webpki does, but against the name of the
/// node being called instead of the URL's host (peers are dialled by address).
#[derive(Debug)]
struct ExpectPeer {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    expected: ServerName<'static>,
}

impl ServerCertVerifier for ExpectPeer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &self.expected,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// ring: what reqwest's rustls already links (no second crypto library).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|_| PkiError::BadPem {
            path: path.to_owned(),
            what: "certificate",
        })?;
    match certs.is_empty() {
        true => Err(PkiError::BadPem {
            path: path.to_owned(),
            what: "certificate",
        }),
        false => Ok(certs),
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::File {
        path: path.to_owned(),
        source,
    })
}

/// Writes a secret to `path`, readable and writable by its owner only.
pub fn write_secret(path: &Path, text: &str) -> Result<(), PkiError> {
    write(path, text, true)
}

/// Writes `text` to `path`; a secret is created readable and writable by its owner only.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file_error = |source| PkiError::File {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(file_error)?;
    file.write_all(text.as_bytes()).map_err(file_error)?;
    file.sync_all().map_err(file_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_names_its_node_and_cluster_only() {
        let dir = tempfile::TempDir::new().expect("dir");
        let ca = ClusterCa::create("farm-a").expect("ca");
        ca.issue(2, &dir.path().join("n2")).expect("issue");
        let tls = PeerTls::load(&dir.path().join("n2"), "farm-a", 2).expect("load");
        let cert = &tls.chain[0];
        assert!(tls.names(cert, 2));
        assert!(!tls.names(cert, 3), "another node id");
        assert!(names(cert, "farm-b", 2).is_err(), "another cluster id");
        assert!(matches!(
            PeerTls::load(&dir.path().join("n2"), "farm-a", 3),
            Err(PkiError::NotThisNode { node: 3, .. })
        ));
    }

    #[test]
    fn a_saved_ca_issues_certificates_that_chain_to_it() {
        let dir = tempfile::TempDir::new().expect("dir");
        ClusterCa::create("farm-a")
            .expect("ca")
            .save(dir.path())
            .expect("save");
        let reloaded = ClusterCa::load(dir.path(), "farm-a").expect("load");
        reloaded.issue(4, &dir.path().join("n4")).expect("issue");
        let tls = PeerTls::load(&dir.path().join("n4"), "farm-a", 4).expect("node dir");
        let verifier = ExpectPeer {
            inner: rustls::client::WebPkiServerVerifier::builder_with_provider(
                tls.roots.clone(),
                provider(),
            )
            .build()
            .expect("verifier"),
            expected: ServerName::try_from(peer_name("farm-a", 4)).expect("name"),
        };
        let any_host = ServerName::try_from("127.0.0.1").expect("ip");
        assert!(verifier
            .verify_server_cert(&tls.chain[0], &[], &any_host, &[], UnixTime::now())
            .is_ok());
        let mode = std::fs::metadata(dir.path().join("n4").join(NODE_KEY_FILE))
            .expect("key")
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[test]
    fn cluster_ids_are_dns_labels() {
        assert!(check_cluster_id("0a1b-farm").is_ok());
        for bad in ["", "Farm", "a.b", "-a", "a-", &"x".repeat(64)] {
            assert!(check_cluster_id(bad).is_err(), "{bad}");
        }
    }
}
