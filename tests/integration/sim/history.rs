//! Historical bars: alignment, errors, cancel, determinism across runs.

use super::support::*;
use chrono::{NaiveDate, NaiveTime, Timelike};
use ibapi::prelude::*;
use opt_backfill::calendar;
use opt_backfill::sim::Scenario;
use std::time::Duration;

#[tokio::test]
async fn eight_hours_six_months_one_bar_per_session_at_0930() {
    let h = server("fast").await;
    let cl = client(&h, 10).await;
    let m = h.market();
    let c = near_atm(&m, "SPY");
    let data = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
        .duration(6.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .trading_hours(TradingHours::Regular)
        .fetch()
        .await
        .unwrap();
    let listing = calendar::session(c.listing).unwrap().unwrap().open;
    // An absent end is the class's close: SPY options trade until 16:15.
    let end = m.now_of(c.con_id);
    assert_eq!(end, m.now() + chrono::Duration::minutes(15));
    let start = end
        .checked_sub_months(chrono::Months::new(6))
        .unwrap()
        .max(listing);
    let sessions =
        calendar::sessions_between(calendar::to_ny(start).date_naive(), m.today()).unwrap();
    let expected: Vec<i64> = sessions
        .iter()
        .filter(|s| s.open >= start)
        .map(|s| s.open.timestamp())
        .collect();
    let got: Vec<i64> = data.bars.iter().map(epoch).collect();
    assert_eq!(got, expected);
    for b in &data.bars {
        let ny = calendar::to_ny(chrono::DateTime::from_timestamp(epoch(b), 0).unwrap());
        assert_eq!((ny.hour(), ny.minute()), (9, 30));
        assert!(b.low <= b.open && b.open <= b.high);
    }
    assert_eq!(data.end.unix_timestamp(), end.timestamp());
}

#[tokio::test]
async fn thirty_minutes_one_month_follows_new_york_sessions() {
    let h = server("fast").await;
    let cl = client(&h, 11).await;
    let m = h.market();
    let c = near_atm(&m, "AAPL");
    let end = calendar::session(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
        .unwrap()
        .unwrap()
        .close;
    let data = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Min30)
        .duration(1.months())
        .ending(at(end))
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch()
        .await
        .unwrap();
    let mut per_day = std::collections::BTreeMap::<NaiveDate, Vec<NaiveTime>>::new();
    for b in &data.bars {
        let ny = calendar::to_ny(chrono::DateTime::from_timestamp(epoch(b), 0).unwrap());
        per_day.entry(ny.date_naive()).or_default().push(ny.time());
    }
    let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    for (day, times) in &per_day {
        let s = calendar::session(*day)
            .unwrap()
            .expect("bars only on sessions");
        assert_eq!(times[0], t(9, 30), "{day}");
        let last = if s.half_day { t(12, 30) } else { t(15, 30) };
        assert_eq!(*times.last().unwrap(), last, "{day}");
        assert_eq!(times.len(), if s.half_day { 7 } else { 13 }, "{day}");
    }
    assert!(
        per_day
            .keys()
            .any(|d| *d == NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()),
        "the half day is in the window"
    );
    assert_eq!(
        *per_day.keys().last().unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    );
}

#[tokio::test]
async fn errors_no_data_expired_bad_bar_size_too_long_and_daily_options() {
    let h = server("fast").await;
    let cl = client(&h, 12).await;
    let m = h.market();
    let c = near_atm(&m, "AAPL");
    let end = at(m.now());

    // No data: the farthest OTM call over one session.
    let spot = m.close("AAPL", m.today()).unwrap();
    let far = m
        .existing_contracts("AAPL")
        .into_iter()
        .filter(|x| x.right == opt_backfill::cache::Right::C && x.listing < m.today())
        .max_by(|a, b| {
            (a.strike / spot)
                .total_cmp(&(b.strike / spot))
                .then(b.expiry.cmp(&a.expiry))
        })
        .unwrap();
    let e = cl
        .historical_data(&by_id(far.con_id), HistoricalBarSize::Min30)
        .duration(1.days())
        .ending(end)
        .fetch()
        .await
        .unwrap_err();
    let ibapi::Error::Notice(n) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(n.code, 162);
    assert_eq!(
        n.message,
        format!("Historical Market Data Service error message:HMDS query returned no data: {}@SMART Trades", far.local_symbol)
    );

    // Expired: a contract listed in an earlier market that expired before today.
    let mut earlier = Scenario::preset("fast").unwrap();
    earlier.today = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let old = opt_backfill::sim::Market::from_scenario(&earlier)
        .existing_contracts("AAPL")
        .into_iter()
        .find(|x| x.expiry < m.today())
        .unwrap();
    let e = cl
        .historical_data(&by_id(old.con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(code(&e), 200);

    // Illegal bar size (ibapi can spell `4 mins`; IB's list has no such size).
    let e = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Min4)
        .duration(1.days())
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(code(&e), 321);

    // Too long for the bar size.
    let e = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Min)
        .duration(1.weeks())
        .fetch()
        .await
        .unwrap_err();
    let ibapi::Error::Notice(n) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (n.code, n.message.as_str()),
        (
            162,
            "Historical Market Data Service error message:Time length exceed max."
        )
    );

    // Daily bars: EODChart for an option, the reference close for the underlying.
    let e = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Day)
        .duration(5.days())
        .fetch()
        .await
        .unwrap_err();
    assert!(code(&e) == 162 && e.to_string().contains("EODChart"), "{e}");
    let daily = cl
        .historical_data(&stock("AAPL"), HistoricalBarSize::Day)
        .duration(5.days())
        .fetch()
        .await
        .unwrap();
    assert_eq!(daily.bars.len(), 5);
    assert!(daily.bars.iter().all(|b| b.date.is_date()));
    assert_eq!(
        daily.bars.last().unwrap().close,
        m.close("AAPL", m.today()).unwrap()
    );
    let log = h.historical_log();
    assert!(log.iter().any(|r| r.outcome == "empty"));
    assert!(log.iter().any(|r| r.outcome == "error:321"));
    assert_eq!(h.counters().historical_empty, 1);
}

