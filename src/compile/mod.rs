//! Plan + contracts caches -> validated task graph -> manifest, dry-run table and diff.
//!
//! [`compile`] is pure apart from reading the caches (and the clock, only for
//! `end = "last-session"` without [`CompileOptions::now`]): the same plan, caches and options
//! give a byte-identical [`Manifest`].

pub mod diff;
pub mod dryrun;
pub mod graph;
pub mod manifest;
pub mod near_atm;
pub mod plan_json;
pub mod shard;
pub mod task;
pub mod universe;
pub mod windows;

pub use graph::{GraphNode, TaskGraph};
pub use manifest::Manifest;
pub use universe::InputError;

use crate::calendar::{self, OutOfRange};
use crate::plan::{Batching, EndSpec, Select, ValidatedPlan};
use chrono::{DateTime, Utc};
use manifest::*;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

/// Options that are not part of the plan file.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// The current time, to resolve `end = "last-session"` (default: the clock). Tests and
    /// reproducible runs pass it (the CLI's `--now`).
    pub now: Option<DateTime<Utc>>,
    /// Overrides the plan's `[batching]` (the CLI's `--batch-count/--batch-index`).
    pub batching: Option<Batching>,
    /// Directory that relative runtime paths (`contracts-cache`) are resolved against (default:
    /// the process's working directory).
    pub work_dir: Option<PathBuf>,
}

/// The compiled plan.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The manifest (what is written to disk).
    pub manifest: Manifest,
    /// The task graph over the manifest.
    pub graph: TaskGraph,
    /// Notes and warnings for the user (an `end` moved back to the last closed session, a cache
    /// without trading hours), one line each, for stderr.
    pub notes: Vec<String>,
}

/// Why a validated plan could not be compiled. All of these are bad input (exit code 2).
#[derive(Debug, Clone, PartialEq)]
pub enum CompileError {
    /// Contracts caches or directories that are missing, corrupt or violate the cache format.
    Inputs(Vec<InputError>),
    /// A date the trading calendar does not cover.
    Calendar {
        /// What was being computed.
        what: String,
        /// The date.
        source: OutOfRange,
    },
    /// `--batch-index` not below `--batch-count`, or a count of 0.
    BadBatch(Batching),
    /// A cycle in the task graph (the plan validation catches phase cycles first).
    Cycle(Vec<String>),
    /// More tasks than [`MAX_TASKS`]: far beyond a weekend, and beyond the memory budget.
    TooLarge {
        /// The phase that crossed the limit.
        phase: String,
        /// Tasks planned up to and including that phase.
        tasks: u64,
    },
}

/// Most fetch tasks one manifest may hold: about 2 GB of memory while compiling, and weeks of
/// requests at IB's pace. Larger universes are split with `--batch-count`.
pub const MAX_TASKS: u64 = 5_000_000;

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Inputs(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            CompileError::Calendar { what, source } => write!(f, "{what}: {source}"),
            CompileError::BadBatch(b) => write!(
                f,
                "batch index {} is out of range for batch count {} (allowed: 0..={})",
                b.index,
                b.count,
                b.count.saturating_sub(1)
            ),
            CompileError::Cycle(names) => {
                write!(
                    f,
                    "dependency cycle in the task graph: {}",
                    names.join(" -> ")
                )
            }
            CompileError::TooLarge { phase, tasks } => write!(
                f,
                "phase `{phase}` brings the plan to {tasks} tasks, more than {MAX_TASKS}: split the universe with --batch-count, or use longer windows (`[limits]`) or fewer bar cells"
            ),
        }
    }
}

impl std::error::Error for CompileError {}

