//! The observed limit table (the plan default) end to end: the real binary and `ibapi` against
//! simulated gateways that serve `1 min` x `1 M` in one request, or only `1 D` (refusing longer
//! windows with 162, or answering them with zero bars). Whatever the gateway does, the lake
//! equals the one the strict table builds; against a gateway that serves the month it takes one
//! request per contract instead of one per session.

use crate::support::*;
use opt_backfill::sim::scenario::OverLimit;
use opt_backfill::sim::{Scenario, SimHandle};
use opt_backfill::store::parquet::read_bars;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MINUTES: &str = r#"[[phase]]
name = "minutes"
bars = [{ size = "1 min", duration = "1 M" }]
"#;

/// Every bar of every Parquet file under `dir`: (path relative to `dir`) -> bars as
/// (ts, open, high, low, close, volume, count).
type Lake = BTreeMap<PathBuf, Vec<(i64, f64, f64, f64, f64, f64, i32)>>;

fn lake(dir: &Path) -> Lake {
    bar_files(dir)
        .into_iter()
        .map(|p| {
            let rows = read_bars(&p).unwrap().unwrap_or_default();
            let bars = rows
                .iter()
                .map(|r| {
                    let b = &r.bar;
                    (
                        b.ts.timestamp(),
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume,
                        b.count,
                    )
                })
                .collect();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bars)
        })
        .collect()
}

/// Run the minutes plan (`strict` or the default table) for one symbol's sampled contracts
/// against `sim`: the lake and the `1 min` requests the gateway saw.
async fn run(sim: &SimHandle, strict: bool) -> (Lake, usize, usize) {
    let market = sim.market();
    let syms = first_symbols(&market, 1);
    let ws = Workspace::new();
    let contracts = ws.write_caches(&market, &syms, Caches::sampled(4, 0.1, 8));
    let mut spec = PlanSpec::new("minutes", MINUTES).end(regular_end());
    if strict {
        spec =
            spec.limits(&DEFAULT_LIMITS.replacen("[limits]\n", "[limits]\nbase = \"strict\"\n", 1));
    }
    let plan = ws.write_plan(&spec, &syms, sim.addr().port());
    if strict {
        let text = std::fs::read_to_string(&plan).unwrap();
        assert!(text.contains("base = \"strict\""));
    }
    let before = sim.historical_log().len();
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    let requests = sim.historical_log()[before..]
        .iter()
        .filter(|r| r.bar_size == "1 min")
        .count();
    (lake(&ws.root.join("data_test")), requests, contracts)
}

/// A regular session (16:00 close) to end on: a month back from it is a close too, so one `1 M`
/// window and the strict table's `1 D` windows (one per session after that close) cover the
/// same sessions. (From a half day's
/// 13:00 close a month back lands inside a session, whose afternoon only the `1 M` window gets.)
fn regular_end() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

/// Sessions in `1 M` back from [`regular_end`]: the strict table's `1 D` windows per contract.
fn sessions_in_a_month() -> usize {
    let end = regular_end();
    let start = "1 M"
        .parse::<opt_backfill::bars::Duration>()
        .unwrap()
        .start_before(end);
    opt_backfill::calendar::sessions_between(start.succ_opt().unwrap(), end)
        .unwrap()
        .len()
}

async fn sim_with(f: impl FnOnce(&mut Scenario)) -> SimHandle {
    sim("fast", f).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_per_contract_where_the_gateway_serves_the_month() {
    let sim = sim_with(|s| {
        s.hmds
            .max_duration
            .insert("1 min".parse().unwrap(), "1 M".parse().unwrap());
    })
    .await;
    let (strict_lake, strict_requests, contracts) = run(&sim, true).await;
    let (lake, requests, _) = run(&sim, false).await;
    println!(
        "1 min x 1 M, {contracts} contracts, gateway serves 1 M: strict {strict_requests} requests, observed {requests}"
    );
    assert!(!strict_lake.is_empty());
    assert_eq!(lake, strict_lake);
    assert_eq!(requests, contracts, "one request per contract");
    assert_eq!(
        strict_requests,
        sessions_in_a_month() * contracts,
        "one per session under strict"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_lake_where_the_gateway_serves_one_day() {
    for over_limit in [OverLimit::Error, OverLimit::SilentEmpty] {
        let sim = sim_with(|s| s.hmds.over_limit = over_limit).await;
        let (strict_lake, strict_requests, contracts) = run(&sim, true).await;
        let (lake, requests, _) = run(&sim, false).await;
        println!(
            "1 min x 1 M, {contracts} contracts, gateway serves 1 D ({over_limit:?}): strict {strict_requests} requests, observed {requests}"
        );
        assert!(!strict_lake.is_empty());
        assert_eq!(lake, strict_lake, "{over_limit:?}");
        assert_eq!(strict_requests, sessions_in_a_month() * contracts);
        // The first too-long window teaches the limit for the rest of the run.
        assert!(
            requests <= strict_requests + 1,
            "{over_limit:?}: {requests} requests, strict {strict_requests}"
        );
    }
}
