//! The close snapshot CSV: reference closes users keep from their own end-of-day data, read by
//! the plan (`reference-snapshot`) and by `execute --closes`.
//!
//! Rules: the first data line is a header naming the columns `symbol`, `date` and `close` in
//! any order (case-insensitive; extra columns are ignored, a column named twice is an error);
//! then one row per symbol and session date, each with as many fields as the header. A symbol
//! must be a valid universe symbol, the date `YYYY-MM-DD`, the close a positive number; a second
//! row for the same symbol and date is an error (which of the two is right cannot be known).
//! Blank lines and `#` comment lines are skipped anywhere (see [`super`] for the common CSV
//! rules).

use super::csv_lines::{records, Record};
use super::{read_bytes, InputError, Located};
use crate::cache::check_symbol;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One row of a close snapshot CSV (header `symbol,date,close` in any order, required; extra
/// columns ignored; `#` comment lines allowed). The file is what users keep from their own
/// end-of-day data: it lets a near-ATM phase pick strikes without asking the gateway.
/// `schemas/close_snapshot.schema.json` is generated from this type (one object per row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "opt-backfill close snapshot row")]
pub struct CloseRow {
    /// Underlying symbol, as in the plan's universe.
    pub symbol: String,
    /// Session date (`YYYY-MM-DD`); the latest row on or before the plan's end session wins.
    pub date: NaiveDate,
    /// Closing price of that session, positive.
    #[schemars(range(min = 0.0))]
    pub close: f64,
}

/// Every close of a snapshot: symbol -> session date -> close.
pub type Closes = BTreeMap<String, BTreeMap<NaiveDate, f64>>;

/// The columns a snapshot must have.
const REQUIRED: [&str; 3] = ["symbol", "date", "close"];

/// Read and check a close snapshot; every bad line is reported.
pub fn read(file: &Path) -> Result<Closes, InputError> {
    parse(file, &read_bytes(file)?)
}

/// Check the contents of a close snapshot file named `file`.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Closes, InputError> {
    let mut errors = Vec::new();
    let recs = records(file, bytes, &mut errors);
    let mut recs = recs.into_iter();
    let Some(header) = recs.next() else {
        if errors.is_empty() {
            errors.push(
                Located::new(file, 1, 1, "the file has no header")
                    .hint("the first line names the columns: `symbol,date,close`"),
            );
        }
        return Err(InputError::Invalid(errors));
    };
    let Some(cols) = columns(file, &header, &mut errors) else {
        return Err(InputError::Invalid(errors));
    };
    let mut out = Closes::new();
    for rec in recs {
        let Some(row) = row(file, &rec, &cols, &mut errors) else {
            continue;
        };
        let by_date = out.entry(row.symbol.clone()).or_default();
        if by_date.insert(row.date, row.close).is_some() {
            errors.push(
                Located::new(
                    file,
                    rec.line,
                    rec.fields[cols.symbol].col,
                    format!("duplicate row for {} on {}", row.symbol, row.date),
                )
                .field("symbol"),
            );
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| (e.line, e.col));
        Err(InputError::Invalid(errors))
    }
}

/// For each symbol, its latest close on or before `on_or_before` (later rows are ignored: a
/// snapshot may run past the plan's end session).
pub fn latest_on_or_before(
    closes: &Closes,
    on_or_before: NaiveDate,
) -> HashMap<String, (NaiveDate, f64)> {
    closes
        .iter()
        .filter_map(|(sym, by_date)| {
            let (d, c) = by_date.range(..=on_or_before).next_back()?;
            Some((sym.clone(), (*d, *c)))
        })
        .collect()
}

/// Where the required columns are, and how many fields each row has.
struct Columns {
    symbol: usize,
    date: usize,
    close: usize,
    width: usize,
    header: String,
}

