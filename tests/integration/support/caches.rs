//! Contracts caches written from the simulator's market, so a test's universe is exactly what
//! the gateway it runs against serves.

use super::end_date;
use chrono::NaiveDate;
use opt_backfill::cache::{ContractsCache, OptionContract, Underlying, CACHE_FORMAT_VERSION};
use opt_backfill::sim::Market;
use std::path::Path;

/// Which contracts a cache holds: those of the first `expiries` expiries after the end with
/// strikes within `band` of the close, at most `per_symbol` of them spread evenly over the
/// strikes (so a wide band still gives a small, far-reaching sample).
#[derive(Clone, Copy, Debug)]
pub struct Caches {
    /// Expiries after the end date.
    pub expiries: usize,
    /// Strike band as a fraction of the close.
    pub band: f64,
    /// Most contracts per symbol.
    pub per_symbol: usize,
}

impl Caches {
    /// Every contract of the first `expiries` expiries within `band` of the close.
    pub fn near(expiries: usize, band: f64) -> Caches {
        Caches {
            expiries,
            band,
            per_symbol: usize::MAX,
        }
    }

    /// As [`Caches::near`], keeping at most `per_symbol` contracts per symbol.
    pub fn sampled(expiries: usize, band: f64, per_symbol: usize) -> Caches {
        Caches {
            expiries,
            band,
            per_symbol,
        }
    }

    /// Write one cache per symbol into `dir`; returns the number of contracts written.
    pub fn write(&self, market: &Market, symbols: &[String], dir: &Path) -> usize {
        std::fs::create_dir_all(dir).unwrap();
        symbols
            .iter()
            .map(|sym| self.write_one(market, sym, dir))
            .sum()
    }

    fn write_one(&self, market: &Market, sym: &str, dir: &Path) -> usize {
        let u = market
            .underlying(sym)
            .unwrap_or_else(|| panic!("sim has no {sym}"));
        let close = market.close(sym, end_date()).unwrap();
        let all = market.existing_contracts(sym);
        let mut exps: Vec<NaiveDate> = all
            .iter()
            .map(|c| c.expiry)
            .filter(|e| *e > end_date())
            .collect();
        exps.sort();
        exps.dedup();
        exps.truncate(self.expiries);
        let contracts: Vec<_> = all
            .iter()
            .filter(|c| exps.contains(&c.expiry) && (c.strike - close).abs() <= self.band * close)
            .collect();
        let stride = contracts.len().div_ceil(self.per_symbol.max(1)).max(1);
        let contracts: Vec<OptionContract> = contracts
            .iter()
            .step_by(stride)
            .map(|c| OptionContract {
                con_id: c.con_id,
                local_symbol: c.local_symbol.clone(),
                trading_class: c.trading_class.clone(),
                expiry: c.expiry,
                strike: c.strike,
                right: c.right,
                multiplier: c.multiplier,
                exchange: c.exchange.clone(),
                currency: c.currency.clone(),
            })
            .collect();
        let n = contracts.len();
        let mut cache = ContractsCache {
            format_version: CACHE_FORMAT_VERSION,
            as_of: end_date(),
            underlying: Underlying {
                symbol: sym.to_string(),
                con_id: u.con_id,
                sec_type: Default::default(),
                currency: "USD".into(),
                primary_exchange: None,
                reference_close: Some(close),
                reference_close_date: Some(end_date()),
                reference_close_source: Some(opt_backfill::cache::CloseSource::Cache),
            },
            contracts,
            class_hours: Vec::new(),
        };
        cache.sort();
        let path = dir.join(format!("{sym}_{}.json", end_date()));
        std::fs::write(path, serde_json::to_vec_pretty(&cache).unwrap()).unwrap();
        n
    }
}

/// Every cache in `dir` (not the negative caches or other non-cache files).
pub fn read_caches(dir: &Path) -> Vec<ContractsCache> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// The first `n` symbols of the simulated universe.
pub fn first_symbols(market: &Market, n: usize) -> Vec<String> {
    market
        .underlyings()
        .iter()
        .take(n)
        .map(|u| u.symbol.clone())
        .collect()
}
