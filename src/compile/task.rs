//! The unit of work: one historical-data request for one contract, bar size and window.
//!
//! The compiler produces these, the executor consumes them, the summary JSONL records them by
//! [`FetchTask::id`]; keeping the struct in one place keeps the three in step.

use crate::bars::{BarSize, Duration, WhatToShow};
use crate::cache::{OptionContract, Right};
use crate::store::parquet::SeriesKey;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// One `reqHistoricalData` request for one option contract.
///
/// The contract, the phase name and the symbol are shared by every task of the same contract
/// (the compiler creates one `Arc` per contract, a manifest read shares them again): a queued
/// task is a few pointers and its window, not nine copied strings, which is what keeps a
/// 360,000-task run small. The manifest still spells every task out flat (`FetchTaskWire`),
/// byte for byte as before.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchTask {
    /// Stable id derived from the canonical request ([`task_id`]).
    pub id: String,
    /// Phase name from the plan.
    pub phase: Arc<str>,
    /// Underlying symbol.
    pub symbol: Arc<str>,
    /// The option contract (conId, local symbol, class, expiry, strike, right, multiplier,
    /// exchange, currency).
    pub contract: Arc<OptionContract>,
    /// `TRADES`, `MIDPOINT`, `BID_ASK`, ...
    pub what: WhatToShow,
    /// Bar size.
    pub bar_size: BarSize,
    /// Duration of the window ending at `end`.
    pub duration: Duration,
    /// End of the window (exclusive), UTC: the close of the window's last session.
    pub end: DateTime<Utc>,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// Index of this window among the contract's windows for the same bar cell, oldest first;
    /// windows of one contract are fetched in this order.
    pub window: u32,
}

// A task as the manifest spells it: the contract's fields in line with the request's, in this
// order. Its doc comment is the schema's description of `FetchTask`.
/// One `reqHistoricalData` request for one option contract.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FetchTask")]
struct FetchTaskWire<S> {
    /// Stable id derived from the canonical request ([`task_id`]).
    id: S,
    /// Phase name from the plan.
    phase: S,
    /// Underlying symbol.
    symbol: S,
    /// Option conId.
    con_id: i64,
    /// Local symbol (used in IB's no-data message and in logs).
    local_symbol: S,
    /// Trading class.
    trading_class: S,
    /// Expiry (last trade date).
    expiry: NaiveDate,
    /// Strike.
    strike: f64,
    /// Right.
    right: Right,
    /// Multiplier.
    multiplier: f64,
    /// Exchange for the request (SMART).
    exchange: S,
    /// Currency.
    currency: S,
    /// `TRADES`, `MIDPOINT`, `BID_ASK`, ...
    what: WhatToShow,
    /// Bar size.
    #[schemars(with = "String")]
    bar_size: BarSize,
    /// Duration of the window ending at `end`.
    #[schemars(with = "String")]
    duration: Duration,
    /// End of the window (exclusive), UTC: the close of the window's last session.
    end: DateTime<Utc>,
    /// Regular trading hours only.
    use_rth: bool,
    /// Index of this window among the contract's windows for the same bar cell, oldest first;
    /// windows of one contract are fetched in this order.
    window: u32,
}

impl Serialize for FetchTask {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        let c = &*self.contract;
        FetchTaskWire::<&str> {
            id: &self.id,
            phase: &self.phase,
            symbol: &self.symbol,
            con_id: c.con_id,
            local_symbol: &c.local_symbol,
            trading_class: &c.trading_class,
            expiry: c.expiry,
            strike: c.strike,
            right: c.right,
            multiplier: c.multiplier,
            exchange: &c.exchange,
            currency: &c.currency,
            what: self.what,
            bar_size: self.bar_size,
            duration: self.duration,
            end: self.end,
            use_rth: self.use_rth,
            window: self.window,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FetchTask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = FetchTaskWire::<String>::deserialize(d)?;
        Ok(FetchTask {
            id: w.id,
            phase: w.phase.into(),
            symbol: w.symbol.into(),
            contract: Arc::new(OptionContract {
                con_id: w.con_id,
                local_symbol: w.local_symbol,
                trading_class: w.trading_class,
                expiry: w.expiry,
                strike: w.strike,
                right: w.right,
                multiplier: w.multiplier,
                exchange: w.exchange,
                currency: w.currency,
            }),
            what: w.what,
            bar_size: w.bar_size,
            duration: w.duration,
            end: w.end,
            use_rth: w.use_rth,
            window: w.window,
        })
    }
}

