//! The `end` key: a session date, `last-session`, or an explicit instant.

use super::walker::{as_str, Ctx};
use crate::plan::node::Node;
use crate::plan::types::EndSpec;
use chrono::NaiveDate;

pub(super) fn end_spec(ctx: &mut Ctx<'_>, n: &Node) -> Option<EndSpec> {
    let s = as_str(ctx, n, "end")?;
    if s == "last-session" {
        return Some(EndSpec::LastSession);
    }
    // A date followed by a time: an instant.
    if s.len() > 10 && matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return match end_instant(s) {
            Ok(t) => {
                match crate::calendar::session_on_or_before(crate::calendar::to_ny(t).date_naive())
                {
                    Ok(_) => Some(EndSpec::Instant(t)),
                    Err(e) => {
                        ctx.err(n.loc, "end", e.to_string());
                        None
                    }
                }
            }
            Err(why) => {
                ctx.err_hint(n.loc, "end", format!("bad end `{s}`: {why}"), END_HINT);
                None
            }
        };
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => match crate::calendar::session_on_or_before(d) {
            Ok(_) => Some(EndSpec::Date(d)),
            Err(e) => {
                ctx.err(n.loc, "end", e.to_string());
                None
            }
        },
        Err(_) => {
            ctx.err_hint(n.loc, "end", format!("bad end `{s}`"), END_HINT);
            None
        }
    }
}

const END_HINT: &str = "`YYYY-MM-DD` (that session's close), `last-session`, or an instant: `2026-12-01T11:00:00-05:00` or `2026-12-01T11:00 America/New_York`";

/// An explicit end instant: RFC 3339 with an offset (`2026-12-01T11:00:00-05:00`, `...Z`), or
/// a local date-time (`T` or a space, seconds optional) followed by an IANA time zone.
fn end_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::TimeZone;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (local, zone) = match s.rsplit_once(' ') {
        Some((l, z)) if z.contains('/') || z == "UTC" => (l.trim(), z),
        _ => {
            return Err(
                "expected an offset (`-05:00`, `Z`) or a time zone name after the time".into(),
            )
        }
    };
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(local, f).ok())
    .ok_or_else(|| format!("`{local}` is not a `YYYY-MM-DDTHH:MM[:SS]` date-time"))?;
    let tz: chrono_tz::Tz = zone
        .parse()
        .map_err(|_| format!("unknown time zone `{zone}` (e.g. `America/New_York`)"))?;
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&chrono::Utc)),
        chrono::LocalResult::Ambiguous(..) => Err(format!(
            "{local} happens twice in {zone} (the clocks go back): give the offset instead"
        )),
        chrono::LocalResult::None => Err(format!(
            "{local} does not exist in {zone} (the clocks go forward)"
        )),
    }
}
