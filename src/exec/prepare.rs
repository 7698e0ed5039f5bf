//! Executor preparation, before the scheduler: which of the manifest's tasks and near-ATM
//! selections this run covers (phases, rerun universe), and the selections resolved against a
//! reference close into tasks (or a SKIPPED record when no close is known).
//!
//! Why apart from the command line: these are the executor's decisions, testable without a
//! terminal; the command only maps their errors to exit codes.

use super::closes::{needs_gateway, resolve, Resolved, Snapshot};
use super::run::ExecConfig;
use crate::compile::manifest::{Manifest, Selection};
use crate::compile::task::FetchTask;
use crate::ib::{ConnectError, GatewayConfig, OutcomeClass};
use crate::inputs::rerun::RerunUniverse;
use crate::store::summary::{Subject, SummaryRecord};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Why preparation stopped.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// `--phase` names a phase the manifest does not have.
    #[error("--phase {name}: no such phase (phases: {known})")]
    UnknownPhase {
        /// The phase asked for.
        name: String,
        /// The manifest's phases, comma-separated.
        known: String,
    },
    /// The gateway (for underlying closes) could not be reached, or the run was interrupted.
    #[error(transparent)]
    Gateway(#[from] ConnectError),
    /// A selection could not be resolved (bad cache, bad close).
    #[error("{0}")]
    Selection(String),
}

/// The part of a manifest this run covers.
pub struct Selected<'m> {
    /// Fixed tasks (not near-ATM).
    pub tasks: Vec<FetchTask>,
    /// Near-ATM selections still to resolve against a close.
    pub selections: Vec<&'m Selection>,
}

/// Filter the manifest's `tasks` (taken out of it by the caller: half a million tasks are not
/// copied) and selections by phases (empty: all) and the rerun universe.
pub fn select<'m>(
    manifest: &'m Manifest,
    tasks: Vec<FetchTask>,
    phases: &[String],
    rerun: Option<&RerunUniverse>,
) -> Result<Selected<'m>, PrepareError> {
    let known: BTreeSet<&str> = manifest.phases.iter().map(|p| p.name.as_str()).collect();
    if let Some(p) = phases.iter().find(|p| !known.contains(p.as_str())) {
        return Err(PrepareError::UnknownPhase {
            name: p.clone(),
            known: known.iter().copied().collect::<Vec<_>>().join(", "),
        });
    }
    let phase_ok = |p: &str| phases.is_empty() || phases.iter().any(|x| x == p);
    let tasks = tasks
        .into_iter()
        .filter(|t| phase_ok(&t.phase) && in_rerun(rerun, t))
        .collect();
    let selections = manifest
        .selections
        .iter()
        .filter(|s| {
            phase_ok(&s.phase)
                && rerun.is_none_or(|u| {
                    u.symbols.contains(&s.symbol)
                        && (!u.is_contracts()
                            || u.tasks.iter().any(|(_, p, _)| *p == s.phase)
                            || u.symbol_phases
                                .contains(&(s.symbol.clone(), s.phase.clone())))
                })
        })
        .collect();
    Ok(Selected { tasks, selections })
}

fn in_rerun(rerun: Option<&RerunUniverse>, t: &FetchTask) -> bool {
    rerun.is_none_or(|u| u.contains(&t.symbol, t.contract.con_id, &t.phase, t.bar_size.as_str()))
}

/// Where a selection's reference close may come from.
pub struct CloseSources<'a> {
    /// Closes given by the user (`--closes`), on or before the end session.
    pub snapshot: &'a Snapshot,
    /// Ask the gateway for closes known nowhere else.
    pub fetch_from_gateway: bool,
}