/// Compile a validated plan: resolve the end, shard the universe, read the caches, split the
/// windows, plan the `all` tasks and the near-ATM selections, build and check the graph.
pub fn compile(plan: &ValidatedPlan, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let batch = opts.batching.unwrap_or(plan.batching);
    if batch.count == 0 || batch.index >= batch.count {
        return Err(CompileError::BadBatch(batch));
    }

    // End session.
    let mut notes = Vec::new();
    let (spec, end, until) = match plan.end {
        EndSpec::Date(d) => {
            let calendar_err = |source| CompileError::Calendar {
                what: "resolving `end`".into(),
                source,
            };
            let mut s = calendar::session_on_or_before(d).map_err(calendar_err)?;
            // A session still open has no complete bars yet: today's date means the last
            // closed session, as `last-session` does.
            let now = opts.now.unwrap_or_else(Utc::now);
            if s.date == calendar::to_ny(now).date_naive() && now < s.close {
                let prev = s.date.pred_opt().unwrap_or(s.date);
                let before = calendar::session_on_or_before(prev).map_err(calendar_err)?;
                notes.push(format!(
                    "note: end {d} is today and its session is still open (closes {} New York): planning up to the last closed session, {}; to include today up to an instant, give it: end = \"{}\"",
                    calendar::to_ny(s.close).format("%H:%M"),
                    before.date,
                    calendar::to_ny(now).format("%Y-%m-%dT%H:%M:00%:z"),
                ));
                s = before;
            }
            (d.format("%Y-%m-%d").to_string(), s, None)
        }
        EndSpec::Instant(t) => {
            let calendar_err = |source| CompileError::Calendar {
                what: "resolving `end`".into(),
                source,
            };
            // The session the instant is in or after; before a session's open, the one before.
            let mut s = calendar::session_on_or_before(calendar::to_ny(t).date_naive())
                .map_err(calendar_err)?;
            if t <= s.open {
                let prev = s.date.pred_opt().unwrap_or(s.date);
                s = calendar::session_on_or_before(prev).map_err(calendar_err)?;
            }
            let now = opts.now.unwrap_or_else(Utc::now);
            let late = crate::hours::MAX_OFFSET_MINUTES;
            if t < crate::hours::class_close(&s, late) && t > s.open {
                notes.push(format!(
                    "note: end {} is inside the session of {}: its windows end there{}",
                    calendar::to_ny(t).format("%Y-%m-%d %H:%M %Z"),
                    s.date,
                    if now < s.close {
                        "; bars of a session still open are provisional and fetched again once it has closed"
                    } else {
                        ""
                    }
                ));
            }
            (calendar::to_ny(t).to_rfc3339(), s, Some(t))
        }
        EndSpec::LastSession => (
            "last-session".to_string(),
            calendar::last_complete_session(opts.now.unwrap_or_else(Utc::now)).map_err(
                |source| CompileError::Calendar {
                    what: "resolving `end = \"last-session\"`".into(),
                    source,
                },
            )?,
            None,
        ),
    };

    // Phases and their windows.
    let mut phases = Vec::with_capacity(plan.phases.len());
    for p in &plan.phases {
        let mut cells = Vec::with_capacity(p.bars.len());
        let mut sorted = p.bars.clone();
        sorted.sort();
        for cell in sorted {
            let limit = plan.limit(cell.size);
            let ws = windows::split_until(cell, limit, &end, 0, until).map_err(|source| {
                CompileError::Calendar {
                    what: format!(
                        "phase `{}`: windows of `{} x {}` ending {}",
                        p.name, cell.size, cell.duration, end.date
                    ),
                    source,
                }
            })?;
            cells.push(CellInfo {
                size: cell.size,
                duration: cell.duration,
                limit,
                windows: ws,
                class_windows: BTreeMap::new(),
            });
        }
        phases.push(PhaseInfo {
            name: p.name.clone(),
            what: p.what.clone(),
            use_rth: p.use_rth,
            select: p.select.clone(),
            depends_on: p.depends_on.clone(),
            cells,
        });
    }

    // Universe shard and caches.
    let mut shard: Vec<&str> = plan
        .universe
        .symbols
        .iter()
        .map(String::as_str)
        .filter(|s| shard::in_shard(s, batch))
        .collect();
    shard.sort_unstable();
    let cache_dir = match &opts.work_dir {
        Some(w) if plan.universe.contracts_cache.is_relative() => {
            w.join(&plan.universe.contracts_cache)
        }
        _ => plan.universe.contracts_cache.clone(),
    };
    let available =
        universe::scan_cache_dir(&cache_dir).map_err(|e| CompileError::Inputs(vec![e]))?;
    let mut missing = Vec::new();
    let mut to_load = Vec::new();
    for s in &shard {
        match available.get(*s) {
            Some((date, path)) => to_load.push((*s, *date, path.clone())),
            None => missing.push(s.to_string()),
        }
    }
    if plan.universe.on_missing_cache == crate::plan::OnMissingCache::Fail && !missing.is_empty() {
        return Err(CompileError::Inputs(
            missing
                .iter()
                .map(|s| InputError {
                    file: cache_dir.clone(),
                    line: 1,
                    col: 1,
                    message: format!(
                        "no contracts cache `{s}_YYYY-MM-DD.json` for symbol `{s}` (universe.on-missing-cache = \"fail\")"
                    ),
                })
                .collect(),
        ));
    }
    let caches = load_caches(&to_load)?;
    for (file_name, cache) in &caches {
        notes.extend(universe::hours_warning(&cache_dir.join(file_name), cache));
        let u = &cache.underlying;
        let declared = if plan.universe.indices.contains(&u.symbol) {
            crate::cache::UnderlyingSecType::Ind
        } else {
            crate::cache::UnderlyingSecType::Stk
        };
        if u.sec_type != declared {
            notes.push(format!(
                "warning: {}: {} was discovered as {} but the plan's universe.indices makes it {}; run `discover` again",
                cache_dir.join(file_name).display(),
                u.symbol,
                u.sec_type,
                declared
            ));
        }
    }
    add_class_windows(&mut phases, &caches, &end, until)?;

    // Tasks and selections.
    let end_date = end.date;
    let mut tasks = Vec::new();
    let mut selections = Vec::new();
    let mut expired = Vec::new();
    let mut symbols = Vec::with_capacity(caches.len());
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut duplicates = 0u64;
    let mut per_phase: BTreeMap<String, u64> = BTreeMap::new();

    for (file_name, cache) in &caches {
        let n_expired = cache
            .contracts
            .iter()
            .filter(|c| c.expiry <= end_date)
            .count();
        symbols.push(SymbolInfo {
            symbol: cache.underlying.symbol.clone(),
            underlying_con_id: cache.underlying.con_id,
            cache_file: file_name.clone(),
            cache_as_of: cache.as_of,
            contracts: u32::try_from(cache.contracts.len()).unwrap_or(u32::MAX),
            expired: u32::try_from(n_expired).unwrap_or(u32::MAX),
            cache_close: cache.underlying.reference_close,
            snapshot_close: plan
                .snapshot_close(&cache.underlying.symbol, end_date)
                .map(|(date, close)| DatedClose { date, close }),
        });
    }

    // Refuse before allocating when the `all` phases would exceed the task budget.
    let live: u64 = caches
        .iter()
        .map(|(_, c)| c.contracts.iter().filter(|k| k.expiry > end_date).count() as u64)
        .sum();
    let mut planned = 0u64;
    for (pi, p) in phases.iter().enumerate() {
        if matches!(plan.phases[pi].select, Select::All) {
            let windows: u64 = p.cells.iter().map(|c| c.windows.len() as u64).sum();
            planned = planned.saturating_add(live.saturating_mul(windows));
            if planned > MAX_TASKS {
                return Err(CompileError::TooLarge {
                    phase: p.name.clone(),
                    tasks: planned,
                });
            }
        }
    }

    for (pi, p) in phases.iter().enumerate() {
        let plan_phase = &plan.phases[pi];
        let windows_per_contract: u64 = p.cells.iter().map(|c| c.windows.len() as u64).sum();
        let mut phase_requests = 0u64;
        for (_, cache) in &caches {
            let symbol = cache.underlying.symbol.as_str();
            let mut live: Vec<&crate::cache::OptionContract> =
                Vec::with_capacity(cache.contracts.len());
            let (mut n_expired, mut on_end) = (0u32, 0u32);
            for c in &cache.contracts {
                if c.expiry <= end_date {
                    n_expired += 1;
                    on_end += u32::from(c.expiry == end_date);
                } else {
                    live.push(c);
                }
            }
            if n_expired > 0 {
                expired.push(ExpiredCount {
                    phase: p.name.clone(),
                    symbol: symbol.to_string(),
                    contracts: n_expired,
                    on_end,
                });
            }
            match &plan_phase.select {
                Select::All => {
                    live.sort_by_key(|c| c.con_id);
                    let start = tasks.len();
                    for c in live {
                        near_atm::contract_tasks(
                            &p.name, symbol, &p.what, p.use_rth, c, &p.cells, &mut tasks,
                        );
                    }
                    // Identical requests already planned by an earlier phase are dropped
                    // (order kept).
                    let fresh: Vec<_> = tasks.drain(start..).collect();
                    for t in fresh {
                        if seen_ids.insert(t.id.clone()) {
                            tasks.push(t);
                        } else {
                            duplicates += 1;
                        }
                    }
                    phase_requests += (tasks.len() - start) as u64;
                }
                Select::NearAtm(rule) => {
                    let live: Vec<crate::cache::OptionContract> =
                        live.into_iter().cloned().collect();
                    let exps = near_atm::nearest_expiries(&live, end_date, rule.expiries as usize);
                    let candidates: Vec<crate::cache::OptionContract> = live
                        .into_iter()
                        .filter(|c| exps.contains(&c.expiry))
                        .collect();
                    let cells = cells_for_classes(&p.cells, &candidates);
                    // Exact when the symbol's classes share their hours (they do in practice).
                    let windows_per_contract: u64 = match candidates.first() {
                        Some(c) => cells
                            .iter()
                            .map(|x| x.windows_for(&c.trading_class).len() as u64)
                            .sum(),
                        None => windows_per_contract,
                    };
                    let n = near_atm::selected_count(
                        &candidates,
                        end_date,
                        rule.strikes as usize,
                        rule.expiries as usize,
                    );
                    let requests = n as u64 * windows_per_contract;
                    phase_requests += requests;
                    selections.push(Selection {
                        phase: p.name.clone(),
                        symbol: symbol.to_string(),
                        underlying_con_id: cache.underlying.con_id,
                        underlying_sec_type: cache.underlying.sec_type,
                        rule: rule.clone(),
                        window_end: end_date,
                        what: p.what.clone(),
                        use_rth: p.use_rth,
                        cells,
                        expiries: exps,
                        candidates,
                        contracts: u32::try_from(n).unwrap_or(u32::MAX),
                        requests,
                        cache_close: cache.underlying.reference_close,
                        snapshot_close: plan
                            .snapshot_close(symbol, end_date)
                            .map(|(date, close)| DatedClose { date, close }),
                    });
                }
            }
        }
        per_phase.insert(p.name.clone(), phase_requests);
    }

    let selection_requests: u64 = selections.iter().map(|s| s.requests).sum();
    let reference_closes = selections
        .iter()
        .map(|s| s.symbol.as_str())
        .collect::<HashSet<_>>()
        .len() as u64;
    let totals = Totals {
        universe_symbols: u32::try_from(plan.universe.symbols.len()).unwrap_or(u32::MAX),
        shard_symbols: u32::try_from(shard.len()).unwrap_or(u32::MAX),
        missing_cache: u32::try_from(missing.len()).unwrap_or(u32::MAX),
        tasks: tasks.len() as u64,
        selection_requests,
        reference_closes,
        requests: tasks.len() as u64 + selection_requests,
        expired: expired.iter().map(|e| u64::from(e.contracts)).sum(),
        duplicates,
        per_phase,
    };

    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        plan: PlanInfo {
            name: plan.name.clone(),
            scope: plan.scope.clone(),
            output_root: plan.output_root.display().to_string(),
            state_root: plan.state_root.display().to_string(),
            contracts_cache: plan.universe.contracts_cache.display().to_string(),
        },
        end: EndInfo {
            spec,
            session: end.date,
            close: until.map_or(end.close, |t| t.min(end.close)).max(end.open),
            half_day: end.half_day,
        },
        time_zone: plan.time_zone.name().to_string(),
        batch,
        gateway: plan.gateway.clone(),
        limit_table: plan.limits.base,
        limit_table_origin: plan.limits.origin,
        limits: plan
            .limits
            .overrides
            .iter()
            .map(|(b, d)| (b.to_string(), d.to_string()))
            .collect(),
        effective_limits: effective_limits(plan),
        phases,
        symbols,
        missing_cache: missing,
        expired,
        tasks,
        selections,
        totals,
    };
    let graph = TaskGraph::build(&manifest).map_err(|e| CompileError::Cycle(e.0))?;
    Ok(Compiled {
        manifest,
        graph,
        notes,
    })
}

