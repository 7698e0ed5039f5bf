//! `discover`: build per-symbol contracts caches from reqSecDefOptParams (SMART) and batched,
//! paced qualification of every candidate contract.
//!
//! Per IB's current guidance the chain is enumerated with reqSecDefOptParams only; its
//! expirations x strikes include contracts that do not exist, so every candidate is qualified
//! with one contract-details request (paced through the same governor and message-rate limiter
//! as `execute`) and a 200 answer leaves it out. A symbol whose cache for the date exists is
//! skipped unless forced; a symbol that fails is recorded and the others go on.
//!
//! Throughput: a contract-details answer takes ~0.4-0.5 s and nothing on IB's side limits how
//! many are open, so the socket's message rate binds. `ibapi` writes a cancel after every 200,
//! so a candidate that does not exist costs two messages; [`pacer::MessagePacer`] counts them,
//! and qualification runs at about `42 / (1 + share answering 200)` candidates per second with
//! the default 45 messages/s (`ibapi`'s limiter sustains 42 of them).

use crate::cache::{
    check_symbol, CloseSource, ContractsCache, OptionContract, Underlying, CACHE_FORMAT_VERSION,
};
use crate::exec::governor::{GovernorConfig, PacingGovernor};
use crate::exec::reconnect::reconnect_with_backoff;
use crate::ib::{ChainParams, Failure, Gateway, GatewayConfig, OptionSpec, OutcomeClass};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub mod pacer;
use pacer::MessagePacer;

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
}

/// Initial in-flight limit for qualification. A contract-details answer takes about 0.4-0.5 s
/// and the socket allows 45 messages/s, so about 45 x 0.45 = 20 requests must be in flight to
/// use the whole message rate; starting at 24 reaches it at once instead of after several slow
/// start round trips from the executor's cautious 4. The rate limiter, not the governor, then
/// keeps the message rate; the governor only backs off when latency says the gateway queues.
pub const DISCOVERY_INITIAL_IN_FLIGHT: u32 = 24;

/// Latency tolerance of the discovery governor. A request's latency as the governor sees it
/// includes its wait for the message pacer, which grows with the number in flight even when the
/// gateway does not queue at all; the executor's 2x would shrink the limit below what the message
/// rate needs, so discovery only backs off at 3x the floor.
pub const DISCOVERY_LATENCY_TOLERANCE: f64 = 3.0;

/// The governor settings discovery uses: the executor's defaults with a higher starting limit
/// ([`DISCOVERY_INITIAL_IN_FLIGHT`]) and latency tolerance ([`DISCOVERY_LATENCY_TOLERANCE`]), because qualification is bound by the message rate rather
/// than by the historical service.
pub fn discovery_governor(max_in_flight: u32) -> GovernorConfig {
    let max_in_flight = max_in_flight.clamp(1, crate::exec::governor::IB_MAX_OPEN_REQUESTS);
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
    /// attempts per contract, reconnecting for an hour, no progress display.
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
            governor: discovery_governor(crate::exec::governor::IB_MAX_OPEN_REQUESTS),
            max_attempts: 4,
            reconnect_for: Duration::from_secs(3600),
            progress_every: None,
        }
    }
}

/// What happened to one symbol (one line of the discovery summary JSONL), so that a failed
/// symbol can be found and re-run and a slow one explained.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SymbolReport {
    /// Run id (UTC start time), shared by every line of one run.
    pub run_id: String,
    /// Symbol.
    pub symbol: String,
    /// Cache date.
    pub date: NaiveDate,
    /// `OK`, `SKIPPED` (cache exists) or `ERR`.
    pub status: String,
    /// Underlying conId, when qualified.
    pub con_id: Option<i64>,
    /// Underlying close used for the strike band and recorded in the cache, when known.
    pub reference_close: Option<f64>,
    /// Candidates from the SMART chain after the filters.
    pub candidates: usize,
    /// Candidates that exist (written to the cache).
    pub qualified: usize,
    /// Candidates IB answered 200 for (do not exist).
    pub not_found: usize,
    /// Requests sent for this symbol (with retries).
    pub requests: usize,
    /// Error, for `ERR`.
    pub error: Option<String>,
    /// Cache file.
    pub path: Option<String>,
    /// Seconds spent on the symbol.
    pub elapsed_secs: f64,
    /// Seconds spent qualifying the candidates (the paced part).
    pub qualify_secs: f64,
}

