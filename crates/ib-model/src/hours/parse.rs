//! IB's trading-hours strings (`liquidHours`, `tradingHours` of contract details) and their
//! `timeZoneId`.
//!
//! Two formats are in use, both a `;`-separated list of days:
//! - newer: `20180323:0930-20180323:1600;20180324:CLOSED`, each end with its own date, so a
//!   session may cross midnight (`20180325:1700-20180326:1600`);
//! - older: `20170515:0930-1600;20170516:CLOSED`, ends without a date (an end not after the start
//!   is on the next day).
//!
//! Either may list several sessions of one day separated by `,`
//! (`20180323:0930-1600,1700-1800` or `20180323:0930-20180323:1600,20180323:1700-20180323:1800`).
//! Times are local to the contract's `timeZoneId`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why an hours string could not be read: which `;`-separated item (1-based), its text and
/// what is wrong, so a message can point at the exact place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item {item} `{text}`: {why}")]
pub struct HoursError {
    /// 1-based position of the `;`-separated item (0: the whole string or the time zone).
    pub item: usize,
    /// The item's text.
    pub text: String,
    /// What is wrong.
    pub why: String,
}

/// One trading session from an hours string, in the contract's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSession {
    /// The date the item is listed under (the trading date).
    pub date: NaiveDate,
    /// Start, local time.
    pub start: NaiveDateTime,
    /// End (exclusive), local time; after `start`.
    pub end: NaiveDateTime,
}

/// A parsed hours string: the sessions and the days listed as `CLOSED`, in listed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hours {
    /// Open sessions.
    pub sessions: Vec<LocalSession>,
    /// Days listed as closed.
    pub closed: Vec<NaiveDate>,
}

impl Hours {
    /// The sessions as UTC instants, given the contract's time zone.
    pub fn sessions_utc(&self, tz: Tz) -> Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
        self.sessions
            .iter()
            .filter_map(|s| Some((s.date, to_utc(tz, s.start)?, to_utc(tz, s.end)?)))
            .collect()
    }
}

/// A local time to UTC; the earlier instant when the clock goes back, `None` in a DST gap.
fn to_utc(tz: Tz, t: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&t)
        .earliest()
        .map(|x| x.with_timezone(&Utc))
}

/// Read IB's `timeZoneId` (`US/Eastern`, `America/New_York`, `US/Central`, `EST5EDT`, ...).
pub fn parse_time_zone(id: &str) -> Result<Tz, HoursError> {
    id.trim().parse::<Tz>().map_err(|_| HoursError {
        item: 0,
        text: id.to_string(),
        why: "not a time zone name IB uses (e.g. `US/Eastern`, `America/New_York`)".into(),
    })
}

/// Parse an hours string in either format. Empty items (a trailing `;`) are skipped.
pub fn parse_hours(text: &str) -> Result<Hours, HoursError> {
    let mut out = Hours::default();
    for (i, raw) in text.split(';').enumerate() {
        let item = raw.trim();
        if item.is_empty() {
            continue;
        }
        let err = |why: String| HoursError {
            item: i + 1,
            text: item.to_string(),
            why,
        };
        let (date_s, rest) = item
            .split_once(':')
            .ok_or_else(|| err("expected `YYYYMMDD:` before the hours".into()))?;
        let date = parse_date(date_s).map_err(&err)?;
        if rest.trim().eq_ignore_ascii_case("CLOSED") {
            out.closed.push(date);
            continue;
        }
        // The first range carries the item's date; later `,` ranges may carry their own.
        for (k, range) in rest.split(',').enumerate() {
            let range = range.trim();
            let (a, b) = range
                .split_once('-')
                .ok_or_else(|| err(format!("range `{range}` has no `-`")))?;
            let start = if k == 0 {
                date.and_time(parse_time(a).map_err(&err)?)
            } else {
                parse_point(a, date).map_err(&err)?
            };
            let mut end = parse_point(b, start.date()).map_err(&err)?;
            let dated_end = b.contains(':');
            if !dated_end && end <= start {
                // Older format: an end at or before the start is on the next day.
                end += chrono::Duration::days(1);
            }
            if end <= start {
                return Err(err(format!("range `{range}` ends before it starts")));
            }
            if end - start > chrono::Duration::days(7) {
                return Err(err(format!("range `{range}` is longer than a week")));
            }
            out.sessions.push(LocalSession { date, start, end });
        }
    }
    Ok(out)
}

