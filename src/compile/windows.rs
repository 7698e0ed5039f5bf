//! Request windows: a bar x duration cell longer than what IB accepts in one request is split
//! into consecutive windows, each its own task.
//!
//! Rules (shared with the simulated gateway, which counts `N D` as N trading sessions back from
//! the end, `W` as 7 calendar days, `M`/`Y` as calendar months/years):
//! - every close below is the trading class's close: the equity close (16:00, 13:00 on half
//!   days) plus the class's offset (15 minutes for SPY, QQQ, SPX, ...: 16:15 and 13:15);
//! - a cell within its limit is one window: the cell's duration, ending at the end session's
//!   close;
//! - a limit in days (`1 min` -> `1 D`, `2 mins` -> `2 D`): one `1 D` window per session of the
//!   requested span, ending at that session's close (13:00 New York on half days);
//! - a limit in seconds (bars under a minute): each session of the span cut into consecutive
//!   chunks of at most the limit, from the open (regular hours only, enforced by validation);
//! - a limit in weeks, months or years: consecutive windows of the limit's length going back
//!   from the end; each ends at the close of the last session inside it, so windows neither
//!   overlap nor leave a session out, and the oldest one may reach a little before the span.

use crate::bars::{Duration, DurationUnit};
use crate::calendar::{self, OutOfRange, Session};
use crate::hours;
use crate::plan::BarCell;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One request window: `duration` back from `end`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// End instant (UTC), a session close or a chunk end inside a session.
    pub end: DateTime<Utc>,
    /// Duration of the request.
    #[schemars(with = "String")]
    pub duration: Duration,
}

/// The windows of `cell` ending at `end`, oldest first, given the longest duration `limit` one
/// request may cover, for a class closing `close_offset` minutes after the equity close (see
/// [`crate::hours`]). Errors when the span reaches outside the trading calendar.
pub fn split(
    cell: BarCell,
    limit: Duration,
    end: &Session,
    close_offset: i32,
) -> Result<Vec<Window>, OutOfRange> {
    split_until(cell, limit, end, close_offset, None)
}

