//! Every file and value format a user hands the tool, each parsed in exactly one place.
//!
//! The plan decoder, the CLI and the executor all read through these parsers, so a file that
//! one command accepts is accepted by every other command, with the same errors. Each error
//! names the file, the line, the column and the field, and a parser reports every bad line of
//! a file in one pass rather than stopping at the first.
//!
//! | Input | Parser | Rules |
//! |---|---|---|
//! | Close snapshot CSV (`reference-snapshot`, `execute --closes`) | [`closes::read`] | a header naming `symbol`, `date`, `close` in any order (extra columns ignored); one row per symbol and session; duplicates rejected |
//! | Symbols CSV (`universe.symbols-file`, `discover --universe`) | [`symbols::read`] | a `symbol` column when the first line is a header containing it, else the first column; duplicates rejected |
//! | Human durations (`gateway.*-timeout`, `reconnect-for`, `--request-timeout`, ...) | [`duration::parse`] | `<number><unit>` terms, units `ms`, `s`, `m`, `h`, `d`: `30s`, `1.5h`, `1h30m` |
//! | Rerun CSV (`execute --rerun`) | [`rerun::read`] | a header with `symbol` (and `conId`, `phase`, `bar_size` for a contracts file), any order; other columns ignored |
//! | Summary and timeline JSON lines | [`jsonl::read`] | one JSON object per line; torn or non-UTF-8 lines skipped and reported by line |
//!
//! Common CSV rules: UTF-8, comma-separated, one record per physical line (fields may be quoted,
//! with `""` for a quote, but may not span lines), blank lines and lines whose first non-blank
//! character is `#` skipped, spaces around fields trimmed. The README's "Input files" section
//! describes the same rules for users.

pub mod closes;
mod csv_lines;
pub mod duration;
pub mod jsonl;
pub mod rerun;
pub mod symbols;

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem at a place in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based character column where the offending field starts.
    pub col: u32,
    /// The field (CSV column name) the problem is in, when it is in one field.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Located {
    pub(crate) fn new(file: &Path, line: u32, col: u32, message: impl Into<String>) -> Self {
        Located {
            file: file.to_path_buf(),
            line: line.max(1),
            col: col.max(1),
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The field is not repeated: the message names the value, and the column points at it.
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Why an input file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read at all.
    #[error("cannot read `{}`: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read; these lines are wrong (never empty), in line order.
    #[error("{}", lines(.0))]
    Invalid(Vec<Located>),
}

fn lines(errors: &[Located]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read a whole input file as bytes (UTF-8 is checked per line, so a bad byte is located).
fn read_bytes(file: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(file).map_err(|source| InputError::Read {
        file: file.to_path_buf(),
        source,
    })
}
