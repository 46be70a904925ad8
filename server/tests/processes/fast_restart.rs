//! A leader SIGKILLed and restarted at once (a supervisor with no restart delay) while
//! clients write, again and again: no acknowledged write may be lost and the replicas
//! must not fork.
//!
//! Why it matters: with the leader sending entries before its own log flush, a leader
//! that died before that flush and came back as leader of the *same* term (openraft
//! 0.9 restores a committed vote for itself at startup) handed out log ids the
//! followers already held for other entries. On `main` before the fix this ended with
//! three different state digests at the same applied index and lost `201`s.

use crate::harness::{ids, printer, Cluster, WAIT};
use raft3d_client::{Call, Client, RetryPolicy};
use reqwest::StatusCode;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CYCLES: usize = 30;
const WRITERS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_and_restarted_at_once_thirty_times_forks_nothing_and_loses_nothing() {
    let mut cluster = Cluster::start(3, &[]);
    cluster.wait_for_leader().await;
    let writes = Arc::new(Writes::default());
    let policy = RetryPolicy {
        deadline: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let client = cluster.client_with(policy);
            tokio::spawn(create_printers(client, writer, writes.clone()))
        })
        .collect();

    let mut terms = BTreeSet::new();
    for _ in 0..CYCLES {
        // A second of writes under a leader, then it dies and is back at once.
        let leader = cluster.wait_for_leader().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(term) = cluster.view(leader).await.and_then(|v| v["term"].as_u64()) {
            terms.insert(term);
        }
        cluster.kill(leader).await;
        cluster.restart(leader);
    }
    writes.stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("writer task");
    }

    let acked = writes.acked.lock().expect("acked").clone();
    let unexpected = writes.unexpected.lock().expect("unexpected").clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert!(
        acked.len() >= 100,
        "too few acknowledged writes to judge: {}",
        acked.len()
    );
    cluster.wait_for_leader().await;
    let applied = converged_applied_index(&cluster).await;
    for id in 1..=3 {
        let (status, list) = cluster.get(id, "/api/v1/printers?consistency=stale").await;
        assert_eq!(status, StatusCode::OK);
        let held: BTreeSet<String> = ids(&list).into_iter().collect();
        let lost: Vec<&String> = acked.iter().filter(|id| !held.contains(*id)).collect();
        assert!(
            lost.is_empty(),
            "node {id} (applied {applied}) lost {} of {} acknowledged creates, e.g. {:?}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(5)]
        );
    }
    eprintln!(
        "{CYCLES} fast restarts: {} acknowledged creates, terms seen {terms:?}, all three \
         nodes equal at applied index {applied}",
        acked.len()
    );
}

/// What the writers saw.
#[derive(Default)]
struct Writes {
    stop: AtomicBool,
    /// Ids whose create was answered `201`.
    acked: Mutex<Vec<String>>,
    /// Answers no careful client should ever get here (e.g. `409` for its own retry).
    unexpected: Mutex<Vec<String>>,
}

/// Creates printers one after another through `raft3d-client` (follows `307`, waits out
/// `503`, moves on from a dead node), each with its own `Idempotency-Key` kept across
/// every retry, until `201`. A create still unanswered when the run stops is abandoned
/// (its outcome is unknown, so it is not counted either way).
async fn create_printers(client: Client, writer: usize, writes: Arc<Writes>) {
    for n in 0.. {
        let id = format!("w{writer}-{n}");
        let call = Call::post("/api/v1/printers", &printer(&id))
            .expect("JSON")
            .with_idempotency_key(Some(id.clone()));
        loop {
            if writes.stop.load(Ordering::SeqCst) {
                return;
            }
            match client.execute(&call).await {
                Ok(answer) if answer.status == StatusCode::CREATED => {
                    writes.acked.lock().expect("acked").push(id);
                    break;
                }
                Ok(answer) => {
                    let what = format!("{id}: {} {}", answer.status, answer.problem().detail);
                    writes.unexpected.lock().expect("unexpected").push(what);
                    break;
                }
                Err(e) if e.outcome_unknown() => continue,
                Err(e) => {
                    writes
                        .unexpected
                        .lock()
                        .expect("unexpected")
                        .push(format!("{id}: {e}"));
                    break;
                }
            }
        }
    }
}

/// Waits until all three nodes report the same applied index, then checks that their
/// state digests are equal there. Returns the index.
async fn converged_applied_index(cluster: &Cluster) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut views = Vec::new();
        for id in 1..=3 {
            views.push(cluster.view(id).await.unwrap_or_default());
        }
        let applied: BTreeSet<_> = views.iter().map(|v| v["applied_index"].as_u64()).collect();
        if applied.len() == 1 && views[0]["applied_index"].is_u64() {
            let digests: BTreeSet<_> = views
                .iter()
                .map(|v| v["state_digest"].to_string())
                .collect();
            assert_eq!(
                digests.len(),
                1,
                "replicas forked: same applied index, different state: {views:?}"
            );
            return views[0]["applied_index"].as_u64().unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "nodes never reached the same applied index: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
