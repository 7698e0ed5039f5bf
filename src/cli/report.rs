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
    /// Also write the HTML report (timeline, statuses, coverage heatmap) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Plan (or manifest) for the coverage heatmap (default: the one the run recorded).
    #[arg(long, requires = "html")]
    pub plan: Option<PathBuf>,
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
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true)]
    pub status: Vec<crate::ib::OutcomeClass>,
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
    if let Some(path) = &args.html {
        if let Err(code) = write_html(&args, path) {
            return code;
        }
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
            let first = loaded
                .first_bad_line
                .as_ref()
                .map(|b| format!("; the first: {b}"))
                .unwrap_or_default();
            println!(
                "({} unreadable summary lines skipped, e.g. torn by a killed run{first})",
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
    let statuses: BTreeSet<crate::ib::OutcomeClass> = args.status.iter().copied().collect();
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

/// `report --html`: the page for the run directories, with the coverage heatmap of the plan
/// (given, or recorded by the run) audited as the run saw the clock.
fn write_html(args: &ReportArgs, path: &std::path::Path) -> Result<(), i32> {
    let (timelines, _) = crate::report::page::read_timelines(&args.paths);
    let recorded = crate::report::page::recorded_plan(&timelines);
    let plan = args
        .plan
        .clone()
        .or_else(|| recorded.as_ref().map(|r| r.0.clone()));
    let now = recorded.and_then(|r| r.1);
    // One shard's runs audit that shard; anything else the whole scope.
    let shards: BTreeSet<(u32, u32)> = timelines
        .iter()
        .flat_map(|(_, lines)| lines)
        .filter_map(|l| match l {
            crate::exec::timeline::TimelineLine::Start {
                batch_index,
                batch_count,
                ..
            } => Some((*batch_count, *batch_index)),
            _ => None,
        })
        .collect();
    let shard = match shards.iter().collect::<Vec<_>>().as_slice() {
        [one] if one.0 > 1 => Some(**one),
        _ => None,
    };
    let audited = match &plan {
        Some(p) if p.exists() => {
            match super::verify::audit_input(p, now, shard.filter(|_| !is_manifest(p))) {
                Ok(x) => Some(x),
                Err(code) if args.plan.is_some() => return Err(code),
                Err(_) => {
                    eprintln!("warning: {}: no coverage heatmap", p.display());
                    None
                }
            }
        }
        Some(p) if args.plan.is_some() => {
            eprintln!("error: --plan {}: no such file", p.display());
            return Err(crate::exit::BAD_INPUT);
        }
        _ => None,
    };
    let audit = audited.as_ref().map(|(m, a)| (a, m.plan.scope.as_str()));
    match crate::report::html::write_report(path, &args.paths, audit, plan.as_deref()) {
        Ok(_) => {
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(crate::exit::BAD_INPUT)
        }
    }
}

fn is_manifest(p: &std::path::Path) -> bool {
    p.extension().is_some_and(|e| e == "json")
}
