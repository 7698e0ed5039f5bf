//! `opt-backfill discover`: build contracts caches from the gateway.

use super::common::{ctrl_c_signal, default_gateway, parse_gateway, read_symbols_csv};
use crate::discover::{discover, DiscoverConfig};
use crate::exec::GovernorConfig;
use chrono::NaiveDate;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `opt-backfill discover`.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Comma-separated symbols.
    #[arg(long, value_delimiter = ',', conflicts_with = "universe")]
    pub symbols: Vec<String>,
    /// CSV of symbols (a `symbol` column, or one per line).
    #[arg(long)]
    pub universe: Option<PathBuf>,
    /// Cache date (default: the last session, New York time).
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Keep expiries at most this many days after the date.
    #[arg(long)]
    pub max_expiry_days: Option<u32>,
    /// Keep strikes within this percentage of the underlying's last close (fetched from the gateway).
    #[arg(long)]
    pub strike_band: Option<f64>,
    /// Directory for the caches.
    #[arg(long, default_value = "state/contracts_cache")]
    pub out: PathBuf,
    /// State root (discovery summaries go under `<state>/run_logs/discover`).
    #[arg(long, default_value = "state")]
    pub state_root: PathBuf,
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:4002")]
    pub gateway: String,
    /// API client id.
    #[arg(long, default_value_t = 17)]
    pub client_id: i32,
    /// Rebuild caches that already exist for the date.
    #[arg(long)]
    pub force: bool,
    /// Record the underlying's last close in the cache (one extra request per symbol).
    #[arg(long)]
    pub fetch_close: bool,
}

/// Run discovery; exit 0 when every symbol is OK or skipped, 1 when some failed.
pub fn run(args: DiscoverArgs) -> i32 {
    let mut symbols = args.symbols.clone();
    if let Some(u) = &args.universe {
        match read_symbols_csv(u) {
            Ok(s) => symbols.extend(s),
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::BAD_INPUT;
            }
        }
    }
    if symbols.is_empty() {
        eprintln!("error: no symbols: pass --symbols A,B,C or --universe FILE");
        return crate::exit::BAD_INPUT;
    }
    let (host, port) = match parse_gateway(&args.gateway) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::BAD_INPUT;
        }
    };
    let date = match args.date {
        Some(d) => d,
        None => match crate::calendar::last_complete_session(chrono::Utc::now()) {
            Ok(s) => s.date,
            Err(e) => {
                eprintln!("error: {e}");
                return crate::exit::BAD_INPUT;
            }
        },
    };
    let cfg = DiscoverConfig {
        cache_dir: args.out.clone(),
        log_dir: args.state_root.join("run_logs").join("discover"),
        date,
        max_expiry_days: args.max_expiry_days,
        strike_band: args.strike_band.map(|p| p / 100.0),
        fetch_close: args.fetch_close,
        force: args.force,
        gateway: default_gateway(host, port, args.client_id),
        governor: GovernorConfig::default(),
        max_attempts: 4,
        reconnect_for: Duration::from_secs(3600),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return crate::exit::TASK_ERRORS;
        }
    };
    rt.block_on(async move {
        let stop = ctrl_c_signal();
        match discover(&symbols, cfg, stop.clone()).await {
            Err(e) => {
                eprintln!("error: {e}");
                crate::exit::GATEWAY
            }
            Ok(rep) => {
                let failed = rep.symbols.iter().filter(|s| s.status == "ERR").count();
                eprintln!(
                    "discovered {} symbols ({} failed), {:.1} contracts qualified/s; summary {}",
                    rep.symbols.len(),
                    failed,
                    rep.qualified_per_sec,
                    rep.summary_path.display()
                );
                if *stop.borrow() {
                    crate::exit::INTERRUPTED
                } else if failed > 0 {
                    crate::exit::TASK_ERRORS
                } else {
                    crate::exit::OK
                }
            }
        }
    })
}
