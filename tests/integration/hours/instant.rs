//! An explicit end instant inside a session: `end = "2026-11-30T12:00:00-05:00"` planned and
//! run at 11:00 New York (the executor's and the simulator's clocks pinned there). Every
//! class's windows end at 12:00, the session in progress is fetched up to the simulator's now
//! and recorded as provisional, and the session before is whole.

use super::{bars_of, cache, d, hm};
use crate::support::*;
use chrono::{DateTime, Utc};
use opt_backfill::bars::BarSize;
use opt_backfill::calendar::to_ny;
use opt_backfill::sim::SimClock;
use opt_backfill::store::coverage::window_units;
use opt_backfill::store::parquet::read_file;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_instant_inside_a_session_ends_every_window_there_and_is_provisional() {
    let eleven: DateTime<Utc> = "2026-11-30T16:00:00Z".parse().unwrap();
    let phase = "[[phase]]\nname = \"p\"\nwhat-to-show = \"MIDPOINT\"\nbars = [{ size = \"30 mins\", duration = \"2 D\" }]\n";
    let Fixture {
        sim,
        market,
        ws,
        plan,
        contracts,
        ..
    } = Fixture::builder()
        .clock(SimClock::At(eleven))
        .named(&["SPY", "AAPL"])
        .caches(Caches::sampled(8, 0.02, 6))
        .plan(PlanSpec::new("instant", phase).end_at("2026-11-30T12:00:00-05:00"))
        .build()
        .await;
    assert!(contracts >= 2);
    let out = ws
        .execute(&plan, &["--now", "2026-11-30T11:00:00-05:00"])
        .await;
    let stderr = ok(&out);
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert!(
        all.contains("end 2026-11-30 12:00 EST is inside the session of 2026-11-30"),
        "{all}"
    );
    // Both classes' requests end at 12:00 New York (17:00 UTC), not at their closes.
    let log = sim.historical_log();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.end, "20261130 17:00:00 UTC", "{r:?}");
    }
    let noon: DateTime<Utc> = "2026-11-30T17:00:00Z".parse().unwrap();
    let units = window_units(noon, "2 D".parse().unwrap());
    for (sym, half_day_last) in [("SPY", hm(13, 0)), ("AAPL", hm(12, 30))] {
        let c = cache(&ws, sym);
        for (con_id, (listing, bars)) in bars_of(&ws, &market, sym, BarSize::Mins30) {
            // Today up to the simulator's now (11:00): the last bar is 10:30.
            let today: Vec<_> = bars
                .iter()
                .filter(|(ts, _)| to_ny(*ts).date_naive() == d(11, 30))
                .collect();
            assert_eq!(
                to_ny(today.last().unwrap().0).time(),
                hm(10, 30),
                "{con_id}"
            );
            if listing <= d(11, 27) {
                let friday = bars
                    .iter()
                    .rfind(|(ts, _)| to_ny(*ts).date_naive() == d(11, 27))
                    .unwrap();
                assert_eq!(to_ny(friday.0).time(), half_day_last, "{sym} {con_id}");
            }
            // Today's part of the window is provisional (fetched at 11:00, before 12:00); the
            // half day before is final.
            let contract = c.contracts.iter().find(|x| x.con_id == con_id).unwrap();
            let key = opt_backfill::store::parquet::SeriesKey {
                symbol: sym.to_string(),
                con_id,
                expiry: contract.expiry,
                strike: contract.strike,
                right: contract.right,
                bar_size: BarSize::Mins30,
                what: "MIDPOINT".into(),
                local_symbol: contract.local_symbol.clone(),
                trading_class: contract.trading_class.clone(),
                multiplier: contract.multiplier,
                exchange: contract.exchange.clone(),
                currency: contract.currency.clone(),
            };
            let path = opt_backfill::store::parquet::bar_file_path(
                &ws.root.join("data_test"),
                "test",
                &key,
            );
            let cov = read_file(&path).unwrap().unwrap().effective_coverage();
            for u in &units {
                let cover = cov.cover_of(u).unwrap_or_else(|| panic!("{con_id}: {u:?}"));
                assert_eq!(
                    cover.provisional,
                    u.session().date == d(11, 30),
                    "{sym} {con_id} {u:?}"
                );
            }
        }
    }
}
