//! One task's path: read its file, plan the missing sessions, send, merge each answer, record
//! the outcome (summary line, then coverage index).

use super::incremental::{over_strict, plan_task, sessions_within, split, Plan, Policy, Request};
use super::run::{Event, Shared};
use super::safety::{panic_message, AbortOnDrop};
use super::send::{send, Sent};
use crate::compile::task::FetchTask;
use crate::ib::{FetchedBar, HistRequest, OptionSpec, OutcomeClass};
use crate::store::coverage::{window_units, Answer, FileCoverage, Unit};
use crate::store::parquet::{self, StoreError, WriteMode};
use crate::store::summary::{self, SummaryRecord};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The gateway request for one of a task's requests.
pub(super) fn hist_request(t: &FetchTask, req: &Request) -> HistRequest {
    HistRequest {
        option: Some(OptionSpec {
            symbol: t.symbol.clone(),
            con_id: t.con_id,
            local_symbol: t.local_symbol.clone(),
            trading_class: t.trading_class.clone(),
            expiry: t.expiry,
            strike: t.strike,
            right: t.right,
            multiplier: t.multiplier,
            exchange: t.exchange.clone(),
            currency: t.currency.clone(),
        }),
        stock_symbol: t.symbol.clone(),
        underlying_sec_type: crate::cache::UnderlyingSecType::Stk,
        what: t.what.clone(),
        bar_size: t.bar_size,
        duration: req.duration,
        end: Some(req.end),
        use_rth: t.use_rth,
    }
}

/// The running totals of one task, for its summary record.
#[derive(Default)]
pub(super) struct TaskTally {
    pub(super) bars: Vec<FetchedBar>,
    pub(super) written: u64,
    pub(super) attempts: u32,
    pub(super) latency_ms: Option<u64>,
    pub(super) quarantined: Option<String>,
    pub(super) requests: Vec<String>,
    pub(super) splits: u32,
}

/// Where a task's answers go.
struct Target<'a> {
    path: &'a std::path::Path,
    rel: &'a str,
    key: &'a parquet::SeriesKey,
    /// The run's clock when the task started (provisional sessions, provenance).
    now: DateTime<Utc>,
}

/// What sending a task's planned requests left.
struct Fetched {
    tally: TaskTally,
    /// The file's coverage after the last merge (or as planned from).
    coverage: Option<FileCoverage>,
    failure: Option<crate::ib::Failure>,
    /// IB's "no data" answer (162), kept for the record of a task that ends EMPTY.
    empty_answer: Option<crate::ib::Failure>,
    merged_any: bool,
}

