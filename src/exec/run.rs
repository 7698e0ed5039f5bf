//! The scheduler: runs fetch tasks through the governor and the gateway, one file at a time per
//! series, with retries, reconnects, incremental merges and a summary line per finished task.
//!
//! A *series* is one output file (contract x what x bar size); its windows run in order, never
//! two at once, so merges into one file never race. Phases run per symbol in `depends-on` order:
//! a symbol's series of a phase start once that symbol's series of every phase it depends on are
//! finished.

use super::governor::{GovernorConfig, PacingGovernor};
use super::incremental::{plan_request, Plan};
use super::report::{Reporter, RunStats};
use super::safety::{
    follow_farm, panic_message, AbortOnDrop, DropTracker, MAX_FARM_TIMEOUTS, STOP_GRACE,
};
use super::small_bars::SmallBarKey;
use crate::bars::Duration as IbDuration;
use crate::compile::task::FetchTask;
use crate::ib::{FetchedBar, Gateway, GatewayConfig, HistRequest, OptionSpec, OutcomeClass};
use crate::store::parquet::{self, SeriesKey};
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
}

/// Take the lock for a scope and batch.
pub fn lock_scope(cfg: &ExecConfig) -> Result<RunLock, ExecError> {
    let dir = cfg.state_root.join("run_logs").join(&cfg.scope);
    std::fs::create_dir_all(&dir).map_err(|source| ExecError::Io {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!(".lock-{}of{}", cfg.batch_index, cfg.batch_count));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ExecError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(_) => Err(ExecError::Locked {
            scope: cfg.scope.clone(),
            batch: format!("{}/{}", cfg.batch_index, cfg.batch_count),
            path,
        }),
    }
}

/// Drop tasks an earlier run finished (summary says OK/EMPTY/UP_TO_DATE and the file is there).
pub fn filter_resumed(
    cfg: &ExecConfig,
    tasks: Vec<FetchTask>,
) -> Result<(Vec<FetchTask>, u64), ExecError> {
    if !cfg.resume {
        return Ok((tasks, 0));
    }
    let state = summary::load_resume_state(&cfg.state_root, &cfg.scope).map_err(|source| {
        ExecError::Io {
            path: cfg.state_root.clone(),
            source,
        }
    })?;
    let mut checked = HashSet::new();
    let before = tasks.len();
    let left: Vec<FetchTask> = tasks
        .into_iter()
        .filter(|t| !state.is_done(&t.id, &mut checked))
        .collect();
    let skipped = (before - left.len()) as u64;
    Ok((left, skipped))
}

struct Series {
    phase: String,
    symbol: String,
    tasks: Vec<FetchTask>,
}

enum Event {
    Request {
        retry: bool,
    },
    Finished {
        class: OutcomeClass,
        bars: u64,
    },
    SeriesDone {
        phase: String,
        symbol: String,
    },
    Reconnected,
    GatewayLost(String),
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
    /// Requests hold a read guard while in flight; a suspect task sent alone takes the write
    /// guard (tokio's lock is fair: new requests wait behind it).
    solo: tokio::sync::RwLock<()>,
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
        today: crate::calendar::to_ny(Utc::now()).date_naive(),
        solo: tokio::sync::RwLock::new(()),
    });

    // Group into series, keeping the manifest's order.
    let mut order: Vec<(String, i64, String, crate::bars::BarSize)> = Vec::new();
    let mut groups: HashMap<(String, i64, String, crate::bars::BarSize), Series> = HashMap::new();
    for t in tasks {
        let key = (t.phase.clone(), t.con_id, t.what.clone(), t.bar_size);
        let s = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Series {
                phase: t.phase.clone(),
                symbol: t.symbol.clone(),
                tasks: Vec::new(),
            }
        });
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
            s.tasks.sort_by_key(|t| t.window);
            stats.total += s.tasks.len() as u64;
            *remaining
                .entry((s.phase.clone(), s.symbol.clone()))
                .or_default() += 1;
            series_in_order.push(s);
        }
    }
    let deps = cfg.phase_deps.clone();
    let blocked = |phase: &str, symbol: &str, remaining: &HashMap<(String, String), usize>| {
        deps.get(phase).is_some_and(|ds| {
            ds.iter().any(|d| {
                remaining
                    .get(&(d.clone(), symbol.to_string()))
                    .copied()
                    .unwrap_or(0)
                    > 0
            })
        })
    };
    // Ready series in manifest order; series waiting for a phase they depend on, per symbol,
    // released when that symbol's series of the phase are all done (no rescans of the queue).
    let mut ready: VecDeque<Series> = VecDeque::new();
    let mut waiting: HashMap<String, Vec<Series>> = HashMap::new();
    for s in series_in_order {
        if blocked(&s.phase, &s.symbol, &remaining) {
            waiting.entry(s.symbol.clone()).or_default().push(s);
        } else {
            ready.push_back(s);
        }
    }

    let farm = tokio::spawn(follow_farm(shared.gateway.hmds_down(), governor.clone()));
    let _farm = AbortOnDrop(farm.abort_handle());
    let started = Instant::now();
    let mut active = 0usize;
    let max_active = cfg.active_series.max(1);
    let mut joins = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut interrupted = false;
    let mut gateway_lost = None;
    let mut stop_rx = stop.clone();
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
                if let Some((phase, symbol)) = count_event(&mut stats, &mut gateway_lost, ev) {
                    active -= 1;
                    let key = (phase, symbol);
                    if let Some(n) = remaining.get_mut(&key) { *n = n.saturating_sub(1); }
                    if remaining.get(&key) == Some(&0) {
                        if let Some(list) = waiting.remove(&key.1) {
                            let (now, later): (Vec<Series>, Vec<Series>) =
                                list.into_iter().partition(|s| !blocked(&s.phase, &s.symbol, &remaining));
                            ready.extend(now);
                            if !later.is_empty() { waiting.insert(key.1.clone(), later); }
                        }
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
            _ = tick.tick() => {}
        }
        stats.elapsed_secs = started.elapsed().as_secs_f64();
        stats.governor = governor.stats();
        reporter.progress(&stats);
    }
    while joins.join_next().await.is_some() {}
    while let Ok(ev) = rx.try_recv() {
        let _ = count_event(&mut stats, &mut gateway_lost, ev);
    }
    stats.elapsed_secs = started.elapsed().as_secs_f64();
    stats.governor = governor.stats();
    reporter.finish(&stats);
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

