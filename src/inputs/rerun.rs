//! The rerun CSV that `opt-backfill rerun` writes and `execute --rerun` reads back.
//!
//! Rules: a header naming at least `symbol` (any order, any case). With `conId`, `phase` and
//! `bar_size` columns too it is a contracts file (one row per task; conId 0 stands for every
//! task of that symbol and phase, a near-ATM symbol whose contracts were never chosen); otherwise
//! a symbols file. Other columns (`status`, `error_code`, `last_error`, ...) are ignored, so a
//! quoted error text with commas is fine. A repeated row is harmless (the universe is a set).
//! Blank lines and `#` comment lines are skipped (see [`super`] for the common CSV rules).

use super::csv_lines::records;
use super::{read_bytes, InputError, Located};
use crate::cache::check_symbol;
use std::collections::BTreeSet;
use std::path::Path;

/// A rerun universe read back: symbols, and the (conId, phase, bar size) rows when present.
#[derive(Debug, Default, Clone)]
pub struct RerunUniverse {
    /// Symbols.
    pub symbols: BTreeSet<String>,
    /// (conId, phase, bar size) of a `--contracts` file; empty for a symbols file.
    pub tasks: BTreeSet<(i64, String, String)>,
    /// (symbol, phase) of symbol-level rows of a `--contracts` file (conId 0: a near-ATM
    /// symbol SKIPPED for want of a reference close): every task of that symbol and phase
    /// belongs to the universe, since its contracts were never chosen.
    pub symbol_phases: BTreeSet<(String, String)>,
}

impl RerunUniverse {
    /// True when this is a `--contracts` file (rows per task), not a symbols file.
    pub fn is_contracts(&self) -> bool {
        !self.tasks.is_empty() || !self.symbol_phases.is_empty()
    }

    /// True when the task with these keys belongs to the universe.
    pub fn contains(&self, symbol: &str, con_id: i64, phase: &str, bar_size: &str) -> bool {
        if !self.is_contracts() {
            self.symbols.contains(symbol)
        } else {
            self.tasks
                .contains(&(con_id, phase.to_string(), bar_size.to_string()))
                || self
                    .symbol_phases
                    .contains(&(symbol.to_string(), phase.to_string()))
        }
    }
}

/// Read a rerun CSV (either shape); every bad line is reported.
pub fn read(file: &Path) -> Result<RerunUniverse, InputError> {
    parse(file, &read_bytes(file)?)
}

/// Check the contents of a rerun CSV named `file`.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<RerunUniverse, InputError> {
    let mut errors = Vec::new();
    let recs = records(file, bytes, &mut errors);
    let Some(header) = recs.first() else {
        if errors.is_empty() {
            errors.push(
                Located::new(file, 1, 1, "the file is empty")
                    .hint("a header with a `symbol` column, as `opt-backfill rerun` writes"),
            );
        }
        return Err(InputError::Invalid(errors));
    };
    let find = |name: &str| {
        header
            .fields
            .iter()
            .position(|f| f.text.eq_ignore_ascii_case(name))
    };
    let Some(sym) = find("symbol") else {
        errors.push(
            Located::new(file, header.line, 1, "no `symbol` column")
                .hint("a header with a `symbol` column, as `opt-backfill rerun` writes"),
        );
        return Err(InputError::Invalid(errors));
    };
    let task_cols = match (find("conId"), find("phase"), find("bar_size")) {
        (Some(c), Some(p), Some(b)) => Some((c, p, b)),
        _ => None,
    };
    let width = header.fields.len();
    let mut u = RerunUniverse::default();
    for rec in &recs[1..] {
        if rec.fields.len() != width {
            errors.push(Located::new(
                file,
                rec.line,
                1,
                format!("expected {width} fields, found {}", rec.fields.len()),
            ));
            continue;
        }
        let field = |i: usize| &rec.fields[i];
        let s = &field(sym).text;
        if let Err(e) = check_symbol(s) {
            errors
                .push(Located::new(file, rec.line, field(sym).col, e.to_string()).field("symbol"));
            continue;
        }
        u.symbols.insert(s.clone());
        let Some((c, p, b)) = task_cols else {
            continue;
        };
        let Ok(id) = field(c).text.parse::<i64>() else {
            errors.push(
                Located::new(
                    file,
                    rec.line,
                    field(c).col,
                    format!("conId `{}` is not a number", field(c).text),
                )
                .field("conId"),
            );
            continue;
        };
        let phase = field(p).text.clone();
        if id == 0 {
            u.symbol_phases.insert((s.clone(), phase));
        } else {
            u.tasks.insert((id, phase, field(b).text.clone()));
        }
    }
    if errors.is_empty() {
        Ok(u)
    } else {
        errors.sort_by_key(|e| (e.line, e.col));
        Err(InputError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<RerunUniverse, String> {
        parse(Path::new("r.csv"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn contracts_file_with_quoted_error_text() {
        let u = parse_str(
            "symbol,conId,phase,bar_size,status,error_code,last_error\n\
             SPY,2,hours,8 hours,TIMEOUT,,\"no answer, cancelled\"\n\
             # a comment\n\
             QQQ,0,minutes,1 min,SKIPPED,,\n",
        )
        .unwrap();
        assert!(u.contains("SPY", 2, "hours", "8 hours"));
        assert!(
            u.contains("QQQ", 77, "minutes", "1 min"),
            "conId 0: whole phase"
        );
        assert!(!u.contains("SPY", 3, "hours", "8 hours"));
    }

    #[test]
    fn symbols_file() {
        let u = parse_str("symbol,tasks,statuses\nAAPL,3,TIMEOUT;PACING\n").unwrap();
        assert!(!u.is_contracts());
        assert!(u.contains("AAPL", 1, "any", "1 min"));
    }

    #[test]
    fn every_bad_line_is_located() {
        let e = parse_str("symbol,conId,phase,bar_size\nA/B,1,h,8 hours\nX,y,h,8 hours\nZ,1\n")
            .unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("r.csv:2:1: symbol `A/B`"), "{e}");
        assert_eq!(lines[1], "r.csv:3:3: conId `y` is not a number");
        assert_eq!(lines[2], "r.csv:4:1: expected 4 fields, found 2");
        assert!(parse_str("")
            .unwrap_err()
            .contains("r.csv:1:1: the file is empty"));
        assert!(parse_str("sym\nA\n")
            .unwrap_err()
            .contains("no `symbol` column"));
    }
}
