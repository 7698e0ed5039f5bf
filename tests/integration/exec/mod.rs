//! `execute` end to end: the real binary and the real `ibapi` client against the in-process
//! simulated gateway, Parquet read back with polars.

use crate::support::*;
use opt_backfill::bars::BarSize;
use opt_backfill::cache::ContractsCache;
use opt_backfill::sim::Market;
use opt_backfill::store::parquet::{bar_file_path, read_bars, SeriesKey};
use opt_backfill::store::summary::SummaryRecord;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

fn caches(ws: &Workspace) -> Vec<ContractsCache> {
    read_caches(&ws.caches())
}

/// Every contract of the caches: its summary status matches what the simulator serves, an OK
/// (or UP_TO_DATE) contract's file holds exactly the simulator's bars, an EMPTY one has no file.
fn assert_files_match_market(
    ws: &Workspace,
    market: &Market,
    bar: BarSize,
    duration: &str,
) -> (usize, usize) {
    let recs = latest(&ws.summaries());
    let by_con: BTreeMap<i64, &SummaryRecord> = recs
        .values()
        .filter(|r| r.bar_size == bar.as_str())
        .map(|r| (r.con_id, r))
        .collect();
    let session = opt_backfill::calendar::session(end_date())
        .unwrap()
        .unwrap();
    let (mut ok, mut empty) = (0, 0);
    for cache in caches(ws) {
        for c in &cache.contracts {
            // Each class's own close: 13:15 for SPY, QQQ, IWM on the half day, 13:00 otherwise.
            let end = opt_backfill::hours::class_close(
                &session,
                opt_backfill::hours::builtin_close_offset(&c.trading_class),
            );
            let rec = by_con
                .get(&c.con_id)
                .unwrap_or_else(|| panic!("no summary for {}", c.local_symbol));
            let key = SeriesKey {
                symbol: cache.underlying.symbol.clone(),
                con_id: c.con_id,
                expiry: c.expiry,
                strike: c.strike,
                right: c.right,
                bar_size: bar,
                what: "TRADES".into(),
                local_symbol: c.local_symbol.clone(),
                trading_class: c.trading_class.clone(),
                multiplier: c.multiplier,
                exchange: c.exchange.clone(),
                currency: c.currency.clone(),
            };
            let path = bar_file_path(&ws.root.join("data_test"), "test", &key);
            match market.bars(
                c.con_id,
                "TRADES",
                bar,
                end,
                duration.parse().unwrap(),
                true,
            ) {
                Ok(expected) => {
                    // UP_TO_DATE: a run killed after writing the file but before its summary
                    // line; the next run found the window covered and said so.
                    assert!(
                        matches!(rec.status.as_str(), "OK" | "UP_TO_DATE"),
                        "{}: {} {:?}",
                        c.local_symbol,
                        rec.status,
                        rec.error_message
                    );
                    let got = read_bars(&path)
                        .unwrap()
                        .unwrap_or_else(|| panic!("no file for {}", c.local_symbol));
                    assert_eq!(got.len(), expected.len(), "{}", c.local_symbol);
                    for (g, e) in got.iter().zip(&expected) {
                        assert_eq!(g.bar.ts, e.ts, "{}", c.local_symbol);
                        assert_eq!(
                            (g.bar.open, g.bar.high, g.bar.low, g.bar.close),
                            (e.open, e.high, e.low, e.close)
                        );
                        assert_eq!(g.bar.volume, e.volume);
                        assert_eq!(g.bar.count, e.count);
                    }
                    ok += 1;
                }
                Err(e) if e.is_no_data() => {
                    assert_eq!(rec.status, "EMPTY", "{}", c.local_symbol);
                    assert!(
                        !path.exists(),
                        "EMPTY contract {} has a file",
                        c.local_symbol
                    );
                    empty += 1;
                }
                Err(e) => panic!("{}: simulator error {e:?}", c.local_symbol),
            }
        }
    }
    (ok, empty)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_phase_for_ten_symbols_matches_the_simulator() {
    // A far-reaching sample of strikes: near-ATM contracts trade, far OTM ones often not.
    let Fixture {
        sim,
        market,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .symbols(10)
        .caches(Caches::sampled(2, 0.8, 30))
        .plan(PlanSpec::new("hours", HOURS))
        .build()
        .await;
    assert!(n > 100, "{n} contracts");
    let out = ws.execute(&plan, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (n_ok, empty) = assert_files_match_market(&ws, &market, BarSize::Hours8, "6 M");
    assert_eq!(n_ok + empty, n);
    assert!(
        n_ok > 0 && empty > 0,
        "ok {n_ok} empty {empty}: the market should produce both"
    );
    let c = sim.counters();
    assert_eq!(c.pacing_violations, 0);
    eprintln!("{n} contracts: {n_ok} OK, {empty} EMPTY");

    // A second run sends nothing: everything is done (resume) and up to date.
    let before = sim.historical_log().len();
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    assert_eq!(
        sim.historical_log().len(),
        before,
        "resume sends no request for finished tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_day_run_requests_only_the_sessions_not_yet_covered() {
    let wed = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let Fixture {
        sim,
        market,
        syms,
        ws,
        plan: p1,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(Caches::near(2, 0.05))
        .plan(PlanSpec::new("wed", HOURS).end(wed))
        .build()
        .await;
    let out = ws.execute(&p1, &[]).await;
    ok(&out);
    let first_run = sim.historical_log().len();
    let p2 = ws.plan("fri", &syms, end_date(), sim.addr().port(), HOURS);
    let out = ws.execute(&p2, &[]).await;
    ok(&out);
    let log = sim.historical_log();
    let second: Vec<_> = log[first_run..].to_vec();
    assert!(!second.is_empty());
    // Wednesday's run answered every session up to Wednesday for every contract (with bars or
    // empty), so Friday's run asks each contract for the sessions after Wednesday only.
    let after_wed = opt_backfill::calendar::sessions_between(wed.succ_opt().unwrap(), end_date())
        .unwrap()
        .len();
    let contracts: std::collections::BTreeSet<i64> = second.iter().map(|r| r.con_id).collect();
    for r in &second {
        assert_eq!(
            r.duration,
            format!("{after_wed} D"),
            "contract {}",
            r.con_id
        );
    }
    assert_eq!(second.len(), contracts.len(), "one request per contract");
    // Files hold exactly the simulator's bars up to Friday.
    assert_files_match_market(&ws, &market, BarSize::Hours8, "6 M");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_file_is_quarantined_and_rewritten() {
    let Fixture {
        sim: _sim,
        market,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .symbols(1)
        .caches(Caches::near(1, 0.03))
        .plan(PlanSpec::new("q", HOURS))
        .build()
        .await;
    let cache = &caches(&ws)[0];
    let end = opt_backfill::calendar::session(end_date())
        .unwrap()
        .unwrap()
        .close;
    let c = cache
        .contracts
        .iter()
        .find(|c| {
            market
                .bars(
                    c.con_id,
                    "TRADES",
                    BarSize::Hours8,
                    end,
                    "6 M".parse().unwrap(),
                    true,
                )
                .is_ok()
        })
        .expect("a contract with trades");
    let key = SeriesKey {
        symbol: cache.underlying.symbol.clone(),
        con_id: c.con_id,
        expiry: c.expiry,
        strike: c.strike,
        right: c.right,
        bar_size: BarSize::Hours8,
        what: "TRADES".into(),
        local_symbol: c.local_symbol.clone(),
        trading_class: c.trading_class.clone(),
        multiplier: c.multiplier,
        exchange: c.exchange.clone(),
        currency: c.currency.clone(),
    };
    let path = bar_file_path(&ws.root.join("data_test"), "test", &key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"PAR1 garbage").unwrap();
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    let recs = latest(&ws.summaries());
    let rec = recs.values().find(|r| r.con_id == c.con_id).unwrap();
    let q = rec.quarantined.as_ref().expect("quarantined path recorded");
    assert_eq!(
        std::fs::read(q).unwrap(),
        b"PAR1 garbage",
        "the corrupt file is kept"
    );
    assert_files_match_market(&ws, &market, BarSize::Hours8, "6 M");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_resumes_without_refetching_finished_tasks() {
    // Slow enough that the child is killed mid-run.
    let Fixture {
        sim,
        market,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .scenario(|sc| {
            sc.hmds.latency_median_ms = 40.0;
            sc.hmds.latency_min_ms = 20.0;
            sc.hmds.latency_max_ms = 200.0;
            sc.hmds.slots = 4;
        })
        .symbols(4)
        .caches(Caches::near(2, 0.10))
        .plan(PlanSpec::new("kill", HOURS))
        .build()
        .await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(["execute", &s(&plan)])
        .current_dir(&ws.root)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once part of the work is recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let done = ws.summaries().len();
        if done >= n / 4 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let finished_first: HashSet<i64> = ws
        .summaries()
        .iter()
        .filter(|r| matches!(r.status.as_str(), "OK" | "EMPTY"))
        .map(|r| r.con_id)
        .collect();
    assert!(
        !finished_first.is_empty() && finished_first.len() < n,
        "killed mid-run: {} of {n}",
        finished_first.len()
    );
    let seen = sim.historical_log().len();
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    for r in &sim.historical_log()[seen..] {
        assert!(
            !finished_first.contains(&r.con_id),
            "finished contract {} requested again",
            r.con_id
        );
    }
    assert_files_match_market(&ws, &market, BarSize::Hours8, "6 M");
    // No temporary files left behind.
    let mut stack = vec![ws.root.join("data_test")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(
                    !name.contains(".tmp-") || !name.starts_with('.'),
                    "temporary file left: {}",
                    p.display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_gateway_loses_nothing() {
    let Fixture {
        sim,
        market,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .preset("hostile")
        .scenario(|sc| {
            // Keep the latencies short for a test; the faults are the point.
            sc.hmds.latency_median_ms = 5.0;
            sc.hmds.latency_min_ms = 1.0;
            sc.hmds.latency_max_ms = 50.0;
            sc.hmds.throttle_free_requests = u32::MAX;
            sc.faults.drop_after_requests = Some(60);
            // The nightly-restart outage, 30 s long, early enough to hit the run.
            sc.faults.outage = Some(opt_backfill::sim::scenario::OutageSettings {
                at_secs: 3.0,
                duration_secs: 30.0,
            });
        })
        .symbols(3)
        .caches(Caches::near(2, 0.10))
        .plan(PlanSpec::new("hostile", HOURS))
        .build()
        .await;
    let out = ws.execute(&plan, &["--request-timeout", "2s"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let c = sim.counters();
    eprintln!(
        "{n} contracts; sim counters: {}",
        serde_json::to_string(&c).unwrap()
    );
    // Tasks that still failed after all retries would exit 1; a rerun finishes them.
    if out.status.code() != Some(0) {
        let again = ws.execute(&plan, &[]).await;
        assert_eq!(
            again.status.code(),
            Some(0),
            "{stderr}\n{}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    let faults: u64 = c
        .disconnects
        .iter()
        .filter(|(k, _)| k.starts_with("fault"))
        .map(|(_, v)| v)
        .sum();
    assert!(faults > 0, "the hostile preset drops connections");
    assert!(c.refused_connections > 0, "the outage refused connections");
    let (n_ok, empty) = assert_files_match_market(&ws, &market, BarSize::Hours8, "6 M");
    assert_eq!(n_ok + empty, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_preset_sees_no_pacing_violation() {
    let Fixture {
        sim,
        market,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .preset("realistic")
        .symbols(2)
        .caches(Caches::near(1, 0.04))
        .plan(PlanSpec::new("real", HOURS))
        .build()
        .await;
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    let c = sim.counters();
    assert_eq!(
        c.pacing_violations,
        0,
        "{}",
        serde_json::to_string(&c).unwrap()
    );
    assert_files_match_market(&ws, &market, BarSize::Hours8, "6 M");
    eprintln!("{n} contracts under the realistic preset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_executor_on_the_same_scope_is_refused() {
    let ws = Workspace::new();
    let cfg_dir = ws.root.join("state/run_logs/test");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cfg_dir.join(".lock-0of1"))
        .unwrap();
    lock.try_lock().unwrap();
    let syms = vec!["AAPL".to_string()];
    std::fs::create_dir_all(ws.caches()).unwrap();
    let plan = ws.plan("lock", &syms, end_date(), 1, HOURS);
    let out = ws.execute(&plan, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(opt_backfill::exit::LOCKED),
        "{stderr}"
    );
    assert!(stderr.contains("another executor"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependent_phase_starts_per_symbol_after_its_dependency() {
    let phases = format!(
        "{HOURS}\n[[phase]]\nname = \"quotes\"\nwhat-to-show = \"MIDPOINT\"\nbars = [{{ size = \"8 hours\", duration = \"1 M\" }}]\ndepends-on = [\"hours\"]\n"
    );
    let Fixture {
        sim: _sim,
        syms,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .scenario(|sc| {
            sc.hmds.latency_median_ms = 5.0;
            sc.hmds.latency_max_ms = 20.0;
        })
        .symbols(3)
        .caches(Caches::sampled(1, 0.3, 12))
        .plan(PlanSpec::new("deps", &phases))
        .build()
        .await;
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    let recs = ws.summaries();
    for sym in &syms {
        let hours_done = recs
            .iter()
            .filter(|r| &r.symbol == sym && r.phase == "hours")
            .map(|r| r.finished_at)
            .max()
            .unwrap();
        let quotes_start = recs
            .iter()
            .filter(|r| &r.symbol == sym && r.phase == "quotes")
            .map(|r| r.started_at)
            .min()
            .unwrap();
        assert!(
            quotes_start >= hours_done,
            "{sym}: quotes started {quotes_start} before hours finished {hours_done}"
        );
        let n_quotes = recs
            .iter()
            .filter(|r| &r.symbol == sym && r.phase == "quotes" && r.status == "OK")
            .count();
        assert!(n_quotes > 0, "{sym}: MIDPOINT always has bars");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_from_plan_out_runs_exactly_its_tasks() {
    let Fixture {
        sim,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(Caches::sampled(1, 0.2, 15))
        .plan(PlanSpec::new("m", HOURS))
        .build()
        .await;
    let manifest = ws.root.join("m.manifest.json");
    let out = ws.cli(&["plan", &s(&plan), "--out", &s(&manifest)]).await;
    ok(&out);
    // Caches changed after planning do not matter: the manifest is what runs.
    std::fs::remove_dir_all(ws.caches()).unwrap();
    let out = ws
        .execute(&manifest, &["--batch-count", "2", "--batch-index", "0"])
        .await;
    assert_eq!(out.status.code(), Some(2), "a manifest is already sharded");
    let out = ws.execute(&manifest, &[]).await;
    ok(&out);
    let recs = latest(&ws.summaries());
    assert_eq!(recs.len(), n);
    assert_eq!(
        sim.historical_log().len(),
        n,
        "one request per manifest task"
    );
}
