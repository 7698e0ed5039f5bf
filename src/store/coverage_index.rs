//! The scope's coverage index: for every bar file a run wrote or checked, its coverage record and
//! the file's size and modification time at that moment; for a series that answered no bars at
//! all (no file is written), the only record of those empty sessions.
//!
//! Why: resume must know which tasks are complete without opening half a million Parquet
//! footers. An entry is trusted only while the file still has the recorded size and mtime (a file
//! rewritten by anyone else, or deleted, is re-read at run time), so a stale or lost index costs
//! requests or file reads, never a skipped session.
//!
//! Layout: per shard (shards never share a file) `<state root>/coverage/<scope>/coverage_<I>of<N>.jsonl`,
//! a log appended and flushed per write; `coverage_<I>of<N>.seg<K>.bin`, snapshot segments the log
//! is turned into whenever it grows past [`SEGMENT_BYTES`] during a run (so a killed run leaves
//! at most that much JSON to parse at resume); and `coverage_<I>of<N>.bin`, the compact snapshot
//! the segments and the log are folded into at the end of a run
//! ([`crate::store::coverage_snapshot`]). Readers take the newest entry per file across all
//! shards' snapshots, segments and logs.

use crate::calendar;
use crate::store::coverage::{FileCoverage, FinalRuns};
use crate::store::coverage_snapshot::{self, SnapshotEntry};
pub use crate::store::coverage_writer::{IndexWriter, SEGMENT_BYTES};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// One line of a shard's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Line {
    /// File path relative to the scope's bar directory.
    pub path: String,
    /// The file's fingerprint when recorded (absent: no file).
    pub fp: Option<Fingerprint>,
    /// Encoded coverage ([`FileCoverage::encode`]).
    pub cov: String,
    /// When recorded, ms since the epoch (newest wins across shards).
    pub at: i64,
}

/// Directory of a scope's coverage indexes.
pub fn index_dir(state_root: &Path, scope: &str) -> PathBuf {
    state_root.join("coverage").join(scope)
}

pub(crate) fn index_file(
    state_root: &Path,
    scope: &str,
    batch_index: u32,
    batch_count: u32,
) -> PathBuf {
    index_dir(state_root, scope).join(format!("coverage_{batch_index}of{batch_count}.jsonl"))
}

/// The shard's compact snapshot, next to its log (see [`crate::store::coverage_snapshot`]).
pub(crate) fn snapshot_file(log: &Path) -> PathBuf {
    log.with_extension("bin")
}

/// One recorded entry.
#[derive(Debug)]
pub struct Entry {
    /// Fingerprint of the file when recorded.
    pub fp: Option<Fingerprint>,
    /// Encoded coverage.
    pub cov: String,
    at: i64,
    /// The record's final session runs: from the snapshot, or parsed from `cov` on first use.
    runs: OnceLock<Option<FinalRuns>>,
}

impl Entry {
    /// The record's final session runs (None: the record does not decode).
    pub fn final_runs(&self) -> Option<&FinalRuns> {
        self.runs
            .get_or_init(|| FinalRuns::parse(&self.cov))
            .as_ref()
    }
}

/// All entries of a scope, newest per file.
#[derive(Debug, Default)]
pub struct CoverageIndex {
    entries: HashMap<String, Entry>,
}

/// The entries of one shard's snapshot, or nothing when it is missing or unusable (a warning
/// names it: only file reads and requests are lost).
pub(crate) fn read_snapshot(path: &Path) -> Vec<SnapshotEntry> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!("coverage snapshot {}: {e}; ignored", path.display());
            return Vec::new();
        }
    };
    match coverage_snapshot::decode(&bytes, calendar::table_fingerprint()) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!("coverage snapshot {}: {e}; ignored", path.display());
            Vec::new()
        }
    }
}

