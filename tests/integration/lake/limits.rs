//! Limits learned, not feared: a window longer than the gateway serves costs one probe per bar
//! size, never a lost window.

use super::*;
use opt_backfill::bars::BarSize;
use opt_backfill::sim::scenario::OverLimit;

const MINUTES_1M: &str = r#"[[phase]]
name = "minutes"
bars = [{ size = "1 min", duration = "1 M" }]
"#;

const STRICT: &str = "[limits]\n\"1 min\" = \"1 D\"\n";
const MONTH: &str = "[limits]\n\"1 min\" = \"1 M\"\n";

/// Two contracts (one symbol) is enough: 22 sessions each.
const TWO: Caches = Caches {
    expiries: 1,
    band: 0.02,
    per_symbol: 2,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_empty_windows_are_split_to_the_strict_limit_with_one_probe() {
    // Like the real gateway seen in late 2025: too-long `1 min` windows answer zero bars and no
    // error; this one serves `1 min` windows of one day only.
    // Strict table: 22 `1 D` requests per contract.
    let Fixture {
        sim,
        market,
        syms,
        ws: strict_ws,
        ..
    } = Fixture::builder()
        .scenario(|s| {
            s.hmds.over_limit = OverLimit::SilentEmpty;
            s.hmds
                .max_duration
                .insert(BarSize::Min1, "1 D".parse().unwrap());
        })
        .symbols(1)
        .caches(TWO)
        .build()
        .await;
    let port = sim.addr().port();
    let plan = plan_with_limits(&strict_ws, "s", &syms, port, STRICT, MINUTES_1M);
    let before = sim.historical_log().len();
    let (code, err) = execute(&strict_ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let strict_requests = sim.historical_log().len() - before;
    // A `1 M` limit: one probe answers zero bars, the rest is split to `1 D`.
    let ws = Workspace::new();
    ws.write_caches(&market, &syms, TWO);
    let plan = plan_with_limits(&ws, "m", &syms, port, MONTH, MINUTES_1M);
    let before = sim.historical_log().len();
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let learned_requests = sim.historical_log().len() - before;
    eprintln!("strict {strict_requests} requests, learned {learned_requests}");
    assert!(
        learned_requests <= strict_requests + 1,
        "at most one extra request per bar size: {learned_requests} vs {strict_requests}"
    );
    assert_same_lake(&read_lake(&ws.root), &read_lake(&strict_ws.root));
    let run: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::fs::read_dir(ws.root.join("state/run_logs/test"))
                .unwrap()
                .flatten()
                .find(|e| e.path().is_dir())
                .unwrap()
                .path()
                .join("run_0of1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(run["learned_limits"]["1 min"], "1 D", "{run}");
    let rep = ws
        .cli(&["report", &ws.run_logs().display().to_string()])
        .await;
    let table = ok(&rep);
    let table = String::from_utf8_lossy(&rep.stdout).into_owned() + &table;
    assert!(
        table.contains("splits 2"),
        "one split per contract: {table}"
    );
    let (code, out) = verify(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_serving_a_month_gets_one_request_per_contract() {
    let Fixture {
        sim,
        market,
        syms,
        ws,
        plan,
        contracts,
    } = Fixture::builder()
        .scenario(|s| {
            s.hmds
                .max_duration
                .insert(BarSize::Min1, "1 M".parse().unwrap());
        })
        .symbols(1)
        .caches(TWO)
        .plan(PlanSpec::new("m", MINUTES_1M).limits(MONTH))
        .build()
        .await;
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        sim.historical_log().len(),
        contracts,
        "one `1 M` request each"
    );
    let strict_ws = Workspace::new();
    strict_ws.write_caches(&market, &syms, TWO);
    let plan = plan_with_limits(
        &strict_ws,
        "s",
        &syms,
        sim.addr().port(),
        STRICT,
        MINUTES_1M,
    );
    let (code, err) = execute(&strict_ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_same_lake(&read_lake(&ws.root), &read_lake(&strict_ws.root));
}
