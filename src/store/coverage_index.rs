//! The scope's coverage index: for every bar file a run wrote or checked, its coverage record and
//! the file's size and modification time at that moment; for a series that answered no bars at
//! all (no file is written), the only record of those empty sessions.
//!
//! Why: resume must know which tasks are complete without opening half a million Parquet
//! footers. An entry is trusted only while the file still has the recorded size and mtime (a file
//! rewritten by anyone else, or deleted, is re-read at run time), so a stale or lost index costs
//! requests or file reads, never a skipped session.
//!
//! Layout: `<state root>/coverage/<scope>/coverage_<I>of<N>.jsonl`, one per shard (shards never
//! share a file), appended and flushed per write, compacted to the latest entry per file at the
//! end of a run. Readers take the newest entry per file across all shards' indexes.

use crate::store::coverage::FileCoverage;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Size and modification time of a bar file; `None` when it does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: u128,
}

/// The fingerprint of `path` now (`Ok(None)`: no such file).
pub fn fingerprint(path: &Path) -> std::io::Result<Option<Fingerprint>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Fingerprint {
            len: m.len(),
            mtime_ns: m
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    /// File path relative to the scope's bar directory.
    path: String,
    /// The file's fingerprint when recorded (absent: no file).
    fp: Option<Fingerprint>,
    /// Encoded coverage ([`FileCoverage::encode`]).
    cov: String,
    /// When recorded, ms since the epoch (newest wins across shards).
    at: i64,
}

/// Directory of a scope's coverage indexes.
pub fn index_dir(state_root: &Path, scope: &str) -> PathBuf {
    state_root.join("coverage").join(scope)
}

fn index_file(state_root: &Path, scope: &str, batch_index: u32, batch_count: u32) -> PathBuf {
    index_dir(state_root, scope).join(format!("coverage_{batch_index}of{batch_count}.jsonl"))
}

/// One recorded entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Fingerprint of the file when recorded.
    pub fp: Option<Fingerprint>,
    /// Encoded coverage.
    pub cov: String,
    at: i64,
}

/// All entries of a scope, newest per file.
#[derive(Debug, Default)]
pub struct CoverageIndex {
    entries: HashMap<String, Entry>,
}

