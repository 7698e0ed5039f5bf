//! The symbols CSV: a universe kept as a file, read by the plan (`universe.symbols-file`) and by
//! `discover --universe`.
//!
//! Rules: when the first data line has a field named `symbol` (case-insensitive) it is a header
//! and symbols are read from that column (other columns, such as a name, are ignored); otherwise
//! there is no header and the symbol is the first field of each line (a plain list, one symbol
//! per line, is the simplest file). Every symbol must be valid (letters, digits, `.`, `-`, `_`,
//! inner spaces); a symbol listed twice is an error, and a file without symbols is an error.
//! Blank lines and `#` comment lines are skipped (see [`super`] for the common CSV rules).

use super::csv_lines::records;
use super::{read_bytes, InputError, Located};
use crate::cache::check_symbol;
use std::collections::HashMap;
use std::path::Path;

/// Read a symbols CSV: the symbols in file order; every bad line is reported.
pub fn read(file: &Path) -> Result<Vec<String>, InputError> {
    parse(file, &read_bytes(file)?)
}

/// Check the contents of a symbols file named `file`.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Vec<String>, InputError> {
    let mut errors = Vec::new();
    let recs = records(file, bytes, &mut errors);
    let header_col = recs.first().and_then(|r| {
        r.fields
            .iter()
            .position(|f| f.text.eq_ignore_ascii_case("symbol"))
    });
    let (col, skip) = match header_col {
        Some(c) => (c, 1),
        None => (0, 0),
    };
    let mut out = Vec::new();
    let mut first_line: HashMap<String, u32> = HashMap::new();
    for rec in recs.iter().skip(skip) {
        let Some(field) = rec.fields.get(col) else {
            errors.push(Located::new(
                file,
                rec.line,
                1,
                format!(
                    "no symbol: the `symbol` column is field {} and this line has {}",
                    col + 1,
                    rec.fields.len()
                ),
            ));
            continue;
        };
        let at = |message: String| Located::new(file, rec.line, field.col, message).field("symbol");
        if let Err(e) = check_symbol(&field.text) {
            errors.push(
                at(e.to_string())
                    .hint("letters, digits, `.`, `-`, `_` and inner spaces only (e.g. `BRK B`)"),
            );
        } else if let Some(first) = first_line.insert(field.text.clone(), rec.line) {
            first_line.insert(field.text.clone(), first);
            errors.push(at(format!(
                "duplicate symbol `{}` (first on line {first})",
                field.text
            )));
        } else {
            out.push(field.text.clone());
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(
            Located::new(file, 1, 1, "the file lists no symbols")
                .hint("one symbol per line, or a header with a `symbol` column"),
        );
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| (e.line, e.col));
        Err(InputError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<String>, Vec<String>> {
        parse(Path::new("u.csv"), text.as_bytes()).map_err(|e| match e {
            InputError::Invalid(errs) => errs.iter().map(ToString::to_string).collect(),
            InputError::Read { .. } => unreachable!(),
        })
    }

    #[test]
    fn plain_list_with_comments() {
        assert_eq!(
            parse_str("# my universe\nAAPL\n\nBRK B\n\"SPY\"\n").unwrap(),
            vec!["AAPL", "BRK B", "SPY"]
        );
    }

    #[test]
    fn header_in_the_first_column() {
        assert_eq!(
            parse_str("Symbol,name\nAAPL,Apple\nSPY,\"SPDR S&P 500, ETF\"\n").unwrap(),
            vec!["AAPL", "SPY"]
        );
    }

    /// The plan's old reader only knew a header whose first field was `symbol` (and took `name`
    /// here for a symbol); the CLI's found the column anywhere. Both now find it anywhere.
    #[test]
    fn header_column_anywhere() {
        assert_eq!(
            parse_str("name,symbol\nApple,AAPL\nMicrosoft,MSFT\n").unwrap(),
            vec!["AAPL", "MSFT"]
        );
    }

    /// The CLI's old reader dropped a repeated symbol only when adjacent (and kept the others);
    /// the plan's rejected every repeat. Both now reject it, naming both lines.
    #[test]
    fn duplicates_are_rejected() {
        assert_eq!(
            parse_str("AAPL\nSPY\nAAPL\n").unwrap_err(),
            vec!["u.csv:3:1: duplicate symbol `AAPL` (first on line 1)"]
        );
    }

    /// The CLI's old reader stopped at the first bad line; both now report every one.
    #[test]
    fn every_bad_symbol_is_located() {
        let e = parse_str("symbol,name\nAAPL,Apple\n../x,Bad\nname,A/B\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("u.csv:3:1: symbol `../x` is not allowed"),
            "{e:?}"
        );
        let e = parse_str("name,symbol\nApple,AAPL\nBad\nX,A/B\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("u.csv:3:1: no symbol"), "{e:?}");
        assert!(
            e[1].starts_with("u.csv:4:3: symbol `A/B` is not allowed"),
            "{e:?}"
        );
    }

    /// The CLI's old reader returned no symbols for an empty file; both now say so as an error.
    #[test]
    fn an_empty_file_is_an_error() {
        for text in ["", "# nothing\n", "symbol\n"] {
            let e = parse_str(text).unwrap_err();
            assert!(
                e[0].starts_with("u.csv:1:1: the file lists no symbols"),
                "{e:?}"
            );
        }
    }
}
