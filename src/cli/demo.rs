//! `opt-backfill demo`: the whole job in one command against an in-process simulated gateway:
//! discover ten symbols, dry-run `plans/demo.toml`, execute it, report, rerun CSV.
//!
//! Every step runs the same code paths as the subcommands (it parses their command lines), in a
//! directory of its own, so the user's `data_test/` and `state/` are left alone.

use super::{run as run_cli, Cli};
use crate::sim::{start, Scenario};
use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

/// The plan the demo runs (also shipped as `plans/demo.toml`).
pub const DEMO_PLAN: &str = include_str!("../../plans/demo.toml");

/// Arguments of `opt-backfill demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's caches, data and state (created; relative paths resolve here).
    #[arg(long, default_value = "opt-backfill-demo")]
    pub dir: PathBuf,
    /// Simulator preset: `realistic` (IB-like latencies, about two minutes) or `fast`.
    #[arg(long, value_enum, default_value_t = crate::sim::scenario::Preset::Realistic)]
    pub preset: crate::sim::scenario::Preset,
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn step(title: &str) {
    eprintln!("\n=== {title} ===");
}

fn sub(args: &[&str]) -> i32 {
    let mut argv = vec!["opt-backfill"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(&argv) {
        Ok(cli) => run_cli(cli),
        Err(e) => {
            eprintln!("demo: internal command line rejected: {e}");
            crate::exit::TASK_ERRORS
        }
    }
}

/// Run the demo.
pub fn run(args: DemoArgs) -> i32 {
    let t0 = Instant::now();
    let (scenario, session, dir) = match prepare(&args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return crate::exit::TASK_ERRORS;
        }
    };
    let sim = match rt.block_on(start(scenario, "127.0.0.1:0")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the simulated gateway: {e}");
            return crate::exit::TASK_ERRORS;
        }
    };
    let gateway = sim.addr().to_string();
    eprintln!(
        "simulated IB Gateway ({} preset) listening on {gateway}; demo directory {}",
        args.preset.as_str(),
        dir.display()
    );
    let symbols = match enter_demo_dir(&dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let date = session.date.to_string();
    let exec_code = match walk_through(&gateway, &date, &symbols) {
        Ok(code) => code,
        Err(code) => return code,
    };
    let counters = rt.block_on(sim.stop());
    print_summary(&counters, &dir, &date, exec_code, t0);
    // The page's path on stdout, for scripts (`xdg-open "$(opt-backfill demo)"`).
    println!("{}", dir.join("report.html").display());
    exec_code
}

/// The simulator's scenario (today's market, wall clock), the session the demo plans for and
/// the demo directory (created, canonical); `Err` is the exit code after a message.
fn prepare(args: &DemoArgs) -> Result<(Scenario, crate::calendar::Session, PathBuf), i32> {
    let mut scenario = match Scenario::preset(args.preset.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --preset: {e}");
            return Err(crate::exit::BAD_INPUT);
        }
    };
    // The simulated market's "today" is the real one, so `end = "last-session"` means the same
    // session to the plan compiler and to the simulator.
    let now = chrono::Utc::now();
    scenario.today = crate::calendar::to_ny(now).date_naive();
    scenario.clock = crate::sim::SimClock::Wall;
    scenario.seed = args.seed;
    let session = match crate::calendar::last_complete_session(now) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(crate::exit::BAD_INPUT);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("error: {}: {e}", args.dir.display());
        return Err(crate::exit::BAD_INPUT);
    }
    let dir = match args.dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}: {e}", args.dir.display());
            return Err(crate::exit::BAD_INPUT);
        }
    };
    Ok((scenario, session, dir))
}

/// Move into the demo directory and write the demo plan there; returns the plan's symbols.
fn enter_demo_dir(dir: &std::path::Path) -> Result<String, i32> {
    if let Err(e) = std::env::set_current_dir(dir) {
        eprintln!("error: {}: {e}", dir.display());
        return Err(crate::exit::BAD_INPUT);
    }
    if let Err(e) =
        crate::store::atomic::write_bytes(std::path::Path::new("demo.toml"), DEMO_PLAN.as_bytes())
    {
        eprintln!("error: demo.toml: {e}");
        return Err(crate::exit::TASK_ERRORS);
    }
    match crate::plan::load(std::path::Path::new("demo.toml")) {
        Ok(p) => Ok(p.universe.symbols.join(",")),
        Err(e) => {
            eprintln!("{e}");
            Err(crate::exit::BAD_INPUT)
        }
    }
}

/// The five steps, each through the subcommand's own command line: discover, dry-run, execute,
/// report, rerun. Returns execute's exit code; `Err` when discover or the dry-run failed.
fn walk_through(gateway: &str, date: &str, symbols: &str) -> Result<i32, i32> {
    step("1/5 discover: option chains (reqSecDefOptParams, SMART) and contract qualification");
    let code = sub(&[
        "discover",
        "--symbols",
        symbols,
        "--date",
        date,
        "--max-expiry-days",
        "30",
        "--strike-band",
        "4",
        "--fetch-close",
        "--gateway",
        gateway,
    ]);
    if code != 0 {
        eprintln!("demo: discover exited {code}");
        return Err(code);
    }

    step("2/5 plan --dry-run: the requests the plan will send");
    let code = sub(&["plan", "demo.toml", "--dry-run", "--rate", "15"]);
    if code != 0 {
        return Err(code);
    }

    step("3/5 execute: hours phase, then near-ATM minutes");
    let exec_code = sub(&[
        "execute",
        "demo.toml",
        "--gateway",
        gateway,
        "--run-id",
        "demo",
    ]);

    step("4/5 report (and the HTML page)");
    let _ = sub(&[
        "report",
        "state/run_logs/demo/demo",
        "--html",
        "report.html",
    ]);

    step("5/5 rerun universe (tasks that did not finish)");
    let _ = sub(&[
        "rerun",
        "state/run_logs/demo/demo",
        "--contracts",
        "-o",
        "state/rerun_demo.csv",
    ]);
    Ok(exec_code)
}

/// What the simulator served, how long the demo took, and where its files are.
fn print_summary(
    counters: &crate::sim::CountersSnapshot,
    dir: &std::path::Path,
    date: &str,
    exec_code: i32,
    t0: Instant,
) {
    eprintln!(
        "\nsimulator: {} historical requests, {} bars served, {} pacing violations",
        counters
            .requests
            .get("historical_data")
            .copied()
            .unwrap_or(0),
        counters.bars_served,
        counters.pacing_violations
    );
    eprintln!(
        "demo finished in {:.0} s (execute exit code {exec_code})",
        t0.elapsed().as_secs_f64()
    );
    eprintln!("where things are (under {}):", dir.display());
    eprintln!("  contracts caches   state/contracts_cache/{{SYMBOL}}_{date}.json");
    eprintln!("  bars (Parquet)     data_test/raw/ib/historical_bars_demo/{{SYMBOL}}/{{conId}}/TRADES/{{8_hours,30_mins}}.parquet");
    eprintln!("  summaries (JSONL)  state/run_logs/demo/demo/summary_{{phase}}_0of1.jsonl");
    eprintln!("  rerun universe     state/rerun_demo.csv");
    eprintln!("  HTML report        report.html (open it in a browser; it loads nothing)");
    eprintln!("query them, e.g. with Python polars:");
    eprintln!(
        "  python -c \"import polars as pl; print(pl.read_parquet('{}/data_test/raw/ib/historical_bars_demo/**/8_hours.parquet').group_by('symbol').len())\"",
        dir.display()
    );
}
