//! The request's text fields as IB accepts them (bar size spellings, the end date-time forms
//! with their zones) and the UTC rendering of the HistoricalDataEnd message.
//!
//! Apart from the window arithmetic so that what the wire accepts is readable on its own.

use super::HmdsError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use ib_model::bars::BarSize;

/// Parse a bar size, accepting `ibapi`'s `1 week` / `1 month` spellings of `1W` / `1M`.
pub fn parse_bar_size(text: &str) -> Result<BarSize, HmdsError> {
    match text.trim() {
        "1 week" => Ok(BarSize::Week1),
        "1 month" => Ok(BarSize::Month1),
        t => t.parse().map_err(|_| HmdsError::bad_bar_size()),
    }
}

/// Parse an end date-time as IB accepts it: empty (now), `YYYYMMDD HH:MM:SS <zone>`,
/// `YYYYMMDD-HH:MM:SS` (UTC), `YYYYMMDD HH:MM:SS` (New York) or `YYYYMMDD` (end of that day,
/// New York). `None` for empty.
pub fn parse_end(text: &str) -> Result<Option<DateTime<Utc>>, HmdsError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || HmdsError::bad_end(text);
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y%m%d-%H:%M:%S") {
        return Ok(Some(Utc.from_utc_datetime(&dt)));
    }
    if t.len() == 8 {
        let d = NaiveDate::parse_from_str(t, "%Y%m%d").map_err(|_| bad())?;
        let dt = d.and_time(NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(bad)?);
        return local(dt, "America/New_York").ok_or_else(bad).map(Some);
    }
    let mut parts = t.splitn(3, ' ');
    let (Some(d), Some(time)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let dt = NaiveDateTime::parse_from_str(&format!("{d} {time}"), "%Y%m%d %H:%M:%S")
        .map_err(|_| bad())?;
    let zone = parts.next().map(str::trim).unwrap_or("America/New_York");
    local(dt, zone).ok_or_else(bad).map(Some)
}

/// A local date-time in a zone IB names (`UTC`, `EST`, an IANA name) as an instant; None for an
/// unknown zone or a time the zone skips.
pub(super) fn local(dt: NaiveDateTime, zone: &str) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = match zone {
        "UTC" | "GMT" => return Some(Utc.from_utc_datetime(&dt)),
        "EST" | "EDT" | "US/Eastern" => New_York,
        z => z.parse().ok()?,
    };
    tz.from_local_datetime(&dt)
        .earliest()
        .map(|x| x.with_timezone(&Utc))
}

/// Format an instant as `YYYYMMDD-HH:MM:SS` (UTC), the HistoricalDataEnd rendering.
pub fn fmt_utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d-%H:%M:%S").to_string()
}
