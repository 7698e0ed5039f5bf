//! The scheduler: runs fetch tasks through the governor and the gateway, one file at a time per
//! series, with retries, reconnects, incremental merges and a summary line per finished task.
//!
//! A *series* is one output file (contract x what x bar size); its windows run in order, never
//! two at once, so merges into one file never race. Phases run per symbol in `depends-on` order:
//! a symbol's series of a phase start once that symbol's series of every phase it depends on are
//! finished.

use super::governor::{GovernorConfig, PacingGovernor};
// The state a run's tasks share lives in its own module; `send` and `task` reach it here.
use super::queue::{Queue, Series};
use super::reconnect::Reconnector;
use super::report::{Reporter, RunStats};
use super::resume::Resumed;
use super::safety::{follow_farm, AbortOnDrop, STOP_GRACE};
use super::shared::LearnedLimits;
pub(super) use super::shared::{Event, Shared};
use super::task::run_task_caught;
use super::timeline::TimelineRecorder;
use crate::compile::task::FetchTask;
use crate::ib::session::retry::RetryPolicy;
use crate::ib::GatewayConfig;
use crate::store::coverage_index::{CoverageIndex, IndexWriter};
use crate::store::parquet::{self};
use crate::store::summary::{self, SummaryRecord, SummaryWriter};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Everything the executor needs besides the tasks.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Scope (output directory suffix and run-log directory).
    pub scope: String,
    /// Output root (`data_test`).
    pub output_root: PathBuf,
    /// State root (`state`).
    pub state_root: PathBuf,
    /// Run id (directory of this run's summaries).
    pub run_id: String,
    /// Batch index, for the summary file name and the lock.
    pub batch_index: u32,
    /// Batch count.
    pub batch_count: u32,
    /// Skip tasks recorded done in earlier summaries.
    pub resume: bool,
    /// Merge into existing files and request only missing spans.
    pub incremental: bool,
    /// Gateway.
    pub gateway: GatewayConfig,
    /// Governor.
    pub governor: GovernorConfig,
    /// How a request with a retryable outcome is tried again: tries per request at most (first
    /// try + retries), the first backoff (doubling per try up to the cap), the time scale
    /// ([`RetryPolicy::historical`] by default).
    pub retry: RetryPolicy,
    /// How long to keep trying to reconnect after a disconnect before giving up the run.
    pub reconnect_for: Duration,
    /// Phase -> phases it depends on.
    pub phase_deps: BTreeMap<String, Vec<String>>,
    /// Series worked on at once (each waits on the governor for a request slot).
    pub active_series: usize,
    /// Near-ATM reference close and its source per (phase, symbol), copied into every summary
    /// record of those tasks.
    pub reference_closes: BTreeMap<(String, String), (f64, crate::cache::CloseSource)>,
    /// The clock for coverage decisions (a session fetched before its close is provisional):
    /// `None` is the wall clock; tests and `--now` pin it.
    pub now: Option<DateTime<Utc>>,
    /// Send an empty end date-time ("now") when the window ends at the last completed session
    /// and none has started since (`execute --empty-end`, see [`super::empty_end`]).
    pub empty_end: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// Final counts.
    pub stats: RunStats,
    /// Directory of this run's summaries.
    pub run_dir: PathBuf,
    /// True when Ctrl-C (or the cancel signal) stopped it early.
    pub interrupted: bool,
    /// Set when the gateway stayed unreachable past `reconnect_for`.
    pub gateway_lost: Option<String>,
}