#[tokio::test]
async fn a_cancelled_request_is_answered_162_and_counted() {
    let mut s = Scenario::preset("fast").unwrap();
    s.hmds.latency_min_ms = 2000.0;
    s.hmds.latency_median_ms = 2000.0;
    s.hmds.latency_max_ms = 2000.0;
    let h = with(s).await;
    let cl = client(&h, 13).await;
    let c = near_atm(&h.market(), "SPY");
    let contract = by_id(c.con_id);
    let fetch = cl
        .historical_data(&contract, HistoricalBarSize::Hour8)
        .duration(1.months())
        .fetch();
    assert!(tokio::time::timeout(Duration::from_millis(300), fetch)
        .await
        .is_err());
    assert!(eventually(5, || h.counters().historical_cancelled == 1).await);
    assert_eq!(h.historical_log()[0].outcome, "cancelled");
    assert_eq!(h.counters().errors_of(162), 1);
    assert!(eventually(5, || h.counters().in_flight_historical == 0).await);
}

#[tokio::test]
async fn the_same_request_gives_the_same_bars_on_two_runs() {
    let mut bars = Vec::new();
    for id in [20, 21] {
        let h = server("fast").await;
        let cl = client(&h, id).await;
        let c = near_atm(&h.market(), "TSLA");
        let d = cl
            .historical_data(&by_id(c.con_id), HistoricalBarSize::Min30)
            .duration(5.days())
            .what_to_show(HistoricalWhatToShow::Trades)
            .fetch()
            .await
            .unwrap();
        bars.push(d.bars);
        h.stop().await;
    }
    assert!(!bars[0].is_empty());
    assert_eq!(bars[0], bars[1]);
}
