//! `plan --diff OLD_MANIFEST`: what a new compile adds, removes and changes compared with an
//! earlier manifest, per phase, bar size and symbol, in the spirit of `terraform plan`.
//!
//! Tasks are compared by id (the canonical request), so a moved window is a removal plus an
//! addition; near-ATM selections are compared by their rule, expiries, candidates and count.

use super::dryrun::thousands;
use super::manifest::Manifest;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

/// Counts of one (phase, bar size, symbol) group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDiff {
    /// Requests only in the new manifest.
    pub added: u64,
    /// Requests only in the old manifest.
    pub removed: u64,
    /// Near-ATM selection whose rule, expiries or candidates changed (requests old -> new).
    pub changed: Option<(u64, u64)>,
}

/// The whole difference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Top-level settings that changed, as `what: old -> new`.
    pub settings: Vec<String>,
    /// Per (phase, bar size, symbol).
    pub groups: BTreeMap<(String, String, String), GroupDiff>,
}

impl Diff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.groups.is_empty()
    }
}

/// Compare two manifests.
pub fn diff(old: &Manifest, new: &Manifest) -> Diff {
    let mut d = Diff::default();
    diff_settings(&mut d, old, new);
    diff_tasks(&mut d, old, new);
    diff_selections(&mut d, old, new);
    d
}

/// Settings that change what is asked (end, shard, scope, gateway, limits, missing caches).
fn diff_settings(d: &mut Diff, old: &Manifest, new: &Manifest) {
    let mut setting = |what: &str, a: String, b: String| {
        if a != b {
            d.settings.push(format!("{what}: {a} -> {b}"));
        }
    };
    setting(
        "end",
        old.end.session.to_string(),
        new.end.session.to_string(),
    );
    setting(
        "batch",
        format!("{} of {}", old.batch.index, old.batch.count),
        format!("{} of {}", new.batch.index, new.batch.count),
    );
    setting("scope", old.plan.scope.clone(), new.plan.scope.clone());
    setting(
        "gateway",
        format!("{:?}", old.gateway),
        format!("{:?}", new.gateway),
    );
    // The table and overrides, not where the table came from: naming the default changes
    // no request.
    let limits = |m: &Manifest| format!("{}{}", m.limit_table, super::dryrun::overrides_label(m));
    setting("limits", limits(old), limits(new));
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    setting(
        "missing caches",
        list(&old.missing_cache),
        list(&new.missing_cache),
    );
}

/// Fixed tasks added and removed, by task id.
fn diff_tasks(d: &mut Diff, old: &Manifest, new: &Manifest) {
    let old_ids: HashSet<&str> = old.tasks.iter().map(|t| t.id.as_str()).collect();
    let new_ids: HashSet<&str> = new.tasks.iter().map(|t| t.id.as_str()).collect();
    for t in &new.tasks {
        if !old_ids.contains(t.id.as_str()) {
            d.groups
                .entry((
                    t.phase.to_string(),
                    t.bar_size.to_string(),
                    t.symbol.to_string(),
                ))
                .or_default()
                .added += 1;
        }
    }
    for t in &old.tasks {
        if !new_ids.contains(t.id.as_str()) {
            d.groups
                .entry((
                    t.phase.to_string(),
                    t.bar_size.to_string(),
                    t.symbol.to_string(),
                ))
                .or_default()
                .removed += 1;
        }
    }
}

/// Near-ATM selections, per (phase, symbol), split by bar size through their cells.
fn diff_selections(d: &mut Diff, old: &Manifest, new: &Manifest) {
    let key = |s: &super::manifest::Selection| (s.phase.clone(), s.symbol.clone());
    let old_sel: BTreeMap<_, _> = old.selections.iter().map(|s| (key(s), s)).collect();
    let new_sel: BTreeMap<_, _> = new.selections.iter().map(|s| (key(s), s)).collect();
    let per_bar = |s: &super::manifest::Selection| -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for c in &s.cells {
            *m.entry(c.size.to_string()).or_default() +=
                u64::from(s.contracts) * c.windows.len() as u64;
        }
        m
    };
    let keys: std::collections::BTreeSet<_> =
        old_sel.keys().chain(new_sel.keys()).cloned().collect();
    for k in keys {
        match (old_sel.get(&k), new_sel.get(&k)) {
            (None, Some(n)) => {
                for (bar, r) in per_bar(n) {
                    d.groups
                        .entry((k.0.clone(), bar, k.1.clone()))
                        .or_default()
                        .added += r;
                }
            }
            (Some(o), None) => {
                for (bar, r) in per_bar(o) {
                    d.groups
                        .entry((k.0.clone(), bar, k.1.clone()))
                        .or_default()
                        .removed += r;
                }
            }
            (Some(o), Some(n)) => {
                let same = o.rule == n.rule
                    && o.expiries == n.expiries
                    && o.candidates == n.candidates
                    && o.cells == n.cells
                    && o.what == n.what
                    && o.use_rth == n.use_rth;
                if !same {
                    let (ob, nb) = (per_bar(o), per_bar(n));
                    let bars: std::collections::BTreeSet<_> =
                        ob.keys().chain(nb.keys()).cloned().collect();
                    for bar in bars {
                        let a = ob.get(&bar).copied().unwrap_or(0);
                        let b = nb.get(&bar).copied().unwrap_or(0);
                        d.groups
                            .entry((k.0.clone(), bar, k.1.clone()))
                            .or_default()
                            .changed = Some((a, b));
                    }
                }
            }
            (None, None) => {}
        }
    }
}

/// Render a diff like `terraform plan`: `+` added, `-` removed, `~` changed, then a summary.
pub fn render(d: &Diff) -> String {
    let mut o = String::new();
    if d.is_empty() {
        o.push_str("No changes: the new manifest plans exactly the same requests.\n");
        return o;
    }
    for s in &d.settings {
        let _ = writeln!(o, "~ {s}");
    }
    let (mut add, mut remove, mut change) = (0u64, 0u64, 0u64);
    for ((phase, bar, symbol), g) in &d.groups {
        let label = format!("{phase} / {bar} / {symbol}");
        if let Some((a, b)) = g.changed {
            change += 1;
            let _ = writeln!(
                o,
                "~ {label}: near-ATM selection changed, {} -> {} requests",
                thousands(a),
                thousands(b)
            );
        }
        if g.added > 0 && g.removed > 0 {
            let _ = writeln!(
                o,
                "~ {label}: +{} -{} requests",
                thousands(g.added),
                thousands(g.removed)
            );
        } else if g.added > 0 {
            let _ = writeln!(o, "+ {label}: {} requests", thousands(g.added));
        } else if g.removed > 0 {
            let _ = writeln!(o, "- {label}: {} requests", thousands(g.removed));
        }
        add += g.added;
        remove += g.removed;
    }
    let _ = writeln!(
        o,
        "\nPlan: {} requests to add, {} to remove, {} selections changed.",
        thousands(add),
        thousands(remove),
        change
    );
    o
}
