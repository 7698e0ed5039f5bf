//! Cross-phase check on output files: every bar cell writes
//! `.../{SYMBOL}/{conId}/{WHAT}/{BAR}.parquet`, whatever its phase, duration or `use-rth`, so two
//! cells with the same what-to-show and bar size share a file. Regular-hours and extended-hours
//! bars of one contract would then mix in one series, so such cells must agree on `use-rth`.
//! (Different durations are fine: the file holds the union of their windows.)

use super::walker::{child, index, Ctx};
use crate::bars::BarSize;
use crate::plan::node::{Loc, Node, Value};
use crate::plan::types::Phase;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// Report, at the later phase's `use-rth` key (or its `bars` key when `use-rth` is left at its
/// default), every pair of phases whose cells share an output file but not `use-rth`.
/// `items` are the phase nodes as written, `phases` their decoded values (None when invalid).
pub(super) fn check_use_rth(ctx: &mut Ctx<'_>, items: &[Node], phases: &[Option<Phase>]) {
    // (what-to-show, bar size) -> index of the first phase writing that file.
    let mut first: BTreeMap<(&str, BarSize), usize> = BTreeMap::new();
    for (i, p) in phases.iter().enumerate() {
        let Some(p) = p else { continue };
        // Conflicting bar sizes per earlier phase, in plan order.
        let mut conflicts: BTreeMap<usize, Vec<BarSize>> = BTreeMap::new();
        for cell in &p.bars {
            match first.entry((p.what.as_str(), cell.size)) {
                Entry::Vacant(v) => {
                    v.insert(i);
                }
                Entry::Occupied(o) => {
                    let j = *o.get();
                    let other = phases[j].as_ref().map(|q| q.use_rth);
                    if j != i && other != Some(p.use_rth) {
                        let sizes = conflicts.entry(j).or_default();
                        if !sizes.contains(&cell.size) {
                            sizes.push(cell.size);
                        }
                    }
                }
            }
        }
        for (j, sizes) in conflicts {
            let Some(q) = &phases[j] else { continue };
            let (loc, key) = rth_or_bars_key(&items[i]);
            let bars: Vec<String> = sizes.iter().map(|s| format!("`{s}`")).collect();
            ctx.err_hint(
                loc,
                &child(&index("phase", i), key),
                format!(
                    "phase `{}` (use-rth = {}) and phase `{}` (use-rth = {}) write the same {} {} files",
                    p.name,
                    p.use_rth,
                    q.name,
                    q.use_rth,
                    p.what,
                    bars.join(", ")
                ),
                "a file is one series per contract, what-to-show and bar size: give both phases the same `use-rth`, or a different bar size or what-to-show",
            );
        }
    }
}

/// Where the phase writes `use-rth`, else where it writes `bars`, else the phase itself.
fn rth_or_bars_key(item: &Node) -> (Loc, &'static str) {
    let Value::Map(entries) = &item.value else {
        return (item.loc, "use-rth");
    };
    for key in ["use-rth", "bars"] {
        if let Some((k, _)) = entries.iter().find(|(k, _)| k.name == key) {
            return (k.loc, key);
        }
    }
    (item.loc, "use-rth")
}

#[cfg(test)]
mod tests {
    use crate::plan::{load_str, Format, PlanErrors, ValidatedPlan};
    use std::path::Path;

    fn plan(phases: &str) -> Result<ValidatedPlan, PlanErrors> {
        let text = format!(
            "name = \"t\"\nscope = \"s\"\nend = \"2026-11-27\"\n[universe]\nsymbols = [\"AAPL\"]\n{phases}"
        );
        load_str(&text, Path::new("p.toml"), Format::Toml)
    }

    #[test]
    fn same_file_with_other_use_rth_is_refused_at_the_later_phase() {
        let e = plan(
            "[[phase]]\nname = \"a\"\nuse-rth = false\nbars = [{ size = \"8 hours\", duration = \"6 M\" }]\n\
             [[phase]]\nname = \"b\"\nuse-rth = true\nbars = [{ size = \"8 hours\", duration = \"1 M\" }, { size = \"30 mins\", duration = \"1 M\" }]\n",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        let msg = e.0[0].to_string();
        assert!(
            msg.starts_with("p.toml:12:1: phase[1].use-rth: phase `b` (use-rth = true) and phase `a` (use-rth = false) write the same TRADES `8 hours` files (hint: "),
            "{msg}"
        );
    }

    #[test]
    fn a_defaulted_use_rth_is_reported_at_bars() {
        let e = plan(
            "[[phase]]\nname = \"a\"\nuse-rth = false\nbars = [{ size = \"30 mins\", duration = \"1 M\" }]\n\
             [[phase]]\nname = \"b\"\nbars = [{ size = \"30 mins\", duration = \"1 W\" }]\n",
        )
        .unwrap_err();
        let msg = e.0[0].to_string();
        assert!(
            msg.starts_with("p.toml:12:1: phase[1].bars: phase `b` (use-rth = true)"),
            "{msg}"
        );
    }

    #[test]
    fn other_files_or_same_use_rth_are_fine() {
        // Same file, different durations, same use-rth.
        let p = plan(
            "[[phase]]\nname = \"a\"\nbars = [{ size = \"8 hours\", duration = \"6 M\" }]\n\
             [[phase]]\nname = \"b\"\nuse-rth = true\nbars = [{ size = \"8 hours\", duration = \"1 M\" }]\n",
        );
        assert!(p.is_ok(), "{:?}", p.err());
        // Different use-rth, but another what-to-show or bar size: other files.
        let p = plan(
            "[[phase]]\nname = \"a\"\nbars = [{ size = \"8 hours\", duration = \"6 M\" }]\n\
             [[phase]]\nname = \"b\"\nuse-rth = false\nwhat-to-show = \"MIDPOINT\"\nbars = [{ size = \"8 hours\", duration = \"1 M\" }]\n\
             [[phase]]\nname = \"c\"\nuse-rth = false\nbars = [{ size = \"1 hour\", duration = \"1 M\" }]\n",
        );
        assert!(p.is_ok(), "{:?}", p.err());
    }
}
