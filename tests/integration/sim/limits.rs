//! The 50-open-requests limit and the small-bar pacing rules.

use super::support::*;
use ibapi::prelude::*;
use opt_backfill::sim::Scenario;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn fifty_open_requests_are_served_and_the_fifty_first_is_refused() {
    let mut s = Scenario::preset("fast").unwrap();
    s.hmds.latency_min_ms = 1500.0;
    s.hmds.latency_median_ms = 1500.0;
    s.hmds.latency_max_ms = 1500.0;
    let h = with(s).await;
    let cl = Arc::new(client(&h, 30).await);
    let m = h.market();
    let contracts: Vec<_> = m.existing_contracts("QQQ").into_iter().take(51).collect();
    let mut tasks = Vec::new();
    for c in contracts.iter().take(50).cloned() {
        let cl = cl.clone();
        tasks.push(tokio::spawn(async move {
            cl.historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
                .duration(1.months())
                .what_to_show(HistoricalWhatToShow::MidPoint)
                .fetch()
                .await
        }));
    }
    assert!(eventually(5, || h.counters().in_flight_historical == 50).await);
    let e = cl
        .historical_data(&by_id(contracts[50].con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch()
        .await
        .unwrap_err();
    let ibapi::Error::Notice(n) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(n.code, 322);
    assert_eq!(
        n.message,
        "Error processing request:-'wd' : cause - Only 50 simultaneous API historical data requests allowed."
    );
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let c = h.counters();
    assert_eq!(c.peak_in_flight_historical, 50);
    assert_eq!(c.historical_ok, 50);
    assert_eq!(c.errors_of(322), 1);
}

#[tokio::test]
async fn small_bar_pacing_violations_are_answered_counted_and_end_the_connection() {
    let h = server("fast").await;
    let cl = client(&h, 31).await;
    let m = h.market();
    let c = near_atm(&m, "SPY");
    let end = m.now() - chrono::Duration::minutes(60);
    let req = |end: chrono::DateTime<chrono::Utc>| {
        let cl = &cl;
        async move {
            cl.historical_data(&by_id(c.con_id), HistoricalBarSize::Sec30)
                .duration(1800.seconds())
                .ending(at(end))
                .what_to_show(HistoricalWhatToShow::MidPoint)
                .fetch()
                .await
        }
    };
    req(end).await.unwrap();
    // Identical request within 15 s.
    let e = req(end).await.unwrap_err();
    assert!(e.to_string().contains("pacing violation"), "{e}");
    assert_eq!(code(&e), 162);
    // Five more for the same contract within 2 s: the 6th overall in the window violates.
    let mut violations = 1;
    for i in 1..=5 {
        if req(end - chrono::Duration::minutes(i)).await.is_err() {
            violations += 1;
        }
    }
    assert_eq!(violations, 2, "requests 2..5 pass, the 6th violates");
    assert_eq!(h.counters().pacing_violations, 2);
    // Three more violations within a minute: the connection is dropped (5 in 60 s).
    for _ in 0..3 {
        let _ = tokio::time::timeout(Duration::from_secs(2), req(end)).await;
    }
    assert!(
        eventually(5, || h.counters().disconnects.get("pacing-violations")
            == Some(&1))
        .await,
        "{:?}",
        h.counters()
    );
    assert_eq!(h.counters().pacing_violations, 5);
}
