//! `opt-backfill execute`: run a plan (compiled first) or a manifest against the gateway.

use super::common::{ctrl_c_signal, duration_flag, parse_gateway};
use crate::compile::manifest::Manifest;
use crate::exec::closes::{read_snapshot, Snapshot};
use crate::exec::prepare;
use crate::exec::retry::RetryPolicy;
use crate::exec::small_bars::compress;
use crate::exec::{
    execute, filter_resumed, lock_scope, ConsoleReporter, ExecConfig, GovernorConfig,
};
use crate::ib::GatewayConfig;
use chrono::Utc;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `opt-backfill execute`.
#[derive(Debug, clap::Args)]
pub struct ExecuteArgs {
    /// A plan file (TOML/YAML, compiled first) or a manifest (`.json`, from `plan --out`).
    pub input: PathBuf,
    /// Run only these phases (repeatable).
    #[arg(long)]
    pub phase: Vec<String>,
    /// Number of shards (overrides the plan; plans only).
    #[arg(long, requires = "batch_index")]
    pub batch_count: Option<u32>,
    /// This shard, 0-based (overrides the plan; plans only).
    #[arg(long, requires = "batch_count")]
    pub batch_index: Option<u32>,
    /// Skip tasks finished by earlier runs (the default).
    #[arg(long, overrides_with = "no_resume")]
    pub resume: bool,
    /// Ignore earlier summaries and fetch every task.
    #[arg(long)]
    pub no_resume: bool,
    /// Merge into existing files and request only missing spans (the default).
    #[arg(long, overrides_with = "no_incremental")]
    pub incremental: bool,
    /// Skip (with --resume) or overwrite (with --no-resume) existing files instead of merging.
    #[arg(long)]
    pub no_incremental: bool,
    /// Gateway HOST:PORT (overrides the plan).
    #[arg(long, env = "OPT_BACKFILL_GATEWAY")]
    pub gateway: Option<String>,
    /// API client id (overrides the plan).
    #[arg(long, env = "OPT_BACKFILL_CLIENT_ID")]
    pub client_id: Option<i32>,
    /// State root: summaries, run logs, locks, selections (overrides the plan).
    #[arg(long, env = "OPT_BACKFILL_STATE_ROOT")]
    pub state_root: Option<PathBuf>,
    /// Output root of the Parquet files (overrides the plan).
    #[arg(long, env = "OPT_BACKFILL_OUTPUT_ROOT")]
    pub output_root: Option<PathBuf>,
    /// How long to keep trying to reach the gateway, at the start and after a drop, e.g. `30m`
    /// (overrides the plan's `reconnect-for`).
    #[arg(long)]
    pub reconnect_for: Option<String>,
    /// Per-request timeout, e.g. `60s` (overrides the plan).
    #[arg(long)]
    pub request_timeout: Option<String>,
    /// Restrict the run to a rerun universe CSV (from `opt-backfill rerun`).
    #[arg(long)]
    pub rerun: Option<PathBuf>,
    /// Close snapshot CSV (`symbol,date,close`) for near-ATM phases (default: the plan's).
    #[arg(long)]
    pub closes: Option<PathBuf>,
    /// Fetch the underlying's close from the gateway when no local close is known.
    #[arg(long, overrides_with = "skip_underlying_close")]
    pub no_skip_underlying_close: bool,
    /// Do not ask the gateway for underlying closes: symbols without a local close are SKIPPED
    /// with reason NO_REFERENCE (the default).
    #[arg(long)]
    pub skip_underlying_close: bool,
    /// Run id (default: the UTC start time).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Run as if it were this instant (RFC 3339): resolves `end = "last-session"` and decides
    /// which fetched sessions were still open (provisional).
    #[arg(long)]
    pub now: Option<String>,
    /// Initial in-flight limit of the pacing governor.
    #[arg(long, default_value_t = 4)]
    pub initial_in_flight: u32,
    /// Keep the in-flight limit fixed at --initial-in-flight (no adaptation).
    #[arg(long)]
    pub fixed_in_flight: bool,
    /// Messages per second sent to the gateway. IB's default limit is 50 (error 100, then a
    /// drop); 45 leaves headroom. Raise it only if your account allows more.
    #[arg(long, default_value_t = 45)]
    pub messages_per_second: u32,
    /// For a compressed-time simulator (`sim --time-scale N`) only: run the executor's clocks
    /// that model IB N times faster too: the message rate (x N), the pause after a pacing
    /// error, the small-bar pacing windows, the retry backoff and the request timeout (/ N).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Experiment for real gateways: send an empty end date-time ("now") instead of the
    /// explicit end when the window ends at the last completed session and no session has
    /// started since (a weekend run; decided with --now or the clock). The bars asked for are
    /// the same; one report says IB serves this form far faster. Summaries record the form
    /// of each request and `report` shows the rate of each.
    #[arg(long)]
    pub empty_end: bool,
}

