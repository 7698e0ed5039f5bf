//! The `phase` list: each phase's keys and bar cells, then the checks across phases (unique
//! names, `depends-on` targets, cycles, outputs shared by phases).

use super::keys::{CELL_KEYS, PHASE_KEYS};
use super::outputs;
use super::select::select;
use super::values::{bar_size, duration, path_name};
use super::walker::{as_bool, as_seq, as_str, child, index, Ctx, Table};
use crate::bars::DurationUnit;
use crate::plan::error::closest;
use crate::plan::node::{Loc, Node};
use crate::plan::types::{BarCell, Phase, Select};
use crate::plan::WHAT_TO_SHOW;
use std::collections::{HashMap, HashSet};

/// The `phase` list. Every phase is read even when others have errors, and the checks across
/// phases use the names and `depends-on` entries as written, so every problem is reported in
/// the same pass.
pub(super) fn phases(ctx: &mut Ctx<'_>, node: &Node, has_snapshot: bool) -> Option<Vec<Phase>> {
    let items = as_seq(ctx, node, "phase")?;
    if items.is_empty() {
        ctx.err_hint(
            node.loc,
            "phase",
            "no phases",
            "add at least one `[[phase]]`",
        );
        return None;
    }
    let before = ctx.errors.len();
    let written: Vec<PhaseAsWritten> = items
        .iter()
        .enumerate()
        .map(|(i, item)| phase(ctx, item, &index("phase", i), has_snapshot))
        .collect();
    check_unique_names(ctx, &written);
    check_depends_on(ctx, &written);
    check_cycles(ctx, &written, node.loc);
    let out: Vec<Option<Phase>> = written.into_iter().map(|w| w.phase).collect();
    outputs::check_use_rth(ctx, items, &out);
    if ctx.errors.len() != before {
        return None;
    }
    let out: Vec<Phase> = out.into_iter().flatten().collect();
    (ctx.errors.len() == before).then_some(out)
}

/// One phase as read: the decoded phase (when it has no errors), and its name and
/// `depends-on` entries as written, with their locations, for the checks across phases.
struct PhaseAsWritten {
    phase: Option<Phase>,
    /// Each `depends-on` entry and where it is.
    deps: Vec<(String, Loc)>,
    name_loc: Option<Loc>,
    name: Option<String>,
}

/// Phase names are unique.
fn check_unique_names(ctx: &mut Ctx<'_>, written: &[PhaseAsWritten]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, w) in written.iter().enumerate() {
        if let (Some(name), Some(loc)) = (&w.name, w.name_loc) {
            if let Some(first) = seen.insert(name.clone(), i) {
                ctx.err(
                    loc,
                    &child(&index("phase", i), "name"),
                    format!("duplicate phase name `{name}` (also phase[{first}])"),
                );
            }
        }
    }
}

/// Every `depends-on` entry names another phase, once.
fn check_depends_on(ctx: &mut Ctx<'_>, written: &[PhaseAsWritten]) {
    let names: Vec<String> = written.iter().filter_map(|w| w.name.clone()).collect();
    for (i, w) in written.iter().enumerate() {
        let own = w.name.as_deref();
        let mut dup = HashSet::new();
        for (j, (d, loc)) in w.deps.iter().enumerate() {
            let path = index(&child(&index("phase", i), "depends-on"), j);
            if Some(d.as_str()) == own {
                ctx.err(*loc, &path, format!("phase `{d}` depends on itself"));
            } else if !names.contains(d) {
                let hint = match closest(d, names.iter().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? phases: {}", names.join(", ")),
                    None => format!("phases: {}", names.join(", ")),
                };
                ctx.err_hint(
                    *loc,
                    &path,
                    format!("unknown phase `{d}` in depends-on"),
                    hint,
                );
            } else if !dup.insert(d.clone()) {
                ctx.err(*loc, &path, format!("`{d}` is listed twice"));
            }
        }
    }
}

/// No cycles of two or more phases (self-dependencies are reported by [`check_depends_on`]);
/// each is reported at its first member's `depends-on` entry naming the next member.
fn check_cycles(ctx: &mut Ctx<'_>, written: &[PhaseAsWritten], list_loc: Loc) {
    let graph: Vec<(String, Vec<String>)> = written
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                w.name.clone().unwrap_or_else(|| format!("phase[{i}]")),
                w.deps.iter().map(|(d, _)| d.clone()).collect(),
            )
        })
        .collect();
    for cycle in crate::plan::find_cycles(&graph) {
        if cycle.len() < 2 {
            continue;
        }
        let first = &cycle[0];
        let next = &cycle[1];
        let i = graph.iter().position(|(n, _)| n == first).unwrap_or(0);
        let deps = &written[i].deps;
        let j = deps.iter().position(|(d, _)| d == next).unwrap_or(0);
        let loc = deps.get(j).map(|(_, l)| *l).unwrap_or(list_loc);
        let mut members = cycle.clone();
        members.push(first.clone());
        ctx.err_hint(
            loc,
            &index(&child(&index("phase", i), "depends-on"), j),
            format!("dependency cycle: {}", members.join(" -> ")),
            "remove one of these depends-on entries",
        );
    }
}

