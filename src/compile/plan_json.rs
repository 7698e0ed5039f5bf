//! `plan --json`: the dry-run table, the diff and the totals as one JSON document, for scripts
//! and orchestrators (schema in `schemas/plan_report.schema.json`, generated from these types).

use super::diff::Diff;
use super::dryrun::{per_cell, per_symbol, select_label};
use super::manifest::{EndInfo, Manifest, Totals};
use crate::plan::Batching;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// Version of this document's layout; bumped on any incompatible change.
pub const PLAN_REPORT_VERSION: u32 = 1;

/// The whole `plan --json` output.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanReport {
    /// Layout version ([`PLAN_REPORT_VERSION`]).
    pub format_version: u32,
    /// Plan name.
    pub plan: String,
    /// Output scope.
    pub scope: String,
    /// The resolved end session.
    pub end: EndInfo,
    /// The shard compiled.
    pub batch: Batching,
    /// One row per phase and bar cell: what the dry-run table shows.
    pub cells: Vec<CellRow>,
    /// Requests per symbol and phase (only with `--by-symbol`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_symbol: Option<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Symbols of the shard without a contracts cache (skipped).
    pub missing_cache: Vec<String>,
    /// The manifest's totals.
    pub totals: Totals,
    /// Requests per second assumed for the estimate.
    pub rate: f64,
    /// Estimated run time in seconds at `rate`.
    pub estimated_secs: f64,
    /// The comparison with `--diff OLD_MANIFEST`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffReport>,
    /// Where the manifest was written (absent with `--dry-run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_path: Option<String>,
}

/// One phase x bar cell.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CellRow {
    /// Phase.
    pub phase: String,
    /// Bar size (`8 hours`).
    pub bar_size: String,
    /// Duration of the cell (`6 M`).
    pub duration: String,
    /// Request windows the cell is split into.
    pub windows: u64,
    /// Selection rule (`all`, `near-atm K=10 E=4`).
    pub selection: String,
    /// Contracts.
    pub contracts: u64,
    /// Requests.
    pub requests: u64,
}

/// What differs from an earlier manifest.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiffReport {
    /// The earlier manifest.
    pub against: String,
    /// True when nothing differs.
    pub empty: bool,
    /// Top-level settings that changed, as `what: old -> new`.
    pub settings: Vec<String>,
    /// Per phase, bar size and symbol.
    pub groups: Vec<DiffGroup>,
    /// Requests added in all.
    pub added: u64,
    /// Requests removed in all.
    pub removed: u64,
}

/// One (phase, bar size, symbol) group of a diff.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiffGroup {
    /// Phase.
    pub phase: String,
    /// Bar size.
    pub bar_size: String,
    /// Symbol.
    pub symbol: String,
    /// Requests only in the new manifest.
    pub added: u64,
    /// Requests only in the old manifest.
    pub removed: u64,
    /// A near-ATM selection that changed: requests before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_changed: Option<[u64; 2]>,
}

/// Build the document.
pub fn report(
    m: &Manifest,
    by_symbol: bool,
    rate: f64,
    diff: Option<(&str, &Diff)>,
    manifest_path: Option<String>,
) -> PlanReport {
    let cells = per_cell(m)
        .into_iter()
        .map(|((pi, cell), (contracts, requests))| {
            let p = &m.phases[pi];
            let windows = p
                .cells
                .iter()
                .find(|c| c.size == cell.size && c.duration == cell.duration)
                .map(|c| c.windows.len() as u64)
                .unwrap_or(1);
            CellRow {
                phase: p.name.clone(),
                bar_size: cell.size.as_str().to_string(),
                duration: cell.duration.to_string(),
                windows,
                selection: select_label(&p.select),
                contracts,
                requests,
            }
        })
        .collect();
    let diff = diff.map(|(against, d)| DiffReport {
        against: against.to_string(),
        empty: d.is_empty(),
        settings: d.settings.clone(),
        added: d.groups.values().map(|g| g.added).sum(),
        removed: d.groups.values().map(|g| g.removed).sum(),
        groups: d
            .groups
            .iter()
            .map(|((phase, bar, symbol), g)| DiffGroup {
                phase: phase.clone(),
                bar_size: bar.clone(),
                symbol: symbol.clone(),
                added: g.added,
                removed: g.removed,
                selection_changed: g.changed.map(|(a, b)| [a, b]),
            })
            .collect(),
    });
    PlanReport {
        format_version: PLAN_REPORT_VERSION,
        plan: m.plan.name.clone(),
        scope: m.plan.scope.clone(),
        end: m.end.clone(),
        batch: m.batch,
        cells,
        by_symbol: by_symbol.then(|| per_symbol(m)),
        missing_cache: m.missing_cache.clone(),
        totals: m.totals.clone(),
        rate,
        estimated_secs: m.totals.requests as f64 / rate.max(f64::MIN_POSITIVE),
        diff,
        manifest_path,
    }
}
