//! Processes as users run them: the standalone simulator and an interrupted executor, driven by
//! signals.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sigint(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_simulator_serves_an_ibapi_client_and_prints_counters_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(["sim", "--preset", "fast", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = String::new();
    out.read_line(&mut addr).unwrap();
    let addr = addr.trim().to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "first line is the address: {addr:?}"
    );
    let client = tokio::time::timeout(Duration::from_secs(10), ibapi::Client::connect(&addr, 5))
        .await
        .expect("connect in time")
        .expect("handshake");
    let t = client.server_time().await.unwrap();
    assert!(t.year() >= 2026);
    drop(client);
    sigint(child.id());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let json: serde_json::Value =
        serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{e}: {rest}"));
    assert!(json["connections"].as_u64().unwrap() >= 1, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_executor_cleanly_and_a_rerun_finishes() {
    let Fixture {
        sim: _sim,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .scenario(|sc| {
            sc.hmds.latency_median_ms = 60.0;
            sc.hmds.latency_min_ms = 30.0;
            sc.hmds.latency_max_ms = 200.0;
            sc.hmds.slots = 4;
        })
        .symbols(3)
        .caches(Caches::sampled(2, 0.3, 60))
        .plan(PlanSpec::new("int", HOURS))
        .build()
        .await;
    let child = Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(["execute", &plan.display().to_string()])
        .current_dir(&ws.root)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ws.summaries().len() < n / 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigint(child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(opt_backfill::exit::INTERRUPTED),
        "{stderr}"
    );
    let done = ws.summaries().len();
    assert!(done > 0 && done < n, "interrupted mid-run: {done} of {n}");
    // Every summary line is whole (flushed), and the same command finishes the rest.
    let out = ws.execute(&plan, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finished: std::collections::HashSet<i64> = latest(&ws.summaries())
        .values()
        .filter(|r| matches!(r.status.as_str(), "OK" | "EMPTY"))
        .map(|r| r.con_id)
        .collect();
    assert_eq!(finished.len(), n, "every contract finished after the rerun");
}
