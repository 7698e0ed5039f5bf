//! Discovery of one symbol: the underlying, its chain, the split of the candidates (all of them
//! for a full run, see [`super::incremental`] for an incremental one), qualification, then the
//! contracts cache and the negative cache, each replaced atomically. Nothing is written before
//! every request needed has an answer, so an interrupted or failed symbol leaves both files as
//! they were.

use super::call::{CallError, Ctx, SymbolError};
use super::incremental::{
    contract_key, contract_of, difference, newest_earlier_cache, spec_key, spec_of, split,
    verification_sample,
};
use super::negative::{negative_path, ComboKey, MissingEntry, NegativeCache};
use super::qualify::{qualify_all, Qualified};
use super::{candidates, DiscoveryMode, OptionSpec, SymbolReport};
use crate::cache::{
    CloseSource, ContractsCache, OptionContract, Underlying, UnderlyingSecType,
    CACHE_FORMAT_VERSION,
};
use crate::ib::QualifiedStock;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The contracts of a symbol and the candidates that answered 200 in this run.
struct Built {
    contracts: Vec<OptionContract>,
    missing: Vec<OptionSpec>,
    /// Hours per trading class from the contract details answered in this run.
    hours: BTreeMap<String, crate::hours::RawHours>,
}

/// Discover one symbol: the underlying, its reference close, the chain's candidates, the
/// qualification (full or incremental), then the contracts cache and the negative cache.
pub(super) async fn discover_symbol(
    ctx: &Arc<Ctx>,
    symbol: &str,
    path: &Path,
    rep: &mut SymbolReport,
    label: &str,
) -> Result<(), SymbolError> {
    let sec_type = ctx.cfg.sec_type_of(symbol);
    let stock = underlying(ctx, symbol, sec_type, rep).await?;
    rep.con_id = Some(stock.con_id);
    let close = reference_close(ctx, symbol, sec_type, rep).await?;
    rep.reference_close = close.map(|(_, c)| c);
    let cands = chain_candidates(ctx, symbol, sec_type, stock.con_id, close, rep).await?;
    rep.candidates = cands.len();

    let neg_path = negative_path(&ctx.cfg.cache_dir, symbol);
    let negative = load_negative(&neg_path, symbol);
    let earlier = match ctx.cfg.mode {
        DiscoveryMode::Incremental => earlier_cache(ctx, symbol, stock.con_id),
        DiscoveryMode::Full => None,
    };
    let t0 = Instant::now();
    // Hours of classes whose contracts are all reused (no contract details asked this run).
    let earlier_hours = earlier.as_ref().map(|(_, c)| c.class_hours.clone());
    let built = match earlier {
        Some((epath, cache)) => {
            rep.mode = DiscoveryMode::Incremental;
            rep.earlier_cache = Some(epath);
            incremental_run(ctx, symbol, label, cands, &cache, &negative, rep).await?
        }
        None => {
            rep.mode = DiscoveryMode::Full;
            full_run(ctx, label, cands, rep).await?
        }
    };
    rep.qualify_secs = t0.elapsed().as_secs_f64();
    let known_missing = negative.by_key();
    rep.qualified = built.contracts.len();
    rep.not_found = built.missing.len();
    rep.new_missing = built
        .missing
        .iter()
        .filter(|m| !known_missing.contains_key(&spec_key(m)))
        .count();

    let mut cache = ContractsCache {
        format_version: CACHE_FORMAT_VERSION,
        as_of: ctx.cfg.date,
        underlying: Underlying {
            symbol: symbol.to_string(),
            con_id: stock.con_id,
            sec_type,
            currency: stock.currency,
            primary_exchange: stock.primary_exchange,
            reference_close: close.map(|(_, c)| c),
            reference_close_date: close.map(|(d, _)| d),
            reference_close_source: close.map(|_| CloseSource::Gateway),
        },
        contracts: built.contracts,
        class_hours: class_hours(symbol, &built.hours, earlier_hours.as_deref()),
    };
    cache.sort();
    crate::store::atomic::write_json(path, &cache)
        .map_err(|e| SymbolError::new(format!("{}: {e}", path.display())))?;
    rep.path = Some(path.display().to_string());
    write_negative(ctx, &neg_path, &negative, &cache, &built.missing);
    Ok(())
}

/// The underlying, qualified as a SMART USD stock or as an index on its exchange.
async fn underlying(
    ctx: &Ctx,
    symbol: &str,
    sec_type: UnderlyingSecType,
    rep: &mut SymbolReport,
) -> Result<QualifiedStock, SymbolError> {
    let (stock, n) = ctx
        .call(|| ctx.gateway.qualify_underlying(symbol, sec_type))
        .await;
    rep.requests += n;
    stock.map_err(|e| {
        let what = match sec_type {
            UnderlyingSecType::Stk => "a SMART USD stock".to_string(),
            UnderlyingSecType::Ind => {
                format!("an index on {}", crate::cache::index_exchange(symbol))
            }
        };
        SymbolError::from_call(&format!("cannot qualify {symbol} as {what}"), e)
    })
}

