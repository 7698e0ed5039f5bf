//! Dropped connections, gateway-restart outages and hanging requests.

use super::support::*;
use ibapi::prelude::*;
use opt_backfill::sim::Scenario;
use std::time::Duration;

#[tokio::test]
async fn a_dropped_connection_is_seen_by_the_client() {
    let h = server("fast").await;
    let cl = tokio::time::timeout(
        Duration::from_secs(10),
        Client::builder()
            .address(h.addr().to_string())
            .client_id(40)
            .max_reconnect_attempts(0)
            .connect(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(cl.is_connected());
    h.drop_connections();
    assert!(
        eventually(5, || !cl.is_connected()).await,
        "client still thinks it is connected"
    );
    let c = near_atm(&h.market(), "SPY");
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        cl.historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
            .duration(1.months())
            .fetch(),
    )
    .await
    .expect("a request on a dead connection must fail, not hang");
    assert!(r.is_err());
    assert_eq!(h.counters().disconnects.get("manual-drop"), Some(&1));
}

#[tokio::test]
async fn after_an_outage_the_client_reconnects_and_is_served() {
    let h = server("fast").await;
    let cl = client(&h, 41).await;
    h.set_outage(Duration::from_millis(1500));
    assert!(eventually(5, || !cl.is_connected()).await);
    tokio::time::timeout(Duration::from_secs(20), cl.wait_connected())
        .await
        .unwrap()
        .unwrap();
    let c = near_atm(&h.market(), "SPY");
    let d = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch()
        .await
        .unwrap();
    assert!(!d.bars.is_empty());
    let k = h.counters();
    assert!(k.refused_connections >= 1, "{k:?}");
    assert_eq!(k.errors_of(1100), 1);
    assert_eq!(k.errors_of(1102), 1);
    assert!(k.connections >= 2);
}

#[tokio::test]
async fn hanging_requests_stay_open_until_cancelled() {
    let mut s = Scenario::preset("fast").unwrap();
    s.faults.hang_fraction = 1.0;
    let h = with(s).await;
    let cl = client(&h, 42).await;
    let c = near_atm(&h.market(), "SPY");
    let contract = by_id(c.con_id);
    let fetch = cl
        .historical_data(&contract, HistoricalBarSize::Hour8)
        .duration(1.months())
        .fetch();
    assert!(tokio::time::timeout(Duration::from_millis(500), fetch)
        .await
        .is_err());
    assert!(eventually(5, || h.counters().historical_cancelled == 1).await);
    let k = h.counters();
    assert_eq!(k.historical_hung, 1);
    assert_eq!(k.in_flight_historical, 0);
}

#[tokio::test]
async fn drop_after_n_requests() {
    let mut s = Scenario::preset("fast").unwrap();
    s.faults.drop_after_requests = Some(3);
    let h = with(s).await;
    let cl = client(&h, 43).await;
    for _ in 0..2 {
        cl.server_time().await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), cl.server_time()).await;
    assert!(
        eventually(5, || h
            .counters()
            .disconnects
            .get("fault-drop-after-requests")
            == Some(&1))
        .await
    );
}

#[tokio::test]
async fn scheduled_outage_and_farm_flapping_fire_on_time() {
    let mut s = Scenario::preset("fast").unwrap();
    s.faults.outage = Some(opt_backfill::sim::scenario::OutageSettings {
        at_secs: 0.5,
        duration_secs: 0.5,
    });
    s.faults.farm_flap = Some(opt_backfill::sim::scenario::FarmFlapSettings {
        every_secs: 0.3,
        down_secs: 0.1,
    });
    let h = with(s).await;
    let cl = client(&h, 44).await;
    assert!(eventually(5, || h.counters().errors_of(1100) == 1).await);
    assert!(eventually(5, || h.counters().errors_of(2105) >= 1).await);
    tokio::time::timeout(Duration::from_secs(20), cl.wait_connected())
        .await
        .unwrap()
        .unwrap();
    assert!(eventually(5, || h.counters().errors_of(1102) == 1).await);
    assert_eq!(h.counters().disconnects.get("outage"), Some(&1));
}
