//! Store benchmarks, printed as a table:
//! - resume start-up: load the summaries of a scope with N tasks already done (OK tasks point at
//!   real files, which are checked for existence) and filter the task list against them;
//! - Parquet incremental merge rate: files/s for 8-hour-bar files (six months, ~125 rows; a
//!   merge reads the file, appends a session's bar and writes it back atomically), next to the
//!   request rate it has to keep up with (45 requests/s, IB's message cap per connection).
//!
//! - resume start-up by coverage (what `execute` does now): load the scope's coverage index and
//!   keep the tasks whose window is not covered (one file per task, fingerprints checked);
//!
//! `cargo bench --bench store` (env `RESUME_TASKS`, default 500000; `MERGE_FILES`, default 2000).

use chrono::{TimeZone, Utc};
use opt_backfill::bars::BarSize;
use opt_backfill::cache::Right;
use opt_backfill::ib::FetchedBar;
use opt_backfill::store::parquet::{merge_bars, SeriesKey};
use opt_backfill::store::summary::{load_resume_state, run_dir, SummaryRecord, SummaryWriter};
use std::collections::HashSet;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn resume_bench(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let t = Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap();
    let t0 = Instant::now();
    let mut w = SummaryWriter::new(run_dir(dir.path(), "bench", "r1"), 0, 1).unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        // Two thirds OK with a file, one third EMPTY (no file), like an hours phase.
        let ok = i % 3 != 0;
        let out = if ok {
            let p = files.join(format!("{i}.parquet"));
            std::fs::write(&p, b"").unwrap();
            Some(p.display().to_string())
        } else {
            None
        };
        let id = format!("{:016x}", i as u64 * 0x9E37_79B9_7F4A_7C15);
        ids.push(id.clone());
        w.append(&SummaryRecord {
            run_id: "r1".into(),
            task_id: id,
            phase: "hours".into(),
            symbol: format!("SYM{:03}", i % 300),
            con_id: 100_000 + i as i64,
            expiry: None,
            strike: Some(100.0),
            right: Some(Right::C),
            bar_size: BarSize::Hours8,
            what: opt_backfill::bars::WhatToShow::Trades,
            duration: "6 M".into(),
            end: t,
            status: if ok {
                opt_backfill::ib::OutcomeClass::Ok
            } else {
                opt_backfill::ib::OutcomeClass::Empty
            },
            bars: 120,
            bars_written: 120,
            first: Some(t),
            last: Some(t),
            error_code: None,
            error_message: None,
            output_path: out,
            quarantined: None,
            attempts: 1,
            latency_ms: Some(500),
            inflight_limit: Some(16),
            reference_close: None,
            reference_source: None,
            requests: Vec::new(),
            splits: 0,
            started_at: t,
            finished_at: t,
        })
        .unwrap();
    }
    drop(w);
    let setup = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let state = load_resume_state(dir.path(), "bench").unwrap();
    let load = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let mut checked = HashSet::new();
    let done = ids
        .iter()
        .filter(|id| state.is_done(id, &mut checked))
        .count();
    let filter = t2.elapsed().as_secs_f64();
    assert_eq!(done, n);
    println!(
        "| resume start-up, {n} tasks done | load summaries {load:.2} s + check tasks and files {filter:.2} s = {:.2} s | peak RSS {:.0} MB | (setup {setup:.0} s) |",
        load + filter,
        peak_rss_mb()
    );
}