/// The underlying's last close on or before the cache date, when asked for (or needed for the
/// strike band). Only a lost gateway fails the symbol: without a close no band is applied.
async fn reference_close(
    ctx: &Ctx,
    symbol: &str,
    sec_type: UnderlyingSecType,
    rep: &mut SymbolReport,
) -> Result<Option<(NaiveDate, f64)>, SymbolError> {
    if !(ctx.cfg.fetch_close || ctx.cfg.strike_band.is_some()) {
        return Ok(None);
    }
    let end = crate::calendar::session_on_or_before(ctx.cfg.date)
        .map_err(|e| SymbolError::new(e.to_string()))?
        .close;
    let (c, n) = ctx
        .call(|| ctx.gateway.stock_close(symbol, sec_type, end))
        .await;
    rep.requests += n;
    match c {
        Ok(c) => Ok(c),
        Err(e @ CallError::GatewayLost(_)) => Err(SymbolError::from_call("underlying close", e)),
        Err(e) => {
            eprintln!("{symbol}: no underlying close ({e}); no strike band applied");
            Ok(None)
        }
    }
}

/// The candidates of the SMART chain after the filters. The chain is always asked for: it is
/// what lists new expiries and strikes.
async fn chain_candidates(
    ctx: &Ctx,
    symbol: &str,
    sec_type: UnderlyingSecType,
    con_id: i64,
    close: Option<(NaiveDate, f64)>,
    rep: &mut SymbolReport,
) -> Result<Vec<OptionSpec>, SymbolError> {
    let (chains, n) = ctx
        .call(|| ctx.gateway.option_chain(symbol, sec_type, con_id))
        .await;
    rep.requests += n;
    let chains = chains.map_err(|e| SymbolError::from_call("reqSecDefOptParams failed", e))?;
    if !chains.iter().any(|c| c.exchange == "SMART") {
        return Err(SymbolError::new(format!(
            "no SMART option chain for {symbol}"
        )));
    }
    Ok(candidates(symbol, &chains, &ctx.cfg, close.map(|(_, c)| c)))
}

/// The symbol's negative cache; an unreadable one counts as empty (its combinations are asked
/// again and the file rewritten).
fn load_negative(neg_path: &Path, symbol: &str) -> NegativeCache {
    match NegativeCache::load(neg_path, symbol) {
        Ok(n) => n.unwrap_or_else(|| NegativeCache::empty(symbol)),
        Err(e) => {
            eprintln!(
                "warning: {e}; every combination it held is asked again and the file rewritten"
            );
            NegativeCache::empty(symbol)
        }
    }
}

/// Record this run's answers in the negative cache. The contracts cache is written: a negative
/// cache that cannot be written only costs requests next time, so it is a warning, not a
/// failed symbol.
fn write_negative(
    ctx: &Ctx,
    neg_path: &Path,
    negative: &NegativeCache,
    cache: &ContractsCache,
    missing: &[OptionSpec],
) {
    let found: Vec<ComboKey> = cache.contracts.iter().map(contract_key).collect();
    let not_found: Vec<MissingEntry> = missing
        .iter()
        .map(|s| MissingEntry {
            trading_class: s.trading_class.clone(),
            expiry: s.expiry,
            strike: s.strike,
            right: s.right,
            checked: ctx.cfg.date,
        })
        .collect();
    let updated = negative.updated(ctx.cfg.date, &found, &not_found);
    if let Err(e) = crate::store::atomic::write_json(neg_path, &updated) {
        eprintln!("warning: {}: {e}", neg_path.display());
    }
}

/// The newest earlier cache of `symbol`, when it can be read and is of the same underlying.
fn earlier_cache(ctx: &Ctx, symbol: &str, con_id: i64) -> Option<(String, ContractsCache)> {
    let (date, path) = newest_earlier_cache(&ctx.cfg.cache_dir, symbol, ctx.cfg.date)?;
    match crate::compile::universe::load_cache(&path, symbol, date) {
        Ok(c) if c.underlying.con_id == con_id => Some((path.display().to_string(), c)),
        Ok(c) => {
            eprintln!(
                "warning: {}: underlying conId {} is not {symbol}'s {con_id} now; discovering {symbol} in full",
                path.display(),
                c.underlying.con_id
            );
            None
        }
        Err(e) => {
            eprintln!("warning: {e}; discovering {symbol} in full");
            None
        }
    }
}

