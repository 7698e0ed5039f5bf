//! The `limits` key: a built-in table by name (`limits = "strict"`), or a table of per-bar-size
//! overrides with an optional `base` table (`[limits] base = "strict"`, `"8 hours" = "6 M"`).
//! Without the key, or without `base`, the table is `observed` ([`LimitTable::default`]).

use super::values::{bar_size, duration};
use super::walker::{as_str, child, Ctx};
use crate::bars::{BarSize, LimitTable, LIMIT_TABLES};
use crate::plan::error::closest;
use crate::plan::node::{Node, Value};
use crate::plan::types::{LimitOrigin, PlanLimits};
use std::collections::BTreeMap;

/// The key in a `[limits]` table that names the base table.
pub(super) const BASE_KEY: &str = "base";

/// What the two tables are, for hints.
const TABLES_HINT: &str =
    "`strict` (the older TWS API table, most requests) or `observed` (what gateways serve, the default)";

/// Decode the `limits` value.
pub(super) fn limits(ctx: &mut Ctx<'_>, node: &Node) -> Option<PlanLimits> {
    match &node.value {
        Value::Str(_) => Some(PlanLimits {
            base: table_name(ctx, node, "limits")?,
            origin: LimitOrigin::Plan,
            overrides: BTreeMap::new(),
        }),
        Value::Map(entries) => {
            let before = ctx.errors.len();
            let mut out = PlanLimits::default();
            let mut base_seen = false;
            for (k, v) in entries {
                let path = child("limits", &k.name);
                if k.name == BASE_KEY {
                    if base_seen {
                        ctx.err(k.loc, &path, "duplicate key `base`");
                    }
                    base_seen = true;
                    if let Some(t) = table_name(ctx, v, &path) {
                        out.base = t;
                        out.origin = LimitOrigin::Plan;
                    }
                    continue;
                }
                let near_base = k.name.parse::<BarSize>().is_err()
                    && BarSize::did_you_mean(&k.name).is_none()
                    && closest(&k.name, [BASE_KEY]).is_some();
                if near_base {
                    ctx.err_hint(
                        k.loc,
                        &path,
                        format!("unknown key `{}`", k.name),
                        format!(
                            "did you mean `{BASE_KEY}`? keys here are `{BASE_KEY}` and bar sizes"
                        ),
                    );
                    continue;
                }
                let key_node = Node {
                    value: Value::Str(k.name.clone()),
                    loc: k.loc,
                };
                let b = bar_size(ctx, &key_node, &path);
                let d = duration(ctx, v, &path);
                if let (Some(b), Some(d)) = (b, d) {
                    if d.approx_seconds() < 60 {
                        ctx.err_hint(
                            v.loc,
                            &path,
                            format!("limit `{d}` is too short"),
                            "at least `60 S`; IB's own table starts at `1800 S` for 1-second bars",
                        );
                        continue;
                    }
                    if out.overrides.insert(b, d).is_some() {
                        ctx.err(k.loc, &path, "duplicate limit for this bar size");
                    }
                }
            }
            (ctx.errors.len() == before).then_some(out)
        }
        _ => {
            ctx.err_hint(
                node.loc,
                "limits",
                format!(
                    "expected a table name or a table of bar size = duration, found {}",
                    node.value.type_name()
                ),
                format!("{TABLES_HINT}; or e.g. `[limits]` with `base = \"strict\"` and `\"8 hours\" = \"6 M\"`"),
            );
            None
        }
    }
}

