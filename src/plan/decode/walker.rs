//! The located-value walker: reads a [`Node`] tree key by key, records every error with its
//! location and key path, and reports the keys nobody read as unknown (with a did-you-mean).

use super::keys::TOP_KEYS;
use crate::plan::error::{closest, PlanError};
use crate::plan::node::{Key, Loc, Node, Value};
use std::collections::HashMap;
use std::path::Path;

/// Collected errors of one load.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    pub(crate) errors: Vec<PlanError>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a Path) -> Self {
        Ctx {
            file,
            errors: Vec::new(),
        }
    }

    pub(super) fn err(&mut self, loc: Loc, path: &str, msg: impl Into<String>) {
        self.errors.push(PlanError::new(self.file, loc, path, msg));
    }

    pub(super) fn err_hint(
        &mut self,
        loc: Loc,
        path: &str,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors
            .push(PlanError::new(self.file, loc, path, msg).with_hint(hint));
    }

    pub(super) fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.err(
            node.loc,
            path,
            format!("expected {what}, found {}", node.value.type_name()),
        );
    }
}

/// `parent.key`, or `parent["key with spaces"]`.
pub(super) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

pub(super) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A mapping being read: tracks which keys were used so the rest can be reported as unknown.
pub(super) struct Table<'n> {
    entries: &'n [(Key, Node)],
    pub(super) loc: Loc,
    pub(super) path: String,
    used: Vec<bool>,
    known: &'static [&'static str],
}

impl<'n> Table<'n> {
    pub(super) fn new(
        ctx: &mut Ctx<'_>,
        node: &'n Node,
        path: &str,
        known: &'static [&'static str],
    ) -> Option<Self> {
        match &node.value {
            Value::Map(entries) => {
                let mut seen: HashMap<&str, Loc> = HashMap::new();
                for (k, _) in entries {
                    if let Some(first) = seen.insert(&k.name, k.loc) {
                        ctx.err(
                            k.loc,
                            &child(path, &k.name),
                            format!(
                                "duplicate key (first set at line {}, column {})",
                                first.line, first.col
                            ),
                        );
                    }
                }
                Some(Table {
                    entries,
                    loc: node.loc,
                    path: path.to_string(),
                    used: vec![false; entries.len()],
                    known,
                })
            }
            _ => {
                ctx.expected(node, path, "a table");
                None
            }
        }
    }

    /// The value of `key`, marked as used. YAML `key: ~` counts as absent.
    pub(super) fn get(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _)| k.name == key)?;
        self.used[i] = true;
        let node = &self.entries[i].1;
        (node.value != Value::Null).then_some(node)
    }

    pub(super) fn path(&self, key: &str) -> String {
        child(&self.path, key)
    }

    pub(super) fn finish(self, ctx: &mut Ctx<'_>) {
        for ((k, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let path = child(&self.path, &k.name);
            let msg = format!("unknown key `{}`", k.name);
            if !self.path.is_empty() && TOP_KEYS.contains(&k.name.as_str()) {
                // TOML: a top-level key written after a `[table]` header lands in that table.
                ctx.err_hint(
                    k.loc,
                    &path,
                    msg,
                    format!("`{}` is a top-level key: in TOML, write it before the first `[table]` header", k.name),
                );
                continue;
            }
            match closest(&k.name, self.known.iter().copied()) {
                Some(c) => ctx.err_hint(k.loc, &path, msg, format!("did you mean `{c}`?")),
                None => ctx.err_hint(
                    k.loc,
                    &path,
                    msg,
                    format!("known keys here: {}", self.known.join(", ")),
                ),
            }
        }
    }

    pub(super) fn required(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Option<&'n Node> {
        let n = self.get(key);
        if n.is_none() {
            let what = if self.path.is_empty() {
                "the plan".to_string()
            } else {
                format!("`{}`", self.path)
            };
            ctx.err(
                self.loc,
                &self.path(key),
                format!("missing required key `{key}` in {what}"),
            );
        }
        n
    }
}

pub(super) fn as_str<'n>(ctx: &mut Ctx<'_>, node: &'n Node, path: &str) -> Option<&'n str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => {
            ctx.expected(node, path, "a string");
            None
        }
    }
}

pub(super) fn as_int(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<i64> {
    match &node.value {
        Value::Int(i) => Some(*i),
        _ => {
            ctx.expected(node, path, "an integer");
            None
        }
    }
}

pub(super) fn as_bool(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        _ => {
            ctx.expected(node, path, "a boolean (true or false)");
            None
        }
    }
}

pub(super) fn as_seq<'n>(ctx: &mut Ctx<'_>, node: &'n Node, path: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            ctx.expected(node, path, "a list");
            None
        }
    }
}

/// An integer in `lo..=hi`, with the range in the message.
pub(super) fn int_in(ctx: &mut Ctx<'_>, node: &Node, path: &str, lo: i64, hi: i64) -> Option<i64> {
    let v = as_int(ctx, node, path)?;
    if v < lo || v > hi {
        ctx.err_hint(
            node.loc,
            path,
            format!("{v} is out of range"),
            format!("allowed: {lo}..={hi}"),
        );
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        assert_eq!(child("", "name"), "name");
        assert_eq!(child("phase[1]", "bars"), "phase[1].bars");
        assert_eq!(child("limits", "8 hours"), "limits[\"8 hours\"]");
    }
}
