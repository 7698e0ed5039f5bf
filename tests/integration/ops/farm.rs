//! A flapping historical data farm pauses dispatch instead of burning attempts into TIMEOUT.

use super::*;
use opt_backfill::sim::scenario::FarmFlapSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_farm_loses_no_task_to_timeout() {
    let Fixture {
        sim: _sim,
        ws,
        plan,
        contracts: n,
        ..
    } = small_run(3, 30)
        .scenario(|sc| {
            sc.hmds.latency_median_ms = 80.0;
            sc.hmds.latency_min_ms = 40.0;
            sc.hmds.latency_max_ms = 200.0;
            sc.hmds.slots = 4;
            // Broken for 5 s every 6 s: far longer than the 1 s request timeout below, so
            // without the pause every request in flight or sent meanwhile times out, and with
            // two attempts per task some end TIMEOUT.
            sc.faults.farm_flap = Some(FarmFlapSettings {
                every_secs: 1.0,
                down_secs: 5.0,
            });
        })
        .plan(PlanSpec::new("ops", HOURS).max_attempts(2))
        .build()
        .await;
    let out = run_env_async(
        args(&[
            "execute",
            &plan.display().to_string(),
            "--request-timeout",
            "1s",
            "--run-id",
            "farm",
        ]),
        ws.root.clone(),
        vec![],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let recs = latest(&ws.summaries());
    assert_eq!(recs.len(), n);
    let timeouts = recs.values().filter(|r| r.status == "TIMEOUT").count();
    assert_eq!(timeouts, 0, "{err}");
    let log =
        std::fs::read_to_string(ws.root.join("state/run_logs/test/farm/execute_0of1.log")).unwrap();
    assert!(log.contains("farm notice 2105"), "{log}");
    assert!(log.contains("dispatch paused"), "{log}");
    let totals: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.root.join("state/run_logs/test/farm/run_0of1.json")).unwrap(),
    )
    .unwrap();
    assert!(
        totals["governor"]["farm_pauses"].as_u64().unwrap() >= 1,
        "{totals}"
    );
}
