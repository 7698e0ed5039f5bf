//! Request windows, bar alignment and IB's HMDS error texts.
//!
//! This module holds the window arithmetic and the bar slots; `fields` parses the request's text
//! fields, `hmds_error` holds the error codes and texts.
//!
//! # Window semantics
//!
//! A bar belongs to a request when `start_instant <= bar.ts < end`, where `bar.ts` is the bar's
//! label (its start, clipped to the session open) and:
//!
//! * `end` is the request's end date-time; absent or empty means "now", and any end later than
//!   the simulated now (the close of the scenario's `today`, or the wall clock if earlier) is
//!   clipped to it: no bar starts after now, and the bar in progress is cut at now.
//! * `N D` counts trading sessions: `start_instant` is the open of the N-th session counting back
//!   from the last session that opens before `end` (so `1 D` ending at a session's close is
//!   exactly that session, half days included).
//! * `N W` is `end - 7N days`; `N M` / `N Y` go back N calendar months / years in New York
//!   time; `N S` is seconds.
//!
//! # Alignment
//!
//! Only regular sessions (09:30-16:00 New York, 13:00 on half days) carry bars; options of the
//! classes that trade until 16:15 (SPY, QQQ, IWM, ...: [`ib_model::hours::LATE_CLOSE_CLASSES`])
//! carry bars until 16:15 (13:15 on half days). `use_rth = false` is served the same way except
//! for SPX and SPXW options, which also trade from 20:15 the evening before to 09:15 and in the
//! 16:15-17:00 curb ([`ServedHours`], [`super::hours`]): the synthetic stocks model no pre- or
//! post-market trading, and ETF options have no session outside regular hours (their
//! `tradingHours` equal their `liquidHours`). Intraday bars are aligned
//! to multiples of their size from New York midnight and clipped to the session, so `30 mins`
//! bars start 09:30, 10:00, ... (the last one of a half day at 12:30), `1 hour` bars 09:30 (a
//! half-hour bar), 10:00, ..., and `8 hours` (no shorter than a session) gives one bar per
//! session labelled 09:30, covering the whole session. `1 day`
//! bars are one per session (dated `YYYYMMDD`), `1W`/`1M` group sessions by ISO week / month.

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Utc};
use ib_model::bars::{BarSize, Duration, DurationUnit};
use ib_model::calendar::{self, Session};

mod fields;
mod hmds_error;

use fields::local;
pub use fields::{fmt_utc, parse_bar_size, parse_end};
pub use hmds_error::{what_word, HmdsError, HMDS_PREFIX};

/// The hours an instrument trades in, as the simulator serves them: its regular session (the
/// equity session, closing `close_offset` minutes later) and, for a `use_rth = false` request
/// on a class that has them, the extended sessions around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServedHours {
    /// Minutes the regular session closes after the equity close (15 for SPY options).
    pub close_offset: i32,
    /// Extended sessions (None: regular hours only).
    pub extended: Option<Extended>,
}

/// Extended sessions of a trading day: an overnight session from the evening before (SPX's
/// global trading hours, 20:15-09:15 New York) and a session after the regular close (SPX's
/// curb, 16:15-17:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extended {
    /// Start of the overnight session, New York time, on the calendar day before the session.
    pub overnight_start: NaiveTime,
    /// End of the overnight session, New York time, on the session day.
    pub overnight_end: NaiveTime,
    /// Minutes the after-close session lasts from the regular close.
    pub after_close_minutes: i32,
}

impl ServedHours {
    /// Regular hours only, closing `close_offset` minutes after the equity close.
    pub fn regular(close_offset: i32) -> ServedHours {
        ServedHours {
            close_offset,
            extended: None,
        }
    }

    /// Minutes after the equity close at which the day's last session ends.
    pub fn last_end_offset(&self) -> i32 {
        self.close_offset + self.extended.map_or(0, |e| e.after_close_minutes)
    }

