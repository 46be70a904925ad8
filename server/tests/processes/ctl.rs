//! `raft3d ctl` against a real cluster: what a person or a script sees, exit codes
//! included (0 done, 1 refused, 3 not found, 4 no definite answer).

use crate::harness::{raft3d, Cluster};

/// Runs `raft3d ctl --cluster <urls> <args>` with `token` in `RAFT3D_TOKEN`; returns
/// (exit code, stdout, stderr).
async fn ctl(urls: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let head = ["ctl", "--cluster", urls, "--timeout-secs", "20"];
    raft3d(token, head.iter().chain(args)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_is_run_from_the_command_line_with_script_friendly_exit_codes() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader().await;
    // Only a follower's URL: the client must find the leader by itself.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let url = cluster.node(follower).url();
    let token = cluster.admin_token();

    let (code, out, err) = ctl(
        &url,
        &token,
        &[
            "printers",
            "create",
            "--company",
            "Prusa",
            "--model",
            "MK4",
            "--id",
            "p1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p1") && out.contains("MK4"), "{out}");

    let (code, out, err) = ctl(
        &url,
        &token,
        &[
            "spools", "create", "--type", "pla", "--color", "red", "--total", "1000", "--id", "s1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PLA"), "{out}");

    let (code, _, err) = ctl(
        &url,
        &token,
        &[
            "jobs",
            "create",
            "--printer",
            "p1",
            "--spool",
            "s1",
            "--file",
            "benchy.gcode",
            "--grams",
            "300",
            "--id",
            "j1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    for step in ["start", "finish"] {
        let (code, _, err) = ctl(&url, &token, &["jobs", step, "j1"]).await;
        assert_eq!(code, 0, "jobs {step}: {err}");
    }
    // JSON for scripts: the API's own shapes.
    let (code, out, err) = ctl(&url, &token, &["--json", "spools", "show", "s1"]).await;
    assert_eq!(code, 0, "{err}");
    let spool: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(spool["remaining_weight_in_grams"], 700, "{out}");

    // Refused: an illegal move and a rule broken; nothing changes.
    let (code, _, err) = ctl(&url, &token, &["jobs", "start", "j1"]).await;
    assert_eq!(code, 1, "a finished job cannot start again: {err}");
    let (code, _, _) = ctl(
        &url,
        &token,
        &[
            "spools", "create", "--type", "wood", "--color", "red", "--total", "10",
        ],
    )
    .await;
    assert_eq!(code, 1);
    let (code, out, _) = ctl(&url, &token, &["--json", "spools", "list"]).await;
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{out}");

    // A page at a time: two jobs, the first page of one says how to get the next.
    let (code, _, err) = ctl(
        &url,
        &token,
        &[
            "jobs",
            "create",
            "--printer",
            "p1",
            "--spool",
            "s1",
            "--file",
            "cube.gcode",
            "--grams",
            "10",
            "--id",
            "j2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctl(&url, &token, &["jobs", "list", "--limit", "1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("benchy.gcode") && !out.contains("cube.gcode"),
        "{out}"
    );
    assert!(out.contains("more: --after j1"), "{out}");
    let (code, out, err) = ctl(
        &url,
        &token,
        &["jobs", "list", "--limit", "1", "--after", "j1"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cube.gcode") && !out.contains("more:"),
        "{out}"
    );
    let (code, out, err) = ctl(&url, &token, &["jobs", "list", "--status", "done"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("benchy.gcode") && !out.contains("cube.gcode"),
        "{out}"
    );

    // Not found.
    let (code, _, err) = ctl(&url, &token, &["jobs", "show", "nope"]).await;
    assert_eq!(code, 3, "{err}");

    // A write retried by hand with the key it was given is applied once: the second run
    // replays the first answer instead of refusing the now-taken id.
    for run in 0..2 {
        let (code, _, err) = ctl(
            &url,
            &token,
            &[
                "--idempotency-key",
                "ctl-k1",
                "printers",
                "create",
                "--company",
                "Bambu",
                "--model",
                "X1",
                "--id",
                "p2",
            ],
        )
        .await;
        assert_eq!(code, 0, "run {run}: {err}");
    }

    // The cluster as the leader sees it.
    let (code, out, err) = ctl(&url, &token, &["cluster", "status"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("leader: node {leader}")), "{out}");
}

#[tokio::test]
async fn no_answer_is_exit_code_four_with_the_key_to_retry_with() {
    let dead = format!("http://127.0.0.1:{}", raft3d_launcher::ports::free_port());
    let args = [
        "ctl",
        "--cluster",
        &dead,
        "--timeout-secs",
        "1",
        "printers",
        "create",
    ];
    let (code, _, err) = raft3d("", args.iter().chain(&["--company", "A", "--model", "B"])).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("--idempotency-key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_printer_connections_from_the_command_line_never_show_the_key() {
    let cluster = Cluster::start(3, &[]);
    cluster.wait_for_leader().await;
    let urls = cluster.node(1).url();
    let token = cluster.admin_token();
    let dir = tempfile::tempdir().expect("temp dir");
    let gcode = dir.path().join("benchy.gcode");
    std::fs::write(
        &gcode,
        "; generated by PrusaSlicer 2.7.1\nG28\n; filament used [g] = 3.71\n; estimated printing time (normal mode) = 1m 5s\n",
    )
    .expect("written");
    let key_file = dir.path().join("octoprint.key");
    std::fs::write(&key_file, "SECRETKEY0123456789\n").expect("written");

    let gcode_path = gcode.to_string_lossy().into_owned();
    let (code, out, err) = ctl(&urls, &token, &["files", "upload", &gcode_path]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("benchy.gcode") && out.contains("3.71") && out.contains("65"),
        "{out}"
    );
    let (code, out, _) = ctl(&urls, &token, &["files", "list"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("PrusaSlicer 2.7.1"), "{out}");

    let (code, _, err) = ctl(
        &urls,
        &token,
        &[
            "printers",
            "create",
            "--company",
            "Prusa",
            "--model",
            "MK4",
            "--id",
            "p1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let key_path = key_file.to_string_lossy().into_owned();
    let connect = [
        "printers",
        "connect",
        "p1",
        "--url",
        "http://127.0.0.1:9",
        "--api-key-file",
        &key_path,
    ];
    let (code, out, err) = ctl(&urls, &token, &connect).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("octoprint http://127.0.0.1:9"), "{out}");
    let (code, out, err) = ctl(&urls, &token, &["--json", "printers", "show", "p1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"api_key_set\": true") && !out.contains("SECRETKEY"),
        "{out}"
    );
    let (code, _, err) = ctl(&urls, &token, &["printers", "live"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctl(&urls, &token, &["printers", "disconnect", "p1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not connected"), "{out}");

    // The farm queue: copies for any red PLA, reordered; a spool loaded; a bed cleared.
    let (_, files, _) = ctl(&urls, &token, &["--json", "files", "list"]).await;
    let files: serde_json::Value = serde_json::from_str(&files).expect("json");
    let file_id = files[0]["id"].as_str().expect("a file id").to_owned();
    let add = [
        "queue",
        "add",
        "--file-id",
        &file_id,
        "--material",
        "pla",
        "--color",
        "red",
        "--copies",
        "2",
    ];
    let (code, out, err) = ctl(&urls, &token, &add).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("any PLA red").count(), 2, "{out}");
    let queue = |urls: String, token: String| async move {
        let (_, out, _) = ctl(&urls, &token, &["--json", "queue", "list"]).await;
        let list: serde_json::Value = serde_json::from_str(&out).expect("json");
        crate::harness::ids(&list)
    };
    let order = queue(urls.clone(), token.clone()).await;
    assert_eq!(order.len(), 2);
    let (code, _, err) = ctl(&urls, &token, &["queue", "move", &order[1], "--first"]).await;
    assert_eq!(code, 0, "{err}");
    let moved = queue(urls.clone(), token.clone()).await;
    assert_eq!(moved, [order[1].clone(), order[0].clone()]);
    let (code, _, _) = ctl(&urls, &token, &["queue", "move", &order[1]]).await;
    assert_eq!(code, 2, "a move needs a place");
    let (code, _, err) = ctl(
        &urls,
        &token,
        &[
            "spools", "create", "--type", "pla", "--color", "red", "--total", "500", "--id", "s1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctl(&urls, &token, &["printers", "load", "p1", "--spool", "s1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s1"), "{out}");
    let (code, _, err) = ctl(&urls, &token, &["printers", "clear", "p1"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ctl(
        &urls,
        &token,
        &["printers", "load", "ghost", "--spool", "s1"],
    )
    .await;
    assert_eq!(code, 1, "refused: {err}");
}
