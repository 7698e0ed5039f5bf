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
        task_ending(bar, duration, d(11, 27))
    }

    fn task_ending(bar: BarSize, duration: &str, end_day: NaiveDate) -> FetchTask {
        let end = session(end_day).unwrap().unwrap().close;
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

    fn requested(t: &FetchTask, path: &std::path::Path) -> String {
        match plan_request(t, path, true, true) {
            Plan::Fetch(d) => d.to_string(),
            Plan::UpToDate(why) => format!("up to date: {why}"),
        }
    }

    #[test]
    fn n_days_count_sessions_across_dst_and_holidays() {
        let dir = tempfile::tempdir().unwrap();
        // Clocks go back on 2026-11-01; Thanksgiving 11-26 is closed. Complete through Thursday
        // 10-29: missing 10-30, 5 + 5 + 5 weekdays, then 23, 24, 25 and the half day 27.
        let t = task(BarSize::Hours8, "6 M");
        let path = dir.path().join("fall.parquet");
        write_bars(&t, &path, &[at(10, 29, 9, 30)]);
        assert_eq!(requested(&t, &path), "20 D");
        // A bar inside Monday 11-02's session (after the change) asks for that session again.
        let t = task(BarSize::Mins30, "1 M");
        let path = dir.path().join("partial.parquet");
        write_bars(&t, &path, &[at(11, 2, 12, 0)]);
        assert_eq!(requested(&t, &path), "19 D");
        // Clocks go forward on 2026-03-08; Good Friday 2026-04-03 is closed. Complete through
        // Thursday 03-05, the task ending Monday 04-06: 03-06, 3 weeks of 5, 03-30..04-02, 04-06.
        let t = task_ending(BarSize::Hours8, "6 M", d(4, 6));
        let path = dir.path().join("spring.parquet");
        write_bars(&t, &path, &[at(3, 5, 9, 30)]);
        assert_eq!(requested(&t, &path), "21 D");
    }

    #[test]
    fn half_day_close_ends_the_last_session() {
        let dir = tempfile::tempdir().unwrap();
        // The task ends at the 13:00 close of 2026-11-27.
        let t = task(BarSize::Mins30, "1 M");
        let path = dir.path().join("half.parquet");
        write_bars(&t, &path, &[at(11, 27, 12, 0)]);
        assert_eq!(requested(&t, &path), "1 D", "12:30 bar missing");
        write_bars(&t, &path, &[at(11, 27, 12, 30)]);
        assert!(
            requested(&t, &path).starts_with("up to date"),
            "12:30 + 30 min is the close"
        );
    }
}
