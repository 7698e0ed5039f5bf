//! The per-symbol contracts cache (`state/contracts_cache/{SYMBOL}_{YYYY-MM-DD}.json`): the set
//! of option contracts, with conIds, that existed on the cache date.
//!
//! `discover` writes it, the plan compiler reads it; the JSON Schema in
//! `schemas/contracts_cache.schema.json` is generated from these types.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The option right and the underlying's security type are IB's vocabulary, shared with the
/// simulated gateway: defined once in `ib_model` and re-exported here at their old paths.
pub use ib_model::contract::{Right, UnderlyingSecType};

/// Current format version of the cache file; bump it with a changelog line in [`FORMAT_CHANGELOG`].
pub const CACHE_FORMAT_VERSION: u32 = 2;

/// Oldest cache format version this build still reads (version 1 has no `class_hours`: the
/// hours come from the built-in list of late-closing classes, with a warning).
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// What changed in each cache format version.
pub const FORMAT_CHANGELOG: &[(u32, &str)] = &[
    (1, "first version"),
    (
        2,
        "class_hours: per trading class the RTH close offset and IB's raw liquidHours/tradingHours/timeZoneId",
    ),
];

/// Where a reference close came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CloseSource {
    /// A local close snapshot file (CSV or Parquet).
    Snapshot,
    /// Recorded in the contracts cache by `discover`.
    Cache,
    /// The gateway: underlying STK `1 day` TRADES bars.
    Gateway,
}

/// The exchange an index underlying is qualified on: IB lists SPX, XSP, VIX, OEX and XEO on
/// CBOE, NDX on NASDAQ, RUT on RUSSELL; others default to CBOE.
pub fn index_exchange(symbol: &str) -> &'static str {
    match symbol {
        "NDX" | "XND" => "NASDAQ",
        "RUT" => "RUSSELL",
        _ => "CBOE",
    }
}

/// The underlying of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Underlying {
    /// Ticker, e.g. `AAPL`.
    pub symbol: String,
    /// IB conId of the underlying contract (STK, or IND for an index).
    pub con_id: i64,
    /// `STK` (default, omitted) or `IND` (an index such as SPX: qualified as `IND` on its
    /// exchange, closes asked for as index bars).
    #[serde(default, skip_serializing_if = "UnderlyingSecType::is_stock")]
    pub sec_type: UnderlyingSecType,
    /// Currency, e.g. `USD`.
    pub currency: String,
    /// Primary listing exchange, e.g. `NASDAQ`.
    #[serde(default)]
    pub primary_exchange: Option<String>,
    /// Last close known when the cache was built, if any.
    #[serde(default)]
    pub reference_close: Option<f64>,
    /// Session date of `reference_close`.
    #[serde(default)]
    pub reference_close_date: Option<NaiveDate>,
    /// Where `reference_close` came from.
    #[serde(default)]
    pub reference_close_source: Option<CloseSource>,
}

/// One qualified option contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionContract {
    /// IB conId (positive).
    pub con_id: i64,
    /// OCC-style local symbol, e.g. `AAPL  261218C00200000`.
    pub local_symbol: String,
    /// Trading class, e.g. `AAPL` or `SPXW`.
    pub trading_class: String,
    /// Last trade date.
    pub expiry: NaiveDate,
    /// Strike price.
    pub strike: f64,
    /// Call or put.
    pub right: Right,
    /// Contract multiplier, e.g. 100.
    pub multiplier: f64,
    /// Exchange used for requests (SMART).
    pub exchange: String,
    /// Currency.
    pub currency: String,
}

impl OptionContract {
    /// The canonical contract order: expiry, right, strike, trading class, conId. Caches are
    /// written in it (the same chain always writes the same bytes) and near-ATM selections are
    /// returned in it, so both sides of a comparison agree.
    pub fn canonical_cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.expiry
            .cmp(&other.expiry)
            .then(self.right.cmp(&other.right))
            .then(self.strike.total_cmp(&other.strike))
            .then(self.trading_class.cmp(&other.trading_class))
            .then(self.con_id.cmp(&other.con_id))
    }
}

