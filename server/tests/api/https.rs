//! The client port over HTTPS (`raft3d init --https`, or any certificate): clients that
//! trust the cluster's CA get the API; plain HTTP and clients that do not trust it get
//! nothing; the node advertises its `https://` URL.

use raft3d::pki::{ClusterCa, HTTPS_CERT_FILE, HTTPS_KEY_FILE};
use raft3d_client::Client;
use std::time::Duration;
use tempfile::TempDir;

#[tokio::test]
async fn the_api_is_served_over_https_to_clients_that_trust_the_cluster_ca() {
    let pki = TempDir::new().expect("pki");
    let ca = ClusterCa::create("farm-a").expect("CA");
    ca.save(pki.path()).expect("CA saved");
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    ca.issue_https(1, names, pki.path())
        .expect("HTTPS certificate");

    let dir = TempDir::new().expect("data");
    let raft_port = raft3d_launcher::ports::free_port();
    let mut config = crate::helpers::config(&dir, raft_port);
    config.https_cert = Some(pki.path().join(HTTPS_CERT_FILE));
    config.https_key = Some(pki.path().join(HTTPS_KEY_FILE));
    let node = raft3d::start(config).await.expect("node starts");
    let url = format!("https://{}", node.http_addr);

    let ca_pem = std::fs::read(pki.path().join("ca.pem")).expect("ca.pem");
    let client = Client::new([url.clone()])
        .expect("client")
        .with_ca_pem(&ca_pem)
        .expect("CA");
    let ready = raft3d_launcher::eventually("the node serves", Duration::from_secs(20), || async {
        match client.cluster().await {
            Ok(view) if view.members.first().is_some_and(|m| m.http_url.is_some()) => Ok(view),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("the API answers over HTTPS");
    assert_eq!(
        ready.members[0].http_url.as_deref(),
        Some(url.as_str()),
        "the node advertises its https:// URL"
    );
    let printer = raft3d_client::NewPrinterBody {
        id: None,
        company: "Prusa".into(),
        model: "MK4".into(),
    };
    client
        .create_printer(&printer)
        .await
        .expect("created over HTTPS");

    // Plain HTTP to the same port, and HTTPS without trusting the CA: no answer.
    let plain = reqwest::get(format!("http://{}/healthz", node.http_addr)).await;
    assert!(plain.is_err(), "{plain:?}");
    let untrusting = reqwest::get(format!("{url}/healthz")).await;
    assert!(untrusting.is_err(), "{untrusting:?}");
    node.shutdown().await;
}