/// The snapshot segments of a shard's log (`coverage_<I>of<N>.seg<K>.bin`, written during a
/// run, see [`IndexWriter`]), oldest first.
pub(crate) fn segment_files(log: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(stem)) = (log.parent(), log.file_stem()) else {
        return Vec::new();
    };
    let prefix = format!("{}.seg", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let k = name
                .strip_prefix(&prefix)?
                .strip_suffix(".bin")?
                .parse()
                .ok()?;
            Some((k, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Segment `k` of a shard's log.
pub(crate) fn segment_file(log: &Path, k: u64) -> PathBuf {
    let stem = log.file_stem().map(|s| s.to_string_lossy().into_owned());
    log.with_file_name(format!("{}.seg{k}.bin", stem.unwrap_or_default()))
}

/// Every entry of one shard's log (torn or foreign lines skipped: they only cost a re-read of
/// their file), in order. After a killed run the log holds everything since the last snapshot
/// (half a weekend): its lines are parsed on all cores.
pub(crate) fn read_log(path: &Path) -> std::io::Result<Vec<Line>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let parse = |chunk: &[&[u8]]| -> Vec<Line> {
        chunk
            .iter()
            .filter_map(|l| serde_json::from_slice::<Line>(l).ok())
            .collect()
    };
    // A panicking parse loses its lines' entries: their files are re-read at run time.
    Ok(crate::par::map_chunks(&lines, 4096, parse, |_| Vec::new()))
}

impl CoverageIndex {
    /// Read every shard's snapshot and log (missing directory: empty).
    pub fn load(state_root: &Path, scope: &str) -> std::io::Result<CoverageIndex> {
        let dir = index_dir(state_root, scope);
        let mut out = CoverageIndex::default();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let mut logs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        logs.sort();
        for log in logs {
            let segments = segment_files(&log).into_iter().map(|(_, p)| p);
            for snapshot in std::iter::once(snapshot_file(&log)).chain(segments) {
                for e in read_snapshot(&snapshot) {
                    let runs = OnceLock::new();
                    if e.runs.is_some() {
                        let _ = runs.set(e.runs);
                    }
                    out.insert(e.path, e.fp, e.cov, e.at, runs);
                }
            }
            for l in read_log(&log)? {
                out.insert(l.path, l.fp, l.cov, l.at, OnceLock::new());
            }
        }
        Ok(out)
    }

    /// Keep the newer of two entries of a file (the later read on a tie).
    fn insert(
        &mut self,
        path: String,
        fp: Option<Fingerprint>,
        cov: String,
        at: i64,
        runs: OnceLock<Option<FinalRuns>>,
    ) {
        if self.entries.get(&path).is_none_or(|e| e.at <= at) {
            self.entries.insert(path, Entry { fp, cov, at, runs });
        }
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

    /// The final session runs of `rel` if its entry still describes the file on disk at
    /// `path`: resume's fast check.
    pub fn current_runs(&self, rel: &str, path: &Path) -> Option<&FinalRuns> {
        let e = self.entries.get(rel)?;
        if fingerprint(path).ok()? != e.fp {
            return None;
        }
        e.final_runs()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar;
    use crate::store::coverage::{Answer, Cover, Unit};
    use chrono::NaiveDate;
    use chrono::Utc;
    use std::io::Write;

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

    #[test]
    fn compaction_folds_the_log_into_the_snapshot_with_runs_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let file = dir.path().join("f.parquet");
        std::fs::write(&file, b"one").unwrap();
        let day = |d| {
            calendar::session(NaiveDate::from_ymd_opt(2026, 11, d).unwrap())
                .unwrap()
                .unwrap()
        };
        let mut cov = FileCoverage::default();
        for d in [23, 24, 25] {
            cov.set(
                &Unit::Session(day(d)),
                Cover {
                    answer: Answer::Bars,
                    provisional: false,
                },
            );
        }
        let ord = |d| calendar::session_ordinal(day(d).date).unwrap();
        let mut w = IndexWriter::open(&state, "sc", 0, 1).unwrap();
        w.record("f.parquet", &file, &cov, Utc::now()).unwrap();
        w.compact(&state, "sc").unwrap();
        let log = index_file(&state, "sc", 0, 1);
        assert_eq!(std::fs::read(&log).unwrap(), b"", "the log is folded in");
        let idx = CoverageIndex::load(&state, "sc").unwrap();
        let runs = idx.current_runs("f.parquet", &file).unwrap();
        assert_eq!(runs.runs(), &[(ord(23), ord(25))]);
        assert_eq!(Some(runs), FinalRuns::parse(&cov.encode()).as_ref());
        // A newer log entry wins over the snapshot's; a second compaction keeps both files'.
        let other = dir.path().join("g.parquet");
        w.record("g.parquet", &other, &cov, Utc::now()).unwrap();
        w.record("f.parquet", &file, &FileCoverage::default(), Utc::now())
            .unwrap();
        let idx = CoverageIndex::load(&state, "sc").unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.current_runs("f.parquet", &file).unwrap().runs(), &[]);
        w.compact(&state, "sc").unwrap();
        let idx = CoverageIndex::load(&state, "sc").unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.current_runs("f.parquet", &file).unwrap().runs(), &[]);
        assert!(idx
            .current_runs("g.parquet", &other)
            .unwrap()
            .covers(ord(24), ord(25)));
        // A damaged snapshot is ignored (its files are re-read at run time), the log still counts.
        let snap = snapshot_file(&log);
        let mut bytes = std::fs::read(&snap).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&snap, bytes).unwrap();
        w.record("h.parquet", &other, &cov, Utc::now()).unwrap();
        let idx = CoverageIndex::load(&state, "sc").unwrap();
        assert_eq!(idx.len(), 1);
        assert!(idx.get("h.parquet").is_some());
    }
}