/// A whole discovery run.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoverReport {
    /// Per symbol, in input order.
    pub symbols: Vec<SymbolReport>,
    /// Candidates answered (existing or 200) per second of qualification, over the run.
    pub qualified_per_sec: f64,
    /// Summary file.
    pub summary_path: PathBuf,
    /// Governor figures at the end (peak in flight, limit, latency), to explain the rate.
    pub governor: crate::exec::GovernorStats,
    /// True when the stop signal ended the run early.
    pub interrupted: bool,
    /// Set when the gateway was lost for good; later symbols were not attempted.
    pub gateway_lost: Option<String>,
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
                    tokio::time::sleep(Duration::from_millis(250 << attempts.min(6))).await;
                }
                Err(e) => return (Err(CallError::Failed(e)), sent),
            }
        }
    }
}

/// The rate `ibapi`'s `RateLimiter::per_second(n)` sustains: it admits a burst of `n / 10` and
/// then `n + 1 - n / 10` per second. Pacing at this rate keeps that limiter from ever holding a
/// backlog of requests (which is what lets cancels overshoot, see [`pacer`]).
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
    let gateway = Gateway::connect(cfg.gateway.clone()).await?;
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
    for symbol in symbols {
        if *ctx.stop.borrow() {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let mut rep = SymbolReport {
            run_id: run_id.clone(),
            symbol: symbol.clone(),
            date: cfg.date,
            status: "OK".into(),
            con_id: None,
            reference_close: None,
            candidates: 0,
            qualified: 0,
            not_found: 0,
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
        } else if let Err(e) = discover_symbol(&ctx, symbol, &path, &mut rep).await {
            rep.status = "ERR".into();
            if e.gateway_lost {
                gateway_lost = Some(e.message.clone());
            }
            rep.error = Some(e.message);
        }
        rep.elapsed_secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "discover {symbol}: {} ({} candidates, {} qualified, {} not found{})",
            rep.status,
            rep.candidates,
            rep.qualified,
            rep.not_found,
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
    let answered: usize = reports.iter().map(|r| r.qualified + r.not_found).sum();
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

/// Append one line to the summary; a write error is reported, not fatal (the caches are the
/// product, the summary is the log).
fn append_summary(path: &Path, rep: &SymbolReport) {
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let line = serde_json::to_string(rep).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")
    })();
    if let Err(e) = res {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}

async fn discover_symbol(
    ctx: &Arc<Ctx>,
    symbol: &str,
    path: &Path,
    rep: &mut SymbolReport,
) -> Result<(), SymbolError> {
    let (stock, n) = ctx.call(|| ctx.gateway.qualify_stock(symbol)).await;
    rep.requests += n;
    let stock = stock.map_err(|e| {
        SymbolError::from_call(&format!("cannot qualify {symbol} as a SMART USD stock"), e)
    })?;
    rep.con_id = Some(stock.con_id);
    let mut close = None;
    if ctx.cfg.fetch_close || ctx.cfg.strike_band.is_some() {
        let end = crate::calendar::session_on_or_before(ctx.cfg.date)
            .map_err(|e| SymbolError::new(e.to_string()))?
            .close;
        let (c, n) = ctx.call(|| ctx.gateway.stock_close(symbol, end)).await;
        rep.requests += n;
        match c {
            Ok(c) => close = c,
            Err(e @ CallError::GatewayLost(_)) => {
                return Err(SymbolError::from_call("underlying close", e))
            }
            Err(e) => eprintln!("{symbol}: no underlying close ({e}); no strike band applied"),
        }
    }
    rep.reference_close = close.map(|(_, c)| c);
    let (chains, n) = ctx
        .call(|| ctx.gateway.option_chain(symbol, stock.con_id))
        .await;
    rep.requests += n;
    let chains = chains.map_err(|e| SymbolError::from_call("reqSecDefOptParams failed", e))?;
    if !chains.iter().any(|c| c.exchange == "SMART") {
        return Err(SymbolError::new(format!(
            "no SMART option chain for {symbol}"
        )));
    }
    let cands = candidates(symbol, &chains, &ctx.cfg, close.map(|(_, c)| c));
    rep.candidates = cands.len();
    let t0 = Instant::now();
    let outcome = qualify_all(ctx, symbol, cands).await;
    rep.qualify_secs = t0.elapsed().as_secs_f64();
    rep.requests += outcome.requests;
    rep.not_found = outcome.not_found;
    if let Some(e) = outcome.lost {
        return Err(SymbolError::from_call("qualification", e));
    }
    if !outcome.failures.is_empty() {
        return Err(SymbolError::new(format!(
            "{} candidates could not be qualified (first: {}); no cache written, re-run to complete",
            outcome.failures.len(),
            outcome.failures[0]
        )));
    }
    rep.qualified = outcome.found.len();
    let class_hours = class_hours_of(symbol, &outcome.hours);
    let mut cache = ContractsCache {
        format_version: CACHE_FORMAT_VERSION,
        as_of: ctx.cfg.date,
        underlying: Underlying {
            symbol: symbol.to_string(),
            con_id: stock.con_id,
            currency: stock.currency,
            primary_exchange: stock.primary_exchange,
            reference_close: close.map(|(_, c)| c),
            reference_close_date: close.map(|(d, _)| d),
            reference_close_source: close.map(|_| CloseSource::Gateway),
        },
        contracts: outcome
            .found
            .into_iter()
            .map(|s| OptionContract {
                con_id: s.con_id,
                local_symbol: s.local_symbol,
                trading_class: s.trading_class,
                expiry: s.expiry,
                strike: s.strike,
                right: s.right,
                multiplier: s.multiplier,
                exchange: s.exchange,
                currency: s.currency,
            })
            .collect(),
        class_hours,
    };
    cache.sort();
    crate::store::atomic::write_json(path, &cache)
        .map_err(|e| SymbolError::new(format!("{}: {e}", path.display())))?;
    rep.path = Some(path.display().to_string());
    Ok(())
}

/// The cache's hours per trading class from the contract details received while qualifying;
/// a class whose details carry no usable hours gets the built-in list's, with a warning.
fn class_hours_of(
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
    found: Vec<OptionSpec>,
    /// The contract-details hours of the first contract qualified per trading class.
    hours: std::collections::BTreeMap<String, crate::hours::RawHours>,
    not_found: usize,
    requests: usize,
    failures: Vec<String>,
    lost: Option<CallError>,
}

/// Qualify every candidate with one contract-details request each, through the governor.
///
/// A fixed pool of workers (as many as the governor's hard cap) pulls candidates from a shared
/// queue, so a 10,000-contract chain is not 10,000 tasks all woken on every completion. Once the
/// gateway is lost for good or the run is interrupted, the workers stop taking candidates.
async fn qualify_all(ctx: &Arc<Ctx>, symbol: &str, cands: Vec<OptionSpec>) -> Qualified {
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
                        out.found.push(found);
                    }
                    Ok(None) => out.not_found += 1,
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
        let symbol = symbol.to_string();
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                let n = done.load(std::sync::atomic::Ordering::Relaxed);
                let g = ctx.governor.stats();
                let secs = t0.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "progress: {symbol} {n}/{total} qualified, {:.1}/s, in flight {} (limit {}), latency {:.0} ms{}",
                    n as f64 / secs,
                    g.in_flight,
                    g.limit,
                    g.latency_ms,
                    if g.paused { ", paused" } else { "" }
                );
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
        for (class, h) in q.hours {
            all.hours.entry(class).or_insert(h);
        }
        all.not_found += q.not_found;
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