/// Count an event into the stats; a finished series is handed back (phase, symbol) for the
/// scheduler's bookkeeping.
fn count_event(
    stats: &mut RunStats,
    gateway_lost: &mut Option<String>,
    ev: Event,
) -> Option<(String, String)> {
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
        Event::WriteFailed => stats.write_failures += 1,
        Event::GatewayLost(why) => *gateway_lost = Some(why),
        Event::SeriesDone { phase, symbol } => return Some((phase, symbol)),
    }
    None
}

async fn run_series(sh: Arc<Shared>, s: Series) {
    for t in &s.tasks {
        if *sh.stop.borrow() || sh.lost.borrow().is_some() {
            break;
        }
        run_task_caught(&sh, t).await;
    }
    let _ = sh.events.send(Event::SeriesDone {
        phase: s.phase,
        symbol: s.symbol,
    });
}

fn hist_request(t: &FetchTask, duration: IbDuration) -> HistRequest {
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
        what: t.what.clone(),
        bar_size: t.bar_size,
        duration,
        end: Some(t.end),
        use_rth: t.use_rth,
    }
}

async fn run_task(sh: &Arc<Shared>, t: &FetchTask) {
    let cfg = &sh.cfg;
    let key = SeriesKey {
        symbol: t.symbol.clone(),
        con_id: t.con_id,
        expiry: t.expiry,
        strike: t.strike,
        right: t.right,
        bar_size: t.bar_size,
        what: t.what.clone(),
    };
    let path = parquet::bar_file_path(&cfg.output_root, &cfg.scope, &key);
    let started_at = Utc::now();
    let plan = {
        let (t2, p2, inc, res) = (t.clone(), path.clone(), cfg.incremental, cfg.resume);
        tokio::task::spawn_blocking(move || plan_request(&t2, &p2, inc, res))
            .await
            .unwrap_or(Plan::Fetch(t.duration))
    };
    let duration = match plan {
        Plan::UpToDate(why) => {
            let out = path.exists().then(|| path.display().to_string());
            let rec = record(
                sh,
                t,
                t.duration,
                started_at,
                OutcomeClass::UpToDate,
                &[],
                0,
                None,
                Some(why),
                out,
                None,
                0,
                None,
            );
            write_record(sh, rec, OutcomeClass::UpToDate, 0).await;
            return;
        }
        Plan::Fetch(d) => d,
    };
    let req = hist_request(t, duration);
    let expired = t.expiry < sh.today;
    let small = t.bar_size.is_small().then(|| SmallBarKey {
        contract: format!("{}|{}|{}", t.con_id, t.exchange, t.what),
        request: format!(
            "{}|{}|{}|{}|{}",
            t.con_id, t.what, t.bar_size, t.end, duration
        ),
        weight: if t.what == "BID_ASK" { 2 } else { 1 },
    });
    let mut attempts = 0u32;
    let mut drops = DropTracker::default();
    let mut farm_timeouts = 0u32;
    loop {
        if *sh.stop.borrow() || sh.lost.borrow().is_some() {
            return; // not recorded (the run exits non-zero): the next run does it
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
        let _ = sh.events.send(Event::Request {
            retry: attempts > 1,
        });
        let result = sh.gateway.historical(&req, expired).await;
        drop((_shared_guard, _solo_guard));
        let class = match &result {
            Ok(_) => OutcomeClass::Ok,
            Err(f) => f.class,
        };
        let latency = permit.finish(class);
        let latency_ms = Some(latency.as_millis() as u64);
        match result {
            Ok(bars) => {
                let (p2, k2, b2, inc) = (path.clone(), key.clone(), bars.clone(), cfg.incremental);
                let merged = tokio::task::spawn_blocking(move || {
                    parquet::merge_bars(&p2, &k2, &b2, Utc::now(), inc)
                })
                .await;
                let (class, written, quarantined, err) = match merged {
                    Ok(Ok(m)) => (
                        OutcomeClass::Ok,
                        m.appended as u64,
                        m.quarantined.map(|q| q.display().to_string()),
                        None,
                    ),
                    Ok(Err(e)) => (OutcomeClass::Other, 0, None, Some(e.to_string())),
                    Err(e) => (OutcomeClass::Other, 0, None, Some(e.to_string())),
                };
                if let Some(e) = &err {
                    tracing::error!("cannot write {}: {e}", path.display());
                }
                let out = (class == OutcomeClass::Ok && path.exists())
                    .then(|| path.display().to_string());
                let rec = record(
                    sh,
                    t,
                    duration,
                    started_at,
                    class,
                    &bars,
                    written,
                    None,
                    err,
                    out,
                    quarantined,
                    attempts,
                    latency_ms,
                );
                write_record(sh, rec, class, bars.len() as u64).await;
                return;
            }
            Err(f) if f.class == OutcomeClass::Disconnected => {
                tracing::warn!(
                    "connection lost during {} {} conId {}: {f}; reconnecting",
                    t.phase,
                    t.symbol,
                    t.con_id
                );
                let give_up = drops.dropped(solo, &f.message);
                if let Some((class, message)) = &give_up {
                    tracing::error!(
                        "{} {} conId {} {}: {class}: {message}",
                        t.phase,
                        t.symbol,
                        t.con_id,
                        t.bar_size
                    );
                }
                if let Some((class, message)) = give_up {
                    // Let the connection come back for the others before leaving.
                    reconnect(sh, generation).await;
                    let out = path.exists().then(|| path.display().to_string());
                    let rec = record(
                        sh,
                        t,
                        duration,
                        started_at,
                        class,
                        &[],
                        0,
                        f.code,
                        Some(message),
                        out,
                        None,
                        attempts,
                        latency_ms,
                    );
                    write_record(sh, rec, class, 0).await;
                    return;
                }
                if !reconnect(sh, generation).await {
                    return;
                }
                attempts -= 1; // not the task's fault
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
            Err(f) => {
                let out = path.exists().then(|| path.display().to_string());
                // No trades in the missing span of a file that already holds the rest of the
                // window: the window is complete, so the task is OK, not EMPTY.
                let class =
                    if f.class == OutcomeClass::Empty && duration != t.duration && out.is_some() {
                        OutcomeClass::Ok
                    } else {
                        f.class
                    };
                let rec = record(
                    sh,
                    t,
                    duration,
                    started_at,
                    class,
                    &[],
                    0,
                    f.code,
                    Some(f.message.clone()),
                    out,
                    None,
                    attempts,
                    latency_ms,
                );
                write_record(sh, rec, class, 0).await;
                return;
            }
        }
    }
}

/// Run one task, catching a panic: the task is recorded (OTHER, "internal error") and the
/// series goes on, so the scheduler always hears that the series finished.
async fn run_task_caught(sh: &Arc<Shared>, t: &FetchTask) {
    let (sh2, t2) = (sh.clone(), t.clone());
    let started_at = Utc::now();
    let handle = tokio::spawn(async move { run_task(&sh2, &t2).await });
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
        t.duration,
        started_at,
        class,
        &[],
        0,
        None,
        Some(message),
        None,
        None,
        0,
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
    duration: IbDuration,
    started_at: DateTime<Utc>,
    class: OutcomeClass,
    bars: &[FetchedBar],
    written: u64,
    code: Option<i32>,
    message: Option<String>,
    output_path: Option<String>,
    quarantined: Option<String>,
    attempts: u32,
    latency_ms: Option<u64>,
) -> SummaryRecord {
    let reference = sh
        .cfg
        .reference_closes
        .get(&(t.phase.clone(), t.symbol.clone()))
        .copied();
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
        duration: duration.to_string(),
        end: t.end,
        status: class.as_str().to_string(),
        bars: bars.len() as u64,
        bars_written: written,
        first: bars.iter().map(|b| b.ts).min(),
        last: bars.iter().map(|b| b.ts).max(),
        error_code: code,
        error_message: message,
        output_path,
        quarantined,
        attempts,
        latency_ms,
        inflight_limit: Some(sh.governor.stats().limit),
        started_at,
        finished_at: Utc::now(),
        reference_close: reference.map(|r| r.0),
        reference_source: reference.map(|r| r.1),
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
