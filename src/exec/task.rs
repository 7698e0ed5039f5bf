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
        option: Some(OptionSpec::of(&t.symbol, &t.contract)),
        stock_symbol: t.symbol.to_string(),
        underlying_sec_type: crate::cache::UnderlyingSecType::Stk,
        what: t.what.as_str().to_string(),
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

/// What one sent request came to, for the task's loop.
enum Step {
    /// The run was stopped mid-task.
    Stop,
    /// Zero bars (or "too long") for a window over the strict table: split it.
    Split,
    /// Bars (possibly none, for IB's "no data") to merge into the file.
    Merge(Vec<FetchedBar>),
    /// A failure that ends the task.
    Fail(crate::ib::Failure),
}

/// One task's requests on their way: the queue of windows still to send and what the sent ones
/// left. [`fetch_planned`] drives it one request at a time.
struct TaskFetch<'a> {
    sh: &'a Arc<Shared>,
    t: &'a FetchTask,
    target: &'a Target<'a>,
    queue: VecDeque<Request>,
    mode: WriteMode,
    out: Fetched,
}

impl TaskFetch<'_> {
    /// Split `req` to a limit learned earlier in the run; true when it was (the parts are queued
    /// in its place).
    fn split_to_learned_limit(&mut self, req: &Request) -> bool {
        let Some(max) = self.sh.learned_limit(self.t.bar_size) else {
            return false;
        };
        let parts = split(self.t, req, max);
        if parts.len() < 2 {
            return false;
        }
        self.out.tally.splits += 1;
        for p in parts.into_iter().rev() {
            self.queue.push_front(p);
        }
        true
    }

    /// A window over the strict table is a probe: one per bar size at a time, so one answer
    /// teaches the limit before the others are sent. `Err(())`: another probe settled it while
    /// this one waited (the request is queued again, to be split or sent as confirmed).
    async fn probe_guard(
        &mut self,
        req: Request,
    ) -> Result<(Request, Option<tokio::sync::OwnedMutexGuard<()>>), ()> {
        let (sh, bar) = (self.sh, self.t.bar_size);
        if !over_strict(&req, bar) || sh.confirmed(bar, req.units.len()) {
            return Ok((req, None));
        }
        let g = sh.probe_lock(bar).lock_owned().await;
        if sh.learned_limit(bar).is_some() || sh.confirmed(bar, req.units.len()) {
            self.queue.push_front(req);
            return Err(());
        }
        Ok((req, Some(g)))
    }

    /// Record the request (`duration@end`, with the empty-end suffix when it applies) and send it.
    async fn send(&mut self, req: &Request) -> Step {
        let (sh, t) = (self.sh, self.t);
        let empty_end = sh.cfg.empty_end
            && super::empty_end::applies(req.end, sh.cfg.now.unwrap_or_else(Utc::now), t.use_rth);
        self.out.tally.requests.push(format!(
            "{}@{}{}",
            req.duration,
            req.end.format("%Y-%m-%dT%H:%M:%SZ"),
            if empty_end {
                super::empty_end::FORM_SUFFIX
            } else {
                ""
            }
        ));
        let sent = send(sh, t, req, empty_end, &mut self.out.tally).await;
        let too_long = |f: &crate::ib::Failure| {
            f.class == OutcomeClass::InvalidRequest
                && (f.message.contains("Time length exceed max")
                    || f.message.contains("invalid step"))
        };
        match sent {
            Sent::Stopped => Step::Stop,
            Sent::Bars(bars) if bars.is_empty() && over_strict(req, t.bar_size) => Step::Split,
            Sent::Failed(f) if too_long(&f) && over_strict(req, t.bar_size) => Step::Split,
            Sent::Bars(bars) => {
                sh.confirm(t.bar_size, req.units.len());
                Step::Merge(bars)
            }
            Sent::Failed(f) if f.class == OutcomeClass::Empty => {
                self.out.empty_answer = Some(f);
                Step::Merge(Vec::new())
            }
            Sent::Failed(f) => Step::Fail(f),
        }
    }

    /// Learn the strict limit for the rest of the run and split `req` to it.
    fn learn_strict_and_split(&mut self, req: &Request) {
        let strict = sessions_within(self.t.bar_size.strict_max_duration());
        self.sh.learn(self.t.bar_size, strict);
        self.out.tally.splits += 1;
        for p in split(self.t, req, strict).into_iter().rev() {
            self.queue.push_front(p);
        }
    }

    /// Merge one answer into the file and note the file's coverage; `Err` ends the task.
    async fn merge(&mut self, bars: Vec<FetchedBar>, req: &Request) -> Result<(), ()> {
        let (sh, target) = (self.sh, self.target);
        let prior = self.out.coverage.as_ref();
        let merged = merge_answer(sh, self.t, target, &bars, req, self.mode, prior).await;
        self.mode = WriteMode::Merge;
        match merged {
            Ok(m) => {
                let out = &mut self.out;
                out.tally.written += m.appended as u64;
                if let Some(q) = m.quarantined {
                    out.tally.quarantined = Some(q.display().to_string());
                }
                // `exists`/`stat` block: off the runtime's scheduler, as the reads and merges are.
                tokio::task::block_in_place(|| {
                    sh.note_coverage(target.rel, target.path, &m.coverage)
                });
                out.coverage = Some(m.coverage);
                out.merged_any = true;
                out.tally.bars.extend(bars);
                Ok(())
            }
            Err(message) => {
                tracing::error!("{message}");
                self.out.failure = Some(crate::ib::Failure {
                    class: OutcomeClass::Other,
                    code: None,
                    message,
                });
                Err(())
            }
        }
    }
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
    let mut f = TaskFetch {
        sh,
        t,
        target,
        queue: requests.into(),
        mode,
        out: Fetched {
            tally: TaskTally::default(),
            coverage,
            failure: None,
            empty_answer: None,
            merged_any: false,
        },
    };
    while let Some(req) = f.queue.pop_front() {
        if f.split_to_learned_limit(&req) {
            continue;
        }
        let Ok((req, probe_guard)) = f.probe_guard(req).await else {
            continue;
        };
        let step = f.send(&req).await;
        drop(probe_guard);
        match step {
            Step::Stop => return None,
            Step::Split => f.learn_strict_and_split(&req),
            Step::Merge(bars) => {
                if f.merge(bars, &req).await.is_err() {
                    break;
                }
            }
            Step::Fail(failure) => {
                f.out.failure = Some(failure);
                break;
            }
        }
    }
    Some(f.out)
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
        t.what.as_str(),
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

