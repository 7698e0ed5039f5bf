//! The scheduler: runs fetch tasks through the governor and the gateway, one file at a time per
//! series, with retries, reconnects, incremental merges and a summary line per finished task.
//!
//! A *series* is one output file (contract x what x bar size); its windows run in order, never
//! two at once, so merges into one file never race. Phases run per symbol in `depends-on` order:
//! a symbol's series of a phase start once that symbol's series of every phase it depends on are
//! finished.

use super::governor::{GovernorConfig, PacingGovernor};
use super::incremental::{over_strict, plan_task, sessions_within, split, Plan, Policy, Request};
use super::report::{Reporter, RunStats};
use super::safety::{
    follow_farm, panic_message, AbortOnDrop, DropTracker, MAX_FARM_TIMEOUTS, STOP_GRACE,
};
use super::small_bars::SmallBarKey;
use super::timeline::TimelineRecorder;
use crate::bars::{BarSize, Duration as IbDuration};
use crate::compile::task::FetchTask;
use crate::ib::{FetchedBar, Gateway, GatewayConfig, HistRequest, OptionSpec, OutcomeClass};
use crate::store::coverage::{
    window_ordinals, window_units, Answer, FileCoverage, FinalRuns, Unit,
};
use crate::store::coverage_index::{CoverageIndex, IndexWriter};
use crate::store::parquet::{self, SeriesKey, StoreError, WriteMode};
use crate::store::summary::{self, SummaryRecord, SummaryWriter};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
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
    /// Requests per task at most (first try + retries) for retryable classes.
    pub max_attempts: u32,
    /// First retry backoff; doubles per attempt, capped at 60 s.
    pub retry_backoff: Duration,
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

/// Holds the per-scope-and-batch lock for the life of the run (released by the OS even on
/// SIGKILL, since it is an advisory file lock, not a file's existence).
pub struct RunLock {
    _file: std::fs::File,
    _scope: std::fs::File,
}

/// Take the locks for a scope and batch: the batch's own lock, and the scope's lock, shared by
/// the shards of a sharded run and exclusive for an unsharded one, so an unsharded run and a
/// sharded run of the same scope never write at once.
pub fn lock_scope(cfg: &ExecConfig) -> Result<RunLock, ExecError> {
    let dir = cfg.state_root.join("run_logs").join(&cfg.scope);
    std::fs::create_dir_all(&dir).map_err(|source| ExecError::Io {
        path: dir.clone(),
        source,
    })?;
    let open = |path: &std::path::Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| ExecError::Io {
                path: path.to_path_buf(),
                source,
            })
    };
    let locked = |path: PathBuf| ExecError::Locked {
        scope: cfg.scope.clone(),
        batch: format!("{}/{}", cfg.batch_index, cfg.batch_count),
        path,
    };
    let scope_path = dir.join(".lock-scope");
    let scope_file = open(&scope_path)?;
    let scope_lock = if cfg.batch_count > 1 {
        scope_file.try_lock_shared()
    } else {
        scope_file.try_lock()
    };
    if scope_lock.is_err() {
        return Err(locked(scope_path));
    }
    let path = dir.join(format!(".lock-{}of{}", cfg.batch_index, cfg.batch_count));
    let file = open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock {
            _file: file,
            _scope: scope_file,
        }),
        Err(_) => Err(locked(path)),
    }
}