/// A limit table name, with a did-you-mean.
fn table_name(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<LimitTable> {
    let s = as_str(ctx, node, path)?;
    match s.parse::<LimitTable>() {
        Ok(t) => Some(t),
        Err(e) => {
            let hint = match closest(s, LIMIT_TABLES.iter().map(|(_, n)| *n)) {
                Some(c) => format!("did you mean `{c}`? {TABLES_HINT}"),
                None => TABLES_HINT.to_string(),
            };
            ctx.err_hint(node.loc, path, e.to_string(), hint);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::bars::{BarSize, LimitTable};
    use crate::plan::{load_str, Format, LimitOrigin, PlanErrors, ValidatedPlan};
    use std::path::Path;

    /// A small TOML plan with `top` before the first table and `tables` after `[universe]`.
    fn toml(top: &str, tables: &str) -> Result<ValidatedPlan, PlanErrors> {
        let text = format!(
            "name = \"t\"\nscope = \"s\"\nend = \"2026-11-27\"\n{top}\n[universe]\nsymbols = [\"AAPL\"]\n{tables}\n[[phase]]\nname = \"hours\"\nbars = [{{ size = \"8 hours\", duration = \"6 M\" }}, {{ size = \"1 min\", duration = \"1 M\" }}]\n"
        );
        load_str(&text, Path::new("p.toml"), Format::Toml)
    }

    fn yaml(limits: &str) -> Result<ValidatedPlan, PlanErrors> {
        let text = format!(
            "name: t\nscope: s\nend: \"2026-11-27\"\nuniverse:\n  symbols: [AAPL]\n{limits}\nphase:\n  - name: hours\n    bars: [{{ size: 8 hours, duration: 6 M }}, {{ size: 1 min, duration: 1 M }}]\n"
        );
        load_str(&text, Path::new("p.yaml"), Format::Yaml)
    }

    fn first_error(r: Result<ValidatedPlan, PlanErrors>) -> String {
        r.expect_err("the plan must be refused").0[0].to_string()
    }

    #[test]
    fn observed_is_the_default() {
        for p in [toml("", "").unwrap(), yaml("").unwrap()] {
            assert_eq!(p.limits.base, LimitTable::Observed);
            assert_eq!(p.limits.origin, LimitOrigin::Default);
            assert_eq!(p.limit(BarSize::Min1).to_string(), "1 M");
            assert_eq!(p.limit(BarSize::Hours8).to_string(), "1 Y");
        }
    }

    #[test]
    fn a_table_by_name() {
        for p in [
            toml("limits = \"strict\"", "").unwrap(),
            yaml("limits: strict").unwrap(),
        ] {
            assert_eq!(p.limits.base, LimitTable::Strict);
            assert_eq!(p.limits.origin, LimitOrigin::Plan);
            assert!(p.limits.overrides.is_empty());
            assert_eq!(p.limit(BarSize::Min1).to_string(), "1 D");
            assert_eq!(p.limit(BarSize::Hours8).to_string(), "1 M");
        }
        let p = toml("limits = \"observed\"", "").unwrap();
        assert_eq!(
            (p.limits.base, p.limits.origin),
            (LimitTable::Observed, LimitOrigin::Plan)
        );
    }

    #[test]
    fn overrides_on_a_base() {
        for p in [
            toml("", "[limits]\nbase = \"strict\"\n\"8 hours\" = \"6 M\"").unwrap(),
            yaml("limits:\n  base: strict\n  \"8 hours\": 6 M").unwrap(),
        ] {
            assert_eq!(p.limits.base, LimitTable::Strict);
            assert_eq!(p.limits.origin, LimitOrigin::Plan);
            assert_eq!(p.limit(BarSize::Hours8).to_string(), "6 M");
            assert_eq!(p.limit(BarSize::Min1).to_string(), "1 D");
        }
        // Without `base`, overrides sit on the observed default.
        let p = toml("", "[limits]\n\"8 hours\" = \"6 M\"").unwrap();
        assert_eq!(
            (p.limits.base, p.limits.origin),
            (LimitTable::Observed, LimitOrigin::Default)
        );
        assert_eq!(p.limit(BarSize::Hours8).to_string(), "6 M");
        assert_eq!(p.limit(BarSize::Min1).to_string(), "1 M");
    }

    #[test]
    fn bad_values_are_located_with_hints() {
        let e = first_error(toml("limits = \"strcit\"", ""));
        assert_eq!(
            e,
            "p.toml:4:10: limits: unknown limit table `strcit` (hint: did you mean `strict`? `strict` (the older TWS API table, most requests) or `observed` (what gateways serve, the default))"
        );
        let e = first_error(toml("limits = 3", ""));
        assert!(
            e.starts_with("p.toml:4:10: limits: expected a table name or a table of bar size = duration, found an integer (hint: `strict`"),
            "{e}"
        );
        let e = first_error(toml("", "[limits]\nbase = \"lenient\""));
        assert!(
            e.starts_with("p.toml:8:8: limits.base: unknown limit table `lenient` (hint: `strict`"),
            "{e}"
        );
        let e = first_error(toml("", "[limits]\nbsae = \"strict\""));
        assert_eq!(
            e,
            "p.toml:8:1: limits.bsae: unknown key `bsae` (hint: did you mean `base`? keys here are `base` and bar sizes)"
        );
        let e = first_error(toml("", "[limits]\nbase = 1"));
        assert!(e.contains("limits.base: expected a string"), "{e}");
        let e = first_error(yaml("limits:\n  base: strictt"));
        assert!(
            e.starts_with("p.yaml:7:9: limits.base: unknown limit table `strictt` (hint: did you mean `strict`?"),
            "{e}"
        );
        // A top-level string after a table header lands in that table: say where it belongs.
        let e = first_error(toml("", "limits = \"strict\""));
        assert_eq!(
            e,
            "p.toml:7:1: universe.limits: unknown key `limits` (hint: `limits` is a top-level key: in TOML, write it before the first `[table]` header)"
        );
        let e = first_error(yaml("limits: [strict]"));
        assert!(
            e.starts_with("p.yaml:6:9: limits: expected a table name"),
            "{e}"
        );
    }
}
