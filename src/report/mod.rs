//! Reading summaries back: the run report and the rerun CSV (read back by
//! [`crate::inputs::rerun`]).
//!
//! Summaries are read line by line with serde rather than with polars' JSON-lines reader: a run
//! killed mid-write leaves a torn last line, and one bad line must not hide a whole run. Polars'
//! `JsonLineReader` fails the whole file on a malformed line (it has no skip-bad-lines option),
//! infers its schema from the first lines (a field that is null there, such as `error_code`,
//! gets the wrong type), and would need a second pass to keep only the latest record per task;
//! serde with the [`SummaryRecord`] type checks every field and skips exactly the torn lines.

pub mod html;
pub mod html_heatmap;
pub mod page;
pub mod svg;

use crate::ib::OutcomeClass;
use crate::store::summary::SummaryRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Records read from summaries, the latest per task (by run, then line: files are read in run-id
/// order, which is start order for generated ids; not by wall-clock times, which a clock step
/// can reorder); a symbol-level SKIPPED record is dropped once a later run fetched that symbol
/// and phase.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The latest record of every task (by run, then line), in (phase, symbol, conId, task) order.
    pub records: Vec<SummaryRecord>,
    /// Lines that did not parse (torn last lines of killed runs).
    pub bad_lines: usize,
    /// The first of them (file, line, reason), to show where.
    pub first_bad_line: Option<crate::inputs::jsonl::BadLine>,
    /// Files read.
    pub files: Vec<PathBuf>,
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            collect_files(&e, out)?;
        }
    } else if p.extension().is_some_and(|e| e == "jsonl")
        && p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("summary_"))
    {
        out.push(p.to_path_buf());
    } else if !p.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such file or directory", p.display()),
        ));
    }
    Ok(())
}

/// Load summaries from files or directories (searched recursively for `summary_*.jsonl`).
pub fn load(paths: &[PathBuf]) -> std::io::Result<Loaded> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_file() {
            files.push(p.clone());
        } else {
            collect_files(p, &mut files)?;
        }
    }
    let mut latest: HashMap<String, SummaryRecord> = HashMap::new();
    let mut bad = Vec::new();
    for f in &files {
        let skipped = crate::inputs::jsonl::read::<SummaryRecord>(f, |r| {
            let key = format!("{}|{}", r.phase, r.task_id);
            latest.insert(key, r);
        })?;
        bad.extend(skipped);
    }
    // A symbol-level record (conId 0: SKIPPED for want of a reference close) is superseded once
    // a later run fetched that symbol's contracts for the phase.
    let mut fetched_after: HashMap<(String, String), DateTime<Utc>> = HashMap::new();
    for r in latest.values().filter(|r| r.con_id != 0) {
        let e = fetched_after
            .entry((r.phase.clone(), r.symbol.clone()))
            .or_insert(r.started_at);
        *e = (*e).max(r.started_at);
    }
    let mut records: Vec<SummaryRecord> = latest
        .into_values()
        .filter(|r| {
            r.con_id != 0
                || fetched_after
                    .get(&(r.phase.clone(), r.symbol.clone()))
                    .is_none_or(|t| *t < r.finished_at)
        })
        .collect();
    records.sort_by(|a, b| {
        (&a.phase, &a.symbol, a.con_id, &a.task_id)
            .cmp(&(&b.phase, &b.symbol, b.con_id, &b.task_id))
    });
    Ok(Loaded {
        records,
        bad_lines: bad.len(),
        first_bad_line: bad.into_iter().next(),
        files,
    })
}

/// Statuses that are not errors.
pub fn is_success(status: OutcomeClass) -> bool {
    status.is_done()
}

