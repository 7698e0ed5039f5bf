//! The data of the HTML report: built from summaries, timelines and (when the plan is known)
//! a `verify` audit, embedded in the page as JSON and drawn by [`super::html`].
//!
//! Everything here is aggregated so that a 300-symbol weekend stays a few MB: timeline samples
//! per minute (coarser buckets past a day of minutes), one row per phase and bar size, per-symbol
//! totals, and only the heatmap's holes listed cell by cell.
//!
//! This module holds the page's JSON shape, its assembly and the near-ATM panel; `timeline`
//! reads and folds the timeline files, `heatmap` turns the audit into the heatmap.

use super::{report_rows, ReportRow};
use crate::exec::timeline::{MinuteSample, TimelineLine};
use crate::store::summary::SummaryRecord;
use crate::verify::Audit;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod heatmap;
mod timeline;

use heatmap::heatmap;
use timeline::timeline;
pub use timeline::{read_timelines, recorded_plan, timeline_files};

/// Timeline points drawn at most (longer runs are summed into k-minute buckets).
pub const MAX_TIMELINE_POINTS: usize = 1_440;

/// Heatmap holes listed one by one in the embedded data at most.
pub const MAX_HOLES: usize = 5_000;

/// Repair requests listed per hole at most.
pub const MAX_REPAIRS_PER_HOLE: usize = 20;

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct PageData {
    /// Format of this JSON (bumped on incompatible changes).
    pub format: u32,
    /// Header.
    pub header: Header,
    /// Timeline.
    pub timeline: Timeline,
    /// Per phase and bar size.
    pub groups: Vec<ReportRow>,
    /// Coverage heatmap, when the plan was known.
    pub heatmap: Option<Heatmap>,
    /// Near-ATM EMPTY rate by distance from the reference close.
    pub near_atm: Vec<DistanceBucket>,
    /// Things the reader should know (unreadable lines, no plan, truncations).
    pub notes: Vec<String>,
}

/// The page's header.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Header {
    /// Plan file.
    pub plan: Option<String>,
    /// Scopes seen.
    pub scopes: Vec<String>,
    /// Shards seen (`0of1`).
    pub shards: Vec<String>,
    /// Run ids.
    pub run_ids: Vec<String>,
    /// First task started (or executor start).
    pub start: Option<DateTime<Utc>>,
    /// Last task finished (or executor end).
    pub end: Option<DateTime<Utc>>,
    /// Tasks (latest record per task).
    pub tasks: u64,
    /// Tasks by final status.
    pub totals: BTreeMap<String, u64>,
    /// Exit code per run and shard (`run/0of1`), when the CLI recorded it.
    pub exit_codes: BTreeMap<String, i32>,
}

/// The timeline, all shards summed per minute.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Minutes per point.
    pub bucket_minutes: u32,
    /// Points, oldest first.
    pub points: Vec<MinuteSample>,
    /// Reconnects.
    pub reconnects: Vec<DateTime<Utc>>,
    /// Reconnect count (also those past the event cap).
    pub reconnect_count: u64,
    /// Gateway outages.
    pub outages: Vec<Outage>,
    /// Farm notices.
    pub farm_notices: Vec<FarmNotice>,
}

/// A gateway outage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outage {
    /// First request that saw the connection gone.
    pub start: DateTime<Utc>,
    /// Reconnected or given up.
    pub end: DateTime<Utc>,
    /// Given up.
    pub lost: bool,
    /// Seconds.
    pub secs: f64,
}

/// A farm notice.
#[derive(Debug, Clone, Serialize)]
pub struct FarmNotice {
    /// When.
    pub at: DateTime<Utc>,
    /// IB code.
    pub code: i32,
    /// Text.
    pub message: String,
}