/// How a task ended: its class, IB's code and text (or our own), and the file it left.
pub(super) struct Ending {
    pub(super) class: OutcomeClass,
    pub(super) code: Option<i32>,
    pub(super) message: Option<String>,
    pub(super) output_path: Option<String>,
}

impl Ending {
    /// Ended in `class` with our own description.
    pub(super) fn because(class: OutcomeClass, message: String) -> Self {
        Ending {
            class,
            code: None,
            message: Some(message),
            output_path: None,
        }
    }
}

pub(super) async fn run_task(sh: &Arc<Shared>, t: &FetchTask, first_of_series: bool) {
    let cfg = &sh.cfg;
    let key = t.series_key();
    let path = parquet::bar_file_path(&cfg.output_root, &cfg.scope, &key);
    let rel = t.relative_bar_path();
    let started_at = Utc::now();
    let now = sh.now();
    let units = window_units(t.end, t.duration);
    let file = match read_bar_file(&path).await {
        Ok(f) => f,
        Err(why) => {
            let ending = Ending::because(OutcomeClass::Other, why);
            let rec = record(sh, t, started_at, ending, TaskTally::default());
            write_record(sh, rec).await;
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
            let ending = Ending {
                output_path: exists.then(|| path.display().to_string()),
                ..Ending::because(OutcomeClass::UpToDate, why)
            };
            let rec = record(sh, t, started_at, ending, TaskTally::default());
            write_record(sh, rec).await;
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
    let output_path = tokio::fs::try_exists(&path)
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
    let ending = Ending {
        class,
        code,
        message,
        output_path,
    };
    write_record(sh, record(sh, t, started_at, ending, tally)).await;
    if let (true, Some(c)) = (merged_any, &last_cov) {
        sh.persist_coverage(&rel, &path, c).await;
    }
}

/// [`run_task`] on its own tokio task: a panic is recorded as an OTHER failure and the
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
        t.contract.con_id,
        t.bar_size
    );
    let message = format!("internal error (please report): {why}");
    let ending = Ending::because(OutcomeClass::Other, message);
    write_record(sh, record(sh, t, started_at, ending, TaskTally::default())).await;
}

/// The summary record of a task that started at `started_at` and ended as `ending`, with what
/// its requests left in `tally`.
pub(super) fn record(
    sh: &Shared,
    t: &FetchTask,
    started_at: DateTime<Utc>,
    ending: Ending,
    tally: TaskTally,
) -> SummaryRecord {
    let reference = sh
        .cfg
        .reference_closes
        .get(&(t.phase.to_string(), t.symbol.to_string()))
        .copied();
    let mut rec = SummaryRecord::for_task(t, &sh.cfg.run_id, ending.class, started_at);
    if let [one] = tally.requests.as_slice() {
        rec.duration = one.split('@').next().unwrap_or_default().to_string();
    }
    rec.bars = tally.bars.len() as u64;
    rec.bars_written = tally.written;
    rec.first = tally.bars.iter().map(|b| b.ts).min();
    rec.last = tally.bars.iter().map(|b| b.ts).max();
    rec.error_code = ending.code;
    rec.error_message = ending.message;
    rec.output_path = ending.output_path;
    rec.quarantined = tally.quarantined;
    rec.attempts = tally.attempts;
    rec.latency_ms = tally.latency_ms;
    rec.inflight_limit = Some(sh.governor.stats().limit);
    rec.reference_close = reference.map(|r| r.0);
    rec.reference_source = reference.map(|r| r.1);
    rec.requests = tally.requests;
    rec.splits = tally.splits;
    rec.finished_at = Utc::now();
    rec
}

/// Append a task's record to the summary and tell the scheduler it finished (or that its line
/// could not be written: then it is not done).
pub(super) async fn write_record(sh: &Arc<Shared>, rec: SummaryRecord) {
    let cfg = &sh.cfg;
    let path = summary::run_dir(&cfg.state_root, &cfg.scope, &cfg.run_id).join(
        summary::summary_file_name(&rec.phase, cfg.batch_index, cfg.batch_count),
    );
    let (class, bars) = (rec.status, rec.bars);
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
