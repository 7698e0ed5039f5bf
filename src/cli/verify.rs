//! `opt-backfill verify`: audit a scope's lake against its plan or manifest.

use crate::verify;
use std::collections::HashMap;
use std::path::PathBuf;

/// Arguments of `opt-backfill verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Plan file (TOML/YAML) or manifest (JSON) whose scope to audit.
    pub input: PathBuf,
    /// Print the audit as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the tasks with missing sessions as a rerun CSV (for `execute --rerun`).
    #[arg(long)]
    pub rerun: Option<PathBuf>,
    /// Show every (phase, bar size, symbol), not only those with missing sessions.
    #[arg(long)]
    pub all: bool,
    /// Shard count (with --batch-index): audit one shard of a plan.
    #[arg(long, requires = "batch_index")]
    pub batch_count: Option<u32>,
    /// Shard index.
    #[arg(long, requires = "batch_count")]
    pub batch_index: Option<u32>,
    /// Audit as if it were this instant (RFC 3339): resolves `end = "last-session"` and which
    /// provisional sessions are due.
    #[arg(long)]
    pub now: Option<String>,
}

/// Run `verify`: exit 0 when complete, 1 when anything is missing or a file has a problem, 2 on
/// bad input.
pub fn run(args: VerifyArgs) -> i32 {
    let bad = |msg: String| {
        eprintln!("error: {msg}");
        crate::exit::BAD_INPUT
    };
    let now = match super::common::pinned_now(args.now.as_deref()) {
        Ok(n) => n,
        Err(e) => return bad(e),
    };
    let manifest = match super::common::load_manifest(
        &args.input,
        now,
        args.batch_count.zip(args.batch_index),
    ) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let scope_logs = PathBuf::from(&manifest.plan.state_root)
        .join("run_logs")
        .join(&manifest.plan.scope);
    let outputs: HashMap<String, String> = if scope_logs.exists() {
        match crate::report::load(&[scope_logs]) {
            Ok(l) => l
                .records
                .into_iter()
                .filter(|r| r.status == "OK")
                .filter_map(|r| r.output_path.map(|p| (r.task_id, p)))
                .collect(),
            Err(e) => return bad(e.to_string()),
        }
    } else {
        HashMap::new()
    };
    let audit = match verify::audit(&manifest, now.unwrap_or_else(chrono::Utc::now), &outputs) {
        Ok(a) => a,
        Err(e) => return bad(e.to_string()),
    };
    if args.json {
        match serde_json::to_string_pretty(&serde_json::json!({
            "scope": manifest.plan.scope,
            "totals": audit.totals(),
            "complete": audit.is_complete(),
            "groups": audit.groups,
            "missing": audit.missing,
            "unselected": audit.unselected,
            "problems": audit.problems,
        })) {
            Ok(s) => println!("{s}"),
            Err(e) => return bad(e.to_string()),
        }
    } else {
        print!("{}", verify::format_table(&audit, args.all));
    }
    if let Some(path) = &args.rerun {
        if let Err(e) =
            crate::store::atomic::write_bytes(path, verify::rerun_csv(&audit).as_bytes())
        {
            return bad(format!("{}: {e}", path.display()));
        }
        eprintln!("wrote {}", path.display());
    }
    if audit.is_complete() {
        crate::exit::OK
    } else {
        crate::exit::TASK_ERRORS
    }
}