/// The coverage heatmap's data (cells themselves are drawn, not embedded).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Heatmap {
    /// Scope audited.
    pub scope: String,
    /// Sessions (columns).
    pub sessions: Vec<NaiveDate>,
    /// Per symbol (rows), most missing first.
    pub rows: Vec<HeatRow>,
    /// Cells with missing sessions: what a repair run fetches.
    pub holes: Vec<Hole>,
    /// True when [`MAX_HOLES`] cut the list.
    pub holes_truncated: bool,
    /// Nothing missing and no file problem.
    pub complete: bool,
    /// File problems.
    pub problems: Vec<String>,
}

/// One symbol's totals over all its series and sessions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeatRow {
    /// Symbol.
    pub symbol: String,
    /// Units (series x sessions).
    pub expected: u64,
    /// Covered with bars.
    pub bars: u64,
    /// Answered empty.
    pub empty: u64,
    /// Provisional.
    pub provisional: u64,
    /// Missing.
    pub missing: u64,
    /// Expiries.
    pub expiries: usize,
}

/// One heatmap cell with missing units.
#[derive(Debug, Clone, Serialize)]
pub struct Hole {
    /// Symbol.
    pub symbol: String,
    /// Session.
    pub session: NaiveDate,
    /// Units missing.
    pub missing: u32,
    /// Units expected.
    pub of: u32,
    /// What a repair run requests: `conId phase bar size`.
    pub repair: Vec<String>,
}

/// EMPTY rate of near-ATM tasks whose strike lies in `[from_pct, to_pct)` of the reference
/// close away from it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DistanceBucket {
    /// Lower bound, percent.
    pub from_pct: f64,
    /// Upper bound, percent (`None`: open).
    pub to_pct: Option<f64>,
    /// Tasks with bars.
    pub ok: u64,
    /// Tasks answered empty.
    pub empty: u64,
    /// EMPTY / (OK + EMPTY).
    pub empty_rate: f64,
}

/// Build the page's data.
pub fn build(
    records: &[SummaryRecord],
    timelines: &[(String, Vec<TimelineLine>)],
    audit: Option<(&Audit, &str)>,
    plan: Option<&Path>,
) -> PageData {
    let mut notes = Vec::new();
    let header = header(records, timelines, plan);
    let timeline = timeline(timelines);
    if timelines.is_empty() {
        notes.push(
            "no timeline recorded (runs of versions before the HTML report): only the summaries are shown"
                .into(),
        );
    }
    let heatmap = audit.map(|(a, scope)| heatmap(a, scope));
    if heatmap.as_ref().is_some_and(|h| h.holes_truncated) {
        notes.push(format!(
            "the embedded hole list stops at {MAX_HOLES} cells; `verify --rerun` writes them all"
        ));
    }
    if heatmap.is_none() {
        notes.push(
            "no coverage heatmap: the plan is unknown (pass --plan, or use `verify PLAN --html`)"
                .into(),
        );
    }
    PageData {
        format: 1,
        header,
        timeline,
        groups: report_rows(records, false),
        heatmap,
        near_atm: near_atm(records),
        notes,
    }
}

fn header(
    records: &[SummaryRecord],
    timelines: &[(String, Vec<TimelineLine>)],
    plan: Option<&Path>,
) -> Header {
    let mut h = Header {
        plan: plan.map(|p| p.display().to_string()),
        tasks: records.len() as u64,
        ..Default::default()
    };
    let mut scopes = BTreeSet::new();
    let mut shards = BTreeSet::new();
    let mut runs: BTreeSet<String> = records.iter().map(|r| r.run_id.clone()).collect();
    for r in records {
        *h.totals.entry(r.status.to_string()).or_default() += 1;
    }
    let mut start = records.iter().map(|r| r.started_at).min();
    let mut end = records.iter().map(|r| r.finished_at).max();
    for (label, lines) in timelines {
        for l in lines {
            match l {
                TimelineLine::Start {
                    at,
                    run_id,
                    scope,
                    batch_index,
                    batch_count,
                    ..
                } => {
                    runs.insert(run_id.clone());
                    scopes.insert(scope.clone());
                    shards.insert(format!("{batch_index}of{batch_count}"));
                    start = Some(start.map_or(*at, |s| s.min(*at)));
                }
                TimelineLine::End { at, .. } => end = Some(end.map_or(*at, |e| e.max(*at))),
                TimelineLine::Exit { code, .. } => {
                    h.exit_codes.insert(label.clone(), *code);
                }
                TimelineLine::Plan { plan: p, .. } if h.plan.is_none() => {
                    h.plan = Some(p.clone());
                }
                _ => {}
            }
        }
    }
    h.scopes = scopes.into_iter().collect();
    h.shards = shards.into_iter().collect();
    h.run_ids = runs.into_iter().collect();
    h.start = start;
    h.end = end;
    h
}

