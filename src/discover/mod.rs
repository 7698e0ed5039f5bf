//! `discover`: build per-symbol contracts caches from reqSecDefOptParams (SMART) and batched,
//! paced qualification of every candidate contract.
//!
//! Per IB's current guidance the chain is enumerated with reqSecDefOptParams only; its
//! expirations x strikes include contracts that do not exist, so every candidate is qualified
//! with one contract-details request (paced through the same governor and message-rate limiter
//! as `execute`) and a 200 answer leaves it out. A symbol whose cache for the date exists is
//! skipped unless forced; a symbol that fails is recorded and the others go on.
//!
//! By default discovery is incremental ([`incremental`]): candidates found in the symbol's
//! newest earlier cache keep their contract, combinations that recently answered 200 (the
//! [`negative`] cache) are not asked again, and a seeded sample of the reused contracts is
//! re-qualified; a difference rebuilds the symbol in full. [`DiscoveryMode::Full`] asks for
//! every candidate.
//!
//! Throughput: a contract-details answer takes ~0.4-0.5 s and nothing on IB's side limits how
//! many are open, so the socket's message rate binds. `ibapi` writes a cancel after every 200,
//! so a candidate that does not exist costs two messages; [`MessagePacer`] counts them,
//! and qualification runs at about `42 / (1 + share answering 200)` candidates per second with
//! the default 45 messages/s (`ibapi`'s limiter sustains 42 of them).

use crate::cache::check_symbol;
use crate::ib::session::governor::{GovernorConfig, PacingGovernor};
use crate::ib::session::pacer::MessagePacer;
use crate::ib::session::reconnect::Reconnector;
use crate::ib::session::retry::RetryPolicy;
use crate::ib::{ChainParams, GatewayConfig, OptionSpec};
use chrono::{NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

mod call;
pub mod incremental;
pub mod negative;
mod qualify;
pub mod summary;
mod symbol;
use call::Ctx;
use summary::append_summary;
pub use summary::{DiscoverReport, SymbolReport, SUMMARY_FORMAT_CHANGELOG, SUMMARY_FORMAT_VERSION};
use symbol::discover_symbol;

/// Whether discovery starts from the earlier caches or asks for every candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMode {
    /// Reuse the newest earlier cache and the negative cache; qualify only the rest.
    Incremental,
    /// Qualify every candidate (also what an incremental run does without an earlier cache, or
    /// after its verification sample found a difference).
    Full,
}

/// Default re-check age of a known-missing combination, days.
pub const DEFAULT_RECHECK_MISSING_AFTER_DAYS: u32 = 7;

/// Default share of the reused contracts re-qualified by the verification sample.
pub const DEFAULT_VERIFY_FRACTION: f64 = 0.01;

/// Settings of a discovery run.
#[derive(Debug, Clone)]
pub struct DiscoverConfig {
    /// Directory of the caches (`<state root>/contracts_cache`).
    pub cache_dir: PathBuf,
    /// Directory for the discovery summary (`<state root>/run_logs/discover`).
    pub log_dir: PathBuf,
    /// Cache date (the `{YYYY-MM-DD}` of the file names); expiries on or before it are dropped.
    pub date: NaiveDate,
    /// Keep expiries at most this many days after `date`.
    pub max_expiry_days: Option<u32>,
    /// Keep strikes within this fraction of the reference close (0.2 = +/-20%), when one is known.
    pub strike_band: Option<f64>,
    /// Ask the gateway for the underlying's last close (needed for `strike_band`, recorded in the cache).
    pub fetch_close: bool,
    /// Rebuild caches that exist.
    pub force: bool,
    /// Gateway.
    pub gateway: GatewayConfig,
    /// Governor.
    pub governor: GovernorConfig,
    /// How a request with a retryable outcome is tried again (tries per request at most,
    /// backoff): [`RetryPolicy::discovery`] by default.
    pub retry: RetryPolicy,
    /// How long to keep reconnecting after a drop.
    pub reconnect_for: Duration,
    /// Print a progress line to stderr this often while qualifying (`None`: silent).
    pub progress_every: Option<Duration>,
    /// Incremental (default) or full.
    pub mode: DiscoveryMode,
    /// A known-missing combination is asked again once its check is older than this many days.
    pub recheck_missing_after_days: u32,
    /// Share of the reused contracts re-qualified (at least
    /// [`incremental::VERIFY_MIN_PER_SYMBOL`] per symbol).
    pub verify_fraction: f64,
    /// Symbols that are indices (qualified as `IND`, e.g. SPX on CBOE); the others are stocks.
    pub indices: std::collections::BTreeSet<String>,
}

