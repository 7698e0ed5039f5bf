//! Reference closes for near-ATM phases and the selections made from them.
//!
//! Sources are tried in the order a phase's rule gives: a local close snapshot (CSV of
//! `symbol,date,close`, read by [`crate::inputs::closes`]), the close recorded in the contracts
//! cache, and the gateway (underlying STK `1 day` TRADES bars, only when allowed). The selection made for a (phase, symbol, window
//! end) is written once under the state root and reused by every later run, so a resumed run
//! fetches the same contracts even if a newer close has appeared since.

use crate::cache::CloseSource;
use crate::compile::manifest::Selection;
use crate::compile::near_atm;
use crate::compile::task::FetchTask;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Closes from a snapshot file: symbol -> (date, close), the latest date on or before the end.
pub type Snapshot = HashMap<String, (NaiveDate, f64)>;

/// Read a close snapshot CSV (rules in [`crate::inputs::closes`]) and keep each symbol's latest
/// close on or before `on_or_before`; the error lists every bad line (file, line, column).
pub fn read_snapshot(path: &Path, on_or_before: NaiveDate) -> Result<Snapshot, String> {
    let closes = crate::inputs::closes::read(path).map_err(|e| e.to_string())?;
    Ok(crate::inputs::closes::latest_on_or_before(
        &closes,
        on_or_before,
    ))
}

/// The selection made for one (phase, symbol), as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedSelection {
    /// Phase.
    pub phase: String,
    /// Symbol.
    pub symbol: String,
    /// Window end date the selection is for.
    pub window_end: NaiveDate,
    /// Close used.
    pub close: f64,
    /// Where it came from.
    pub source: CloseSource,
    /// conIds chosen, canonical order.
    pub con_ids: Vec<i64>,
}

/// Where the selection for a (phase, symbol, window end) is recorded.
pub fn selection_path(state_root: &Path, scope: &str, sel: &Selection) -> PathBuf {
    state_root
        .join("run_logs")
        .join(scope)
        .join("selections")
        .join(format!(
            "{}_{}_{}.json",
            sel.phase, sel.symbol, sel.window_end
        ))
}

/// The close sources to try for a selection, in order: the rule's, without the gateway
/// unless `allow_gateway` (`--no-skip-underlying-close`), which also appends the gateway as
/// the last resort when the rule does not list it, so the flag always has an effect.
pub fn sources(sel: &Selection, allow_gateway: bool) -> Vec<CloseSource> {
    let mut out: Vec<CloseSource> = sel
        .rule
        .reference
        .iter()
        .copied()
        .filter(|s| allow_gateway || *s != CloseSource::Gateway)
        .collect();
    if allow_gateway && !out.contains(&CloseSource::Gateway) {
        out.push(CloseSource::Gateway);
    }
    out
}

/// The close a local source gives for a selection (never the gateway). A snapshot given at
/// run time wins over the one the plan compiled into the manifest.
fn local_close(sel: &Selection, src: CloseSource, snapshot: &Snapshot) -> Option<f64> {
    match src {
        CloseSource::Snapshot => snapshot
            .get(&sel.symbol)
            .map(|(_, c)| *c)
            .or(sel.snapshot_close.as_ref().map(|d| d.close)),
        CloseSource::Cache => sel.cache_close,
        CloseSource::Gateway => None,
    }
}

/// True when resolving this selection needs the gateway's close: no selection recorded yet,
/// the gateway allowed, and no local source before it in the order has a close. Only those
/// symbols cost a gateway request.
pub fn needs_gateway(
    sel: &Selection,
    state_root: &Path,
    scope: &str,
    snapshot: &Snapshot,
    allow_gateway: bool,
) -> bool {
    if !allow_gateway || selection_path(state_root, scope, sel).exists() {
        return false;
    }
    for src in sources(sel, true) {
        if src == CloseSource::Gateway {
            return true;
        }
        if local_close(sel, src, snapshot).is_some() {
            return false;
        }
    }
    false
}

/// Outcome of resolving one selection.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// Tasks to run, with the close and its source.
    Tasks(Vec<FetchTask>, RecordedSelection),
    /// No close from any allowed source.
    NoReference,
}

/// Choose the contracts of a selection given a close (or reuse the recorded choice, so a
/// resumed run fetches the same contracts). `gateway_close` is used only when the gateway is
/// allowed (see [`sources`]).
pub fn resolve(
    sel: &Selection,
    state_root: &Path,
    scope: &str,
    snapshot: &Snapshot,
    gateway_close: Option<f64>,
    allow_gateway: bool,
) -> Result<Resolved, String> {
    let path = selection_path(state_root, scope, sel);
    if let Ok(bytes) = std::fs::read(&path) {
        let rec: RecordedSelection =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let chosen: Vec<_> = sel
            .candidates
            .iter()
            .filter(|c| rec.con_ids.contains(&c.con_id))
            .cloned()
            .collect();
        return Ok(Resolved::Tasks(
            near_atm::expand_selection(sel, &chosen),
            rec,
        ));
    }
    let mut found = None;
    for src in sources(sel, allow_gateway) {
        let close = match src {
            CloseSource::Gateway => gateway_close,
            local => local_close(sel, local, snapshot),
        };
        if let Some(c) = close.filter(|c| c.is_finite() && *c > 0.0) {
            found = Some((c, src));
            break;
        }
    }
    let Some((close, source)) = found else {
        return Ok(Resolved::NoReference);
    };
    let chosen = near_atm::select(
        &sel.candidates,
        close,
        sel.window_end,
        sel.rule.strikes as usize,
        sel.rule.expiries as usize,
    );
    let rec = RecordedSelection {
        phase: sel.phase.clone(),
        symbol: sel.symbol.clone(),
        window_end: sel.window_end,
        close,
        source,
        con_ids: chosen.iter().map(|c| c.con_id).collect(),
    };
    crate::store::atomic::write_json(&path, &rec)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Resolved::Tasks(
        near_atm::expand_selection(sel, &chosen),
        rec,
    ))
}
