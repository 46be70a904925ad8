//! Peer TLS: the Raft listener of a node with certificates (as `raft3d init` makes them)
//! refuses anyone without a certificate of its cluster naming a member, before any
//! Raft message is read, and the refused requests change nothing.
//!
//! The forged vote here (term 50) is the one that, in the insecure days, deposed the
//! leader; the forged snapshot is the issue's attack that replaced the whole farm.

use crate::helpers::{config, TestNode};
use app::api::Role;
use raft3d::pki::{ClusterCa, PeerTls};
use reqwest::StatusCode;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const CLUSTER: &str = "farm-a";

/// A single-node cluster (node 1) with peer TLS, its certificates from a CA of
/// [`CLUSTER`]; returns the node and the CA (to issue certificates to attackers).
async fn spawn_tls_node(pki: &Path) -> TestNode {
    let ca = ClusterCa::create(CLUSTER).expect("CA");
    ca.save(pki).expect("save CA");
    ca.issue(1, &pki.join("node-1")).expect("node 1");
    let dir = TempDir::new().expect("temp dir");
    let raft_port = raft3d_launcher::ports::free_port();
    let mut config = config(&dir, raft_port);
    config.cluster_id = Some(CLUSTER.to_owned());
    config.peer_tls = Some(PeerTls::load(&pki.join("node-1"), CLUSTER, 1).expect("TLS"));
    TestNode::start(config, dir, raft_port).await
}

/// A client presenting node `node`'s certificate of the cluster `cluster_id` made by
/// `ca`, expecting node 1 to answer.
fn client_with_certificate(ca: &ClusterCa, cluster_id: &str, node: u64) -> reqwest::Client {
    let dir = TempDir::new().expect("temp dir");
    ca.issue(node, dir.path()).expect("issue");
    let tls = PeerTls::load(dir.path(), cluster_id, node).expect("load");
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.client_config(1).expect("client TLS"))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// A client that trusts any server and presents no certificate.
fn client_without_certificate() -> reqwest::Client {
    #[derive(Debug)]
    struct TrustAnything;
    impl rustls::client::danger::ServerCertVerifier for TrustAnything {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(TrustAnything))
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// The forged vote of term 50, sent as node `as_node` of the cluster.
async fn forged_vote(
    client: &reqwest::Client,
    url: &str,
    as_node: u64,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("{url}/raft/vote"))
        .header("x-raft3d-cluster", CLUSTER)
        .header("x-raft3d-node", as_node.to_string())
        .header("x-raft3d-incarnation", "forged")
        .json(&serde_json::json!({
            "vote": {"leader_id": {"term": 50, "node_id": as_node}, "committed": false},
            "last_log_id": {"leader_id": {"term": 50, "node_id": as_node}, "index": 1000}
        }))
        .send()
        .await
}

/// The issue's attack: a one-printer farm as a snapshot from a made-up leader of term 100.
async fn forged_snapshot(
    client: &reqwest::Client,
    url: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    let vote = r#"{"leader_id":{"term":100,"node_id":1},"committed":true}"#;
    let meta = r#"{"last_log_id":{"leader_id":{"term":100,"node_id":1},"index":5000},"last_membership":{"log_id":null,"membership":{"configs":[[1]],"nodes":{"1":{"raft_addr":"127.0.0.1:1"}}}},"snapshot_id":"forged"}"#;
    client
        .post(format!("{url}/raft/snapshot"))
        .header("x-raft3d-cluster", CLUSTER)
        .header("x-raft3d-node", "1")
        .header("x-raft3d-incarnation", "forged")
        .header("x-raft3d-vote", vote)
        .header("x-raft3d-snapshot-meta", meta)
        .body(r#"{"printers":{"evil":{}}}"#)
        .send()
        .await
}

#[tokio::test]
async fn the_raft_port_refuses_peers_without_a_member_certificate_of_this_cluster() {
    let pki = TempDir::new().expect("pki dir");
    let node = spawn_tls_node(pki.path()).await;
    node.seed().await;
    let before = node.cluster_view().await;
    let https = format!("https://{}", node.raft_addr());
    let plain = format!("http://{}", node.raft_addr());

    // No TLS at all: the curl of the issue. No HTTP answer comes back.
    assert!(forged_snapshot(&node.client, &plain).await.is_err());
    assert!(forged_vote(&node.client, &plain, 1).await.is_err());
    // TLS without a client certificate: the handshake fails.
    let anonymous = client_without_certificate();
    assert!(forged_snapshot(&anonymous, &https).await.is_err());
    // A certificate for node 1 of a cluster with the same id, from another CA (a second
    // `raft3d init`): the handshake fails.
    let other_ca = ClusterCa::create(CLUSTER).expect("other CA");
    let stranger = client_with_certificate(&other_ca, CLUSTER, 1);
    assert!(forged_snapshot(&stranger, &https).await.is_err());
    assert!(forged_vote(&stranger, &https, 1).await.is_err());

    // This cluster's CA, but node 9: not a member. Refused with 403.
    let ca = ClusterCa::load(pki.path(), CLUSTER).expect("CA");
    let non_member = client_with_certificate(&ca, CLUSTER, 9);
    let answer = forged_vote(&non_member, &https, 9).await.expect("answered");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let why = answer.text().await.expect("body");
    assert!(why.contains("not a member"), "{why}");
    // Node 9's certificate claiming to be node 1 (the member): refused with 403.
    let answer = forged_snapshot(&non_member, &https)
        .await
        .expect("answered");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let why = answer.text().await.expect("body");
    assert!(why.contains("certificate does not name"), "{why}");

    // Nothing changed: same leader, same term, same farm.
    let after = node.cluster_view().await;
    assert_eq!((after.role, after.term), (Role::Leader, before.term));
    assert_eq!(after.state_digest, before.state_digest);
    // Peers are authenticated here (its API is not: this test node has no tokens).
    let peers_warning = after.warnings.iter().any(|w| w.contains("peers are not"));
    assert!(!peers_warning, "{:?}", after.warnings);
    let printers = node.get_json("/api/v1/printers").await;
    assert!(printers.to_string().contains("p1"), "{printers}");
    assert!(!printers.to_string().contains("evil"), "{printers}");
}
