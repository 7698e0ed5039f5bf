//! Lake benchmark: on a generated scope of many small bar files (one per contract, 8-hour bars,
//! ~128 rows, like a weekend's lake), the query "bars of one symbol and one expiry" three ways:
//! a glob over the per-contract files, the files named by the filtered `_index.parquet`, and the
//! exported Hive dataset; plus index and export throughput (files/s).
//!
//! Queries run in this process with eager polars (every file read, rows counted), and, when a
//! Python with polars and duckdb is found (`$OPT_BACKFILL_PYTHON`, else `.venv-ci/bin/python`),
//! with polars' lazy scan and DuckDB through `benches/lake_query.py`.
//!
//! `cargo bench --bench lake` (env `LAKE_FILES`, default 50000; `LAKE_DIR` keeps the generated
//! lake there and reuses it on the next run; `POLARS_MAX_THREADS=1` is set for one-core figures).

use chrono::{NaiveDate, Utc};
use opt_backfill::bars::BarSize;
use opt_backfill::cache::Right;
use opt_backfill::ib::FetchedBar;
use opt_backfill::lake::{export, index, Scope};
use opt_backfill::store::coverage::FileCoverage;
use opt_backfill::store::parquet::{bar_file_path, scope_dir, SeriesKey, StoredBar};
use opt_backfill::store::provenance::{metadata, Provenance};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

const SYMBOLS: usize = 25;
const EXPIRIES: usize = 10;
const RIGHTS: [Right; 2] = [Right::C, Right::P];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn expiry(i: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 15).unwrap() + chrono::Duration::weeks(4 * i as i64)
}

/// The `i`-th contract of the generated lake.
fn key(i: usize, per_symbol: usize) -> SeriesKey {
    let (sym, rest) = (i / per_symbol, i % per_symbol);
    let strikes = per_symbol.div_ceil(EXPIRIES * 2).max(1);
    let (e, rest) = (rest / (strikes * 2), rest % (strikes * 2));
    let (s, r) = (rest / 2, rest % 2);
    let symbol = format!("S{sym:02}");
    let strike = 50.0 + 5.0 * s as f64;
    let right = RIGHTS[r];
    let exp = expiry(e % EXPIRIES);
    SeriesKey {
        local_symbol: format!(
            "{symbol:<6}{}{}{:08}",
            exp.format("%y%m%d"),
            right.as_str(),
            (strike * 1000.0) as i64
        ),
        symbol: symbol.clone(),
        con_id: 10_000_000 + i as i64,
        expiry: exp,
        strike,
        right,
        bar_size: BarSize::Hours8,
        what: "TRADES".into(),
        trading_class: symbol,
        multiplier: 100.0,
        exchange: "SMART".into(),
        currency: "USD".into(),
    }
}

/// Write the lake (no fsync: generation is not what is measured); two threads.
fn generate(root: &Path, n: usize) {
    let sessions = opt_backfill::calendar::sessions_between(
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
    )
    .unwrap();
    let now = Utc::now();
    let rows: Vec<StoredBar> = sessions
        .iter()
        .map(|s| StoredBar {
            bar: FetchedBar {
                ts: s.open,
                open: 1.0,
                high: 1.2,
                low: 0.9,
                close: 1.1,
                volume: 10.0,
                wap: 1.05,
                count: 3,
            },
            fetched_at: now,
        })
        .collect();
    let cov = FileCoverage::from_bar_times(rows.iter().map(|r| (r.bar.ts, Some(now))));
    let per_symbol = n.div_ceil(SYMBOLS);
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for t in 0..2 {
            let (rows, cov) = (&rows, &cov);
            sc.spawn(move || {
                for i in (t..n).step_by(2) {
                    let k = key(i, per_symbol);
                    let path = bar_file_path(root, "bench", &k);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    let mut df = opt_backfill::store::bar_schema::build_frame(&k, rows).unwrap();
                    let mut kv = vec![(
                        opt_backfill::store::coverage::COVERAGE_KEY.to_string(),
                        cov.encode(),
                    )];
                    kv.extend(metadata(&Provenance::untracked(now), &[]));
                    let f = std::fs::File::create(&path).unwrap();
                    opt_backfill::store::parquet_compat::write_frame(f, &mut df, kv, None).unwrap();
                }
            });
        }
    });
    println!(
        "generated {n} files of {} rows in {:.1} s",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
}

fn count_matching(path: &Path, symbol: &str, exp_days: i32) -> usize {
    let df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    let sym = df.column("symbol").unwrap().str().unwrap().clone();
    let exp = df.column("expiry").unwrap().cast(&DataType::Int32).unwrap();
    let exp = exp.i32().unwrap();
    (0..df.height())
        .filter(|&i| sym.get(i) == Some(symbol) && exp.get(i) == Some(exp_days))
        .count()
}

fn all_parquet(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") && !name.starts_with('_') {
                out.push(p);
            }
        }
    }
    out
}

