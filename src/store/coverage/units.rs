//! The units coverage is kept in: the whole sessions of a window, or the chunks of a session
//! that a seconds window (or a window ending inside a session) cuts.
//!
//! Separate from the record because the executor and resume reason in units (which ones a
//! request covers, which calendar ordinals they span) without touching a record.

use crate::bars::Duration as IbDuration;
use crate::calendar::{self, Session};
use chrono::{DateTime, Utc};

/// A unit of a window: a whole session, or a chunk of one (seconds bars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A whole regular session.
    Session(Session),
    /// `[start, end)` inside `session`.
    Chunk {
        /// The session the chunk lies in.
        session: Session,
        /// Chunk start.
        start: DateTime<Utc>,
        /// Chunk end (exclusive).
        end: DateTime<Utc>,
    },
}

impl Unit {
    /// The session of the unit.
    pub fn session(&self) -> &Session {
        match self {
            Unit::Session(s) | Unit::Chunk { session: s, .. } => s,
        }
    }

    /// When the unit ends.
    pub fn end(&self) -> DateTime<Utc> {
        match self {
            Unit::Session(s) => s.close,
            Unit::Chunk { end, .. } => *end,
        }
    }

    /// Whether a bar starting at `ts` belongs to the unit.
    pub fn holds(&self, ts: DateTime<Utc>) -> bool {
        match self {
            Unit::Session(s) => calendar::trading_date(ts) == s.date,
            Unit::Chunk { start, end, .. } => ts >= *start && ts < *end,
        }
    }
}

/// The units of the window `[end - duration, end)`: every session the window spans, and a chunk
/// for a session a seconds window (or the window's end) cuts. Empty when the calendar cannot
/// answer.
pub fn window_units(end: DateTime<Utc>, duration: IbDuration) -> Vec<Unit> {
    let start = duration.window_start(end);
    let (Ok(sessions), true) = (
        calendar::sessions_between(
            calendar::to_ny(start).date_naive(),
            calendar::to_ny(end).date_naive(),
        ),
        start < end,
    ) else {
        return Vec::new();
    };
    // Windows of whole sessions (D, W, M, Y) hold the sessions they span entirely: a `1 M`
    // window ending at 13:00 starts at 13:00 a month earlier, and that half session belongs to
    // the window before it (as the strict table's split has it). A window ending inside a
    // session (an explicit instant), and a seconds window, hold that part as a chunk. A window
    // ending up to an hour after its own session's equity close (a class trading to 16:15)
    // extends that session to its end: the session is provisional until then, and a
    // 16:00-16:15 seconds chunk is a unit too.
    let seconds = duration.unit == crate::bars::DurationUnit::Seconds;
    let end_date = calendar::to_ny(end).date_naive();
    sessions
        .into_iter()
        .map(|s| {
            let late = end - s.close;
            if s.date == end_date
                && late > chrono::Duration::zero()
                && late <= chrono::Duration::hours(1)
            {
                Session { close: end, ..s }
            } else {
                s
            }
        })
        .filter(|s| s.close > start && s.open < end && (seconds || s.open >= start))
        .map(|s| {
            if s.open >= start && s.close <= end {
                Unit::Session(s)
            } else {
                Unit::Chunk {
                    session: s,
                    start: start.max(s.open),
                    end: end.min(s.close),
                }
            }
        })
        .collect()
}

/// The session ordinals a window of whole sessions spans (None when it holds a chunk or the
/// calendar cannot answer): with [`FinalRuns::covers`](super::FinalRuns::covers), resume's fast check.
pub fn window_ordinals(units: &[Unit]) -> Option<(u32, u32)> {
    if units.iter().any(|u| matches!(u, Unit::Chunk { .. })) {
        return None;
    }
    let first = calendar::session_ordinal(units.first()?.session().date)?;
    let last = calendar::session_ordinal(units.last()?.session().date)?;
    Some((first, last))
}
