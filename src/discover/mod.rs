//! `discover`: build per-symbol contracts caches from reqSecDefOptParams (SMART) and batched,
//! paced qualification of every candidate contract.
//!
//! Per IB's current guidance the chain is enumerated with reqSecDefOptParams only; its
//! expirations x strikes include contracts that do not exist, so every candidate is qualified
//! with one contract-details request (paced through the same governor and message-rate limiter
//! as `execute`) and a 200 answer leaves it out. A symbol whose cache for the date exists is
//! skipped unless forced; a symbol that fails is recorded and the others go on.

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
}

/// What happened to one symbol (one line of the discovery summary JSONL).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SymbolReport {
    /// Symbol.
    pub symbol: String,
    /// Cache date.
    pub date: NaiveDate,
    /// `OK`, `SKIPPED` (cache exists) or `ERR`.
    pub status: String,
    /// Underlying conId, when qualified.
    pub con_id: Option<i64>,
    /// Candidates from the SMART chain after the filters.
    pub candidates: usize,
    /// Candidates that exist (written to the cache).
    pub qualified: usize,
    /// Candidates IB answered 200 for (do not exist).
    pub not_found: usize,
    /// Qualification requests sent (with retries).
    pub requests: usize,
    /// Error, for `ERR`.
    pub error: Option<String>,
    /// Cache file.
    pub path: Option<String>,
    /// Seconds spent.
    pub elapsed_secs: f64,
}

/// A whole discovery run.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoverReport {
    /// Per symbol, in input order.
    pub symbols: Vec<SymbolReport>,
    /// Qualifications per second over the run.
    pub qualified_per_sec: f64,
    /// Summary file.
    pub summary_path: PathBuf,
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
    cfg: DiscoverConfig,
    stop: watch::Receiver<bool>,
    reconnecting: tokio::sync::Mutex<()>,
}

impl Ctx {
    /// One request through the governor, with retries and reconnects.
    async fn call<T, F, Fut>(&self, mut f: F) -> (Result<T, Failure>, usize)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut attempts = 0usize;
        let mut drops = 0;
        loop {
            let generation = self.gateway.generation();
            let permit = self.governor.acquire(None).await;
            attempts += 1;
            let res = f().await;
            let class = match &res {
                Ok(_) => OutcomeClass::Ok,
                Err(e) => e.class,
            };
            permit.finish(class);
            match res {
                Err(e) if e.class == OutcomeClass::Disconnected && drops < 100 => {
                    drops += 1;
                    attempts -= 1;
                    let _g = self.reconnecting.lock().await;
                    if let Err(why) = reconnect_with_backoff(
                        &self.gateway,
                        &self.governor,
                        generation,
                        self.cfg.reconnect_for,
                        &self.stop,
                    )
                    .await
                    {
                        return (Err(Failure::new(OutcomeClass::Disconnected, why)), attempts);
                    }
                }
                Err(e) if e.class.is_retryable() && (attempts as u32) < self.cfg.max_attempts => {
                    tokio::time::sleep(Duration::from_millis(250 * (1 << attempts.min(6)))).await;
                }
                other => return (other, attempts),
            }
        }
    }
}

