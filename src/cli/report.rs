//! `opt-backfill report` and `opt-backfill rerun`: read summaries back.

use crate::report::{format_report, load, report_rows, rerun_csv};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Arguments of `opt-backfill report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run directories or summary files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// One table row per symbol as well.
    #[arg(long)]
    pub by_symbol: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `opt-backfill rerun`.
#[derive(Debug, clap::Args)]
pub struct RerunArgs {
    /// Run directories or summary files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Statuses to re-run (comma-separated, e.g. `TIMEOUT,EMPTY`). Default: every status
    /// but OK, EMPTY and UP_TO_DATE (errors of every class and SKIPPED). EMPTY tasks are
    /// finished for resume: re-running them needs `execute --no-resume` as well.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only this phase.
    #[arg(long)]
    pub phase: Option<String>,
    /// One row per task (symbol, conId, phase, bar size, last error) instead of per symbol.
    #[arg(long)]
    pub contracts: bool,
    /// Output CSV.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

/// Print the report.
pub fn run_report(args: ReportArgs) -> i32 {
    let loaded = match load(&args.paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::BAD_INPUT;
        }
    };
    if loaded.files.is_empty() {
        eprintln!("error: no summary_*.jsonl under {:?}", args.paths);
        return crate::exit::BAD_INPUT;
    }
    let mut rows = report_rows(&loaded.records, false);
    if args.by_symbol {
        rows.extend(report_rows(&loaded.records, true));
    }
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::TASK_ERRORS;
            }
        }
    } else {
        print!("{}", format_report(&report_rows(&loaded.records, false)));
        if args.by_symbol {
            println!();
            print!("{}", format_report(&report_rows(&loaded.records, true)));
        }
        let forms = crate::report::form_rates(&loaded.records);
        if !forms.is_empty() {
            println!();
            print!("{}", crate::report::format_form_rates(&forms));
        }
        if loaded.bad_lines > 0 {
            println!(
                "({} unreadable summary lines skipped, e.g. torn by a killed run)",
                loaded.bad_lines
            );
        }
    }
    crate::exit::OK
}

/// Write the rerun CSV.
pub fn run_rerun(args: RerunArgs) -> i32 {
    let loaded = match load(&args.paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::BAD_INPUT;
        }
    };
    let statuses: BTreeSet<String> = args
        .status
        .iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .collect();
    let csv = rerun_csv(
        &loaded.records,
        &statuses,
        args.phase.as_deref(),
        args.contracts,
    );
    let rows = csv.lines().count().saturating_sub(1);
    if let Err(e) = crate::store::atomic::write_bytes(&args.out, csv.as_bytes()) {
        eprintln!("error: {}: {e}", args.out.display());
        return crate::exit::TASK_ERRORS;
    }
    eprintln!("wrote {rows} rows to {}", args.out.display());
    crate::exit::OK
}
