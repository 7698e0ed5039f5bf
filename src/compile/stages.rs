//! The stages of [`super::compile`], in order: resolve the end session, split each phase's
//! cells into windows, read the shard's contracts caches, describe the symbols, check the task
//! budget, and plan the tasks and near-ATM selections. Each is a function of its inputs, so the
//! manifest stays byte-identical for the same plan, caches and options.

use super::manifest::*;
use super::{cells_for_classes, near_atm, shard, universe, windows, CompileError, CompileOptions};
use super::{InputError, MAX_TASKS};
use crate::cache::ContractsCache;
use crate::calendar::{self, Session};
use crate::plan::{Batching, EndSpec, Select, ValidatedPlan};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, HashSet};

/// The end as written (for the manifest), its session, and the explicit instant if any.
pub(super) type ResolvedEnd = (String, Session, Option<DateTime<Utc>>);

/// Resolve `end` to a session (notes for an end moved back or inside a session).
pub(super) fn resolve_end(
    plan: &ValidatedPlan,
    opts: &CompileOptions,
    notes: &mut Vec<String>,
) -> Result<ResolvedEnd, CompileError> {
    Ok(match plan.end {
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
    })
}

/// Each phase with its cells split into request windows ending at `end` (or `until`).
pub(super) fn phase_windows(
    plan: &ValidatedPlan,
    end: &Session,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<PhaseInfo>, CompileError> {
    let mut phases = Vec::with_capacity(plan.phases.len());
    for p in &plan.phases {
        let mut cells = Vec::with_capacity(p.bars.len());
        let mut sorted = p.bars.clone();
        sorted.sort();
        for cell in sorted {
            let limit = plan.limit(cell.size);
            let ws = windows::split_until(cell, limit, end, 0, until).map_err(|source| {
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
            what: p.what,
            use_rth: p.use_rth,
            select: p.select.clone(),
            depends_on: p.depends_on.clone(),
            cells,
        });
    }
    Ok(phases)
}

/// The shard's symbols and their contracts caches.
pub(super) struct ShardInputs {
    /// Symbols in this shard.
    pub(super) shard_symbols: usize,
    /// Symbols of the shard without a cache, sorted.
    pub(super) missing: Vec<String>,
    /// (cache file name, cache) per symbol with a cache, sorted by symbol.
    pub(super) caches: Vec<(String, ContractsCache)>,
}

/// Shard the universe and read its contracts caches (notes for caches without trading hours
/// or discovered with another security type).
pub(super) fn read_shard(
    plan: &ValidatedPlan,
    opts: &CompileOptions,
    batch: Batching,
    notes: &mut Vec<String>,
) -> Result<ShardInputs, CompileError> {
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
    let caches = super::load_caches(&to_load)?;
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
    Ok(ShardInputs {
        shard_symbols: shard.len(),
        missing,
        caches,
    })
}

/// One [`SymbolInfo`] per cache.
pub(super) fn symbol_infos(
    plan: &ValidatedPlan,
    caches: &[(String, ContractsCache)],
    end_date: NaiveDate,
) -> Vec<SymbolInfo> {
    let mut symbols = Vec::with_capacity(caches.len());
    for (file_name, cache) in caches {
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
    symbols
}

/// Refuse before allocating when the `all` phases would exceed the task budget.
pub(super) fn check_budget(
    plan: &ValidatedPlan,
    phases: &[PhaseInfo],
    caches: &[(String, ContractsCache)],
    end_date: NaiveDate,
) -> Result<(), CompileError> {
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
    Ok(())
}

/// The tasks of the `all` phases and the selections of the near-ATM ones.
#[derive(Default)]
pub(super) struct PlannedTasks {
    pub(super) tasks: Vec<crate::compile::task::FetchTask>,
    pub(super) selections: Vec<Selection>,
    pub(super) expired: Vec<ExpiredCount>,
    /// Requests an earlier phase already planned, dropped.
    pub(super) duplicates: u64,
    /// Requests per phase.
    pub(super) per_phase: BTreeMap<String, u64>,
}

/// Plan every phase for every symbol, in phase order then cache order.
pub(super) fn plan_tasks(
    plan: &ValidatedPlan,
    phases: &[PhaseInfo],
    caches: &[(String, ContractsCache)],
    end_date: NaiveDate,
) -> PlannedTasks {
    let mut out = PlannedTasks::default();
    let mut seen_ids: HashSet<String> = HashSet::new();
    for (pi, p) in phases.iter().enumerate() {
        let plan_phase = &plan.phases[pi];
        let windows_per_contract: u64 = p.cells.iter().map(|c| c.windows.len() as u64).sum();
        let mut phase_requests = 0u64;
        for (_, cache) in caches {
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
                out.expired.push(ExpiredCount {
                    phase: p.name.clone(),
                    symbol: symbol.to_string(),
                    contracts: n_expired,
                    on_end,
                });
            }
            phase_requests += match &plan_phase.select {
                Select::All => all_tasks(p, symbol, live, &mut seen_ids, &mut out),
                Select::NearAtm(rule) => {
                    let s = near_atm_selection(
                        plan,
                        p,
                        cache,
                        live,
                        rule,
                        windows_per_contract,
                        end_date,
                    );
                    let requests = s.requests;
                    out.selections.push(s);
                    requests
                }
            };
        }
        out.per_phase.insert(p.name.clone(), phase_requests);
    }
    out
}

/// The tasks of an `all` phase for one symbol's live contracts; identical requests already
/// planned by an earlier phase are dropped (order kept). Returns the requests added.
fn all_tasks(
    p: &PhaseInfo,
    symbol: &str,
    mut live: Vec<&crate::cache::OptionContract>,
    seen_ids: &mut HashSet<String>,
    out: &mut PlannedTasks,
) -> u64 {
    let tasks = &mut out.tasks;
    live.sort_by_key(|c| c.con_id);
    let start = tasks.len();
    for c in live {
        near_atm::contract_tasks(&p.name, symbol, p.what, p.use_rth, c, &p.cells, tasks);
    }
    let fresh: Vec<_> = tasks.drain(start..).collect();
    for t in fresh {
        if seen_ids.insert(t.id.clone()) {
            tasks.push(t);
        } else {
            out.duplicates += 1;
        }
    }
    (tasks.len() - start) as u64
}

/// The near-ATM selection of one phase for one symbol: candidates among the nearest expiries,
/// resolved to strikes by the executor once the reference close is known.
fn near_atm_selection(
    plan: &ValidatedPlan,
    p: &PhaseInfo,
    cache: &ContractsCache,
    live: Vec<&crate::cache::OptionContract>,
    rule: &crate::plan::NearAtmRule,
    windows_per_contract: u64,
    end_date: NaiveDate,
) -> Selection {
    let symbol = cache.underlying.symbol.as_str();
    let live: Vec<crate::cache::OptionContract> = live.into_iter().cloned().collect();
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
    Selection {
        phase: p.name.clone(),
        symbol: symbol.to_string(),
        underlying_con_id: cache.underlying.con_id,
        underlying_sec_type: cache.underlying.sec_type,
        rule: rule.clone(),
        window_end: end_date,
        what: p.what,
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
    }
}
