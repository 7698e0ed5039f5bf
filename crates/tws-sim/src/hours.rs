//! The trading hours the simulated gateway publishes in contract details and serves bars in.
//!
//! Like IB, contract details carry `liquidHours` (regular hours) and `tradingHours` (all hours)
//! for about a week from the simulated today, in the newer format
//! (`20261130:0930-20261130:1615;20261128:CLOSED`), with `timeZoneId` `US/Eastern`. Stocks
//! trade 04:00-20:00 (17:00 on half days) with regular hours 09:30-16:00 (13:00); options of
//! the classes on the late-close list ([`ib_model::hours::LATE_CLOSE_CLASSES`]: SPY, QQQ, IWM, ...)
//! trade 09:30-16:15 (13:15), other options 09:30-16:00 (13:00). Equity and ETF options have
//! no session outside those hours, so their `tradingHours` equal their `liquidHours`; options
//! on the index SPX (classes SPX and SPXW) also trade in Cboe's global trading hours, from
//! 20:15 the evening before to 09:15, and in the curb session, 16:15-17:00 (45 minutes after
//! the close on half days too), which their `tradingHours` list
//! (`20261130:2015-20261201:0915,20261201:0930-20261201:1615,20261201:1615-20261201:1700`) and
//! `use_rth = false` requests are served.

use super::window::{Extended, ServedHours};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use ib_model::calendar::{self, Session};

/// Days of hours listed in contract details, from today.
pub const LISTED_DAYS: u32 = 7;

/// Option classes with sessions outside regular hours (Cboe's SPX and SPXW).
pub const EXTENDED_CLASSES: &[&str] = &["SPX", "SPXW"];

/// The extended sessions of [`EXTENDED_CLASSES`]: global trading hours 20:15 (the evening
/// before) to 09:15, curb 45 minutes after the close.
pub const INDEX_EXTENDED: Extended = Extended {
    overnight_start: match NaiveTime::from_hms_opt(20, 15, 0) {
        Some(t) => t,
        None => unreachable!(),
    },
    overnight_end: match NaiveTime::from_hms_opt(9, 15, 0) {
        Some(t) => t,
        None => unreachable!(),
    },
    after_close_minutes: 45,
};

/// Minutes an option class closes after the equity close in the simulated market.
pub fn option_close_offset(trading_class: &str) -> i32 {
    ib_model::hours::builtin_close_offset(trading_class)
}

/// The hours an option of `trading_class` is served in: regular hours, plus the class's
/// extended sessions when `use_rth` is false.
pub fn option_served_hours(trading_class: &str, use_rth: bool) -> ServedHours {
    ServedHours {
        close_offset: option_close_offset(trading_class),
        extended: (!use_rth && EXTENDED_CLASSES.contains(&trading_class)).then_some(INDEX_EXTENDED),
    }
}

/// `(liquidHours, tradingHours)` of an option of `trading_class`, from `today`.
pub fn option_hours(trading_class: &str, today: NaiveDate) -> (String, String) {
    let off = option_close_offset(trading_class);
    let liquid = listing(today, |s| {
        Some((s.open, ib_model::hours::class_close(s, off)))
    });
    let all = option_served_hours(trading_class, false);
    if all.extended.is_none() {
        return (liquid.clone(), liquid);
    }
    let fmt = |t: DateTime<Utc>| calendar::to_ny(t).format("%Y%m%d:%H%M").to_string();
    let mut items = Vec::new();
    let mut d = today;
    for _ in 0..LISTED_DAYS {
        items.push(match calendar::session(d).ok().flatten() {
            Some(s) => all
                .intervals(&s)
                .iter()
                .map(|(a, b)| format!("{}-{}", fmt(*a), fmt(*b)))
                .collect::<Vec<_>>()
                .join(","),
            None => format!("{}:CLOSED", d.format("%Y%m%d")),
        });
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    (liquid, items.join(";"))
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
    use ib_model::hours::{close_offset, parse_hours, RawHours};

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

    #[test]
    fn spx_trading_hours_add_the_overnight_and_curb_sessions() {
        let (liquid, trading) = option_hours("SPXW", d(11, 24));
        assert!(
            liquid.starts_with("20261124:0930-20261124:1615;"),
            "{liquid}"
        );
        assert!(
            trading.starts_with("20261123:2015-20261124:0915,20261124:0930-20261124:1615,20261124:1615-20261124:1700;"),
            "{trading}"
        );
        // Monday's overnight session starts Sunday evening; the half day's curb follows 13:15.
        assert!(
            trading.contains("20261129:CLOSED;20261129:2015-20261130:0915,"),
            "{trading}"
        );
        assert!(trading.contains("20261127:1315-20261127:1400"), "{trading}");
        let raw = |t: &str| RawHours {
            liquid_hours: t.to_string(),
            trading_hours: String::new(),
            time_zone_id: "US/Eastern".into(),
        };
        // Regular hours close at 16:15, all hours at 17:00.
        assert_eq!(close_offset(&raw(&liquid)).unwrap(), 15);
        assert_eq!(close_offset(&raw(&trading)).unwrap(), 60);
        let (l, t) = option_hours("SPY", d(11, 24));
        assert_eq!(l, t);
    }
}
