//! Helpers for the executor tests: a simulated gateway in-process, contracts caches written from
//! its market, plan files, and the real binary run as a child process.

use chrono::NaiveDate;
use opt_backfill::cache::{ContractsCache, OptionContract, Underlying, CACHE_FORMAT_VERSION};
use opt_backfill::sim::{start, Market, Scenario, SimHandle};
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

/// Write caches for `symbols` from the simulator's market: the contracts of the first
/// `expiries` expiries after the end with strikes within `band` of the close.
pub fn write_caches(
    market: &Market,
    symbols: &[String],
    dir: &Path,
    expiries: usize,
    band: f64,
) -> usize {
    write_caches_sampled(market, symbols, dir, expiries, band, usize::MAX)
}

/// As [`write_caches`], keeping at most `per_symbol` contracts spread evenly over the strikes
/// (so a wide band still gives a small, far-reaching sample).
pub fn write_caches_sampled(
    market: &Market,
    symbols: &[String],
    dir: &Path,
    expiries: usize,
    band: f64,
    per_symbol: usize,
) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for sym in symbols {
        let u = market
            .underlying(sym)
            .unwrap_or_else(|| panic!("sim has no {sym}"));
        let close = market.close(sym, end_date()).unwrap();
        let all = market.existing_contracts(sym);
        let mut exps: Vec<NaiveDate> = all
            .iter()
            .map(|c| c.expiry)
            .filter(|e| *e > end_date())
            .collect();
        exps.sort();
        exps.dedup();
        exps.truncate(expiries);
        let contracts: Vec<_> = all
            .iter()
            .filter(|c| exps.contains(&c.expiry) && (c.strike - close).abs() <= band * close)
            .collect();
        let stride = contracts.len().div_ceil(per_symbol.max(1)).max(1);
        let contracts: Vec<OptionContract> = contracts
            .iter()
            .step_by(stride)
            .map(|c| OptionContract {
                con_id: c.con_id,
                local_symbol: c.local_symbol.clone(),
                trading_class: c.trading_class.clone(),
                expiry: c.expiry,
                strike: c.strike,
                right: c.right,
                multiplier: c.multiplier,
                exchange: c.exchange.clone(),
                currency: c.currency.clone(),
            })
            .collect();
        n += contracts.len();
        let mut cache = ContractsCache {
            format_version: CACHE_FORMAT_VERSION,
            as_of: end_date(),
            underlying: Underlying {
                symbol: sym.clone(),
                con_id: u.con_id,
                sec_type: Default::default(),
                currency: "USD".into(),
                primary_exchange: None,
                reference_close: Some(close),
                reference_close_date: Some(end_date()),
                reference_close_source: Some(opt_backfill::cache::CloseSource::Cache),
            },
            contracts,
            class_hours: Vec::new(),
        };
        cache.sort();
        let path = dir.join(format!("{sym}_{}.json", end_date()));
        std::fs::write(path, serde_json::to_vec_pretty(&cache).unwrap()).unwrap();
    }
    n
}

/// A test workspace: plan, caches, outputs and state under one temp dir.
pub struct Workspace {
    /// Keeps the directory alive.
    pub _dir: tempfile::TempDir,
    /// Root.
    pub root: PathBuf,
}

impl Workspace {
    /// New empty workspace.
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Workspace { _dir: dir, root }
    }

    /// Caches directory.
    pub fn caches(&self) -> PathBuf {
        self.root.join("state/contracts_cache")
    }

    /// Write a plan with the given symbols, end and phases (TOML `[[phase]]` text).
    pub fn plan(
        &self,
        name: &str,
        symbols: &[String],
        end: NaiveDate,
        port: u16,
        phases: &str,
    ) -> PathBuf {
        let syms: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
        let text = format!(
            r#"name = "{name}"
scope = "test"
output-root = "{out}"
state-root = "{state}"
end = "{end}"

[universe]
symbols = [{syms}]
contracts-cache = "{caches}"

[gateway]
host = "127.0.0.1"
port = {port}
client-id = 7
connect-timeout = "5s"
request-timeout = "5s"
reconnect-for = "90s"
max-attempts = 6

[limits]
"8 hours" = "6 M"

{phases}
"#,
            out = self.root.join("data_test").display(),
            state = self.root.join("state").display(),
            caches = self.caches().display(),
            syms = syms.join(", "),
        );
        let p = self.root.join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    /// All summary records written so far.
    pub fn summaries(&self) -> Vec<SummaryRecord> {
        let mut out = Vec::new();
        let root = self.root.join("state/run_logs/test");
        let Ok(runs) = std::fs::read_dir(&root) else {
            return out;
        };
        for run in runs.flatten() {
            if !run.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(run.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("summary_") {
                    for line in std::fs::read_to_string(f.path()).unwrap().lines() {
                        if let Ok(r) = serde_json::from_str::<SummaryRecord>(line) {
                            out.push(r);
                        }
                    }
                }
            }
        }
        out
    }
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