/// Qualify `specs`, counting requests; a lost gateway, an interruption or any candidate left
/// without an answer fails the symbol (no cache is written from a partial answer).
async fn qualify_checked(
    ctx: &Arc<Ctx>,
    label: &str,
    specs: Vec<OptionSpec>,
    rep: &mut SymbolReport,
) -> Result<Qualified, SymbolError> {
    let mut q = qualify_all(ctx, label, specs).await;
    rep.requests += q.requests;
    if let Some(e) = q.lost.take() {
        return Err(SymbolError::from_call("qualification", e));
    }
    if !q.failures.is_empty() {
        return Err(SymbolError::new(format!(
            "{} candidates could not be qualified (first: {}); no cache written, re-run to complete",
            q.failures.len(),
            q.failures[0]
        )));
    }
    Ok(q)
}

/// Qualify every candidate.
async fn full_run(
    ctx: &Arc<Ctx>,
    label: &str,
    cands: Vec<OptionSpec>,
    rep: &mut SymbolReport,
) -> Result<Built, SymbolError> {
    rep.qualified_now = cands.len();
    let q = qualify_checked(ctx, label, cands, rep).await?;
    Ok(Built {
        contracts: q.found.into_iter().map(|(_, a)| contract_of(a)).collect(),
        missing: q.missing,
        hours: q.hours,
    })
}

/// Reuse what the earlier cache and the negative cache say, qualify the rest together with the
/// verification sample; rebuild in full when the sample finds a difference.
async fn incremental_run(
    ctx: &Arc<Ctx>,
    symbol: &str,
    label: &str,
    cands: Vec<OptionSpec>,
    earlier: &ContractsCache,
    negative: &NegativeCache,
    rep: &mut SymbolReport,
) -> Result<Built, SymbolError> {
    let cfg = &ctx.cfg;
    let parts = split(
        cands.clone(),
        earlier,
        negative,
        cfg.date,
        cfg.recheck_missing_after_days,
    );
    let sample = verification_sample(&parts.reused, symbol, cfg.date, cfg.verify_fraction);
    let sample_keys: BTreeSet<ComboKey> = sample
        .iter()
        .map(|&i| contract_key(&parts.reused[i]))
        .collect();
    rep.reused = parts.reused.len();
    rep.known_missing_skipped = parts.known_missing_skipped;
    rep.qualified_now = parts.to_qualify.len();
    rep.verified = sample.len();
    let mut asks = parts.to_qualify;
    asks.extend(sample.iter().map(|&i| spec_of(symbol, &parts.reused[i])));
    let q = qualify_checked(ctx, label, asks, rep).await?;

    let mut answers: BTreeMap<ComboKey, OptionContract> = BTreeMap::new();
    let mut contracts = Vec::new();
    for (req, ans) in q.found {
        let key = spec_key(&req);
        if sample_keys.contains(&key) {
            answers.insert(key, contract_of(ans));
        } else {
            contracts.push(contract_of(ans));
        }
    }
    let missing: Vec<OptionSpec> = q
        .missing
        .into_iter()
        .filter(|m| !sample_keys.contains(&spec_key(m)))
        .collect();
    let mismatches: Vec<String> = sample
        .iter()
        .filter_map(|&i| {
            let c = &parts.reused[i];
            difference(c, answers.get(&contract_key(c)))
        })
        .collect();
    if mismatches.is_empty() {
        contracts.extend(parts.reused);
        return Ok(Built {
            contracts,
            missing,
            hours: q.hours,
        });
    }
    eprintln!(
        "WARNING: {symbol}: the verification sample found {} of {} reused contracts differing from the gateway (first: {}); {} is not trusted, rebuilding {symbol} in full",
        mismatches.len(),
        sample.len(),
        mismatches[0],
        rep.earlier_cache.as_deref().unwrap_or("the earlier cache"),
    );
    rep.verify_mismatches = mismatches;
    rep.rebuilt_full = true;
    rep.mode = DiscoveryMode::Full;
    full_run(ctx, label, cands, rep).await
}

/// The cache's hours per trading class: from this run's contract details, else (a class whose
/// contracts were all reused) the earlier cache's record of it, else the built-in list.
fn class_hours(
    symbol: &str,
    raw: &BTreeMap<String, crate::hours::RawHours>,
    earlier: Option<&[crate::hours::ClassHours]>,
) -> Vec<crate::hours::ClassHours> {
    let mut out = super::class_hours_of(symbol, raw);
    for h in earlier.unwrap_or_default() {
        if !out.iter().any(|o| o.trading_class == h.trading_class) {
            out.push(h.clone());
        }
    }
    out.sort_by(|a, b| a.trading_class.cmp(&b.trading_class));
    out
}
