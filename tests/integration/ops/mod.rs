//! Unattended runs (issue 14): logs, a gateway that is down at the start, signals, tasks that
//! break the connection, farm outages, and the interfaces orchestrators use.

mod farm;
mod interfaces;
mod logging;
mod quarantine;
mod signals;
mod startup;

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Run the binary with extra environment variables (blocking; use `spawn_blocking`).
pub fn run_env(args: &[String], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opt-backfill"));
    cmd.args(args).current_dir(cwd).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// As [`run_env`] from an async test.
pub async fn run_env_async(args: Vec<String>, cwd: PathBuf, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_env(&args, &cwd, &e)
    })
    .await
    .unwrap()
}

/// Args as owned strings.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small hours run: `symbols` symbols, `per_symbol` contracts each, on the `fast` preset.
pub fn small_run<'a>(symbols: usize, per_symbol: usize) -> FixtureBuilder<'a> {
    Fixture::builder()
        .symbols(symbols)
        .caches(Caches::sampled(1, 0.2, per_symbol))
        .plan(PlanSpec::new("ops", HOURS))
}
