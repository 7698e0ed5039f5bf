//! A lake you can trust: after plan edits, faults and repairs, the lake equals a clean single run
//! of the final plan into an empty directory, bar by bar, and `verify` finds nothing missing.

use crate::support::*;
use opt_backfill::sim::Market;
use opt_backfill::store::parquet::read_bars;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod edits;
mod limits;
mod sequences;

/// Every bar of every file of a lake: relative path -> (ts ms, open, high, low, close, volume,
/// wap, count) rows, as the bytes would be compared (f64 bits).
pub type Lake = BTreeMap<String, Vec<(i64, [u64; 6], i32)>>;

/// Read every bar file under `root`'s scope directory (not the scope's `_index.parquet`).
pub fn read_lake(root: &Path) -> Lake {
    let base = root.join("data_test/raw/ib/historical_bars_test");
    bar_files(&base)
        .into_iter()
        .map(|p| {
            let rows = read_bars(&p).unwrap().unwrap();
            let rel = p.strip_prefix(&base).unwrap().display().to_string();
            let bars = rows
                .iter()
                .map(|r| {
                    let b = r.bar;
                    (
                        b.ts.timestamp_millis(),
                        [
                            b.open.to_bits(),
                            b.high.to_bits(),
                            b.low.to_bits(),
                            b.close.to_bits(),
                            b.volume.to_bits(),
                            b.wap.to_bits(),
                        ],
                        b.count,
                    )
                })
                .collect();
            (rel, bars)
        })
        .collect()
}

/// Assert two lakes hold the same files with the same bars, naming the first difference.
pub fn assert_same_lake(got: &Lake, want: &Lake) {
    let got_files: Vec<&String> = got.keys().collect();
    let want_files: Vec<&String> = want.keys().collect();
    assert_eq!(got_files, want_files, "file lists differ");
    for (f, rows) in want {
        let g = &got[f];
        if g != rows {
            let gts: Vec<i64> = g.iter().map(|r| r.0).collect();
            let wts: Vec<i64> = rows.iter().map(|r| r.0).collect();
            panic!(
                "{f}: {} rows vs {} in the clean run\n got ts {gts:?}\nwant ts {wts:?}",
                g.len(),
                rows.len()
            );
        }
    }
    assert!(
        !want.is_empty(),
        "the clean lake is empty: nothing was compared"
    );
}

/// A plan with an explicit `[limits]` section (replacing the workspace default).
pub fn plan_with_limits(
    ws: &Workspace,
    name: &str,
    symbols: &[String],
    port: u16,
    limits: &str,
    phases: &str,
) -> PathBuf {
    ws.write_plan(&PlanSpec::new(name, phases).limits(limits), symbols, port)
}

/// Run `execute` on a plan; returns the exit code and stderr.
pub async fn execute(ws: &Workspace, plan: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = ws.execute(plan, extra).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `verify` on a plan; returns the exit code and stdout.
pub async fn verify(ws: &Workspace, plan: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let plan = plan.display().to_string();
    let mut args = vec!["verify", plan.as_str()];
    args.extend_from_slice(extra);
    let out = ws.cli(&args).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Caches of contracts listed long before the end (so six one-month windows all matter): the
/// first expiries more than four months out, a few strikes each.
pub const LONG_LISTED: Caches = Caches {
    expiries: 8,
    band: 0.15,
    per_symbol: 6,
};

/// A clean run of `phases` (with `limits`) into a fresh workspace against `port`: the oracle.
pub async fn clean_lake(
    market: &Market,
    syms: &[String],
    port: u16,
    limits: &str,
    phases: &str,
) -> Lake {
    let ws = Workspace::new();
    ws.write_caches(market, syms, LONG_LISTED);
    let plan = plan_with_limits(&ws, "clean", syms, port, limits, phases);
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "clean run: {err}");
    read_lake(&ws.root)
}
