//! US equity-options trading calendar: which days have a regular session and when it opens and
//! closes, in New York time and in UTC.
//!
//! Both the plan compiler (to resolve `end = "last-session"` and split windows per session) and
//! the simulated gateway (to place bars where IB places them) need the same answer, so it lives
//! here once. Closures and early closes come from a checked-in table generated from
//! `exchange_calendars`' XNYS calendar (see `calendar/table.rs` and `scripts/nyse_calendar.py`): NYSE's
//! own rules (Saturday holidays close the Friday before, except New Year's Day) and one-off
//! closures such as national days of mourning are not derivable from a rule.

mod table;
#[cfg(test)]
mod tests;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Tz;

/// First and last year the calendar knows; outside them every question is an error, because a
/// guess about holidays would silently plan the wrong sessions.
pub const MIN_YEAR: i32 = 2000;
/// See [`MIN_YEAR`].
pub const MAX_YEAR: i32 = 2035;

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
/// Close on a half day (day after Thanksgiving, Christmas Eve, July 3rd), New York time: the
/// only early close time NYSE has in 2000-2035 (the table carries each day's own).
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
    /// Close instant (16:00, or the early close, 13:00, on a half day).
    pub close: DateTime<Utc>,
    /// True on a half day (an early close).
    pub half_day: bool,
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

/// From this New York time on, a bar belongs to the next session: index options (SPX) trade
/// from 20:15 the evening before their trading day, and no stock or option session of a
/// trading day starts after 20:00 (stocks' after-hours end then).
pub const NEXT_DAY_FROM: NaiveTime = match NaiveTime::from_hms_opt(20, 0, 0) {
    Some(t) => t,
    None => unreachable!(),
};

/// The trading date a bar starting at `ts` belongs to: its New York date, or for a bar from
/// [`NEXT_DAY_FROM`] on (an overnight session) the next session's date.
pub fn trading_date(ts: DateTime<Utc>) -> NaiveDate {
    let ny = to_ny(ts);
    let date = ny.date_naive();
    if ny.time() < NEXT_DAY_FROM {
        return date;
    }
    session_after(date).map(|s| s.date).unwrap_or(date)
}

/// True when `date` has a regular session.
pub fn is_session(date: NaiveDate) -> Result<bool, OutOfRange> {
    Ok(session(date)?.is_some())
}

/// The position of `date`'s session among every session of the calendar's range: consecutive
/// sessions have consecutive ordinals (None on a day without a session or outside the range).
pub fn session_ordinal(date: NaiveDate) -> Option<u32> {
    table::days().ordinal(date)
}

/// A fingerprint of the embedded session table (FNV-1a of its text). Anything that stores
/// session ordinals (the coverage snapshot) keeps it next to them: ordinals computed under
/// another table are recomputed, never trusted.
pub fn table_fingerprint() -> u64 {
    table::fingerprint()
}

/// The session on `date`, or `None` on a weekend or holiday.
pub fn session(date: NaiveDate) -> Result<Option<Session>, OutOfRange> {
    table::days().get(date).ok_or(OutOfRange(date))
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
    if from > to {
        return Ok(Vec::new());
    }
    let days = table::days();
    for d in [from, to] {
        if days.get(d).is_none() {
            return Err(OutOfRange(d));
        }
    }
    let span = days.span(from, to).ok_or(OutOfRange(from))?;
    Ok(span.iter().flatten().copied().collect())
}
