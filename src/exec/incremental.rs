//! Request planning against coverage: which requests a task needs given what its file already
//! covers.
//!
//! A task is a window of sessions. The sessions to fetch are the window's sessions minus those
//! the file's coverage records as answered (a provisional session counts once it has closed).
//! None missing: UP_TO_DATE, no request. All missing: the task's own request. Some missing: one
//! `N D` request per run of consecutive missing sessions (holes in the middle included), each
//! ending at the close of its last session; a run is never longer than the window, so it stays
//! within the bar size's limit. Seconds chunks are all or nothing.

use crate::bars::{BarSize, Duration as IbDuration, DurationUnit};
use crate::compile::task::FetchTask;
use crate::store::coverage::{FileCoverage, Unit};
use crate::store::parquet::WriteMode;
use chrono::{DateTime, Utc};

/// One request of a task and the units it answers for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// Request end.
    pub end: DateTime<Utc>,
    /// Request duration.
    pub duration: IbDuration,
    /// The sessions (or chunk) the answer covers, oldest first.
    pub units: Vec<Unit>,
}

/// What to send for a task.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Nothing to send; why.
    UpToDate(String),
    /// Send these requests in order, merging each answer with `mode` (Replace applies to the
    /// first request only).
    Fetch {
        /// Requests, oldest first.
        requests: Vec<Request>,
        /// How the first answer meets the existing file.
        mode: WriteMode,
    },
}

/// How the run treats existing files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Plan against coverage (default); otherwise fetch whole windows.
    pub incremental: bool,
    /// With `incremental = false`: skip an existing file at the series' first window.
    pub resume: bool,
    /// This task is the first window of its series in this run.
    pub first_of_series: bool,
}

