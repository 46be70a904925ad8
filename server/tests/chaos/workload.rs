//! Concurrent clients doing what real integrations do — create printers, spools and
//! jobs, move jobs along, read — against random nodes, following redirects and retrying
//! with an `Idempotency-Key` like a careful client, and recording every operation.

use crate::rng::Rng;
use raft3d_client::{Call, Client, RetryPolicy};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How an operation ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: applied (a write) or served (a read).
    Ok(Value),
    /// A definite refusal (4xx): not applied.
    Failed(u16),
    /// No definite answer before the client gave up (timeouts, 503s): may or may not
    /// have been applied.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    CreatePrinter {
        id: String,
    },
    CreateSpool {
        id: String,
        grams: u64,
    },
    CreateJob {
        id: String,
        spool: String,
        grams: u64,
    },
    Transition {
        job: String,
        status: String,
    },
    /// A linearizable read (the API's default consistency) of one job.
    ReadJob {
        job: String,
    },
}

#[derive(Debug, Clone)]
pub struct Op {
    pub client: usize,
    pub kind: Kind,
    /// Milliseconds since the run started.
    pub invoked_ms: u64,
    pub completed_ms: u64,
    pub outcome: Outcome,
}

/// Ids every client may use; only acknowledged creates are added.
#[derive(Default)]
pub struct Known {
    pub printers: Vec<String>,
    pub spools: Vec<String>,
    pub jobs: Vec<String>,
}

pub struct Workload {
    pub urls: Vec<String>,
    /// The cluster's admin token (`raft3d init`), sent with every request.
    pub token: Option<String>,
    pub known: Mutex<Known>,
    pub history: Mutex<Vec<Op>>,
    pub started: Instant,
}

/// How long a client keeps retrying one operation before calling it unknown.
const OP_DEADLINE: Duration = Duration::from_secs(8);

impl Workload {
    pub fn new(urls: Vec<String>, token: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            urls,
            token,
            known: Mutex::new(Known::default()),
            history: Mutex::new(Vec::new()),
            started: Instant::now(),
        })
    }

    /// A client of every node with `policy` and the cluster's token.
    pub fn api(&self, policy: RetryPolicy) -> Client {
        Client::with_policy(self.urls.clone(), policy)
            .expect("client")
            .with_token(self.token.clone())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// One client's loop until `stop_at`.
    pub async fn client(self: Arc<Self>, client: usize, mut rng: Rng, stop_at: Instant) {
        // Each client has its own picture of the leader, as separate integrations would.
        let policy = RetryPolicy {
            deadline: OP_DEADLINE,
            request_timeout: Duration::from_secs(4),
            ..RetryPolicy::default()
        };
        let api = self.api(policy);
        let mut n = 0u64;
        while Instant::now() < stop_at {
            n += 1;
            let kind = self.next_op(client, n, &mut rng);
            let invoked_ms = self.now_ms();
            let outcome = self
                .perform(&api, &kind, &mut rng, &format!("c{client}-op{n}"))
                .await;
            // Taken before other clients can see a new id, so every operation on it
            // begins no earlier than its create is recorded as acknowledged.
            let completed_ms = self.now_ms();
            if let Outcome::Ok(_) = &outcome {
                let mut known = self.known.lock().expect("known");
                match &kind {
                    Kind::CreatePrinter { id } => known.printers.push(id.clone()),
                    Kind::CreateSpool { id, .. } => known.spools.push(id.clone()),
                    Kind::CreateJob { id, .. } => known.jobs.push(id.clone()),
                    _ => {}
                }
            }
            self.history.lock().expect("history").push(Op {
                client,
                kind,
                invoked_ms,
                completed_ms,
                outcome,
            });
        }
    }

    fn next_op(&self, client: usize, n: u64, rng: &mut Rng) -> Kind {
        let known = self.known.lock().expect("known");
        let roll = rng.range(0, 100);
        let (printer, spool, job) = (
            rng.pick(&known.printers).cloned(),
            rng.pick(&known.spools).cloned(),
            rng.pick(&known.jobs).cloned(),
        );
        match (roll, printer, spool, job) {
            (0..=9, _, _, _) | (_, None, _, _) => Kind::CreatePrinter {
                id: format!("p{client}-{n}"),
            },
            (10..=24, _, _, _) | (_, _, None, _) => Kind::CreateSpool {
                id: format!("s{client}-{n}"),
                grams: rng.range(300, 2000),
            },
            (25..=59, Some(_), Some(spool), _) | (_, Some(_), Some(spool), None) => {
                Kind::CreateJob {
                    id: format!("j{client}-{n}"),
                    spool,
                    grams: rng.range(20, 400),
                }
            }
            (60..=84, _, _, Some(job)) => {
                let status = *rng
                    .pick(&["running", "done", "canceled", "running", "done"])
                    .unwrap_or(&"running");
                Kind::Transition {
                    job,
                    status: status.to_owned(),
                }
            }
            (_, _, _, Some(job)) => Kind::ReadJob { job },
        }
    }

    /// Sends one operation through `client` (which follows the leader and retries with
    /// the same key) from a random node, until a definite answer or the deadline.
    async fn perform(&self, client: &Client, kind: &Kind, rng: &mut Rng, key: &str) -> Outcome {
        let printer = self
            .known
            .lock()
            .expect("known")
            .printers
            .first()
            .cloned()
            .unwrap_or_default();
        let (path, body) = match kind {
            Kind::CreatePrinter { id } => (
                "/api/v1/printers".to_owned(),
                Some(json!({"id": id, "company": "Prusa", "model": "MK4"})),
            ),
            Kind::CreateSpool { id, grams } => (
                "/api/v1/filaments".to_owned(),
                Some(
                    json!({"id": id, "type": "PLA", "color": "red", "total_weight_in_grams": grams}),
                ),
            ),
            Kind::CreateJob { id, spool, grams } => (
                "/api/v1/print_jobs".to_owned(),
                Some(
                    json!({"id": id, "printer_id": printer, "filament_id": spool, "filepath": "chaos.gcode", "print_weight_in_grams": grams}),
                ),
            ),
            Kind::Transition { job, status } => (
                format!("/api/v1/print_jobs/{job}/status?status={status}"),
                Some(Value::Null),
            ),
            Kind::ReadJob { job } => (format!("/api/v1/print_jobs/{job}"), None),
        };
        let call = match body {
            Some(Value::Null) => Call::post_empty(path),
            Some(body) => Call::post(path, &body).expect("JSON body"),
            None => Call::get(path),
        }
        .with_idempotency_key(Some(key.to_owned()));
        let start = rng.pick(&self.urls).cloned().unwrap_or_default();
        match client.execute_from(&start, &call).await {
            Ok(answer) => Outcome::Ok(answer.json().unwrap_or(Value::Null)),
            Err(e) => match e.status() {
                Some(status @ 400..=499) => Outcome::Failed(status),
                // A 5xx or no answer at all: the write may have been applied.
                _ => Outcome::Unknown,
            },
        }
    }
}
