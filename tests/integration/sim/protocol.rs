//! Handshake, client ids, option chains, qualification, current time.

use super::support::*;
use ibapi::prelude::*;
use std::time::Duration;

#[tokio::test]
async fn connect_several_clients_and_reject_a_duplicate_id() {
    let h = server("fast").await;
    let a = client(&h, 1).await;
    let _b = client(&h, 2).await;
    assert_eq!(a.server_version(), 226);
    assert!(!a.handshake_managed_accounts().is_empty());
    let dup = tokio::time::timeout(
        Duration::from_secs(10),
        Client::builder()
            .address(h.addr().to_string())
            .client_id(1)
            .max_reconnect_attempts(0)
            .connect(),
    )
    .await
    .expect("duplicate connect timed out");
    assert!(
        matches!(dup, Err(ibapi::Error::ClientIdInUse { client_id: 1 })),
        "{:?}",
        dup.err()
    );
    let c = h.counters();
    assert_eq!(c.errors_of(326), 1);
    assert!(c.errors_of(2104) >= 2 && c.errors_of(2158) >= 2);
    let t = a.server_time().await.unwrap();
    assert!(t.unix_timestamp() > 1_700_000_000);
    let c = h.stop().await;
    assert_eq!(c.active_connections, 0);
}

#[tokio::test]
async fn option_chain_lists_smart_and_other_exchanges() {
    let h = server("fast").await;
    let cl = client(&h, 3).await;
    let m = h.market();
    let u = m.underlying("AAPL").unwrap().clone();
    let mut sub = cl
        .option_chain("AAPL", SecurityType::Stock, u.con_id as i32)
        .subscribe()
        .await
        .unwrap();
    let chains = sub
        .collect_to_end_within(Duration::from_secs(10))
        .await
        .unwrap();
    let exchanges: Vec<_> = chains.iter().map(|c| c.exchange.as_str()).collect();
    assert!(
        exchanges.contains(&"SMART") && exchanges.contains(&"CBOE"),
        "{exchanges:?}"
    );
    let smart = chains.iter().find(|c| c.exchange == "SMART").unwrap();
    let expected = m.chain("AAPL").unwrap();
    assert_eq!(smart.trading_class, "AAPL");
    assert_eq!(smart.multiplier, "100");
    assert_eq!(smart.strikes, expected.classes[0].strikes);
    assert_eq!(
        smart.expirations.len(),
        expected.classes[0].expirations.len()
    );
    assert_eq!(smart.underlying_contract_id as i64, u.con_id);
}

#[tokio::test]
async fn qualification_of_existing_and_missing_contracts() {
    let h = server("fast").await;
    let cl = client(&h, 4).await;
    let m = h.market();
    let c = near_atm(&m, "SPY");
    let exp = c.expiry.format("%Y%m%d").to_string();
    let q = Contract::option("SPY", &exp, c.strike, OptionRight::Call);
    let details = cl.contract_details(&q).await.unwrap();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].contract.contract_id as i64, c.con_id);
    assert_eq!(details[0].contract.local_symbol, c.local_symbol);
    assert_eq!(
        details[0].under_contract_id as i64,
        m.underlying("SPY").unwrap().con_id
    );

    // A combination the chain lists but that does not exist.
    let chain = m.chain("SPY").unwrap();
    let existing: std::collections::HashSet<_> = m
        .existing_contracts("SPY")
        .iter()
        .map(|c| (c.expiry, (c.strike * 1000.0) as i64))
        .collect();
    let (e, k) = chain.classes[0]
        .expirations
        .iter()
        .flat_map(|e| chain.classes[0].strikes.iter().map(move |k| (*e, *k)))
        .find(|(e, k)| !existing.contains(&(*e, (*k * 1000.0) as i64)))
        .expect("the chain announces a missing combination");
    let missing = Contract::option("SPY", &e.format("%Y%m%d").to_string(), k, OptionRight::Call);
    let err = cl.contract_details(&missing).await.unwrap_err();
    assert_eq!(code(&err), 200);

    // By conId, and the underlying by symbol.
    let d = cl.contract_details(&by_id(c.con_id)).await.unwrap();
    assert_eq!(d[0].contract.strike, c.strike);
    let s = cl.contract_details(&stock("SPY")).await.unwrap();
    assert_eq!(s[0].contract.contract_id, 756733);
    assert_eq!(
        code(&cl.contract_details(&stock("NOSUCH")).await.unwrap_err()),
        200
    );
    let head = cl
        .head_timestamp(
            &by_id(c.con_id),
            HistoricalWhatToShow::Trades,
            TradingHours::Regular,
        )
        .await
        .unwrap();
    assert_eq!(
        head.unix_timestamp(),
        m.head_timestamp(c.con_id).unwrap().timestamp()
    );
}

#[tokio::test]
async fn historical_data_by_contract_fields_without_a_con_id() {
    let h = server("fast").await;
    let cl = client(&h, 5).await;
    let m = h.market();
    let c = near_atm(&m, "MSFT");
    let q = Contract::option(
        "MSFT",
        &c.expiry.format("%Y%m%d").to_string(),
        c.strike,
        OptionRight::Call,
    );
    let by_fields = cl
        .historical_data(&q, HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch()
        .await
        .unwrap();
    let by_con_id = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .fetch()
        .await
        .unwrap();
    assert!(!by_fields.bars.is_empty());
    assert_eq!(by_fields.bars, by_con_id.bars);
    let log = h.historical_log();
    assert_eq!((log[0].con_id, log[1].con_id), (0, c.con_id));
    assert!(log
        .iter()
        .all(|r| r.outcome == "ok" && r.bars == by_fields.bars.len()));
}