/// Drop tasks whose window the lake already covers, by the scope's coverage index: a task is
/// done when the index entry of its file still matches the file on disk (size and mtime) and
/// records every session of the window as answered and final (checked on the record's session
/// runs, without expanding it; a window with a provisional session or a chunk goes to the
/// scheduler, which decides from the file).
/// Anything else goes to the scheduler, which reads the file itself. A scope without an index
/// (written by an older version) falls back to the summaries for tasks that wrote no file
/// (EMPTY), and its files are re-read at run time, which records them in the index.
pub fn filter_resumed(
    cfg: &ExecConfig,
    tasks: Vec<FetchTask>,
) -> Result<(Vec<FetchTask>, u64), ExecError> {
    if !cfg.resume || !cfg.incremental {
        return Ok((tasks, 0));
    }
    let io = |path: PathBuf| move |source| ExecError::Io { path, source };
    let index = CoverageIndex::load(&cfg.state_root, &cfg.scope).map_err(io(
        crate::store::coverage_index::index_dir(&cfg.state_root, &cfg.scope),
    ))?;
    let legacy = if index.is_empty() {
        Some(
            summary::load_resume_state(&cfg.state_root, &cfg.scope)
                .map_err(io(cfg.state_root.clone()))?,
        )
    } else {
        None
    };
    // Windows are shared by every contract of a cell: their session span, computed once.
    type Span = Option<(u32, u32)>;
    let mut windows: HashMap<(DateTime<Utc>, IbDuration), Span> = HashMap::new();
    let scope_dir = parquet::scope_dir(&cfg.output_root, &cfg.scope);
    let mut files: HashMap<String, Option<FinalRuns>> = HashMap::new();
    let mut parsed: HashMap<String, Option<FinalRuns>> = HashMap::new();
    let mut checked = HashSet::new();
    let before = tasks.len();
    let left: Vec<FetchTask> = tasks
        .into_iter()
        .filter(|t| {
            let rel = relative_bar_path(t);
            let runs = files.entry(rel.clone()).or_insert_with(|| {
                let path = scope_dir.join(&rel);
                let text = index.current_text(&rel, &path)?;
                parsed
                    .entry(text.to_string())
                    .or_insert_with(|| FinalRuns::parse(text))
                    .clone()
            });
            let done = match runs {
                Some(runs) => windows
                    .entry((t.end, t.duration))
                    .or_insert_with(|| window_ordinals(&window_units(t.end, t.duration)))
                    .is_some_and(|(a, b)| runs.covers(a, b)),
                None => legacy.as_ref().is_some_and(|st| {
                    st.done_without_file(&t.id) && st.is_done(&t.id, &mut checked)
                }),
            };
            !done
        })
        .collect();
    let skipped = (before - left.len()) as u64;
    Ok((left, skipped))
}

/// Everything that writes one output file, in phase (depends-on) then window order: one series
/// per file, so two phases writing the same file never race.
struct Series {
    phases: Vec<String>,
    symbol: String,
    tasks: Vec<FetchTask>,
}

enum Event {
    Request {
        retry: bool,
    },
    Learned {
        bar: BarSize,
        sessions: usize,
    },
    Finished {
        class: OutcomeClass,
        bars: u64,
    },
    SeriesDone {
        phases: Vec<String>,
        symbol: String,
    },
    Reconnected,
    GatewayLost(String),
    /// A request was answered (any class) after this long: for the timeline.
    Answered {
        class: OutcomeClass,
        latency: Duration,
    },
    /// A request found the connection gone (an outage starts): for the timeline.
    Disconnected,
    /// A finished task's summary line could not be written: the task is not done.
    WriteFailed,
}

struct Shared {
    cfg: ExecConfig,
    gateway: Gateway,
    governor: Arc<PacingGovernor>,
    summary: Arc<Mutex<SummaryWriter>>,
    events: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
    lost: watch::Sender<Option<String>>,
    reconnecting: tokio::sync::Mutex<()>,
    today: chrono::NaiveDate,
    /// Coverage of files as the run started (fast path for files without a Parquet record).
    index: CoverageIndex,
    index_writer: Arc<Mutex<IndexWriter>>,
    /// Coverage of series without a file recorded in this run (the index above is as of the
    /// start).
    fileless: Mutex<HashMap<String, FileCoverage>>,
    limits: Mutex<LearnedLimits>,
    probes: Mutex<HashMap<BarSize, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests hold a read guard while in flight; a suspect task sent alone takes the write
    /// guard (tokio's lock is fair: new requests wait behind it).
    solo: tokio::sync::RwLock<()>,
}

