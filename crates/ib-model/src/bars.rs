//! Bar sizes and durations exactly as IB spells them, and two tables of the longest duration one
//! request may cover per bar size:
//!
//! - `strict`: the older table of the TWS API docs (`1 min` 1 D, `3 mins` 1 W, `30 mins` 1 M).
//!   Every gateway accepts it; the simulated gateway enforces it by default for minute bars.
//! - `observed`: what real gateways were seen to serve (late 2025 probes): `1 min` x `1 M`
//!   returned bars where `6 M` returned none, and `5 mins` to `8 hours` reached back about six
//!   months whatever the duration asked. Plans split with it by default ([`LimitTable`]); a
//!   window the gateway refuses or answers empty is split again at run time, down to the strict
//!   table, so a too-long window costs one more request, not lost bars.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::what::{BadWhatToShow, WhatToShow, WHAT_TO_SHOW, WHAT_TO_SHOW_SPELLINGS};

/// A bar size IB accepts in `reqHistoricalData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BarSize {
    Secs1,
    Secs5,
    Secs10,
    Secs15,
    Secs30,
    Min1,
    Mins2,
    Mins3,
    Mins5,
    Mins10,
    Mins15,
    Mins20,
    Mins30,
    Hour1,
    Hours2,
    Hours3,
    Hours4,
    Hours8,
    Day1,
    Week1,
    Month1,
}

/// Every legal bar size with IB's spelling, in increasing length.
pub const BAR_SIZES: &[(BarSize, &str)] = &[
    (BarSize::Secs1, "1 secs"),
    (BarSize::Secs5, "5 secs"),
    (BarSize::Secs10, "10 secs"),
    (BarSize::Secs15, "15 secs"),
    (BarSize::Secs30, "30 secs"),
    (BarSize::Min1, "1 min"),
    (BarSize::Mins2, "2 mins"),
    (BarSize::Mins3, "3 mins"),
    (BarSize::Mins5, "5 mins"),
    (BarSize::Mins10, "10 mins"),
    (BarSize::Mins15, "15 mins"),
    (BarSize::Mins20, "20 mins"),
    (BarSize::Mins30, "30 mins"),
    (BarSize::Hour1, "1 hour"),
    (BarSize::Hours2, "2 hours"),
    (BarSize::Hours3, "3 hours"),
    (BarSize::Hours4, "4 hours"),
    (BarSize::Hours8, "8 hours"),
    (BarSize::Day1, "1 day"),
    (BarSize::Week1, "1W"),
    (BarSize::Month1, "1M"),
];

impl BarSize {
    /// IB's spelling, e.g. `8 hours`.
    pub fn as_str(self) -> &'static str {
        BAR_SIZES
            .iter()
            .find(|(b, _)| *b == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }

    /// File-name form: spaces replaced by underscores (`8_hours`).
    pub fn file_stem(self) -> String {
        self.as_str().replace(' ', "_")
    }

    /// Length of one bar in seconds (a week is 7 days, a month 30: used for alignment of
    /// intraday bars and for estimates only).
    pub fn seconds(self) -> i64 {
        use BarSize::*;
        match self {
            Secs1 => 1,
            Secs5 => 5,
            Secs10 => 10,
            Secs15 => 15,
            Secs30 => 30,
            Min1 => 60,
            Mins2 => 120,
            Mins3 => 180,
            Mins5 => 300,
            Mins10 => 600,
            Mins15 => 900,
            Mins20 => 1200,
            Mins30 => 1800,
            Hour1 => 3600,
            Hours2 => 7200,
            Hours3 => 10800,
            Hours4 => 14400,
            Hours8 => 28800,
            Day1 => 86400,
            Week1 => 7 * 86400,
            Month1 => 30 * 86400,
        }
    }

    /// Bars of 30 seconds or less fall under IB's hard pacing rules (15 s identical request,
    /// 6 per contract in 2 s, 60 in 10 minutes).
    pub fn is_small(self) -> bool {
        self.seconds() <= 30
    }

    /// Daily or longer bars carry a `YYYYMMDD` date rather than a time.
    pub fn is_daily_or_longer(self) -> bool {
        self.seconds() >= 86400
    }