fn bad(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    crate::exit::BAD_INPUT
}

/// The pinned clock (`--now`, else `OPT_BACKFILL_NOW`), if any.
fn pinned_now(args: &ExecuteArgs) -> Result<Option<chrono::DateTime<Utc>>, i32> {
    super::common::pinned_now(args.now.as_deref()).map_err(bad)
}

/// Load the manifest: read it, or load and compile the plan.
fn load_manifest(args: &ExecuteArgs) -> Result<Manifest, i32> {
    let now = pinned_now(args)?;
    super::common::load_manifest(&args.input, now, args.batch_count.zip(args.batch_index))
}

/// The executor's configuration: the manifest's settings with the command line's overrides.
fn exec_config(args: &ExecuteArgs, manifest: &Manifest) -> Result<ExecConfig, i32> {
    let g = &manifest.gateway;
    let (mut host, mut port) = (g.host.clone(), g.port);
    if let Some(gw) = &args.gateway {
        match parse_gateway(gw) {
            Ok((h, p)) => (host, port) = (h, p),
            Err(e) => return Err(bad(e)),
        }
    }
    let reconnect_for = match &args.reconnect_for {
        Some(s) => match duration_flag("--reconnect-for", s) {
            Ok(d) => d,
            Err(e) => return Err(bad(e)),
        },
        None => Duration::from_millis(g.reconnect_for_ms),
    };
    let request_timeout = match &args.request_timeout {
        Some(s) => match duration_flag("--request-timeout", s) {
            Ok(d) => d,
            Err(e) => return Err(bad(e)),
        },
        None => Duration::from_millis(g.request_timeout_ms),
    };
    if args.messages_per_second == 0 {
        return Err(bad("--messages-per-second must be at least 1"));
    }
    let scale = args.time_scale;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(bad(format!(
            "--time-scale {scale}: expected a number greater than 0"
        )));
    }
    let gateway = GatewayConfig {
        host,
        port,
        client_id: args.client_id.unwrap_or(g.client_id),
        connect_timeout: Duration::from_millis(g.connect_timeout_ms),
        request_timeout: compress(request_timeout, scale),
        messages_per_second: (f64::from(args.messages_per_second) * scale)
            .round()
            .clamp(1.0, f64::from(u32::MAX)) as u32,
        message_window: compress(Duration::from_secs(1), scale),
    };
    let phase_deps: BTreeMap<String, Vec<String>> = manifest
        .phases
        .iter()
        .map(|p| (p.name.clone(), p.depends_on.clone()))
        .collect();
    let state_root = args
        .state_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(&manifest.plan.state_root));
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        crate::store::summary::new_run_id(&state_root, &manifest.plan.scope, Utc::now())
    });
    Ok(ExecConfig {
        scope: manifest.plan.scope.clone(),
        output_root: args
            .output_root
            .clone()
            .unwrap_or_else(|| PathBuf::from(&manifest.plan.output_root)),
        state_root: state_root.clone(),
        run_id,
        batch_index: manifest.batch.index,
        batch_count: manifest.batch.count,
        resume: !args.no_resume,
        incremental: !args.no_incremental,
        gateway,
        governor: GovernorConfig {
            max_in_flight: g.max_in_flight,
            initial_limit: args.initial_in_flight,
            adaptive: !args.fixed_in_flight,
            ..Default::default()
        }
        .compressed(scale),
        retry: RetryPolicy::historical(g.max_attempts.max(1)).compressed(scale),
        reconnect_for,
        phase_deps,
        active_series: 64,
        reference_closes: BTreeMap::new(),
        now: pinned_now(args)?,
        empty_end: args.empty_end,
    })
}

