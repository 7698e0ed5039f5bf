//! Summary JSONL: one line per finished task, appended and flushed as the task finishes, so a
//! crash loses at most the work that was in flight. Earlier summaries are the resume state.
//!
//! Layout: `<state root>/run_logs/<scope>/<run id>/summary_<phase>_<batch>.jsonl`.

use crate::bars::{BarSize, WhatToShow};
use crate::cache::Right;
use crate::compile::task::FetchTask;
use crate::ib::OutcomeClass;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One finished task. The JSON Schema in `schemas/summary_record.schema.json` is generated
/// from this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SummaryRecord {
    /// Run that produced the record.
    pub run_id: String,
    /// Stable task id (see `compile::task::task_id`).
    pub task_id: String,
    /// Phase name.
    pub phase: String,
    /// Underlying symbol.
    pub symbol: String,
    /// Option conId (0 for symbol-level records such as a skipped reference close).
    #[serde(rename = "conId")]
    pub con_id: i64,
    /// Expiry.
    pub expiry: Option<NaiveDate>,
    /// Strike.
    pub strike: Option<f64>,
    /// Right (`C`/`P`).
    pub right: Option<Right>,
    /// Bar size, IB spelling.
    #[schemars(with = "String")]
    pub bar_size: BarSize,
    /// What to show.
    pub what: WhatToShow,
    /// Duration actually requested (shorter than the task's when the file covered part of it).
    pub duration: String,
    /// Window end (UTC).
    pub end: DateTime<Utc>,
    // A line of another version with a status this build does not know is skipped by the
    // readers like a torn line.
    /// Outcome class (`OK`, `EMPTY`, `UP_TO_DATE`, `TIMEOUT`, ...).
    pub status: OutcomeClass,
    /// Bars received from the gateway.
    pub bars: u64,
    /// Bars newly written to the file.
    pub bars_written: u64,
    /// First bar received.
    pub first: Option<DateTime<Utc>>,
    /// Last bar received.
    pub last: Option<DateTime<Utc>>,
    /// IB error code of the last failure.
    pub error_code: Option<i32>,
    /// IB error text or our description.
    pub error_message: Option<String>,
    /// Parquet file (written or already there).
    pub output_path: Option<String>,
    /// Where a corrupt previous file was moved.
    pub quarantined: Option<String>,
    /// Requests sent for this task (1 + retries).
    pub attempts: u32,
    /// Latency of the last request, milliseconds.
    pub latency_ms: Option<u64>,
    /// Pacing governor's in-flight limit when the task finished.
    pub inflight_limit: Option<u32>,
    /// First request sent.
    pub started_at: DateTime<Utc>,
    /// Record written.
    pub finished_at: DateTime<Utc>,
    /// Near-ATM phases: the reference close the contracts were picked with, so a user can see
    /// per symbol which price drove the selection. Absent for `all` phases and for a symbol
    /// SKIPPED with NO_REFERENCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_close: Option<f64>,
    /// Where that close came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_source: Option<crate::cache::CloseSource>,
    /// Requests the task sent for the sessions its file lacked, as `duration@end` (RFC 3339),
    /// oldest first, splits included; empty when nothing was sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<String>,
    /// Windows split because the gateway answered zero bars or "Time length exceed max" for a
    /// window longer than the strict limit table.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub splits: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a record is about: a task's contract and window, or (conId 0, no contract) a phase's
/// symbol as a whole.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Task id (or a symbol-level id such as `select:<phase>:<symbol>`).
    pub task_id: &'a str,
    /// Phase name.
    pub phase: &'a str,
    /// Underlying symbol.
    pub symbol: &'a str,
    /// The option contract, if the record is about one.
    pub contract: Option<&'a crate::cache::OptionContract>,
    /// What to show.
    pub what: WhatToShow,
    /// Bar size.
    pub bar_size: BarSize,
    /// Duration requested.
    pub duration: String,
    /// Window end.
    pub end: DateTime<Utc>,
}

impl SummaryRecord {
    /// A record of `subject` ending in `status`, started at `started_at` and finished now, with
    /// nothing sent or received: the caller fills in what the task did. The one place every
    /// field of a record is set, so adding one is one edit.
    pub fn new(
        run_id: &str,
        subject: Subject<'_>,
        status: OutcomeClass,
        started_at: DateTime<Utc>,
    ) -> Self {
        let c = subject.contract;
        SummaryRecord {
            run_id: run_id.to_string(),
            task_id: subject.task_id.to_string(),
            phase: subject.phase.to_string(),
            symbol: subject.symbol.to_string(),
            con_id: c.map_or(0, |c| c.con_id),
            expiry: c.map(|c| c.expiry),
            strike: c.map(|c| c.strike),
            right: c.map(|c| c.right),
            bar_size: subject.bar_size,
            what: subject.what,
            duration: subject.duration,
            end: subject.end,
            status,
            bars: 0,
            bars_written: 0,
            first: None,
            last: None,
            error_code: None,
            error_message: None,
            output_path: None,
            quarantined: None,
            attempts: 0,
            latency_ms: None,
            inflight_limit: None,
            started_at,
            finished_at: Utc::now(),
            reference_close: None,
            reference_source: None,
            requests: Vec::new(),
            splits: 0,
        }
    }

