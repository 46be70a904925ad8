//! Concurrent clients on every node never oversell a spool.

use crate::harness::{job, printer, spool, Cluster};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_four_concurrent_jobs_on_a_1000g_spool_accept_exactly_ten() {
    let cluster = std::sync::Arc::new(Cluster::start(3, &[]));
    let leader = cluster.wait_for_leader().await;
    assert_eq!(
        cluster
            .write(leader, "/api/v1/printers", &printer("p1"), "kp")
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        cluster
            .write(leader, "/api/v1/filaments", &spool("f1", 1000), "kf")
            .await
            .0,
        StatusCode::CREATED
    );

    // 24 creates of 100 g, sent round-robin to all three nodes at once.
    let tasks: Vec<_> = (0..24u64)
        .map(|n| {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let via = n % 3 + 1;
                cluster
                    .write(
                        via,
                        "/api/v1/print_jobs",
                        &job(&format!("j{n:02}"), "p1", "f1", 100),
                        &format!("kj{n}"),
                    )
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }

    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((created, refused), (10, 14), "{statuses:?}");
    let (_, jobs) = cluster.get(leader, "/api/v1/print_jobs").await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(10));
    let (_, spool) = cluster.get(leader, "/api/v1/filaments/f1").await;
    assert_eq!(spool["reserved_weight_in_grams"], 1000);
    assert_eq!(spool["available_weight_in_grams"], 0);
}
