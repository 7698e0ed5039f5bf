//! Plan files, compiler, manifest and the `plan` command, over `examples/fixtures`.

mod cli;
mod compile;
mod inputs;
mod invalid;
mod observed_run;
mod schemas;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root: fixtures use paths relative to it.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the built binary from the repository root.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(args)
        .current_dir(repo())
        .env_remove("OPT_BACKFILL_NOW")
        .output()
        .expect("run opt-backfill")
}

/// Stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Load a fixture plan through the library (cargo runs tests from the repository root, so the
/// fixtures' relative paths resolve).
pub fn load(rel: &str) -> opt_backfill::plan::ValidatedPlan {
    opt_backfill::plan::load(Path::new(rel)).unwrap_or_else(|e| panic!("{e}"))
}

/// Compile options that resolve the fixture paths against the repository root.
pub fn opts() -> opt_backfill::compile::CompileOptions {
    opt_backfill::compile::CompileOptions {
        now: None,
        batching: None,
        work_dir: Some(repo()),
    }
}