/// Errors that stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Another executor holds the lock.
    #[error("another executor is running scope `{scope}` batch {batch} (lock file {path}); wait for it or stop it")]
    Locked {
        /// Scope.
        scope: String,
        /// Batch label.
        batch: String,
        /// Lock file.
        path: PathBuf,
    },
    /// Gateway connection failed.
    #[error(transparent)]
    Connect(#[from] crate::ib::ConnectError),
    /// State directory problems.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Run `tasks` (already resume-filtered) against the gateway. `stop` turns true on Ctrl-C:
/// dispatch stops, in-flight requests finish or time out, the summary is flushed.
pub async fn execute(
    resumed: Resumed,
    skipped: Vec<SummaryRecord>,
    cfg: ExecConfig,
    reporter: &mut dyn Reporter,
    stop: watch::Receiver<bool>,
) -> Result<RunReport, ExecError> {
    let run_dir = summary::run_dir(&cfg.state_root, &cfg.scope, &cfg.run_id);
    let Resumed {
        tasks,
        finished: resumed,
        index,
    } = resumed;
    let (shared, index_writer, rx) = open_run(&cfg, &run_dir, &skipped, index, &stop).await?;
    let governor = shared.governor.clone();

    // The files this run may write or check: the lake index is refreshed for them at the end.
    let touched: Vec<String> = tasks.iter().map(FetchTask::relative_bar_path).collect();
    let queue = Queue::build(tasks, &cfg.phase_deps);
    crate::memory::log_stage("queue built");
    let mut stats = RunStats {
        resumed,
        total: queue.tasks,
        ..Default::default()
    };
    for rec in &skipped {
        stats.count(rec.status);
        stats.total += 1;
    }

    let farm = tokio::spawn(follow_farm(shared.gateway.hmds_down(), governor.clone()));
    let _farm = AbortOnDrop(farm.abort_handle());
    let started = Instant::now();
    let mut timeline = TimelineRecorder::open(&run_dir, cfg.batch_index, cfg.batch_count);
    timeline.start(
        Utc::now(),
        &cfg.run_id,
        &cfg.scope,
        (cfg.batch_index, cfg.batch_count),
        stats.total,
        resumed,
        &governor.stats(),
    );
    let mut run = Drive {
        shared: &shared,
        queue,
        rx,
        stats,
        timeline,
        started,
        interrupted: false,
        gateway_lost: None,
    };
    run.until_done(reporter, stop).await;
    let Drive {
        mut stats,
        interrupted,
        gateway_lost,
        ..
    } = run;
    if !interrupted && gateway_lost.is_none() {
        // Every series finished and dropped its in-run coverage (the map must not outlive them).
        debug_assert_eq!(
            shared.fileless_held(),
            0,
            "in-run coverage left after the run"
        );
    }
    // The run's shared state (the coverage index as of the start, the gateway) is not needed to
    // fold the index and refresh the lake index: freed first, so the end of a run does not
    // hold both (the end was the run's peak).
    drop(shared);
    crate::memory::log_stage("last answer");
    stats.write_failures += finish_run(&cfg, &run_dir, &index_writer, &touched, &stats);
    crate::memory::log_stage("run ended");
    tracing::info!(
        "run {} ended: {} of {} tasks done, {} errors, {} requests, {} reconnects{}",
        cfg.run_id,
        stats.done(),
        stats.total,
        stats.errors(),
        stats.requests,
        stats.reconnects,
        if interrupted { " (interrupted)" } else { "" }
    );
    Ok(RunReport {
        stats,
        run_dir,
        interrupted,
        gateway_lost,
    })
}

/// Open what a run writes (its summary, with the skipped selections' records first; the
/// coverage log) and connect to the gateway.
async fn open_run(
    cfg: &ExecConfig,
    run_dir: &std::path::Path,
    skipped: &[SummaryRecord],
    index: CoverageIndex,
    stop: &watch::Receiver<bool>,
) -> Result<
    (
        Arc<Shared>,
        Arc<Mutex<IndexWriter>>,
        mpsc::UnboundedReceiver<Event>,
    ),
    ExecError,
> {
    let io_err = |source| ExecError::Io {
        path: run_dir.to_path_buf(),
        source,
    };
    let mut writer = SummaryWriter::new(run_dir.to_path_buf(), cfg.batch_index, cfg.batch_count)
        .map_err(io_err)?;
    for rec in skipped {
        writer.append(rec).map_err(io_err)?;
    }
    let index_writer = IndexWriter::open(
        &cfg.state_root,
        &cfg.scope,
        cfg.batch_index,
        cfg.batch_count,
    )
    .map_err(|source| ExecError::Io {
        path: crate::store::coverage_index::index_dir(&cfg.state_root, &cfg.scope),
        source,
    })?;
    let index_writer = Arc::new(Mutex::new(index_writer));
    let gateway =
        super::reconnect::connect_with_retry(&cfg.gateway, cfg.reconnect_for, stop).await?;
    let governor = PacingGovernor::new(cfg.governor.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        gateway,
        governor,
        summary: Arc::new(Mutex::new(writer)),
        events: tx,
        stop: stop.clone(),
        reconnector: Reconnector::new(cfg.reconnect_for),
        today: crate::calendar::to_ny(cfg.now.unwrap_or_else(Utc::now)).date_naive(),
        index,
        index_writer: index_writer.clone(),
        fileless: Mutex::new(HashMap::new()),
        limits: Mutex::new(LearnedLimits::default()),
        probes: Mutex::new(HashMap::new()),
        solo: tokio::sync::RwLock::new(()),
    });

    Ok((shared, index_writer, rx))
}

