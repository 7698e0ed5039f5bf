//! Located plan errors: every problem names the file, line, column and key path, with a hint, so
//! a user can fix a whole plan in one pass instead of one error per run.

use super::node::Loc;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a plan file (or in a file the plan points to, such as a symbols CSV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Key path in the plan, e.g. `phase[1].bars[0].size` (empty for syntax errors).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, e.g. the legal values or a did-you-mean.
    pub hint: Option<String>,
}

impl PlanError {
    /// A new error at `loc` in `file`.
    pub fn new(file: &Path, loc: Loc, path: &str, message: impl Into<String>) -> Self {
        PlanError {
            file: file.to_path_buf(),
            line: loc.line.max(1),
            col: loc.col.max(1),
            path: path.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Every error found in a plan, in file and position order. Never empty when returned as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanErrors(pub Vec<PlanError>);

impl PlanErrors {
    /// Sort by file, line and column (stable, so errors at one place keep their order).
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// The closest of `candidates` to `s` (edit distance at most 3, or a case-insensitive match),
/// for did-you-mean hints.
pub fn closest<'a>(s: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = s.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                crate::bars::edit_distance(&lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= 3.min(c.len().max(1)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_format() {
        let e = PlanError::new(
            Path::new("p.toml"),
            Loc { line: 3, col: 7 },
            "phase[1].bars[0].size",
            "illegal bar size `30 min`",
        )
        .with_hint("did you mean `30 mins`?");
        assert_eq!(
            e.to_string(),
            "p.toml:3:7: phase[1].bars[0].size: illegal bar size `30 min` (hint: did you mean `30 mins`?)"
        );
    }

    #[test]
    fn closest_names() {
        assert_eq!(closest("use_rth", ["use-rth", "bars"]), Some("use-rth"));
        assert_eq!(closest("zzzzzzzz", ["use-rth", "bars"]), None);
    }
}
