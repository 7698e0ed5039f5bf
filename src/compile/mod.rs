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
mod stages;
pub mod task;
pub mod universe;
pub mod windows;

pub use graph::{GraphNode, TaskGraph};
pub use manifest::Manifest;
pub use universe::InputError;

use crate::calendar::{self, OutOfRange};
use crate::plan::{Batching, ValidatedPlan};
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
    let mut notes = Vec::new();
    let (spec, end, until) = stages::resolve_end(plan, opts, &mut notes)?;
    let mut phases = stages::phase_windows(plan, &end, until)?;
    let stages::ShardInputs {
        shard_symbols,
        missing,
        caches,
    } = stages::read_shard(plan, opts, batch, &mut notes)?;
    add_class_windows(&mut phases, &caches, &end, until)?;
    let end_date = end.date;
    let symbols = stages::symbol_infos(plan, &caches, end_date);
    stages::check_budget(plan, &phases, &caches, end_date)?;
    let stages::PlannedTasks {
        mut tasks,
        selections,
        expired,
        duplicates,
        per_phase,
    } = stages::plan_tasks(plan, &phases, &caches, end_date);
    // One contract, phase name and symbol per distinct value across phases.
    task::share_parts(&mut tasks);

    let selection_requests: u64 = selections.iter().map(|s| s.requests).sum();
    let reference_closes = selections
        .iter()
        .map(|s| s.symbol.as_str())
        .collect::<HashSet<_>>()
        .len() as u64;
    let totals = Totals {
        universe_symbols: u32::try_from(plan.universe.symbols.len()).unwrap_or(u32::MAX),
        shard_symbols: u32::try_from(shard_symbols).unwrap_or(u32::MAX),
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