fn phase(ctx: &mut Ctx<'_>, node: &Node, path: &str, has_snapshot: bool) -> PhaseAsWritten {
    let Some(mut t) = Table::new(ctx, node, path, PHASE_KEYS) else {
        return PhaseAsWritten {
            phase: None,
            deps: Vec::new(),
            name_loc: None,
            name: None,
        };
    };
    let before = ctx.errors.len();
    let name_node = t.required(ctx, "name");
    let name = name_node.and_then(|n| path_name(ctx, n, &t.path("name")));
    let what = match t.get("what-to-show") {
        None => Some(crate::bars::WhatToShow::Trades),
        Some(n) => as_str(ctx, n, &t.path("what-to-show")).and_then(|s| {
            if let Ok(w) = s.parse() {
                Some(w)
            } else {
                let hint = match closest(s, WHAT_TO_SHOW.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`? legal: {}", WHAT_TO_SHOW.join(", ")),
                    None => format!("legal: {}", WHAT_TO_SHOW.join(", ")),
                };
                ctx.err_hint(
                    n.loc,
                    &t.path("what-to-show"),
                    format!("unknown what-to-show `{s}`"),
                    hint,
                );
                None
            }
        }),
    };
    let use_rth = match t.get("use-rth") {
        None => Some(true),
        Some(n) => as_bool(ctx, n, &t.path("use-rth")),
    };
    let bars = t
        .required(ctx, "bars")
        .and_then(|n| bar_cells(ctx, n, &t.path("bars"), use_rth.unwrap_or(true)));
    let select = match t.get("select") {
        None => Some(Select::All),
        Some(n) => select(ctx, n, &t.path("select"), has_snapshot),
    };
    let mut deps = Vec::new();
    if let Some(n) = t.get("depends-on") {
        let dpath = t.path("depends-on");
        if let Some(items) = as_seq(ctx, n, &dpath) {
            for (j, item) in items.iter().enumerate() {
                if let Some(s) = as_str(ctx, item, &index(&dpath, j)) {
                    deps.push((s.to_string(), item.loc));
                }
            }
        }
    }
    t.finish(ctx);
    let name_loc = name_node.map(|n| n.loc);
    let raw_name = name.clone();
    let phase = if ctx.errors.len() != before {
        None
    } else {
        (|| {
            Some(Phase {
                name: name?,
                what: what?,
                use_rth: use_rth?,
                bars: bars?,
                select: select?,
                depends_on: deps.iter().map(|(d, _)| d.clone()).collect(),
            })
        })()
    };
    PhaseAsWritten {
        phase,
        deps,
        name_loc,
        name: raw_name,
    }
}

fn bar_cells(ctx: &mut Ctx<'_>, node: &Node, path: &str, use_rth: bool) -> Option<Vec<BarCell>> {
    let items = as_seq(ctx, node, path)?;
    if items.is_empty() {
        ctx.err_hint(
            node.loc,
            path,
            "no bar cells",
            "e.g. `bars = [{ size = \"8 hours\", duration = \"6 M\" }]`",
        );
        return None;
    }
    let before = ctx.errors.len();
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let cpath = index(path, i);
        let Some(mut t) = Table::new(ctx, item, &cpath, CELL_KEYS) else {
            continue;
        };
        let size_node = t.required(ctx, "size");
        let size = size_node.and_then(|n| bar_size(ctx, n, &t.path("size")));
        let dur = t
            .required(ctx, "duration")
            .and_then(|n| duration(ctx, n, &t.path("duration")));
        t.finish(ctx);
        let (Some(size), Some(dur), Some(size_node)) = (size, dur, size_node) else {
            continue;
        };
        if size.is_daily_or_longer() {
            ctx.err_hint(
                size_node.loc,
                &child(&cpath, "size"),
                format!("options have no `{size}` bars"),
                "IB answers 162 `No data of type EODChart is available` for options: use `8 hours` bars (one per session)",
            );
            continue;
        }
        if size.strict_max_duration().unit == DurationUnit::Seconds
            && !use_rth
            && dur.approx_seconds() > size.strict_max_duration().approx_seconds()
        {
            ctx.err_hint(
                size_node.loc,
                &child(&cpath, "size"),
                format!("`{size}` x `{dur}` must be split into windows of seconds, which is only planned for regular trading hours"),
                "set `use-rth = true` for this phase, or shorten the duration",
            );
            continue;
        }
        let cell = BarCell {
            size,
            duration: dur,
        };
        if let Some(first) = seen.insert(cell, i) {
            ctx.err(
                item.loc,
                &cpath,
                format!("duplicate bar cell `{size}` x `{dur}` (also {path}[{first}])"),
            );
            continue;
        }
        out.push(cell);
    }
    (ctx.errors.len() == before).then_some(out)
}