    /// The trading intervals of the trading day of the equity session `s`, in order.
    pub fn intervals(&self, s: &Session) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let rth = ib_model::hours::class_session(s, self.close_offset);
        let Some(e) = self.extended else {
            return vec![(rth.open, rth.close)];
        };
        let mut out = Vec::with_capacity(3);
        if let Some(eve) = s.date.pred_opt() {
            let a = calendar::ny_to_utc(eve, e.overnight_start);
            let b = calendar::ny_to_utc(s.date, e.overnight_end);
            if a < b && b <= rth.open {
                out.push((a, b));
            }
        }
        out.push((rth.open, rth.close));
        if e.after_close_minutes > 0 {
            out.push((
                rth.close,
                rth.close + chrono::Duration::minutes(i64::from(e.after_close_minutes)),
            ));
        }
        out
    }

    /// The first start of the trading day of `s`.
    pub fn day_start(&self, s: &Session) -> DateTime<Utc> {
        self.intervals(s).first().map_or(s.open, |i| i.0)
    }
}

/// Start instant of a window (see the module doc).
pub fn window_start(end: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>, HmdsError> {
    window_start_in(end, d, &ServedHours::default())
}

/// [`window_start`] for an instrument trading in `hours`: `N D` starts at the first session
/// start of the N-th trading day back (the evening before for an overnight session).
pub fn window_start_in(
    end: DateTime<Utc>,
    d: Duration,
    hours: &ServedHours,
) -> Result<DateTime<Utc>, HmdsError> {
    let n = i64::from(d.n);
    let oor = |_| HmdsError::no_security();
    Ok(match d.unit {
        DurationUnit::Seconds => chrono::TimeDelta::try_seconds(n)
            .and_then(|d| end.checked_sub_signed(d))
            .ok_or_else(HmdsError::too_long)?,
        DurationUnit::Weeks => chrono::TimeDelta::try_days(7 * n)
            .and_then(|d| end.checked_sub_signed(d))
            .ok_or_else(HmdsError::too_long)?,
        DurationUnit::Days => {
            let mut s =
                calendar::session_on_or_before(calendar::to_ny(end).date_naive()).map_err(oor)?;
            if hours.day_start(&s) >= end {
                s = prev_session(s.date)?;
            }
            for _ in 1..n {
                s = prev_session(s.date)?;
            }
            hours.day_start(&s)
        }
        DurationUnit::Months | DurationUnit::Years => {
            let months = if d.unit == DurationUnit::Years {
                d.n.saturating_mul(12)
            } else {
                d.n
            };
            let ny = calendar::to_ny(end).naive_local();
            let back = ny
                .checked_sub_months(Months::new(months))
                .ok_or_else(HmdsError::no_security)?;
            local(back, "America/New_York").ok_or_else(HmdsError::no_security)?
        }
    })
}

fn prev_session(date: NaiveDate) -> Result<Session, HmdsError> {
    let p = date.pred_opt().ok_or_else(HmdsError::no_security)?;
    calendar::session_on_or_before(p).map_err(|_| HmdsError::no_security())
}

/// One bar slot: its label and the interval of market time it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Bar timestamp (start, clipped to the session open).
    pub label: DateTime<Utc>,
    /// Covered interval start (= label).
    pub from: DateTime<Utc>,
    /// Covered interval end (exclusive; clipped to the close and to now).
    pub to: DateTime<Utc>,
    /// Session date (the `YYYYMMDD` of daily bars).
    pub date: NaiveDate,
}

/// All bar slots of `bar` with `start <= label < end`, with their ends clipped at `now`, for an
/// instrument whose sessions close `close_offset` minutes after the equity close (15 for the
/// options of SPY, QQQ, IWM, ...: bars until 16:15, 13:15 on half days).
pub fn slots(
    bar: BarSize,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    close_offset: i32,
) -> Vec<Slot> {
    slots_in(bar, start, end, now, &ServedHours::regular(close_offset))
}

