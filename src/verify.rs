//! `verify`: audit a scope's lake against its plan, session by session.
//!
//! The executor's statuses describe requests; this module describes the lake. For every task of
//! the manifest (and of the near-ATM selections recorded so far) it reads the task's file and
//! coverage record and sorts each session of the window into covered with bars, covered empty,
//! provisional (fetched before it closed) or missing. It also checks each file on its own:
//! readable, sorted, no duplicate keys, no bar outside the session grid, and no file missing that
//! a summary says was written. A plain `execute` of the same plan fetches exactly what is missing
//! here: both read coverage the same way ([`crate::store::parquet::BarFile::effective_coverage`]).

use crate::compile::manifest::Manifest;
use crate::compile::task::FetchTask;
use crate::store::coverage::{window_units, Answer, FileCoverage};
use crate::store::coverage_index::CoverageIndex;
use crate::store::parquet::{self, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Session counts of one (phase, bar size, symbol).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Tasks (windows) of the group.
    pub tasks: u64,
    /// Sessions (or chunks) the windows span.
    pub expected: u64,
    /// Covered with bars.
    pub bars: u64,
    /// Asked for, answered with no bars.
    pub empty: u64,
    /// Fetched before the session closed, not yet fetched again.
    pub provisional: u64,
    /// Never answered.
    pub missing: u64,
}

/// A problem with one file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileProblem {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// A task with missing sessions (what a repair run fetches).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissingTask {
    /// Symbol.
    pub symbol: String,
    /// conId.
    #[serde(rename = "conId")]
    pub con_id: i64,
    /// Phase.
    pub phase: String,
    /// Bar size.
    pub bar_size: String,
    /// Missing (or provisional and due) sessions, New York dates.
    pub sessions: Vec<String>,
}

/// The audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    /// Per (phase, bar size, symbol).
    pub groups: BTreeMap<String, BTreeMap<String, BTreeMap<String, Counts>>>,
    /// Problems found in files.
    pub problems: Vec<FileProblem>,
    /// Tasks with missing sessions.
    pub missing: Vec<MissingTask>,
    /// Near-ATM (phase, symbol) whose contracts no run has chosen yet: all their sessions are
    /// missing, and how many requests they hold is in the manifest's selections.
    pub unselected: Vec<(String, String)>,
    /// Per symbol, session by session (and per expiry): the heatmap of the HTML page. Not in
    /// `verify --json` (it is as large as the plan).
    #[serde(skip)]
    pub cells: BTreeMap<String, SymbolCells>,
}

/// One symbol's sessions, over all its series (phases, bar sizes, contracts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SymbolCells {
    /// Per session (New York date).
    pub sessions: BTreeMap<NaiveDate, Cell>,
    /// Per expiry, per session.
    pub expiries: BTreeMap<NaiveDate, BTreeMap<NaiveDate, Cell>>,
}

/// How the series' units of one session were answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cell {
    /// Covered with bars.
    pub bars: u32,
    /// Answered empty.
    pub empty: u32,
    /// Fetched before the close.
    pub provisional: u32,
    /// Never answered.
    pub missing: u32,
}

impl Cell {
    /// Units counted.
    pub fn total(&self) -> u32 {
        self.bars + self.empty + self.provisional + self.missing
    }

    fn add(&mut self, answer: CellAnswer) {
        match answer {
            CellAnswer::Bars => self.bars += 1,
            CellAnswer::Empty => self.empty += 1,
            CellAnswer::Provisional => self.provisional += 1,
            CellAnswer::Missing => self.missing += 1,
        }
    }
}

#[derive(Clone, Copy)]
enum CellAnswer {
    Bars,
    Empty,
    Provisional,
    Missing,
}

impl Audit {
    /// Totals over every group.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for c in self
            .groups
            .values()
            .flat_map(|b| b.values())
            .flat_map(|s| s.values())
        {
            t.tasks += c.tasks;
            t.expected += c.expected;
            t.bars += c.bars;
            t.empty += c.empty;
            t.provisional += c.provisional;
            t.missing += c.missing;
        }
        t
    }

    /// True when nothing is missing and no file has a problem.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.problems.is_empty() && self.unselected.is_empty()
    }
}

