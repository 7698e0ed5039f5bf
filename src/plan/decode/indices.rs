//! `universe.indices`: which of the universe's symbols are indices (IB secType `IND`, e.g.
//! SPX). IB qualifies an index, lists its options (reqSecDefOptParams) and charts its closes
//! only under `IND` on the index's exchange, so the plan says it once and `discover` and the
//! executor's gateway closes follow.

use super::walker::{as_seq, as_str, index, Ctx};
use crate::plan::node::Node;
use std::collections::BTreeSet;

/// The index symbols; every entry must be a string naming one of `symbols` (None: the symbols
/// themselves were invalid, so membership is not checked), without duplicates.
pub(super) fn decode(
    ctx: &mut Ctx<'_>,
    node: &Node,
    symbols: Option<&[String]>,
) -> Option<BTreeSet<String>> {
    let items = as_seq(ctx, node, "universe.indices")?;
    let before = ctx.errors.len();
    let mut out = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let path = index("universe.indices", i);
        let Some(s) = as_str(ctx, item, &path) else {
            continue;
        };
        if let Some(symbols) = symbols {
            if !symbols.iter().any(|x| x == s) {
                let hint = match s.split_once(':') {
                    Some((sym, _)) => format!("write the symbol alone (`{sym}`) and list it in the universe's symbols"),
                    None => "list the index among the universe's symbols too (e.g. `symbols = [\"SPX\", \"SPY\"]`, `indices = [\"SPX\"]`)".into(),
                };
                ctx.err_hint(
                    item.loc,
                    &path,
                    format!("`{s}` is not one of the universe's symbols"),
                    hint,
                );
                continue;
            }
        }
        if !out.insert(s.to_string()) {
            ctx.err(item.loc, &path, format!("duplicate index `{s}`"));
        }
    }
    (ctx.errors.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    fn load(universe: &str) -> Result<crate::plan::ValidatedPlan, String> {
        let text = format!(
            "name = \"t\"\nscope = \"s\"\nend = \"2026-11-27\"\n[universe]\n{universe}\n[[phase]]\nname = \"hours\"\nbars = [{{ size = \"8 hours\", duration = \"1 M\" }}]\n"
        );
        crate::plan::load_str(
            &text,
            std::path::Path::new("p.toml"),
            crate::plan::Format::Toml,
        )
        .map_err(|e| {
            e.0.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn indices_name_symbols_of_the_universe() {
        let p = load("symbols = [\"SPX\", \"SPY\"]\nindices = [\"SPX\"]").unwrap();
        assert_eq!(p.universe.indices.iter().collect::<Vec<_>>(), ["SPX"]);
        let p = load("symbols = [\"SPY\"]").unwrap();
        assert!(p.universe.indices.is_empty());
    }

    #[test]
    fn bad_indices_are_located() {
        let e = load("symbols = [\"SPY\"]\nindices = [\"SPX\"]").unwrap_err();
        assert!(
            e.contains(
                "p.toml:6:12: universe.indices[0]: `SPX` is not one of the universe's symbols"
            ),
            "{e}"
        );
        let e = load("symbols = [\"SPX\"]\nindices = [\"SPX:IND\"]").unwrap_err();
        assert!(e.contains("write the symbol alone (`SPX`)"), "{e}");
        let e = load("symbols = [\"SPX\"]\nindices = [\"SPX\", \"SPX\"]").unwrap_err();
        assert!(
            e.contains("universe.indices[1]: duplicate index `SPX`"),
            "{e}"
        );
        let e = load("symbols = [\"SPX\"]\nindices = \"SPX\"").unwrap_err();
        assert!(e.contains("universe.indices: expected a list"), "{e}");
        let e = load("symbols = [\"SPX\"]\nindices = [3]").unwrap_err();
        assert!(e.contains("universe.indices[0]: expected a string"), "{e}");
    }
}
