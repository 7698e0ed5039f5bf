//! Executor throughput against a simulated gateway preset, side by side in one run: the
//! adaptive executor, a sequential loop (the same code with one request in flight) and the
//! preset's theoretical capacity. Also reports the pacing violations the simulator counted.
//!
//! `cargo bench --bench executor`, environment:
//! - `EXEC_BENCH_PRESET` (default `realistic`; `throttled` too);
//! - `EXEC_BENCH_TIME_SCALE` (default 1): compressed time, simulator and executor alike; rates
//!   are reported in simulated time;
//! - `EXEC_BENCH_TASKS` (default 3000: long enough to pass the soft throttle's one-minute
//!   window and measure the sustained rate), `EXEC_BENCH_SEQ_TASKS` (default 60, 0 skips);
//! - `EXEC_BENCH_HANGS=FRACTION:TIMEOUT_S` (e.g. `0.02:10`): also run the adaptive executor
//!   with that fraction of requests never answered and that request timeout (simulated s),
//!   next to the hang-free run.

use opt_backfill::bars::BarSize;
use opt_backfill::compile::task::{task_id, FetchTask};
use opt_backfill::exec::retry::RetryPolicy;
use opt_backfill::exec::small_bars::compress;
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
                symbol: c.symbol.as_str().into(),
                contract: std::sync::Arc::new(opt_backfill::cache::OptionContract {
                    con_id: c.con_id,
                    local_symbol: c.local_symbol.clone(),
                    trading_class: c.trading_class.clone(),
                    expiry: c.expiry,
                    strike: c.strike,
                    right: c.right,
                    multiplier: c.multiplier,
                    exchange: c.exchange.clone(),
                    currency: c.currency.clone(),
                }),
                what: opt_backfill::bars::WhatToShow::Trades,
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

/// One benchmark run's settings.
#[derive(Clone)]
struct Setup {
    preset: String,
    scale: f64,
    hang_fraction: f64,
    timeout_secs: f64,
}

async fn run(label: &str, n: usize, fixed: Option<u32>, setup: &Setup) -> (f64, u64) {
    let mut sc = Scenario::preset(&setup.preset).unwrap();
    sc.today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    sc.time_scale = setup.scale;
    sc.faults.hang_fraction = setup.hang_fraction;
    let sim = start(sc, "127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut gateway =
        opt_backfill::cli::common::default_gateway("127.0.0.1".into(), sim.addr().port(), 1);
    gateway.request_timeout = compress(Duration::from_secs_f64(setup.timeout_secs), setup.scale);
    gateway.messages_per_second = (45.0 * setup.scale).round() as u32;
    gateway.message_window = compress(Duration::from_secs(1), setup.scale);
    let cfg = ExecConfig {
        scope: "bench".into(),
        output_root: dir.path().join("data"),
        state_root: dir.path().join("state"),
        run_id: label.into(),
        batch_index: 0,
        batch_count: 1,
        resume: false,
        incremental: true,
        gateway,
        governor: match fixed {
            Some(k) => GovernorConfig {
                initial_limit: k,
                adaptive: false,
                ..Default::default()
            },
            None => GovernorConfig::default(),
        }
        .compressed(setup.scale),
        retry: RetryPolicy {
            base: Duration::from_secs(1),
            ..RetryPolicy::historical(5)
        }
        .compressed(setup.scale),
        reconnect_for: Duration::from_secs(60),
        phase_deps: BTreeMap::new(),
        active_series: 64,
        reference_closes: BTreeMap::new(),
        now: None,
        empty_end: false,
    };
    let ts = tasks(&sim.market(), n);
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let t0 = Instant::now();
    let resumed = opt_backfill::exec::filter_resumed(&cfg, ts).unwrap();
    let rep = execute(resumed, Vec::new(), cfg, &mut QuietReporter, stop)
        .await
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let c = sim.stop().await;
    // Simulated time: the wall clock times the scale.
    let sim_secs = secs * setup.scale;
    let rate = rep.stats.requests as f64 / sim_secs;
    println!(
        "{label:<28} {:>6} requests in {:>7.1} s simulated ({secs:.1} s wall) = {:>6.2} req/s  (limit at end {}, peak in flight {}, decreases {}, hung {}, pacing violations {})",
        rep.stats.requests, sim_secs, rate, rep.stats.governor.limit, rep.stats.governor.peak_in_flight,
        rep.stats.governor.decreases, c.historical_hung, c.pacing_violations
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
    let preset = std::env::var("EXEC_BENCH_PRESET").unwrap_or_else(|_| "realistic".into());
    let scale: f64 = std::env::var("EXEC_BENCH_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let hangs: Option<(f64, f64)> = std::env::var("EXEC_BENCH_HANGS").ok().and_then(|v| {
        let (f, t) = v.split_once(':')?;
        Some((f.parse().ok()?, t.parse().ok()?))
    });
    let setup = Setup {
        preset: preset.clone(),
        scale,
        hang_fraction: 0.0,
        timeout_secs: 120.0,
    };
    let mut sc = Scenario::preset(&preset).unwrap();
    sc.today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let capacity = sc.theoretical_capacity_rps();
    let burst = sc.burst_capacity_rps();
    println!(
        "executor benchmark, {preset} preset, time scale {scale}: capacity {capacity:.2} req/s sustained (soft throttle), {burst:.2} req/s burst (slots / mean service time, the first minute)"
    );
    let seq = if n_seq > 0 {
        Some(
            rt.block_on(run("sequential (1 in flight)", n_seq, Some(1), &setup))
                .0,
        )
    } else {
        None
    };
    let (adaptive, violations) = rt.block_on(run("adaptive governor", n, None, &setup));
    let hung = hangs.map(|(fraction, timeout)| {
        let s = Setup {
            hang_fraction: fraction,
            timeout_secs: timeout,
            ..setup.clone()
        };
        let label = format!(
            "adaptive, {:.0}% hung, {timeout} s timeout",
            fraction * 100.0
        );
        (label.clone(), rt.block_on(run(&label, n, None, &s)))
    });
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
    if let Some((label, (rate, v))) = &hung {
        println!(
            "| {label} | {rate:.2} | {:.2} of the hang-free rate (pacing violations {v}) |",
            rate / adaptive
        );
    }
    if let Some(seq) = seq {
        println!(
            "| sequential loop | {seq:.2} | executor = {:.1}x sequential |",
            adaptive / seq
        );
    }
    println!("pacing violations under the adaptive executor: {violations}");
}