/// Initial in-flight limit for qualification. A contract-details answer takes about 0.4-0.5 s
/// and the socket allows 45 messages/s, so about 45 x 0.45 = 20 requests must be in flight to
/// use the whole message rate; starting at 24 reaches it at once instead of after several slow
/// start round trips from the executor's cautious 4. The rate limiter, not the governor, then
/// keeps the message rate; the governor gives back in-flight requests that do not raise the
/// answers per second.
pub const DISCOVERY_INITIAL_IN_FLIGHT: u32 = 24;

/// Latency tolerance of the discovery governor. A request's latency as the governor sees it
/// includes its wait for the message pacer, which grows with the number in flight even when the
/// gateway does not queue at all; discovery only tries a smaller limit at 3x the floor (the
/// executor at 2x), and keeps it only if the answers per second do not fall.
pub const DISCOVERY_LATENCY_TOLERANCE: f64 = 3.0;

/// The governor settings discovery uses: the executor's defaults with a higher starting limit
/// ([`DISCOVERY_INITIAL_IN_FLIGHT`]) and latency tolerance ([`DISCOVERY_LATENCY_TOLERANCE`]), because qualification is bound by the message rate rather
/// than by the historical service.
pub fn discovery_governor(max_in_flight: u32) -> GovernorConfig {
    let max_in_flight = max_in_flight.clamp(1, crate::ib::session::governor::IB_MAX_OPEN_REQUESTS);
    GovernorConfig {
        max_in_flight,
        initial_limit: DISCOVERY_INITIAL_IN_FLIGHT.min(max_in_flight),
        tolerance: DISCOVERY_LATENCY_TOLERANCE,
        ..GovernorConfig::default()
    }
}

impl DiscoverConfig {
    /// Settings with the defaults of a command-line run: caches in `<state_root>/contracts_cache`,
    /// summaries in `<state_root>/run_logs/discover`, no filters, the discovery governor, four
    /// attempts per contract, reconnecting for an hour, no progress display, incremental with a
    /// 7-day re-check age and a 1% verification sample.
    pub fn new(state_root: &Path, date: NaiveDate, gateway: GatewayConfig) -> Self {
        DiscoverConfig {
            cache_dir: state_root.join("contracts_cache"),
            log_dir: state_root.join("run_logs").join("discover"),
            date,
            max_expiry_days: None,
            strike_band: None,
            fetch_close: false,
            force: false,
            gateway,
            governor: discovery_governor(crate::ib::session::governor::IB_MAX_OPEN_REQUESTS),
            retry: RetryPolicy::discovery(4),
            reconnect_for: Duration::from_secs(3600),
            progress_every: None,
            mode: DiscoveryMode::Incremental,
            recheck_missing_after_days: DEFAULT_RECHECK_MISSING_AFTER_DAYS,
            verify_fraction: DEFAULT_VERIFY_FRACTION,
            indices: Default::default(),
        }
    }
}

impl DiscoverConfig {
    /// The security type `symbol` is discovered as.
    pub fn sec_type_of(&self, symbol: &str) -> crate::cache::UnderlyingSecType {
        if self.indices.contains(symbol) {
            crate::cache::UnderlyingSecType::Ind
        } else {
            crate::cache::UnderlyingSecType::Stk
        }
    }
}

/// Cache file path for a symbol and date.
pub fn cache_path(dir: &Path, symbol: &str, date: NaiveDate) -> PathBuf {
    dir.join(format!("{symbol}_{}.json", date.format("%Y-%m-%d")))
}

