//! `raft3d-history-bench`: a 3-node Raft3D cluster holding a farm with a year of history
//! (100k jobs by default), measured as its users meet it (issue #23):
//! - a 100-job page read on a follower (linearizable, the default; and stale);
//! - commit-to-subscriber latency of the change stream at a fixed write rate;
//! - the size of the pages a node renders (`/`, `/jobs`), which must stay bounded;
//! - the serving node's memory while a client reads the whole job list slowly.
//!
//! Raft3D only (no other system here does these things): secure defaults (mTLS peers,
//! API tokens), the release binary next to this one. It prints the numbers and writes
//! them as JSON to `--out`. It asserts nothing: the targets are printed beside.

use clap::Parser;
use raft3d_client::{Call, Client, RetryPolicy};
use raft3d_launcher::{ProcessCluster, Spec, TEST_RAFT_TIMINGS};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Parser)]
#[command(
    name = "raft3d-history-bench",
    about = "Raft3D with a year of history: pages, change stream, page size, whole-list memory"
)]
struct Args {
    /// Jobs in the farm before measuring.
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Page reads per kind.
    #[arg(long, default_value_t = 2_000)]
    pages: u64,
    /// Writes per second while the change stream is measured.
    #[arg(long, default_value_t = 1_000)]
    event_rate: u64,
    /// Seconds of writes while the change stream is measured.
    #[arg(long, default_value_t = 10)]
    event_secs: u64,
    /// The `raft3d` binary (default: the one next to this executable).
    #[arg(long)]
    raft3d_bin: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench-history/results.json")]
    out: PathBuf,
}

#[derive(Debug, Default, Serialize)]
struct Results {
    jobs: u64,
    fill_secs: f64,
    page_follower_linearizable_ms: Percentiles,
    page_follower_stale_ms: Percentiles,
    page_follower_filtered_running_ms: Percentiles,
    events_at_rate: u64,
    events_received: u64,
    event_latency_after_ack_ms: Percentiles,
    event_latency_after_send_ms: Percentiles,
    rendered_overview_bytes: usize,
    rendered_jobs_bytes: usize,
    whole_list_bytes: u64,
    serving_rss_anon_before_mib: f64,
    serving_rss_anon_peak_mib: f64,
}

#[derive(Debug, Default, Serialize)]
struct Percentiles {
    count: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Percentiles {
        count: ms.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: ms.last().copied().unwrap_or(0.0),
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let binary = match &args.raft3d_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("raft3d"),
    };
    let spec = Spec::new(binary, 3)
        .args(TEST_RAFT_TIMINGS)
        // Pages carry the farm only to callers who may read it; a navigation has no token.
        .args(["--anonymous-reads"]);
    let cluster = ProcessCluster::start(spec)?;
    let leader = cluster.wait_for_leader(Duration::from_secs(60)).await?.id;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .ok_or("no follower")?;
    let policy = RetryPolicy {
        deadline: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let client = cluster.client_with(policy)?;
    let token = cluster.admin_token().ok_or("no admin token")?;
    let http = reqwest::Client::new();
    let mut results = Results {
        jobs: args.jobs,
        ..Results::default()
    };

    println!("filling {} jobs ...", args.jobs);
    let started = Instant::now();
    fill(&client, &cluster.url(leader), args.jobs).await?;
    results.fill_secs = started.elapsed().as_secs_f64();
    let applied = cluster
        .view(leader)
        .await
        .and_then(|v| v.applied_index)
        .ok_or("no index")?;
    cluster
        .wait_applied(follower, applied, Duration::from_secs(60))
        .await?;

    let base = cluster.url(follower);
    let page = |query: &'static str| {
        let (http, token, base) = (http.clone(), token.clone(), base.clone());
        async move {
            let mut ms = Vec::new();
            for n in 0..args.pages {
                let after = format!("{:06}", (n * 7919) % args.jobs.max(1));
                let url = format!("{base}/api/v1/print_jobs?limit=100&after=j{after}{query}");
                let started = Instant::now();
                let response = http.get(url).bearer_auth(&token).send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                if !status.is_success() || body.len() < 2 {
                    return Err(format!("page answered {status}").into());
                }
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, Failure>(percentiles(ms))
        }
    };
    results.page_follower_linearizable_ms = page("").await?;
    results.page_follower_stale_ms = page("&consistency=stale").await?;
    results.page_follower_filtered_running_ms = page("&status=running").await?;

    let (received, after_ack, after_send) = event_latency(
        &client,
        &cluster.url(leader),
        &base,
        args.event_rate,
        args.event_secs,
    )
    .await?;
    results.events_at_rate = args.event_rate;
    results.events_received = received;
    results.event_latency_after_ack_ms = after_ack;
    results.event_latency_after_send_ms = after_send;

    for (path, size) in [
        ("/", &mut results.rendered_overview_bytes),
        ("/jobs", &mut results.rendered_jobs_bytes),
    ] {
        *size = http
            .get(format!("{base}{path}"))
            .send()
            .await?
            .bytes()
            .await?
            .len();
    }

    let pid = cluster
        .node(follower)?
        .pid()
        .ok_or("follower not running")?;
    results.serving_rss_anon_before_mib = rss_anon_mib(pid);
    let (bytes, peak) = slow_whole_list(&base, &token, pid).await?;
    results.whole_list_bytes = bytes;
    results.serving_rss_anon_peak_mib = peak;

    report(&results);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)?;
    println!("written to {}", args.out.display());
    Ok(())
}

