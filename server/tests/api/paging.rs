//! Paged lists (`limit`, `after`, `order`, filters, `Link`), whole lists streamed from one
//! view, `X-Raft3D-Index` and `min_index` reads.

use crate::helpers::{job_body, spawn_node, status_json, TestNode};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

/// The `rel="next"` target of a `Link` header, if any.
fn next_link(response: &Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let target = link.strip_prefix('<')?.split_once('>')?;
    assert_eq!(target.1, "; rel=\"next\"", "{link}");
    Some(target.0.to_owned())
}

fn index_of(response: &Response) -> u64 {
    response
        .headers()
        .get("x-raft3d-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("every API answer carries X-Raft3D-Index")
}

/// Follows `Link` from `first` to the end; returns the ids of every page, in order.
async fn walk(node: &TestNode, first: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let response = node.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        next = next_link(&response);
        let page: Value = response.json().await.expect("a JSON page");
        let ids: Vec<String> = page
            .as_array()
            .expect("a page is an array")
            .iter()
            .map(|o| o["id"].as_str().expect("id").to_owned())
            .collect();
        pages.push(ids);
        assert!(pages.len() < 1000, "paging does not end");
    }
    pages
}

async fn create_jobs(node: &TestNode, ids: impl Iterator<Item = String>) {
    for id in ids {
        let response = node.post("/api/v1/print_jobs", &job_body(&id, 1)).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{id}");
    }
}

#[tokio::test]
async fn pages_walk_every_job_exactly_once_while_jobs_are_added() {
    let node = spawn_node().await;
    node.seed().await;
    create_jobs(&node, (0..120).map(|n| format!("j{n:03}"))).await;

    // Jobs are added between the pages, before and after the cursor.
    let mut pages = Vec::new();
    let mut next = Some("/api/v1/print_jobs?limit=25".to_owned());
    let mut added = 0;
    while let Some(path) = next.take() {
        let response = node.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK);
        next = next_link(&response);
        let page: Vec<Value> = response.json().await.expect("page");
        assert!(page.len() <= 25);
        pages.push(page);
        create_jobs(
            &node,
            [format!("a{added:03}"), format!("z{added:03}")].into_iter(),
        )
        .await;
        added += 1;
    }
    let seen: Vec<String> = pages
        .iter()
        .flatten()
        .map(|j| j["id"].as_str().expect("id").to_owned())
        .collect();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no job twice");
    for n in 0..120 {
        assert!(unique.contains(&format!("j{n:03}")), "j{n:03} was missed");
    }
    // The ones added behind the cursor ("a…") are not seen; the ones ahead ("z…") are.
    assert!(seen.iter().all(|id| !id.starts_with('a')));
    assert!(seen.iter().any(|id| id.starts_with('z')));
    let sorted: Vec<String> = {
        let mut s = seen.clone();
        s.sort();
        s
    };
    assert_eq!(seen, sorted, "pages follow the id order");
}

#[tokio::test]
async fn filters_combine_with_paging_and_desc_walks_newest_first() {
    let node = spawn_node().await;
    node.seed().await;
    let second = r#"{"id":"p2","company":"Bambu","model":"X1C"}"#;
    assert_eq!(
        node.post("/api/v1/printers", second).await.status(),
        StatusCode::CREATED
    );
    for n in 0..30 {
        let printer = if n % 3 == 0 { "p2" } else { "p1" };
        let body = format!(
            r#"{{"id":"j{n:02}","printer_id":"{printer}","filament_id":"f1","filepath":"a.gcode","print_weight_in_grams":1}}"#
        );
        assert_eq!(
            node.post("/api/v1/print_jobs", &body).await.status(),
            StatusCode::CREATED
        );
        if n % 2 == 0 {
            let path = format!("/api/v1/print_jobs/j{n:02}/status?status=running");
            assert_eq!(node.post(&path, "").await.status(), StatusCode::OK);
        }
    }
    // Running on p2: j00 j06 j12 j18 j24 (n divisible by 6).
    let pages = walk(
        &node,
        "/api/v1/print_jobs?status=RUNNING&printer_id=p2&limit=2&order=desc",
    )
    .await;
    assert_eq!(
        pages,
        vec![
            vec!["j24".to_owned(), "j18".to_owned()],
            vec!["j12".to_owned(), "j06".to_owned()],
            vec!["j00".to_owned()],
        ]
    );
    // The whole filtered list, unpaged, is the same set.
    let (status, all) = status_json(
        node.get("/api/v1/print_jobs?status=running&printer_id=p2")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["j00", "j06", "j12", "j18", "j24"]);
    let by_spool = walk(&node, "/api/v1/print_jobs?filament_id=f1&limit=7").await;
    assert_eq!(by_spool.iter().flatten().count(), 30);
    let none = walk(&node, "/api/v1/print_jobs?filament_id=nope&limit=7").await;
    assert_eq!(none, vec![Vec::<String>::new()]);
}

