//! The unit of work: one historical-data request for one contract, bar size and window.
//!
//! The compiler produces these, the executor consumes them, the summary JSONL records them by
//! [`FetchTask::id`]; keeping the struct in one place keeps the three in step.

use crate::bars::{BarSize, Duration};
use crate::cache::Right;
use crate::store::parquet::SeriesKey;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One `reqHistoricalData` request for one option contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchTask {
    /// Stable id derived from the canonical request ([`task_id`]).
    pub id: String,
    /// Phase name from the plan.
    pub phase: String,
    /// Underlying symbol.
    pub symbol: String,
    /// Option conId.
    pub con_id: i64,
    /// Local symbol (used in IB's no-data message and in logs).
    pub local_symbol: String,
    /// Trading class.
    pub trading_class: String,
    /// Expiry (last trade date).
    pub expiry: NaiveDate,
    /// Strike.
    pub strike: f64,
    /// Right.
    pub right: Right,
    /// Multiplier.
    pub multiplier: f64,
    /// Exchange for the request (SMART).
    pub exchange: String,
    /// Currency.
    pub currency: String,
    /// `TRADES`, `MIDPOINT`, `BID_ASK`, ...
    pub what: String,
    /// Bar size.
    #[schemars(with = "String")]
    pub bar_size: BarSize,
    /// Duration of the window ending at `end`.
    #[schemars(with = "String")]
    pub duration: Duration,
    /// End of the window (exclusive), UTC: the close of the window's last session.
    pub end: DateTime<Utc>,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// Index of this window among the contract's windows for the same bar cell, oldest first;
    /// windows of one contract are fetched in this order.
    pub window: u32,
}

impl FetchTask {
    /// The output file's identity (the executor writes it, `verify` and resume read it).
    pub fn series_key(&self) -> SeriesKey {
        SeriesKey {
            symbol: self.symbol.clone(),
            con_id: self.con_id,
            expiry: self.expiry,
            strike: self.strike,
            right: self.right,
            bar_size: self.bar_size,
            what: self.what.clone(),
            local_symbol: self.local_symbol.clone(),
            trading_class: self.trading_class.clone(),
            multiplier: self.multiplier,
            exchange: self.exchange.clone(),
            currency: self.currency.clone(),
        }
    }

    /// The bar file's path relative to the scope's bar directory (the coverage index's key).
    pub fn relative_bar_path(&self) -> String {
        format!(
            "{}/{}/{}/{}.parquet",
            self.symbol,
            self.con_id,
            self.what,
            self.bar_size.file_stem()
        )
    }
}

/// Stable task id: the first 16 hex digits of SHA-256 over the canonical request
/// `conId|what|bar size|end (RFC 3339 UTC)|duration|use_rth`. It does not depend on the phase
/// name, the plan file or the order of compilation, so renaming a phase or reordering a plan keeps
/// the resume state.
pub fn task_id(
    con_id: i64,
    what: &str,
    bar_size: BarSize,
    end: DateTime<Utc>,
    duration: Duration,
    use_rth: bool,
) -> String {
    let canonical = format!(
        "{con_id}|{what}|{bar_size}|{}|{duration}|{}",
        end.format("%Y-%m-%dT%H:%M:%SZ"),
        u8::from(use_rth)
    );
    let digest = Sha256::digest(canonical.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let end = DateTime::parse_from_rfc3339("2026-11-27T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = task_id(
            1,
            "TRADES",
            BarSize::Hours8,
            end,
            "6 M".parse().unwrap(),
            true,
        );
        assert_eq!(
            a,
            task_id(
                1,
                "TRADES",
                BarSize::Hours8,
                end,
                "6 M".parse().unwrap(),
                true
            )
        );
        assert_eq!(a.len(), 16);
        assert_ne!(
            a,
            task_id(
                2,
                "TRADES",
                BarSize::Hours8,
                end,
                "6 M".parse().unwrap(),
                true
            )
        );
        assert_ne!(
            a,
            task_id(
                1,
                "TRADES",
                BarSize::Hours8,
                end,
                "6 M".parse().unwrap(),
                false
            )
        );
    }
}