impl CoverageIndex {
    /// Read every shard's index of the scope (missing directory: empty). Torn or foreign lines
    /// are skipped: they only cost a re-read of their file.
    pub fn load(state_root: &Path, scope: &str) -> std::io::Result<CoverageIndex> {
        let dir = index_dir(state_root, scope);
        let mut out = CoverageIndex::default();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        for f in files {
            let reader = BufReader::new(File::open(&f)?);
            for line in reader.split(b'\n') {
                let line = line?;
                let Ok(l) = serde_json::from_slice::<Line>(&line) else {
                    continue;
                };
                let newer = out.entries.get(&l.path).is_none_or(|e| e.at <= l.at);
                if newer {
                    out.entries.insert(
                        l.path,
                        Entry {
                            fp: l.fp,
                            cov: l.cov,
                            at: l.at,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// The entry of a file (path relative to the scope's bar directory).
    pub fn get(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// Number of files recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The encoded coverage of `rel` if its entry still describes the file on disk at `path`
    /// (resume parses it with [`crate::store::coverage::FinalRuns`], once per distinct text:
    /// many files share one record, e.g. every contract that traded in every session).
    pub fn current_text(&self, rel: &str, path: &Path) -> Option<&str> {
        let e = self.entries.get(rel)?;
        if fingerprint(path).ok()? != e.fp {
            return None;
        }
        Some(&e.cov)
    }

    /// The recorded coverage of `rel` if its entry still describes the file on disk at `path`.
    pub fn current(&self, rel: &str, path: &Path) -> Option<FileCoverage> {
        let e = self.entries.get(rel)?;
        let fp = fingerprint(path).ok()?;
        if fp != e.fp {
            return None;
        }
        FileCoverage::decode(&e.cov).ok()
    }
}

/// Appends entries to this shard's index.
pub struct IndexWriter {
    path: PathBuf,
    file: File,
}

impl IndexWriter {
    /// Open (create) this shard's index for appending.
    pub fn open(
        state_root: &Path,
        scope: &str,
        batch_index: u32,
        batch_count: u32,
    ) -> std::io::Result<IndexWriter> {
        let path = index_file(state_root, scope, batch_index, batch_count);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(IndexWriter { path, file })
    }

    /// Record the coverage of the file at `abs` (relative name `rel`) as it is on disk now.
    pub fn record(
        &mut self,
        rel: &str,
        abs: &Path,
        coverage: &FileCoverage,
        now: DateTime<Utc>,
    ) -> std::io::Result<()> {
        let line = Line {
            path: rel.to_string(),
            fp: fingerprint(abs)?,
            cov: coverage.encode(),
            at: now.timestamp_millis(),
        };
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        self.file.write_all(text.as_bytes())?;
        self.file.flush()
    }

    /// Rewrite this shard's index with the newest entry per file (atomically).
    pub fn compact(&mut self, state_root: &Path, scope: &str) -> std::io::Result<()> {
        let mut latest: HashMap<String, Line> = HashMap::new();
        {
            let reader = BufReader::new(File::open(&self.path)?);
            for line in reader.split(b'\n') {
                let Ok(l) = serde_json::from_slice::<Line>(&line?) else {
                    continue;
                };
                if latest.get(&l.path).is_none_or(|e| e.at <= l.at) {
                    latest.insert(l.path.clone(), l);
                }
            }
        }
        let mut lines: Vec<Line> = latest.into_values().collect();
        lines.sort_by(|a, b| a.path.cmp(&b.path));
        let mut out = Vec::new();
        for l in &lines {
            serde_json::to_writer(&mut out, l).map_err(std::io::Error::other)?;
            out.push(b'\n');
        }
        crate::store::atomic::write_bytes(&self.path, &out)?;
        let _ = (state_root, scope);
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar;
    use crate::store::coverage::{Answer, Cover, Unit};
    use chrono::NaiveDate;

    #[test]
    fn entries_are_trusted_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let file = dir.path().join("f.parquet");
        std::fs::write(&file, b"one").unwrap();
        let s = calendar::session(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
            .unwrap()
            .unwrap();
        let mut cov = FileCoverage::default();
        cov.set(
            &Unit::Session(s),
            Cover {
                answer: Answer::Bars,
                provisional: false,
            },
        );
        let mut w = IndexWriter::open(&state, "sc", 0, 1).unwrap();
        w.record("f.parquet", &file, &cov, Utc::now()).unwrap();
        w.record(
            "absent.parquet",
            &dir.path().join("absent.parquet"),
            &cov,
            Utc::now(),
        )
        .unwrap();
        let idx = CoverageIndex::load(&state, "sc").unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.current("f.parquet", &file), Some(cov.clone()));
        assert_eq!(
            idx.current("absent.parquet", &dir.path().join("absent.parquet")),
            Some(cov.clone())
        );
        std::fs::write(&file, b"rewritten").unwrap();
        assert_eq!(idx.current("f.parquet", &file), None, "size changed");
        std::fs::write(dir.path().join("absent.parquet"), b"x").unwrap();
        assert_eq!(
            idx.current("absent.parquet", &dir.path().join("absent.parquet")),
            None,
            "a file appeared"
        );
        // Compaction keeps the newest entry per file; torn lines are skipped.
        w.record("f.parquet", &file, &FileCoverage::default(), Utc::now())
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(index_file(&state, "sc", 0, 1))
            .unwrap()
            .write_all(b"{\"path\":\"torn")
            .unwrap();
        w.compact(&state, "sc").unwrap();
        let idx = CoverageIndex::load(&state, "sc").unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!(
            idx.current("f.parquet", &file),
            Some(FileCoverage::default())
        );
    }
}
