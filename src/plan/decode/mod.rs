//! Decode and validate a located document tree into a [`ValidatedPlan`], collecting every error.
//!
//! One walker for both formats (the `walker` module): each key is looked up by its kebab-case name, every
//! value is checked where it is read, and anything left over is an unknown key (with a
//! did-you-mean). All errors carry the location of the offending value or key and its key path.
//! The sections have a module each; the keys they accept are in the `keys` module.

use crate::plan::error::closest;
use crate::plan::node::Node;
use crate::plan::types::*;
use keys::TOP_KEYS;
use source::{input_file, resolve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use values::path_name;
use walker::{as_str, Table};

mod end;
#[cfg(test)]
mod end_tests;
mod indices;
mod keys;
mod limits;
mod outputs;
mod phases;
mod select;
mod settings;
mod source;
mod universe;
mod values;
mod walker;

pub(crate) use walker::Ctx;

/// Largest K (strikes per right and expiry) a near-ATM phase may ask for.
pub const MAX_STRIKES: i64 = 50;
/// Largest E (expiries) a near-ATM phase may ask for.
pub const MAX_EXPIRIES: i64 = 12;
/// Longest duration a plan may name: the span of the trading calendar. Longer ones could only
/// fail later, and would overflow date arithmetic.
pub const MAX_DURATION_SECS: i64 =
    (crate::calendar::MAX_YEAR - crate::calendar::MIN_YEAR + 1) as i64 * 366 * 86_400;
/// Largest batch count.
pub const MAX_BATCH_COUNT: i64 = 10_000;

/// Decode the whole plan. Returns `None` when any error was recorded in `ctx`.
pub(crate) fn decode_plan(
    ctx: &mut Ctx<'_>,
    root: &Node,
    plan_path: &Path,
) -> Option<ValidatedPlan> {
    let plan_dir = plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut top = Table::new(ctx, root, "", TOP_KEYS)?;

    let name = top
        .required(ctx, "name")
        .and_then(|n| path_name(ctx, n, "name"));
    let scope = top
        .required(ctx, "scope")
        .and_then(|n| path_name(ctx, n, "scope"));
    let output_root = root_dir(ctx, top.get("output-root"), "output-root", "data_test");
    let state_root = root_dir(ctx, top.get("state-root"), "state-root", "state");
    let time_zone = match top.get("time-zone") {
        None => Some(chrono_tz::America::New_York),
        Some(n) => time_zone(ctx, n),
    };

    let end = top.required(ctx, "end").and_then(|n| end::end_spec(ctx, n));

    let mut reference_closes = BTreeMap::new();
    let reference_snapshot = match top.get("reference-snapshot") {
        None => Some(None),
        Some(n) => reference_snapshot(ctx, n, &plan_dir).map(|(p, closes)| {
            reference_closes = closes;
            Some(p)
        }),
    };
    let has_snapshot = matches!(reference_snapshot, Some(Some(_)));

    let universe = top
        .required(ctx, "universe")
        .and_then(|n| universe::universe(ctx, n, &plan_dir, state_root.as_deref()));

    let batching = match top.get("batching") {
        None => Some(Batching::default()),
        Some(n) => settings::batching(ctx, n),
    };
    let gateway = match top.get("gateway") {
        None => Some(GatewaySettings::default()),
        Some(n) => settings::gateway(ctx, n),
    };
    let limits = match top.get("limits") {
        None => Some(PlanLimits::default()),
        Some(n) => limits::limits(ctx, n),
    };
    let phases = top
        .required(ctx, "phase")
        .and_then(|n| phases::phases(ctx, n, has_snapshot));
    top.finish(ctx);

    if !ctx.errors.is_empty() {
        return None;
    }
    Some(ValidatedPlan {
        path: plan_path.to_path_buf(),
        name: name?,
        scope: scope?,
        output_root: output_root?,
        state_root: state_root?,
        time_zone: time_zone?,
        end: end?,
        reference_snapshot: reference_snapshot?,
        reference_closes,
        universe: universe?,
        batching: batching?,
        gateway: gateway?,
        limits: limits?,
        phases: phases?,
    })
}

/// `output-root` or `state-root`: a directory relative to the working directory, `default`
/// when absent.
fn root_dir(ctx: &mut Ctx<'_>, node: Option<&Node>, key: &str, default: &str) -> Option<PathBuf> {
    let Some(n) = node else {
        return Some(PathBuf::from(default));
    };
    let s = as_str(ctx, n, key)?;
    if s.trim().is_empty() {
        ctx.err(n.loc, key, "must not be empty");
        return None;
    }
    Some(PathBuf::from(s))
}

/// `time-zone`: an IANA name, with a did-you-mean.
fn time_zone(ctx: &mut Ctx<'_>, n: &Node) -> Option<chrono_tz::Tz> {
    let s = as_str(ctx, n, "time-zone")?;
    match s.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let hint = match closest(s, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name())) {
                Some(c) => format!("did you mean `{c}`? an IANA name"),
                None => "an IANA name such as `America/New_York`".to_string(),
            };
            ctx.err_hint(n.loc, "time-zone", format!("unknown time zone `{s}`"), hint);
            None
        }
    }
}

/// `reference-snapshot`: the file (resolved against the plan's directory) and its closes.
fn reference_snapshot(
    ctx: &mut Ctx<'_>,
    n: &Node,
    plan_dir: &Path,
) -> Option<(PathBuf, crate::inputs::closes::Closes)> {
    let s = as_str(ctx, n, "reference-snapshot")?;
    let p = resolve(plan_dir, s);
    let closes = input_file(
        ctx,
        n.loc,
        "reference-snapshot",
        &p,
        crate::inputs::closes::read,
    )?;
    Some((p, closes))
}