/// The scheduler's loop and what it keeps: series dispatched up to `active_series` at a time,
/// events counted into the totals and the timeline, stop and gateway loss honoured.
struct Drive<'a> {
    shared: &'a Arc<Shared>,
    queue: Queue,
    rx: mpsc::UnboundedReceiver<Event>,
    stats: RunStats,
    timeline: TimelineRecorder,
    started: Instant,
    interrupted: bool,
    gateway_lost: Option<String>,
}

impl Drive<'_> {
    /// Run until every ready series is done, or the run is stopped (Ctrl-C, gateway lost).
    async fn until_done(&mut self, reporter: &mut dyn Reporter, stop: watch::Receiver<bool>) {
        let mut active = 0usize;
        let max_active = self.shared.cfg.active_series.max(1);
        let mut joins = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut stop_rx = stop.clone();
        // The HMDS farm's state for the timeline (the governor follows it on its own).
        let mut farm_rx = self.shared.gateway.hmds_down();
        let mut farm_open = true;
        let mut farm_down = false;
        // Once stopped, in-flight requests get STOP_GRACE to finish; then their series are
        // abandoned (not recorded: the next run does them).
        let mut grace_over: Option<tokio::time::Instant> = None;
        loop {
            let stopping = self.interrupted || self.gateway_lost.is_some();
            if !stopping {
                while active < max_active {
                    let Some(s) = self.queue.pop() else { break };
                    active += 1;
                    joins.spawn(run_series(self.shared.clone(), s));
                }
            }
            if active == 0 && (self.queue.nothing_ready() || stopping) {
                // Anything still waiting depends on work that did not finish in this run.
                break;
            }
            tokio::select! {
                Some(ev) = self.rx.recv() => {
                    feed_timeline(&mut self.timeline, &ev);
                    if let Some((phases, symbol)) = count_event(&mut self.stats, &mut self.gateway_lost, ev) {
                        active -= 1;
                        self.queue.series_done(phases, &symbol);
                    }
                }
                Some(res) = joins.join_next(), if !joins.is_empty() => {
                    if let Err(e) = res { tracing::error!("series task failed: {e}"); }
                }
                _ = stop_rx.changed() => {
                    if *stop_rx.borrow() && !self.interrupted {
                        self.interrupted = true;
                        grace_over = Some(tokio::time::Instant::now() + STOP_GRACE);
                    }
                }
                _ = tokio::time::sleep_until(grace_over.unwrap_or_else(tokio::time::Instant::now)), if grace_over.is_some() => {
                    tracing::warn!("stop grace of {STOP_GRACE:?} over: abandoning {active} series still in flight");
                    joins.abort_all();
                    break;
                }
                res = farm_rx.changed(), if farm_open => match res {
                    Ok(()) => {
                        let down = *farm_rx.borrow_and_update();
                        if down != farm_down {
                            farm_down = down;
                            record_farm_state(&mut self.timeline, down);
                        }
                    }
                    Err(_) => farm_open = false,
                },
                _ = tick.tick() => {}
            }
            self.stats.elapsed_secs = self.started.elapsed().as_secs_f64();
            self.stats.governor = self.shared.governor.stats();
            self.timeline.tick(Utc::now(), &self.stats.governor);
            reporter.progress(&self.stats);
        }
        while joins.join_next().await.is_some() {}
        while let Ok(ev) = self.rx.try_recv() {
            feed_timeline(&mut self.timeline, &ev);
            let _ = count_event(&mut self.stats, &mut self.gateway_lost, ev);
        }
        self.stats.elapsed_secs = self.started.elapsed().as_secs_f64();
        self.stats.governor = self.shared.governor.stats();
        self.timeline.end(
            Utc::now(),
            &self.stats.governor,
            self.stats.requests,
            self.stats.reconnects,
            self.interrupted,
            self.gateway_lost.as_deref(),
        );
        reporter.finish(&self.stats);
    }
}