/// Give every cell the windows of the trading classes (of the loaded caches) that close at
/// another time than the equities: 16:15 classes get windows ending at 16:15 (13:15 on half
/// days). Windows are split once per distinct offset.
fn add_class_windows(
    phases: &mut [PhaseInfo],
    caches: &[(String, crate::cache::ContractsCache)],
    end: &calendar::Session,
    until: Option<chrono::DateTime<Utc>>,
) -> Result<(), CompileError> {
    // Regular-hours phases follow each class's `liquidHours`, all-hours phases its
    // `tradingHours` (SPX options: to the end of the curb session, 17:00).
    let offsets_for = |use_rth: bool| {
        let mut offsets: BTreeMap<String, i32> = BTreeMap::new();
        for (_, cache) in caches {
            offsets.extend(
                cache
                    .close_offsets_for(use_rth)
                    .into_iter()
                    .filter(|(_, o)| *o != 0),
            );
        }
        offsets
    };
    let (rth_offsets, all_offsets) = (offsets_for(true), offsets_for(false));
    for p in phases.iter_mut() {
        let offsets = if p.use_rth {
            &rth_offsets
        } else {
            &all_offsets
        };
        for cell in &mut p.cells {
            let mut by_offset: BTreeMap<i32, Vec<windows::Window>> = BTreeMap::new();
            for (class, off) in offsets {
                if !by_offset.contains_key(off) {
                    let bar = crate::plan::BarCell {
                        size: cell.size,
                        duration: cell.duration,
                    };
                    let ws = windows::split_until(bar, cell.limit, end, *off, until).map_err(
                        |source| CompileError::Calendar {
                            what: format!(
                                "phase `{}`: windows of `{} x {}` for class `{class}` ending {}",
                                p.name, cell.size, cell.duration, end.date
                            ),
                            source,
                        },
                    )?;
                    by_offset.insert(*off, ws);
                }
                cell.class_windows
                    .insert(class.clone(), by_offset[off].clone());
            }
        }
    }
    Ok(())
}

