//! A phase's `select`: `all`, or `{ near-atm = { strikes, expiries, reference } }`.

use super::keys::{NEAR_ATM_KEYS, SELECT_KEYS};
use super::walker::{as_seq, as_str, child, index, int_in, Ctx, Table};
use super::{MAX_EXPIRIES, MAX_STRIKES};
use crate::cache::CloseSource;
use crate::plan::error::closest;
use crate::plan::node::{Node, Value};
use crate::plan::types::{NearAtmRule, Select};

pub(super) fn select(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    has_snapshot: bool,
) -> Option<Select> {
    if let Value::Str(s) = &node.value {
        if s == "all" {
            return Some(Select::All);
        }
        let hint = if s == "near-atm" {
            "near-atm needs its parameters: `select = { near-atm = { strikes = 10, expiries = 4 } }`"
        } else {
            "`all`, or `{ near-atm = { strikes = K, expiries = E, reference = [...] } }`"
        };
        ctx.err_hint(node.loc, path, format!("unknown selection `{s}`"), hint);
        return None;
    }
    let mut t = Table::new(ctx, node, path, SELECT_KEYS)?;
    let na = t.get("near-atm");
    t.finish(ctx);
    let Some(na) = na else {
        ctx.err_hint(
            node.loc,
            path,
            "empty selection",
            "`all`, or `{ near-atm = { strikes = K, expiries = E } }`",
        );
        return None;
    };
    let npath = child(path, "near-atm");
    let mut t = Table::new(ctx, na, &npath, NEAR_ATM_KEYS)?;
    let strikes = t
        .required(ctx, "strikes")
        .and_then(|n| int_in(ctx, n, &child(&npath, "strikes"), 1, MAX_STRIKES));
    let expiries = t
        .required(ctx, "expiries")
        .and_then(|n| int_in(ctx, n, &child(&npath, "expiries"), 1, MAX_EXPIRIES));
    let reference = match t.get("reference") {
        None => Some(if has_snapshot {
            vec![CloseSource::Snapshot, CloseSource::Cache]
        } else {
            vec![CloseSource::Cache]
        }),
        Some(n) => reference_sources(ctx, n, &child(&npath, "reference"), has_snapshot),
    };
    t.finish(ctx);
    Some(Select::NearAtm(NearAtmRule {
        strikes: u32::try_from(strikes?).ok()?,
        expiries: u32::try_from(expiries?).ok()?,
        reference: reference?,
    }))
}

fn reference_sources(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    has_snapshot: bool,
) -> Option<Vec<CloseSource>> {
    let items = as_seq(ctx, node, path)?;
    if items.is_empty() {
        ctx.err_hint(
            node.loc,
            path,
            "no reference sources",
            "some of `snapshot`, `cache`, `gateway`, in the order to try",
        );
        return None;
    }
    let before = ctx.errors.len();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ipath = index(path, i);
        let Some(s) = as_str(ctx, item, &ipath) else {
            continue;
        };
        let src = match s {
            "snapshot" => CloseSource::Snapshot,
            "cache" => CloseSource::Cache,
            "gateway" => CloseSource::Gateway,
            other => {
                let hint = match closest(other, ["snapshot", "cache", "gateway"]) {
                    Some(c) => format!("did you mean `{c}`? sources: snapshot, cache, gateway"),
                    None => "sources: snapshot, cache, gateway".to_string(),
                };
                ctx.err_hint(
                    item.loc,
                    &ipath,
                    format!("unknown reference source `{other}`"),
                    hint,
                );
                continue;
            }
        };
        if out.contains(&src) {
            ctx.err(item.loc, &ipath, format!("`{s}` is listed twice"));
            continue;
        }
        if src == CloseSource::Snapshot && !has_snapshot {
            ctx.err_hint(
                item.loc,
                &ipath,
                "`snapshot` needs a snapshot file",
                "set top-level `reference-snapshot = \"closes.csv\"` (symbol,date,close)",
            );
            continue;
        }
        out.push(src);
    }
    (ctx.errors.len() == before).then_some(out)
}
