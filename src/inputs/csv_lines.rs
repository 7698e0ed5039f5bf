//! A CSV file as located records: one record per physical line, so every error can name the
//! exact line and column.
//!
//! The `csv` crate splits each line into fields (quotes, `""` escapes, trimming); lines are cut
//! here first because the crate's own line counter does not count the comment and blank lines it
//! skips, and a stray quote must cost one line, not swallow the rest of the file.

use super::Located;
use std::path::Path;

/// One data line of a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// 1-based line number in the file.
    pub line: u32,
    /// The fields, trimmed and unquoted.
    pub fields: Vec<Field>,
}

/// One field of a [`Record`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// The value, trimmed and unquoted.
    pub text: String,
    /// 1-based character column where the field starts in the line.
    pub col: u32,
}

/// The records of `bytes` (the contents of `file`): blank lines and lines whose first non-blank
/// character is `#` are skipped, a leading UTF-8 byte-order mark is dropped. A line that is not
/// UTF-8 is reported in `errors` and skipped.
pub(crate) fn records(file: &Path, bytes: &[u8], errors: &mut Vec<Located>) -> Vec<Record> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match std::str::from_utf8(raw) {
            Ok(l) => l,
            Err(e) => {
                let col = String::from_utf8_lossy(&raw[..e.valid_up_to()])
                    .chars()
                    .count()
                    + 1;
                errors.push(
                    Located::new(
                        file,
                        line_no,
                        u32::try_from(col).unwrap_or(u32::MAX),
                        "the line is not UTF-8 text",
                    )
                    .hint("save the file as UTF-8"),
                );
                continue;
            }
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(line.as_bytes());
        let mut rec = csv::StringRecord::new();
        match reader.read_record(&mut rec) {
            Ok(_) => {
                let fields = rec
                    .iter()
                    .zip(field_starts(line))
                    .map(|(text, col)| Field {
                        text: text.to_string(),
                        col,
                    })
                    .collect();
                out.push(Record {
                    line: line_no,
                    fields,
                });
            }
            Err(e) => errors.push(Located::new(file, line_no, 1, format!("bad CSV line: {e}"))),
        }
    }
    out
}

/// The 1-based character column where each field of `line` starts: column 1, then after every
/// comma outside quotes (a `""` escape toggles twice, so it stays inside).
fn field_starts(line: &str) -> Vec<u32> {
    let mut out = vec![1u32];
    let mut in_quotes = false;
    for (i, c) in line.chars().enumerate() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => out.push(u32::try_from(i + 2).unwrap_or(u32::MAX)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(r: &Record) -> Vec<(&str, u32)> {
        r.fields.iter().map(|f| (f.text.as_str(), f.col)).collect()
    }

    #[test]
    fn lines_columns_quotes_comments_and_bad_bytes() {
        let bytes =
            b"\xEF\xBB\xBF# note\nsymbol,date\r\n\n  # indented note\n\"BRK B\",\"a,\"\"b\" ,x\nC,\xff\n";
        let mut errors = Vec::new();
        let recs = records(Path::new("f.csv"), bytes, &mut errors);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].line, 2);
        assert_eq!(texts(&recs[0]), vec![("symbol", 1), ("date", 8)]);
        assert_eq!(recs[1].line, 5);
        assert_eq!(texts(&recs[1]), vec![("BRK B", 1), ("a,\"b", 9), ("x", 18)]);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "f.csv:6:3: the line is not UTF-8 text (hint: save the file as UTF-8)"
        );
    }
}