/// Send a task's planned requests in order, merging each answer into its file: windows over a
/// learned limit are split before sending, one probe per bar size tests a window over the
/// strict table, and a zero-bar or "too long" answer to one splits it and teaches the limit.
/// `None`: the run was stopped mid-task.
async fn fetch_planned(
    sh: &Arc<Shared>,
    t: &FetchTask,
    target: &Target<'_>,
    requests: Vec<Request>,
    mode: WriteMode,
    coverage: Option<FileCoverage>,
) -> Option<Fetched> {
    let mut queue: VecDeque<Request> = requests.into();
    let mut mode = mode;
    let mut tally = TaskTally::default();
    let mut last_cov = coverage;
    let mut failure: Option<crate::ib::Failure> = None;
    // IB's "no data" answer (162), kept for the record of a task that ends EMPTY.
    let mut empty_answer: Option<crate::ib::Failure> = None;
    let mut merged_any = false;
    while let Some(req) = queue.pop_front() {
        // A limit learned earlier in the run: split before sending.
        if let Some(max) = sh.learned_limit(t.bar_size) {
            let parts = split(t, &req, max);
            if parts.len() > 1 {
                tally.splits += 1;
                for p in parts.into_iter().rev() {
                    queue.push_front(p);
                }
                continue;
            }
        }
        let probe = over_strict(&req, t.bar_size) && !sh.confirmed(t.bar_size, req.units.len());
        let probe_guard = if probe {
            let lock = sh.probe_lock(t.bar_size);
            let g = lock.lock_owned().await;
            if sh.learned_limit(t.bar_size).is_some() || sh.confirmed(t.bar_size, req.units.len()) {
                queue.push_front(req);
                continue;
            }
            Some(g)
        } else {
            None
        };
        let empty_end = sh.cfg.empty_end
            && super::empty_end::applies(req.end, sh.cfg.now.unwrap_or_else(Utc::now), t.use_rth);
        tally.requests.push(format!(
            "{}@{}{}",
            req.duration,
            req.end.format("%Y-%m-%dT%H:%M:%SZ"),
            if empty_end {
                super::empty_end::FORM_SUFFIX
            } else {
                ""
            }
        ));
        let sent = send(sh, t, &req, empty_end, &mut tally).await;
        let too_long = |f: &crate::ib::Failure| {
            f.class == OutcomeClass::InvalidRequest
                && (f.message.contains("Time length exceed max")
                    || f.message.contains("invalid step"))
        };
        let fetched = match sent {
            Sent::Stopped => return None,
            Sent::Bars(bars) if bars.is_empty() && over_strict(&req, t.bar_size) => None,
            Sent::Failed(f) if too_long(&f) && over_strict(&req, t.bar_size) => None,
            Sent::Bars(bars) => {
                sh.confirm(t.bar_size, req.units.len());
                Some(bars)
            }
            Sent::Failed(f) if f.class == OutcomeClass::Empty => {
                empty_answer = Some(f);
                Some(Vec::new())
            }
            Sent::Failed(f) => {
                failure = Some(f);
                break;
            }
        };
        drop(probe_guard);
        let Some(bars) = fetched else {
            // Zero bars (or "too long") for a window over the strict table: learn the strict
            // limit for the rest of the run and split this window to it.
            let strict = sessions_within(t.bar_size.strict_max_duration());
            sh.learn(t.bar_size, strict);
            tally.splits += 1;
            for p in split(t, &req, strict).into_iter().rev() {
                queue.push_front(p);
            }
            continue;
        };
        let merged = merge_answer(sh, t, target, &bars, &req, mode, last_cov.as_ref()).await;
        mode = WriteMode::Merge;
        match merged {
            Ok(m) => {
                tally.written += m.appended as u64;
                if let Some(q) = m.quarantined {
                    tally.quarantined = Some(q.display().to_string());
                }
                // `exists`/`stat` block: off the runtime's scheduler, as the reads and merges are.
                tokio::task::block_in_place(|| {
                    sh.note_coverage(target.rel, target.path, &m.coverage)
                });
                last_cov = Some(m.coverage);
                merged_any = true;
            }
            Err(message) => {
                tracing::error!("{message}");
                failure = Some(crate::ib::Failure {
                    class: OutcomeClass::Other,
                    code: None,
                    message,
                });
                break;
            }
        }
        tally.bars.extend(bars);
    }
    Some(Fetched {
        tally,
        coverage: last_cov,
        failure,
        empty_answer,
        merged_any,
    })
}

