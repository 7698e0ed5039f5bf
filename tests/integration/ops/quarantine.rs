//! A task that breaks the connection every time is quarantined and recorded; the rest of the
//! run is unaffected.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_drops_the_connection_every_time_is_quarantined() {
    // Find the contracts first (the market does not depend on the faults), then start the
    // simulator that drops the connection whenever the chosen contract is requested.
    let Fixture {
        sim: probe,
        syms,
        ws,
        contracts: n,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(Caches::sampled(1, 0.2, 15))
        .build()
        .await;
    drop(probe);
    let caches = read_caches(&ws.caches());
    let culprit = caches[0].contracts[3].con_id;
    let sim = sim("fast", |sc| sc.faults.drop_on_con_ids = vec![culprit]).await;
    let plan = ws.plan("ops", &syms, end_date(), sim.addr().port(), HOURS);
    let out = run_env_async(
        args(&["execute", &plan.display().to_string(), "--run-id", "q"]),
        ws.root.clone(),
        vec![],
    )
    .await;
    let err = stderr(&out);
    // One task in error: exit 1, not 0 and not a lost gateway.
    assert_eq!(
        out.status.code(),
        Some(opt_backfill::exit::TASK_ERRORS),
        "{err}"
    );
    let recs = latest(&ws.summaries());
    assert_eq!(recs.len(), n, "every task has a summary record");
    let bad: Vec<_> = recs.values().filter(|r| r.con_id == culprit).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].status, "QUARANTINED", "{:?}", bad[0]);
    let others_done = recs
        .values()
        .filter(|r| r.con_id != culprit && matches!(r.status.as_str(), "OK" | "EMPTY"))
        .count();
    assert_eq!(others_done, n - 1, "the rest of the run is unaffected");
    // A handful of drops, not hundreds: the culprit was isolated, then set aside.
    let drops: u64 = sim
        .counters()
        .disconnects
        .iter()
        .filter(|(k, _)| k.as_str() == "fault-drop-on-con-id")
        .map(|(_, v)| v)
        .sum();
    assert!((2..=6).contains(&drops), "{drops} drops");
    // The quarantined task is in the rerun CSV.
    let csv = ws.root.join("rerun.csv");
    let out = run_env_async(
        args(&[
            "rerun",
            &ws.root.join("state/run_logs/test/q").display().to_string(),
            "--contracts",
            "-o",
            &csv.display().to_string(),
        ]),
        ws.root.clone(),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.contains(&format!(",{culprit},")) && text.contains("QUARANTINED"),
        "{text}"
    );
}
