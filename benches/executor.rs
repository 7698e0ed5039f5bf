//! Executor throughput against the simulated gateway's `realistic` preset, side by side in one
//! run: the adaptive executor, a sequential loop (the same code with one request in flight) and
//! the preset's theoretical capacity. Also reports the pacing violations the simulator counted.
//!
//! `cargo bench --bench executor` (env `EXEC_BENCH_TASKS`, default 3000: long enough to pass the
//! soft throttle's one-minute window and measure the sustained rate; `EXEC_BENCH_SEQ_TASKS`,
//! default 60).

use opt_backfill::bars::BarSize;
use opt_backfill::compile::task::{task_id, FetchTask};
use opt_backfill::exec::{execute, ExecConfig, GovernorConfig, QuietReporter};
use opt_backfill::sim::{start, Scenario};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tasks(market: &opt_backfill::sim::Market, n: usize) -> Vec<FetchTask> {
    let end_date = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let end = opt_backfill::calendar::session(end_date)
        .unwrap()
        .unwrap()
        .close;
    let duration = "6 M".parse().unwrap();
    let mut out = Vec::new();
    for u in market.underlyings() {
        for c in market.existing_contracts(&u.symbol) {
            if c.expiry <= end_date {
                continue;
            }
            out.push(FetchTask {
                id: task_id(c.con_id, "TRADES", BarSize::Hours8, end, duration, true),
                phase: "hours".into(),
                symbol: c.symbol.clone(),
                con_id: c.con_id,
                local_symbol: c.local_symbol.clone(),
                trading_class: c.trading_class.clone(),
                expiry: c.expiry,
                strike: c.strike,
                right: c.right,
                multiplier: c.multiplier,
                exchange: c.exchange.clone(),
                currency: c.currency.clone(),
                what: "TRADES".into(),
                bar_size: BarSize::Hours8,
                duration,
                end,
                use_rth: true,
                window: 0,
            });
            if out.len() == n {
                return out;
            }
        }
    }
    out
}

async fn run(label: &str, n: usize, fixed: Option<u32>) -> (f64, u64) {
    let mut sc = Scenario::preset("realistic").unwrap();
    sc.today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let sim = start(sc, "127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ExecConfig {
        scope: "bench".into(),
        output_root: dir.path().join("data"),
        state_root: dir.path().join("state"),
        run_id: label.into(),
        batch_index: 0,
        batch_count: 1,
        resume: false,
        incremental: true,
        gateway: opt_backfill::cli::common::default_gateway(
            "127.0.0.1".into(),
            sim.addr().port(),
            1,
        ),
        governor: match fixed {
            Some(k) => GovernorConfig {
                initial_limit: k,
                adaptive: false,
                ..Default::default()
            },
            None => GovernorConfig::default(),
        },
        max_attempts: 5,
        retry_backoff: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(60),
        phase_deps: BTreeMap::new(),
        active_series: 64,
        reference_closes: BTreeMap::new(),
        now: None,
    };
    let ts = tasks(&sim.market(), n);
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let t0 = Instant::now();
    let rep = execute(ts, 0, Vec::new(), cfg, &mut QuietReporter, stop)
        .await
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let c = sim.stop().await;
    let rate = rep.stats.requests as f64 / secs;
    println!(
        "{label:<28} {:>6} requests in {:>6.1} s = {:>6.2} req/s  (limit at end {}, peak in flight {}, pacing violations {})",
        rep.stats.requests, secs, rate, rep.stats.governor.limit, rep.stats.governor.peak_in_flight, c.pacing_violations
    );
    (rate, c.pacing_violations)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = env_usize("EXEC_BENCH_TASKS", 3000);
    let n_seq = env_usize("EXEC_BENCH_SEQ_TASKS", 60);
    let mut sc = Scenario::preset("realistic").unwrap();
    sc.today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let capacity = sc.theoretical_capacity_rps();
    let burst = sc.burst_capacity_rps();
    println!(
        "executor benchmark, realistic preset: capacity {capacity:.2} req/s sustained (soft throttle), {burst:.2} req/s burst (slots / mean service time, the first minute)"
    );
    let (seq, _) = rt.block_on(run("sequential (1 in flight)", n_seq, Some(1)));
    let (adaptive, violations) = rt.block_on(run("adaptive governor", n, None));
    println!();
    println!("| measure | req/s | ratio |");
    println!("|---|---:|---:|");
    println!("| theoretical capacity, sustained | {capacity:.2} | 1.00 |");
    println!(
        "| theoretical capacity, burst (first minute) | {burst:.2} | {:.2} |",
        burst / capacity
    );
    println!(
        "| adaptive executor | {adaptive:.2} | {:.2} of sustained capacity |",
        adaptive / capacity
    );
    println!(
        "| sequential loop | {seq:.2} | executor = {:.1}x sequential |",
        adaptive / seq
    );
    println!("pacing violations under the adaptive executor: {violations}");
}