    /// A record of `task` (its contract, what, bar size, duration and window) ending in
    /// `status`; see [`SummaryRecord::new`].
    pub fn for_task(
        task: &FetchTask,
        run_id: &str,
        status: OutcomeClass,
        started_at: DateTime<Utc>,
    ) -> Self {
        let subject = Subject {
            task_id: &task.id,
            phase: &task.phase,
            symbol: &task.symbol,
            contract: Some(&task.contract),
            what: task.what,
            bar_size: task.bar_size,
            duration: task.duration.to_string(),
            end: task.end,
        };
        Self::new(run_id, subject, status, started_at)
    }
}

/// A run id for a run starting at `now`: the UTC time to the millisecond (so ids sort in start
/// order), with `-2`, `-3`, ... when a run of the scope already took it (two runs started in the
/// same millisecond, or a clock that went back).
pub fn new_run_id(state_root: &Path, scope: &str, now: DateTime<Utc>) -> String {
    let base = now.format("%Y%m%dT%H%M%S%3fZ").to_string();
    let mut id = base.clone();
    let mut n = 1;
    while run_dir(state_root, scope, &id).exists() {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

/// Directory of one run's summaries.
pub fn run_dir(state_root: &Path, scope: &str, run_id: &str) -> PathBuf {
    state_root.join("run_logs").join(scope).join(run_id)
}

/// File name of one phase's summary in a batch.
pub fn summary_file_name(phase: &str, batch_index: u32, batch_count: u32) -> String {
    format!("summary_{phase}_{batch_index}of{batch_count}.jsonl")
}

/// Appends records, one flushed line each.
pub struct SummaryWriter {
    dir: PathBuf,
    batch: (u32, u32),
    files: HashMap<String, File>,
}

impl SummaryWriter {
    /// A writer for one run directory and batch; files are created on first use.
    pub fn new(dir: PathBuf, batch_index: u32, batch_count: u32) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(SummaryWriter {
            dir,
            batch: (batch_index, batch_count),
            files: HashMap::new(),
        })
    }

    /// Append one record and flush it to the OS.
    pub fn append(&mut self, rec: &SummaryRecord) -> std::io::Result<()> {
        if !self.files.contains_key(&rec.phase) {
            let path = self
                .dir
                .join(summary_file_name(&rec.phase, self.batch.0, self.batch.1));
            let f = OpenOptions::new().create(true).append(true).open(path)?;
            self.files.insert(rec.phase.clone(), f);
        }
        let f = self
            .files
            .get_mut(&rec.phase)
            .ok_or_else(|| std::io::Error::other("summary file missing"))?;
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.flush()
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What earlier runs finished, for resume.
#[derive(Debug, Default)]
pub struct ResumeState {
    /// Task ids recorded OK, EMPTY or UP_TO_DATE, with the output path (if any) they wrote.
    pub done: HashMap<String, Option<String>>,
    /// Lines that could not be parsed (e.g. the last line of a killed run), skipped.
    pub bad_lines: usize,
    /// Summary files read.
    pub files: usize,
}

/// Minimal view of a record: parsing only these fields keeps resume start-up fast. The status
/// stays text: a status this build does not know is simply not done, as before.
#[derive(Deserialize)]
struct DoneView {
    task_id: String,
    status: String,
    output_path: Option<String>,
}

/// Load every summary under `<state root>/run_logs/<scope>/`.
pub fn load_resume_state(state_root: &Path, scope: &str) -> std::io::Result<ResumeState> {
    let mut st = ResumeState::default();
    let root = state_root.join("run_logs").join(scope);
    let Ok(runs) = std::fs::read_dir(&root) else {
        return Ok(st);
    };
    let mut files = Vec::new();
    for run in runs.flatten() {
        if !run.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(run.path())?.flatten() {
            let p = f.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with("summary_") && name.ends_with(".jsonl") {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        st.files += 1;
        let bad = crate::inputs::jsonl::read::<DoneView>(&p, |v| {
            if v.status.parse().is_ok_and(OutcomeClass::is_done) {
                st.done.insert(v.task_id, v.output_path);
            }
        })?;
        for b in &bad {
            tracing::debug!("resume: skipped summary line {b}");
        }
        st.bad_lines += bad.len();
    }
    Ok(st)
}

impl ResumeState {
    /// True when the task finished earlier without writing a file (EMPTY): the only trace of
    /// those sessions in a lake written before coverage was recorded.
    pub fn done_without_file(&self, task_id: &str) -> bool {
        matches!(self.done.get(task_id), Some(None))
    }

    /// True when the task finished earlier and its output (if it wrote one) is still there.
    pub fn is_done(&self, task_id: &str, checked_files: &mut HashSet<String>) -> bool {
        match self.done.get(task_id) {
            None => false,
            Some(None) => true,
            Some(Some(path)) => {
                if checked_files.contains(path) {
                    return true;
                }
                if Path::new(path).exists() {
                    checked_files.insert(path.clone());
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(task: &str, status: &str, out: Option<String>) -> SummaryRecord {
        let subject = Subject {
            task_id: task,
            phase: "hours",
            symbol: "AAPL",
            contract: None,
            what: WhatToShow::Trades,
            bar_size: BarSize::Hours8,
            duration: "6 M".into(),
            end: Utc::now(),
        };
        let mut r = SummaryRecord::new("r1", subject, status.parse().unwrap(), Utc::now());
        r.con_id = 1;
        r.output_path = out;
        r.attempts = 1;
        r
    }

    #[test]
    fn resume_reads_done_tasks_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("f.parquet");
        std::fs::write(&out, b"x").unwrap();
        let run = run_dir(dir.path(), "s", "r1");
        let mut w = SummaryWriter::new(run.clone(), 0, 1).unwrap();
        w.append(&rec("a", "OK", Some(out.display().to_string())))
            .unwrap();
        w.append(&rec("b", "EMPTY", None)).unwrap();
        w.append(&rec("c", "TIMEOUT", None)).unwrap();
        w.append(&rec(
            "d",
            "OK",
            Some(dir.path().join("gone.parquet").display().to_string()),
        ))
        .unwrap();
        drop(w);
        let f = run.join(summary_file_name("hours", 0, 1));
        let mut bytes = std::fs::read(&f).unwrap();
        bytes.extend_from_slice(b"{\"task_id\":\"e\",\"sta");
        std::fs::write(&f, bytes).unwrap();
        let st = load_resume_state(dir.path(), "s").unwrap();
        assert_eq!(st.bad_lines, 1);
        let mut seen = HashSet::new();
        assert!(st.is_done("a", &mut seen));
        assert!(st.is_done("b", &mut seen));
        assert!(!st.is_done("c", &mut seen), "TIMEOUT is retried");
        assert!(!st.is_done("d", &mut seen), "output file is gone");
        assert!(!st.is_done("e", &mut seen));
    }

    /// A line as earlier versions wrote it (text fields) reads into the typed record and writes
    /// back byte for byte; a status this build does not know skips the line in the readers that
    /// parse whole records, as a torn line is, and is simply not done for resume.
    #[test]
    fn earlier_lines_read_and_write_back_the_same_bytes() {
        let line = r#"{"run_id":"r1","task_id":"a","phase":"hours","symbol":"AAPL","conId":7,"expiry":"2026-12-18","strike":200.0,"right":"C","bar_size":"8 hours","what":"BID_ASK","duration":"6 M","end":"2026-11-27T21:00:00Z","status":"UP_TO_DATE","bars":0,"bars_written":0,"first":null,"last":null,"error_code":null,"error_message":"file covers the window","output_path":null,"quarantined":null,"attempts":0,"latency_ms":null,"inflight_limit":16,"started_at":"2026-11-27T21:00:00Z","finished_at":"2026-11-27T21:00:01Z"}"#;
        let r: SummaryRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.status, OutcomeClass::UpToDate);
        assert_eq!(serde_json::to_string(&r).unwrap(), line);

        let dir = tempfile::tempdir().unwrap();
        let run = run_dir(dir.path(), "s", "r1");
        std::fs::create_dir_all(&run).unwrap();
        let f = run.join(summary_file_name("hours", 0, 1));
        let unknown = line
            .replace("\"a\"", "\"b\"")
            .replace("UP_TO_DATE", "SOME_NEW_CLASS");
        std::fs::write(&f, format!("{line}\n{unknown}\n")).unwrap();
        let mut read = Vec::new();
        let bad = crate::inputs::jsonl::read::<SummaryRecord>(&f, |r| read.push(r)).unwrap();
        assert_eq!((read.len(), bad.len()), (1, 1));
        let st = load_resume_state(dir.path(), "s").unwrap();
        assert_eq!(st.bad_lines, 0);
        assert!(st.done.contains_key("a") && !st.done.contains_key("b"));
    }

    #[test]
    fn run_ids_sort_in_start_order_and_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 9, 0, 0).unwrap();
        let a = new_run_id(dir.path(), "s", t);
        std::fs::create_dir_all(run_dir(dir.path(), "s", &a)).unwrap();
        let b = new_run_id(dir.path(), "s", t);
        assert_ne!(a, b, "same millisecond, another run");
        std::fs::create_dir_all(run_dir(dir.path(), "s", &b)).unwrap();
        let c = new_run_id(dir.path(), "s", t + chrono::Duration::milliseconds(1));
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