/// Resume by the coverage index: N tasks (`8 hours x 6 M`, one file each; two thirds with a
/// file, one third answered empty and fileless), every window covered; `filter_resumed` keeps
/// none of them.
fn coverage_resume_bench(n: usize) {
    use opt_backfill::compile::task::{task_id, FetchTask};
    use opt_backfill::exec::{filter_resumed, ExecConfig, GovernorConfig};
    use opt_backfill::store::coverage::{window_units, Answer, Cover, FileCoverage};
    use opt_backfill::store::coverage_index::IndexWriter;
    let dir = tempfile::tempdir().unwrap();
    let end =
        opt_backfill::calendar::session(chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap())
            .unwrap()
            .unwrap()
            .close;
    let duration: opt_backfill::bars::Duration = "6 M".parse().unwrap();
    let units = window_units(end, duration);
    let mut all_bars = FileCoverage::default();
    for u in &units {
        all_bars.set(
            u,
            Cover {
                answer: Answer::Bars,
                provisional: false,
            },
        );
    }
    // Every file its own record (three sessions answered empty, chosen by the file's number),
    // so resume's parse-once-per-distinct-record shortcut does not flatter the figure.
    let record_of = |i: usize| {
        let mut c = all_bars.clone();
        let k = units.len();
        for j in [i % k, (i / k) % k, (i / (k * k)) % k] {
            c.set(
                &units[j],
                Cover {
                    answer: Answer::Empty,
                    provisional: false,
                },
            );
        }
        c
    };
    let cfg = ExecConfig {
        scope: "bench".into(),
        output_root: dir.path().join("data"),
        state_root: dir.path().join("state"),
        run_id: "r2".into(),
        batch_index: 0,
        batch_count: 1,
        resume: true,
        incremental: true,
        gateway: opt_backfill::cli::common::default_gateway("127.0.0.1".into(), 1, 1),
        governor: GovernorConfig::default(),
        retry: opt_backfill::exec::retry::RetryPolicy {
            base: std::time::Duration::from_secs(1),
            ..opt_backfill::exec::retry::RetryPolicy::historical(5)
        },
        reconnect_for: std::time::Duration::from_secs(60),
        phase_deps: Default::default(),
        active_series: 64,
        reference_closes: Default::default(),
        now: None,
        empty_end: false,
    };
    let t0 = Instant::now();
    let mut w = IndexWriter::open(&cfg.state_root, "bench", 0, 1).unwrap();
    let mut tasks = Vec::with_capacity(n);
    let now = Utc::now();
    for i in 0..n {
        let con_id = 100_000 + i as i64;
        let symbol = format!("SYM{:03}", i % 300);
        let key = SeriesKey {
            symbol: symbol.clone(),
            con_id,
            expiry: chrono::NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
            strike: 100.0,
            right: Right::C,
            bar_size: BarSize::Hours8,
            what: "TRADES".into(),
            local_symbol: String::new(),
            trading_class: String::new(),
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
        };
        let path = opt_backfill::store::parquet::bar_file_path(&cfg.output_root, "bench", &key);
        if i % 3 != 0 {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }
        let rel = format!("{symbol}/{con_id}/TRADES/8_hours.parquet");
        w.record(&rel, &path, &record_of(i), now).unwrap();
        tasks.push(FetchTask {
            id: task_id(con_id, "TRADES", BarSize::Hours8, end, duration, true),
            phase: "hours".into(),
            symbol: symbol.into(),
            contract: std::sync::Arc::new(opt_backfill::cache::OptionContract {
                con_id,
                local_symbol: String::new(),
                trading_class: String::new(),
                expiry: key.expiry,
                strike: 100.0,
                right: Right::C,
                multiplier: 100.0,
                exchange: "SMART".into(),
                currency: "USD".into(),
            }),
            what: opt_backfill::bars::WhatToShow::Trades,
            bar_size: BarSize::Hours8,
            duration,
            end,
            use_rth: true,
            window: 0,
        });
    }
    let setup = t0.elapsed().as_secs_f64();
    // First as after a kill -9 (the run never compacted: every entry is in the JSONL log), then
    // as after a finished run (the log folded into the binary snapshot).
    let resume = |tasks: Vec<FetchTask>| {
        let t = Instant::now();
        let resumed = filter_resumed(&cfg, tasks).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            resumed.tasks.is_empty(),
            "{} tasks not resumed",
            resumed.tasks.len()
        );
        assert_eq!(resumed.finished as usize, n);
        secs
    };
    let from_log = resume(tasks.clone());
    let t2 = Instant::now();
    w.compact(&cfg.state_root, "bench").unwrap();
    let compact = t2.elapsed().as_secs_f64();
    drop(w);
    let secs = resume(tasks);
    println!(
        "| resume start-up by coverage, {n} tasks done (one file each), after a kill (JSONL log only) | {from_log:.2} s | |"
    );
    println!(
        "| compaction at the end of a run (log folded into the snapshot) | {compact:.2} s | |"
    );
    println!(
        "| resume start-up by coverage, {n} tasks done (one file each) | load the coverage snapshot, check every file's fingerprint and window {secs:.2} s | peak RSS {:.0} MB | (setup {setup:.0} s) |",
        peak_rss_mb()
    );
}

fn merge_bench(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sessions: Vec<_> = opt_backfill::calendar::sessions_between(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 27).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
    )
    .unwrap();
    let bars: Vec<FetchedBar> = sessions
        .iter()
        .map(|s| FetchedBar {
            ts: s.open,
            open: 1.0,
            high: 1.2,
            low: 0.9,
            close: 1.1,
            volume: 10.0,
            wap: 1.05,
            count: 3,
        })
        .collect();
    let (old, new) = bars.split_at(bars.len() - 1);
    let keys: Vec<SeriesKey> = (0..n)
        .map(|i| SeriesKey {
            symbol: "AAPL".into(),
            con_id: 1_000 + i as i64,
            expiry: chrono::NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
            strike: 100.0 + i as f64,
            right: Right::C,
            bar_size: BarSize::Hours8,
            what: "TRADES".into(),
            local_symbol: format!("AAPL  261218C{:08}", (100 + i) * 1000),
            trading_class: "AAPL".into(),
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
        })
        .collect();
    let paths: Vec<_> = keys
        .iter()
        .map(|k| opt_backfill::store::parquet::bar_file_path(dir.path(), "bench", k))
        .collect();
    let t0 = Instant::now();
    for (k, p) in keys.iter().zip(&paths) {
        merge_bars(p, k, old, Utc::now(), true).unwrap();
    }
    let create = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for (k, p) in keys.iter().zip(&paths) {
        let m = merge_bars(p, k, new, Utc::now(), true).unwrap();
        assert_eq!(m.appended, 1);
    }
    let merge = t1.elapsed().as_secs_f64();
    println!(
        "| Parquet, {n} files of {} 8-hour bars | new file {:.0} files/s | incremental merge (read, append 1 bar, atomic rewrite) {:.0} files/s on one thread | {:.1}x the 45 req/s a connection can send |",
        old.len(),
        n as f64 / create,
        n as f64 / merge,
        n as f64 / merge / 45.0
    );
}

fn main() {
    println!("store benchmarks (release build)");
    println!("| measure | figures | | |");
    println!("|---|---|---|---|");
    merge_bench(env_usize("MERGE_FILES", 2000));
    coverage_resume_bench(env_usize("RESUME_TASKS", 500_000));
    resume_bench(env_usize("RESUME_TASKS", 500_000));
}