/// Candidate contracts of the SMART chain after the filters, deterministic order.
pub fn candidates(
    symbol: &str,
    chains: &[ChainParams],
    cfg: &DiscoverConfig,
    close: Option<f64>,
) -> Vec<OptionSpec> {
    let mut out = Vec::new();
    for c in chains.iter().filter(|c| c.exchange == "SMART") {
        for &exp in &c.expirations {
            if exp <= cfg.date {
                continue;
            }
            if cfg
                .max_expiry_days
                .is_some_and(|d| (exp - cfg.date).num_days() > i64::from(d))
            {
                continue;
            }
            for &strike in &c.strikes {
                if let (Some(band), Some(close)) = (cfg.strike_band, close) {
                    if (strike - close).abs() > band * close {
                        continue;
                    }
                }
                for right in [crate::cache::Right::C, crate::cache::Right::P] {
                    out.push(OptionSpec {
                        symbol: symbol.to_string(),
                        con_id: 0,
                        local_symbol: String::new(),
                        trading_class: c.trading_class.clone(),
                        expiry: exp,
                        strike,
                        right,
                        multiplier: c.multiplier,
                        exchange: "SMART".into(),
                        currency: "USD".into(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (a.expiry, a.right, &a.trading_class)
            .cmp(&(b.expiry, b.right, &b.trading_class))
            .then(a.strike.total_cmp(&b.strike))
    });
    out.dedup_by(|a, b| {
        a.expiry == b.expiry
            && a.right == b.right
            && a.trading_class == b.trading_class
            && a.strike == b.strike
    });
    out
}

/// The rate `ibapi`'s `RateLimiter::per_second(n)` sustains: it admits a burst of `n / 10` and
/// then `n + 1 - n / 10` per second. Pacing at this rate keeps that limiter from ever holding a
/// backlog of requests (which is what lets cancels overshoot, see [`crate::ib::session::pacer`]).
pub fn sustained_rate(n: u32) -> u32 {
    let burst = (n / 10).max(1);
    (n + 1).saturating_sub(burst).max(1)
}

/// A fresh run id: the UTC start time to the millisecond, so two quick runs write two summaries.
fn new_run_id() -> String {
    Utc::now().format("%Y%m%dT%H%M%S%3fZ").to_string()
}

/// Discover every symbol in `symbols`, writing one cache per symbol and one summary line per
/// symbol. Fails only when the first connection cannot be made; a symbol's failure is recorded
/// and the others go on (once the gateway is lost for good, the rest are recorded as not tried).
pub async fn discover(
    symbols: &[String],
    cfg: DiscoverConfig,
    stop: watch::Receiver<bool>,
) -> Result<DiscoverReport, crate::ib::ConnectError> {
    let run_id = new_run_id();
    let summary_path = cfg.log_dir.join(format!("discover_{run_id}.jsonl"));
    let gateway =
        crate::ib::session::reconnect::connect_with_retry(&cfg.gateway, cfg.reconnect_for, &stop)
            .await?;
    let governor = PacingGovernor::new(cfg.governor.clone());
    let ctx = Arc::new(Ctx {
        gateway,
        governor,
        pacer: MessagePacer::per_second(sustained_rate(cfg.gateway.messages_per_second)),
        cfg: cfg.clone(),
        stop,
        reconnector: Reconnector::new(cfg.reconnect_for),
    });
    let mut reports = Vec::new();
    let mut gateway_lost: Option<String> = None;
    let mut interrupted = false;
    if let Err(e) = std::fs::create_dir_all(&cfg.log_dir) {
        eprintln!(
            "warning: cannot create {}: {e}; no discovery summary",
            cfg.log_dir.display()
        );
    }
    for (i, symbol) in symbols.iter().enumerate() {
        let label = format!("[{}/{}] {symbol}", i + 1, symbols.len());
        if *ctx.stop.borrow() {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let mut rep = SymbolReport::started(&run_id, symbol, cfg.date, cfg.mode);
        let path = cache_path(&cfg.cache_dir, symbol, cfg.date);
        if let Err(e) = check_symbol(symbol) {
            rep.status = "ERR".into();
            rep.error = Some(e.to_string());
        } else if path.exists() && !cfg.force {
            rep.status = "SKIPPED".into();
            rep.path = Some(path.display().to_string());
        } else if let Some(why) = &gateway_lost {
            rep.status = "ERR".into();
            rep.error = Some(format!("not attempted: {why}"));
        } else if let Err(e) = discover_symbol(&ctx, symbol, &path, &mut rep, &label).await {
            rep.status = "ERR".into();
            if e.gateway_lost {
                gateway_lost = Some(e.message.clone());
            }
            rep.error = Some(e.message);
        }
        rep.elapsed_secs = t0.elapsed().as_secs_f64();
        eprintln!("{}", rep.console_line());
        append_summary(&summary_path, &rep);
        reports.push(rep);
    }
    interrupted |= *ctx.stop.borrow();
    let secs: f64 = reports.iter().map(|r| r.qualify_secs).sum();
    let answered: usize = reports.iter().map(|r| r.qualified_now + r.verified).sum();
    Ok(DiscoverReport {
        symbols: reports,
        qualified_per_sec: if secs > 0.0 {
            answered as f64 / secs
        } else {
            0.0
        },
        summary_path,
        governor: ctx.governor.stats(),
        interrupted,
        gateway_lost,
    })
}

/// The cache's hours per trading class from the contract details received while qualifying;
/// a class whose details carry no usable hours gets the built-in list's, with a warning.
pub(crate) fn class_hours_of(
    symbol: &str,
    raw: &std::collections::BTreeMap<String, crate::hours::RawHours>,
) -> Vec<crate::hours::ClassHours> {
    raw.iter()
        .map(|(class, r)| {
            let (h, err) = crate::hours::from_details(class, r);
            if let Some(e) = err {
                eprintln!(
                    "warning: {symbol} class {class}: contract details hours unusable ({e}); using the built-in list (closes {} min after the equity close)",
                    h.rth_close_offset_minutes
                );
            }
            h
        })
        .collect()
}