fn job(id: &str, spool: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "printer_id": "p1", "filament_id": spool,
        "filepath": format!("plates/{id}.gcode"), "print_weight_in_grams": 1,
    })
}

/// One write, which must succeed.
async fn post(
    client: &Client,
    leader: &str,
    path: &'static str,
    body: serde_json::Value,
) -> Result<(), Failure> {
    let call = Call::post(path, &body)?;
    let answer = client.execute_from(leader, &call).await?;
    if !answer.status.is_success() {
        return Err(format!("{path}: {}", answer.status).into());
    }
    Ok(())
}

/// A printer, one spool per 10k jobs, and the jobs, from 64 writers.
async fn fill(client: &Client, leader: &str, jobs: u64) -> Result<(), Failure> {
    let printer = serde_json::json!({"id": "p1", "company": "Prusa", "model": "MK4"});
    post(client, leader, "/api/v1/printers", printer).await?;
    for spool in 0..=jobs / 10_000 {
        let body = serde_json::json!({"id": format!("f{spool}"), "type": "PLA", "color": "red", "total_weight_in_grams": 1_000_000});
        post(client, leader, "/api/v1/filaments", body).await?;
    }
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..64)
        .map(|_| {
            let (next, client, leader) = (next.clone(), client.clone(), leader.to_owned());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= jobs {
                        return Ok::<_, Failure>(());
                    }
                    let body = job(&format!("j{n:06}"), &format!("f{}", n / 10_000));
                    post(&client, &leader, "/api/v1/print_jobs", body).await?;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(())
}

/// Per job id: when its write was sent and when it was answered.
type SendTimes = HashMap<String, (Instant, Option<Instant>)>;

/// Writes at `rate` per second for `secs` seconds on the leader while a subscriber on
/// `follower` receives the change stream; per job, the time from its write's answer (and
/// from its sending) to its `job.created` event at the subscriber.
async fn event_latency(
    client: &Client,
    leader: &str,
    follower: &str,
    rate: u64,
    secs: u64,
) -> Result<(u64, Percentiles, Percentiles), Failure> {
    let mut stream = client.events(follower, None).await?;
    let sent: Arc<std::sync::Mutex<SendTimes>> = Arc::default();
    let total = rate * secs;
    let writer = {
        let (client, leader, sent) = (client.clone(), leader.to_owned(), sent.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let mut writes = Vec::new();
            for n in 0..total {
                let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let id = format!("e{n:06}");
                let (client, leader, sent) = (client.clone(), leader.clone(), sent.clone());
                writes.push(tokio::spawn(async move {
                    let call = Call::post("/api/v1/print_jobs", &job(&id, "f0"))?;
                    sent.lock()
                        .map_err(|_| "lock")?
                        .insert(id.clone(), (Instant::now(), None));
                    client.execute_from(&leader, &call).await?;
                    if let Some(entry) = sent.lock().map_err(|_| "lock")?.get_mut(&id) {
                        entry.1 = Some(Instant::now());
                    }
                    Ok::<_, Failure>(())
                }));
            }
            for write in writes {
                write.await??;
            }
            Ok::<_, Failure>(())
        })
    };
    let mut received = HashMap::new();
    while (received.len() as u64) < total {
        match stream.next(Duration::from_secs(10)).await? {
            Some(event) if event.kind == "job.created" => {
                if let Some(id) = event.data["id"].as_str() {
                    received.insert(id.to_owned(), Instant::now());
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    writer.await??;
    let sent = sent.lock().map_err(|_| "lock")?;
    let (mut after_ack, mut after_send) = (Vec::new(), Vec::new());
    for (id, at) in &received {
        if let Some((send, ack)) = sent.get(id) {
            after_send.push(at.duration_since(*send).as_secs_f64() * 1000.0);
            if let Some(ack) = ack {
                // Negative when the event beat the answer: the commit precedes both.
                after_ack.push(
                    (at.saturating_duration_since(*ack).as_secs_f64()
                        - ack.saturating_duration_since(*at).as_secs_f64())
                        * 1000.0,
                );
            }
        }
    }
    Ok((
        received.len() as u64,
        percentiles(after_ack),
        percentiles(after_send),
    ))
}

/// `RssAnon` of a process, in MiB.
fn rss_anon_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("RssAnon:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Reads the whole job list from `base` at about 4 MB/s (a slow client) while sampling
/// the serving node's memory; returns the list's size and the peak RssAnon.
async fn slow_whole_list(base: &str, token: &str, pid: u32) -> Result<(u64, f64), Failure> {
    let addr = base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
    let request = format!(
        "GET /api/v1/print_jobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut total = 0u64;
    let mut peak = 0f64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tcp.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        total += read as u64;
        peak = peak.max(rss_anon_mib(pid));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    Ok((total, peak))
}

fn report(r: &Results) {
    let p = |name: &str, x: &Percentiles| {
        println!(
            "  {name:<48} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  (n={})",
            x.p50, x.p99, x.max, x.count
        );
    };
    println!(
        "\nRaft3D with {} jobs (3 nodes, secure defaults, filled in {:.1} s):",
        r.jobs, r.fill_secs
    );
    p(
        "100-job page on a follower, linearizable",
        &r.page_follower_linearizable_ms,
    );
    p(
        "100-job page on a follower, stale",
        &r.page_follower_stale_ms,
    );
    p(
        "running jobs page on a follower (index)",
        &r.page_follower_filtered_running_ms,
    );
    println!("  target: 100-item page on a follower p50 <= 5 ms");
    println!(
        "  change stream at {} writes/s: {} events received",
        r.events_at_rate, r.events_received
    );
    p(
        "event after the write's answer",
        &r.event_latency_after_ack_ms,
    );
    p(
        "event after the write was sent",
        &r.event_latency_after_send_ms,
    );
    println!("  target: commit-to-subscriber p99 <= 100 ms at 1,000 writes/s");
    println!(
        "  rendered page: / {} bytes, /jobs {} bytes (target <= 200 KB)",
        r.rendered_overview_bytes, r.rendered_jobs_bytes
    );
    println!(
        "  whole job list {:.1} MB read slowly: serving node RssAnon {:.1} -> peak {:.1} MiB (target: grows by less than the list)",
        r.whole_list_bytes as f64 / 1e6,
        r.serving_rss_anon_before_mib,
        r.serving_rss_anon_peak_mib
    );
}
