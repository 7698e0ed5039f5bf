//! Figures, not assertions: run with
//! `cargo test --release --test integration sim::bench -- --ignored --nocapture`.

use super::support::*;
use ibapi::prelude::*;
use opt_backfill::bars::BarSize;
use opt_backfill::cache::Right;
use opt_backfill::sim::{Market, Scenario};
use std::sync::Arc;
use std::time::Instant;

#[tokio::test]
#[ignore]
async fn figures() {
    let s = Scenario::preset("realistic").unwrap();
    println!(
        "realistic theoretical capacity: {:.1} req/s",
        s.theoretical_capacity_rps()
    );
    let m = Market::from_scenario(&s);
    for sym in ["SPY", "AAPL", "TSLA", "PLUG"] {
        let c = m.chain(sym).unwrap();
        println!(
            "{sym}: {} expiries x {} strikes listed, {} contracts exist",
            c.classes[0].expirations.len(),
            c.classes[0].strikes.len(),
            m.existing_contracts(sym).len()
        );
    }
    let mut big = s.clone();
    big.market.big_chain = Some("SPY".into());
    println!(
        "SPY with big-chain: {} contracts",
        Market::from_scenario(&big).existing_contracts("SPY").len()
    );

    let c = near_atm(&m, "SPY");
    for (bar, dur, what) in [
        (BarSize::Hours8, "6 M", "MIDPOINT"),
        (BarSize::Hours8, "6 M", "TRADES"),
        (BarSize::Mins30, "1 M", "MIDPOINT"),
        (BarSize::Mins30, "1 M", "TRADES"),
        (BarSize::Secs1, "1800 S", "BID_ASK"),
    ] {
        let t0 = Instant::now();
        let n = m
            .bars(c.con_id, what, bar, m.now(), dur.parse().unwrap(), true)
            .map(|b| b.len())
            .unwrap_or(0);
        println!(
            "market.bars {bar} x {dur} {what}: {n} bars in {:?}",
            t0.elapsed()
        );
    }

    // EMPTY rates for 30 mins x 1 D TRADES by moneyness.
    let day_end = m.now();
    for sym in ["SPY", "AAPL", "SOFI"] {
        let spot = m.close(sym, m.today()).unwrap();
        let all: Vec<_> = m
            .existing_contracts(sym)
            .into_iter()
            .filter(|c| c.listing < m.today())
            .collect();
        for (name, lo, hi) in [
            ("near ATM (<3%)", 0.0, 0.03),
            ("3-10% OTM", 0.03, 0.10),
            ("10-25% OTM", 0.10, 0.25),
            (">25% OTM", 0.25, 9.0),
        ] {
            let set: Vec<_> = all
                .iter()
                .filter(|c| {
                    let otm = if c.right == Right::C {
                        c.strike / spot - 1.0
                    } else {
                        1.0 - c.strike / spot
                    };
                    otm.abs() >= lo && otm.abs() < hi && (otm >= 0.0 || lo == 0.0)
                })
                .collect();
            if set.is_empty() {
                continue;
            }
            let empty = set
                .iter()
                .filter(|c| {
                    m.bars(
                        c.con_id,
                        "TRADES",
                        BarSize::Mins30,
                        day_end,
                        "1 D".parse().unwrap(),
                        true,
                    )
                    .is_err()
                })
                .count();
            println!(
                "{sym} {name}: EMPTY {:.0}% of {}",
                100.0 * empty as f64 / set.len() as f64,
                set.len()
            );
        }
    }

    // Throughput of the realistic preset: 300 requests, 40 in flight (stays under 50 msg/s).
    let h = server("realistic").await;
    let (rps, ok) = run(&h, 300, 40).await;
    let k = h.stop().await;
    println!(
        "realistic preset, 300 x (8 hours x 6 M TRADES), 40 in flight: {rps:.1} req/s ({:.0}% of the theoretical {:.1}), {ok} ok, peak in flight {}, errors {:?}",
        100.0 * rps / s.theoretical_capacity_rps(),
        s.theoretical_capacity_rps(),
        k.peak_in_flight_historical,
        k.errors
    );

    // Throughput of the fast preset through the real client, 50 in flight.
    let h = server("fast").await;
    let (rps, ok) = run(&h, 1000, 50).await;
    let k = h.stop().await;
    println!(
        "fast preset, 1000 x (8 hours x 6 M TRADES), 50 in flight: {rps:.0} req/s, {ok} ok, {} empty, {} bars",
        k.historical_empty, k.bars_served
    );
}

/// `n` SPY requests (8 hours x 6 M TRADES) with at most `in_flight` open: (req/s, answered OK).
async fn run(h: &opt_backfill::sim::SimHandle, n: usize, in_flight: usize) -> (f64, usize) {
    let cl = Arc::new(client(h, 90).await);
    let contracts: Vec<_> = h
        .market()
        .existing_contracts("SPY")
        .into_iter()
        .take(n)
        .collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in contracts {
        let (cl, sem) = (cl.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.unwrap();
            cl.historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
                .duration(6.months())
                .what_to_show(HistoricalWhatToShow::Trades)
                .fetch()
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    (n as f64 / t0.elapsed().as_secs_f64(), ok)
}
