//! The per-symbol negative cache (`{cache dir}/{SYMBOL}.missing.json`): the expiry x strike x
//! right combinations of the chain that IB answered 200 for (they do not exist), with the cache
//! date each was last asked on.
//!
//! reqSecDefOptParams lists the union of strikes over all expiries, so a large share of its
//! combinations do not exist; asking for each again every week costs two messages each (the
//! request and `ibapi`'s cancel). Incremental discovery skips a combination recorded here until
//! its check is older than the re-check age, or at once when its expiry is new in the chain.
//! The file is separate from the contracts cache (whose format others extend) and is replaced
//! atomically after a symbol's discovery succeeds, so an interrupted run leaves it as it was.
//! Its JSON Schema (`schemas/negative_cache.schema.json`) is generated from these types.

use crate::cache::Right;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Current format version of the negative cache file; bump it with a line in
/// [`NEGATIVE_FORMAT_CHANGELOG`].
pub const NEGATIVE_FORMAT_VERSION: u32 = 1;

/// What changed in each negative cache format version.
pub const NEGATIVE_FORMAT_CHANGELOG: &[(u32, &str)] = &[(1, "first version")];

/// One combination that did not exist when it was last asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MissingEntry {
    /// Trading class of the chain it came from.
    pub trading_class: String,
    /// Expiry (last trade date).
    pub expiry: NaiveDate,
    /// Strike price.
    pub strike: f64,
    /// Call or put.
    pub right: Right,
    /// Cache date of the discovery that last got error 200 for it.
    pub checked: NaiveDate,
}

/// A negative cache file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NegativeCache {
    /// Format version ([`NEGATIVE_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Underlying symbol.
    pub symbol: String,
    /// Combinations, sorted by (expiry, right, strike, trading class).
    pub missing: Vec<MissingEntry>,
}

/// Identity of a combination: trading class, expiry, right, strike in 1/10,000 (chain strikes
/// and contract-details strikes are parsed from the same decimal text, so rounding is exact).
pub type ComboKey = (String, NaiveDate, Right, i64);

/// The [`ComboKey`] of a combination.
pub fn combo_key(trading_class: &str, expiry: NaiveDate, right: Right, strike: f64) -> ComboKey {
    (
        trading_class.to_string(),
        expiry,
        right,
        (strike * 10_000.0).round() as i64,
    )
}