fn columns(file: &Path, header: &Record, errors: &mut Vec<Located>) -> Option<Columns> {
    let names: Vec<String> = header
        .fields
        .iter()
        .map(|f| f.text.to_ascii_lowercase())
        .collect();
    let before = errors.len();
    for (i, name) in names.iter().enumerate() {
        if let Some(first) = names[..i].iter().position(|n| n == name) {
            errors.push(
                Located::new(
                    file,
                    header.line,
                    header.fields[i].col,
                    format!(
                        "column `{name}` is named twice (first as column {})",
                        first + 1
                    ),
                )
                .field(name.clone()),
            );
        }
    }
    let find = |name: &str| names.iter().position(|n| n == name);
    let missing: Vec<&str> = REQUIRED.into_iter().filter(|r| find(r).is_none()).collect();
    if !missing.is_empty() {
        errors.push(
            Located::new(
                file,
                header.line,
                1,
                format!(
                    "the header has no {} column",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .hint("the first line names the columns `symbol`, `date` and `close`, in any order"),
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(Columns {
        symbol: find("symbol")?,
        date: find("date")?,
        close: find("close")?,
        width: names.len(),
        header: header
            .fields
            .iter()
            .map(|f| f.text.as_str())
            .collect::<Vec<_>>()
            .join(","),
    })
}

/// One checked row, or `None` with its problems pushed to `errors`.
fn row(file: &Path, rec: &Record, cols: &Columns, errors: &mut Vec<Located>) -> Option<CloseRow> {
    if rec.fields.len() != cols.width {
        errors.push(
            Located::new(
                file,
                rec.line,
                1,
                format!("expected {} fields, found {}", cols.width, rec.fields.len()),
            )
            .hint(format!("`{}`", cols.header)),
        );
        return None;
    }
    let at = |i: usize, name: &str, message: String| {
        Located::new(file, rec.line, rec.fields[i].col, message).field(name)
    };
    let symbol = &rec.fields[cols.symbol].text;
    if let Err(e) = check_symbol(symbol) {
        errors.push(at(cols.symbol, "symbol", e.to_string()));
        return None;
    }
    let date = &rec.fields[cols.date].text;
    let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        errors.push(at(cols.date, "date", format!("bad date `{date}`")).hint("`YYYY-MM-DD`"));
        return None;
    };
    let close = &rec.fields[cols.close].text;
    let close = match close.parse::<f64>() {
        Ok(c) if c.is_finite() && c > 0.0 => c,
        _ => {
            errors.push(
                at(cols.close, "close", format!("bad close `{close}`")).hint("a positive number"),
            );
            return None;
        }
    };
    Some(CloseRow {
        symbol: symbol.clone(),
        date,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Closes, Vec<String>> {
        parse(Path::new("c.csv"), text.as_bytes()).map_err(|e| match e {
            InputError::Invalid(errs) => errs.iter().map(ToString::to_string).collect(),
            InputError::Read { .. } => unreachable!(),
        })
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn reads_a_plain_snapshot() {
        let c =
            parse_str("symbol,date,close\nAAPL,2026-11-27,231.40\nAAPL,2026-11-26,230\n").unwrap();
        assert_eq!(c["AAPL"][&d("2026-11-27")], 231.40);
        assert_eq!(c["AAPL"].len(), 2);
    }

    /// The executor's old reader took columns in any order and ignored extra ones; the plan's
    /// wanted the exact header. Both now take any order and extra columns.
    #[test]
    fn columns_in_any_order_and_extra_columns() {
        let c =
            parse_str("Close, note ,SYMBOL,date\n668,\"quoted, note\",SPY,2026-11-27\n").unwrap();
        assert_eq!(c["SPY"][&d("2026-11-27")], 668.0);
    }

    /// The plan's old reader skipped `#` lines; the executor's read them as a bad date.
    #[test]
    fn comment_and_blank_lines_are_skipped_everywhere() {
        let c =
            parse_str("# from my EOD export\nsymbol,date,close\n\n# Friday\nAAPL,2026-11-27,1\n")
                .unwrap();
        assert_eq!(c.len(), 1);
    }

    /// The executor's old reader let a later duplicate win silently; the plan's rejected it.
    #[test]
    fn duplicate_rows_are_rejected() {
        let e = parse_str("symbol,date,close\nAAPL,2026-11-27,1\nAAPL,2026-11-27,2\n").unwrap_err();
        assert_eq!(e, vec!["c.csv:3:1: duplicate row for AAPL on 2026-11-27"]);
    }

    /// The executor's old reader took any symbol text; both now check it like the universe.
    #[test]
    fn every_bad_line_is_located_by_line_and_column() {
        let e = parse_str(
            "symbol,date,close\nA/B,2026-11-27,1\nMSFT,2026-13-01,502.5\nSPY,2026-11-27,-3\nSPY,2026-11-27\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(
            e[0].starts_with("c.csv:2:1: symbol `A/B` is not allowed"),
            "{}",
            e[0]
        );
        assert_eq!(
            e[1],
            "c.csv:3:6: bad date `2026-13-01` (hint: `YYYY-MM-DD`)"
        );
        assert_eq!(e[2], "c.csv:4:16: bad close `-3` (hint: a positive number)");
        assert_eq!(
            e[3],
            "c.csv:5:1: expected 3 fields, found 2 (hint: `symbol,date,close`)"
        );
    }

    #[test]
    fn header_problems() {
        assert_eq!(
            parse_str("symbol,day,close\n").unwrap_err(),
            vec!["c.csv:1:1: the header has no `date` column (hint: the first line names the columns `symbol`, `date` and `close`, in any order)"]
        );
        let e = parse_str("symbol,date,close,Date\n").unwrap_err();
        assert_eq!(
            e,
            vec!["c.csv:1:19: column `date` is named twice (first as column 2)"]
        );
        let e = parse_str("# nothing yet\n\n").unwrap_err();
        assert!(
            e[0].starts_with("c.csv:1:1: the file has no header"),
            "{e:?}"
        );
        assert!(parse_str("symbol,date,close\n").unwrap().is_empty());
    }

    #[test]
    fn latest_close_on_or_before_the_end() {
        let c = parse_str(
            "symbol,date,close\nAAPL,2026-11-26,1\nAAPL,2026-11-27,2\nAAPL,2026-11-30,3\nSPY,2026-11-30,4\n",
        )
        .unwrap();
        let latest = latest_on_or_before(&c, d("2026-11-27"));
        assert_eq!(latest["AAPL"], (d("2026-11-27"), 2.0));
        assert!(!latest.contains_key("SPY"), "only rows after the end");
    }
}
