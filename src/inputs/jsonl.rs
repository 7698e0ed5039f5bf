//! JSON-lines files the tool wrote itself (run summaries, timelines), read back by resume, the
//! report and the HTML page.
//!
//! Rules: one JSON object per line; blank lines are skipped. A run killed mid-write leaves a
//! torn last line, possibly cut inside a multi-byte character, so a line that is not UTF-8 or
//! not a valid record is skipped and reported (file, line, reason) rather than failing the file:
//! one bad line must not hide a whole run. Lines are read as bytes for that reason.

use serde::de::DeserializeOwned;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// A line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// Why it did not parse.
    pub reason: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// Read `file`, calling `each` with every record in file order; the skipped lines are returned.
/// Only an I/O error (the file cannot be opened or read) fails the call.
pub fn read<T: DeserializeOwned>(
    file: &Path,
    mut each: impl FnMut(T),
) -> std::io::Result<Vec<BadLine>> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let mut bad = Vec::new();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Checking UTF-8 first (fast) lets serde parse a `&str` without re-checking every
        // string, as the old `lines()` readers did, and names the torn-character case.
        let parsed = match std::str::from_utf8(&line) {
            Ok(text) => serde_json::from_str::<T>(text).map_err(|e| e.to_string()),
            Err(e) => Err(format!(
                "not UTF-8 after byte {} (torn inside a character?)",
                e.valid_up_to()
            )),
        };
        match parsed {
            Ok(r) => each(r),
            Err(reason) => bad.push(BadLine {
                file: file.to_path_buf(),
                line: line_no,
                reason,
            }),
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        id: u32,
    }

    /// The resume reader used to abort the whole load on a line that was not UTF-8 (`line?`);
    /// the report's survived it. Every reader now survives it and says which line it skipped.
    #[test]
    fn survives_torn_and_non_utf8_lines_and_locates_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary_x.jsonl");
        let mut bytes = b"{\"id\":1}\n\n{\"id\":2}\n{\"id\":\"caf\xC3".to_vec();
        bytes.extend_from_slice(b"\n{\"id\":3}\n{\"id\":4");
        std::fs::write(&p, bytes).unwrap();
        let mut got = Vec::new();
        let bad = read::<Rec>(&p, |r| got.push(r.id)).unwrap();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(
            bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![4, 6],
            "{bad:?}"
        );
        assert!(bad[0]
            .to_string()
            .starts_with(&format!("{}:4: ", p.display())));
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read::<Rec>(&dir.path().join("none.jsonl"), |_| {}).is_err());
    }
}
