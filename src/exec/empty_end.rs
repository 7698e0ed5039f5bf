//! `execute --empty-end`: when a window ends at the close of the last completed session and no
//! session has started since (a weekend or overnight run), an empty end date-time ("now") asks
//! IB for the same bars as the explicit end. One practitioner report says the empty form is
//! served far faster; the summary records which form each request used (see [`FORM_SUFFIX`])
//! so `report` can compare their rates on a real gateway.

use chrono::{DateTime, Utc};

/// Appended to a summary record's request (`6 M@2026-11-27T18:00:00Z`) when it was sent with
/// an empty end.
pub const FORM_SUFFIX: &str = "~empty-end";

/// True when a request ending at `end` may be sent with an empty end at instant `now`: `end`
/// is the close of the last session completed at `now` (the class's close: 16:15 for the late
/// ETF and index classes), it has passed, and the next session has not opened.
/// Regular-hours requests only: outside them, bars after the close would come back too.
pub fn applies(end: DateTime<Utc>, now: DateTime<Utc>, use_rth: bool) -> bool {
    if !use_rth {
        return false;
    }
    let Ok(last) = crate::calendar::last_complete_session(now) else {
        return false;
    };
    let Ok(next) = crate::calendar::session_after(last.date) else {
        return false;
    };
    crate::calendar::to_ny(end).date_naive() == last.date
        && end >= last.close
        && end <= now
        && now < next.open
}

/// True when a summary record's request string was sent with an empty end.
pub fn is_empty_form(request: &str) -> bool {
    request.ends_with(FORM_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weekend_after_a_half_day_uses_the_empty_form() {
        // Black Friday 2026 closes 13:00 New York (18:00 UTC); the next session is Monday.
        let close = Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap();
        let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 15, 0, 0).unwrap();
        assert!(applies(close, saturday, true));
        assert!(!applies(close, saturday, false), "extended hours");
        let thursday_close = Utc.with_ymd_and_hms(2026, 11, 25, 21, 0, 0).unwrap();
        assert!(!applies(thursday_close, saturday, true), "an older end");
        // Monday 10:00 New York: a session has started since.
        let monday = Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap();
        assert!(!applies(close, monday, true));
        // Friday 12:00 New York: the session has not closed yet.
        let friday_noon = Utc.with_ymd_and_hms(2026, 11, 27, 17, 0, 0).unwrap();
        assert!(!applies(close, friday_noon, true));
        assert!(is_empty_form(&format!(
            "6 M@2026-11-27T18:00:00Z{FORM_SUFFIX}"
        )));
        assert!(!is_empty_form("6 M@2026-11-27T18:00:00Z"));
    }
}
