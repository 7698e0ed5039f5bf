//! Logs on the terminal and in the run directory; write failures are errors.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_summary_fails_the_run_loudly_naming_the_path() {
    let Fixture {
        sim: _sim,
        ws,
        plan,
        contracts: n,
        ..
    } = small_run(1, 4).build().await;
    assert!(n > 0);
    // The summary file's path is taken by a directory: no append can succeed (even as root).
    let blocker = ws
        .root
        .join("state/run_logs/test/r1/summary_hours_0of1.jsonl");
    std::fs::create_dir_all(&blocker).unwrap();
    let out = run_env_async(
        args(&[
            "execute",
            &plan.display().to_string(),
            "--run-id",
            "r1",
            "--no-resume",
            "-q",
        ]),
        ws.root.clone(),
        vec![],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(opt_backfill::exit::TASK_ERRORS),
        "{err}"
    );
    assert!(err.contains(&blocker.display().to_string()), "{err}");
    assert!(err.contains("could not be written"), "{err}");
    // -q: errors still shown, no progress lines.
    assert!(!err.contains("progress:"), "{err}");
    // The run log in the run directory says the same, with timestamps.
    let log =
        std::fs::read_to_string(ws.root.join("state/run_logs/test/r1/execute_0of1.log")).unwrap();
    assert!(log.contains("cannot append to the summary"), "{log}");
    assert!(log.contains("connected to"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_debug_shows_reconnects_and_json_lines_parse() {
    let Fixture {
        sim: _sim,
        ws,
        plan,
        contracts: n,
        ..
    } = small_run(2, 20)
        .scenario(|sc| {
            sc.faults.drop_after_requests = Some(15);
        })
        .build()
        .await;
    assert!(n > 15, "{n}");
    let out = run_env_async(
        args(&[
            "execute",
            &plan.display().to_string(),
            "--log-format",
            "json",
            "--run-id",
            "r2",
        ]),
        ws.root.clone(),
        vec![("RUST_LOG".into(), "debug".into())],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let json: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!json.is_empty(), "{err}");
    let reconnects = json
        .iter()
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reconnect"))
        })
        .count();
    assert!(reconnects > 0, "no reconnect line in {err}");
    assert!(json
        .iter()
        .all(|v| v["level"].is_string() && v["timestamp"].is_string()));
    // The run log has JSON lines too.
    let log =
        std::fs::read_to_string(ws.root.join("state/run_logs/test/r2/execute_0of1.log")).unwrap();
    for l in log.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    assert!(log.contains("reconnected to"), "{log}");
}