/// Run `execute`.
pub fn run(args: ExecuteArgs) -> i32 {
    let mut manifest = match load_manifest(&args) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let rerun = match &args.rerun {
        Some(p) => match crate::inputs::rerun::read(p) {
            Ok(u) => Some(u),
            Err(e) => return bad(e),
        },
        None => None,
    };
    let tasks = std::mem::take(&mut manifest.tasks);
    let selected = match prepare::select(&manifest, tasks, &args.phase, rerun.as_ref()) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let mut cfg = match exec_config(&args, &manifest) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The plan's snapshot is compiled into the manifest's selections; --closes adds a newer one.
    let snapshot: Snapshot = match &args.closes {
        Some(p) => match read_snapshot(p, manifest.end.session) {
            Ok(s) => s,
            Err(e) => return bad(e),
        },
        None => Snapshot::new(),
    };
    let lock = match lock_scope(&cfg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::LOCKED;
        }
    };
    let (_run_log, timeline_file) = open_run_log(&args, &cfg);
    crate::memory::log_stage("plan compiled");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return crate::exit::TASK_ERRORS;
        }
    };
    let code = rt.block_on(async {
        let stop = ctrl_c_signal();
        let prepare::Selected {
            mut tasks,
            selections,
        } = selected;
        let closes = prepare::CloseSources {
            snapshot: &snapshot,
            fetch_from_gateway: args.no_skip_underlying_close,
        };
        let end = manifest.end.close;
        let resolved = prepare::resolve_selections(
            &mut cfg,
            &selections,
            closes,
            rerun.as_ref(),
            end,
            &mut tasks,
            &stop,
        )
        .await;
        let skipped = match resolved {
            Ok(s) => s,
            Err(prepare::PrepareError::Gateway(crate::ib::ConnectError::Interrupted)) => {
                return super::common::interrupted_exit_code()
            }
            Err(e @ prepare::PrepareError::Gateway(_)) => {
                eprintln!("error: {e}");
                return crate::exit::GATEWAY;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::BAD_INPUT;
            }
        };
        // Reading every earlier summary and checking files blocks: keep it off the runtime's
        // scheduler (the Ctrl-C listener keeps running).
        let resumed = match tokio::task::block_in_place(|| filter_resumed(&cfg, tasks)) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::BAD_INPUT;
            }
        };
        crate::memory::log_stage("resume checked");
        eprintln!(
            "run {}: {} tasks to fetch, {} finished earlier, {} symbols skipped (no reference close); gateway {}",
            cfg.run_id,
            resumed.tasks.len(),
            resumed.finished,
            skipped.len(),
            cfg.gateway.address()
        );
        let mut reporter = ConsoleReporter::new();
        exit_code(execute(resumed, skipped, cfg, &mut reporter, stop).await)
    });
    let exit_line = crate::exec::timeline::TimelineLine::Exit {
        at: Utc::now(),
        code,
    };
    if let Err(e) = crate::exec::timeline::append_line(&timeline_file, &exit_line) {
        tracing::warn!("{}: {e}", timeline_file.display());
    }
    drop(lock);
    code
}

/// The exit code of a finished (or failed) run.
fn exit_code(result: Result<crate::exec::RunReport, crate::exec::ExecError>) -> i32 {
    match result {
        Err(crate::exec::ExecError::Connect(crate::ib::ConnectError::Interrupted)) => {
            eprintln!("interrupted before the gateway was reached");
            super::common::interrupted_exit_code()
        }
        Err(e @ crate::exec::ExecError::Connect(_)) => {
            eprintln!("error: {e}");
            crate::exit::GATEWAY
        }
        Err(e) => {
            eprintln!("error: {e}");
            crate::exit::TASK_ERRORS
        }
        Ok(rep) => {
            eprintln!("summaries: {}", rep.run_dir.display());
            if rep.interrupted {
                super::common::interrupted_exit_code()
            } else if let Some(why) = rep.gateway_lost {
                eprintln!("error: {why}; re-run to resume");
                crate::exit::GATEWAY
            } else if rep.stats.write_failures > 0 {
                eprintln!(
                    "error: {} summary lines or run totals could not be written (see above); re-run to redo those tasks",
                    rep.stats.write_failures
                );
                crate::exit::TASK_ERRORS
            } else if rep.stats.errors() > 0 {
                crate::exit::TASK_ERRORS
            } else {
                crate::exit::OK
            }
        }
    }
}

/// Start the run's log file and its timeline (with the plan's path, which `report --html` needs
/// to find the plan again). Neither is worth failing the run for: a warning says what is missing.
fn open_run_log(
    args: &ExecuteArgs,
    cfg: &ExecConfig,
) -> (Option<crate::logging::RunLogGuard>, PathBuf) {
    let run_dir = crate::store::summary::run_dir(&cfg.state_root, &cfg.scope, &cfg.run_id);
    let log_path = run_dir.join(format!(
        "execute_{}of{}.log",
        cfg.batch_index, cfg.batch_count
    ));
    let run_log = match crate::logging::open_run_log(&log_path) {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!("cannot open the run log {}: {e}", log_path.display());
            None
        }
    };
    tracing::info!(
        "execute {} (scope {}, batch {} of {}), run {}",
        args.input.display(),
        cfg.scope,
        cfg.batch_index,
        cfg.batch_count,
        cfg.run_id
    );
    let timeline_file =
        crate::exec::timeline::timeline_path(&run_dir, cfg.batch_index, cfg.batch_count);
    let plan_line = crate::exec::timeline::TimelineLine::Plan {
        at: Utc::now(),
        plan: args
            .input
            .canonicalize()
            .unwrap_or_else(|_| args.input.clone())
            .display()
            .to_string(),
        now: cfg.now,
    };
    if let Err(e) = crate::exec::timeline::append_line(&timeline_file, &plan_line) {
        tracing::warn!("{}: {e}", timeline_file.display());
    }
    (run_log, timeline_file)
}
