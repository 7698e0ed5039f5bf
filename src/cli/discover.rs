//! `opt-backfill discover`: build contracts caches from the gateway.
//!
//! The symbols come from `--symbols`, a universe CSV or a plan (which also gives the state root,
//! the cache directory and the gateway settings, so the caches land where `plan` and `execute`
//! look for them). The cache date defaults to the last complete session: the chain that exists
//! now is the one of that day.

use super::common::{ctrl_c_signal, default_gateway, duration_flag, parse_gateway};
use crate::discover::{discover, discovery_governor, DiscoverConfig};
use crate::ib::GatewayConfig;
use chrono::NaiveDate;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `opt-backfill discover`.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Comma-separated symbols.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["universe", "plan"])]
    pub symbols: Vec<String>,
    /// Comma-separated index symbols (IB secType `IND`, e.g. `SPX` on CBOE), discovered as
    /// indices; they may also appear in the other symbol sources. A plan's `universe.indices`
    /// are added.
    #[arg(long, value_delimiter = ',')]
    pub indices: Vec<String>,
    /// CSV of symbols (a `symbol` column, or one per line).
    #[arg(long, conflicts_with = "plan")]
    pub universe: Option<PathBuf>,
    /// A plan file: its symbols, state root, contracts-cache directory and gateway settings.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Cache date (default: the last complete session, New York time).
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Keep expiries at most this many days after the date.
    #[arg(long)]
    pub max_expiry_days: Option<u32>,
    /// Keep strikes within this percentage of the underlying's last close (fetched from the gateway).
    #[arg(long)]
    pub strike_band: Option<f64>,
    /// Directory for the caches (default: the plan's contracts cache, else `<state-root>/contracts_cache`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// State root (discovery summaries go under `<state>/run_logs/discover`; default: the
    /// plan's, else `state`).
    #[arg(long, env = "OPT_BACKFILL_STATE_ROOT")]
    pub state_root: Option<PathBuf>,
    /// Gateway address HOST:PORT (default: the plan's, else 127.0.0.1:4002).
    #[arg(long, env = "OPT_BACKFILL_GATEWAY")]
    pub gateway: Option<String>,
    /// API client id (default: the plan's, else 17).
    #[arg(long, env = "OPT_BACKFILL_CLIENT_ID")]
    pub client_id: Option<i32>,
    /// How long to keep trying to reach the gateway, at the start and after a drop, e.g. `2h`
    /// (default: the plan's, else 1h).
    #[arg(long)]
    pub reconnect_for: Option<String>,
    /// Messages per second sent to the gateway. IB's default limit is 50 (error 100, then a
    /// drop); 45 leaves headroom. Raise it only if your account allows more.
    #[arg(long, default_value_t = 45)]
    pub messages_per_second: u32,
    /// Rebuild caches that already exist for the date.
    #[arg(long)]
    pub force: bool,
    /// Record the underlying's last close in the cache (one extra request per symbol).
    #[arg(long)]
    pub fetch_close: bool,
    /// Qualify every candidate instead of starting from the symbol's newest earlier cache and
    /// its record of combinations that do not exist.
    #[arg(long)]
    pub full: bool,
    /// Ask again for a combination that answered "no such contract" once that answer is older
    /// than this many days (always when its expiry is new in the chain).
    #[arg(long, value_name = "DAYS", default_value_t = crate::discover::DEFAULT_RECHECK_MISSING_AFTER_DAYS)]
    pub recheck_missing_after: u32,
    /// Share of the contracts reused from the earlier cache that are qualified again to check
    /// it (0.01 = 1%; at least 5 per symbol). Any difference rebuilds the symbol in full.
    #[arg(long, value_name = "FRACTION", default_value_t = crate::discover::DEFAULT_VERIFY_FRACTION)]
    pub verify_fraction: f64,
}

fn bad(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    crate::exit::BAD_INPUT
}

/// Everything the arguments resolve to before connecting.
struct Resolved {
    symbols: Vec<String>,
    indices: std::collections::BTreeSet<String>,
    state_root: PathBuf,
    out: PathBuf,
    gateway: GatewayConfig,
    max_in_flight: u32,
    max_attempts: u32,
    reconnect_for: Duration,
}

