//! Incremental discovery against the simulator whose `today` moves: a full discovery at D, then
//! an incremental one at D + 7 sessions (new expiries listed, strikes added around the moved
//! underlying, expired ones gone) gives the same bytes as a full discovery at D + 7 for a small
//! share of its contract-details requests; a wrong conId in the earlier cache is caught by the
//! verification sample and the symbol rebuilt in full.

use super::{assert_cache_matches, config, no_rate_trouble, run, s, summary_lines};
use crate::support::{run_cli_async, sim, Fixture, Workspace};
use chrono::NaiveDate;
use opt_backfill::discover::{cache_path, negative, DiscoveryMode};
use opt_backfill::sim::SimHandle;
use std::path::Path;

/// A Friday: the first discovery. Seven sessions later a monthly is listed whose wider grid
/// adds strikes to AAPL's and RIOT's chains (found by scanning the `fast` preset's weeks).
fn day_d() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 9).unwrap()
}

/// `n` sessions after `d`.
fn sessions_after(d: NaiveDate, n: usize) -> NaiveDate {
    (0..n).fold(d, |d, _| {
        opt_backfill::calendar::session_after(d).unwrap().date
    })
}

fn contract_details(sim: &SimHandle) -> u64 {
    sim.counters()
        .requests
        .get("contract_details")
        .copied()
        .unwrap_or(0)
}

