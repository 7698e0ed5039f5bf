//! An index underlying end to end: `discover` qualifies SPX as `IND` on CBOE from a plan that
//! declares it in `universe.indices`, lists its SPX and SPXW classes, and `execute` fetches
//! their bars until 16:15 (13:15 on the half day 2026-11-27).

use super::{bars_of, cache, d, hm, s};
use crate::support::*;
use opt_backfill::bars::BarSize;
use opt_backfill::cache::UnderlyingSecType;
use opt_backfill::calendar::{self, to_ny};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spx_is_discovered_as_an_index_and_its_bars_run_to_16_15() {
    let phase = "[[phase]]\nname = \"p\"\nwhat-to-show = \"MIDPOINT\"\nbars = [{ size = \"30 mins\", duration = \"1 M\" }, { size = \"8 hours\", duration = \"1 M\" }]\n";
    let Fixture {
        sim,
        market,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .named(&["SPX"])
        .plan(PlanSpec::new("index", phase).indices(&["SPX"]))
        .build()
        .await;
    discover(&ws, &plan).await;
    let c = cache(&ws, "SPX");
    assert_eq!(c.underlying.sec_type, UnderlyingSecType::Ind);
    assert_eq!(c.underlying.con_id, 416904);
    assert_eq!(c.underlying.primary_exchange.as_deref(), Some("CBOE"));
    assert!(c.contracts.len() >= 16, "{}", c.contracts.len());
    let classes: std::collections::BTreeSet<&str> = c
        .contracts
        .iter()
        .map(|x| x.trading_class.as_str())
        .collect();
    assert_eq!(classes.into_iter().collect::<Vec<_>>(), ["SPX", "SPXW"]);
    for h in &c.class_hours {
        assert_eq!(h.rth_close_offset_minutes, 15, "{h:?}");
    }
    assert_eq!(c.class_hours.len(), 2);
    // A plan that does not declare SPX an index is told its cache disagrees.
    let plain = ws.root.join("plain.toml");
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("indices = [\"SPX\"]\n", "");
    std::fs::write(&plain, text).unwrap();
    let out = ws.cli(&["plan", &s(&plain), "--dry-run"]).await;
    let all = format!("{}{}", ok(&out), String::from_utf8_lossy(&out.stdout));
    assert!(
        all.contains("SPX was discovered as IND but the plan's universe.indices makes it STK"),
        "{all}"
    );

    ok(&ws.execute(&plan, &[]).await);
    let end = calendar::session(end_date()).unwrap().unwrap();
    let sessions = calendar::sessions_between(d(10, 28), end.date).unwrap();
    let thirty = bars_of(&ws, &market, "SPX", BarSize::Mins30);
    let eight = bars_of(&ws, &market, "SPX", BarSize::Hours8);
    let mut whole = 0;
    for (con_id, (listing, bars)) in &thirty {
        let mut checked = 0;
        for sess in sessions.iter().filter(|x| x.date >= *listing) {
            let last = if sess.half_day { hm(13, 0) } else { hm(16, 0) };
            let day: Vec<_> = bars
                .iter()
                .filter(|(ts, _)| to_ny(*ts).date_naive() == sess.date)
                .collect();
            let (ts, close) = day.last().unwrap();
            assert_eq!(to_ny(*ts).time(), last, "{con_id} {}", sess.date);
            // The session's one 8 hours bar, labelled 09:30, covers 09:30-16:15 (13:15): it
            // closes where the 16:00-16:15 (13:00-13:15) 30-minute bar closes.
            let e: Vec<_> = eight[con_id]
                .1
                .iter()
                .filter(|(t, _)| to_ny(*t).date_naive() == sess.date)
                .collect();
            assert_eq!(e.len(), 1, "{con_id} {}", sess.date);
            assert_eq!(to_ny(e[0].0).time(), hm(9, 30));
            assert_eq!(e[0].1, *close, "{con_id} {}", sess.date);
            checked += 1;
        }
        whole += usize::from(checked == sessions.len());
    }
    assert!(whole > 0, "no SPX contract listed before the window");
    // Discovery asked for the index's daily close (as `IND SPX CBOE`, no conId); the option
    // requests ended at the class close (16:15 / 13:15 New York).
    let log = sim.historical_log();
    assert!(
        log.iter()
            .any(|r| r.con_id == 0 && r.bar_size == "1 day" && r.outcome == "ok"),
        "{log:?}"
    );
    for r in log.iter().filter(|r| r.con_id != 0) {
        assert!(
            r.end.contains("21:15:00") || r.end.contains("18:15:00"),
            "{r:?}"
        );
    }
}

/// `discover --plan` for the end date: expiries up to 30 days out, strikes within 2%.
pub(super) async fn discover(ws: &Workspace, plan: &Path) {
    let out = ws
        .cli(&[
            "discover",
            "--plan",
            &s(plan),
            "--date",
            &end_date().to_string(),
            "--max-expiry-days",
            "30",
            "--strike-band",
            "2",
            "--messages-per-second",
            "1000",
        ])
        .await;
    ok(&out);
}