fn python() -> Option<PathBuf> {
    let py = std::env::var_os("OPT_BACKFILL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-ci/bin/python"));
    let ok = std::process::Command::new(&py)
        .args(["-c", "import polars, duckdb"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

fn main() {
    // One core for polars, so the figures are per core (set before polars starts its pool).
    std::env::set_var("POLARS_MAX_THREADS", "1");
    let n = env_usize("LAKE_FILES", 50_000);
    let (_tmp, root) = match std::env::var_os("LAKE_DIR") {
        Some(d) => (None, PathBuf::from(d)),
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let scope_path = scope_dir(&root, "bench");
    let marker = root.join(format!("generated_{n}"));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&scope_path);
        generate(&root, n);
        std::fs::write(&marker, b"").unwrap();
    }
    let scope = Scope::open(&scope_path).unwrap();
    let _ = std::fs::remove_file(index::index_path(&scope_path));
    let t = Instant::now();
    let st = index::refresh(&scope, None).unwrap();
    let index_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let st2 = index::refresh(&scope, None).unwrap();
    let reindex_secs = t.elapsed().as_secs_f64();
    assert_eq!(st2.read, 0);
    // The former refresh, side by side: every file's columns decoded, one file after another.
    let t = Instant::now();
    for f in all_parquet(&scope_path) {
        opt_backfill::lake::source::read(&f).unwrap();
    }
    let columns_secs = t.elapsed().as_secs_f64();
    let to = root.join("export");
    let _ = std::fs::remove_dir_all(&to);
    let t = Instant::now();
    let ex = export::export(&scope, &to, &mut |_| {}).unwrap();
    let export_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ex2 = export::export(&scope, &to, &mut |_| {}).unwrap();
    let reexport_secs = t.elapsed().as_secs_f64();
    assert_eq!(ex2.written, 0);

    let symbol = "S07";
    let exp = expiry(3);
    let exp_days = opt_backfill::store::bar_schema::epoch_days(exp);
    println!();
    println!(
        "| step ({} files, {} bars) | time | files/s |",
        st.files, st.bars
    );
    println!("|---|---:|---:|");
    println!(
        "| `lake index`, from scratch | {index_secs:.1} s | {:.0} |",
        st.files as f64 / index_secs
    );
    println!(
        "| every file's columns read, one after another (the index before footers) | {columns_secs:.1} s | {:.0} |",
        st.files as f64 / columns_secs
    );
    println!("| `lake index`, nothing changed | {reindex_secs:.2} s | - |");
    println!(
        "| `lake export` ({} partitions), from scratch | {export_secs:.1} s | **{:.0}** |",
        ex.partitions,
        ex.files_read as f64 / export_secs
    );
    println!("| `lake export`, nothing changed | {reexport_secs:.2} s | - |");
    println!();
    println!("Query: bars of {symbol} expiring {exp}, eager polars in Rust, one core:");
    println!();
    println!("| way | files read | rows | time | vs glob |");
    println!("|---|---:|---:|---:|---:|");
    let t = Instant::now();
    let files = all_parquet(&scope_path);
    let glob_rows: usize = files
        .iter()
        .map(|f| count_matching(f, symbol, exp_days))
        .sum();
    let glob = t.elapsed().as_secs_f64();
    println!(
        "| glob over per-contract files | {} | {glob_rows} | {glob:.2} s | 1x |",
        files.len()
    );
    let t = Instant::now();
    let rows = index::load(&scope_path).unwrap().unwrap();
    let picked: Vec<&index::IndexRow> = rows
        .iter()
        .filter(|r| r.symbol == symbol && r.expiry == Some(exp_days))
        .collect();
    let ix_rows: usize = picked
        .iter()
        .map(|r| count_matching(&scope_path.join(&r.path), symbol, exp_days))
        .sum();
    let ix = t.elapsed().as_secs_f64();
    println!(
        "| index, then the files it names | {} | {ix_rows} | {ix:.3} s | {:.0}x |",
        picked.len() + 1,
        glob / ix
    );
    let t = Instant::now();
    let part = to.join(format!(
        "bar_size=8%20hours/what_to_show=TRADES/symbol={symbol}/part-0.parquet"
    ));
    let df = ParquetReader::new(std::fs::File::open(&part).unwrap())
        .finish()
        .unwrap();
    let e = df.column("expiry").unwrap().cast(&DataType::Int32).unwrap();
    let ex_rows = e
        .i32()
        .unwrap()
        .iter()
        .filter(|d| *d == Some(exp_days))
        .count();
    let exs = t.elapsed().as_secs_f64();
    println!(
        "| exported dataset (the symbol's partition) | 1 | {ex_rows} | {exs:.3} s | {:.0}x |",
        glob / exs
    );
    assert_eq!(glob_rows, ix_rows);
    assert_eq!(glob_rows, ex_rows);

    match python() {
        Some(py) => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/lake_query.py");
            let out = std::process::Command::new(py)
                .arg(script)
                .arg(&scope_path)
                .arg(&to)
                .arg(symbol)
                .arg(exp.to_string())
                .env("POLARS_MAX_THREADS", "1")
                .output()
                .unwrap();
            println!();
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        None => println!("\n(no Python with polars and duckdb: lazy polars and DuckDB skipped)"),
    }
}