const SYMBOLS: [&str; 3] = ["AAPL", "SOFI", "RIOT"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_later_incremental_equals_full_for_a_fifth_of_the_requests() {
    let d = day_d();
    let d7 = sessions_after(d, 7);
    let Fixture { sim: sim_d, ws, .. } = Fixture::builder().today(d).build().await;
    let rep = run(&SYMBOLS, config(&ws.root, &sim_d, d, 41)).await;
    assert!(rep.symbols.iter().all(|r| r.status == "OK"), "{rep:?}");
    assert!(rep.symbols.iter().all(|r| r.mode == DiscoveryMode::Full));

    // The chain moved: expiries gone, expiries listed, strikes added.
    let sim7 = sim("fast", |sc| sc.today = d7).await;
    let market7 = sim7.market();
    let (mut new_expiries, mut new_strikes) = (0, 0);
    for sym in SYMBOLS {
        let c0 = sim_d.market().chain(sym).unwrap().classes[0].clone();
        let c7 = market7.chain(sym).unwrap().classes[0].clone();
        let e = c7
            .expirations
            .iter()
            .filter(|e| !c0.expirations.contains(e))
            .count();
        let k = c7
            .strikes
            .iter()
            .filter(|k| !c0.strikes.contains(k))
            .count();
        eprintln!("{sym}: {e} new expiries, {k} new strikes in the chain");
        new_expiries += e;
        new_strikes += k;
    }
    assert!(
        new_expiries > 0 && new_strikes > 0,
        "{new_expiries} {new_strikes}"
    );

    // Full at D + 7 in a fresh state root: the reference bytes and request count.
    let full_ws = Workspace::new();
    let mut cfg = config(&full_ws.root, &sim7, d7, 42);
    cfg.mode = DiscoveryMode::Full;
    let before = contract_details(&sim7);
    let full = run(&SYMBOLS, cfg.clone()).await;
    let full_requests = contract_details(&sim7) - before;
    assert!(full.symbols.iter().all(|r| r.status == "OK"), "{full:?}");

    // Incremental at D + 7 from the caches of D. Seven sessions are 11 days: with the default
    // re-check age of 7 days every combination that answered 200 at D would be asked again
    // (a weekly cadence, 7 days, is not older than 7 days), so the age is 14 here.
    let mut cfg = config(&ws.root, &sim7, d7, 43);
    cfg.recheck_missing_after_days = 14;
    let before = contract_details(&sim7);
    let inc = run(&SYMBOLS, cfg.clone()).await;
    let inc_requests = contract_details(&sim7) - before;
    for r in &inc.symbols {
        assert_eq!(r.status, "OK", "{r:?}");
        assert_eq!(r.mode, DiscoveryMode::Incremental, "{r:?}");
        assert!(r.verify_mismatches.is_empty() && !r.rebuilt_full, "{r:?}");
        assert_eq!(
            r.earlier_cache.as_deref(),
            Some(s(&cache_path(&cfg.cache_dir, &r.symbol, d)).as_str())
        );
        assert_eq!(
            r.reused + r.known_missing_skipped + r.qualified_now,
            r.candidates,
            "{r:?}"
        );
        assert!(
            r.reused > 0 && r.qualified_now > 0 && r.verified >= 5,
            "{r:?}"
        );
        assert!(r.known_missing_skipped > 0, "{r:?}");
        assert_eq!(
            r.qualified + r.not_found,
            r.reused + r.qualified_now,
            "{r:?}"
        );
        assert_cache_matches(&cfg.cache_dir, &market7, &r.symbol, d7, None);
        let inc_bytes = std::fs::read(cache_path(&cfg.cache_dir, &r.symbol, d7)).unwrap();
        let full_bytes = std::fs::read(cache_path(&full_ws.caches(), &r.symbol, d7)).unwrap();
        assert!(
            inc_bytes == full_bytes,
            "{}: incremental cache differs from full",
            r.symbol
        );
    }
    let full_sent: usize = full.symbols.iter().map(|r| r.requests).sum();
    let inc_sent: usize = inc.symbols.iter().map(|r| r.requests).sum();
    eprintln!(
        "contract details: full {full_requests}, incremental {inc_requests} ({:.1}%); requests reported {full_sent} vs {inc_sent}",
        100.0 * inc_requests as f64 / full_requests as f64
    );
    for r in &inc.symbols {
        eprintln!("{}", serde_json::to_string(r).unwrap());
    }
    assert!(
        inc_requests * 5 <= full_requests,
        "incremental sent {inc_requests} contract-details requests, full {full_requests}"
    );
    // The summary lines carry the split and their format version.
    let lines = summary_lines(&inc.summary_path);
    assert_eq!(lines.len(), SYMBOLS.len());
    assert_eq!(lines[0]["format_version"], 2);
    assert_eq!(lines[0]["mode"], "incremental");
    assert_eq!(lines[0]["reused"], inc.symbols[0].reused);
    no_rate_trouble(&sim7.counters());
}

/// The binary against a simulator at `date`: the common arguments for SOFI.
fn args(state: &Path, sim: &SimHandle, date: NaiveDate, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "discover",
        "--symbols",
        "SOFI",
        "--date",
        &date.to_string(),
        "--state-root",
        &s(state),
        "--gateway",
        &format!("127.0.0.1:{}", sim.addr().port()),
        "--messages-per-second",
        "1000",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    v.extend(extra.iter().map(|x| x.to_string()));
    v
}

fn newest_summary(state: &Path) -> serde_json::Value {
    let runs = super::summaries(state);
    summary_lines(runs.last().unwrap()).pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_con_id_in_the_earlier_cache_is_caught_and_the_symbol_rebuilt_in_full() {
    let d = day_d();
    let d7 = sessions_after(d, 7);
    let Fixture { sim: sim_d, ws, .. } = Fixture::builder().today(d).build().await;
    let state = ws.root.join("state");
    let out = run_cli_async(args(&state, &sim_d, d, &[]), ws.root.clone()).await;
    crate::support::ok(&out);
    assert_eq!(newest_summary(&state)["mode"], "full");
    let neg_path = negative::negative_path(&ws.caches(), "SOFI");
    let neg = negative::NegativeCache::load(&neg_path, "SOFI")
        .unwrap()
        .unwrap();
    assert!(!neg.missing.is_empty() && neg.missing.iter().all(|m| m.checked == d));

    // Hand-edit the earlier cache: the last contract (latest expiry, still listed a week later)
    // gets a conId no contract has (a duplicate would be refused when the cache is read).
    let path = cache_path(&ws.caches(), "SOFI", d);
    let mut cache: opt_backfill::cache::ContractsCache =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let n = cache.contracts.len();
    let wrong = 1_999_999_999;
    assert!(cache.contracts.iter().all(|c| c.con_id != wrong));
    let edited = cache.contracts[n - 1].clone();
    cache.contracts[n - 1].con_id = wrong;
    opt_backfill::store::atomic::write_json(&path, &cache).unwrap();
    let earlier_bytes = std::fs::read(&path).unwrap();

    // A bad fraction is refused before connecting.
    let sim7 = sim("fast", |sc| sc.today = d7).await;
    let out = run_cli_async(
        args(&state, &sim7, d7, &["--verify-fraction", "2"]),
        ws.root.clone(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--verify-fraction 2"));

    // A sample of every reused contract includes the edited one.
    let out = run_cli_async(
        args(&state, &sim7, d7, &["--verify-fraction", "1"]),
        ws.root.clone(),
    )
    .await;
    let stderr = crate::support::ok(&out);
    assert!(
        stderr.contains("WARNING: SOFI: the verification sample found 1 of"),
        "{stderr}"
    );
    let line = newest_summary(&state);
    assert_eq!(line["rebuilt_full"], true, "{line}");
    assert_eq!(line["mode"], "full", "{line}");
    let mismatch = line["verify_mismatches"][0].as_str().unwrap();
    assert!(
        mismatch.contains(&format!(
            "conId {wrong} (cache) vs {} (gateway)",
            edited.con_id
        )),
        "{mismatch}"
    );
    assert_cache_matches(&ws.caches(), &sim7.market(), "SOFI", d7, None);
    // The earlier cache is left as it was.
    assert_eq!(std::fs::read(&path).unwrap(), earlier_bytes);

    // --full asks for every candidate even with an earlier cache.
    let out = run_cli_async(
        args(&state, &sim7, d7, &["--full", "--force"]),
        ws.root.clone(),
    )
    .await;
    crate::support::ok(&out);
    let line = newest_summary(&state);
    assert_eq!(line["mode"], "full", "{line}");
    assert_eq!(line["reused"], 0, "{line}");
    assert_eq!(line["qualified_now"], line["candidates"], "{line}");

    // With the edit undone, a forced run without --full is incremental again, its default
    // sample finds nothing, and it agrees with the simulator.
    std::fs::write(&path, {
        cache.contracts[n - 1] = edited;
        serde_json::to_vec_pretty(&cache).unwrap()
    })
    .unwrap();
    let out = run_cli_async(args(&state, &sim7, d7, &["--force"]), ws.root.clone()).await;
    crate::support::ok(&out);
    let line = newest_summary(&state);
    assert_eq!(line["mode"], "incremental", "{line}");
    assert_eq!(
        line["verify_mismatches"].as_array().unwrap().len(),
        0,
        "{line}"
    );
    assert_cache_matches(&ws.caches(), &sim7.market(), "SOFI", d7, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_qualification_leaves_the_earlier_cache_and_the_negative_cache_as_they_were()
{
    let d = day_d();
    let d7 = sessions_after(d, 7);
    let Fixture { sim: sim_d, ws, .. } = Fixture::builder().today(d).build().await;
    let rep = run(&["AAPL"], config(&ws.root, &sim_d, d, 51)).await;
    assert_eq!(rep.symbols[0].status, "OK");
    let earlier = cache_path(&ws.caches(), "AAPL", d);
    let neg_path = negative::negative_path(&ws.caches(), "AAPL");
    let (earlier_bytes, neg_bytes) = (
        std::fs::read(&earlier).unwrap(),
        std::fs::read(&neg_path).unwrap(),
    );

    // A week later, at 20 messages/s the ~270 requests take over 10 s: stop after 2 s.
    let sim7 = sim("fast", |sc| sc.today = d7).await;
    let mut cfg = config(&ws.root, &sim7, d7, 52);
    cfg.gateway.messages_per_second = 20;
    cfg.recheck_missing_after_days = 14;
    let (tx, stop) = tokio::sync::watch::channel(false);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let _ = tx.send(true);
        tx
    });
    let rep = opt_backfill::discover::discover(&["AAPL".to_string()], cfg.clone(), stop)
        .await
        .unwrap();
    drop(stopper.await);
    assert!(rep.interrupted, "{rep:?}");
    assert_eq!(rep.symbols[0].status, "ERR", "{:?}", rep.symbols[0]);
    assert!(!cache_path(&ws.caches(), "AAPL", d7).exists());
    assert_eq!(std::fs::read(&earlier).unwrap(), earlier_bytes);
    assert_eq!(std::fs::read(&neg_path).unwrap(), neg_bytes);

    // The same run again completes from the same starting point.
    cfg.gateway.messages_per_second = 1000;
    let rep = run(&["AAPL"], cfg.clone()).await;
    assert_eq!(rep.symbols[0].status, "OK", "{:?}", rep.symbols[0]);
    assert_eq!(rep.symbols[0].mode, DiscoveryMode::Incremental);
    assert_cache_matches(&ws.caches(), &sim7.market(), "AAPL", d7, None);
    assert_ne!(std::fs::read(&neg_path).unwrap(), neg_bytes);
}

/// The benchmark: the `realistic` preset (IB's 50 messages/s, ~0.45 s per answer), ten
/// symbols with their whole chains, a first discovery at D and the incremental one a week later
/// (five sessions, default settings). Prints requests and wall time side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: about 20 minutes (29,000 candidates at ~29/s, then the week-later run); run with --ignored --nocapture for the figures"]
async fn bench_first_discovery_vs_one_week_later_realistic() {
    const TEN: [&str; 10] = [
        "IWM", "AAPL", "MSFT", "AMZN", "NVDA", "TSLA", "SOFI", "PLUG", "RIOT", "MARA",
    ];
    // A week in which a weekly and a monthly are listed (the monthly's wide grid adds strikes)
    // and one weekly expires: 2026-10-09 to 10-16 lists nothing new (its new expiry is a
    // monthly listed long before), which flatters the second run.
    let d = NaiveDate::from_ymd_opt(2026, 10, 16).unwrap();
    let week = sessions_after(d, 5);
    let ws = Workspace::new();
    let mut figures = Vec::new();
    for (label, date, client) in [("first discovery", d, 61), ("one week later", week, 62)] {
        let sim = sim("realistic", |sc| sc.today = date).await;
        let mut cfg = config(&ws.root, &sim, date, client);
        cfg.gateway.request_timeout = std::time::Duration::from_secs(60);
        cfg.progress_every = Some(std::time::Duration::from_secs(60));
        let t0 = std::time::Instant::now();
        let rep = run(&TEN, cfg.clone()).await;
        let secs = t0.elapsed().as_secs_f64();
        let c = sim.counters();
        no_rate_trouble(&c);
        for r in &rep.symbols {
            assert_eq!(r.status, "OK", "{r:?}");
            assert!(r.verify_mismatches.is_empty(), "{r:?}");
            assert_cache_matches(&cfg.cache_dir, &sim.market(), &r.symbol, date, None);
        }
        let sum = |f: fn(&opt_backfill::discover::SymbolReport) -> usize| -> usize {
            rep.symbols.iter().map(f).sum()
        };
        let get = |k: &str| c.requests.get(k).copied().unwrap_or(0);
        figures.push(format!(
            "| {label} ({date}) | {} | {} | {} | {} | {} | {} | {} | {secs:.1} s |",
            sum(|r| r.candidates),
            sum(|r| r.reused),
            sum(|r| r.known_missing_skipped),
            sum(|r| r.qualified_now + r.verified),
            get("contract_details"),
            get("cancel_contract_details"),
            sum(|r| r.qualified),
        ));
        eprintln!("{}", figures.last().unwrap());
    }
    eprintln!("| run | candidates | reused | known missing skipped | qualified (incl. sample) | contract-details requests | cancels | contracts in caches | wall time |");
    eprintln!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        eprintln!("{f}");
    }
}
