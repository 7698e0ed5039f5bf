//! The lake as its readers see it: bar files read by pyarrow, DuckDB and polars; `lake index`
//! and `lake export` checked against the bar files they come from.

mod export;
mod index;
mod readers;

use crate::support::*;
use opt_backfill::sim::SimHandle;
use std::path::{Path, PathBuf};

/// A scope written by a real `execute` (hours phase, `n` symbols) against the simulator.
#[allow(dead_code)] // `ws` and `sim` keep the run's directory and gateway alive
pub struct Lake {
    /// The workspace (keeps the directory alive).
    pub ws: Workspace,
    /// The scope directory (`data_test/raw/ib/historical_bars_test`).
    pub scope: PathBuf,
    /// The simulator, kept for further runs.
    pub sim: SimHandle,
}

/// Run `execute` for the first `n` symbols of the simulated market, two contracts each.
pub async fn lake(n: usize) -> Lake {
    let fx = Fixture::builder()
        .symbols(n)
        .caches(Caches::near(2, 0.05))
        .plan(PlanSpec::new("lake", HOURS))
        .build()
        .await;
    ok(&fx.execute(&[]).await);
    let Fixture { sim, ws, .. } = fx;
    let scope = ws.root.join("data_test/raw/ib/historical_bars_test");
    Lake { ws, scope, sim }
}

/// Stdout of a command that must have exited 0.
pub fn stdout_of(out: &std::process::Output) -> String {
    ok(out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The interpreter with pyarrow, duckdb and polars, or `None` (reason printed) to skip:
/// `$OPT_BACKFILL_PYTHON` (then the modules are required), else `.venv-ci/bin/python` (which
/// `.ci/run` sets up).
pub fn python_readers() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (py, explicit) = match std::env::var_os("OPT_BACKFILL_PYTHON") {
        Some(p) => (PathBuf::from(p), true),
        None => (root.join(".venv-ci/bin/python"), false),
    };
    let ok = py.exists()
        && std::process::Command::new(&py)
            .args(["-c", "import pyarrow, duckdb, polars"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if !ok {
        assert!(
            !explicit,
            "OPT_BACKFILL_PYTHON={} cannot import pyarrow, duckdb, polars",
            py.display()
        );
        println!(
            "SKIPPED lake readers: {} cannot import pyarrow, duckdb and polars (run .ci/run, \
             which installs them in .venv-ci, or set OPT_BACKFILL_PYTHON)",
            py.display()
        );
        return None;
    }
    Some(py)
}