/// [`slots`] for an instrument trading in `hours`. With extended sessions an intraday bar
/// covers the parts of its clock-aligned interval that are in a session of its trading day
/// (labelled at the first of them), so an SPX option's `1 hour` bars run 20:15 (the evening
/// before), 21:00, ..., 09:00 (09:00-09:15 and 09:30-10:00), 10:00, ..., 16:00 (16:00-17:00).
pub fn slots_in(
    bar: BarSize,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    hours: &ServedHours,
) -> Vec<Slot> {
    let close_offset = hours.close_offset;
    let end = end.min(now);
    if start >= end {
        return Vec::new();
    }
    let from_date = calendar::to_ny(start).date_naive();
    // An overnight session belongs to the next day's session.
    let to_date = calendar::to_ny(end).date_naive();
    let to_date = if hours.extended.is_some() {
        to_date.succ_opt().unwrap_or(to_date)
    } else {
        to_date
    };
    let Ok(sessions) = calendar::sessions_between(from_date, to_date) else {
        return Vec::new();
    };
    let sessions: Vec<Session> = sessions
        .iter()
        .map(|s| ib_model::hours::class_session(s, close_offset))
        .collect();
    let mut out = Vec::new();
    if bar.is_daily_or_longer() {
        let key = |s: &Session| match bar {
            BarSize::Day1 => (s.date.year(), s.date.ordinal()),
            BarSize::Week1 => (s.date.iso_week().year(), s.date.iso_week().week()),
            _ => (s.date.year(), s.date.month()),
        };
        let mut i = 0;
        while i < sessions.len() {
            let k = key(&sessions[i]);
            let mut j = i;
            while j + 1 < sessions.len() && key(&sessions[j + 1]) == k {
                j += 1;
            }
            let (first, last) = (&sessions[i], &sessions[j]);
            if first.open >= start && first.open < end {
                out.push(Slot {
                    label: first.open,
                    from: first.open,
                    to: last.close.min(end),
                    date: first.date,
                });
            }
            i = j + 1;
        }
        return out;
    }
    let size = bar.seconds();
    if hours.extended.is_some() {
        for s in &sessions {
            let equity = Session {
                close: s.close - chrono::Duration::minutes(i64::from(close_offset)),
                ..*s
            };
            extended_slots(
                size,
                &hours.intervals(&equity),
                s.date,
                start,
                end,
                &mut out,
            );
        }
        return out;
    }
    for s in sessions {
        if size >= (s.close - s.open).num_seconds() {
            // A bar at least as long as the session (`8 hours`) is the whole session, labelled
            // at the open: 09:30-16:15 for a class trading to 16:15, not a 16:00 stub.
            if s.open >= start && s.open < end {
                out.push(Slot {
                    label: s.open,
                    from: s.open,
                    to: s.close.min(end),
                    date: s.date,
                });
            }
            continue;
        }
        let midnight = calendar::ny_to_utc(s.date, NaiveTime::MIN);
        let open_off = (s.open - midnight).num_seconds();
        let mut k = open_off.div_euclid(size) * size;
        loop {
            let a = midnight + chrono::Duration::seconds(k);
            if a >= s.close {
                break;
            }
            let label = a.max(s.open);
            let to = (a + chrono::Duration::seconds(size)).min(s.close).min(end);
            if label >= start && label < end {
                out.push(Slot {
                    label,
                    from: label,
                    to,
                    date: s.date,
                });
            }
            k += size;
        }
    }
    out
}

