//! `opt-backfill plan FILE`: validate and compile a plan, print what it will send, optionally
//! compare with an earlier manifest, and write the manifest (unless `--dry-run`).

use crate::compile::{self, dryrun, CompileOptions, Manifest};
use crate::exit;
use crate::plan::Batching;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// Environment variable standing in for `--now` (tests, reproducible CI runs).
pub const NOW_ENV: &str = "OPT_BACKFILL_NOW";

/// Arguments of `opt-backfill plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The plan file (`.toml`, `.yaml` or `.yml`).
    pub file: PathBuf,
    /// Print the report only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where to write the manifest (default
    /// `<state-root>/manifests/<scope>/<name>.manifest.json`).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Compare with an earlier manifest and print what is added, removed and changed.
    #[arg(long, value_name = "OLD_MANIFEST")]
    pub diff: Option<PathBuf>,
    /// Also print requests per symbol.
    #[arg(long)]
    pub by_symbol: bool,
    /// Number of shards (overrides the plan's `[batching]`).
    #[arg(long, value_name = "N")]
    pub batch_count: Option<u32>,
    /// This run's shard, `0..N` (overrides the plan's `[batching]`).
    #[arg(long, value_name = "I")]
    pub batch_index: Option<u32>,
    /// The current time (RFC 3339) used to resolve `end = "last-session"`; also read from
    /// `OPT_BACKFILL_NOW`. Default: the clock.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Request rate of the run-time estimate: requests per second, or a named rate:
    /// `default` (10), `realistic` or `throttled` (the executor's sustained rates measured
    /// against the simulator's two service models; a real gateway likely lies between).
    #[arg(long, value_name = "REQ_PER_S|NAME", default_value = "default")]
    pub rate: dryrun::RunRate,
    /// Print one JSON document (table, diff, totals; schema in
    /// `schemas/plan_report.schema.json`) on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// With --diff: exit 5 when the new manifest differs from the old one (0 when it does
    /// not), so a script can tell "changed" from "same".
    #[arg(long, requires = "diff")]
    pub exit_code_on_diff: bool,
}

/// Run `plan`; returns the exit code.
pub fn run(args: PlanArgs) -> i32 {
    let plan = match crate::plan::load(&args.file) {
        Ok(p) => p,
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!(
                "error: the plan has {} error{}; nothing was compiled",
                errs.len(),
                if errs.len() == 1 { "" } else { "s" }
            );
            return exit::BAD_INPUT;
        }
    };

    let now = match args.now.clone().or_else(|| std::env::var(NOW_ENV).ok()) {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                eprintln!("error: --now / {NOW_ENV} `{s}` is not an RFC 3339 time: {e}");
                return exit::BAD_INPUT;
            }
        },
    };
    let batching = match (args.batch_count, args.batch_index) {
        (None, None) => None,
        (c, i) => Some(Batching {
            count: c.unwrap_or(plan.batching.count),
            index: i.unwrap_or(plan.batching.index),
        }),
    };
    let opts = CompileOptions {
        now,
        batching,
        work_dir: None,
    };
    let compiled = match compile::compile(&plan, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: the plan could not be compiled; nothing was written");
            return exit::BAD_INPUT;
        }
    };
    for note in &compiled.notes {
        eprintln!("{note}");
    }
    let m = &compiled.manifest;
    if !args.json {
        print!("{}", dryrun::render(m, args.by_symbol, args.rate));
    }

    let mut diff = None;
    if let Some(old_path) = &args.diff {
        match Manifest::read_any_version(old_path) {
            Ok(old) => {
                let d = compile::diff::diff(&old, m);
                if !args.json {
                    println!();
                    println!("changes since {}:", old_path.display());
                    print!("{}", compile::diff::render(&d));
                }
                diff = Some(d);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    let ok = if args.exit_code_on_diff && diff.as_ref().is_some_and(|d| !d.is_empty()) {
        exit::DIFF_NOT_EMPTY
    } else {
        exit::OK
    };

    let mut written = None;
    if args.dry_run {
        if !args.json {
            println!("\ndry run: nothing written");
        }
    } else {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| compile::default_manifest_path(m));
        match m.write_atomic(&out) {
            Ok(()) => {
                if !args.json {
                    println!("\nmanifest written: {}", out.display());
                }
                written = Some(out.display().to_string());
            }
            Err(e) => {
                eprintln!("error: cannot write the manifest: {e}");
                return exit::TASK_ERRORS;
            }
        }
    }
    if args.json {
        let against = args.diff.as_ref().map(|p| p.display().to_string());
        let d = against.as_deref().zip(diff.as_ref());
        let doc = compile::plan_json::report(m, args.by_symbol, args.rate.req_per_s, d, written);
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::TASK_ERRORS;
            }
        }
    }
    ok
}
