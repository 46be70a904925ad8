//! Checks a recorded history and the final farm against what must hold.
//!
//! Job status is a *monotone* register: it only moves along `Queued → Running →
//! {Done | Canceled}` (or `Queued → Canceled`), and each status is written at most once.
//! For such an object a history is linearizable exactly when every read (a) shows at
//! least every acknowledged transition that completed before the read began, (b) shows a
//! status some transition (acknowledged or of unknown outcome) had already been sent
//! for, and (c) never shows less than a read that completed before it began: any order
//! of writes that respects (a)-(c) and real time can place each read right after the
//! last write it reflects. So we check (a)-(c) per job rather than search all
//! interleavings as Knossos/Porcupine do for arbitrary registers. A job that a read (or a
//! status change) does not find at all although its create was acknowledged before the
//! read began is the same failure as (a), so that is checked too.
//!
//! A run also fails when it tested too little (too few acknowledged writes or checked
//! reads for its length) or when a node process died without the suite killing it.

use crate::nodes::Exit;
use crate::workload::{Kind, Op, Outcome};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A healthy run on the 2-core build machine acknowledged 888 writes and checked 201 reads
/// per second (seed 1, 3 nodes, 60 s, every fault kind); under a third of that means the
/// cluster was mostly unavailable or the workload stalled, so the run proved little.
const MIN_ACKED_WRITES_PER_SEC: u64 = 290;
const MIN_CHECKED_READS_PER_SEC: u64 = 65;

/// A node's applied index and state digest after healing; `None` if it did not answer.
pub type NodeEnd = (u64, Option<(Value, Value)>);

#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub checks: BTreeMap<&'static str, usize>,
    pub violations: Vec<String>,
}

impl Findings {
    pub fn check(&mut self, name: &'static str, ok: bool, why: impl FnOnce() -> String) {
        *self.checks.entry(name).or_insert(0) += 1;
        if !ok {
            self.violations.push(format!("{name}: {}", why()));
        }
    }
}

/// `a` may be followed by (or equal) `b` along a job's life.
fn reaches(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        ("Queued", _)
            | ("Running", "Running" | "Done" | "Canceled")
            | ("Done", "Done")
            | ("Canceled", "Canceled")
    )
}

fn normalise(status: &str) -> String {
    match status.to_ascii_lowercase().as_str() {
        "running" => "Running",
        "done" => "Done",
        "canceled" | "cancelled" => "Canceled",
        _ => "Queued",
    }
    .to_owned()
}

fn by_id(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o["id"].as_str()?.to_owned(), o.clone())))
        .collect()
}