    /// The longest duration IB accepts for this bar size, from the strict older table:
    /// `1 secs` 1800 S, `5 secs` 3600 S, `10 secs` 14400 S, `15-30 secs` 28800 S, `1 min` 1 D,
    /// `2 mins` 2 D, `3-20 mins` 1 W, `30 mins`-`8 hours` 1 M, `1 day` 1 Y, `1W`/`1M` 5 Y.
    /// The executor falls back to it when a longer window is refused or answered empty.
    pub fn strict_max_duration(self) -> Duration {
        use BarSize::*;
        use DurationUnit::*;
        let (n, u) = match self {
            Secs1 => (1800, Seconds),
            Secs5 => (3600, Seconds),
            Secs10 => (14400, Seconds),
            Secs15 | Secs30 => (28800, Seconds),
            Min1 => (1, Days),
            Mins2 => (2, Days),
            Mins3 | Mins5 | Mins10 | Mins15 | Mins20 => (1, Weeks),
            Mins30 | Hour1 | Hours2 | Hours3 | Hours4 | Hours8 => (1, Months),
            Day1 => (1, Years),
            Week1 | Month1 => (5, Years),
        };
        Duration { n, unit: u }
    }

    /// The longest duration real gateways were seen to serve for this bar size: seconds bars as
    /// in the strict table, `1 min`-`3 mins` 1 M (a `1 min` x `6 M` request came back with zero
    /// bars), `5 mins`-`8 hours` 1 Y (served back to about six months whatever the duration,
    /// cut at the contract's listing), daily and longer as in the strict table.
    pub fn observed_max_duration(self) -> Duration {
        use BarSize::*;
        use DurationUnit::*;
        match self {
            Min1 | Mins2 | Mins3 => Duration { n: 1, unit: Months },
            Mins5 | Mins10 | Mins15 | Mins20 | Mins30 | Hour1 | Hours2 | Hours3 | Hours4
            | Hours8 => Duration { n: 1, unit: Years },
            Secs1 | Secs5 | Secs10 | Secs15 | Secs30 | Day1 | Week1 | Month1 => {
                self.strict_max_duration()
            }
        }
    }

    /// The strict table ([`BarSize::strict_max_duration`]), which the simulated gateway
    /// enforces by default. Plans do not use this directly: they split with their
    /// [`LimitTable`] (default `observed`) and overrides.
    pub fn max_duration(self) -> Duration {
        self.strict_max_duration()
    }

    /// The closest legal spelling to `s`, for "did you mean" hints.
    pub fn did_you_mean(s: &str) -> Option<&'static str> {
        let norm = s.trim().to_ascii_lowercase();
        BAR_SIZES
            .iter()
            .map(|(_, legal)| {
                let same_count = norm.split_whitespace().next() == legal.split_whitespace().next();
                (
                    edit_distance(&norm, &legal.to_ascii_lowercase()),
                    !same_count,
                    *legal,
                )
            })
            .filter(|(d, _, _)| *d <= 3)
            .min_by_key(|(d, other_count, _)| (*d, *other_count))
            .map(|(_, _, l)| l)
    }

    /// All legal spellings joined with commas, for error messages.
    pub fn legal_list() -> String {
        BAR_SIZES
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for BarSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for BarSize {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A bar size IB does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal bar size `{0}`")]
pub struct BadBarSize(pub String);

impl FromStr for BarSize {
    type Err = BadBarSize;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BAR_SIZES
            .iter()
            .find(|(_, legal)| *legal == s.trim())
            .map(|(b, _)| *b)
            .ok_or_else(|| BadBarSize(s.to_string()))
    }
}

impl Serialize for BarSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BarSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A built-in table of the longest duration per request for each bar size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitTable {
    /// The older TWS API table (`1 min` 1 D, `3`-`20 mins` 1 W, `30 mins`-`8 hours` 1 M):
    /// always accepted, many more requests (`1 min` x `1 M` is 22 requests of `1 D`).
    Strict,
    /// What real gateways were seen to serve (`1 min`-`3 mins` 1 M, `5 mins`-`8 hours` 1 Y;
    /// seconds bars as strict): the default for plans, since the executor splits a window the
    /// gateway will not serve.
    #[default]
    Observed,
}

/// Every table with its name in plans and manifests.
pub const LIMIT_TABLES: &[(LimitTable, &str)] = &[
    (LimitTable::Strict, "strict"),
    (LimitTable::Observed, "observed"),
];

impl LimitTable {
    /// The longest duration one request may cover for `bar` under this table.
    pub fn max_duration(self, bar: BarSize) -> Duration {
        match self {
            LimitTable::Strict => bar.strict_max_duration(),
            LimitTable::Observed => bar.observed_max_duration(),
        }
    }

    /// The name used in plans and manifests (`strict`, `observed`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitTable::Strict => "strict",
            LimitTable::Observed => "observed",
        }
    }
}

