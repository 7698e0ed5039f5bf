//! `use-rth = false` end to end: the executor ends each class's windows where its
//! `tradingHours` end, and the simulator serves the extended sessions IB serves for it: SPX
//! options get their overnight (from 20:15 the evening before) and curb (to 17:00) bars, while
//! SPY options (no session outside 09:30-16:15) and AAPL options (09:30-16:00) get exactly
//! their regular-hours bars.

use super::index::discover;
use super::{bars_of, cache, d, hm};
use crate::support::*;
use opt_backfill::bars::{BarSize, Duration};
use opt_backfill::calendar::{self, to_ny};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_hours_bars_follow_each_class_trading_hours() {
    let phase = "[[phase]]\nname = \"p\"\nwhat-to-show = \"MIDPOINT\"\nuse-rth = false\nbars = [{ size = \"1 hour\", duration = \"2 D\" }]\n";
    let Fixture {
        sim,
        market,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .named(&["SPX", "SPY", "AAPL"])
        .plan(PlanSpec::new("index", phase).indices(&["SPX"]))
        .build()
        .await;
    discover(&ws, &plan).await;
    ok(&ws.execute(&plan, &[]).await);

    // Each class's request ended at its all-hours close on the half day 2026-11-27: SPX 14:00
    // (13:15 + the 45-minute curb), SPY 13:15, AAPL 13:00 New York.
    let end = calendar::session(end_date()).unwrap().unwrap();
    let two_days: Duration = "2 D".parse().unwrap();
    let log = sim.historical_log();
    for (sym, close_min) in [("SPX", 60), ("SPY", 15), ("AAPL", 0)] {
        let class_end = end.close + chrono::Duration::minutes(close_min);
        let ids: Vec<i64> = cache(&ws, sym).contracts.iter().map(|c| c.con_id).collect();
        let want = class_end.format("%Y%m%d %H:%M:%S UTC").to_string();
        let mine: Vec<_> = log.iter().filter(|r| ids.contains(&r.con_id)).collect();
        assert!(!mine.is_empty(), "{sym}");
        for r in mine {
            assert!(!r.use_rth, "{r:?}");
            assert_eq!(r.end, want, "{sym}: {r:?}");
        }
        for (con_id, (_, bars)) in bars_of(&ws, &market, sym, BarSize::Hour1) {
            // What the gateway serves for the same window with and without regular hours.
            let served = |rth: bool| -> Vec<_> {
                market
                    .bars(con_id, "MIDPOINT", BarSize::Hour1, class_end, two_days, rth)
                    .unwrap()
                    .iter()
                    .map(|b| (b.ts, b.close))
                    .collect()
            };
            if sym == "SPX" {
                assert_eq!(bars, served(false), "{sym} {con_id}");
                let outside: Vec<_> = bars
                    .iter()
                    .map(|(ts, _)| to_ny(*ts))
                    .filter(|t| t.time() < hm(9, 30) || t.time() >= hm(16, 15))
                    .collect();
                // The overnight session from 20:15 the evening before 11-25.
                assert!(
                    outside
                        .iter()
                        .any(|t| t.date_naive() == d(11, 24) && t.time() == hm(20, 15)),
                    "{con_id}: {outside:?}"
                );
                assert!(outside.len() >= 20, "{con_id}: {outside:?}");
            } else {
                // No session outside regular hours: the all-hours bars are the RTH bars.
                assert_eq!(bars, served(true), "{sym} {con_id}");
            }
        }
    }
    // `verify` takes the overnight and curb bars of an all-hours file as on its grid.
    let (code, text) = crate::lake::verify(&ws, &plan, &[]).await;
    assert!(!text.contains("outside the regular sessions"), "{text}");
    assert_eq!(code, Some(0), "{text}");
}