/// [`split`] with the end session cut at `until` (an explicit end instant): when it falls
/// before the class's close of `end`, the last window ends there instead, so the session in
/// progress is covered up to it (its bars are provisional until the session closes).
pub fn split_until(
    cell: BarCell,
    limit: Duration,
    end: &Session,
    close_offset: i32,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<Window>, OutOfRange> {
    let end_date = end.date;
    let class = |s: Session| {
        let mut c = hours::class_session(&s, close_offset);
        if let Some(t) = until.filter(|t| s.date == end_date && *t > c.open && *t < c.close) {
            c.close = t;
        }
        c
    };
    let end = &class(*end);
    if cell.duration.approx_seconds() <= limit.approx_seconds() {
        return Ok(vec![Window {
            end: end.close,
            duration: cell.duration,
        }]);
    }
    let first = first_session_of_span(cell.duration, end, close_offset)?;
    match limit.unit {
        DurationUnit::Days => Ok(calendar::sessions_between(first, end.date)?
            .into_iter()
            .map(class)
            .map(|s| Window {
                end: s.close,
                duration: Duration {
                    n: 1,
                    unit: DurationUnit::Days,
                },
            })
            .collect()),
        DurationUnit::Seconds => {
            let step = i64::from(limit.n.max(1));
            let mut out = Vec::new();
            for s in calendar::sessions_between(first, end.date)?
                .into_iter()
                .map(class)
            {
                let mut t = s.open;
                while t < s.close {
                    let e = (t + chrono::Duration::seconds(step)).min(s.close);
                    let secs = u32::try_from((e - t).num_seconds()).unwrap_or(u32::MAX);
                    out.push(Window {
                        end: e,
                        duration: Duration {
                            n: secs,
                            unit: DurationUnit::Seconds,
                        },
                    });
                    t = e;
                }
            }
            Ok(out)
        }
        DurationUnit::Weeks | DurationUnit::Months | DurationUnit::Years => {
            let mut out = Vec::new();
            let mut e = *end;
            loop {
                out.push(Window {
                    end: e.close,
                    duration: limit,
                });
                let start = back(limit, e.date)?;
                if start < first {
                    break;
                }
                e = class(calendar::session_on_or_before(start)?);
                if e.date < first {
                    break;
                }
            }
            out.reverse();
            Ok(out)
        }
    }
}

/// `d` before `date` in calendar terms (weeks, months, years), checked against the calendar.
fn back(d: Duration, date: NaiveDate) -> Result<NaiveDate, OutOfRange> {
    // Validation rejects longer durations; guard library callers against date overflow too.
    if d.approx_seconds() > crate::plan::decode::MAX_DURATION_SECS {
        return Err(OutOfRange(
            NaiveDate::from_ymd_opt(calendar::MIN_YEAR - 1, 12, 31).unwrap_or(date),
        ));
    }
    let start = d.start_before(date);
    if start == date || start.year() < calendar::MIN_YEAR {
        return Err(OutOfRange(start));
    }
    Ok(start)
}

/// The date of the oldest session the requested span covers.
fn first_session_of_span(
    d: Duration,
    end: &Session,
    close_offset: i32,
) -> Result<NaiveDate, OutOfRange> {
    match d.unit {
        DurationUnit::Days => {
            let mut s = *end;
            for _ in 1..d.n {
                let prev = s.date.pred_opt().ok_or(OutOfRange(s.date))?;
                s = calendar::session_on_or_before(prev)?;
            }
            Ok(s.date)
        }
        DurationUnit::Seconds => {
            let start = end.close - chrono::Duration::seconds(i64::from(d.n));
            let mut s = *end;
            loop {
                let prev = s.date.pred_opt().ok_or(OutOfRange(s.date))?;
                let p = calendar::session_on_or_before(prev)?;
                if hours::class_close(&p, close_offset) <= start {
                    return Ok(s.date);
                }
                s = p;
            }
        }
        DurationUnit::Weeks | DurationUnit::Months | DurationUnit::Years => {
            let start = back(d, end.date)?;
            Ok(calendar::session_after(start)?.date.min(end.date))
        }
    }
}

/// How a cell is split, for the dry-run: `30 mins x 1 M` when it is one request, or
/// `1 min x 1 M -> 21 x 1 D` when split.
pub fn describe(cell: BarCell, windows: &[Window]) -> String {
    let base = format!("{} x {}", cell.size, cell.duration);
    if windows.len() == 1 && windows[0].duration == cell.duration {
        return base;
    }
    let mut groups: Vec<(Duration, usize)> = Vec::new();
    for w in windows {
        match groups.iter_mut().find(|(d, _)| *d == w.duration) {
            Some(g) => g.1 += 1,
            None => groups.push((w.duration, 1)),
        }
    }
    // Most common duration first, then the others.
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let parts: Vec<String> = groups
        .iter()
        .take(2)
        .map(|(d, n)| format!("{n} x {d}"))
        .collect();
    let more = if groups.len() > 2 { " + ..." } else { "" };
    format!("{base} -> {}{more}", parts.join(" + "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::BarSize;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn cell(size: BarSize, dur: &str) -> BarCell {
        BarCell {
            size,
            duration: dur.parse().unwrap(),
        }
    }
    fn sess(date: NaiveDate) -> Session {
        calendar::session(date).unwrap().unwrap()
    }

    #[test]
    fn an_instant_inside_the_end_session_ends_its_last_window() {
        let end = sess(d(2026, 11, 30));
        let eleven =
            calendar::ny_to_utc(end.date, chrono::NaiveTime::from_hms_opt(11, 0, 0).unwrap());
        // Per-session windows: the last one ends at 11:00, the others at their closes.
        let w = split_until(
            cell(BarSize::Min1, "3 D"),
            "1 D".parse().unwrap(),
            &end,
            15,
            Some(eleven),
        )
        .unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[2].end, eleven);
        assert_eq!(w[1].end, hours::class_close(&sess(d(2026, 11, 27)), 15));
        // One window: ends at 11:00.
        let w = split_until(
            cell(BarSize::Mins30, "1 M"),
            "1 M".parse().unwrap(),
            &end,
            0,
            Some(eleven),
        )
        .unwrap();
        assert_eq!(w[0].end, eleven);
        // Seconds chunks stop at 11:00.
        let w = split_until(
            cell(BarSize::Secs30, "1 D"),
            "28800 S".parse().unwrap(),
            &end,
            0,
            Some(eleven),
        )
        .unwrap();
        assert_eq!(w.last().unwrap().end, eleven);
        assert!(w
            .iter()
            .all(|x| x.end <= eleven || x.end <= sess(d(2026, 11, 27)).close));
        // At or after the close, or before the open: the class close, as without an instant.
        for t in [
            end.close + chrono::Duration::minutes(15),
            end.close + chrono::Duration::hours(2),
            end.open,
        ] {
            let a = split_until(
                cell(BarSize::Min1, "2 D"),
                "1 D".parse().unwrap(),
                &end,
                15,
                Some(t),
            );
            assert_eq!(
                a,
                split(cell(BarSize::Min1, "2 D"), "1 D".parse().unwrap(), &end, 15)
            );
        }
        // Between 16:00 and 16:15: equity classes end at 16:00, the 16:15 classes there.
        let t = end.close + chrono::Duration::minutes(10);
        let one = |off| {
            split_until(
                cell(BarSize::Mins30, "1 D"),
                "1 D".parse().unwrap(),
                &end,
                off,
                Some(t),
            )
            .unwrap()[0]
                .end
        };
        assert_eq!((one(0), one(15)), (end.close, t));
    }

    #[test]
    fn within_limit_is_one_window() {
        let end = sess(d(2026, 11, 27));
        let w = split(
            cell(BarSize::Mins30, "1 M"),
            "1 M".parse().unwrap(),
            &end,
            0,
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].end, end.close);
        assert_eq!(w[0].duration.to_string(), "1 M");
        assert_eq!(describe(cell(BarSize::Mins30, "1 M"), &w), "30 mins x 1 M");
    }

    #[test]
    fn half_day_close_is_the_end() {
        let end = sess(d(2026, 11, 27));
        let w = split(
            cell(BarSize::Hours8, "6 M"),
            "6 M".parse().unwrap(),
            &end,
            0,
        )
        .unwrap();
        assert_eq!(w[0].end.to_rfc3339(), "2026-11-27T18:00:00+00:00");
    }

    #[test]
    fn day_limit_gives_one_window_per_session() {
        // 1 M back from 2026-11-27: sessions 2026-10-28 ..= 2026-11-27, without Thanksgiving (22 sessions).
        let end = sess(d(2026, 11, 27));
        let w = split(cell(BarSize::Min1, "1 M"), "1 D".parse().unwrap(), &end, 0).unwrap();
        let expected = calendar::sessions_between(d(2026, 10, 28), d(2026, 11, 27)).unwrap();
        assert_eq!(w.len(), expected.len());
        assert_eq!(w.len(), 22);
        assert!(w.iter().all(|x| x.duration.to_string() == "1 D"));
        assert_eq!(w.first().unwrap().end, expected[0].close);
        assert_eq!(w.last().unwrap().end, end.close);
        assert!(w.windows(2).all(|p| p[0].end < p[1].end), "oldest first");
        assert_eq!(
            describe(cell(BarSize::Min1, "1 M"), &w),
            "1 min x 1 M -> 22 x 1 D"
        );
    }

    #[test]
    fn n_days_counts_sessions() {
        let end = sess(d(2026, 11, 30)); // Monday after Thanksgiving
        let w = split(cell(BarSize::Min1, "3 D"), "1 D".parse().unwrap(), &end, 0).unwrap();
        let dates: Vec<_> = w
            .iter()
            .map(|x| calendar::to_ny(x.end).date_naive())
            .collect();
        assert_eq!(
            dates,
            vec![d(2026, 11, 25), d(2026, 11, 27), d(2026, 11, 30)]
        );
    }

    #[test]
    fn month_limit_windows_tile_the_span() {
        // The strict table: 8 hours allows 1 M, so 6 M becomes 6 monthly windows.
        let end = sess(d(2026, 11, 27));
        let w = split(
            cell(BarSize::Hours8, "6 M"),
            BarSize::Hours8.strict_max_duration(),
            &end,
            0,
        )
        .unwrap();
        assert_eq!(w.len(), 6);
        assert_eq!(w.last().unwrap().end, end.close);
        // Each window ends at a session close, and each starts where the previous one ends.
        for pair in w.windows(2) {
            let older = calendar::to_ny(pair[0].end).date_naive();
            let newer = calendar::to_ny(pair[1].end).date_naive();
            let newer_start = pair[1].duration.start_before(newer);
            assert_eq!(
                calendar::session_on_or_before(newer_start).unwrap().date,
                older
            );
        }
        assert_eq!(
            describe(cell(BarSize::Hours8, "6 M"), &w),
            "8 hours x 6 M -> 6 x 1 M"
        );
    }

    #[test]
    fn week_limit_over_days_span() {
        let end = sess(d(2026, 11, 27));
        let w = split(
            cell(BarSize::Mins5, "10 D"),
            "1 W".parse().unwrap(),
            &end,
            0,
        )
        .unwrap();
        assert_eq!(w.len(), 3, "11-13 ..= 11-27 needs three weeks: {w:?}");
    }

    #[test]
    fn seconds_limit_chunks_sessions() {
        let end = sess(d(2026, 11, 25));
        let w = split(
            cell(BarSize::Secs1, "1 D"),
            "1800 S".parse().unwrap(),
            &end,
            0,
        )
        .unwrap();
        assert_eq!(w.len(), 13); // 6.5 h / 30 min
        assert_eq!(w.last().unwrap().end, end.close);
        let half = sess(d(2026, 11, 27));
        let w = split(
            cell(BarSize::Secs1, "1 D"),
            "1800 S".parse().unwrap(),
            &half,
            0,
        )
        .unwrap();
        assert_eq!(w.len(), 7); // 3.5 h
    }

    /// Window ends of `cell` split by `limit` and ending at the session of `end`, as RFC 3339.
    fn ends(size: BarSize, dur: &str, limit: &str, end: NaiveDate) -> Vec<String> {
        split(cell(size, dur), limit.parse().unwrap(), &sess(end), 0)
            .unwrap()
            .iter()
            .map(|w| w.end.to_rfc3339())
            .collect()
    }

    #[test]
    fn day_windows_across_the_spring_dst_change() {
        // Clocks go forward on Sunday 2026-03-08: 16:00 New York is 21:00 UTC on Friday and
        // 20:00 UTC on Monday.
        assert_eq!(
            ends(BarSize::Min1, "2 D", "1 D", d(2026, 3, 9)),
            ["2026-03-06T21:00:00+00:00", "2026-03-09T20:00:00+00:00"]
        );
        // Chunks start at the open: 14:30 UTC on Friday, 13:30 UTC on Monday.
        let chunks = ends(BarSize::Secs1, "2 D", "1800 S", d(2026, 3, 9));
        assert_eq!(chunks.len(), 26);
        assert_eq!(chunks[0], "2026-03-06T15:00:00+00:00");
        assert_eq!(chunks[12], "2026-03-06T21:00:00+00:00");
        assert_eq!(chunks[13], "2026-03-09T14:00:00+00:00");
        assert_eq!(chunks[25], "2026-03-09T20:00:00+00:00");
    }

    #[test]
    fn day_windows_across_the_autumn_dst_change() {
        // Clocks go back on Sunday 2026-11-01: 16:00 New York is 20:00 UTC, then 21:00 UTC.
        assert_eq!(
            ends(BarSize::Min1, "2 D", "1 D", d(2026, 11, 2)),
            ["2026-10-30T20:00:00+00:00", "2026-11-02T21:00:00+00:00"]
        );
        let chunks = ends(BarSize::Secs1, "2 D", "1800 S", d(2026, 11, 2));
        assert_eq!(chunks[0], "2026-10-30T14:00:00+00:00", "opens 13:30 UTC");
        assert_eq!(chunks[13], "2026-11-02T15:00:00+00:00", "opens 14:30 UTC");
    }

    #[test]
    fn day_windows_skip_holidays_and_end_at_13_00_on_half_days() {
        // Thanksgiving 2026-11-26 is closed, the Friday after closes at 13:00 (18:00 UTC).
        assert_eq!(
            ends(BarSize::Min1, "3 D", "1 D", d(2026, 11, 27)),
            [
                "2026-11-24T21:00:00+00:00",
                "2026-11-25T21:00:00+00:00",
                "2026-11-27T18:00:00+00:00"
            ]
        );
        // Juneteenth 2027 falls on a Saturday: NYSE closes Friday 2027-06-18, opens Monday.
        assert_eq!(
            ends(BarSize::Min1, "3 D", "1 D", d(2027, 6, 21)),
            [
                "2027-06-16T20:00:00+00:00",
                "2027-06-17T20:00:00+00:00",
                "2027-06-21T20:00:00+00:00"
            ]
        );
        // A 1 W window ending on the half day ends at its 13:00 close.
        let w = ends(BarSize::Mins5, "10 D", "1 W", d(2026, 11, 27));
        assert_eq!(w.last().unwrap(), "2026-11-27T18:00:00+00:00");
        // 20 sessions back (Thanksgiving skipped) reach across the DST change to Friday
        // 2026-10-30, whose 16:00 close is 20:00 UTC.
        let w = ends(BarSize::Min1, "20 D", "1 D", d(2026, 11, 27));
        assert_eq!(w.len(), 20);
        assert_eq!(w[0], "2026-10-30T20:00:00+00:00");
        assert_eq!(w[1], "2026-11-02T21:00:00+00:00");
    }

    #[test]
    fn late_classes_end_at_16_15_and_13_15() {
        let ny = |w: &Window| calendar::to_ny(w.end).format("%F %H:%M").to_string();
        let end = sess(d(2026, 11, 27));
        let days = split(cell(BarSize::Min1, "3 D"), "1 D".parse().unwrap(), &end, 15).unwrap();
        let got: Vec<String> = days.iter().map(ny).collect();
        assert_eq!(
            got,
            ["2026-11-24 16:15", "2026-11-25 16:15", "2026-11-27 13:15"]
        );
        let one = split(
            cell(BarSize::Mins30, "1 M"),
            "1 M".parse().unwrap(),
            &end,
            15,
        )
        .unwrap();
        assert_eq!(ny(&one[0]), "2026-11-27 13:15");
        // Seconds chunks run to the class close: 16:00-16:15 is a chunk of its own.
        let full = sess(d(2026, 11, 25));
        let chunks = split(
            cell(BarSize::Secs1, "1 D"),
            "1800 S".parse().unwrap(),
            &full,
            15,
        )
        .unwrap();
        assert_eq!(chunks.len(), 14);
        assert_eq!(ny(chunks.last().unwrap()), "2026-11-25 16:15");
        assert_eq!(chunks.last().unwrap().duration.to_string(), "900 S");
        // Monthly windows end at the class close of each window's last session.
        let months = split(
            cell(BarSize::Hours8, "6 M"),
            BarSize::Hours8.max_duration(),
            &end,
            15,
        )
        .unwrap();
        assert!(months.iter().all(|w| {
            let t = calendar::to_ny(w.end).format("%H:%M").to_string();
            t == "16:15" || t == "13:15"
        }));
    }

    #[test]
    fn outside_calendar_is_an_error() {
        let end = sess(d(2000, 3, 2));
        assert!(split(cell(BarSize::Min1, "1 Y"), "1 D".parse().unwrap(), &end, 0).is_err());
        // Absurd durations are errors, not overflows.
        let end = sess(d(2026, 11, 27));
        for dur in [
            "4000000000 W",
            "4000000000 Y",
            "4000000000 M",
            "4000000000 D",
            "4000000000 S",
        ] {
            assert!(
                split(cell(BarSize::Hours8, dur), "1 M".parse().unwrap(), &end, 0).is_err(),
                "{dur}"
            );
            assert!(
                split(cell(BarSize::Hours8, "1 M"), dur.parse().unwrap(), &end, 0).is_ok(),
                "limit {dur}"
            );
        }
    }
}
