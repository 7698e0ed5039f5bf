//! Scalar values shared by several sections: names that become paths, human durations
//! (gateway timeouts), IB bar sizes and IB durations.

use super::walker::{as_str, Ctx};
use super::MAX_DURATION_SECS;
use crate::bars::{BarSize, Duration};
use crate::cache::check_symbol;
use crate::plan::node::Node;

/// A name used as a path component (plan name, scope, phase name).
pub(super) fn path_name(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let s = as_str(ctx, node, path)?;
    if let Err(e) = check_symbol(s) {
        ctx.err_hint(
            node.loc,
            path,
            format!("`{s}` is not allowed: {}", e.why),
            "it becomes a file or directory name: use letters, digits, `.`, `-`, `_`",
        );
        return None;
    }
    if s.contains(' ') {
        ctx.err_hint(
            node.loc,
            path,
            format!("`{s}` contains a space"),
            "it becomes a file or directory name: use letters, digits, `.`, `-`, `_`",
        );
        return None;
    }
    Some(s.to_string())
}

/// A human duration in milliseconds (rules in [`crate::inputs::duration`]).
pub(super) fn human_duration(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    min_ms: u64,
) -> Option<u64> {
    let s = as_str(ctx, node, path)?;
    let ms = crate::inputs::duration::parse(s)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    match ms {
        Some(ms) if ms >= min_ms => Some(ms),
        Some(_) => {
            ctx.err_hint(
                node.loc,
                path,
                format!("`{s}` is too short"),
                format!("at least {} ms", min_ms),
            );
            None
        }
        None => {
            ctx.err_hint(
                node.loc,
                path,
                format!("bad duration `{s}`"),
                crate::inputs::duration::HINT,
            );
            None
        }
    }
}

pub(super) fn bar_size(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BarSize> {
    let s = as_str(ctx, node, path)?;
    match s.parse::<BarSize>() {
        Ok(b) => Some(b),
        Err(e) => {
            let hint = match BarSize::did_you_mean(s) {
                Some(m) => format!("did you mean `{m}`? legal: {}", BarSize::legal_list()),
                None => format!("legal: {}", BarSize::legal_list()),
            };
            ctx.err_hint(node.loc, path, e.to_string(), hint);
            None
        }
    }
}

pub(super) fn duration(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Duration> {
    let s = as_str(ctx, node, path)?;
    match s.parse::<Duration>() {
        Ok(d) if d.approx_seconds() > MAX_DURATION_SECS => {
            ctx.err_hint(
                node.loc,
                path,
                format!("duration `{s}` reaches further back than the trading calendar"),
                format!(
                    "the calendar covers {}-{}: at most {} Y",
                    crate::calendar::MIN_YEAR,
                    crate::calendar::MAX_YEAR,
                    crate::calendar::MAX_YEAR - crate::calendar::MIN_YEAR + 1
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            let mut hint = "grammar `N S|D|W|M|Y` with N a positive integer and one space, e.g. `6 M`, `1 D`, `3600 S`".to_string();
            let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            if let Some(split) = compact.find(|c: char| c.is_ascii_alphabetic()) {
                let guess = format!("{} {}", &compact[..split], compact[split..].to_uppercase());
                if guess.parse::<Duration>().is_ok() {
                    hint = format!("did you mean `{guess}`? {hint}");
                }
            }
            ctx.err_hint(node.loc, path, format!("bad duration `{s}`"), hint);
            None
        }
    }
}
