//! US equity-options trading calendar: which days have a regular session and when it opens and
//! closes, in New York time and in UTC.
//!
//! Both the plan compiler (to resolve `end = "last-session"` and split windows per session) and
//! the simulated gateway (to place bars where IB places them) need the same answer, so it lives
//! here once. Holidays and half days come from the maintained `trading-calendar` crate (NYSE,
//! 2020-2030) rather than a hand-written list.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Tz;
use std::sync::OnceLock;

/// First and last year the calendar knows; outside them every question is an error, because a
/// guess about holidays would silently plan the wrong sessions.
pub const MIN_YEAR: i32 = 2020;
/// See [`MIN_YEAR`].
pub const MAX_YEAR: i32 = 2030;

/// Regular session open, New York time.
pub const RTH_OPEN: NaiveTime = match NaiveTime::from_hms_opt(9, 30, 0) {
    Some(t) => t,
    None => unreachable!(),
};
/// Regular session close on a full day, New York time.
pub const RTH_CLOSE: NaiveTime = match NaiveTime::from_hms_opt(16, 0, 0) {
    Some(t) => t,
    None => unreachable!(),
};
/// Close on a half day (day after Thanksgiving, Christmas Eve, July 3rd), New York time.
pub const HALF_DAY_CLOSE: NaiveTime = match NaiveTime::from_hms_opt(13, 0, 0) {
    Some(t) => t,
    None => unreachable!(),
};

/// A date outside the years the calendar covers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("date {0} is outside the trading calendar's range ({MIN_YEAR}-{MAX_YEAR})")]
pub struct OutOfRange(pub NaiveDate);

/// One regular trading session (RTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Trading date in New York.
    pub date: NaiveDate,
    /// Open instant (09:30 New York).
    pub open: DateTime<Utc>,
    /// Close instant (16:00, or 13:00 on a half day).
    pub close: DateTime<Utc>,
    /// True on a half day.
    pub half_day: bool,
}

fn nyse() -> &'static trading_calendar::TradingCalendar {
    static CAL: OnceLock<trading_calendar::TradingCalendar> = OnceLock::new();
    CAL.get_or_init(|| {
        trading_calendar::TradingCalendar::new(trading_calendar::Market::NYSE)
            .expect("NYSE calendar is built in")
    })
}

fn check(date: NaiveDate) -> Result<(), OutOfRange> {
    if date.year() < MIN_YEAR || date.year() > MAX_YEAR {
        Err(OutOfRange(date))
    } else {
        Ok(())
    }
}

/// New York local date-time to UTC (09:30 and 16:00 are never in a DST gap).
pub fn ny_to_utc(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    New_York
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .expect("market hours never fall in a DST gap")
        .with_timezone(&Utc)
}

/// An instant as New York local time.
pub fn to_ny(t: DateTime<Utc>) -> DateTime<Tz> {
    t.with_timezone(&New_York)
}

/// True when `date` has a regular session.
pub fn is_session(date: NaiveDate) -> Result<bool, OutOfRange> {
    check(date)?;
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        return Ok(false);
    }
    Ok(nyse().is_trading_day(date).unwrap_or(false))
}

/// The session on `date`, or `None` on a weekend or holiday.
pub fn session(date: NaiveDate) -> Result<Option<Session>, OutOfRange> {
    if !is_session(date)? {
        return Ok(None);
    }
    let hours = nyse().trading_hours(date);
    let half_day = hours.is_early_close();
    let close = if half_day { HALF_DAY_CLOSE } else { RTH_CLOSE };
    Ok(Some(Session {
        date,
        open: ny_to_utc(date, RTH_OPEN),
        close: ny_to_utc(date, close),
        half_day,
    }))
}

/// The last session on or before `date`.
pub fn session_on_or_before(date: NaiveDate) -> Result<Session, OutOfRange> {
    let mut d = date;
    loop {
        if let Some(s) = session(d)? {
            return Ok(s);
        }
        d = d.pred_opt().ok_or(OutOfRange(date))?;
    }
}

/// The first session strictly after `date`.
pub fn session_after(date: NaiveDate) -> Result<Session, OutOfRange> {
    let mut d = date.succ_opt().ok_or(OutOfRange(date))?;
    loop {
        if let Some(s) = session(d)? {
            return Ok(s);
        }
        d = d.succ_opt().ok_or(OutOfRange(date))?;
    }
}

/// The last session that has completely closed at instant `now` (for `end = "last-session"`).
pub fn last_complete_session(now: DateTime<Utc>) -> Result<Session, OutOfRange> {
    let today = to_ny(now).date_naive();
    let s = session_on_or_before(today)?;
    if s.close <= now {
        Ok(s)
    } else {
        session_on_or_before(s.date.pred_opt().ok_or(OutOfRange(today))?)
    }
}

/// All sessions with `from <= date <= to`, in order.
pub fn sessions_between(from: NaiveDate, to: NaiveDate) -> Result<Vec<Session>, OutOfRange> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        if let Some(s) = session(d)? {
            out.push(s);
        }
        d = d.succ_opt().ok_or(OutOfRange(d))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn thanksgiving_week_2026() {
        assert!(
            !is_session(d(2026, 11, 26)).unwrap(),
            "Thanksgiving is closed"
        );
        let fri = session(d(2026, 11, 27)).unwrap().unwrap();
        assert!(fri.half_day);
        assert_eq!(to_ny(fri.close).time(), HALF_DAY_CLOSE);
        let wed = session(d(2026, 11, 25)).unwrap().unwrap();
        assert!(!wed.half_day);
        assert_eq!(to_ny(wed.open).time(), RTH_OPEN);
        assert_eq!(wed.close - wed.open, chrono::Duration::minutes(390));
    }

    #[test]
    fn weekend_resolves_to_friday() {
        assert_eq!(
            session_on_or_before(d(2026, 11, 29)).unwrap().date,
            d(2026, 11, 27)
        );
        assert_eq!(
            session_after(d(2026, 11, 25)).unwrap().date,
            d(2026, 11, 27)
        );
    }

    #[test]
    fn last_complete_session_waits_for_close() {
        let during = ny_to_utc(d(2026, 11, 24), NaiveTime::from_hms_opt(12, 0, 0).unwrap());
        assert_eq!(last_complete_session(during).unwrap().date, d(2026, 11, 23));
        let after = ny_to_utc(d(2026, 11, 24), NaiveTime::from_hms_opt(16, 0, 0).unwrap());
        assert_eq!(last_complete_session(after).unwrap().date, d(2026, 11, 24));
    }

    #[test]
    fn out_of_range_is_an_error() {
        assert!(is_session(d(2031, 1, 2)).is_err());
    }

    #[test]
    fn known_holidays() {
        for h in [
            d(2026, 1, 1),
            d(2026, 4, 3),
            d(2026, 7, 3),
            d(2026, 12, 25),
            d(2026, 6, 19),
        ] {
            assert!(!is_session(h).unwrap(), "{h} should be closed");
        }
        assert!(session(d(2026, 12, 24)).unwrap().unwrap().half_day);
    }
}
