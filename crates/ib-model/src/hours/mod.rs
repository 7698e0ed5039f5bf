//! Trading hours per option class: when a class's regular session (RTH) closes relative to the
//! NYSE equity close of the same session.
//!
//! Single-stock options stop trading with their underlying at 16:00 New York (13:00 on half
//! days); options on about a hundred ETF and index classes (SPY, QQQ, IWM, SPX, ...) trade until
//! 16:15 (13:15). Windows, request ends and bar labels follow the class's close, so a class's
//! hours are recorded in the contracts cache from IB's contract details (`liquidHours` and
//! `timeZoneId`, see [`parse`]) and, for caches written before they were, taken from
//! [`LATE_CLOSE_CLASSES`].

pub mod parse;

use crate::calendar::{self, Session};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use parse::{parse_hours, parse_time_zone, Hours, HoursError, LocalSession};

/// Option classes whose regular session closes 15 minutes after the equity close (16:15 New
/// York, 13:15 on half days), used when contract details are not at hand (caches written before
/// hours were recorded). From a broker's published list of options trading until 3:15 pm
/// Central; the weekly and PM-settled index classes (SPXW, NDXP, RUTW, XSP) trade like their
/// index. Contract details, when recorded, take precedence.
pub const LATE_CLOSE_CLASSES: &[&str] = &[
    "DIA", "EEM", "EFA", "FXI", "IWM", "IYR", "KBE", "KRE", "LQD", "MDY", "NDX", "NDXP", "OEF",
    "OEX", "QQQ", "RUT", "RUTW", "SPX", "SPXW", "SPY", "TLT", "UNG", "UUP", "VXX", "XEO", "XLB",
    "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY", "XME", "XRT", "XSP",
];

/// Minutes after the equity close at which [`LATE_CLOSE_CLASSES`] close.
pub const LATE_CLOSE_MINUTES: i32 = 15;

/// Largest close offset accepted (a class closing more than 4 hours after the equity close, or
/// before its open, is a data error, not a schedule).
pub const MAX_OFFSET_MINUTES: i32 = 240;

/// The close offset of a class from the built-in list: 15 for the late-closing classes, else 0.
pub fn builtin_close_offset(trading_class: &str) -> i32 {
    if LATE_CLOSE_CLASSES.contains(&trading_class) {
        LATE_CLOSE_MINUTES
    } else {
        0
    }
}

/// The close of `session` for a class closing `offset_minutes` after the equity close.
pub fn class_close(session: &Session, offset_minutes: i32) -> DateTime<Utc> {
    session.close + chrono::Duration::minutes(i64::from(offset_minutes))
}

/// `session` with its close moved to the class's close.
pub fn class_session(session: &Session, offset_minutes: i32) -> Session {
    Session {
        close: class_close(session, offset_minutes),
        ..*session
    }
}

/// Where a class's hours came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HoursSource {
    /// IB's contract details (`liquidHours`), recorded by `discover`.
    ContractDetails,
    /// The built-in list of late-closing classes (no usable contract details).
    BuiltIn,
}

/// The hours of one trading class, as the contracts cache records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassHours {
    /// Trading class, e.g. `SPY` or `SPXW`.
    pub trading_class: String,
    /// Minutes the class's regular session closes after the NYSE equity close of the same
    /// session (16:00, 13:00 on half days): 15 for SPY (16:15), 0 for AAPL.
    pub rth_close_offset_minutes: i32,
    /// Where `rth_close_offset_minutes` came from.
    pub source: HoursSource,
    /// IB's `liquidHours` as received (regular hours), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquid_hours: Option<String>,
    /// IB's `tradingHours` as received (all hours), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trading_hours: Option<String>,
    /// IB's `timeZoneId` as received, e.g. `US/Eastern`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone_id: Option<String>,
}

/// The raw hours fields of one contract-details answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawHours {
    /// `liquidHours`.
    pub liquid_hours: String,
    /// `tradingHours`.
    pub trading_hours: String,
    /// `timeZoneId`.
    pub time_zone_id: String,
}

/// Why the close offset could not be read from contract details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    /// The time zone or the hours string is malformed.
    #[error("{field}: {source}")]
    Parse {
        /// `liquidHours` or `timeZoneId`.
        field: &'static str,
        /// Where and what.
        source: HoursError,
    },
    /// No listed session falls on a NYSE session.
    #[error("liquidHours lists no session on a NYSE trading day")]
    NoSession,
    /// The close lies too far from the equity close.
    #[error(
        "liquidHours closes {0} minutes from the equity close (more than {MAX_OFFSET_MINUTES})"
    )]
    OutOfRange(i64),
}

