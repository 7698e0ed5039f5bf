//! The record's text form in the Parquet metadata and the coverage index: runs of consecutive
//! sessions with the same record (so a year of sessions is a line, not 250 entries), and resume's
//! fast reading of it ([`FinalRuns`]) that never expands the runs into sessions.
//!
//! Both readings drop a run whose session count disagrees with the calendar: after a calendar
//! change such sessions are fetched again, never trusted.

use super::{Cover, FileCoverage, COVERAGE_VERSION};
use crate::calendar;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Encoded {
    v: u32,
    /// `[first date, last date, sessions in between (inclusive), code]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    s: Vec<(NaiveDate, NaiveDate, u32, String)>,
    /// `[start ms, end ms, code]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    c: Vec<(i64, i64, String)>,
}

impl FileCoverage {
    /// Compact text form: runs of consecutive sessions with the same record.
    pub fn encode(&self) -> String {
        let mut s: Vec<(NaiveDate, NaiveDate, u32, String)> = Vec::new();
        let mut prev: Option<NaiveDate> = None;
        for (date, cover) in &self.sessions {
            let code = cover.code();
            let extends = match (s.last(), prev) {
                (Some(last), Some(p)) => {
                    last.3 == code
                        && calendar::session_after(p)
                            .map(|n| n.date == *date)
                            .unwrap_or(false)
                }
                _ => false,
            };
            match s.last_mut() {
                Some(last) if extends => {
                    last.1 = *date;
                    last.2 += 1;
                }
                _ => s.push((*date, *date, 1, code.to_string())),
            }
            prev = Some(*date);
        }
        let c = self
            .chunks
            .iter()
            .map(|((a, b), cover)| (*a, *b, cover.code().to_string()))
            .collect();
        serde_json::to_string(&Encoded {
            v: COVERAGE_VERSION,
            s,
            c,
        })
        .unwrap_or_default()
    }

    /// Parse [`FileCoverage::encode`]'s form. A run whose session count no longer matches the
    /// calendar is dropped (its sessions are fetched again), never trusted.
    pub fn decode(text: &str) -> Result<FileCoverage, String> {
        let e: Encoded = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if e.v != COVERAGE_VERSION {
            return Err(format!(
                "coverage format version {} (this tool reads {COVERAGE_VERSION})",
                e.v
            ));
        }
        let mut out = FileCoverage::default();
        for (first, last, n, code) in e.s {
            let Some(cover) = Cover::from_code(&code) else {
                return Err(format!("unknown coverage code `{code}`"));
            };
            let Ok(sessions) = calendar::sessions_between(first, last) else {
                continue;
            };
            if sessions.len() != n as usize {
                continue;
            }
            for s in sessions {
                out.sessions.insert(s.date, cover);
            }
        }
        for (a, b, code) in e.c {
            let Some(cover) = Cover::from_code(&code) else {
                return Err(format!("unknown coverage code `{code}`"));
            };
            out.chunks.insert((a, b), cover);
        }
        Ok(out)
    }
}

/// The final (not provisional) runs of whole sessions of an encoded record, as merged inclusive
/// intervals of calendar session ordinals: resume's fast check, without expanding the record
/// into sessions. A run whose count disagrees with the calendar is dropped, as in
/// [`FileCoverage::decode`]; chunks and provisional runs are left out (such windows go to the
/// scheduler, which decides from the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalRuns(Vec<(u32, u32)>);

impl FinalRuns {
    /// Parse an encoded record (None when it is not one).
    pub fn parse(encoded: &str) -> Option<FinalRuns> {
        let e: Encoded = serde_json::from_str(encoded).ok()?;
        if e.v != COVERAGE_VERSION {
            return None;
        }
        let mut runs: Vec<(u32, u32)> =
            e.s.iter()
                .filter(|(_, _, _, code)| code == "B" || code == "E")
                .filter_map(|(first, last, n, _)| {
                    let (a, b) = (
                        calendar::session_ordinal(*first)?,
                        calendar::session_ordinal(*last)?,
                    );
                    (b >= a && b - a + 1 == *n).then_some((a, b))
                })
                .collect();
        runs.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            match merged.last_mut() {
                Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Some(FinalRuns(merged))
    }

    /// Runs already sorted and merged (as [`FinalRuns::runs`] gave them).
    pub fn from_sorted(runs: Vec<(u32, u32)>) -> FinalRuns {
        FinalRuns(runs)
    }

    /// The runs of session ordinals, sorted and merged.
    pub fn runs(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// Whether every session with ordinal in `first..=last` is covered.
    pub fn covers(&self, first: u32, last: u32) -> bool {
        self.0.iter().any(|(a, b)| *a <= first && last <= *b)
    }
}
