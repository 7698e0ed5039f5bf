//! The service model seen from clients: queueing on slots, farm outages, the message-rate
//! limit, and the text-protocol handshake.

use super::support::*;
use ibapi::prelude::*;
use opt_backfill::sim::Scenario;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn fixed_latency(ms: f64, slots: u32) -> Scenario {
    let mut s = Scenario::preset("fast").unwrap();
    s.hmds.latency_min_ms = ms;
    s.hmds.latency_median_ms = ms;
    s.hmds.latency_max_ms = ms;
    s.hmds.slots = slots;
    s
}

#[tokio::test]
async fn requests_beyond_the_slots_wait_their_turn() {
    let h = with(fixed_latency(200.0, 2)).await;
    let cl = Arc::new(client(&h, 60).await);
    let contracts: Vec<_> = h
        .market()
        .existing_contracts("IWM")
        .into_iter()
        .take(6)
        .collect();
    let t0 = Instant::now();
    let tasks: Vec<_> = contracts
        .into_iter()
        .map(|c| {
            let cl = cl.clone();
            tokio::spawn(async move {
                cl.historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
                    .duration(1.months())
                    .what_to_show(HistoricalWhatToShow::MidPoint)
                    .fetch()
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let took = t0.elapsed();
    // 6 requests, 2 slots, 200 ms each: three rounds.
    assert!(took >= Duration::from_millis(590), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    assert_eq!(h.counters().peak_in_flight_historical, 6);
}

#[tokio::test]
async fn a_broken_hmds_farm_holds_answers_until_it_is_back() {
    let h = server("fast").await;
    let cl = client(&h, 61).await;
    let c = near_atm(&h.market(), "SPY");
    h.set_farm_down(true);
    let contract = by_id(c.con_id);
    let fetch = cl
        .historical_data(&contract, HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch();
    tokio::pin!(fetch);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut fetch)
            .await
            .is_err(),
        "answered while the farm was down"
    );
    h.set_farm_down(false);
    let d = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .unwrap()
        .unwrap();
    assert!(!d.bars.is_empty());
    let k = h.counters();
    assert_eq!(k.errors_of(2105), 1);
    assert!(k.errors_of(2106) >= 2, "startup notice plus the restore");
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn over_the_message_rate_the_connection_gets_error_100_then_is_dropped() {
    let mut s = Scenario::preset("fast").unwrap();
    s.pacing.msg_rate_limit = 20;
    s.pacing.msg_rate_drop_after = 2;
    let h = with(s).await;
    let mut sock = TcpStream::connect(h.addr()).await.unwrap();
    sock.write_all(b"API\0").await.unwrap();
    sock.write_all(&frame(b"v213..226")).await.unwrap();
    // startApi{client_id: 62}
    sock.write_all(&frame(&[0, 0, 1, 15, 8, 62])).await.unwrap();
    let current_time = frame(&[0, 0, 0, 249]);
    for burst in 0..2 {
        let mut b = Vec::new();
        for _ in 0..30 {
            b.extend_from_slice(&current_time);
        }
        let _ = sock.write_all(&b).await;
        if burst == 0 {
            assert!(eventually(5, || h.counters().errors_of(100) == 1).await);
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    assert!(
        eventually(5, || h.counters().disconnects.get("message-rate")
            == Some(&1))
        .await,
        "{:?}",
        h.counters()
    );
    assert_eq!(h.counters().errors_of(100), 2);
}

#[tokio::test]
async fn a_text_protocol_client_is_served_and_a_too_old_one_closed() {
    let h = server("fast").await;
    // ib_insync's range: the text codec at version 176 (the same handshake answer shape).
    let mut sock = TcpStream::connect(h.addr()).await.unwrap();
    sock.write_all(b"API\0").await.unwrap();
    sock.write_all(&frame(b"v157..176 +PACEAPI")).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), sock.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    let mut ack = vec![0u8; u32::from_be_bytes(len) as usize];
    sock.read_exact(&mut ack).await.unwrap();
    assert!(
        ack.starts_with(b"176\0"),
        "{:?}",
        String::from_utf8_lossy(&ack)
    );
    // A range below every layout the text codec implements is refused without an answer.
    let mut old = TcpStream::connect(h.addr()).await.unwrap();
    old.write_all(b"API\0").await.unwrap();
    old.write_all(&frame(b"v100..150")).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), old.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        eventually(5, || h.counters().disconnects.get("no-common-version")
            == Some(&1))
        .await
    );
    let _ok = client(&h, 63).await;
}

#[tokio::test]
async fn the_realistic_preset_answers_in_about_half_a_second() {
    let h = server("realistic").await;
    let cl = client(&h, 64).await;
    let c = near_atm(&h.market(), "SPY");
    let t0 = Instant::now();
    cl.historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch()
        .await
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn ibapis_default_rate_limiter_stays_under_the_message_rate() {
    // IB's limit is 50 a second, counted where messages arrive. ibapi's default limiter sends
    // at most 50 a second; on a loaded machine (a parallel build) two of its seconds can
    // arrive bunched, which IB (and the simulator) would count as 51. The limit here leaves 10%
    // for that jitter: the test is about the client's pacing (the elapsed time below proves
    // it is paced near 50 a second), not about the scheduler of the machine running it.
    let mut s = Scenario::preset("fast").unwrap();
    s.pacing.msg_rate_limit = 55;
    let h = with(s).await;
    let cl = Arc::new(
        tokio::time::timeout(
            Duration::from_secs(10),
            Client::builder()
                .address(h.addr().to_string())
                .client_id(65)
                .rate_limiter(ibapi::RateLimiter::default())
                .connect(),
        )
        .await
        .unwrap()
        .unwrap(),
    );
    // Sequential round trips take about a millisecond here: unpaced they would exceed 50/s.
    let t0 = Instant::now();
    for _ in 0..120 {
        cl.server_time().await.unwrap();
    }
    assert!(
        t0.elapsed() > Duration::from_millis(1400),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(h.counters().errors_of(100), 0, "{:?}", h.counters());
}