/// Everything the suite asserts about one run.
pub fn check(
    history: &[Op],
    printers: &Value,
    spools: &Value,
    jobs: &Value,
    ends: &[NodeEnd],
) -> Findings {
    let mut f = Findings::default();
    let (printers, spools, jobs) = (by_id(printers), by_id(spools), by_id(jobs));

    // Every acknowledged create exists; nothing exists that nobody asked for.
    let mut requested = BTreeSet::new();
    let acknowledged: BTreeSet<String> = history
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
        .filter_map(|op| match &op.kind {
            Kind::CreatePrinter { id }
            | Kind::CreateSpool { id, .. }
            | Kind::CreateJob { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    for op in history {
        let (id, store) = match &op.kind {
            Kind::CreatePrinter { id } => (id, &printers),
            Kind::CreateSpool { id, .. } => (id, &spools),
            Kind::CreateJob { id, .. } => (id, &jobs),
            _ => continue,
        };
        requested.insert(id.clone());
        if let Outcome::Ok(_) = op.outcome {
            f.check("acknowledged create exists", store.contains_key(id), || {
                format!("{id} missing")
            });
        }
        if let Outcome::Failed(_) = op.outcome {
            // A refused create of a fresh id must not have happened (ids are never reused).
            f.check(
                "refused create was not applied",
                !store.contains_key(id) || acknowledged.contains(id),
                || format!("{id} exists although refused"),
            );
        }
    }
    for id in printers.keys().chain(spools.keys()).chain(jobs.keys()) {
        f.check("nothing unrequested exists", requested.contains(id), || {
            format!("{id} was never requested")
        });
    }

    // Acknowledged transitions are reflected; Done and Canceled never both acknowledged.
    let mut acked: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for op in history {
        if let (Kind::Transition { job, status }, Outcome::Ok(_)) = (&op.kind, &op.outcome) {
            let status = normalise(status);
            let final_status = jobs
                .get(job)
                .and_then(|j| j["status"].as_str())
                .unwrap_or("missing");
            f.check(
                "acknowledged transition is reflected",
                reaches(&status, final_status),
                || format!("{job}: acked {status}, final {final_status}"),
            );
            acked.entry(job).or_default().insert(status);
        }
    }
    for (job, statuses) in &acked {
        f.check(
            "a job is never both Done and Canceled",
            !(statuses.contains("Done") && statuses.contains("Canceled")),
            || format!("{job}: {statuses:?}"),
        );
    }

    // Filament accounting (one pass over the jobs, then one check per spool).
    let mut grams: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for job in jobs.values() {
        let (Some(spool), Some(status)) = (job["filament_id"].as_str(), job["status"].as_str())
        else {
            continue;
        };
        *grams.entry((spool, status)).or_insert(0) +=
            job["print_weight_in_grams"].as_u64().unwrap_or(0);
    }
    for (id, spool) in &spools {
        let n = |k: &str| spool[k].as_u64().unwrap_or(u64::MAX);
        let (total, remaining, reserved) = (
            n("total_weight_in_grams"),
            n("remaining_weight_in_grams"),
            n("reserved_weight_in_grams"),
        );
        let on_spool = |status: &str| grams.get(&(id.as_str(), status)).copied().unwrap_or(0);
        let live = on_spool("Queued") + on_spool("Running");
        f.check("reserved <= remaining", reserved <= remaining, || {
            format!("{id}: reserved {reserved} > remaining {remaining}")
        });
        f.check("reserved == sum of live jobs", reserved == live, || {
            format!("{id}: reserved {reserved}, live jobs {live}")
        });
        f.check(
            "remaining == total - sum of Done jobs",
            remaining.checked_add(on_spool("Done")) == Some(total),
            || {
                format!(
                    "{id}: total {total}, remaining {remaining}, done {}",
                    on_spool("Done")
                )
            },
        );
    }

    acknowledged_jobs_found(history, &mut f);
    linearizable_job_reads(history, &mut f);
    converged(ends, &mut f);
    f
}

/// Every node answers after healing, at the same applied index with the same digest.
fn converged(ends: &[NodeEnd], f: &mut Findings) {
    let reference = ends.iter().find_map(|(_, end)| end.as_ref());
    for (node, end) in ends {
        f.check(
            "nodes converge",
            end.is_some() && end.as_ref() == reference,
            || match (end, reference) {
                (Some((i, d)), Some((index, digest))) => {
                    format!("node {node}: index {i} digest {d} vs {index} {digest}")
                }
                _ => format!("node {node} did not answer after healing"),
            },
        );
    }
}

/// A `404` from a read or a status change of a job whose create was acknowledged before
/// it began: the node served (or the leader applied on) a state without an acknowledged
/// write. Reads count because every read of the workload is linearizable (the default
/// consistency; a `?consistency=stale` read may lag and would not be checked here).
fn acknowledged_jobs_found(history: &[Op], f: &mut Findings) {
    let created: BTreeMap<&str, u64> = history
        .iter()
        .filter_map(|op| match (&op.kind, &op.outcome) {
            (Kind::CreateJob { id, .. }, Outcome::Ok(_)) => Some((id.as_str(), op.completed_ms)),
            _ => None,
        })
        .collect();
    for op in history {
        let (job, name) = match &op.kind {
            Kind::ReadJob { job } => (job, "read finds a job acknowledged before it"),
            Kind::Transition { job, .. } => {
                (job, "status change finds a job acknowledged before it")
            }
            _ => continue,
        };
        let Some(&acked_ms) = created.get(job.as_str()) else {
            continue;
        };
        if acked_ms >= op.invoked_ms || op.outcome == Outcome::Unknown {
            continue;
        }
        f.check(name, op.outcome != Outcome::Failed(404), || {
            format!(
                "{job}: 404 at {}..{}ms, but its create was acked at {acked_ms}ms",
                op.invoked_ms, op.completed_ms
            )
        });
    }
}

/// Enough happened for the other checks to mean something (the thresholds scale with the
/// run's length). Returns the acknowledged writes and the checked reads.
pub fn not_vacuous(history: &[Op], duration: Duration, f: &mut Findings) -> (usize, usize) {
    let writes = history
        .iter()
        .filter(|op| !matches!(op.kind, Kind::ReadJob { .. }))
        .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
        .count();
    // A read is checked when it answered a status or a 404 (see the checks above).
    let reads = history
        .iter()
        .filter(|op| matches!(op.kind, Kind::ReadJob { .. }))
        .filter(|op| matches!(op.outcome, Outcome::Ok(_) | Outcome::Failed(404)))
        .count();
    let secs = duration.as_secs();
    let (min_writes, min_reads) = (
        MIN_ACKED_WRITES_PER_SEC * secs,
        MIN_CHECKED_READS_PER_SEC * secs,
    );
    f.check(
        "enough acknowledged writes",
        writes as u64 >= min_writes,
        || format!("{writes} acknowledged writes, fewer than {min_writes}: the run is vacuous"),
    );
    f.check("enough checked reads", reads as u64 >= min_reads, || {
        format!("{reads} checked reads, fewer than {min_reads}: the run is vacuous")
    });
    (writes, reads)
}

/// No node process ended on its own: one check per node, failed with all its exits.
pub fn no_node_exited(ids: &[u64], exits: &[Exit], f: &mut Findings) {
    for id in ids {
        let mine: Vec<&Exit> = exits.iter().filter(|e| e.node == *id).collect();
        f.check("no node exits on its own", mine.is_empty(), || {
            mine.iter()
                .map(|e| {
                    format!(
                        "node {id} exited ({}); its log ends:\n{}",
                        e.status, e.log_tail
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    }
}

/// Conditions (a)-(c) of the module doc, per job, plus per-client monotonic reads.
fn linearizable_job_reads(history: &[Op], f: &mut Findings) {
    let mut per_job: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        match &op.kind {
            Kind::Transition { job, .. } | Kind::ReadJob { job } => {
                per_job.entry(job).or_default().push(op)
            }
            _ => {}
        }
    }
    for (job, ops) in per_job {
        let reads: Vec<(&Op, String)> = ops
            .iter()
            .filter_map(|op| match (&op.kind, &op.outcome) {
                (Kind::ReadJob { .. }, Outcome::Ok(body)) => {
                    Some((*op, body["status"].as_str()?.to_owned()))
                }
                _ => None,
            })
            .collect();
        for (read, seen) in &reads {
            for op in &ops {
                let Kind::Transition { status, .. } = &op.kind else {
                    continue;
                };
                let status = normalise(status);
                if matches!(op.outcome, Outcome::Ok(_)) && op.completed_ms < read.invoked_ms {
                    f.check(
                        "read sees writes completed before it",
                        reaches(&status, seen),
                        || {
                            format!(
                                "{job}: read at {}ms saw {seen}, but {status} was acked at {}ms",
                                read.invoked_ms, op.completed_ms
                            )
                        },
                    );
                }
            }
            if seen != "Queued" {
                let sent = ops.iter().any(|op| match &op.kind {
                    Kind::Transition { status, .. } => {
                        normalise(status) == *seen
                            && op.invoked_ms <= read.completed_ms
                            && !matches!(op.outcome, Outcome::Failed(_))
                    }
                    _ => false,
                });
                f.check("read shows only requested statuses", sent, || {
                    format!("{job}: read saw {seen} that no transition had requested")
                });
            }
            for (other, other_seen) in &reads {
                if other.completed_ms < read.invoked_ms {
                    let name = if other.client == read.client {
                        "monotonic reads per client"
                    } else {
                        "reads never go back in time"
                    };
                    f.check(name, reaches(other_seen, seen), || {
                        format!("{job}: saw {other_seen} then {seen}")
                    });
                }
            }
        }
    }
}