fn resolve(args: &DiscoverArgs) -> Result<Resolved, i32> {
    let mut symbols = args.symbols.clone();
    let mut indices: std::collections::BTreeSet<String> = args.indices.iter().cloned().collect();
    for i in &indices {
        crate::cache::check_symbol(i).map_err(|e| bad(format!("--indices: {e}")))?;
    }
    symbols.extend(args.indices.iter().cloned());
    let mut state_root = PathBuf::from("state");
    let mut out = None;
    let mut gateway = default_gateway("127.0.0.1".into(), 4002, 17);
    let mut max_in_flight = crate::exec::governor::IB_MAX_OPEN_REQUESTS;
    let mut max_attempts = 4;
    let mut reconnect_for = Duration::from_secs(3600);
    if let Some(u) = &args.universe {
        symbols.extend(crate::inputs::symbols::read(u).map_err(bad)?);
    }
    if let Some(p) = &args.plan {
        let plan = crate::plan::load(p).map_err(|e| {
            eprintln!("{e}");
            crate::exit::BAD_INPUT
        })?;
        symbols.extend(plan.universe.symbols.iter().cloned());
        indices.extend(plan.universe.indices.iter().cloned());
        state_root = plan.state_root.clone();
        out = Some(plan.universe.contracts_cache.clone());
        let g = &plan.gateway;
        gateway = GatewayConfig {
            host: g.host.clone(),
            port: g.port,
            client_id: g.client_id,
            connect_timeout: Duration::from_millis(g.connect_timeout_ms),
            request_timeout: Duration::from_millis(g.request_timeout_ms),
            messages_per_second: gateway.messages_per_second,
            message_window: gateway.message_window,
        };
        max_in_flight = g.max_in_flight;
        max_attempts = g.max_attempts.max(1);
        reconnect_for = Duration::from_millis(g.reconnect_for_ms);
    }
    // Keep the first occurrence of each symbol, in input order.
    let mut seen = std::collections::BTreeSet::new();
    symbols.retain(|s| seen.insert(s.clone()));
    if symbols.is_empty() {
        return Err(bad(
            "no symbols: pass --symbols A,B,C, --universe FILE or --plan FILE",
        ));
    }
    if let Some(s) = &args.state_root {
        state_root = s.clone();
    }
    let out = args
        .out
        .clone()
        .or(out)
        .unwrap_or_else(|| state_root.join("contracts_cache"));
    if let Some(gw) = &args.gateway {
        let (host, port) = parse_gateway(gw).map_err(bad)?;
        gateway.host = host;
        gateway.port = port;
    }
    if let Some(id) = args.client_id {
        gateway.client_id = id;
    }
    if let Some(r) = &args.reconnect_for {
        reconnect_for = duration_flag("--reconnect-for", r).map_err(bad)?;
    }
    if args.messages_per_second == 0 {
        return Err(bad("--messages-per-second must be at least 1"));
    }
    gateway.messages_per_second = args.messages_per_second;
    if !(0.0..=1.0).contains(&args.verify_fraction) {
        return Err(bad(format!(
            "--verify-fraction {}: expected a share between 0 and 1 (0.01 = 1%)",
            args.verify_fraction
        )));
    }
    if let Some(b) = args.strike_band {
        if !(b.is_finite() && b > 0.0) {
            return Err(bad(format!(
                "--strike-band {b}: expected a positive percentage"
            )));
        }
    }
    Ok(Resolved {
        symbols,
        indices,
        state_root,
        out,
        gateway,
        max_in_flight,
        max_attempts,
        reconnect_for,
    })
}

/// Run discovery; exit 0 when every symbol is OK or skipped, 1 when some failed, 3 when the
/// gateway cannot be reached (or was lost for good), 130 when interrupted.
pub fn run(args: DiscoverArgs) -> i32 {
    let r = match resolve(&args) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let date = match args.date {
        Some(d) => d,
        None => match crate::calendar::last_complete_session(chrono::Utc::now()) {
            Ok(s) => s.date,
            Err(e) => return bad(e),
        },
    };
    let mut cfg = DiscoverConfig::new(&r.state_root, date, r.gateway);
    cfg.cache_dir = r.out;
    cfg.indices = r.indices;
    cfg.max_expiry_days = args.max_expiry_days;
    cfg.strike_band = args.strike_band.map(|p| p / 100.0);
    cfg.fetch_close = args.fetch_close;
    cfg.force = args.force;
    cfg.mode = if args.full {
        crate::discover::DiscoveryMode::Full
    } else {
        crate::discover::DiscoveryMode::Incremental
    };
    cfg.recheck_missing_after_days = args.recheck_missing_after;
    cfg.verify_fraction = args.verify_fraction;
    cfg.governor = discovery_governor(r.max_in_flight);
    cfg.retry = crate::ib::session::retry::RetryPolicy::discovery(r.max_attempts);
    cfg.reconnect_for = r.reconnect_for;
    cfg.progress_every = Some(Duration::from_secs(10));
    let symbols = r.symbols;
    eprintln!(
        "discover {} symbols for {date} into {}; gateway {}",
        symbols.len(),
        cfg.cache_dir.display(),
        cfg.gateway.address()
    );
    // The run log sits next to the discovery summaries (`discover_<time>.log`).
    let log_path = cfg.log_dir.join(format!(
        "discover_{}.log",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")
    ));
    let _run_log = match crate::logging::open_run_log(&log_path) {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!("cannot open the run log {}: {e}", log_path.display());
            None
        }
    };
    tracing::info!(
        "discover {} symbols for {date}; gateway {}",
        symbols.len(),
        cfg.gateway.address()
    );
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return crate::exit::TASK_ERRORS;
        }
    };
    rt.block_on(async move {
        let stop = ctrl_c_signal();
        match discover(&symbols, cfg, stop).await {
            Err(crate::ib::ConnectError::Interrupted) => super::common::interrupted_exit_code(),
            Err(e) => {
                eprintln!("error: {e}");
                crate::exit::GATEWAY
            }
            Ok(rep) => {
                let failed = rep.symbols.iter().filter(|s| s.status == "ERR").count();
                eprintln!(
                    "discovered {} symbols ({} failed), {:.1} contracts qualified/s (peak {} in flight); summary {}",
                    rep.symbols.len(),
                    failed,
                    rep.qualified_per_sec,
                    rep.governor.peak_in_flight,
                    rep.summary_path.display()
                );
                if rep.interrupted {
                    super::common::interrupted_exit_code()
                } else if let Some(why) = rep.gateway_lost {
                    eprintln!("error: {why}; re-run to resume");
                    crate::exit::GATEWAY
                } else if failed > 0 {
                    crate::exit::TASK_ERRORS
                } else {
                    crate::exit::OK
                }
            }
        }
    })
}
