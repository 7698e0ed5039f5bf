//! Trading hours per option class end to end: the real binary and `ibapi` against the simulated
//! gateway, whose SPY options trade until 16:15 (13:15 on the half day 2026-11-27) and whose
//! AAPL options stop at 16:00; Parquet read back.

mod extended;
mod index;
mod instant;

use crate::support::*;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use opt_backfill::bars::BarSize;
use opt_backfill::cache::ContractsCache;
use opt_backfill::calendar::{self, to_ny};
use opt_backfill::sim::Market;
use opt_backfill::store::parquet::{bar_file_path, read_bars, SeriesKey};
use std::collections::BTreeMap;
use std::path::Path;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

fn cache(ws: &Workspace, sym: &str) -> ContractsCache {
    let p = ws.caches().join(format!("{sym}_{}.json", end_date()));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A contract's listing date and its stored bars as (start, close).
type Series = (NaiveDate, Vec<(DateTime<Utc>, f64)>);

/// MIDPOINT bars of every contract of `sym`'s cache, by conId, with each contract's listing
/// date.
fn bars_of(ws: &Workspace, market: &Market, sym: &str, bar: BarSize) -> BTreeMap<i64, Series> {
    let mut out = BTreeMap::new();
    for c in cache(ws, sym).contracts {
        let key = SeriesKey {
            symbol: sym.to_string(),
            con_id: c.con_id,
            expiry: c.expiry,
            strike: c.strike,
            right: c.right,
            bar_size: bar,
            what: "MIDPOINT".into(),
            local_symbol: c.local_symbol.clone(),
            trading_class: c.trading_class.clone(),
            multiplier: c.multiplier,
            exchange: c.exchange.clone(),
            currency: c.currency.clone(),
        };
        let path = bar_file_path(&ws.root.join("data_test"), "test", &key);
        let rows = read_bars(&path)
            .unwrap()
            .unwrap_or_else(|| panic!("no {bar} file for {}", c.local_symbol));
        let listing = market.contract_by_id(c.con_id).unwrap().listing;
        out.insert(
            c.con_id,
            (
                listing,
                rows.iter().map(|r| (r.bar.ts, r.bar.close)).collect(),
            ),
        );
    }
    out
}

/// Caches for `symbols` (a few near-the-money contracts of the monthly-or-later expiries, so
/// they are listed well before the window) and a plan of one MIDPOINT phase.
async fn run(symbols: &[&str], bars: &str) -> (SimHandle, Workspace) {
    let phase = format!("[[phase]]\nname = \"p\"\nwhat-to-show = \"MIDPOINT\"\nbars = [{bars}]\n");
    let Fixture {
        sim,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .named(symbols)
        .caches(Caches::sampled(8, 0.02, 6))
        .plan(PlanSpec::new("hours", &phase))
        .build()
        .await;
    assert!(n >= symbols.len(), "{n} contracts");
    let out = ws.execute(&plan, &[]).await;
    ok(&out);
    (sim, ws)
}

use opt_backfill::sim::SimHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spy_30_min_bars_include_16_00_every_session_and_13_00_on_the_half_day() {
    let (sim, ws) = run(&["SPY"], r#"{ size = "30 mins", duration = "1 M" }"#).await;
    let market = sim.market();
    let end = calendar::session(end_date()).unwrap().unwrap();
    // One month back from the 13:15 close of 2026-11-27.
    let first = d(10, 28);
    let sessions = calendar::sessions_between(first, end.date).unwrap();
    let files = bars_of(&ws, &market, "SPY", BarSize::Mins30);
    let mut whole_month = 0;
    for (con_id, (listing, bars)) in &files {
        let mut checked = 0;
        for sess in sessions.iter().filter(|x| x.date >= *listing) {
            let last = if sess.half_day { hm(13, 0) } else { hm(16, 0) };
            let want = calendar::ny_to_utc(sess.date, last);
            assert!(
                bars.iter().any(|(ts, _)| *ts == want),
                "{con_id}: no {} bar on {}",
                last,
                sess.date
            );
            let day: Vec<_> = bars
                .iter()
                .filter(|(ts, _)| to_ny(*ts).date_naive() == sess.date)
                .collect();
            assert_eq!(
                to_ny(day.last().unwrap().0).time(),
                last,
                "{con_id} {}",
                sess.date
            );
            checked += 1;
        }
        whole_month += usize::from(checked == sessions.len());
    }
    assert!(whole_month > 0, "no contract listed before the window");
    // The half day's 13:00 bar is there for every contract.
    let half = calendar::ny_to_utc(d(11, 27), hm(13, 0));
    assert!(files
        .values()
        .all(|(_, b)| b.iter().any(|(ts, _)| *ts == half)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_minute_windows_include_16_00_to_16_14_for_spy_and_end_at_15_59_for_aapl() {
    let (sim, ws) = run(&["SPY", "AAPL"], r#"{ size = "1 min", duration = "2 D" }"#).await;
    let market = sim.market();
    // 2 D back from 2026-11-27: 11-25 (full day) and 11-27 (half day).
    let times = |bars: &[(DateTime<Utc>, f64)], date: NaiveDate| -> Vec<NaiveTime> {
        bars.iter()
            .filter(|(ts, _)| to_ny(*ts).date_naive() == date)
            .map(|(ts, _)| to_ny(*ts).time())
            .collect()
    };
    let mut checked = 0;
    for (con_id, (listing, bars)) in bars_of(&ws, &market, "SPY", BarSize::Min1) {
        if listing > d(11, 25) {
            continue;
        }
        checked += 1;
        let full = times(&bars, d(11, 25));
        for m in 0..15 {
            assert!(full.contains(&hm(16, m)), "{con_id}: no 16:{m:02} bar");
        }
        assert_eq!(full.last(), Some(&hm(16, 14)), "{con_id}");
        assert_eq!(full.len(), 405, "{con_id}: 09:30-16:15");
        let half = times(&bars, d(11, 27));
        assert_eq!(half.last(), Some(&hm(13, 14)), "{con_id}");
    }
    assert!(checked > 0, "no SPY contract listed before 11-25");
    let mut checked = 0;
    for (con_id, (listing, bars)) in bars_of(&ws, &market, "AAPL", BarSize::Min1) {
        if listing > d(11, 25) {
            continue;
        }
        checked += 1;
        let full = times(&bars, d(11, 25));
        assert_eq!(full.last(), Some(&hm(15, 59)), "{con_id}");
        assert_eq!(full.len(), 390, "{con_id}: 09:30-16:00");
        assert_eq!(
            times(&bars, d(11, 27)).last(),
            Some(&hm(12, 59)),
            "{con_id}"
        );
    }
    assert!(checked > 0, "no AAPL contract listed before 11-25");
    // The requests ended at each class's close: 16:15 / 13:15 (21:15 / 18:15 UTC) for SPY,
    // 16:00 / 13:00 for AAPL.
    let spy: Vec<i64> = cache(&ws, "SPY")
        .contracts
        .iter()
        .map(|c| c.con_id)
        .collect();
    let log = sim.historical_log();
    assert!(!log.is_empty());
    for r in &log {
        let late = r.end.contains("21:15:00") || r.end.contains("18:15:00");
        let equity = r.end.contains("21:00:00") || r.end.contains("18:00:00");
        if spy.contains(&r.con_id) {
            assert!(late, "{r:?}");
        } else {
            assert!(equity, "{r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spy_8_hour_bar_covers_09_30_to_16_15() {
    let (sim, ws) = run(
        &["SPY"],
        r#"{ size = "8 hours", duration = "6 M" }, { size = "1 min", duration = "2 D" }"#,
    )
    .await;
    let market = sim.market();
    let hours = bars_of(&ws, &market, "SPY", BarSize::Hours8);
    let minutes = bars_of(&ws, &market, "SPY", BarSize::Min1);
    for (con_id, (_, eight)) in &hours {
        for date in [d(11, 25), d(11, 27)] {
            let day: Vec<_> = eight
                .iter()
                .filter(|(ts, _)| to_ny(*ts).date_naive() == date)
                .collect();
            assert_eq!(day.len(), 1, "{con_id} {date}: one 8 hours bar per session");
            assert_eq!(to_ny(day[0].0).time(), hm(9, 30));
            // Its close is the price at the class close: the close of the last minute bar
            // (16:14, 13:14 on the half day), not of 15:59.
            let last_minute = minutes[con_id]
                .1
                .iter()
                .rfind(|(ts, _)| to_ny(*ts).date_naive() == date)
                .unwrap();
            let want = if date == d(11, 27) {
                hm(13, 14)
            } else {
                hm(16, 14)
            };
            assert_eq!(to_ny(last_minute.0).time(), want);
            assert_eq!(day[0].1, last_minute.1, "{con_id} {date}");
        }
    }
}

#[test]
fn a_version_1_cache_plans_with_built_in_hours_and_warns_once_per_file() {
    // The fixtures are version 1 caches (no hours): SPY is on the built-in 16:15 list.
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("m.json");
    let out = run_cli(
        &[
            "plan",
            "examples/fixtures/small.toml",
            "--out",
            out_path.to_str().unwrap(),
        ],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    let stderr = ok(&out);
    for sym in ["AAPL", "MSFT", "SPY"] {
        let name = format!("{sym}_2026-11-27.json: contracts cache format version 1");
        assert_eq!(stderr.matches(&name).count(), 1, "{sym}: {stderr}");
    }
    assert_eq!(stderr.matches("warning:").count(), 3, "{stderr}");
    assert!(stderr.contains("SPY +15 min"), "{stderr}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    for t in m["tasks"].as_array().unwrap() {
        let end = t["end"].as_str().unwrap();
        let late = t["trading_class"] == "SPY";
        let want = if late { "18:15:00Z" } else { "18:00:00Z" };
        if t["window"] == 0 && t["duration"] == "6 M" {
            assert!(end.ends_with(want), "{t}");
        }
    }
}
