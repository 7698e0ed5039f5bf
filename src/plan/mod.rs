//! The plan file model (TOML or YAML) and its validation with located errors.
//!
//! Users author plans in git; [`load`] turns one into a [`ValidatedPlan`] or into
//! [`PlanErrors`] listing *every* problem as `FILE:LINE:COL: key.path: message (hint: ...)`, so a
//! bad plan is fixed in one pass and never reaches a weekend run.

pub mod decode;
pub mod error;
pub mod file;
pub mod node;
pub mod types;

pub use error::{PlanError, PlanErrors};
pub use types::*;

use std::path::Path;

/// `whatToShow` values IB serves for options (other values exist for stocks and indices); the
/// closed set is [`crate::bars::WhatToShow`].
pub const WHAT_TO_SHOW: &[&str] = crate::bars::WHAT_TO_SHOW_SPELLINGS;

/// The syntax of a plan file, chosen from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.toml`
    Toml,
    /// `.yaml` or `.yml`
    Yaml,
}

impl Format {
    /// The format of `path` by extension, if known.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Some(Format::Toml),
            Some("yaml") | Some("yml") => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Read, parse and validate a plan file. Relative paths inside the plan that name inputs
/// authored with it (`symbols-file`, `reference-snapshot`) are resolved against the plan's
/// directory; runtime directories (`output-root`, `state-root`, `contracts-cache`) stay as
/// written, relative to the working directory.
pub fn load(path: &Path) -> Result<ValidatedPlan, PlanErrors> {
    let at_start = |msg: String, hint: &str| {
        PlanErrors(vec![PlanError::new(
            path,
            node::Loc { line: 1, col: 1 },
            "",
            msg,
        )
        .with_hint(hint)])
    };
    let Some(format) = Format::of(path) else {
        return Err(at_start(
            "unknown plan file type".into(),
            "plan files end in `.toml`, `.yaml` or `.yml`",
        ));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| at_start(format!("cannot read the plan: {e}"), "check the path"))?;
    load_str(&text, path, format)
}

/// Parse and validate plan text; `path` is used in error messages and to resolve relative paths.
pub fn load_str(text: &str, path: &Path, format: Format) -> Result<ValidatedPlan, PlanErrors> {
    let parsed = match format {
        Format::Toml => node::parse_toml(text),
        Format::Yaml => node::parse_yaml(text),
    };
    let root = parsed.map_err(|e| {
        let fmt = if format == Format::Toml {
            "TOML"
        } else {
            "YAML"
        };
        PlanErrors(vec![PlanError::new(
            path,
            e.loc,
            "",
            format!("{fmt} syntax error: {}", e.message),
        )])
    })?;
    let mut ctx = decode::Ctx::new(path);
    let plan = decode::decode_plan(&mut ctx, &root, path);
    match plan {
        Some(p) if ctx.errors.is_empty() => Ok(p),
        _ => {
            let mut errs = PlanErrors(ctx.errors);
            if errs.is_empty() {
                errs.0
                    .push(PlanError::new(path, root.loc, "", "the plan is invalid"));
            }
            errs.sort();
            Err(errs)
        }
    }
}

/// Every dependency cycle among phases given as (name, depends-on) pairs, each cycle as its
/// member names in dependency order, starting from the member declared first. Self-loops are
/// included. Deterministic.
pub fn find_cycles(phases: &[(String, Vec<String>)]) -> Vec<Vec<String>> {
    use petgraph::graph::DiGraph;
    let pos = |name: &str| phases.iter().position(|(n, _)| n == name);
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..phases.len()).map(|i| g.add_node(i)).collect();
    for (i, (_, deps)) in phases.iter().enumerate() {
        for d in deps {
            if let Some(j) = pos(d) {
                g.add_edge(nodes[i], nodes[j], ());
            }
        }
    }
    let mut cycles = Vec::new();
    for scc in petgraph::algo::tarjan_scc(&g) {
        let mut members: Vec<usize> = scc.iter().map(|n| g[*n]).collect();
        let self_loop = members.len() == 1 && g.contains_edge(scc[0], scc[0]);
        if members.len() < 2 && !self_loop {
            continue;
        }
        members.sort_unstable();
        // Walk from the first-declared member along depends-on edges inside the component.
        let mut order = vec![members[0]];
        let mut cur = members[0];
        while order.len() < members.len() {
            let next = phases[cur]
                .1
                .iter()
                .filter_map(|d| pos(d))
                .find(|j| members.contains(j) && !order.contains(j));
            match next {
                Some(j) => {
                    order.push(j);
                    cur = j;
                }
                None => {
                    // Not a simple cycle from here: the other members in plan order.
                    let rest: Vec<usize> = members
                        .iter()
                        .filter(|m| !order.contains(m))
                        .copied()
                        .collect();
                    order.extend(rest);
                }
            }
        }
        cycles.push(order.into_iter().map(|i| phases[i].0.clone()).collect());
    }
    cycles.sort();
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, deps: &[&str]) -> (String, Vec<String>) {
        (name.into(), deps.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn cycles_are_named_in_order() {
        let phases = vec![
            p("a", &["b"]),
            p("b", &["c"]),
            p("c", &["a"]),
            p("d", &["d"]),
            p("e", &["a"]),
        ];
        assert_eq!(
            find_cycles(&phases),
            vec![
                vec!["a".to_string(), "b".into(), "c".into()],
                vec!["d".to_string()]
            ]
        );
        assert!(find_cycles(&[p("x", &[]), p("y", &["x"])]).is_empty());
    }
}