/// Resolve the selections into tasks (appended to `tasks`, rerun-filtered), recording each
/// reference close in `cfg`; a selection without a close gives a SKIPPED record.
pub async fn resolve_selections(
    cfg: &mut ExecConfig,
    selections: &[&Selection],
    closes: CloseSources<'_>,
    rerun: Option<&RerunUniverse>,
    end: DateTime<Utc>,
    tasks: &mut Vec<FetchTask>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<SummaryRecord>, PrepareError> {
    let need: Vec<&Selection> = selections
        .iter()
        .copied()
        .filter(|s| {
            needs_gateway(
                s,
                &cfg.state_root,
                &cfg.scope,
                closes.snapshot,
                closes.fetch_from_gateway,
            )
        })
        .collect();
    let gateway_closes = if need.is_empty() {
        BTreeMap::new()
    } else {
        fetch_gateway_closes(&cfg.gateway, &need, end, cfg.reconnect_for, stop).await?
    };
    let mut skipped = Vec::new();
    for sel in selections {
        let resolved = resolve(
            sel,
            &cfg.state_root,
            &cfg.scope,
            closes.snapshot,
            gateway_closes.get(&sel.symbol).copied(),
            closes.fetch_from_gateway,
        )
        .map_err(|e| PrepareError::Selection(e.to_string()))?;
        match resolved {
            Resolved::Tasks(ts, rec) => {
                eprintln!(
                    "{} {}: close {} ({:?}) -> {} contracts, {} requests",
                    sel.phase,
                    sel.symbol,
                    rec.close,
                    rec.source,
                    rec.con_ids.len(),
                    ts.len()
                );
                cfg.reference_closes.insert(
                    (sel.phase.clone(), sel.symbol.clone()),
                    (rec.close, rec.source),
                );
                tasks.extend(ts.into_iter().filter(|t| in_rerun(rerun, t)));
            }
            Resolved::NoReference => skipped.push(no_reference_record(&cfg.run_id, sel, end)),
        }
    }
    Ok(skipped)
}

/// Underlying closes from the gateway (a separate short connection with client id + 1000, so
/// the executor's own connection is not disturbed).
async fn fetch_gateway_closes(
    gw: &GatewayConfig,
    selections: &[&Selection],
    end: DateTime<Utc>,
    reconnect_for: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<BTreeMap<String, f64>, ConnectError> {
    let mut cfg = gw.clone();
    cfg.client_id = cfg.client_id.saturating_add(1000);
    let gateway = super::reconnect::connect_with_retry(&cfg, reconnect_for, stop).await?;
    let symbols: BTreeSet<(&str, crate::cache::UnderlyingSecType)> = selections
        .iter()
        .map(|s| (s.symbol.as_str(), s.underlying_sec_type))
        .collect();
    let mut out = BTreeMap::new();
    for (sym, sec_type) in symbols {
        match gateway.stock_close(sym, sec_type, end).await {
            Ok(Some((_, c))) => {
                out.insert(sym.to_string(), c);
            }
            Ok(None) => eprintln!("{sym}: the gateway has no daily bar before {end}"),
            Err(f) => eprintln!("{sym}: underlying close request failed: {f}"),
        }
    }
    Ok(out)
}

/// The SKIPPED record of a selection without a reference close.
fn no_reference_record(run_id: &str, sel: &Selection, end: DateTime<Utc>) -> SummaryRecord {
    let now = Utc::now();
    let cell = sel.cells.first();
    let task_id = format!("select:{}:{}", sel.phase, sel.symbol);
    let subject = Subject {
        task_id: &task_id,
        phase: &sel.phase,
        symbol: &sel.symbol,
        contract: None,
        what: sel.what,
        // A phase has at least one bar cell (the plan loader requires one).
        bar_size: cell.map_or(crate::bars::BarSize::Day1, |c| c.size),
        duration: cell.map(|c| c.duration.to_string()).unwrap_or_default(),
        end,
    };
    let mut rec = SummaryRecord::new(run_id, subject, OutcomeClass::Skipped, now);
    rec.finished_at = now;
    rec.error_message = Some(format!(
        "NO_REFERENCE: no close for {} from {:?}; pass --no-skip-underlying-close to fetch it",
        sel.symbol, sel.rule.reference
    ));
    rec
}
