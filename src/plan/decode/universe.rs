//! The `universe` section: symbols inline or from a file, indices, and the contracts cache.

use super::indices;
use super::keys::UNIVERSE_KEYS;
use super::source::{input_file, resolve};
use super::walker::{as_seq, as_str, index, Ctx, Table};
use crate::cache::check_symbol;
use crate::plan::node::{Loc, Node};
use crate::plan::types::{OnMissingCache, Universe};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(super) fn universe(
    ctx: &mut Ctx<'_>,
    node: &Node,
    plan_dir: &Path,
    state_root: Option<&Path>,
) -> Option<Universe> {
    let mut t = Table::new(ctx, node, "universe", UNIVERSE_KEYS)?;
    let inline = t.get("symbols");
    let file = t.get("symbols-file");
    let mut symbols_file = None;
    let symbols = match (inline, file) {
        (Some(_), Some(f)) => {
            ctx.err_hint(
                f.loc,
                "universe.symbols-file",
                "`symbols` and `symbols-file` are both set",
                "keep one of them",
            );
            None
        }
        (None, None) => {
            ctx.err_hint(
                t.loc,
                "universe",
                "no symbols",
                "set `symbols = [\"AAPL\", ...]` or `symbols-file = \"universe.csv\"`",
            );
            None
        }
        (Some(list), None) => {
            let items = as_seq(ctx, list, "universe.symbols")?;
            let mut out = Vec::new();
            let mut seen = HashMap::new();
            let before = ctx.errors.len();
            for (i, item) in items.iter().enumerate() {
                let path = index("universe.symbols", i);
                let Some(s) = as_str(ctx, item, &path) else {
                    continue;
                };
                check_universe_symbol(ctx, s, item.loc, &path, &mut seen, i);
                out.push(s.to_string());
            }
            if items.is_empty() {
                ctx.err(list.loc, "universe.symbols", "the list is empty");
            }
            (ctx.errors.len() == before).then_some(out)
        }
        (None, Some(f)) => {
            let s = as_str(ctx, f, "universe.symbols-file")?;
            let p = resolve(plan_dir, s);
            symbols_file = Some(p.clone());
            input_file(
                ctx,
                f.loc,
                "universe.symbols-file",
                &p,
                crate::inputs::symbols::read,
            )
        }
    };
    let contracts_cache = match t.get("contracts-cache") {
        None => Some(
            state_root
                .unwrap_or(Path::new("state"))
                .join("contracts_cache"),
        ),
        Some(n) => as_str(ctx, n, "universe.contracts-cache").map(PathBuf::from),
    };
    let on_missing_cache = match t.get("on-missing-cache") {
        None => Some(OnMissingCache::Skip),
        Some(n) => as_str(ctx, n, "universe.on-missing-cache").and_then(|s| match s {
            "skip" => Some(OnMissingCache::Skip),
            "fail" => Some(OnMissingCache::Fail),
            other => {
                ctx.err_hint(
                    n.loc,
                    "universe.on-missing-cache",
                    format!("unknown value `{other}`"),
                    "`skip` (record the symbol and go on) or `fail`",
                );
                None
            }
        }),
    };
    let indices = t
        .get("indices")
        .map(|n| indices::decode(ctx, n, symbols.as_deref()));
    t.finish(ctx);
    Some(Universe {
        indices: indices.unwrap_or(Some(Default::default()))?,
        symbols: symbols?,
        symbols_file,
        contracts_cache: contracts_cache?,
        on_missing_cache: on_missing_cache?,
    })
}

fn check_universe_symbol(
    ctx: &mut Ctx<'_>,
    s: &str,
    loc: Loc,
    path: &str,
    seen: &mut HashMap<String, usize>,
    i: usize,
) {
    if let Err(e) = check_symbol(s) {
        ctx.err_hint(
            loc,
            path,
            e.to_string(),
            "letters, digits, `.`, `-`, `_` and inner spaces only (e.g. `BRK B`)",
        );
    } else if let Some(first) = seen.insert(s.to_string(), i) {
        ctx.err(
            loc,
            path,
            format!("duplicate symbol `{s}` (first at entry {first})"),
        );
    }
}