/// `YYYYMMDD:HHMM` or `HHMM` (on `date`).
fn parse_point(s: &str, date: NaiveDate) -> Result<NaiveDateTime, String> {
    match s.trim().split_once(':') {
        Some((d, t)) => Ok(parse_date(d)?.and_time(parse_time(t)?)),
        None => Ok(date.and_time(parse_time(s)?)),
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a YYYYMMDD date"));
    }
    NaiveDate::parse_from_str(s, "%Y%m%d").map_err(|_| format!("`{s}` is not a calendar date"))
}

fn parse_time(s: &str) -> Result<NaiveTime, String> {
    let s = s.trim();
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not an HHMM time"));
    }
    if s == "2400" {
        // Some feeds write midnight at the end of a day as 2400.
        return Ok(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN));
    }
    NaiveTime::parse_from_str(s, "%H%M").map_err(|_| format!("`{s}` is not a time of day"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(d: &str, t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(&format!("{d} {t}"), "%Y%m%d %H%M").unwrap()
    }

    #[test]
    fn newer_format_with_closed_days() {
        let h = parse_hours("20180323:0930-20180323:1600;20180324:CLOSED;20180325:CLOSED").unwrap();
        assert_eq!(h.sessions.len(), 1);
        assert_eq!(h.sessions[0].start, dt("20180323", "0930"));
        assert_eq!(h.sessions[0].end, dt("20180323", "1600"));
        assert_eq!(h.closed.len(), 2);
    }

    #[test]
    fn older_format() {
        let h = parse_hours("20170515:0930-1615;20170516:CLOSED;").unwrap();
        assert_eq!(h.sessions[0].end, dt("20170515", "1615"));
        assert_eq!(h.closed, [NaiveDate::from_ymd_opt(2017, 5, 16).unwrap()]);
    }

    #[test]
    fn sessions_crossing_midnight() {
        // Newer: the end carries its own date.
        let h = parse_hours("20180325:2015-20180326:0915,20180326:0930-20180326:1615").unwrap();
        assert_eq!(h.sessions.len(), 2);
        assert_eq!(h.sessions[0].start, dt("20180325", "2015"));
        assert_eq!(h.sessions[0].end, dt("20180326", "0915"));
        assert_eq!(h.sessions[1].end, dt("20180326", "1615"));
        // Older: an end before the start is the next day.
        let h = parse_hours("20170514:1700-1600").unwrap();
        assert_eq!(h.sessions[0].end, dt("20170515", "1600"));
    }

    #[test]
    fn several_ranges_in_one_day_old_format() {
        let h = parse_hours("20170515:0930-1600,1700-1800").unwrap();
        assert_eq!(h.sessions.len(), 2);
        assert_eq!(h.sessions[1].start, dt("20170515", "1700"));
    }

    #[test]
    fn errors_name_the_item() {
        let e = parse_hours("20180323:0930-20180323:1600;2018032:0930-1600").unwrap_err();
        assert_eq!(e.item, 2);
        assert!(e.why.contains("YYYYMMDD"), "{e}");
        let e = parse_hours("20180323:0930").unwrap_err();
        assert!(e.why.contains("no `-`"), "{e}");
        let e = parse_hours("20180323:0960-1600").unwrap_err();
        assert!(e.why.contains("time of day"), "{e}");
        let e = parse_hours("20180323:0930-20180322:1600").unwrap_err();
        assert!(e.why.contains("ends before"), "{e}");
        assert!(parse_hours("20180230:CLOSED").is_err());
        assert!(parse_hours("CLOSED").is_err());
        assert_eq!(parse_hours("").unwrap(), Hours::default());
    }

    #[test]
    fn time_zones() {
        assert_eq!(parse_time_zone("US/Eastern").unwrap().name(), "US/Eastern");
        assert_eq!(
            parse_time_zone("America/New_York").unwrap().name(),
            "America/New_York"
        );
        assert!(parse_time_zone("Mars/Base").is_err());
        // 15:15 Chicago is 16:15 New York (21:15 UTC in November).
        let h = parse_hours("20261124:0830-20261124:1515").unwrap();
        let utc = h.sessions_utc(parse_time_zone("US/Central").unwrap());
        assert_eq!(utc[0].2.to_rfc3339(), "2026-11-24T21:15:00+00:00");
    }
}