/// Why the negative cache could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NegativeCacheError {
    /// Unreadable file.
    #[error("{path}: cannot read the negative cache: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a negative cache.
    #[error("{path}:{line}:{column}: not a valid negative cache: {message} (see schemas/negative_cache.schema.json)")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A format this build does not know, or another symbol's file.
    #[error("{path}: {message}")]
    Mismatch {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Negative cache file of `symbol` in the contracts cache directory. The name has no
/// `_{date}` part, so cache scans (`{SYMBOL}_{YYYY-MM-DD}.json`) ignore it.
pub fn negative_path(dir: &Path, symbol: &str) -> PathBuf {
    dir.join(format!("{symbol}.missing.json"))
}

impl NegativeCache {
    /// An empty negative cache for `symbol`.
    pub fn empty(symbol: &str) -> Self {
        NegativeCache {
            format_version: NEGATIVE_FORMAT_VERSION,
            symbol: symbol.to_string(),
            missing: Vec::new(),
        }
    }

    /// Read the file of `symbol`; `Ok(None)` when there is none.
    pub fn load(path: &Path, symbol: &str) -> Result<Option<Self>, NegativeCacheError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(NegativeCacheError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let neg: NegativeCache =
            serde_json::from_slice(&bytes).map_err(|e| NegativeCacheError::Invalid {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        if neg.format_version != NEGATIVE_FORMAT_VERSION {
            return Err(NegativeCacheError::Mismatch {
                path: path.to_path_buf(),
                message: format!(
                    "format_version {} (this build reads {NEGATIVE_FORMAT_VERSION})",
                    neg.format_version
                ),
            });
        }
        if neg.symbol != symbol {
            return Err(NegativeCacheError::Mismatch {
                path: path.to_path_buf(),
                message: format!("symbol {} (expected {symbol})", neg.symbol),
            });
        }
        Ok(Some(neg))
    }

    /// Entries by combination.
    pub fn by_key(&self) -> BTreeMap<ComboKey, &MissingEntry> {
        self.missing
            .iter()
            .map(|e| (combo_key(&e.trading_class, e.expiry, e.right, e.strike), e))
            .collect()
    }

    /// The cache after a discovery on `date`: expiries on or before `date` dropped, `found`
    /// combinations removed (they exist), `not_found` ones recorded as checked on `date`;
    /// everything else (skipped ones, combinations outside today's filters) kept as it was.
    pub fn updated(
        &self,
        date: NaiveDate,
        found: &[ComboKey],
        not_found: &[MissingEntry],
    ) -> NegativeCache {
        let mut map: BTreeMap<ComboKey, MissingEntry> = self
            .missing
            .iter()
            .filter(|e| e.expiry > date)
            .map(|e| {
                (
                    combo_key(&e.trading_class, e.expiry, e.right, e.strike),
                    e.clone(),
                )
            })
            .collect();
        for k in found {
            map.remove(k);
        }
        for e in not_found {
            let mut e = e.clone();
            e.checked = date;
            map.insert(combo_key(&e.trading_class, e.expiry, e.right, e.strike), e);
        }
        let mut missing: Vec<MissingEntry> = map.into_values().collect();
        missing.sort_by(|a, b| {
            (a.expiry, a.right)
                .cmp(&(b.expiry, b.right))
                .then(a.strike.total_cmp(&b.strike))
                .then(a.trading_class.cmp(&b.trading_class))
        });
        NegativeCache {
            format_version: NEGATIVE_FORMAT_VERSION,
            symbol: self.symbol.clone(),
            missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn entry(exp: &str, strike: f64, right: Right, checked: &str) -> MissingEntry {
        MissingEntry {
            trading_class: "AAPL".into(),
            expiry: d(exp),
            strike,
            right,
            checked: d(checked),
        }
    }

    #[test]
    fn update_drops_expired_and_found_and_stamps_new_misses() {
        let neg = NegativeCache {
            format_version: NEGATIVE_FORMAT_VERSION,
            symbol: "AAPL".into(),
            missing: vec![
                entry("2026-11-20", 100.0, Right::C, "2026-11-01"),
                entry("2026-12-18", 101.0, Right::C, "2026-11-01"),
                entry("2026-12-18", 102.0, Right::P, "2026-11-01"),
            ],
        };
        let date = d("2026-11-27");
        let found = vec![combo_key("AAPL", d("2026-12-18"), Right::C, 101.0)];
        let new = vec![entry("2026-12-24", 90.5, Right::P, "2000-01-01")];
        let up = neg.updated(date, &found, &new);
        assert_eq!(
            up.missing,
            vec![
                entry("2026-12-18", 102.0, Right::P, "2026-11-01"),
                entry("2026-12-24", 90.5, Right::P, "2026-11-27"),
            ]
        );
    }

    #[test]
    fn load_reports_file_and_line_and_refuses_another_version_or_symbol() {
        let dir = tempfile::tempdir().unwrap();
        let p = negative_path(dir.path(), "AAPL");
        assert!(NegativeCache::load(&p, "AAPL").unwrap().is_none());
        std::fs::write(&p, "{\n  \"format_version\": 1,\n  \"symbol\": 3\n}").unwrap();
        let e = NegativeCache::load(&p, "AAPL").unwrap_err().to_string();
        assert!(e.contains("AAPL.missing.json:3:"), "{e}");
        let mut n = NegativeCache::empty("MSFT");
        crate::store::atomic::write_json(&p, &n).unwrap();
        let e = NegativeCache::load(&p, "AAPL").unwrap_err().to_string();
        assert!(e.contains("symbol MSFT"), "{e}");
        n.symbol = "AAPL".into();
        n.format_version = 99;
        crate::store::atomic::write_json(&p, &n).unwrap();
        let e = NegativeCache::load(&p, "AAPL").unwrap_err().to_string();
        assert!(e.contains("format_version 99"), "{e}");
    }
}
