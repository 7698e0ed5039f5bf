//! Shared helpers: start a server on a free port, connect a client with a timeout, pick
//! contracts from the market the server serves.

use ibapi::prelude::*;
use opt_backfill::cache::Right;
use opt_backfill::sim::{start, Market, Scenario, SimContract, SimHandle};
use std::time::Duration;

/// Start a preset server on 127.0.0.1:0.
pub async fn server(preset: &str) -> SimHandle {
    with(Scenario::preset(preset).unwrap()).await
}

/// Start a server for a scenario on 127.0.0.1:0.
pub async fn with(s: Scenario) -> SimHandle {
    start(s, "127.0.0.1:0").await.expect("bind")
}

/// Connect the real client (10 s bound: `connect` has no timeout of its own).
pub async fn client(h: &SimHandle, id: i32) -> Client {
    tokio::time::timeout(
        Duration::from_secs(10),
        Client::connect(&h.addr().to_string(), id),
    )
    .await
    .expect("connect timed out")
    .expect("connect failed")
}

/// An ibapi contract naming only a conId on SMART.
pub fn by_id(con_id: i64) -> Contract {
    Contract {
        contract_id: con_id as i32,
        security_type: SecurityType::Option,
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..Default::default()
    }
}

/// The underlying STK contract.
pub fn stock(symbol: &str) -> Contract {
    Contract::stock(symbol).build()
}

/// The unexpired call nearest the money expiring more than two weeks after `today`.
pub fn near_atm(m: &Market, symbol: &str) -> SimContract {
    let spot = m.close(symbol, m.today()).unwrap();
    m.existing_contracts(symbol)
        .into_iter()
        .filter(|c| c.right == Right::C && c.expiry > m.today() + chrono::Duration::days(14))
        .min_by(|a, b| {
            (a.strike - spot)
                .abs()
                .total_cmp(&(b.strike - spot).abs())
                .then(a.expiry.cmp(&b.expiry))
        })
        .unwrap()
}

/// The ibapi error code of a failed call.
pub fn code(e: &ibapi::Error) -> i32 {
    match e {
        ibapi::Error::Notice(n) => n.code,
        other => panic!("expected a TWS notice, got {other:?}"),
    }
}

/// Seconds since the epoch of a bar.
pub fn epoch(b: &ibapi::market_data::historical::Bar) -> i64 {
    match b.date {
        ibapi::market_data::historical::BarTimestamp::DateTime(t) => t.unix_timestamp(),
        ibapi::market_data::historical::BarTimestamp::Date(d) => {
            d.midnight().assume_utc().unix_timestamp()
        }
    }
}

/// An instant for `.ending(..)`.
pub fn at(t: chrono::DateTime<chrono::Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
}

/// Poll `f` every 10 ms until true or `secs` pass.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