/// The class's RTH close offset from `liquidHours` and `timeZoneId`: for each day that is a NYSE
/// session, the end of the last session ending that day minus the equity close; the most common
/// value (ties: the later close) wins, so one odd day (an expiry-day early stop) does not decide.
pub fn close_offset(raw: &RawHours) -> Result<i32, OffsetError> {
    let tz = parse_time_zone(&raw.time_zone_id).map_err(|source| OffsetError::Parse {
        field: "timeZoneId",
        source,
    })?;
    let hours = parse_hours(&raw.liquid_hours).map_err(|source| OffsetError::Parse {
        field: "liquidHours",
        source,
    })?;
    // Key each session by the New York date of its end: an overnight session listed under the
    // evening before ends on the trading day it belongs to.
    let mut last_end: BTreeMap<chrono::NaiveDate, DateTime<Utc>> = BTreeMap::new();
    for (_, _, end) in hours.sessions_utc(tz) {
        let e = last_end
            .entry(calendar::to_ny(end).date_naive())
            .or_insert(end);
        *e = (*e).max(end);
    }
    let mut votes: BTreeMap<i64, usize> = BTreeMap::new();
    for (date, end) in last_end {
        if let Ok(Some(s)) = calendar::session(date) {
            *votes.entry((end - s.close).num_minutes()).or_default() += 1;
        }
    }
    let (&best, _) = votes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
        .ok_or(OffsetError::NoSession)?;
    if best.abs() > i64::from(MAX_OFFSET_MINUTES) {
        return Err(OffsetError::OutOfRange(best));
    }
    Ok(best as i32)
}

/// The cache entry of a class from its contract details; falls back to the built-in list (and
/// says why) when the details carry no usable hours.
pub fn from_details(trading_class: &str, raw: &RawHours) -> (ClassHours, Option<OffsetError>) {
    let keep = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let (offset, source, err) = match close_offset(raw) {
        Ok(o) => (o, HoursSource::ContractDetails, None),
        Err(e) => (
            builtin_close_offset(trading_class),
            HoursSource::BuiltIn,
            Some(e),
        ),
    };
    (
        ClassHours {
            trading_class: trading_class.to_string(),
            rth_close_offset_minutes: offset,
            source,
            liquid_hours: keep(&raw.liquid_hours),
            trading_hours: keep(&raw.trading_hours),
            time_zone_id: keep(&raw.time_zone_id),
        },
        err,
    )
}

/// The built-in entry of a class (caches written before hours were recorded).
pub fn builtin(trading_class: &str) -> ClassHours {
    ClassHours {
        trading_class: trading_class.to_string(),
        rth_close_offset_minutes: builtin_close_offset(trading_class),
        source: HoursSource::BuiltIn,
        liquid_hours: None,
        trading_hours: None,
        time_zone_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(liquid: &str, tz: &str) -> RawHours {
        RawHours {
            liquid_hours: liquid.into(),
            trading_hours: liquid.into(),
            time_zone_id: tz.into(),
        }
    }

    #[test]
    fn offsets_from_liquid_hours() {
        // Tue 2026-11-24 full day, Thu 26 Thanksgiving, Fri 27 half day.
        let spy = "20261124:0930-20261124:1615;20261125:0930-20261125:1615;20261126:CLOSED;20261127:0930-20261127:1315";
        assert_eq!(close_offset(&raw(spy, "US/Eastern")).unwrap(), 15);
        let aapl = "20261124:0930-1600;20261125:0930-1600;20261126:CLOSED;20261127:0930-1300";
        assert_eq!(close_offset(&raw(aapl, "America/New_York")).unwrap(), 0);
        // Central time: 15:15 Chicago is 16:15 New York.
        let spx_ct = "20261124:0830-20261124:1515;20261125:0830-20261125:1515";
        assert_eq!(close_offset(&raw(spx_ct, "US/Central")).unwrap(), 15);
        // An overnight session before the day session does not change the close.
        let gth = "20261123:2015-20261124:0915,20261124:0930-20261124:1615";
        assert_eq!(close_offset(&raw(gth, "US/Eastern")).unwrap(), 15);
    }

    #[test]
    fn bad_details_fall_back_to_the_list() {
        let (h, e) = from_details("SPY", &raw("", "US/Eastern"));
        assert_eq!(h.rth_close_offset_minutes, 15);
        assert_eq!(h.source, HoursSource::BuiltIn);
        assert_eq!(e, Some(OffsetError::NoSession));
        let (h, e) = from_details("AAPL", &raw("20261124:0930-1600", "Nowhere/Land"));
        assert_eq!(h.rth_close_offset_minutes, 0);
        assert!(e.unwrap().to_string().starts_with("timeZoneId"));
        let (_, e) = from_details("X", &raw("20261124:0930-1600;2026112:CLOSED", "US/Eastern"));
        assert!(e.unwrap().to_string().contains("item 2"));
        let (h, e) = from_details("QQQ", &raw("20261124:0930-1615", "US/Eastern"));
        assert!(e.is_none());
        assert_eq!(h.source, HoursSource::ContractDetails);
    }

    #[test]
    fn class_closes() {
        let s = calendar::session(chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            calendar::to_ny(class_close(&s, 15))
                .format("%H:%M")
                .to_string(),
            "13:15"
        );
        assert_eq!(builtin_close_offset("SPY"), 15);
        assert_eq!(builtin_close_offset("AAPL"), 0);
    }
}
