//! Compile benchmark (not a timed test): 300 symbols x 2,000 contracts of generated caches,
//! the weekend plan's phases (8 hours x 6 M over all contracts, 30 mins x 1 M near-ATM K=10
//! E=4). Prints the time of each step and the peak resident memory (VmHWM).
//!
//! Run with `cargo bench --bench compile`. Target (issue 2): under 10 s and 2 GB on 2 cores.

use opt_backfill::cache::{
    ContractsCache, OptionContract, Right, Underlying, CACHE_FORMAT_VERSION,
};
use opt_backfill::compile::{self, CompileOptions};
use std::time::Instant;

const SYMBOLS: usize = 300;
const EXPIRIES: usize = 20;
const STRIKES: usize = 50; // x 2 rights x 20 expiries = 2,000 contracts per symbol

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn symbol(i: usize) -> String {
    let mut s = String::new();
    let mut n = i;
    for _ in 0..4 {
        s.push((b'A' + (n % 26) as u8) as char);
        n /= 26;
    }
    s
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("contracts_cache");
    std::fs::create_dir_all(&cache_dir).unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    // Weekly expiries starting two weeks before the end: the first two are expired.
    let first_expiry = chrono::NaiveDate::from_ymd_opt(2026, 11, 13).unwrap();

    let t0 = Instant::now();
    let mut symbols = Vec::with_capacity(SYMBOLS);
    let mut bytes = 0usize;
    for i in 0..SYMBOLS {
        let sym = symbol(i);
        let close = 50.0 + i as f64;
        let mut contracts = Vec::with_capacity(EXPIRIES * STRIKES * 2);
        let mut id = (i as i64 + 1) * 1_000_000;
        for e in 0..EXPIRIES {
            let expiry = first_expiry + chrono::Duration::weeks(e as i64);
            for right in [Right::C, Right::P] {
                for k in 0..STRIKES {
                    id += 1;
                    let strike = close * 0.5 + k as f64 * close / STRIKES as f64;
                    contracts.push(OptionContract {
                        con_id: id,
                        local_symbol: format!(
                            "{sym:<6}{}{right}{:08}",
                            expiry.format("%y%m%d"),
                            (strike * 1000.0).round() as i64
                        ),
                        trading_class: sym.clone(),
                        expiry,
                        strike: (strike * 100.0).round() / 100.0,
                        right,
                        multiplier: 100.0,
                        exchange: "SMART".into(),
                        currency: "USD".into(),
                    });
                }
            }
        }
        let mut cache = ContractsCache {
            format_version: CACHE_FORMAT_VERSION,
            as_of,
            underlying: Underlying {
                symbol: sym.clone(),
                con_id: i as i64 + 1,
                sec_type: Default::default(),
                currency: "USD".into(),
                primary_exchange: Some("NASDAQ".into()),
                reference_close: Some(close),
                reference_close_date: Some(as_of),
                reference_close_source: None,
            },
            contracts,
            class_hours: Vec::new(),
        };
        cache.sort();
        let json = serde_json::to_vec(&cache).unwrap();
        bytes += json.len();
        std::fs::write(cache_dir.join(format!("{sym}_2026-11-27.json")), json).unwrap();
        symbols.push(format!("\"{sym}\""));
    }
    let generate = t0.elapsed();

    let plan_path = dir.path().join("bench.toml");
    std::fs::write(
        &plan_path,
        format!(
            r#"name = "bench"
scope = "bench"
end = "2026-11-27"
[universe]
symbols = [{}]
contracts-cache = "{}"
[limits]
"8 hours" = "6 M"
[[phase]]
name = "hours"
bars = [{{ size = "8 hours", duration = "6 M" }}]
[[phase]]
name = "minutes"
bars = [{{ size = "30 mins", duration = "1 M" }}]
select = {{ near-atm = {{ strikes = 10, expiries = 4 }} }}
depends-on = ["hours"]
"#,
            symbols.join(", "),
            cache_dir.display()
        ),
    )
    .unwrap();

    let t1 = Instant::now();
    let plan = opt_backfill::plan::load(&plan_path).unwrap_or_else(|e| panic!("{e}"));
    let load = t1.elapsed();
    let t2 = Instant::now();
    let compiled =
        compile::compile(&plan, &CompileOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let compile_time = t2.elapsed();
    let t3 = Instant::now();
    let out = dir.path().join("bench.manifest.json");
    compiled.manifest.write_atomic(&out).unwrap();
    let write = t3.elapsed();
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let total = t1.elapsed();

    let m = &compiled.manifest;
    println!(
        "compile benchmark: {SYMBOLS} symbols x {} contracts",
        EXPIRIES * STRIKES * 2
    );
    println!(
        "  caches generated: {:.1} MB in {:.2?} (not counted)",
        bytes as f64 / 1e6,
        generate
    );
    println!("  plan load:        {load:.2?}");
    println!(
        "  compile:          {compile_time:.2?} (read caches, windows, tasks, selections, graph)"
    );
    println!(
        "  manifest write:   {write:.2?} ({:.1} MB)",
        size as f64 / 1e6
    );
    println!("  total:            {total:.2?}");
    println!(
        "  tasks: {}, near-ATM requests: {}, expired: {}, graph: {} nodes / {} edges",
        m.totals.tasks,
        m.totals.selection_requests,
        m.totals.expired,
        compiled.graph.graph.node_count(),
        compiled.graph.graph.edge_count()
    );
    match peak_rss_mb() {
        Some(mb) => println!("  peak memory (VmHWM): {mb:.0} MB"),
        None => println!("  peak memory: unavailable (no /proc/self/status)"),
    }
}
