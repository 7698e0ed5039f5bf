//! Incremental fetching: what to request for a task given what its Parquet file already holds.
//!
//! A file that covers the whole window needs no request (UP_TO_DATE); one that ends inside the
//! window needs only the sessions after its last complete one (a shorter `N D`, which the
//! gateway counts in trading sessions); anything else gets the task's full window.

use crate::bars::{Duration as IbDuration, DurationUnit};
use crate::compile::task::FetchTask;
use crate::store::parquet;

/// What to send for a task given what its file already holds.
pub(crate) enum Plan {
    /// Nothing to send; why.
    UpToDate(String),
    /// Send the request with this duration (the task's, or a shorter one).
    Fetch(IbDuration),
}

/// Decide the request for `t` given its file at `path` (`incremental`: merge into the file;
/// otherwise skip an existing file when `resume`, else overwrite it).
pub(crate) fn plan_request(
    t: &FetchTask,
    path: &std::path::Path,
    incremental: bool,
    resume: bool,
) -> Plan {
    let exists = path.exists();
    if !incremental {
        return if exists && resume {
            Plan::UpToDate("file exists (--no-incremental --resume)".into())
        } else {
            Plan::Fetch(t.duration)
        };
    }
    let Ok(Some(cov)) = parquet::coverage(path) else {
        return Plan::Fetch(t.duration);
    };
    let bar = chrono::Duration::seconds(t.bar_size.seconds());
    if cov.last + bar >= t.end {
        return Plan::UpToDate(format!("file already holds bars up to {}", cov.last));
    }
    let start = t.duration.window_start(t.end);
    if cov.last < start {
        return Plan::Fetch(t.duration);
    }
    // Request the sessions from the one holding the last stored bar (if not finished) to the end.
    let last_day = crate::calendar::to_ny(cov.last).date_naive();
    let end_day = crate::calendar::to_ny(t.end).date_naive();
    let Ok(sessions) = crate::calendar::sessions_between(last_day, end_day) else {
        return Plan::Fetch(t.duration);
    };
    let mut n = sessions.iter().filter(|s| s.open < t.end).count() as u32;
    if let Some(first) = sessions.first() {
        if first.date == last_day && cov.last + bar >= first.close {
            n = n.saturating_sub(1);
        }
    }
    if n == 0 {
        return Plan::UpToDate(format!("file already holds bars up to {}", cov.last));
    }
    let shorter = IbDuration {
        n,
        unit: DurationUnit::Days,
    };
    if shorter.window_start(t.end) <= start {
        Plan::Fetch(t.duration)
    } else {
        Plan::Fetch(shorter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::BarSize;
    use crate::cache::Right;
    use crate::calendar::{ny_to_utc, session};
    use crate::ib::FetchedBar;
    use crate::store::parquet::SeriesKey;
    use chrono::{DateTime, Utc};
    use chrono::{NaiveDate, NaiveTime};

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn task(bar: BarSize, duration: &str) -> FetchTask {
        let end = session(d(11, 27)).unwrap().unwrap().close;
        let duration = duration.parse().unwrap();
        FetchTask {
            id: crate::compile::task::task_id(7, "TRADES", bar, end, duration, true),
            phase: "p".into(),
            symbol: "AAPL".into(),
            con_id: 7,
            local_symbol: "X".into(),
            trading_class: "AAPL".into(),
            expiry: d(12, 18),
            strike: 100.0,
            right: Right::C,
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
            what: "TRADES".into(),
            bar_size: bar,
            duration,
            end,
            use_rth: true,
            window: 0,
        }
    }

    fn write_bars(t: &FetchTask, path: &std::path::Path, stamps: &[DateTime<Utc>]) {
        let key = SeriesKey {
            symbol: t.symbol.clone(),
            con_id: t.con_id,
            expiry: t.expiry,
            strike: t.strike,
            right: t.right,
            bar_size: t.bar_size,
            what: t.what.clone(),
        };
        let bars: Vec<FetchedBar> = stamps
            .iter()
            .map(|ts| FetchedBar {
                ts: *ts,
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 1.0,
                wap: 1.0,
                count: 1,
            })
            .collect();
        parquet::merge_bars(path, &key, &bars, Utc::now(), true).unwrap();
    }

    fn at(m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        ny_to_utc(d(m, day), NaiveTime::from_hms_opt(h, min, 0).unwrap())
    }

    #[test]
    fn incremental_requests_only_the_missing_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(BarSize::Hours8, "6 M");
        let path = dir.path().join("f.parquet");
        assert!(
            matches!(plan_request(&t, &path, true, true), Plan::Fetch(d) if d == t.duration),
            "no file: full window"
        );
        write_bars(&t, &path, &[at(11, 19, 9, 30), at(11, 20, 9, 30)]);
        // Missing: Mon 23, Tue 24, Wed 25, Fri 27 (Thanksgiving closed).
        assert!(
            matches!(plan_request(&t, &path, true, true), Plan::Fetch(d) if d.to_string() == "4 D")
        );
        write_bars(&t, &path, &[at(11, 27, 9, 30)]);
        assert!(matches!(
            plan_request(&t, &path, true, true),
            Plan::UpToDate(_)
        ));
    }

    #[test]
    fn partial_session_is_requested_again() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(BarSize::Mins30, "1 M");
        let path = dir.path().join("f.parquet");
        write_bars(&t, &path, &[at(11, 25, 12, 0)]);
        assert!(
            matches!(plan_request(&t, &path, true, true), Plan::Fetch(d) if d.to_string() == "2 D")
        );
        // A file older than the window start gets the whole window.
        let p2 = dir.path().join("g.parquet");
        write_bars(&t, &p2, &[at(9, 1, 10, 0)]);
        assert!(matches!(plan_request(&t, &p2, true, true), Plan::Fetch(d) if d == t.duration));
    }

    #[test]
    fn plain_mode_skips_or_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(BarSize::Hours8, "6 M");
        let path = dir.path().join("f.parquet");
        write_bars(&t, &path, &[at(11, 20, 9, 30)]);
        assert!(matches!(
            plan_request(&t, &path, false, true),
            Plan::UpToDate(_)
        ));
        assert!(matches!(
            plan_request(&t, &path, false, false),
            Plan::Fetch(_)
        ));
    }
}