/// The tasks to audit: the manifest's, plus those of near-ATM selections a run has recorded.
fn tasks_of(manifest: &Manifest, state_root: &Path, audit: &mut Audit) -> Vec<FetchTask> {
    let mut tasks = manifest.tasks.clone();
    let scope = &manifest.plan.scope;
    for sel in &manifest.selections {
        let path = crate::exec::closes::selection_path(state_root, scope, sel);
        let recorded = std::fs::read(&path).ok().and_then(|b| {
            serde_json::from_slice::<crate::exec::closes::RecordedSelection>(&b).ok()
        });
        match recorded {
            Some(rec) => {
                let chosen: Vec<_> = sel
                    .candidates
                    .iter()
                    .filter(|c| rec.con_ids.contains(&c.con_id))
                    .cloned()
                    .collect();
                tasks.extend(crate::compile::near_atm::expand_selection(sel, &chosen));
            }
            None => audit
                .unselected
                .push((sel.phase.clone(), sel.symbol.clone())),
        }
    }
    tasks
}

/// Check one file's rows: sorted, unique keys, on the session grid (for an all-hours file,
/// within its trading day: from 20:00 New York the evening before to an hour after the close,
/// where the overnight and curb sessions of index options lie).
fn check_rows(
    path: &Path,
    rows: &[parquet::StoredBar],
    use_rth: bool,
    problems: &mut Vec<FileProblem>,
) {
    let mut say = |problem: String| {
        problems.push(FileProblem {
            path: path.display().to_string(),
            problem,
        })
    };
    let mut dupes = 0;
    let mut unsorted = 0;
    let mut off_grid = 0;
    for w in rows.windows(2) {
        if w[0].bar.ts == w[1].bar.ts {
            dupes += 1;
        } else if w[0].bar.ts > w[1].bar.ts {
            unsorted += 1;
        }
    }
    for r in rows {
        let on_grid = if use_rth {
            let date = crate::calendar::to_ny(r.bar.ts).date_naive();
            matches!(crate::calendar::session(date), Ok(Some(s))
                if r.bar.ts >= s.open && r.bar.ts < s.close + chrono::Duration::minutes(15))
        } else {
            let date = crate::calendar::trading_date(r.bar.ts);
            matches!(crate::calendar::session(date), Ok(Some(s))
                if s.date.pred_opt().is_some_and(|eve| {
                    r.bar.ts >= crate::calendar::ny_to_utc(eve, crate::calendar::NEXT_DAY_FROM)
                }) && r.bar.ts < s.close + chrono::Duration::hours(1))
        };
        if !on_grid {
            off_grid += 1;
        }
    }
    if dupes > 0 {
        say(format!("{dupes} duplicate key(s) (ts)"));
    }
    if unsorted > 0 {
        say(format!("not sorted by ts ({unsorted} inversions)"));
    }
    if off_grid > 0 {
        say(format!("{off_grid} bar(s) outside the regular sessions"));
    }
}

