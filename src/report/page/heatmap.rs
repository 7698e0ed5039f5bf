//! The coverage heatmap of the page, from a `verify` audit: per-symbol totals and the holes
//! listed cell by cell (at most [`MAX_HOLES`]) with the requests that would repair them.

use super::{HeatRow, Heatmap, Hole, MAX_HOLES, MAX_REPAIRS_PER_HOLE};
use crate::verify::Audit;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// The heatmap of an audit: a row per symbol (most missing first), the sessions as columns, and
/// the holes cell by cell with what a repair run would request for each.
pub(super) fn heatmap(a: &Audit, scope: &str) -> Heatmap {
    let sessions: BTreeSet<NaiveDate> = a
        .cells
        .values()
        .flat_map(|c| c.sessions.keys().copied())
        .collect();
    let mut rows: Vec<HeatRow> = a
        .cells
        .iter()
        .map(|(sym, c)| {
            let mut r = HeatRow {
                symbol: sym.clone(),
                expiries: c.expiries.len(),
                ..Default::default()
            };
            for cell in c.sessions.values() {
                r.expected += u64::from(cell.total());
                r.bars += u64::from(cell.bars);
                r.empty += u64::from(cell.empty);
                r.provisional += u64::from(cell.provisional);
                r.missing += u64::from(cell.missing);
            }
            r
        })
        .collect();
    rows.sort_by(|x, y| {
        y.missing
            .cmp(&x.missing)
            .then_with(|| x.symbol.cmp(&y.symbol))
    });
    // What a repair run requests, per (symbol, session).
    let mut repairs: BTreeMap<(&str, NaiveDate), Vec<String>> = BTreeMap::new();
    for m in &a.missing {
        for s in &m.sessions {
            if let Ok(d) = s.parse::<NaiveDate>() {
                repairs
                    .entry((m.symbol.as_str(), d))
                    .or_default()
                    .push(format!("{} {} {}", m.con_id, m.phase, m.bar_size));
            }
        }
    }
    let mut holes = Vec::new();
    let mut truncated = false;
    for (sym, c) in &a.cells {
        for (d, cell) in &c.sessions {
            if cell.missing == 0 {
                continue;
            }
            if holes.len() >= MAX_HOLES {
                truncated = true;
                break;
            }
            let mut repair = repairs
                .get(&(sym.as_str(), *d))
                .cloned()
                .unwrap_or_default();
            repair.dedup();
            if repair.len() > MAX_REPAIRS_PER_HOLE {
                let more = repair.len() - MAX_REPAIRS_PER_HOLE;
                repair.truncate(MAX_REPAIRS_PER_HOLE);
                repair.push(format!("... and {more} more"));
            }
            holes.push(Hole {
                symbol: sym.clone(),
                session: *d,
                missing: cell.missing,
                of: cell.total(),
                repair,
            });
        }
    }
    Heatmap {
        scope: scope.to_string(),
        sessions: sessions.into_iter().collect(),
        rows,
        holes,
        holes_truncated: truncated,
        complete: a.is_complete(),
        problems: a
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.problem))
            .chain(a.unselected.iter().map(|(p, s)| {
                format!("{p} {s}: near-ATM contracts not chosen yet (no reference close)")
            }))
            .collect(),
    }
}