/// Read a task's bar file, retrying transient I/O errors (an `Err` after the retries fails the
/// task and leaves the file alone); a file that cannot be decoded plans as absent and is
/// quarantined by the merge.
async fn read_bar_file(path: &std::path::Path) -> Result<Option<parquet::BarFile>, String> {
    let mut tries = 0;
    loop {
        let p = path.to_path_buf();
        match tokio::task::spawn_blocking(move || parquet::read_file(&p)).await {
            Ok(Ok(f)) => return Ok(f),
            Ok(Err(StoreError::Corrupt { .. })) => return Ok(None),
            Ok(Err(e)) if tries < 3 => {
                tries += 1;
                tracing::warn!("{e}; retrying");
                tokio::time::sleep(Duration::from_millis(200 << tries)).await;
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Merge one request's answer into the task's file (on the blocking pool): the answered units
/// replace what the file held for them.
async fn merge_answer(
    sh: &Arc<Shared>,
    t: &FetchTask,
    target: &Target<'_>,
    bars: &[FetchedBar],
    req: &Request,
    mode: WriteMode,
    prior: Option<&FileCoverage>,
) -> Result<parquet::MergeOutcome, String> {
    let prov = crate::store::provenance::Provenance::of_request(
        &sh.cfg.run_id,
        target.now,
        req.end,
        req.duration,
        t.bar_size,
        &t.what,
        t.use_rth,
    );
    let (path, key, bars, units, prior) = (
        target.path.to_path_buf(),
        target.key.clone(),
        bars.to_vec(),
        req.units.clone(),
        prior.cloned(),
    );
    match tokio::task::spawn_blocking(move || {
        parquet::merge_units(&path, &key, &bars, &units, mode, prior.as_ref(), &prov)
    })
    .await
    {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The class of a task that sent everything it planned: EMPTY when every unit of its window is
/// recorded empty (no chunk answered a bar), else OK; a failure's own class otherwise.
fn final_class(
    failure: Option<crate::ib::Failure>,
    empty_answer: Option<crate::ib::Failure>,
    coverage: Option<&FileCoverage>,
    units: &[Unit],
    no_bars: bool,
) -> (OutcomeClass, Option<i32>, Option<String>) {
    if let Some(f) = failure {
        return (f.class, f.code, Some(f.message));
    }
    let all_empty = coverage.is_some_and(|c| {
        units.iter().all(|u| {
            c.session(u.session().date)
                .is_some_and(|cv| cv.answer == Answer::Empty)
                || matches!(u, Unit::Chunk { .. }) && no_bars
        })
    });
    if !all_empty {
        return (OutcomeClass::Ok, None, None);
    }
    let (code, message) = empty_answer
        .map(|f| (f.code, Some(f.message)))
        .unwrap_or((None, None));
    (OutcomeClass::Empty, code, message)
}

pub(super) async fn run_task(sh: &Arc<Shared>, t: &FetchTask, first_of_series: bool) {
    let cfg = &sh.cfg;
    let key = t.series_key();
    let path = parquet::bar_file_path(&cfg.output_root, &cfg.scope, &key);
    let rel = t.relative_bar_path();
    let started_at = Utc::now();
    let now = sh.now();
    let units = window_units(t.end, t.duration);
    let file = read_bar_file(&path).await;
    let file = match file {
        Ok(f) => f,
        Err(why) => {
            let rec = record(
                sh,
                t,
                started_at,
                OutcomeClass::Other,
                TaskTally::default(),
                None,
                Some(why),
                None,
            );
            write_record(sh, rec, OutcomeClass::Other, 0).await;
            return;
        }
    };
    let exists = file.is_some();
    let coverage = match &file {
        Some(f) => Some(f.effective_coverage()),
        None => tokio::task::block_in_place(|| sh.index_entry(&rel, &path)),
    };
    let policy = Policy {
        incremental: cfg.incremental,
        resume: cfg.resume,
        first_of_series,
    };
    let (requests, mode) = match plan_task(t, &units, coverage.as_ref(), exists, now, policy) {
        Plan::UpToDate(why) => {
            let out = exists.then(|| path.display().to_string());
            let rec = record(
                sh,
                t,
                started_at,
                OutcomeClass::UpToDate,
                TaskTally::default(),
                None,
                Some(why),
                out,
            );
            write_record(sh, rec, OutcomeClass::UpToDate, 0).await;
            if let Some(c) = &coverage {
                sh.persist_coverage(&rel, &path, c).await;
            }
            return;
        }
        Plan::Fetch { requests, mode } => (requests, mode),
    };
    let target = Target {
        path: &path,
        rel: &rel,
        key: &key,
        now,
    };
    let Some(Fetched {
        tally,
        coverage: last_cov,
        failure,
        empty_answer,
        merged_any,
    }) = fetch_planned(sh, t, &target, requests, mode, coverage).await
    else {
        return; // stopped: the task is redone by the next run
    };
    let out = tokio::fs::try_exists(&path)
        .await
        .unwrap_or(false)
        .then(|| path.display().to_string());
    let (class, code, message) = final_class(
        failure,
        empty_answer,
        last_cov.as_ref(),
        &units,
        tally.bars.is_empty(),
    );
    let n = tally.bars.len() as u64;
    let rec = record(sh, t, started_at, class, tally, code, message, out);
    write_record(sh, rec, class, n).await;
    if let (true, Some(c)) = (merged_any, &last_cov) {
        sh.persist_coverage(&rel, &path, c).await;
    }
}

/// series goes on, so the scheduler always hears that the series finished.
pub(super) async fn run_task_caught(sh: &Arc<Shared>, t: &FetchTask, first_of_series: bool) {
    let (sh2, t2) = (sh.clone(), t.clone());
    let started_at = Utc::now();
    let handle = tokio::spawn(async move { run_task(&sh2, &t2, first_of_series).await });
    // If the series itself is aborted (stop grace over), the task goes with it.
    let _abort = AbortOnDrop(handle.abort_handle());
    let Err(e) = handle.await else {
        return;
    };
    let why = panic_message(e);
    tracing::error!(
        "{} {} conId {} {}: internal error: {why}",
        t.phase,
        t.symbol,
        t.con_id,
        t.bar_size
    );
    let class = OutcomeClass::Other;
    let message = format!("internal error (please report): {why}");
    let rec = record(
        sh,
        t,
        started_at,
        class,
        TaskTally::default(),
        None,
        Some(message),
        None,
    );
    write_record(sh, rec, class, 0).await;
}

#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    sh: &Shared,
    t: &FetchTask,
    started_at: DateTime<Utc>,
    class: OutcomeClass,
    tally: TaskTally,
    code: Option<i32>,
    message: Option<String>,
    output_path: Option<String>,
) -> SummaryRecord {
    let reference = sh
        .cfg
        .reference_closes
        .get(&(t.phase.clone(), t.symbol.clone()))
        .copied();
    let duration = match tally.requests.as_slice() {
        [one] => one.split('@').next().unwrap_or_default().to_string(),
        _ => t.duration.to_string(),
    };
    SummaryRecord {
        run_id: sh.cfg.run_id.clone(),
        task_id: t.id.clone(),
        phase: t.phase.clone(),
        symbol: t.symbol.clone(),
        con_id: t.con_id,
        expiry: Some(t.expiry),
        strike: Some(t.strike),
        right: Some(t.right.as_str().to_string()),
        bar_size: t.bar_size.as_str().to_string(),
        what: t.what.clone(),
        duration,
        end: t.end,
        status: class.as_str().to_string(),
        bars: tally.bars.len() as u64,
        bars_written: tally.written,
        first: tally.bars.iter().map(|b| b.ts).min(),
        last: tally.bars.iter().map(|b| b.ts).max(),
        error_code: code,
        error_message: message,
        output_path,
        quarantined: tally.quarantined,
        attempts: tally.attempts,
        latency_ms: tally.latency_ms,
        inflight_limit: Some(sh.governor.stats().limit),
        started_at,
        finished_at: Utc::now(),
        reference_close: reference.map(|r| r.0),
        reference_source: reference.map(|r| r.1),
        requests: tally.requests,
        splits: tally.splits,
    }
}

pub(super) async fn write_record(
    sh: &Arc<Shared>,
    rec: SummaryRecord,
    class: OutcomeClass,
    bars: u64,
) {
    let cfg = &sh.cfg;
    let path = summary::run_dir(&cfg.state_root, &cfg.scope, &cfg.run_id).join(
        summary::summary_file_name(&rec.phase, cfg.batch_index, cfg.batch_count),
    );
    if !class.is_done() {
        tracing::info!(
            "{} {} conId {} {}: {} after {} attempts: {}",
            rec.phase,
            rec.symbol,
            rec.con_id,
            rec.bar_size,
            rec.status,
            rec.attempts,
            rec.error_message.as_deref().unwrap_or("")
        );
    }
    let w = sh.summary.clone();
    let res = tokio::task::spawn_blocking(move || {
        w.lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .append(&rec)
    })
    .await;
    let failed = match res {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("summary writer task failed: {e}")),
    };
    match failed {
        None => {
            let _ = sh.events.send(Event::Finished { class, bars });
        }
        Some(e) => {
            tracing::error!(
                "cannot append to the summary {}: {e}; the task is not recorded done",
                path.display()
            );
            let _ = sh.events.send(Event::WriteFailed);
        }
    }
}