impl schemars::JsonSchema for FetchTask {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FetchTask".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        FetchTaskWire::<String>::json_schema(generator)
    }
}

/// Share the contract, phase and symbol of tasks read one by one (a manifest): one allocation
/// per distinct value, as the compiler made them, instead of one per task.
pub fn share_parts(tasks: &mut [FetchTask]) {
    let mut contracts: HashMap<i64, Arc<OptionContract>> = HashMap::new();
    let mut names: HashMap<Arc<str>, Arc<str>> = HashMap::new();
    let mut share = |s: &mut Arc<str>| {
        let shared = names.entry(s.clone()).or_insert_with(|| s.clone());
        *s = shared.clone();
    };
    for t in tasks {
        share(&mut t.phase);
        share(&mut t.symbol);
        match contracts.get(&t.contract.con_id) {
            Some(c) if **c == *t.contract => t.contract = c.clone(),
            Some(_) => {}
            None => {
                contracts.insert(t.contract.con_id, t.contract.clone());
            }
        }
    }
}

impl FetchTask {
    /// The output file's identity (the executor writes it, `verify` and resume read it).
    pub fn series_key(&self) -> SeriesKey {
        let c = &*self.contract;
        SeriesKey {
            symbol: self.symbol.to_string(),
            con_id: c.con_id,
            expiry: c.expiry,
            strike: c.strike,
            right: c.right,
            bar_size: self.bar_size,
            what: self.what.as_str().to_string(),
            local_symbol: c.local_symbol.clone(),
            trading_class: c.trading_class.clone(),
            multiplier: c.multiplier,
            exchange: c.exchange.clone(),
            currency: c.currency.clone(),
        }
    }

    /// The bar file's path relative to the scope's bar directory (the coverage index's key).
    pub fn relative_bar_path(&self) -> String {
        format!(
            "{}/{}/{}/{}.parquet",
            self.symbol,
            self.contract.con_id,
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

    fn task(con_id: i64, window: u32) -> FetchTask {
        let end = DateTime::parse_from_rfc3339("2026-11-27T21:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        FetchTask {
            id: format!("{con_id}-{window}"),
            phase: String::from("hours").into(),
            symbol: String::from("AAPL").into(),
            contract: Arc::new(OptionContract {
                con_id,
                local_symbol: "AAPL  261218C00200000".into(),
                trading_class: "AAPL".into(),
                expiry: NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
                strike: 200.0,
                right: Right::C,
                multiplier: 100.0,
                exchange: "SMART".into(),
                currency: "USD".into(),
            }),
            what: WhatToShow::Trades,
            bar_size: BarSize::Hours8,
            duration: "6 M".parse().unwrap(),
            end,
            use_rth: true,
            window,
        }
    }

    /// The manifest spells a task flat, the contract's fields in line, in the order it always
    /// had; reading it back gives the same task.
    #[test]
    fn a_task_serializes_flat_in_the_manifest_order() {
        let t = task(7, 1);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"id":"7-1","phase":"hours","symbol":"AAPL","con_id":7,"local_symbol":"AAPL  261218C00200000","trading_class":"AAPL","expiry":"2026-12-18","strike":200.0,"right":"C","multiplier":100.0,"exchange":"SMART","currency":"USD","what":"TRADES","bar_size":"8 hours","duration":"6 M","end":"2026-11-27T21:00:00Z","use_rth":true,"window":1}"#
        );
        assert_eq!(serde_json::from_str::<FetchTask>(&json).unwrap(), t);
        let unknown = json.replace("\"window\":1", "\"window\":1,\"extra\":0");
        assert!(serde_json::from_str::<FetchTask>(&unknown).is_err());
    }

    /// Tasks read one by one share one contract, phase and symbol again; a queued task stays a
    /// few pointers and its window (issue 16: 360,000 of them).
    #[test]
    fn tasks_read_back_share_their_contract() {
        let mut tasks = vec![task(7, 0), task(7, 1), task(8, 0)];
        assert!(!Arc::ptr_eq(&tasks[0].contract, &tasks[1].contract));
        share_parts(&mut tasks);
        assert!(Arc::ptr_eq(&tasks[0].contract, &tasks[1].contract));
        assert!(!Arc::ptr_eq(&tasks[0].contract, &tasks[2].contract));
        assert!(Arc::ptr_eq(&tasks[0].phase, &tasks[2].phase));
        assert!(Arc::ptr_eq(&tasks[0].symbol, &tasks[2].symbol));
        assert!(std::mem::size_of::<FetchTask>() <= 96);
    }

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
