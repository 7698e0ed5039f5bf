//! The trading hours the simulated gateway publishes in contract details and serves bars in.
//!
//! Like IB, contract details carry `liquidHours` (regular hours) and `tradingHours` (all hours)
//! for about a week from the simulated today, in the newer format
//! (`20261130:0930-20261130:1615;20261128:CLOSED`), with `timeZoneId` `US/Eastern`. Stocks
//! trade 04:00-20:00 (17:00 on half days) with regular hours 09:30-16:00 (13:00); options of
//! the classes on the late-close list ([`crate::hours::LATE_CLOSE_CLASSES`]: SPY, QQQ, IWM, ...)
//! trade 09:30-16:15 (13:15), other options 09:30-16:00 (13:00). ETF options have no session
//! outside those hours, so their `tradingHours` equal their `liquidHours`.

use crate::calendar::{self, Session};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// Days of hours listed in contract details, from today.
pub const LISTED_DAYS: u32 = 7;

/// Minutes an option class closes after the equity close in the simulated market.
pub fn option_close_offset(trading_class: &str) -> i32 {
    crate::hours::builtin_close_offset(trading_class)
}

/// `(liquidHours, tradingHours)` of an option of `trading_class`, from `today`.
pub fn option_hours(trading_class: &str, today: NaiveDate) -> (String, String) {
    let off = option_close_offset(trading_class);
    let liquid = listing(today, |s| Some((s.open, crate::hours::class_close(s, off))));
    (liquid.clone(), liquid)
}

/// `(liquidHours, tradingHours)` of a stock, from `today`: regular hours, and 04:00 to 20:00
/// (17:00 on half days) for all hours.
pub fn stock_hours(today: NaiveDate) -> (String, String) {
    let liquid = listing(today, |s| Some((s.open, s.close)));
    let trading = listing(today, |s| {
        let pre = calendar::ny_to_utc(s.date, NaiveTime::from_hms_opt(4, 0, 0)?);
        Some((pre, s.close + chrono::Duration::hours(4)))
    });
    (liquid, trading)
}

/// One `;`-separated item per calendar day from `today`: the day's session from `span`, or
/// `CLOSED`.
fn listing(
    today: NaiveDate,
    span: impl Fn(&Session) -> Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> String {
    let fmt = |t: DateTime<Utc>| calendar::to_ny(t).format("%Y%m%d:%H%M").to_string();
    let mut items = Vec::new();
    let mut d = today;
    for _ in 0..LISTED_DAYS {
        let item = match calendar::session(d).ok().flatten().and_then(|s| span(&s)) {
            Some((a, b)) => format!("{}-{}", fmt(a), fmt(b)),
            None => format!("{}:CLOSED", d.format("%Y%m%d")),
        };
        items.push(item);
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    items.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hours::{close_offset, parse_hours, RawHours};

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn published_hours_parse_back_to_the_class_close() {
        // From Tuesday 11-24: Thanksgiving closed, Friday a half day, the weekend closed.
        let (liquid, trading) = option_hours("SPY", d(11, 24));
        assert!(liquid.starts_with("20261124:0930-20261124:1615;20261125:0930-20261125:1615;20261126:CLOSED;20261127:0930-20261127:1315;20261128:CLOSED"), "{liquid}");
        assert_eq!(liquid, trading);
        let raw = |l: &str| RawHours {
            liquid_hours: l.to_string(),
            trading_hours: String::new(),
            time_zone_id: "US/Eastern".into(),
        };
        assert_eq!(close_offset(&raw(&liquid)).unwrap(), 15);
        assert_eq!(
            close_offset(&raw(&option_hours("AAPL", d(11, 24)).0)).unwrap(),
            0
        );
        let (sl, st) = stock_hours(d(11, 24));
        assert!(sl.starts_with("20261124:0930-20261124:1600;"), "{sl}");
        assert!(st.starts_with("20261124:0400-20261124:2000;"), "{st}");
        assert!(st.contains("20261127:0400-20261127:1700"), "{st}");
        assert_eq!(parse_hours(&st).unwrap().closed.len(), 3);
    }
}
