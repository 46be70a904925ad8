//! `raft3d-client`'s typed calls against a real node: what a Rust integration gets back.

use crate::helpers::spawn_node;
use raft3d_client::{Client, JobStatus, NewFilamentBody, NewPrintJobBody, NewPrinterBody};

#[tokio::test]
async fn typed_calls_create_read_and_move_a_job_and_refusals_are_typed() {
    let node = spawn_node().await;
    let client = Client::new([node.base.clone()]).expect("client");

    let printer = client
        .create_printer(&NewPrinterBody {
            id: Some("p1".into()),
            company: "Prusa".into(),
            model: "MK4".into(),
        })
        .await
        .expect("printer created");
    assert_eq!(printer.id.as_str(), "p1");
    let spool = client
        .create_filament(&NewFilamentBody {
            id: None,
            kind: "petg".into(),
            color: "blue".into(),
            total_weight_in_grams: 1000,
            remaining_weight_in_grams: None,
        })
        .await
        .expect("spool created");
    let job = client
        .create_job(&NewPrintJobBody {
            id: Some("j1".into()),
            ..NewPrintJobBody::by_path("p1", spool.id.as_str(), "benchy.gcode", 200)
        })
        .await
        .expect("job created");
    assert_eq!(job.status, JobStatus::Queued);
    let moved = client
        .set_job_status("j1", JobStatus::Running)
        .await
        .expect("job started");
    assert_eq!(moved.status, JobStatus::Running);
    let running = client
        .jobs(Some(JobStatus::Running))
        .await
        .expect("jobs listed");
    assert_eq!(running.len(), 1);
    assert_eq!(client.printers().await.expect("listed").len(), 1);

    // Refusals are definite, typed, and name the field.
    let missing = client.job("nope").await.expect_err("no such job");
    assert_eq!(missing.status(), Some(404));
    assert!(!missing.outcome_unknown());
    let bad = client
        .create_filament(&NewFilamentBody {
            id: None,
            kind: "wood".into(),
            color: "red".into(),
            total_weight_in_grams: 10,
            remaining_weight_in_grams: None,
        })
        .await
        .expect_err("unknown filament type");
    let raft3d_client::ClientError::Api {
        status, problem, ..
    } = bad
    else {
        panic!("a refusal, not {bad:?}");
    };
    assert_eq!((status, problem.field.as_deref()), (422, Some("type")));
    let illegal = client
        .set_job_status("j1", JobStatus::Queued)
        .await
        .expect_err("Running cannot go back to Queued");
    assert_eq!(illegal.status(), Some(409));

    // The cluster view names the members, which the client learns.
    let view = client.cluster().await.expect("cluster view");
    assert_eq!(view.members.len(), 1);
    assert_eq!(client.members(), vec![node.base.clone()]);
}