/// After the loop: fold the coverage log into its snapshot, refresh the lake index for the
/// files the run may have touched, write the run totals. Returns the write failures (each is
/// logged; none loses bars, which are already in their files).
fn finish_run(
    cfg: &ExecConfig,
    run_dir: &std::path::Path,
    index_writer: &Arc<Mutex<IndexWriter>>,
    touched: &[String],
    stats: &RunStats,
) -> u64 {
    let mut failures = 0;
    tokio::task::block_in_place(|| {
        let compacted = index_writer
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))
            .and_then(|mut w| w.compact(&cfg.state_root, &cfg.scope));
        if let Err(e) = compacted {
            tracing::error!("cannot compact the coverage index: {e}");
        }
        let scope_dir = parquet::scope_dir(&cfg.output_root, &cfg.scope);
        let indexed = crate::lake::index::refresh_after_run(&scope_dir, touched);
        if let Err(e) = indexed {
            tracing::error!("cannot refresh the lake index: {e}");
        }
        let run_file = run_dir.join(format!("run_{}of{}.json", cfg.batch_index, cfg.batch_count));
        if let Err(e) = crate::store::atomic::write_json(&run_file, stats) {
            failures += 1;
            tracing::error!("cannot write the run totals {}: {e}", run_file.display());
        }
    });
    failures
}

/// Count an event into the stats; a finished series is handed back (phases, symbol) for the
/// scheduler's bookkeeping.
fn count_event(
    stats: &mut RunStats,
    gateway_lost: &mut Option<String>,
    ev: Event,
) -> Option<(Vec<Arc<str>>, Arc<str>)> {
    match ev {
        Event::Request { retry } => {
            stats.requests += 1;
            if retry {
                stats.retries += 1;
            }
        }
        Event::Finished { class, bars } => {
            stats.count(class);
            stats.bars += bars;
        }
        Event::Reconnected => stats.reconnects += 1,
        Event::Learned { bar, sessions } => {
            stats.limit_splits += 1;
            stats
                .learned_limits
                .insert(bar.as_str().to_string(), format!("{sessions} D"));
        }
        Event::WriteFailed => stats.write_failures += 1,
        Event::GatewayLost(why) => *gateway_lost = Some(why),
        Event::Answered { .. } | Event::Disconnected => {}
        Event::SeriesDone { phases, symbol } => return Some((phases, symbol)),
    }
    None
}

/// Feed the scheduler's events to the timeline (timestamped as the loop sees them).
fn feed_timeline(tl: &mut TimelineRecorder, ev: &Event) {
    let now = Utc::now();
    match ev {
        Event::Request { retry } => tl.request(now, *retry),
        Event::Answered { class, latency } => tl.answer(now, *class, *latency),
        Event::Finished { class, bars } => tl.finished(now, *class, *bars),
        Event::Disconnected => tl.disconnected(now),
        Event::Reconnected => tl.reconnected(now),
        Event::GatewayLost(_) => tl.gateway_lost(now),
        Event::Learned { .. } | Event::SeriesDone { .. } | Event::WriteFailed => {}
    }
}

/// The HMDS farm went down (2105) or came back (2106, or 2158 after a restart).
fn record_farm_state(tl: &mut TimelineRecorder, down: bool) {
    if down {
        tl.record_farm_notice(Utc::now(), 2105, "HMDS data farm connection is broken");
    } else {
        tl.record_farm_notice(Utc::now(), 2106, "HMDS data farm connection is OK");
    }
}

async fn run_series(sh: Arc<Shared>, s: Series) {
    for (i, t) in s.tasks.iter().enumerate() {
        if *sh.stop.borrow() || sh.reconnector.is_lost() {
            break;
        }
        run_task_caught(&sh, t, i == 0).await;
    }
    if let Some(t) = s.tasks.first() {
        sh.series_done(&t.relative_bar_path());
    }
    let _ = sh.events.send(Event::SeriesDone {
        phases: s.phases,
        symbol: s.symbol,
    });
}
