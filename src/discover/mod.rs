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
use crate::ib::session::reconnect::reconnect_with_backoff;
use crate::ib::{ChainParams, Failure, Gateway, GatewayConfig, OptionSpec, OutcomeClass};
use chrono::{NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub mod incremental;
pub mod negative;
pub mod summary;
mod symbol;
use crate::ib::session::pacer::MessagePacer;
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
    /// Attempts per qualification for retryable outcomes.
    pub max_attempts: u32,
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
            max_attempts: 4,
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

struct Ctx {
    gateway: Gateway,
    governor: Arc<PacingGovernor>,
    pacer: MessagePacer,
    cfg: DiscoverConfig,
    stop: watch::Receiver<bool>,
    reconnecting: tokio::sync::Mutex<()>,
    /// Set when reconnecting gave up: every later call fails at once instead of each worker
    /// reconnecting again for `reconnect_for` in turn.
    lost: std::sync::OnceLock<String>,
}

/// Why a request finally failed: a [`Failure`] from the gateway, or the connection gone for good.
enum CallError {
    Failed(Failure),
    GatewayLost(String),
    Interrupted,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Failed(e) => write!(f, "{e}"),
            CallError::GatewayLost(why) => write!(f, "gateway lost: {why}"),
            CallError::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// A symbol's failure: a message for the summary, and whether the gateway is gone for good.
struct SymbolError {
    message: String,
    gateway_lost: bool,
}

impl SymbolError {
    fn new(message: String) -> Self {
        SymbolError {
            message,
            gateway_lost: false,
        }
    }

    fn from_call(context: &str, e: CallError) -> Self {
        SymbolError {
            gateway_lost: matches!(e, CallError::GatewayLost(_)),
            message: format!("{context}: {e}"),
        }
    }
}

impl Ctx {
    /// [`Ctx::call_with`] for requests whose every success ends natively (no cancel is sent).
    async fn call<T, F, Fut>(&self, f: F) -> (Result<T, CallError>, usize)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        self.call_with(f, |_| false).await
    }

    /// One request through the governor and the message pacer, with retries (bounded by
    /// `max_attempts`, exponential backoff) and reconnects (a drop is not an attempt). Every
    /// error but a drop, and every success `cancelled_ok` names, made `ibapi` write a cancel:
    /// it is charged to the pacer. Returns the result and the number of requests sent.
    async fn call_with<T, F, Fut>(
        &self,
        mut f: F,
        cancelled_ok: fn(&T) -> bool,
    ) -> (Result<T, CallError>, usize)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut attempts = 0u32;
        let mut sent = 0usize;
        loop {
            if *self.stop.borrow() {
                return (Err(CallError::Interrupted), sent);
            }
            if let Some(why) = self.lost.get() {
                return (Err(CallError::GatewayLost(why.clone())), sent);
            }
            let generation = self.gateway.generation();
            let permit = self.governor.acquire(None).await;
            self.pacer.acquire().await;
            if let Some(why) = self.lost.get() {
                return (Err(CallError::GatewayLost(why.clone())), sent);
            }
            sent += 1;
            let res = f().await;
            let (class, cancelled) = match &res {
                Ok(v) => (OutcomeClass::Ok, cancelled_ok(v)),
                Err(e) => (e.class, e.class != OutcomeClass::Disconnected),
            };
            if cancelled {
                self.pacer.charge();
            }
            permit.finish(class);
            match res {
                Ok(v) => return (Ok(v), sent),
                Err(e) if e.class == OutcomeClass::Disconnected => {
                    let _g = self.reconnecting.lock().await;
                    if let Some(why) = self.lost.get() {
                        return (Err(CallError::GatewayLost(why.clone())), sent);
                    }
                    if let Err(why) = reconnect_with_backoff(
                        &self.gateway,
                        &self.governor,
                        generation,
                        self.cfg.reconnect_for,
                        &self.stop,
                    )
                    .await
                    {
                        let err = if *self.stop.borrow() {
                            CallError::Interrupted
                        } else {
                            let _ = self.lost.set(why.clone());
                            CallError::GatewayLost(why)
                        };
                        return (Err(err), sent);
                    }
                }
                Err(e) if e.class.is_retryable() && attempts + 1 < self.cfg.max_attempts => {
                    attempts += 1;
                    let wait = crate::ib::session::reconnect::jittered(Duration::from_millis(
                        250 << attempts.min(6),
                    ));
                    tracing::debug!("retry {attempts} in {wait:.1?}: {e}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return (Err(CallError::Failed(e)), sent),
            }
        }
    }
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
        reconnecting: tokio::sync::Mutex::new(()),
        lost: std::sync::OnceLock::new(),
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
        let mut rep = SymbolReport {
            format_version: SUMMARY_FORMAT_VERSION,
            run_id: run_id.clone(),
            symbol: symbol.clone(),
            date: cfg.date,
            status: "OK".into(),
            con_id: None,
            reference_close: None,
            mode: cfg.mode,
            earlier_cache: None,
            candidates: 0,
            reused: 0,
            known_missing_skipped: 0,
            qualified_now: 0,
            qualified: 0,
            not_found: 0,
            new_missing: 0,
            verified: 0,
            verify_mismatches: Vec::new(),
            rebuilt_full: false,
            requests: 0,
            error: None,
            path: None,
            elapsed_secs: 0.0,
            qualify_secs: 0.0,
        };
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
        eprintln!(
            "discover {symbol}: {} {} ({} candidates: {} reused, {} known missing skipped, {} qualified now, {} new missing; {} in cache; {} requests, {:.1} s{})",
            rep.status,
            match rep.mode {
                DiscoveryMode::Incremental => "incremental",
                DiscoveryMode::Full => "full",
            },
            rep.candidates,
            rep.reused,
            rep.known_missing_skipped,
            rep.qualified_now,
            rep.new_missing,
            rep.qualified,
            rep.requests,
            rep.elapsed_secs,
            rep.error
                .as_ref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        );
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

/// What qualifying a symbol's candidates gave.
#[derive(Default)]
struct Qualified {
    /// (request, answer) of the candidates that exist.
    found: Vec<(OptionSpec, OptionSpec)>,
    /// Candidates answered 200.
    missing: Vec<OptionSpec>,
    /// The contract-details hours of the first contract qualified per trading class.
    hours: std::collections::BTreeMap<String, crate::hours::RawHours>,
    requests: usize,
    failures: Vec<String>,
    lost: Option<CallError>,
}

/// Qualify every candidate with one contract-details request each, through the governor.
///
/// A fixed pool of workers (as many as the governor's hard cap) pulls candidates from a shared
/// queue, so a 10,000-contract chain is not 10,000 tasks all woken on every completion. Once the
/// gateway is lost for good or the run is interrupted, the workers stop taking candidates.
async fn qualify_all(ctx: &Arc<Ctx>, label: &str, cands: Vec<OptionSpec>) -> Qualified {
    let total = cands.len();
    let queue = Arc::new(std::sync::Mutex::new(cands.into_iter()));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let abort = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = ctx.cfg.governor.max_in_flight.clamp(1, 50) as usize;
    let mut joins = tokio::task::JoinSet::new();
    for _ in 0..workers.min(total.max(1)) {
        let (ctx, queue, done, abort) = (ctx.clone(), queue.clone(), done.clone(), abort.clone());
        joins.spawn(async move {
            let mut out = Qualified::default();
            loop {
                if abort.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some(spec) = next else { break };
                let (res, n) = ctx
                    .call_with(|| ctx.gateway.qualify_option(&spec), Option::is_none)
                    .await;
                out.requests += n;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match res {
                    Ok(Some((found, hours))) => {
                        out.hours
                            .entry(found.trading_class.clone())
                            .or_insert(hours);
                        out.found.push((spec, found));
                    }
                    Ok(None) => out.missing.push(spec),
                    Err(CallError::Failed(f)) => out.failures.push(format!(
                        "{} {} {} {}: {f}",
                        spec.expiry, spec.strike, spec.right, spec.trading_class
                    )),
                    Err(e) => {
                        abort.store(true, std::sync::atomic::Ordering::SeqCst);
                        out.lost = Some(e);
                        break;
                    }
                }
            }
            out
        });
    }
    let progress = ctx.cfg.progress_every.map(|every| {
        let (ctx, done) = (ctx.clone(), done.clone());
        let label = label.to_string();
        tokio::spawn(async move {
            let t0 = Instant::now();
            // A bar on a terminal, a line every `every` otherwise (shared with `execute`).
            let mut bar = crate::progress::Progress::every(
                &format!("progress: {label}"),
                total as u64,
                every,
            );
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let n = done.load(std::sync::atomic::Ordering::Relaxed);
                let g = ctx.governor.stats();
                let secs = t0.elapsed().as_secs_f64().max(1e-9);
                let rate = n as f64 / secs;
                bar.update(n as u64, total as u64, || {
                    format!(
                    "{n}/{total} qualified, {rate:.1}/s, ETA {:.0} s, in flight {} (limit {}), latency {:.0} ms{}",
                    if rate > 0.0 { (total - n.min(total)) as f64 / rate } else { 0.0 },
                    g.in_flight,
                    g.limit,
                    g.latency_ms,
                    if g.paused { ", paused" } else { "" }
                )
                });
            }
        })
    });
    let mut all = Qualified::default();
    while let Some(j) = joins.join_next().await {
        let q = match j {
            Ok(q) => q,
            Err(e) => {
                all.failures.push(format!("worker failed: {e}"));
                continue;
            }
        };
        all.found.extend(q.found);
        all.missing.extend(q.missing);
        for (class, h) in q.hours {
            all.hours.entry(class).or_insert(h);
        }
        all.requests += q.requests;
        all.failures.extend(q.failures);
        if all.lost.is_none() {
            all.lost = q.lost;
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    all
}