/// Slots of one trading day with several sessions (`intervals`): each clock-aligned interval
/// (multiples of `size` seconds from New York midnight) that meets a session gives one slot,
/// from its first covered instant to its last.
fn extended_slots(
    size: i64,
    intervals: &[(DateTime<Utc>, DateTime<Utc>)],
    date: NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    out: &mut Vec<Slot>,
) {
    let (Some(first), Some(last)) = (intervals.first(), intervals.last()) else {
        return;
    };
    let midnight = calendar::ny_to_utc(date, NaiveTime::MIN);
    let mut k = (first.0 - midnight).num_seconds().div_euclid(size) * size;
    loop {
        let a = midnight + chrono::Duration::seconds(k);
        if a >= last.1 {
            break;
        }
        let b = a + chrono::Duration::seconds(size);
        let covered: Vec<_> = intervals
            .iter()
            .filter(|(x, y)| *x < b && *y > a)
            .map(|(x, y)| ((*x).max(a), (*y).min(b)))
            .collect();
        if let (Some(f), Some(l)) = (covered.first(), covered.last()) {
            let label = f.0;
            if label >= start && label < end {
                out.push(Slot {
                    label,
                    from: label,
                    to: l.1.min(end),
                    date,
                });
            }
        }
        k += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny(d: (i32, u32, u32), h: u32, m: u32) -> DateTime<Utc> {
        calendar::ny_to_utc(
            NaiveDate::from_ymd_opt(d.0, d.1, d.2).unwrap(),
            NaiveTime::from_hms_opt(h, m, 0).unwrap(),
        )
    }

    #[test]
    fn ends_parse() {
        let t = ny((2026, 11, 24), 16, 0);
        assert_eq!(parse_end("20261124 21:00:00 UTC").unwrap(), Some(t));
        assert_eq!(parse_end("20261124-21:00:00").unwrap(), Some(t));
        assert_eq!(parse_end("20261124 16:00:00 US/Eastern").unwrap(), Some(t));
        assert_eq!(
            parse_end("20261124 16:00:00 America/New_York").unwrap(),
            Some(t)
        );
        assert_eq!(parse_end("20261124 16:00:00").unwrap(), Some(t));
        assert_eq!(parse_end("").unwrap(), None);
        assert_eq!(parse_end("garbage").unwrap_err().code, 10314);
        assert!(parse_end("20261124 16:00:00 Mars/Base").is_err());
    }

    #[test]
    fn one_day_is_one_session_even_half_day() {
        let end = ny((2026, 11, 27), 13, 0);
        let d: Duration = "1 D".parse().unwrap();
        let start = window_start(end, d).unwrap();
        assert_eq!(start, ny((2026, 11, 27), 9, 30));
        let s = slots(BarSize::Mins30, start, end, end, 0);
        assert_eq!(s.len(), 7);
        assert_eq!(s.last().unwrap().label, ny((2026, 11, 27), 12, 30));
        let s = slots(BarSize::Hours8, start, end, end, 0);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].label, ny((2026, 11, 27), 9, 30));
        // 2 D ending the Monday after spans Friday (half day) and Monday.
        let end = ny((2026, 11, 30), 16, 0);
        let start = window_start(end, "2 D".parse().unwrap()).unwrap();
        assert_eq!(start, ny((2026, 11, 27), 9, 30));
        // An end before Monday's open counts from Friday.
        let end = ny((2026, 11, 30), 8, 0);
        let start = window_start(end, "1 D".parse().unwrap()).unwrap();
        assert_eq!(start, ny((2026, 11, 27), 9, 30));
    }

    #[test]
    fn hour_bars_align_to_the_clock() {
        let start = ny((2026, 11, 24), 9, 30);
        let end = ny((2026, 11, 24), 16, 0);
        let s = slots(BarSize::Hour1, start, end, end, 0);
        let labels: Vec<_> = s
            .iter()
            .map(|x| calendar::to_ny(x.label).format("%H:%M").to_string())
            .collect();
        assert_eq!(
            labels,
            ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
        );
        assert_eq!(s[0].to, ny((2026, 11, 24), 10, 0));
        let s = slots(BarSize::Mins30, start, end, end, 0);
        assert_eq!(s.len(), 13);
        // Partial day: clipped at now.
        let now = ny((2026, 11, 24), 12, 10);
        let s = slots(BarSize::Mins30, start, end, now, 0);
        assert_eq!(s.len(), 6);
        assert_eq!(s.last().unwrap().to, now);
    }

    #[test]
    fn months_and_days() {
        let end = ny((2026, 12, 1), 16, 0);
        let start = window_start(end, "1 M".parse().unwrap()).unwrap();
        assert_eq!(start, ny((2026, 11, 1), 16, 0));
        let daily = slots(BarSize::Day1, start, end, end, 0);
        assert_eq!(
            daily.first().unwrap().date,
            NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()
        );
        assert_eq!(
            daily.last().unwrap().date,
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
        assert_eq!(daily.len(), 21);
    }

    #[test]
    fn texts() {
        assert_eq!(what_word("BID_ASK"), "Bid_Ask");
        assert_eq!(
            HmdsError::no_data("X", "TRADES").message,
            "Historical Market Data Service error message:HMDS query returned no data: X@SMART Trades"
        );
        assert!(parse_bar_size("4 mins").is_err());
        assert_eq!(parse_bar_size("1 week").unwrap(), BarSize::Week1);
    }
}