/// The rerun universe as CSV: symbols (`symbol,tasks,statuses`) or, with `contracts`, one row
/// per task (`symbol,conId,phase,bar_size,status,error_code,last_error`). `statuses` empty
/// means every status that is not a success (errors of every class, and SKIPPED): what a
/// re-run can still change. Records are the latest per task, so a task that failed once and
/// succeeded later is not in it.
pub fn rerun_csv(
    records: &[SummaryRecord],
    statuses: &BTreeSet<OutcomeClass>,
    phase: Option<&str>,
    contracts: bool,
) -> String {
    let wanted = |s: OutcomeClass| {
        if statuses.is_empty() {
            !is_success(s)
        } else {
            statuses.contains(&s)
        }
    };
    let selected: Vec<&SummaryRecord> = records
        .iter()
        .filter(|r| wanted(r.status) && phase.is_none_or(|p| r.phase == p))
        .collect();
    let mut out = String::new();
    if contracts {
        out.push_str("symbol,conId,phase,bar_size,status,error_code,last_error\n");
        let mut seen = BTreeSet::new();
        for r in selected {
            if seen.insert((r.symbol.clone(), r.con_id, r.phase.clone(), r.bar_size)) {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_field(&r.symbol),
                    r.con_id,
                    csv_field(&r.phase),
                    csv_field(r.bar_size.as_str()),
                    r.status,
                    r.error_code.map(|c| c.to_string()).unwrap_or_default(),
                    csv_field(r.error_message.as_deref().unwrap_or(""))
                ));
            }
        }
    } else {
        out.push_str("symbol,tasks,statuses\n");
        let mut by: BTreeMap<&str, (usize, BTreeSet<OutcomeClass>)> = BTreeMap::new();
        for r in selected {
            let e = by.entry(&r.symbol).or_default();
            e.0 += 1;
            e.1.insert(r.status);
        }
        for (sym, (n, st)) in by {
            out.push_str(&format!(
                "{},{},{}\n",
                csv_field(sym),
                n,
                st.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(";")
            ));
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "))
    } else {
        s.to_string()
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ReportRow {
    /// Phase.
    pub phase: String,
    /// Bar size.
    pub bar_size: String,
    /// Symbol (only in the per-symbol table).
    pub symbol: Option<String>,
    /// Tasks.
    pub tasks: u64,
    /// Counts by status (listed by spelling).
    pub by_status: BTreeMap<OutcomeClass, u64>,
    /// Bars received.
    pub bars: u64,
    /// Earliest bar.
    pub first: Option<DateTime<Utc>>,
    /// Latest bar.
    pub last: Option<DateTime<Utc>>,
    /// Requests sent (attempts).
    pub requests: u64,
    /// Requests per second over the span of the records.
    pub requests_per_sec: f64,
    /// IB error codes seen, with counts.
    pub error_codes: BTreeMap<i32, u64>,
    /// EMPTY / (OK + EMPTY).
    pub empty_rate: f64,
    /// Per-symbol rows of near-ATM phases: the reference close the strikes were picked with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_close: Option<f64>,
    /// Where that close came from (`snapshot`, `cache`, `gateway`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_source: Option<crate::cache::CloseSource>,
    /// Windows split because the gateway answered a window over the strict limit table with
    /// zero bars or "Time length exceed max".
    pub splits: u64,
}

impl ReportRow {
    /// Tasks of the row that ended in `status`.
    pub fn count(&self, status: OutcomeClass) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

type RowKey = (String, String, Option<String>);
/// A row with the span of its records (first request, last finish).
type RowAcc = (ReportRow, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Build the report rows, per phase and bar size (and symbol with `by_symbol`).
pub fn report_rows(records: &[SummaryRecord], by_symbol: bool) -> Vec<ReportRow> {
    let mut rows: BTreeMap<RowKey, RowAcc> = BTreeMap::new();
    for r in records {
        let key = (
            r.phase.clone(),
            r.bar_size.as_str().to_string(),
            by_symbol.then(|| r.symbol.clone()),
        );
        let e = rows.entry(key.clone()).or_insert_with(|| {
            (
                ReportRow {
                    phase: key.0.clone(),
                    bar_size: key.1.clone(),
                    symbol: key.2.clone(),
                    ..Default::default()
                },
                None,
                None,
            )
        });
        let row = &mut e.0;
        row.tasks += 1;
        *row.by_status.entry(r.status).or_default() += 1;
        row.bars += r.bars;
        row.first = match (row.first, r.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        row.last = match (row.last, r.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        row.requests += u64::from(r.attempts);
        row.splits += u64::from(r.splits);
        if by_symbol && r.reference_close.is_some() {
            row.reference_close = r.reference_close;
            row.reference_source = r.reference_source;
        }
        if let Some(c) = r.error_code {
            *row.error_codes.entry(c).or_default() += 1;
        }
        if r.attempts > 0 {
            e.1 = Some(e.1.map_or(r.started_at, |s| s.min(r.started_at)));
            e.2 = Some(e.2.map_or(r.finished_at, |f| f.max(r.finished_at)));
        }
    }
    rows.into_values()
        .map(|(mut row, start, end)| {
            let ok = row.count(OutcomeClass::Ok);
            let empty = row.count(OutcomeClass::Empty);
            row.empty_rate = if ok + empty > 0 {
                empty as f64 / (ok + empty) as f64
            } else {
                0.0
            };
            if let (Some(s), Some(e)) = (start, end) {
                let secs = (e - s).num_milliseconds() as f64 / 1000.0;
                row.requests_per_sec = if secs > 0.0 {
                    row.requests as f64 / secs
                } else {
                    0.0
                };
            }
            row
        })
        .collect()
}

/// Requests of one end form (`execute --empty-end`) and their rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormRate {
    /// `explicit end` or `empty end`.
    pub form: &'static str,
    /// Requests sent in that form.
    pub requests: u64,
    /// Tasks whose requests all used it.
    pub tasks: u64,
    /// Requests per second over the span of those tasks (first start to last finish).
    pub requests_per_sec: f64,
}

/// Requests per end form, when any request used the empty end (else nothing): the figures a
/// user compares to see whether the empty form is served faster. A task's requests count in
/// the span of its form only when all of them used it.
pub fn form_rates(records: &[SummaryRecord]) -> Vec<FormRate> {
    use crate::exec::empty_end::is_empty_form;
    if !records
        .iter()
        .any(|r| r.requests.iter().any(|q| is_empty_form(q)))
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (form, empty) in [("explicit end", false), ("empty end", true)] {
        let (mut requests, mut tasks) = (0u64, 0u64);
        let mut span: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
        for r in records {
            let n = r
                .requests
                .iter()
                .filter(|q| is_empty_form(q) == empty)
                .count() as u64;
            requests += n;
            if n > 0 && n as usize == r.requests.len() {
                tasks += 1;
                span = Some(match span {
                    None => (r.started_at, r.finished_at),
                    Some((s, e)) => (s.min(r.started_at), e.max(r.finished_at)),
                });
            }
        }
        let per_task: u64 = records
            .iter()
            .filter(|r| {
                !r.requests.is_empty() && r.requests.iter().all(|q| is_empty_form(q) == empty)
            })
            .map(|r| r.requests.len() as u64)
            .sum();
        let secs = span.map_or(0.0, |(s, e)| (e - s).num_milliseconds() as f64 / 1000.0);
        out.push(FormRate {
            form,
            requests,
            tasks,
            requests_per_sec: if secs > 0.0 {
                per_task as f64 / secs
            } else {
                0.0
            },
        });
    }
    out
}

/// [`form_rates`] as text lines (empty when no request used the empty end).
pub fn format_form_rates(rates: &[FormRate]) -> String {
    rates
        .iter()
        .map(|f| {
            format!(
                "{:<13} {:>8} requests  {:>7.1} req/s  ({} tasks of this form only)\n",
                f.form, f.requests, f.requests_per_sec, f.tasks
            )
        })
        .collect()
}

/// The report as a text table.
pub fn format_report(rows: &[ReportRow]) -> String {
    let mut s = String::new();
    let by_symbol = rows.iter().any(|r| r.symbol.is_some());
    if by_symbol {
        s.push_str(&format!("{:<10} ", "symbol"));
    }
    s.push_str(&format!(
        "{:<10} {:<9} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>9} {:>7} {:>6}  {:<20} {:<20} codes\n",
        "phase",
        "bar",
        "tasks",
        "OK",
        "EMPTY",
        "UPTD",
        "SKIP",
        "ERR",
        "bars",
        "req/s",
        "empty%",
        "first",
        "last"
    ));
    for r in rows {
        let g = |k: OutcomeClass| r.count(k);
        let not_error = |k: OutcomeClass| k.is_done() || k == OutcomeClass::Skipped;
        let err = r.tasks
            - g(OutcomeClass::Ok)
            - g(OutcomeClass::Empty)
            - g(OutcomeClass::UpToDate)
            - g(OutcomeClass::Skipped);
        let errs: Vec<String> = r
            .by_status
            .iter()
            .filter(|(k, _)| !not_error(**k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(sym) = &r.symbol {
            s.push_str(&format!("{sym:<10} "));
        }
        let ts = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into())
        };
        s.push_str(&format!(
            "{:<10} {:<9} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>9} {:>7.1} {:>5.1}%  {:<20} {:<20} {}{}\n",
            r.phase,
            r.bar_size,
            r.tasks,
            g(OutcomeClass::Ok),
            g(OutcomeClass::Empty),
            g(OutcomeClass::UpToDate),
            g(OutcomeClass::Skipped),
            err,
            r.bars,
            r.requests_per_sec,
            100.0 * r.empty_rate,
            ts(r.first),
            ts(r.last),
            r.error_codes.iter().map(|(c, n)| format!("{c}x{n}")).collect::<Vec<_>>().join(" "),
            if errs.is_empty() { String::new() } else { format!(" [{}]", errs.join(" ")) }
        ));
        if r.splits > 0 {
            // Before the newline: windows split to the strict limit table.
            s.pop();
            s.push_str(&format!(" splits {}\n", r.splits));
        }
        if let (Some(c), Some(src)) = (r.reference_close, r.reference_source) {
            // Before the newline: the close the near-ATM strikes were picked with.
            s.pop();
            s.push_str(&format!(
                " ref {c} ({})\n",
                format!("{src:?}").to_lowercase()
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::rerun::read as read_rerun_csv;

    fn rec(task: &str, sym: &str, con: i64, status: &str, finished: i64) -> SummaryRecord {
        let t = DateTime::from_timestamp(finished, 0).unwrap();
        SummaryRecord {
            run_id: "r".into(),
            task_id: task.into(),
            phase: "hours".into(),
            symbol: sym.into(),
            con_id: con,
            expiry: None,
            strike: None,
            right: None,
            bar_size: crate::bars::BarSize::Hours8,
            what: crate::bars::WhatToShow::Trades,
            duration: "6 M".into(),
            end: t,
            status: status.parse().unwrap(),
            bars: 3,
            bars_written: 3,
            first: None,
            last: None,
            error_code: (status == "TIMEOUT").then_some(162),
            error_message: (status == "TIMEOUT").then(|| "no answer, retried".to_string()),
            output_path: None,
            quarantined: None,
            attempts: 1,
            latency_ms: None,
            inflight_limit: None,
            started_at: t,
            finished_at: t,
            reference_close: None,
            reference_source: None,
            requests: Vec::new(),
            splits: 0,
        }
    }

    #[test]
    fn latest_record_wins_and_rerun_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let run1 = dir.path().join("r1");
        let run2 = dir.path().join("r2");
        std::fs::create_dir_all(&run1).unwrap();
        std::fs::create_dir_all(&run2).unwrap();
        let line = |r: &SummaryRecord| serde_json::to_string(r).unwrap() + "\n";
        std::fs::write(
            run1.join("summary_hours_0of1.jsonl"),
            [
                line(&rec("a", "AAPL", 1, "TIMEOUT", 10)).as_bytes(),
                line(&rec("b", "SPY", 2, "TIMEOUT", 10)).as_bytes(),
                b"{torn\n",
                // Torn inside a two-byte character: not UTF-8.
                b"{\"run_id\":\"\xc3",
            ]
            .concat(),
        )
        .unwrap();
        std::fs::write(
            run2.join("summary_hours_0of1.jsonl"),
            line(&rec("a", "AAPL", 1, "OK", 20)),
        )
        .unwrap();
        let loaded = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(loaded.bad_lines, 2);
        assert_eq!(loaded.records.len(), 2);
        let statuses: BTreeSet<OutcomeClass> = [OutcomeClass::Timeout].into();
        let csv = rerun_csv(&loaded.records, &statuses, None, true);
        assert_eq!(csv.lines().count(), 2, "only SPY's task failed last: {csv}");
        let p = dir.path().join("rerun.csv");
        std::fs::write(&p, &csv).unwrap();
        let u = read_rerun_csv(&p).unwrap();
        assert!(u.contains("SPY", 2, "hours", "8 hours"));
        assert!(!u.contains("AAPL", 1, "hours", "8 hours"));
        let sym_csv = rerun_csv(&loaded.records, &statuses, None, false);
        std::fs::write(&p, &sym_csv).unwrap();
        let u = read_rerun_csv(&p).unwrap();
        assert!(
            u.contains("SPY", 99, "minutes", "30 mins"),
            "symbol files select by symbol"
        );
        let rows = report_rows(&loaded.records, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].by_status.get(&OutcomeClass::Ok), Some(&1));
        assert_eq!(rows[0].error_codes.get(&162), Some(&1));
    }

    #[test]
    fn form_rates_split_by_end_form() {
        assert!(form_rates(&[rec("a", "S", 1, "OK", 10)]).is_empty());
        let mut a = rec("a", "S", 1, "OK", 10);
        a.requests = vec!["6 M@2026-11-27T18:00:00Z~empty-end".into()];
        a.started_at = a.finished_at - chrono::Duration::seconds(2);
        let mut b = rec("b", "S", 2, "OK", 20);
        b.requests = vec![
            "6 M@2026-11-25T21:00:00Z".into(),
            "1 D@2026-11-27T18:00:00Z~empty-end".into(),
        ];
        let f = form_rates(&[a, b]);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].form, f[0].requests, f[0].tasks),
            ("explicit end", 1, 0)
        );
        assert_eq!((f[1].form, f[1].requests, f[1].tasks), ("empty end", 2, 1));
        assert!((f[1].requests_per_sec - 0.5).abs() < 1e-9, "{:?}", f[1]);
        assert!(format_form_rates(&f).contains("empty end"));
    }

    #[test]
    fn bad_rerun_csv_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(
            &p,
            "symbol,conId,phase,bar_size\nAAPL,notanumber,hours,8 hours\n",
        )
        .unwrap();
        let e = read_rerun_csv(&p).unwrap_err().to_string();
        assert!(e.contains("x.csv:2") && e.contains("conId"), "{e}");
    }
}