/// Per bar size, what this run learned about the gateway's duration limit (in sessions).
#[derive(Default)]
struct LearnedLimits {
    /// Longest window that answered with bars.
    confirmed: HashMap<BarSize, usize>,
    /// Windows are split to this many sessions (a longer one answered zero bars or too long).
    learned: HashMap<BarSize, usize>,
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        self.cfg.now.unwrap_or_else(Utc::now)
    }

    /// Coverage of a series without a file (all-empty so far): recorded earlier in this run, or
    /// in the index by an earlier one.
    fn index_entry(&self, rel: &str, path: &std::path::Path) -> Option<FileCoverage> {
        if !path.exists() {
            if let Some(c) = self.fileless.lock().ok().and_then(|m| m.get(rel).cloned()) {
                return Some(c);
            }
        }
        self.index.current(rel, path)
    }

    /// Note a series' coverage for the rest of this run (series without a file live only here
    /// and in the index).
    fn note_coverage(&self, rel: &str, path: &std::path::Path, cov: &FileCoverage) {
        if let Ok(mut m) = self.fileless.lock() {
            if path.exists() {
                m.remove(rel);
            } else {
                m.insert(rel.to_string(), cov.clone());
            }
        }
    }

    /// Append a series' coverage to the index. Called after the task's summary record is
    /// written: a run killed in between leaves the index stale (the file's fingerprint no longer
    /// matches), so the task is planned again from the file and recorded UP_TO_DATE.
    async fn persist_coverage(&self, rel: &str, path: &std::path::Path, cov: &FileCoverage) {
        let (w, rel, path, cov, now) = (
            self.index_writer.clone(),
            rel.to_string(),
            path.to_path_buf(),
            cov.clone(),
            Utc::now(),
        );
        let res = tokio::task::spawn_blocking(move || {
            w.lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .record(&rel, &path, &cov, now)
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot append to the coverage index: {e}"),
            Err(e) => tracing::error!("coverage index task failed: {e}"),
        }
    }

    fn learned_limit(&self, bar: BarSize) -> Option<usize> {
        self.limits.lock().ok()?.learned.get(&bar).copied()
    }

    fn confirmed(&self, bar: BarSize, sessions: usize) -> bool {
        self.limits
            .lock()
            .map(|l| l.confirmed.get(&bar).is_some_and(|c| *c >= sessions))
            .unwrap_or(false)
    }

    fn confirm(&self, bar: BarSize, sessions: usize) {
        if let Ok(mut l) = self.limits.lock() {
            let c = l.confirmed.entry(bar).or_default();
            *c = (*c).max(sessions);
        }
    }

    fn learn(&self, bar: BarSize, sessions: usize) {
        if let Ok(mut l) = self.limits.lock() {
            let e = l.learned.entry(bar).or_insert(sessions);
            *e = (*e).min(sessions);
        }
        let _ = self.events.send(Event::Learned { bar, sessions });
    }

    fn probe_lock(&self, bar: BarSize) -> Arc<tokio::sync::Mutex<()>> {
        match self.probes.lock() {
            Ok(mut m) => m.entry(bar).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

/// Run `tasks` (already resume-filtered) against the gateway. `stop` turns true on Ctrl-C:
/// dispatch stops, in-flight requests finish or time out, the summary is flushed.
pub async fn execute(
    tasks: Vec<FetchTask>,
    resumed: u64,
    skipped: Vec<SummaryRecord>,
    cfg: ExecConfig,
    reporter: &mut dyn Reporter,
    stop: watch::Receiver<bool>,
) -> Result<RunReport, ExecError> {
    let run_dir = summary::run_dir(&cfg.state_root, &cfg.scope, &cfg.run_id);
    let io_err = |source| ExecError::Io {
        path: run_dir.clone(),
        source,
    };
    let mut writer =
        SummaryWriter::new(run_dir.clone(), cfg.batch_index, cfg.batch_count).map_err(io_err)?;
    for rec in &skipped {
        writer.append(rec).map_err(io_err)?;
    }
    let index = tokio::task::block_in_place(|| CoverageIndex::load(&cfg.state_root, &cfg.scope))
        .map_err(|source| ExecError::Io {
            path: crate::store::coverage_index::index_dir(&cfg.state_root, &cfg.scope),
            source,
        })?;
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
        super::reconnect::connect_with_retry(&cfg.gateway, cfg.reconnect_for, &stop).await?;
    let governor = PacingGovernor::new(cfg.governor.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (lost_tx, _) = watch::channel(None);
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        gateway,
        governor: governor.clone(),
        summary: Arc::new(Mutex::new(writer)),
        events: tx,
        stop: stop.clone(),
        lost: lost_tx,
        reconnecting: tokio::sync::Mutex::new(()),
        today: crate::calendar::to_ny(cfg.now.unwrap_or_else(Utc::now)).date_naive(),
        index,
        index_writer: index_writer.clone(),
        fileless: Mutex::new(HashMap::new()),
        limits: Mutex::new(LearnedLimits::default()),
        probes: Mutex::new(HashMap::new()),
        solo: tokio::sync::RwLock::new(()),
    });

    // The files this run may write or check: the lake index is refreshed for them at the end.
    let touched: Vec<String> = tasks.iter().map(relative_bar_path).collect();
    // Group into series (one per output file), keeping the manifest's order.
    let rank = phase_ranks(&cfg.phase_deps);
    let mut order: Vec<(i64, String, BarSize)> = Vec::new();
    let mut groups: HashMap<(i64, String, BarSize), Series> = HashMap::new();
    for t in tasks {
        let key = (t.con_id, t.what.clone(), t.bar_size);
        let s = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Series {
                phases: Vec::new(),
                symbol: t.symbol.clone(),
                tasks: Vec::new(),
            }
        });
        if !s.phases.contains(&t.phase) {
            s.phases.push(t.phase.clone());
        }
        s.tasks.push(t);
    }
    let mut remaining: HashMap<(String, String), usize> = HashMap::new();
    let mut stats = RunStats {
        resumed,
        ..Default::default()
    };
    for rec in &skipped {
        *stats.by_status.entry(rec.status.clone()).or_default() += 1;
        stats.total += 1;
    }
    let mut series_in_order = Vec::new();
    for key in order {
        if let Some(mut s) = groups.remove(&key) {
            s.tasks.sort_by(|a, b| {
                let ra = rank.get(&a.phase).copied().unwrap_or(0);
                let rb = rank.get(&b.phase).copied().unwrap_or(0);
                (ra, &a.phase, a.window).cmp(&(rb, &b.phase, b.window))
            });
            stats.total += s.tasks.len() as u64;
            for p in &s.phases {
                *remaining.entry((p.clone(), s.symbol.clone())).or_default() += 1;
            }
            series_in_order.push(s);
        }
    }
    let deps = cfg.phase_deps.clone();
    // A series waits while a phase it holds depends on a phase with unfinished series of the
    // symbol other than itself (its own tasks run in depends-on order).
    let blocked = |s: &Series, remaining: &HashMap<(String, String), usize>| {
        s.phases.iter().any(|phase| {
            deps.get(phase).is_some_and(|ds| {
                ds.iter().any(|d| {
                    let open = remaining
                        .get(&(d.clone(), s.symbol.clone()))
                        .copied()
                        .unwrap_or(0);
                    open > usize::from(s.phases.contains(d))
                })
            })
        })
    };
    // Ready series in manifest order; series waiting for a phase they depend on, per symbol,
    // released when that symbol's series of the phase are all done (no rescans of the queue).
    let mut ready: VecDeque<Series> = VecDeque::new();
    let mut waiting: HashMap<String, Vec<Series>> = HashMap::new();
    for s in series_in_order {
        if blocked(&s, &remaining) {
            waiting.entry(s.symbol.clone()).or_default().push(s);
        } else {
            ready.push_back(s);
        }
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
    let mut active = 0usize;
    let max_active = cfg.active_series.max(1);
    let mut joins = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut interrupted = false;
    let mut gateway_lost = None;
    let mut stop_rx = stop.clone();
    // The HMDS farm's state for the timeline (the governor follows it on its own).
    let mut farm_rx = shared.gateway.hmds_down();
    let mut farm_open = true;
    let mut farm_down = false;
    // Once stopped, in-flight requests get STOP_GRACE to finish; then their series are
    // abandoned (not recorded: the next run does them).
    let mut grace_over: Option<tokio::time::Instant> = None;
    loop {
        let stopping = interrupted || gateway_lost.is_some();
        if !stopping {
            while active < max_active {
                let Some(s) = ready.pop_front() else { break };
                active += 1;
                joins.spawn(run_series(shared.clone(), s));
            }
        }
        if active == 0 && (ready.is_empty() || stopping) {
            // Anything still waiting depends on work that did not finish in this run.
            break;
        }
        tokio::select! {
            Some(ev) = rx.recv() => {
                feed_timeline(&mut timeline, &ev);
                if let Some((phases, symbol)) = count_event(&mut stats, &mut gateway_lost, ev) {
                    active -= 1;
                    for phase in phases {
                        let key = (phase, symbol.clone());
                        if let Some(n) = remaining.get_mut(&key) { *n = n.saturating_sub(1); }
                    }
                    if let Some(list) = waiting.remove(&symbol) {
                        let (now, later): (Vec<Series>, Vec<Series>) =
                            list.into_iter().partition(|s| !blocked(s, &remaining));
                        ready.extend(now);
                        if !later.is_empty() { waiting.insert(symbol.clone(), later); }
                    }
                }
            }
            Some(res) = joins.join_next(), if !joins.is_empty() => {
                if let Err(e) = res { tracing::error!("series task failed: {e}"); }
            }
            _ = stop_rx.changed() => {
                if *stop_rx.borrow() && !interrupted {
                    interrupted = true;
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
                        record_farm_state(&mut timeline, down);
                    }
                }
                Err(_) => farm_open = false,
            },
            _ = tick.tick() => {}
        }
        stats.elapsed_secs = started.elapsed().as_secs_f64();
        stats.governor = governor.stats();
        timeline.tick(Utc::now(), &stats.governor);
        reporter.progress(&stats);
    }
    while joins.join_next().await.is_some() {}
    while let Ok(ev) = rx.try_recv() {
        feed_timeline(&mut timeline, &ev);
        let _ = count_event(&mut stats, &mut gateway_lost, ev);
    }
    stats.elapsed_secs = started.elapsed().as_secs_f64();
    stats.governor = governor.stats();
    timeline.end(
        Utc::now(),
        &stats.governor,
        stats.requests,
        stats.reconnects,
        interrupted,
        gateway_lost.as_deref(),
    );
    reporter.finish(&stats);
    let compacted = index_writer
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))
        .and_then(|mut w| w.compact(&cfg.state_root, &cfg.scope));
    if let Err(e) = compacted {
        tracing::error!("cannot compact the coverage index: {e}");
    }
    let scope_dir = parquet::scope_dir(&cfg.output_root, &cfg.scope);
    let indexed =
        tokio::task::block_in_place(|| crate::lake::index::refresh_after_run(&scope_dir, &touched));
    if let Err(e) = indexed {
        tracing::error!("cannot refresh the lake index: {e}");
    }
    let run_file = run_dir.join(format!("run_{}of{}.json", cfg.batch_index, cfg.batch_count));
    if let Err(e) = crate::store::atomic::write_json(&run_file, &stats) {
        stats.write_failures += 1;
        tracing::error!("cannot write the run totals {}: {e}", run_file.display());
    }
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

