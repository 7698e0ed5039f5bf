//! Helpers for the integration tests: the [`Fixture`] builder (a simulated gateway in-process,
//! a workspace, contracts caches written from its market, a plan file), and the real binary run
//! as a child process.

mod caches;
mod fixture;
mod workspace;

pub use caches::*;
pub use fixture::*;
pub use workspace::*;

use chrono::NaiveDate;
use opt_backfill::sim::{start, Scenario, SimHandle};
use opt_backfill::store::summary::SummaryRecord;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The session the tests backfill up to (a half day: Black Friday 2026).
pub fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

/// The simulator's "today": the Monday after.
pub fn sim_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
}

/// Start a simulator from a preset with the tests' date, tweaked by `f`.
pub async fn sim(preset: &str, f: impl FnOnce(&mut Scenario)) -> SimHandle {
    let mut sc = Scenario::preset(preset).unwrap();
    sc.today = sim_today();
    f(&mut sc);
    start(sc, "127.0.0.1:0").await.unwrap()
}

/// Run the real binary (blocking; call from `spawn_blocking` in async tests).
pub fn run_cli(args: &[&str], cwd: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Run the binary from an async test.
pub async fn run_cli_async(args: Vec<String>, cwd: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&a, &cwd)
    })
    .await
    .unwrap()
}

/// The hours phase as plan text.
pub const HOURS: &str = r#"[[phase]]
name = "hours"
bars = [{ size = "8 hours", duration = "6 M" }]
"#;

/// The latest summary record per task id (a task re-run later supersedes its earlier record).
pub fn latest(records: &[SummaryRecord]) -> std::collections::BTreeMap<String, SummaryRecord> {
    let mut m = std::collections::BTreeMap::new();
    for r in records {
        match m.get(&r.task_id) {
            Some(SummaryRecord { finished_at, .. }) if *finished_at > r.finished_at => {}
            _ => {
                m.insert(r.task_id.clone(), r.clone());
            }
        }
    }
    m
}

/// Assert a command exited 0 (showing its stderr if not); returns the stderr.
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

/// Every bar file under `dir`, sorted (not the scope's `_index.parquet` or other `_` files).
pub fn bar_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('_'))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
