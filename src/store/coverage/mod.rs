//! Coverage: which sessions of a bar file (and, for seconds bars, which chunks of a session)
//! were asked for and answered, and how.
//!
//! A file's newest bar says nothing about holes: a window that timed out between two that
//! succeeded, a cell lengthened from `1 M` to `6 M`, a session fetched before it closed. So the
//! store records per session what the gateway answered: bars, no bars (`Empty`), and whether the
//! session was still open when it was fetched (`provisional`, fetched again once it closed).
//!
//! The record travels with the bars in the Parquet file's key-value metadata (written in the
//! same atomic rename), and a per-scope index ([`super::coverage_index`]) caches it for a fast
//! resume. A lost record only costs requests: a session without a record is fetched, and a
//! range whose session count no longer matches the calendar is dropped.
//!
//! This module holds the record and its operations; `units` what it is kept in (sessions and
//! chunks of a window), `encoding` its text form and resume's fast reading of it.

use crate::calendar;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod encoding;
mod units;

pub use encoding::FinalRuns;
pub use units::{window_ordinals, window_units, Unit};

/// Format version of the encoded coverage.
pub const COVERAGE_VERSION: u32 = 1;

/// Key of the coverage record in a bar file's Parquet key-value metadata.
pub const COVERAGE_KEY: &str = "opt_backfill.coverage";

/// What the gateway answered for a session or chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// At least one bar.
    Bars,
    /// Asked, answered, no bars (no trades, or before the contract's listing).
    Empty,
}

/// One unit's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cover {
    /// What was answered.
    pub answer: Answer,
    /// The unit had not ended when it was fetched: fetch it again once it has.
    pub provisional: bool,
}

impl Cover {
    fn code(self) -> &'static str {
        match (self.answer, self.provisional) {
            (Answer::Bars, false) => "B",
            (Answer::Empty, false) => "E",
            (Answer::Bars, true) => "b",
            (Answer::Empty, true) => "e",
        }
    }

    fn from_code(code: &str) -> Option<Cover> {
        let (answer, provisional) = match code {
            "B" => (Answer::Bars, false),
            "E" => (Answer::Empty, false),
            "b" => (Answer::Bars, true),
            "e" => (Answer::Empty, true),
            _ => return None,
        };
        Some(Cover {
            answer,
            provisional,
        })
    }
}

/// Coverage of one bar file (or of one series whose file does not exist: all empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCoverage {
    sessions: BTreeMap<NaiveDate, Cover>,
    chunks: BTreeMap<(i64, i64), Cover>,
}