#[tokio::test]
async fn printers_and_spools_page_too_and_the_last_page_has_no_link() {
    let node = spawn_node().await;
    for n in 0..5 {
        let body = format!(r#"{{"id":"p{n}","company":"Prusa","model":"MK4"}}"#);
        assert_eq!(
            node.post("/api/v1/printers", &body).await.status(),
            StatusCode::CREATED
        );
        let spool =
            format!(r#"{{"id":"f{n}","type":"PLA","color":"red","total_weight_in_grams":100}}"#);
        assert_eq!(
            node.post("/api/v1/filaments", &spool).await.status(),
            StatusCode::CREATED
        );
    }
    let printers = walk(&node, "/api/v1/printers?limit=2").await;
    assert_eq!(printers.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let spools = walk(&node, "/api/v1/filaments?limit=5").await;
    assert_eq!(spools.len(), 1, "exactly one page: no link after it");
    let (_, spool_page) = status_json(node.get("/api/v1/filaments?limit=1&after=f3").await).await;
    assert_eq!(spool_page[0]["id"], "f4");
    assert_eq!(spool_page[0]["available_weight_in_grams"], 100);
}

#[tokio::test]
async fn bad_paging_parameters_are_422_naming_the_parameter_and_change_nothing() {
    let node = spawn_node().await;
    node.seed().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-5", "limit"),
        ("limit=abc", "limit"),
        ("after=a%2Fb", "after"),
        ("order=sideways", "order"),
        ("status=paused&limit=3", "status"),
        ("printer_id=%20", "printer_id"),
        ("min_index=-1", "min_index"),
        ("min_index=1.5", "min_index"),
    ] {
        for list in ["print_jobs", "printers", "filaments"] {
            let jobs_only = field.ends_with("_id") || field == "status";
            if jobs_only && list != "print_jobs" {
                continue;
            }
            let (status, problem) =
                status_json(node.get(&format!("/api/v1/{list}?{query}")).await).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{list}?{query}");
            assert_eq!(problem["field"], field, "{list}?{query}");
        }
    }
    let (_, jobs) = status_json(node.get("/api/v1/print_jobs").await).await;
    assert_eq!(jobs, serde_json::json!([]));
}

#[tokio::test]
async fn the_whole_list_is_streamed_and_equals_its_pages() {
    let node = spawn_node().await;
    node.seed().await;
    // Enough jobs to span several chunks of the streamed answer (64 KiB each).
    let path = "x".repeat(900);
    for n in 0..300 {
        let body = format!(
            r#"{{"id":"j{n:03}","printer_id":"p1","filament_id":"f1","filepath":"{path}","print_weight_in_grams":1}}"#
        );
        assert_eq!(
            node.post("/api/v1/print_jobs", &body).await.status(),
            StatusCode::CREATED
        );
    }
    let response = node.get("/api/v1/print_jobs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(index_of(&response) > 300);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the streamed list is JSON"
    );
    let whole: Vec<Value> = response.json().await.expect("one JSON array");
    assert_eq!(whole.len(), 300);
    let paged: Vec<String> = walk(&node, "/api/v1/print_jobs?limit=1000").await.concat();
    let streamed: Vec<String> = whole
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(streamed, paged);
    let one = node.get_json("/api/v1/print_jobs/j123").await;
    assert_eq!(
        whole[123], one,
        "a streamed row is the object as the API shows it"
    );
}

#[tokio::test]
async fn every_answer_carries_the_index_and_min_index_reads_wait_for_it() {
    let node = spawn_node().await;
    let created = node
        .post(
            "/api/v1/printers",
            r#"{"id":"p1","company":"Prusa","model":"MK4"}"#,
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let written_at = index_of(&created);
    for path in [
        "/api/v1/printers",
        "/api/v1/printers?limit=1",
        "/api/v1/printers/p1",
        "/api/v1/cluster",
        "/api/v1/printers/nope",
        "/api/v1/nothing-here",
    ] {
        let response = node.get(path).await;
        assert!(index_of(&response) >= written_at, "{path}");
    }
    let refused = node.post("/api/v1/printers", r#"{"id":"p1"}"#).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    index_of(&refused);

    let (status, printer) = status_json(
        node.get(&format!("/api/v1/printers/p1?min_index={written_at}"))
            .await,
    )
    .await;
    assert_eq!((status, &printer["id"]), (StatusCode::OK, &"p1".into()));

    // An index past the end of the (leader's) log: no answer ever carried it, so the
    // leader refuses it at once instead of waiting (followers wait: processes/events.rs).
    let ahead = written_at + 1_000_000;
    let started = std::time::Instant::now();
    let (status, problem) = status_json(
        node.get(&format!("/api/v1/printers?min_index={ahead}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["type"],
        "https://raft3d.dev/problems/index-in-future"
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&ahead.to_string())),
        "{problem}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[tokio::test]
async fn the_board_is_bounded_per_column_counts_everything_and_filters_on_the_node() {
    let node = spawn_node().await;
    node.seed().await;
    create_jobs(&node, (0..30).map(|n| format!("j{n:03}"))).await;
    for n in 0..12 {
        for status in ["running", "done"] {
            let path = format!("/api/v1/print_jobs/j{n:03}/status?status={status}");
            assert_eq!(node.post(&path, "").await.status(), StatusCode::OK);
        }
    }
    let response = node.get("/api/v1/board?limit=5").await;
    assert_eq!(response.status(), StatusCode::OK);
    let at = index_of(&response);
    let board: Value = response.json().await.expect("board");
    assert_eq!(board["index"].as_u64(), Some(at));
    assert_eq!(board["job_counts"]["Queued"], 18);
    assert_eq!(board["job_counts"]["Done"], 12);
    let ids: Vec<&str> = board["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        ["j012", "j013", "j014", "j015", "j016", "j011", "j010", "j009", "j008", "j007"],
        "queued oldest first, done newest first, 5 each"
    );
    let (_, none) = status_json(node.get("/api/v1/board?printer_id=elsewhere").await).await;
    assert_eq!(none["jobs"], serde_json::json!([]));
    assert_eq!(none["job_counts"]["Queued"], 0);
    assert_eq!(none["printers"].as_array().map(Vec::len), Some(1));
    let (status, _) = status_json(node.get("/api/v1/board?status=done").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = status_json(node.get("/api/v1/board?limit=5000").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
