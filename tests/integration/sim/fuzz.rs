//! Random and truncated frames over raw TCP never take the server down, and a real client keeps
//! being served meanwhile.

use super::support::*;
use ibapi::prelude::*;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

async fn handshaken(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"API\0").await.unwrap();
    s.write_all(&frame(b"v213..226")).await.unwrap();
    s
}

#[tokio::test]
async fn random_and_truncated_frames_do_not_disturb_other_clients() {
    let h = server("fast").await;
    let cl = client(&h, 50).await;
    let c = near_atm(&h.market(), "SPY");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let addr = h.addr();
    for round in 0..40 {
        let mut s = match round % 4 {
            0 => TcpStream::connect(addr).await.unwrap(), // no handshake at all
            _ => handshaken(addr).await,
        };
        let n = rng.random_range(0..20);
        for _ in 0..n {
            let len = rng.random_range(0..64);
            let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) && body.len() >= 4 {
                // A plausible protobuf wire id with a garbage payload.
                let id: i32 = rng.random_range(200..320);
                body[..4].copy_from_slice(&id.to_be_bytes());
            }
            let mut f = frame(&body);
            if rng.random_bool(0.1) {
                f.truncate(rng.random_range(0..f.len()));
            }
            if rng.random_bool(0.05) {
                f = u32::MAX.to_be_bytes().to_vec(); // absurd length
            }
            if s.write_all(&f).await.is_err() {
                break;
            }
        }
        drop(s);
        if round % 10 == 0 {
            let d = cl
                .historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
                .duration(1.months())
                .what_to_show(HistoricalWhatToShow::MidPoint)
                .fetch()
                .await
                .unwrap();
            assert!(!d.bars.is_empty());
        }
    }
    // A startApi with a garbage tail and an unknown id still leaves the server healthy.
    let mut s = handshaken(addr).await;
    s.write_all(&frame(&[0, 0, 1, 15, 8, 99, 0xff]))
        .await
        .unwrap();
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(cl.server_time().await.is_ok());
    let k = h.counters();
    assert!(k.malformed_frames > 0, "{k:?}");
    let _second = client(&h, 51).await;
}

#[tokio::test]
async fn well_formed_requests_with_extreme_fields_are_answered_not_fatal() {
    use opt_backfill::sim::proto;
    use prost::Message;
    let h = server("fast").await;
    let cl = client(&h, 52).await;
    let mut s = handshaken(h.addr()).await;
    s.write_all(&frame(&[0, 0, 1, 15, 8, 53])).await.unwrap(); // startApi{53}
    let c = near_atm(&h.market(), "SPY");
    let cases = [
        ("4294967295 Y", "99991231 23:59:59 UTC", "1 secs", c.con_id),
        ("1 D", "19000101 00:00:00 UTC", "8 hours", c.con_id),
        ("0 D", "", "30 mins", c.con_id),
        ("-5 W", "garbage", "8 hours", c.con_id),
        ("2 D", "20261201 10:00:00 Mars/Olympus", "1 hour", c.con_id),
        ("1 M", "", "8 hours", i32::MAX as i64),
        ("1 M", "", "8 hours", -1),
        ("4294967295 D", "", "1 day", 756733),
        ("4294967295 S", "", "8 hours", c.con_id),
        ("1 Y", "20200102 16:00:00 US/Eastern", "1W", 756733),
    ];
    for (i, (dur, end, bar, con)) in cases.iter().enumerate() {
        let req = proto::HistoricalDataRequest {
            req_id: Some(1000 + i as i32),
            contract: Some(proto::Contract {
                con_id: Some(*con as i32),
                exchange: Some("SMART".into()),
                ..Default::default()
            }),
            end_date_time: Some(end.to_string()),
            bar_size_setting: Some(bar.to_string()),
            duration: Some(dur.to_string()),
            what_to_show: Some("TRADES".into()),
            format_date: Some(2),
            ..Default::default()
        };
        let mut body = 220i32.to_be_bytes().to_vec();
        body.extend_from_slice(&req.encode_to_vec());
        s.write_all(&frame(&body)).await.unwrap();
    }
    assert!(
        eventually(10, || h
            .historical_log()
            .iter()
            .filter(|r| r.outcome != "pending")
            .count()
            == cases.len())
        .await,
        "{:#?}",
        h.historical_log()
    );
    drop(s);
    assert!(cl.server_time().await.is_ok());
    let d = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .fetch()
        .await;
    assert!(d.is_ok(), "{:?}", d.err());
}