/// Discover every symbol in `symbols`, writing one cache per symbol.
pub async fn discover(
    symbols: &[String],
    cfg: DiscoverConfig,
    stop: watch::Receiver<bool>,
) -> Result<DiscoverReport, crate::ib::ConnectError> {
    let run_id = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let summary_path = cfg.log_dir.join(format!("discover_{run_id}.jsonl"));
    let gateway = Gateway::connect(cfg.gateway.clone()).await?;
    let governor = PacingGovernor::new(cfg.governor.clone());
    let ctx = Arc::new(Ctx {
        gateway,
        governor,
        cfg: cfg.clone(),
        stop,
        reconnecting: tokio::sync::Mutex::new(()),
    });
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut total_requests = 0usize;
    let _ = std::fs::create_dir_all(&cfg.log_dir);
    for symbol in symbols {
        if *ctx.stop.borrow() {
            break;
        }
        let t0 = Instant::now();
        let mut rep = SymbolReport {
            symbol: symbol.clone(),
            date: cfg.date,
            status: "OK".into(),
            con_id: None,
            candidates: 0,
            qualified: 0,
            not_found: 0,
            requests: 0,
            error: None,
            path: None,
            elapsed_secs: 0.0,
        };
        let path = cache_path(&cfg.cache_dir, symbol, cfg.date);
        if let Err(e) = check_symbol(symbol) {
            rep.status = "ERR".into();
            rep.error = Some(e.to_string());
        } else if path.exists() && !cfg.force {
            rep.status = "SKIPPED".into();
            rep.path = Some(path.display().to_string());
        } else if let Err(e) = discover_symbol(&ctx, symbol, &path, &mut rep).await {
            rep.status = "ERR".into();
            rep.error = Some(e);
        }
        rep.elapsed_secs = t0.elapsed().as_secs_f64();
        total_requests += rep.requests;
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
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary_path)
        {
            if let Ok(line) = serde_json::to_string(&rep) {
                let _ = writeln!(f, "{line}");
            }
        }
        reports.push(rep);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let qualified: usize = reports.iter().map(|r| r.qualified + r.not_found).sum();
    let _ = total_requests;
    Ok(DiscoverReport {
        symbols: reports,
        qualified_per_sec: qualified as f64 / secs,
        summary_path,
    })
}

async fn discover_symbol(
    ctx: &Arc<Ctx>,
    symbol: &str,
    path: &Path,
    rep: &mut SymbolReport,
) -> Result<(), String> {
    let (stock, n) = ctx.call(|| ctx.gateway.qualify_stock(symbol)).await;
    rep.requests += n;
    let stock = stock.map_err(|f| format!("cannot qualify {symbol} as a SMART USD stock: {f}"))?;
    rep.con_id = Some(stock.con_id);
    let mut close = None;
    if ctx.cfg.fetch_close || ctx.cfg.strike_band.is_some() {
        let end = crate::calendar::session_on_or_before(ctx.cfg.date)
            .map_err(|e| e.to_string())?
            .close;
        let (c, n) = ctx.call(|| ctx.gateway.stock_close(symbol, end)).await;
        rep.requests += n;
        close = c.ok().flatten();
    }
    let (chains, n) = ctx
        .call(|| ctx.gateway.option_chain(symbol, stock.con_id))
        .await;
    rep.requests += n;
    let chains = chains.map_err(|f| format!("reqSecDefOptParams failed: {f}"))?;
    if !chains.iter().any(|c| c.exchange == "SMART") {
        return Err(format!("no SMART option chain for {symbol}"));
    }
    let cands = candidates(symbol, &chains, &ctx.cfg, close.map(|(_, c)| c));
    rep.candidates = cands.len();
    let mut joins = tokio::task::JoinSet::new();
    for (i, spec) in cands.into_iter().enumerate() {
        let ctx = ctx.clone();
        joins.spawn(async move {
            let (res, n) = ctx.call(|| ctx.gateway.qualify_option(&spec)).await;
            (i, res, n)
        });
    }
    let mut found: Vec<(usize, OptionSpec)> = Vec::new();
    let mut failures = Vec::new();
    while let Some(j) = joins.join_next().await {
        let Ok((i, res, n)) = j else { continue };
        rep.requests += n;
        match res {
            Ok(Some(spec)) => found.push((i, spec)),
            Ok(None) => rep.not_found += 1,
            Err(f) => failures.push(f),
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "{} candidates could not be qualified (first: {}); no cache written, re-run to complete",
            failures.len(),
            failures[0]
        ));
    }
    rep.qualified = found.len();
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
        contracts: found
            .into_iter()
            .map(|(_, s)| OptionContract {
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
    };
    cache.sort();
    crate::store::atomic::write_json(path, &cache)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    rep.path = Some(path.display().to_string());
    Ok(())
}