/// Bucket edges of the near-ATM panel, percent of the reference close.
const DISTANCE_EDGES: [f64; 11] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0];

fn near_atm(records: &[SummaryRecord]) -> Vec<DistanceBucket> {
    let mut buckets: Vec<DistanceBucket> = DISTANCE_EDGES
        .iter()
        .enumerate()
        .map(|(i, from)| DistanceBucket {
            from_pct: *from,
            to_pct: DISTANCE_EDGES.get(i + 1).copied(),
            ..Default::default()
        })
        .collect();
    let mut any = false;
    for r in records {
        let (Some(close), Some(strike)) = (r.reference_close, r.strike) else {
            continue;
        };
        if close <= 0.0 || !matches!(r.status.as_str(), "OK" | "EMPTY") {
            continue;
        }
        any = true;
        let pct = 100.0 * (strike - close).abs() / close;
        let i = DISTANCE_EDGES.iter().rposition(|e| pct >= *e).unwrap_or(0);
        if r.status == "OK" {
            buckets[i].ok += 1;
        } else {
            buckets[i].empty += 1;
        }
    }
    if !any {
        return Vec::new();
    }
    for b in &mut buckets {
        let n = b.ok + b.empty;
        b.empty_rate = if n > 0 {
            b.empty as f64 / n as f64
        } else {
            0.0
        };
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Cell, MissingTask, SymbolCells};

    #[test]
    fn heatmap_lists_holes_with_their_repairs_and_sorts_by_missing() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let mut a = Audit::default();
        let full = Cell {
            bars: 2,
            ..Default::default()
        };
        let holed = Cell {
            bars: 1,
            missing: 1,
            ..Default::default()
        };
        for (sym, c2) in [("AAA", full), ("ZZZ", holed)] {
            let mut c = SymbolCells::default();
            c.sessions.insert(d1, full);
            c.sessions.insert(d2, c2);
            a.cells.insert(sym.into(), c);
        }
        a.missing.push(MissingTask {
            symbol: "ZZZ".into(),
            con_id: 42,
            phase: "hours".into(),
            bar_size: "8 hours".into(),
            sessions: vec![d2.to_string()],
        });
        let h = heatmap(&a, "s");
        assert_eq!(h.sessions, vec![d1, d2]);
        assert_eq!(h.rows[0].symbol, "ZZZ", "most missing first");
        assert_eq!(h.rows[0].missing, 1);
        assert_eq!(h.holes.len(), 1);
        assert_eq!(h.holes[0].session, d2);
        assert_eq!(h.holes[0].repair, vec!["42 hours 8 hours".to_string()]);
        assert!(!h.complete);
    }

    #[test]
    fn long_timelines_are_bucketed() {
        let t0 = DateTime::from_timestamp(1_700_000_040, 0).unwrap();
        let lines: Vec<TimelineLine> = (0..3000)
            .map(|i| {
                TimelineLine::Minute(MinuteSample {
                    minute: t0 + chrono::Duration::minutes(i),
                    requests: 2,
                    inflight_limit: 4,
                    inflight_limit_min: 4,
                    ..Default::default()
                })
            })
            .collect();
        let t = timeline(&[("r/0of1".into(), lines)]);
        assert_eq!(t.bucket_minutes, 3);
        assert_eq!(t.points.len(), 1000);
        assert_eq!(t.points[0].requests, 6);
        assert_eq!(t.points[0].inflight_limit, 4);
    }
}