impl fmt::Display for LimitTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A limit table name that is neither `strict` nor `observed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown limit table `{0}`")]
pub struct BadLimitTable(pub String);

impl FromStr for LimitTable {
    type Err = BadLimitTable;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LIMIT_TABLES
            .iter()
            .find(|(_, name)| *name == s.trim())
            .map(|(t, _)| *t)
            .ok_or_else(|| BadLimitTable(s.to_string()))
    }
}

/// Unit of an IB duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DurationUnit {
    Seconds,
    Days,
    Weeks,
    Months,
    Years,
}

impl DurationUnit {
    fn letter(self) -> char {
        match self {
            DurationUnit::Seconds => 'S',
            DurationUnit::Days => 'D',
            DurationUnit::Weeks => 'W',
            DurationUnit::Months => 'M',
            DurationUnit::Years => 'Y',
        }
    }
}

/// An IB duration such as `6 M` (grammar `N S|D|W|M|Y`, N a positive integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration {
    /// Count of units, at least 1.
    pub n: u32,
    /// Unit.
    pub unit: DurationUnit,
}

impl Duration {
    /// Approximate length in seconds, calendar based (a month is 30 days, a year 365): used to
    /// compare durations against the limit table, the same way IB compares them.
    pub fn approx_seconds(self) -> i64 {
        let per = match self.unit {
            DurationUnit::Seconds => 1,
            DurationUnit::Days => 86400,
            DurationUnit::Weeks => 7 * 86400,
            DurationUnit::Months => 30 * 86400,
            DurationUnit::Years => 365 * 86400,
        };
        per * self.n as i64
    }

    /// Calendar span covered by this duration ending at `end` (exclusive end): the start date.
    /// Months and years are calendar months/years back, as IB counts them.
    pub fn start_before(self, end: chrono::NaiveDate) -> chrono::NaiveDate {
        use chrono::Months;
        match self.unit {
            DurationUnit::Seconds => end
                .checked_sub_signed(chrono::Duration::seconds(i64::from(self.n)))
                .unwrap_or(chrono::NaiveDate::MIN),
            DurationUnit::Days => end
                .checked_sub_signed(chrono::Duration::days(i64::from(self.n)))
                .unwrap_or(chrono::NaiveDate::MIN),
            DurationUnit::Weeks => end
                .checked_sub_signed(chrono::Duration::weeks(i64::from(self.n)))
                .unwrap_or(chrono::NaiveDate::MIN),
            DurationUnit::Months => end
                .checked_sub_months(Months::new(self.n))
                .unwrap_or(chrono::NaiveDate::MIN),
            DurationUnit::Years => end
                .checked_sub_months(Months::new(self.n.saturating_mul(12)))
                .unwrap_or(chrono::NaiveDate::MIN),
        }
    }
}

impl Duration {
    /// First instant of the window that ends at `end` (exclusive) with this duration, in the
    /// semantics the simulated gateway implements and the executor plans with:
    /// `N D` counts N trading sessions back (the open of the N-th session among those that start
    /// before `end`, so `1 D` ending at a session's close is exactly that session, half days
    /// included); `N W` is 7N calendar days; `N M`/`N Y` calendar months/years; `N S` seconds.
    pub fn window_start(self, end: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        use chrono::Months;
        let n = self.n;
        match self.unit {
            DurationUnit::Seconds => end
                .checked_sub_signed(chrono::Duration::seconds(i64::from(n)))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            DurationUnit::Weeks => end
                .checked_sub_signed(chrono::Duration::weeks(i64::from(n)))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            DurationUnit::Months => end.checked_sub_months(Months::new(n)).unwrap_or(end),
            DurationUnit::Years => end
                .checked_sub_months(Months::new(n.saturating_mul(12)))
                .unwrap_or(end),
            DurationUnit::Days => {
                let mut date = crate::calendar::to_ny(end).date_naive();
                let mut found = 0;
                let mut start = end;
                // Bounded walk: at most n sessions, each within a few calendar days.
                for _ in 0..(n as usize * 7 + 14) {
                    match crate::calendar::session(date) {
                        Ok(Some(s)) if s.open < end => {
                            found += 1;
                            start = s.open;
                            if found == n {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    match date.pred_opt() {
                        Some(d) => date = d,
                        None => break,
                    }
                }
                start
            }
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.n, self.unit.letter())
    }
}

/// A duration string that does not follow `N S|D|W|M|Y`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad duration `{0}`: expected `N S|D|W|M|Y` with N a positive integer, e.g. `6 M` or `1 D`"
)]
pub struct BadDuration(pub String);

impl FromStr for Duration {
    type Err = BadDuration;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadDuration(s.to_string());
        let mut parts = s.split_whitespace();
        let n: u32 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let unit = match parts.next().ok_or_else(bad)? {
            "S" => DurationUnit::Seconds,
            "D" => DurationUnit::Days,
            "W" => DurationUnit::Weeks,
            "M" => DurationUnit::Months,
            "Y" => DurationUnit::Years,
            _ => return Err(bad()),
        };
        if parts.next().is_some() || n == 0 {
            return Err(bad());
        }
        Ok(Duration { n, unit })
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Levenshtein distance, for did-you-mean hints on short strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizes_round_trip() {
        for (b, s) in BAR_SIZES {
            assert_eq!(s.parse::<BarSize>().unwrap(), *b);
            assert_eq!(b.as_str(), *s);
        }
        assert!("7 mins".parse::<BarSize>().is_err());
        assert_eq!(BarSize::Hours8.file_stem(), "8_hours");
        for ((w, s), spelled) in WHAT_TO_SHOW.iter().zip(WHAT_TO_SHOW_SPELLINGS) {
            assert_eq!(w.as_str(), *s);
            assert_eq!(s, spelled);
            assert_eq!(s.parse::<WhatToShow>().unwrap(), *w);
            assert_eq!(serde_json::to_string(w).unwrap(), format!("\"{s}\""));
        }
        assert!("trades".parse::<WhatToShow>().is_err());
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(BarSize::did_you_mean("30 min"), Some("30 mins"));
        assert_eq!(BarSize::did_you_mean("8 hour"), Some("8 hours"));
        assert_eq!(BarSize::did_you_mean("fortnightly"), None);
    }

    #[test]
    fn durations() {
        let d: Duration = "6 M".parse().unwrap();
        assert_eq!(
            d,
            Duration {
                n: 6,
                unit: DurationUnit::Months
            }
        );
        assert_eq!(d.to_string(), "6 M");
        for bad in ["6M", "0 D", "1 X", "", "1 D 2", "-1 D", "x D"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn window_start_counts_sessions() {
        use chrono::NaiveDate;
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let fri = crate::calendar::session(d(11, 27)).unwrap().unwrap();
        let one: Duration = "1 D".parse().unwrap();
        assert_eq!(
            one.window_start(fri.close),
            fri.open,
            "half day is one session"
        );
        // Two sessions back from Friday skips Thanksgiving Thursday.
        let two: Duration = "2 D".parse().unwrap();
        let wed = crate::calendar::session(d(11, 25)).unwrap().unwrap();
        assert_eq!(two.window_start(fri.close), wed.open);
        let m: Duration = "1 M".parse().unwrap();
        assert_eq!(
            m.window_start(fri.close),
            fri.close
                .checked_sub_months(chrono::Months::new(1))
                .unwrap()
        );
    }

    #[test]
    fn strict_limits() {
        assert_eq!(BarSize::Min1.strict_max_duration().to_string(), "1 D");
        assert_eq!(BarSize::Mins5.strict_max_duration().to_string(), "1 W");
        assert_eq!(BarSize::Mins30.strict_max_duration().to_string(), "1 M");
        assert_eq!(BarSize::Hours8.strict_max_duration().to_string(), "1 M");
        assert_eq!(
            BarSize::Min1.max_duration(),
            BarSize::Min1.strict_max_duration()
        );
        assert!(BarSize::Secs30.is_small() && !BarSize::Min1.is_small());
    }

    #[test]
    fn observed_limits() {
        let t = LimitTable::default();
        assert_eq!(
            t,
            LimitTable::Observed,
            "plans default to the observed table"
        );
        for (bar, want) in [
            (BarSize::Secs1, "1800 S"),
            (BarSize::Secs30, "28800 S"),
            (BarSize::Min1, "1 M"),
            (BarSize::Mins2, "1 M"),
            (BarSize::Mins3, "1 M"),
            (BarSize::Mins5, "1 Y"),
            (BarSize::Mins30, "1 Y"),
            (BarSize::Hours8, "1 Y"),
        ] {
            assert_eq!(t.max_duration(bar).to_string(), want, "{bar}");
        }
        // The observed table never allows less than the strict one.
        for (bar, _) in BAR_SIZES {
            assert!(
                LimitTable::Observed.max_duration(*bar).approx_seconds()
                    >= LimitTable::Strict.max_duration(*bar).approx_seconds(),
                "{bar}"
            );
        }
    }

    #[test]
    fn limit_table_names() {
        for (t, name) in LIMIT_TABLES {
            assert_eq!(name.parse::<LimitTable>().unwrap(), *t);
            assert_eq!(t.to_string(), *name);
            assert_eq!(serde_json::to_string(t).unwrap(), format!("\"{name}\""));
        }
        assert!("Strict ".parse::<LimitTable>().is_err());
        assert!("lenient".parse::<LimitTable>().is_err());
    }
}