/// A selection's cells: the phase's cells keeping only the class windows of its candidates.
fn cells_for_classes(
    cells: &[CellInfo],
    candidates: &[crate::cache::OptionContract],
) -> Vec<CellInfo> {
    let classes: HashSet<&str> = candidates
        .iter()
        .map(|c| c.trading_class.as_str())
        .collect();
    cells
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.class_windows.retain(|k, _| classes.contains(k.as_str()));
            c
        })
        .collect()
}

/// The longest duration per request of every bar size the plan's cells use (override, else the
/// base table's entry), as the manifest records it.
fn effective_limits(plan: &ValidatedPlan) -> BTreeMap<String, String> {
    plan.phases
        .iter()
        .flat_map(|p| p.bars.iter())
        .map(|c| (c.size.to_string(), plan.limit(c.size).to_string()))
        .collect()
}

/// Read the caches, in parallel on two threads (parsing dominates compile time), in symbol order.
/// Every bad cache is reported, not only the first.
fn load_caches(
    to_load: &[(&str, chrono::NaiveDate, PathBuf)],
) -> Result<Vec<(String, crate::cache::ContractsCache)>, CompileError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = to_load.len().div_ceil(threads).max(1);
    let results: Vec<Result<(String, crate::cache::ContractsCache), InputError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = to_load
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(s, d, path)| {
                                let name = path
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default();
                                universe::load_cache(path, s, *d).map(|c| (name, c))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![Err(InputError {
                            file: PathBuf::from("<cache reader>"),
                            line: 1,
                            col: 1,
                            message: "a cache reader thread panicked".into(),
                        })]
                    })
                })
                .collect()
        });
    let mut ok = Vec::with_capacity(results.len());
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(x) => ok.push(x),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(ok)
    } else {
        Err(CompileError::Inputs(errs))
    }
}

/// Default manifest path: `<state-root>/manifests/<scope>/<name>.manifest.json`, with
/// `.b<index>of<count>` before `.manifest.json` when the universe is sharded.
pub fn default_manifest_path(m: &Manifest) -> PathBuf {
    let file = if m.batch.count > 1 {
        format!(
            "{}.b{}of{}.manifest.json",
            m.plan.name, m.batch.index, m.batch.count
        )
    } else {
        format!("{}.manifest.json", m.plan.name)
    };
    PathBuf::from(&m.plan.state_root)
        .join("manifests")
        .join(&m.plan.scope)
        .join(file)
}