/// Audit `manifest`'s scope at `now`. `summary_outputs`: per task id, the output file its latest
/// summary record says it wrote (a missing or unreadable one is a problem).
pub fn audit(
    manifest: &Manifest,
    now: DateTime<Utc>,
    summary_outputs: &HashMap<String, String>,
) -> std::io::Result<Audit> {
    let output_root = PathBuf::from(&manifest.plan.output_root);
    let state_root = PathBuf::from(&manifest.plan.state_root);
    let scope = &manifest.plan.scope;
    let index = CoverageIndex::load(&state_root, scope)?;
    let mut audit = Audit::default();
    let tasks = tasks_of(manifest, &state_root, &mut audit);
    let mut files: HashMap<PathBuf, Option<FileCoverage>> = HashMap::new();
    let mut reported: BTreeSet<PathBuf> = BTreeSet::new();
    for t in &tasks {
        let key = t.series_key();
        let path = parquet::bar_file_path(&output_root, scope, &key);
        let cov = files
            .entry(path.clone())
            .or_insert_with(|| match parquet::read_file(&path) {
                Ok(Some(f)) => {
                    check_rows(&path, &f.rows, t.use_rth, &mut audit.problems);
                    Some(f.effective_coverage())
                }
                Ok(None) => index.current(&t.relative_bar_path(), &path),
                Err(e) => {
                    let problem = match &e {
                        StoreError::Corrupt { reason, .. } => format!("unreadable: {reason}"),
                        other => other.to_string(),
                    };
                    audit.problems.push(FileProblem {
                        path: path.display().to_string(),
                        problem,
                    });
                    None
                }
            });
        if let Some(out) = summary_outputs.get(&t.id) {
            if !Path::new(out).exists() && reported.insert(PathBuf::from(out)) {
                audit.problems.push(FileProblem {
                    path: out.clone(),
                    problem: "the summary says it was written, but it is missing".into(),
                });
            }
        }
        let counts = audit
            .groups
            .entry(t.phase.to_string())
            .or_default()
            .entry(t.bar_size.as_str().to_string())
            .or_default()
            .entry(t.symbol.to_string())
            .or_default();
        counts.tasks += 1;
        let units = window_units(t.end, t.duration);
        let mut missing = Vec::new();
        for u in &units {
            counts.expected += 1;
            let rec = cov
                .as_ref()
                .filter(|c| !c.needs(u, now))
                .and_then(|c| c.cover_of(u));
            let answer = match rec {
                Some(c) if c.provisional => {
                    counts.provisional += 1;
                    CellAnswer::Provisional
                }
                Some(c) if c.answer == Answer::Empty => {
                    counts.empty += 1;
                    CellAnswer::Empty
                }
                Some(_) => {
                    counts.bars += 1;
                    CellAnswer::Bars
                }
                None => {
                    counts.missing += 1;
                    missing.push(u.session().date.to_string());
                    CellAnswer::Missing
                }
            };
            let date = u.session().date;
            let cells = audit.cells.entry(t.symbol.to_string()).or_default();
            cells.sessions.entry(date).or_default().add(answer);
            cells
                .expiries
                .entry(t.contract.expiry)
                .or_default()
                .entry(date)
                .or_default()
                .add(answer);
        }
        if !missing.is_empty() {
            audit.missing.push(MissingTask {
                symbol: t.symbol.to_string(),
                con_id: t.contract.con_id,
                phase: t.phase.to_string(),
                bar_size: t.bar_size.as_str().to_string(),
                sessions: missing,
            });
        }
    }
    Ok(audit)
}

/// The audit as a table: one line per (phase, bar size, symbol) with anything missing, then
/// totals and the problems.
pub fn format_table(a: &Audit, all_rows: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<10} {:<9} {:<8} {:>7} {:>9} {:>8} {:>7} {:>6} {:>8}\n",
        "phase", "bar", "symbol", "tasks", "sessions", "bars", "empty", "prov", "missing"
    ));
    let line = |p: &str, b: &str, s: &str, c: &Counts| {
        format!(
            "{:<10} {:<9} {:<8} {:>7} {:>9} {:>8} {:>7} {:>6} {:>8}\n",
            p, b, s, c.tasks, c.expected, c.bars, c.empty, c.provisional, c.missing
        )
    };
    for (p, bars) in &a.groups {
        for (b, syms) in bars {
            for (s, c) in syms {
                if all_rows || c.missing > 0 || c.provisional > 0 {
                    out.push_str(&line(p, b, s, c));
                }
            }
        }
    }
    out.push_str(&line("total", "", "", &a.totals()));
    for (p, s) in &a.unselected {
        out.push_str(&format!(
            "{p} {s}: near-ATM contracts not chosen yet (no run has resolved its reference close)\n"
        ));
    }
    for pr in &a.problems {
        out.push_str(&format!("{}: {}\n", pr.path, pr.problem));
    }
    out.push_str(if a.is_complete() {
        "complete: every session of the plan is in the lake or was answered empty\n"
    } else {
        "INCOMPLETE: a plain `execute` of the same plan fetches what is missing\n"
    });
    out
}

/// The missing tasks as a rerun CSV (`rerun --contracts` shape, status MISSING), for
/// `execute --rerun`.
pub fn rerun_csv(a: &Audit) -> String {
    let mut out = String::from("symbol,conId,phase,bar_size,status,error_code,last_error\n");
    let mut seen = BTreeSet::new();
    for m in &a.missing {
        if seen.insert((m.con_id, m.phase.clone(), m.bar_size.clone())) {
            out.push_str(&format!(
                "{},{},{},{},MISSING,,{} sessions missing\n",
                m.symbol,
                m.con_id,
                m.phase,
                m.bar_size,
                m.sessions.len()
            ));
        }
    }
    for (p, s) in &a.unselected {
        out.push_str(&format!("{s},0,{p},,MISSING,,no contracts chosen yet\n"));
    }
    out
}