/// A contracts cache file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractsCache {
    /// Cache format version ([`CACHE_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Date the chain was discovered (the `{YYYY-MM-DD}` of the file name).
    pub as_of: NaiveDate,
    /// The underlying.
    pub underlying: Underlying,
    /// Contracts, sorted by (expiry, right, strike, trading class, conId).
    pub contracts: Vec<OptionContract>,
    /// Trading hours per trading class of `contracts`, sorted by class (format version 2; empty
    /// in version 1 caches).
    #[serde(default)]
    pub class_hours: Vec<crate::hours::ClassHours>,
}

impl ContractsCache {
    /// Sort contracts in the canonical order, so that the same chain always writes the same bytes.
    pub fn sort(&mut self) {
        self.contracts.sort_by(OptionContract::canonical_cmp);
        self.class_hours
            .sort_by(|a, b| a.trading_class.cmp(&b.trading_class));
    }

    /// The RTH close offset (minutes after the equity close) of each trading class of the
    /// contracts: the recorded hours, else the built-in list.
    pub fn close_offsets(&self) -> std::collections::BTreeMap<String, i32> {
        let mut out: std::collections::BTreeMap<String, i32> = self
            .contracts
            .iter()
            .map(|c| {
                (
                    c.trading_class.clone(),
                    crate::hours::builtin_close_offset(&c.trading_class),
                )
            })
            .collect();
        for h in &self.class_hours {
            out.insert(h.trading_class.clone(), h.rth_close_offset_minutes);
        }
        out
    }

    /// The close offsets for `use_rth` requests: [`ContractsCache::close_offsets`] for regular
    /// hours; for all hours, where the recorded `tradingHours` end each day (60 for SPX options,
    /// whose curb session runs to 17:00), never before the regular close (equity and ETF
    /// options, whose `tradingHours` equal their `liquidHours`, keep it).
    pub fn close_offsets_for(&self, use_rth: bool) -> std::collections::BTreeMap<String, i32> {
        let mut out = self.close_offsets();
        if use_rth {
            return out;
        }
        for h in &self.class_hours {
            let (Some(trading), Some(tz)) = (&h.trading_hours, &h.time_zone_id) else {
                continue;
            };
            let raw = crate::hours::RawHours {
                liquid_hours: trading.clone(),
                trading_hours: String::new(),
                time_zone_id: tz.clone(),
            };
            if let Ok(all) = crate::hours::close_offset(&raw) {
                let rth = out.entry(h.trading_class.clone()).or_default();
                *rth = (*rth).max(all);
            }
        }
        out
    }
}

/// Why a symbol cannot be used as a directory name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("symbol `{symbol}` is not allowed: {why} (symbols become directory names under the output root)")]
pub struct BadSymbol {
    /// The symbol as given.
    pub symbol: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Check that a symbol is safe to use as one path component: no separators, no `..`, no leading
/// dot, no control characters; letters, digits, `.`, `-`, `_` and a single inner space (IB spells
/// `BRK B`) only.
pub fn check_symbol(symbol: &str) -> Result<(), BadSymbol> {
    let bad = |why| {
        Err(BadSymbol {
            symbol: symbol.to_string(),
            why,
        })
    };
    if symbol.is_empty() {
        return bad("it is empty");
    }
    if symbol.len() > 32 {
        return bad("it is longer than 32 characters");
    }
    if symbol.contains('/') || symbol.contains('\\') {
        return bad("it contains a path separator");
    }
    if symbol.starts_with('.') || symbol.contains("..") {
        return bad("it starts with a dot or contains `..`");
    }
    if symbol.trim() != symbol {
        return bad("it has leading or trailing spaces");
    }
    if !symbol
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
    {
        return bad("only letters, digits, `.`, `-`, `_` and spaces are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols() {
        for ok in ["AAPL", "BRK B", "BF.B", "SPY"] {
            check_symbol(ok).unwrap();
        }
        for bad in [
            "", "../x", "A/B", "A\\B", ".hidden", " AAPL", "A\u{0}B", "A..B",
        ] {
            assert!(check_symbol(bad).is_err(), "{bad:?}");
        }
    }
}