/// Decide the requests for `t` (window `units`) given its file's coverage (None: no file).
pub(crate) fn plan_task(
    t: &FetchTask,
    units: &[Unit],
    coverage: Option<&FileCoverage>,
    file_exists: bool,
    now: DateTime<Utc>,
    policy: Policy,
) -> Plan {
    let whole = || Request {
        end: t.end,
        duration: t.duration,
        units: units.to_vec(),
    };
    if !policy.incremental {
        if policy.first_of_series && file_exists {
            if policy.resume {
                return Plan::UpToDate("file exists (--no-incremental --resume)".into());
            }
            return Plan::Fetch {
                requests: vec![whole()],
                mode: WriteMode::Replace,
            };
        }
        return Plan::Fetch {
            requests: vec![whole()],
            mode: WriteMode::Merge,
        };
    }
    let empty = FileCoverage::default();
    let cov = coverage.unwrap_or(&empty);
    let missing: Vec<bool> = units.iter().map(|u| cov.needs(u, now)).collect();
    if units.is_empty() {
        return Plan::Fetch {
            requests: vec![whole()],
            mode: WriteMode::Merge,
        };
    }
    if !missing.iter().any(|m| *m) {
        return Plan::UpToDate(format!(
            "every session of the window is covered ({} .. {})",
            units[0].session().date,
            units[units.len() - 1].session().date
        ));
    }
    if missing.iter().all(|m| *m) {
        return Plan::Fetch {
            requests: vec![whole()],
            mode: WriteMode::Merge,
        };
    }
    let mut requests = Vec::new();
    let mut i = 0;
    while i < units.len() {
        if !missing[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < units.len() && missing[j + 1] {
            j += 1;
        }
        requests.push(request_for(t, &units[i..=j], j + 1 == units.len()));
        i = j + 1;
    }
    Plan::Fetch {
        requests,
        mode: WriteMode::Merge,
    }
}

/// The request answering exactly `run` (consecutive units of one window); `last`: the run ends
/// the window, so it ends at the task's end.
fn request_for(t: &FetchTask, run: &[Unit], last: bool) -> Request {
    let end = if last {
        t.end
    } else {
        run.last()
            .map(|u| match u {
                // A class closing after the equities (16:15) closes each session as late as
                // the task's last one.
                Unit::Session(s) => s.close + late_close(t, s),
                Unit::Chunk { end, .. } => *end,
            })
            .unwrap_or(t.end)
    };
    let duration = match (t.duration.unit, run.first()) {
        (DurationUnit::Seconds, Some(first)) => {
            let start = match first {
                Unit::Chunk { start, .. } => *start,
                Unit::Session(s) => s.open,
            };
            IbDuration {
                n: (end - start).num_seconds().max(1) as u32,
                unit: DurationUnit::Seconds,
            }
        }
        _ => IbDuration {
            n: run.len() as u32,
            unit: DurationUnit::Days,
        },
    };
    Request {
        end,
        duration,
        units: run.to_vec(),
    }
}

/// How far past the equity close the task's class closes: the task's end minus the equity close
/// of the session it ends on (15 minutes for a 16:15 class), never negative, at most an hour.
fn late_close(t: &FetchTask, any: &crate::calendar::Session) -> chrono::Duration {
    let day = crate::calendar::to_ny(t.end).date_naive();
    let close = match crate::calendar::session(day) {
        Ok(Some(s)) => s.close,
        _ => any.close,
    };
    let late = t.end - close;
    if late > chrono::Duration::zero() && late <= chrono::Duration::hours(1) {
        late
    } else {
        chrono::Duration::zero()
    }
}

/// Sessions one request may cover under a limit: the limit's length in trading sessions,
/// counted low (a month is 19 sessions in the shortest February), so a split never exceeds it.
pub(crate) fn sessions_within(limit: IbDuration) -> usize {
    let n = limit.n as usize;
    match limit.unit {
        DurationUnit::Seconds => 1,
        DurationUnit::Days => n,
        DurationUnit::Weeks => 5 * n,
        DurationUnit::Months => 19 * n,
        DurationUnit::Years => 250 * n,
    }
    .max(1)
}

/// Split a request into requests of at most `max_sessions` sessions each (oldest first); a
/// request already within it is returned as it is.
pub(crate) fn split(t: &FetchTask, req: &Request, max_sessions: usize) -> Vec<Request> {
    if t.duration.unit == DurationUnit::Seconds || req.units.len() <= max_sessions {
        return vec![req.clone()];
    }
    let mut out = Vec::new();
    let mut hi = req.units.len();
    while hi > 0 {
        let lo = hi.saturating_sub(max_sessions);
        let last = hi == req.units.len();
        let mut r = request_for(t, &req.units[lo..hi], last);
        if last {
            r.end = req.end;
        }
        out.push(r);
        hi = lo;
    }
    out.reverse();
    out
}

/// Whether a request is longer than the strict limit table allows for `bar` (so a silent empty
/// answer to it may be the gateway refusing its length rather than an empty window).
pub(crate) fn over_strict(req: &Request, bar: BarSize) -> bool {
    let strict = bar.strict_max_duration();
    strict.unit != DurationUnit::Seconds
        && req.duration.unit != DurationUnit::Seconds
        && req.units.len() > sessions_within(strict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Right;
    use crate::calendar::session;
    use crate::store::coverage::{window_units, Answer, Cover};
    use chrono::NaiveDate;

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
            contract: std::sync::Arc::new(crate::cache::OptionContract {
                con_id: 7,
                local_symbol: "X".into(),
                trading_class: "AAPL".into(),
                expiry: d(12, 18),
                strike: 100.0,
                right: Right::C,
                multiplier: 100.0,
                exchange: "SMART".into(),
                currency: "USD".into(),
            }),
            what: crate::bars::WhatToShow::Trades,
            bar_size: bar,
            duration,
            end,
            use_rth: true,
            window: 0,
        }
    }

    const INC: Policy = Policy {
        incremental: true,
        resume: true,
        first_of_series: true,
    };

    fn covered(units: &[Unit], which: impl Fn(NaiveDate) -> bool) -> FileCoverage {
        let mut c = FileCoverage::default();
        for u in units.iter().filter(|u| which(u.session().date)) {
            c.set(
                u,
                Cover {
                    answer: Answer::Bars,
                    provisional: false,
                },
            );
        }
        c
    }

    fn durations(p: &Plan) -> Vec<String> {
        match p {
            Plan::Fetch { requests, .. } => {
                requests.iter().map(|r| r.duration.to_string()).collect()
            }
            Plan::UpToDate(_) => vec![],
        }
    }

    #[test]
    fn requests_cover_exactly_the_missing_sessions_holes_included() {
        let t = task(BarSize::Hours8, "1 M");
        let units = window_units(t.end, t.duration);
        let now = t.end + chrono::Duration::days(3);
        assert_eq!(
            durations(&plan_task(&t, &units, None, false, now, INC)),
            vec!["1 M"]
        );
        // Covered up to 11-20: the last sessions (23, 24, 25, 27; 26 is Thanksgiving).
        let c = covered(&units, |x| x <= d(11, 20));
        assert_eq!(
            durations(&plan_task(&t, &units, Some(&c), true, now, INC)),
            vec!["4 D"]
        );
        // A hole in the middle (11-09 .. 11-13) and the tail.
        let c = covered(&units, |x| {
            x < d(11, 9) || (x > d(11, 13) && x <= d(11, 20))
        });
        let p = plan_task(&t, &units, Some(&c), true, now, INC);
        assert_eq!(durations(&p), vec!["5 D", "4 D"]);
        let Plan::Fetch { requests, .. } = p else {
            panic!()
        };
        assert_eq!(requests[0].end, session(d(11, 13)).unwrap().unwrap().close);
        assert_eq!(requests[1].end, t.end);
        let c = covered(&units, |_| true);
        assert!(matches!(
            plan_task(&t, &units, Some(&c), true, now, INC),
            Plan::UpToDate(_)
        ));
    }

    #[test]
    fn a_provisional_session_is_fetched_again_once_closed() {
        let t = task(BarSize::Mins30, "5 D");
        let units = window_units(t.end, t.duration);
        let mut c = covered(&units, |_| true);
        let last = units.last().unwrap();
        c.set(
            last,
            Cover {
                answer: Answer::Bars,
                provisional: true,
            },
        );
        let p = plan_task(&t, &units, Some(&c), true, t.end, INC);
        assert_eq!(durations(&p), vec!["1 D"]);
        let before_close = last.session().open;
        assert!(matches!(
            plan_task(&t, &units, Some(&c), true, before_close, INC),
            Plan::UpToDate(_)
        ));
    }

    #[test]
    fn plain_mode_skips_or_replaces_at_the_first_window_only() {
        let t = task(BarSize::Hours8, "1 M");
        let units = window_units(t.end, t.duration);
        let c = covered(&units, |_| true);
        let plain = |resume, first| Policy {
            incremental: false,
            resume,
            first_of_series: first,
        };
        assert!(matches!(
            plan_task(&t, &units, Some(&c), true, t.end, plain(true, true)),
            Plan::UpToDate(_)
        ));
        assert!(matches!(
            plan_task(&t, &units, Some(&c), true, t.end, plain(false, true)),
            Plan::Fetch {
                mode: WriteMode::Replace,
                ..
            }
        ));
        assert!(matches!(
            plan_task(&t, &units, Some(&c), true, t.end, plain(true, false)),
            Plan::Fetch {
                mode: WriteMode::Merge,
                ..
            }
        ));
    }

    #[test]
    fn splitting_keeps_every_session_once_and_within_the_limit() {
        let t = task(BarSize::Min1, "1 M");
        let units = window_units(t.end, t.duration);
        let whole = Request {
            end: t.end,
            duration: t.duration,
            units: units.clone(),
        };
        assert!(over_strict(&whole, BarSize::Min1));
        let parts = split(&t, &whole, 1);
        assert_eq!(parts.len(), units.len());
        assert!(parts.iter().all(|r| r.duration.to_string() == "1 D"));
        let dates: Vec<NaiveDate> = parts.iter().map(|r| r.units[0].session().date).collect();
        let want: Vec<NaiveDate> = units.iter().map(|u| u.session().date).collect();
        assert_eq!(dates, want);
        assert_eq!(parts.last().unwrap().end, t.end);
        assert_eq!(parts[0].end, units[0].session().close);
        let weeks = split(&t, &whole, sessions_within("1 W".parse().unwrap()));
        assert!(weeks.iter().all(|r| r.units.len() <= 5));
        assert_eq!(
            weeks.iter().map(|r| r.units.len()).sum::<usize>(),
            units.len()
        );
    }

    /// The requests planned for `t` when its file covers every session through `through`.
    fn requested(t: &FetchTask, through: NaiveDate) -> String {
        let units = window_units(t.end, t.duration);
        let c = covered(&units, |x| x <= through);
        let now = t.end + chrono::Duration::days(1);
        match plan_task(t, &units, Some(&c), true, now, INC) {
            Plan::Fetch { requests, .. } => requests
                .iter()
                .map(|r| r.duration.to_string())
                .collect::<Vec<_>>()
                .join("+"),
            Plan::UpToDate(why) => format!("up to date: {why}"),
        }
    }

    #[test]
    fn n_days_count_sessions_across_dst_and_holidays() {
        // Clocks go back on 2026-11-01; Thanksgiving 11-26 is closed. Covered through Thursday
        // 10-29: missing 10-30, 5 + 5 + 5 weekdays, then 23, 24, 25 and the half day 27.
        let t = task(BarSize::Hours8, "6 M");
        assert_eq!(requested(&t, d(10, 29)), "20 D");
        // Covered through Friday 10-30, the window of one month ending 11-27: 19 sessions left.
        let t = task(BarSize::Mins30, "1 M");
        assert_eq!(requested(&t, d(10, 30)), "19 D");
        // Clocks go forward on 2026-03-08; Good Friday 2026-04-03 is closed. Covered through
        // Thursday 03-05, the task ending Monday 04-06: 03-06, 3 weeks of 5, 03-30..04-02, 04-06.
        let t = task_ending(BarSize::Hours8, "6 M", d(4, 6));
        assert_eq!(requested(&t, d(3, 5)), "21 D");
        // The request of the run ends at the task's end, whatever the offset that day.
        let units = window_units(t.end, t.duration);
        assert_eq!(units.last().unwrap().session().close, t.end);
    }

    #[test]
    fn holes_of_a_16_15_class_end_at_16_15() {
        // A SPY task ending at 16:15 on 11-25: a hole on 11-23 is asked up to 16:15 that day.
        let mut t = task_ending(BarSize::Min1, "3 D", d(11, 25));
        t.end = crate::hours::class_close(&session(d(11, 25)).unwrap().unwrap(), 15);
        let units = window_units(t.end, t.duration);
        let c = covered(&units, |x| x != d(11, 23));
        let now = t.end + chrono::Duration::days(1);
        let Plan::Fetch { requests, .. } = plan_task(&t, &units, Some(&c), true, now, INC) else {
            panic!("the hole must be fetched")
        };
        assert_eq!(requests.len(), 1);
        assert_eq!(
            crate::calendar::to_ny(requests[0].end)
                .format("%F %H:%M")
                .to_string(),
            "2026-11-23 16:15"
        );
    }

    #[test]
    fn half_day_close_ends_the_last_session() {
        // The task ends at the 13:00 close of 2026-11-27.
        let t = task(BarSize::Mins30, "1 M");
        assert_eq!(requested(&t, d(11, 25)), "1 D", "the half day is missing");
        assert!(requested(&t, d(11, 27)).starts_with("up to date"));
        let units = window_units(t.end, t.duration);
        let last = units.last().unwrap().session();
        assert!(last.half_day);
        assert_eq!(
            crate::calendar::to_ny(last.close).time(),
            chrono::NaiveTime::from_hms_opt(13, 0, 0).unwrap()
        );
    }
}
