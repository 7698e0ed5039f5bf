//! SIGTERM and SIGHUP take the graceful path Ctrl-C takes.

use super::*;
use std::time::{Duration, Instant};

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Start a run on a slowish simulator, send `sig` once a fifth of the tasks is done, check the
/// graceful stop (exit code, totals written), then finish the run with the same command.
async fn stop_with(sig: &str, code: i32) {
    let Fixture {
        sim: _sim,
        ws,
        plan,
        contracts: n,
        ..
    } = small_run(3, 40)
        .scenario(|sc| {
            sc.hmds.latency_median_ms = 60.0;
            sc.hmds.latency_min_ms = 30.0;
            sc.hmds.latency_max_ms = 200.0;
            sc.hmds.slots = 4;
        })
        .build()
        .await;
    let child = Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(["execute", &plan.display().to_string(), "--run-id", "first"])
        .current_dir(&ws.root)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ws.summaries().len() < n / 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(sig, child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    let done = ws.summaries().len();
    assert!(done > 0 && done < n, "stopped mid-run: {done} of {n}");
    // The graceful path wrote the run totals and said why it stopped in the run log.
    let run_dir = ws.root.join("state/run_logs/test/first");
    let totals: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run_0of1.json")).unwrap()).unwrap();
    assert_eq!(totals["total"].as_u64(), Some(n as u64), "{totals}");
    let log = std::fs::read_to_string(run_dir.join("execute_0of1.log")).unwrap();
    assert!(log.contains("received"), "{log}");
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    let finished = latest(&ws.summaries())
        .values()
        .filter(|r| matches!(r.status.as_str(), "OK" | "EMPTY"))
        .count();
    assert_eq!(finished, n, "every task finished after the second run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_the_same_command_finishes() {
    stop_with("-TERM", opt_backfill::exit::TERMINATED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_gracefully_too() {
    stop_with("-HUP", opt_backfill::exit::HANGUP).await;
}