/// Depth of each phase in the depends-on graph (0: no dependencies), so one series runs its
/// phases' windows in dependency order.
fn phase_ranks(deps: &BTreeMap<String, Vec<String>>) -> HashMap<String, usize> {
    fn rank(
        p: &str,
        deps: &BTreeMap<String, Vec<String>>,
        memo: &mut HashMap<String, usize>,
        depth: usize,
    ) -> usize {
        if let Some(r) = memo.get(p) {
            return *r;
        }
        let r = if depth > deps.len() {
            0 // a cycle (refused by the plan compiler): do not recurse forever
        } else {
            deps.get(p)
                .map(|ds| {
                    ds.iter()
                        .map(|d| rank(d, deps, memo, depth + 1) + 1)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        };
        memo.insert(p.to_string(), r);
        r
    }
    let mut memo = HashMap::new();
    for p in deps.keys() {
        rank(p, deps, &mut memo, 0);
    }
    memo
}

/// Count an event into the stats; a finished series is handed back (phases, symbol) for the
/// scheduler's bookkeeping.
fn count_event(
    stats: &mut RunStats,
    gateway_lost: &mut Option<String>,
    ev: Event,
) -> Option<(Vec<String>, String)> {
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
        if *sh.stop.borrow() || sh.lost.borrow().is_some() {
            break;
        }
        run_task_caught(&sh, t, i == 0).await;
    }
    let _ = sh.events.send(Event::SeriesDone {
        phases: s.phases,
        symbol: s.symbol,
    });
}

/// The output file's identity of a task (shared with `verify`, which must read the same file).
pub(crate) fn series_key(t: &FetchTask) -> SeriesKey {
    SeriesKey {
        symbol: t.symbol.clone(),
        con_id: t.con_id,
        expiry: t.expiry,
        strike: t.strike,
        right: t.right,
        bar_size: t.bar_size,
        what: t.what.clone(),
        local_symbol: t.local_symbol.clone(),
        trading_class: t.trading_class.clone(),
        multiplier: t.multiplier,
        exchange: t.exchange.clone(),
        currency: t.currency.clone(),
    }
}

/// A bar file's path relative to the scope's bar directory (the coverage index's key).
pub(crate) fn relative_bar_path(t: &FetchTask) -> String {
    format!(
        "{}/{}/{}/{}.parquet",
        t.symbol,
        t.con_id,
        t.what,
        t.bar_size.file_stem()
    )
}

fn hist_request(t: &FetchTask, req: &Request) -> HistRequest {
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

/// What one request of a task came to.
enum Sent {
    /// Bars (possibly none: a silent empty answer).
    Bars(Vec<FetchedBar>),
    /// A final failure (EMPTY included).
    Failed(crate::ib::Failure),
    /// The run is stopping: not recorded, the next run does it.
    Stopped,
}

/// The running totals of one task, for its summary record.
#[derive(Default)]
struct TaskTally {
    bars: Vec<FetchedBar>,
    written: u64,
    attempts: u32,
    latency_ms: Option<u64>,
    quarantined: Option<String>,
    requests: Vec<String>,
    splits: u32,
}

async fn run_task(sh: &Arc<Shared>, t: &FetchTask, first_of_series: bool) {
    let cfg = &sh.cfg;
    let key = series_key(t);
    let path = parquet::bar_file_path(&cfg.output_root, &cfg.scope, &key);
    let rel = relative_bar_path(t);
    let started_at = Utc::now();
    let now = sh.now();
    let units = window_units(t.end, t.duration);
    // Read the file (retrying transient I/O errors); a file that cannot be decoded plans as
    // absent and is quarantined by the merge.
    let file = {
        let p2 = path.clone();
        let mut tries = 0;
        loop {
            let p3 = p2.clone();
            let res = tokio::task::spawn_blocking(move || parquet::read_file(&p3)).await;
            match res {
                Ok(Ok(f)) => break Ok(f),
                Ok(Err(StoreError::Corrupt { .. })) => break Ok(None),
                Ok(Err(e)) if tries < 3 => {
                    tries += 1;
                    tracing::warn!("{e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                }
                Ok(Err(e)) => break Err(e.to_string()),
                Err(e) => break Err(e.to_string()),
            }
        }
    };
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
        None => sh.index_entry(&rel, &path),
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
            Sent::Stopped => return,
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
        let (p2, k2, b2, u2, m2) = (
            path.clone(),
            key.clone(),
            bars.clone(),
            req.units.clone(),
            mode,
        );
        let prior = last_cov.clone();
        let prov = crate::store::provenance::Provenance::of_request(
            &sh.cfg.run_id,
            now,
            req.end,
            req.duration,
            t.bar_size,
            &t.what,
            t.use_rth,
        );
        let merged = tokio::task::spawn_blocking(move || {
            parquet::merge_units(&p2, &k2, &b2, &u2, m2, prior.as_ref(), &prov)
        })
        .await;
        mode = WriteMode::Merge;
        match merged {
            Ok(Ok(m)) => {
                tally.written += m.appended as u64;
                if let Some(q) = m.quarantined {
                    tally.quarantined = Some(q.display().to_string());
                }
                sh.note_coverage(&rel, &path, &m.coverage);
                last_cov = Some(m.coverage);
                merged_any = true;
            }
            Ok(Err(e)) => {
                tracing::error!("{e}");
                failure = Some(crate::ib::Failure {
                    class: OutcomeClass::Other,
                    code: None,
                    message: e.to_string(),
                });
                break;
            }
            Err(e) => {
                failure = Some(crate::ib::Failure {
                    class: OutcomeClass::Other,
                    code: None,
                    message: e.to_string(),
                });
                break;
            }
        }
        tally.bars.extend(bars);
    }
    let out = path.exists().then(|| path.display().to_string());
    let (class, code, message) = match failure {
        Some(f) => (f.class, f.code, Some(f.message)),
        None => {
            let all_empty = last_cov.as_ref().is_some_and(|c| {
                units.iter().all(|u| {
                    c.session(u.session().date)
                        .is_some_and(|cv| cv.answer == Answer::Empty)
                        || matches!(u, Unit::Chunk { .. }) && tally.bars.is_empty()
                })
            });
            if all_empty {
                let (code, message) = empty_answer
                    .map(|f| (f.code, Some(f.message)))
                    .unwrap_or((None, None));
                (OutcomeClass::Empty, code, message)
            } else {
                (OutcomeClass::Ok, None, None)
            }
        }
    };
    let n = tally.bars.len() as u64;
    let rec = record(sh, t, started_at, class, tally, code, message, out);
    write_record(sh, rec, class, n).await;
    if let (true, Some(c)) = (merged_any, &last_cov) {
        sh.persist_coverage(&rel, &path, c).await;
    }
}

/// Send one request with retries and reconnects (the task's attempts are counted in `tally`).
/// A task in flight at repeated disconnects is sent alone, and set aside (QUARANTINED) when
/// the connection drops even then, so it cannot disconnect everyone else again.
async fn send(
    sh: &Arc<Shared>,
    t: &FetchTask,
    req: &Request,
    empty_end: bool,
    tally: &mut TaskTally,
) -> Sent {
    let cfg = &sh.cfg;
    let mut hreq = hist_request(t, req);
    if empty_end {
        hreq.end = None;
    }
    let expired = t.expiry < sh.today;
    let small = t.bar_size.is_small().then(|| SmallBarKey {
        contract: format!("{}|{}|{}", t.con_id, t.exchange, t.what),
        request: format!(
            "{}|{}|{}|{}|{}",
            t.con_id, t.what, t.bar_size, req.end, req.duration
        ),
        weight: if t.what == "BID_ASK" { 2 } else { 1 },
    });
    let mut attempts = 0u32;
    let mut drops = DropTracker::default();
    let mut farm_timeouts = 0u32;
    loop {
        if *sh.stop.borrow() || sh.lost.borrow().is_some() {
            return Sent::Stopped; // not recorded (the run exits non-zero): the next run does it
        }
        let solo = drops.solo();
        let (_shared_guard, _solo_guard) = if solo {
            tracing::warn!(
                "{} {} conId {} was in flight at {} disconnects: sending it alone",
                t.phase,
                t.symbol,
                t.con_id,
                drops.disconnects
            );
            (None, Some(sh.solo.write().await))
        } else {
            (Some(sh.solo.read().await), None)
        };
        let generation = sh.gateway.generation();
        let permit = sh.governor.acquire(small.as_ref()).await;
        attempts += 1;
        tally.attempts += 1;
        let _ = sh.events.send(Event::Request {
            retry: attempts > 1,
        });
        let result = sh.gateway.historical(&hreq, expired).await;
        drop((_shared_guard, _solo_guard));
        let class = match &result {
            Ok(_) => OutcomeClass::Ok,
            Err(f) => f.class,
        };
        let latency = permit.finish(class);
        tally.latency_ms = Some(latency.as_millis() as u64);
        let _ = sh.events.send(Event::Answered { class, latency });
        match result {
            Ok(bars) => return Sent::Bars(bars),
            Err(f) if f.class == OutcomeClass::Disconnected => {
                // Late answers from a connection already replaced do not reopen the outage.
                if sh.gateway.generation() == generation {
                    let _ = sh.events.send(Event::Disconnected);
                }
                tracing::warn!(
                    "connection lost during {} {} conId {}: {f}; reconnecting",
                    t.phase,
                    t.symbol,
                    t.con_id
                );
                if let Some((class, message)) = drops.dropped(solo, &f.message) {
                    tracing::error!(
                        "{} {} conId {} {}: {class}: {message}",
                        t.phase,
                        t.symbol,
                        t.con_id,
                        t.bar_size
                    );
                    // Let the connection come back for the others before leaving.
                    reconnect(sh, generation).await;
                    return Sent::Failed(crate::ib::Failure {
                        class,
                        code: f.code,
                        message,
                    });
                }
                if !reconnect(sh, generation).await {
                    return Sent::Stopped;
                }
                attempts -= 1; // not the task's fault
                tally.attempts -= 1;
            }
            Err(f)
                if f.class == OutcomeClass::Timeout
                    && sh.governor.farm_paused()
                    && farm_timeouts < MAX_FARM_TIMEOUTS =>
            {
                // The farm broke while this request was out: not the request's fault. The
                // governor holds the retry until the farm is back.
                farm_timeouts += 1;
                attempts -= 1;
                tally.attempts -= 1;
                tracing::info!(
                    "{} {} conId {} {}: {f} while the farm is broken; sent again once it is back",
                    t.phase,
                    t.symbol,
                    t.con_id,
                    t.bar_size
                );
            }
            Err(f) if f.class.is_retryable() && attempts < cfg.max_attempts => {
                let backoff = cfg
                    .retry_backoff
                    .saturating_mul(1 << (attempts - 1).min(6))
                    .min(Duration::from_secs(60));
                let backoff = super::reconnect::jittered(backoff);
                tracing::info!(
                    "{} {} conId {} {}: {f}; retry {} of {} in {backoff:.1?}",
                    t.phase,
                    t.symbol,
                    t.con_id,
                    t.bar_size,
                    attempts + 1,
                    cfg.max_attempts
                );
                tokio::time::sleep(backoff).await;
            }
            Err(f) => return Sent::Failed(f),
        }
    }
}

/// series goes on, so the scheduler always hears that the series finished.
async fn run_task_caught(sh: &Arc<Shared>, t: &FetchTask, first_of_series: bool) {
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

/// Reconnect after a drop seen on connection `generation`. Returns false when the run must stop.
async fn reconnect(sh: &Arc<Shared>, generation: u64) -> bool {
    let _guard = sh.reconnecting.lock().await;
    if sh.lost.borrow().is_some() {
        return false;
    }
    match super::reconnect::reconnect_with_backoff(
        &sh.gateway,
        &sh.governor,
        generation,
        sh.cfg.reconnect_for,
        &sh.stop,
    )
    .await
    {
        Ok(true) => {
            let _ = sh.events.send(Event::Reconnected);
            true
        }
        Ok(false) => true,
        Err(why) => {
            if !*sh.stop.borrow() {
                let _ = sh.lost.send(Some(why.clone()));
                let _ = sh.events.send(Event::GatewayLost(why));
            }
            false
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
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

async fn write_record(sh: &Arc<Shared>, rec: SummaryRecord, class: OutcomeClass, bars: u64) {
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