impl FileCoverage {
    /// No unit recorded.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.chunks.is_empty()
    }

    /// Sessions recorded.
    pub fn sessions(&self) -> impl Iterator<Item = (&NaiveDate, &Cover)> {
        self.sessions.iter()
    }

    /// The record of one session.
    pub fn session(&self, date: NaiveDate) -> Option<Cover> {
        self.sessions.get(&date).copied()
    }

    /// Record what a unit answered (replacing an earlier record of it).
    pub fn set(&mut self, unit: &Unit, cover: Cover) {
        match unit {
            Unit::Session(s) => {
                self.sessions.insert(s.date, cover);
                // A whole session supersedes the chunks inside it.
                let (lo, hi) = (s.open.timestamp_millis(), s.close.timestamp_millis());
                self.chunks.retain(|(a, b), _| !(*a >= lo && *b <= hi));
            }
            Unit::Chunk { start, end, .. } => {
                self.chunks
                    .insert((start.timestamp_millis(), end.timestamp_millis()), cover);
            }
        }
    }

    /// The record answering for `unit`: its session's, else a chunk record containing it.
    pub fn cover_of(&self, unit: &Unit) -> Option<Cover> {
        if let Some(c) = self.sessions.get(&unit.session().date) {
            return Some(*c);
        }
        match unit {
            Unit::Session(_) => None,
            Unit::Chunk { start, end, .. } => {
                let (a, b) = (start.timestamp_millis(), end.timestamp_millis());
                self.chunks
                    .iter()
                    .find(|((s, e), _)| *s <= a && *e >= b)
                    .map(|(_, c)| *c)
            }
        }
    }

    /// Forget a session (its bars were found missing from the file).
    pub fn forget_session(&mut self, date: NaiveDate) {
        self.sessions.remove(&date);
    }

    /// Whether `unit` must be fetched at `now`: never answered, or answered while it had not
    /// ended and it has ended since.
    pub fn needs(&self, unit: &Unit, now: DateTime<Utc>) -> bool {
        let due = |c: &Cover| c.provisional && unit.end() <= now;
        if let Some(c) = self.sessions.get(&unit.session().date) {
            return due(c);
        }
        match unit {
            Unit::Session(_) => true,
            Unit::Chunk { start, end, .. } => {
                let (a, b) = (start.timestamp_millis(), end.timestamp_millis());
                !self
                    .chunks
                    .iter()
                    .any(|((s, e), c)| *s <= a && *e >= b && !due(c))
            }
        }
    }

    /// Add every record of `other` that this one lacks.
    pub fn absorb(&mut self, other: &FileCoverage) {
        for (d, c) in &other.sessions {
            self.sessions.entry(*d).or_insert(*c);
        }
        for (k, c) in &other.chunks {
            self.chunks.entry(*k).or_insert(*c);
        }
    }

    /// Rebuild from the bars of a file that carries no record (an older file, or one rewritten
    /// by another tool): a session with bars is covered, provisional when every bar of it was
    /// fetched before its close. Sessions without bars stay unknown (fetched again).
    pub fn from_bar_times(
        bars: impl Iterator<Item = (DateTime<Utc>, Option<DateTime<Utc>>)>,
    ) -> Self {
        let mut latest: BTreeMap<NaiveDate, Option<DateTime<Utc>>> = BTreeMap::new();
        for (ts, fetched) in bars {
            let date = calendar::trading_date(ts);
            let e = latest.entry(date).or_insert(fetched);
            *e = match (*e, fetched) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        let mut out = FileCoverage::default();
        for (date, fetched) in latest {
            let Ok(Some(s)) = calendar::session(date) else {
                continue;
            };
            let provisional = fetched.is_some_and(|f| f < s.close);
            out.sessions.insert(
                date,
                Cover {
                    answer: Answer::Bars,
                    provisional,
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Session;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn sess(date: NaiveDate) -> Session {
        calendar::session(date).unwrap().unwrap()
    }

    const BARS: Cover = Cover {
        answer: Answer::Bars,
        provisional: false,
    };

    #[test]
    fn windows_ending_at_16_15_are_whole_sessions() {
        // SPY's class closes at 16:15 (13:15 on the half day 11-27).
        let late = |date| crate::hours::class_close(&sess(date), 15);
        let units = window_units(late(d(11, 25)), "2 D".parse().unwrap());
        assert_eq!(units.len(), 2);
        assert!(units.iter().all(|u| matches!(u, Unit::Session(_))));
        assert_eq!(units[0].session().date, d(11, 24));
        // The last session lasts until 16:15 (fetched at 16:05 it is provisional); the one
        // before closed at 16:00.
        assert_eq!(units[1].end(), late(d(11, 25)));
        assert_eq!(units[0].end(), sess(d(11, 24)).close);
        let units = window_units(late(d(11, 27)), "1 D".parse().unwrap());
        assert!(matches!(units[..], [Unit::Session(s)] if s.date == d(11, 27)));
        // A month back from 16:15 on 11-25 starts after the 16:00 close of 10-25's session
        // date: every unit is a whole session, none is a sliver of the first day.
        let month = window_units(late(d(11, 25)), "1 M".parse().unwrap());
        assert!(month.iter().all(|u| matches!(u, Unit::Session(_))));
        assert_eq!(month[0].session().date, d(10, 26));
        // Bars of 16:00-16:14 belong to their session.
        let bar = late(d(11, 25)) - chrono::Duration::minutes(1);
        assert!(units_hold(
            &window_units(late(d(11, 25)), "1 D".parse().unwrap()),
            bar
        ));
        // A seconds chunk after the equity close is a unit of its own.
        let tail = window_units(late(d(11, 25)), "900 S".parse().unwrap());
        assert!(matches!(tail[..], [Unit::Chunk { start, end, .. }]
            if end == late(d(11, 25)) && start == sess(d(11, 25)).close));
    }

    fn units_hold(units: &[Unit], ts: DateTime<Utc>) -> bool {
        units.iter().any(|u| u.holds(ts))
    }

    #[test]
    fn window_units_cover_the_sessions_of_the_window() {
        let end = sess(d(11, 27)).close;
        let units = window_units(end, "5 D".parse().unwrap());
        let dates: Vec<NaiveDate> = units.iter().map(|u| u.session().date).collect();
        // Thanksgiving (11-26) is closed; 11-27 is a half day.
        assert_eq!(
            dates,
            vec![d(11, 20), d(11, 23), d(11, 24), d(11, 25), d(11, 27)]
        );
        let month = window_units(end, "1 M".parse().unwrap());
        // One month back from 13:00 on 11-27 is 13:00 on 10-27: that half session belongs to
        // the window before.
        assert!(matches!(month[0], Unit::Session(s) if s.date == d(10, 28)));
        let chunk = window_units(end, "1800 S".parse().unwrap());
        assert!(matches!(chunk.as_slice(), [Unit::Chunk { .. }]));
    }

    #[test]
    fn encode_decode_round_trips_and_compacts_runs() {
        let mut c = FileCoverage::default();
        for u in window_units(sess(d(11, 27)).close, "1 M".parse().unwrap()) {
            c.set(&u, BARS);
        }
        c.set(
            &Unit::Session(sess(d(11, 24))),
            Cover {
                answer: Answer::Empty,
                provisional: false,
            },
        );
        let text = c.encode();
        assert!(text.contains(r#""s":[["2026-10-28","2026-11-23",19,"B"],["2026-11-24","2026-11-24",1,"E"],["2026-11-25","2026-11-27",2,"B"]]"#), "{text}");
        assert_eq!(FileCoverage::decode(&text).unwrap(), c);
    }

    #[test]
    fn a_run_whose_count_disagrees_with_the_calendar_is_dropped() {
        let text =
            r#"{"v":1,"s":[["2026-11-23","2026-11-27",5,"B"],["2026-11-30","2026-11-30",1,"E"]]}"#;
        let c = FileCoverage::decode(text).unwrap();
        assert_eq!(c.session(d(11, 24)), None, "4 sessions there, not 5");
        assert!(c.session(d(11, 30)).is_some());
        assert!(FileCoverage::decode(r#"{"v":9}"#).is_err());
        assert!(
            FileCoverage::decode(r#"{"v":1,"s":[["2026-11-30","2026-11-30",1,"X"]]}"#).is_err()
        );
    }

    #[test]
    fn final_runs_answer_like_the_decoded_record() {
        let end = sess(d(11, 27)).close;
        let units = window_units(end, "1 M".parse().unwrap());
        let mut c = FileCoverage::default();
        for u in &units {
            c.set(u, BARS);
        }
        c.set(
            &units[3],
            Cover {
                answer: Answer::Empty,
                provisional: false,
            },
        );
        let (a, b) = window_ordinals(&units).unwrap();
        let runs = FinalRuns::parse(&c.encode()).unwrap();
        assert!(runs.covers(a, b), "bars and empty runs merge: {runs:?}");
        // A provisional session breaks the run; the decoded record says the same once it closed.
        c.set(
            &units[5],
            Cover {
                answer: Answer::Bars,
                provisional: true,
            },
        );
        let runs = FinalRuns::parse(&c.encode()).unwrap();
        assert!(!runs.covers(a, b));
        assert!(c.needs(&units[5], end));
        assert!(runs.covers(a + 6, b));
        // A run whose count disagrees with the calendar covers nothing.
        let bad = FinalRuns::parse(r#"{"v":1,"s":[["2026-11-23","2026-11-27",5,"B"]]}"#).unwrap();
        let o = |day| crate::calendar::session_ordinal(d(11, day)).unwrap();
        assert!(!bad.covers(o(23), o(23)));
        assert!(FinalRuns::parse("not json").is_none());
    }

    #[test]
    fn provisional_sessions_are_due_once_closed() {
        let s = sess(d(11, 30));
        let mut c = FileCoverage::default();
        c.set(
            &Unit::Session(s),
            Cover {
                answer: Answer::Bars,
                provisional: true,
            },
        );
        assert!(!c.needs(&Unit::Session(s), s.open));
        assert!(c.needs(&Unit::Session(s), s.close));
        assert!(c.needs(&Unit::Session(sess(d(11, 27))), s.open));
    }

    #[test]
    fn chunks_are_covered_by_chunks_or_their_session() {
        let s = sess(d(11, 30));
        let chunk = Unit::Chunk {
            session: s,
            start: s.open,
            end: s.open + chrono::Duration::minutes(30),
        };
        let mut c = FileCoverage::default();
        assert!(c.needs(&chunk, s.close));
        c.set(&chunk, BARS);
        assert!(!c.needs(&chunk, s.close));
        assert!(c.needs(&Unit::Session(s), s.close));
        c.set(&Unit::Session(s), BARS);
        assert!(!c.needs(&chunk, s.close));
    }

    #[test]
    fn rebuild_from_bars_marks_sessions_fetched_before_their_close_provisional() {
        let a = sess(d(11, 27));
        let b = sess(d(11, 30));
        let c = FileCoverage::from_bar_times(
            [
                (a.open, Some(a.close + chrono::Duration::hours(1))),
                (b.open, Some(b.open + chrono::Duration::minutes(5))),
            ]
            .into_iter(),
        );
        assert_eq!(c.session(a.date), Some(BARS));
        assert!(c.session(b.date).unwrap().provisional);
    }
}
