//! Writing a shard's coverage index: lines appended to its log as tasks finish, the log turned
//! into a snapshot segment whenever it grows past [`SEGMENT_BYTES`], and everything folded into
//! the shard's snapshot at the end of a run (layout: [`crate::store::coverage_index`]).
//!
//! Why segments: the log is JSON with each coverage record as text inside, which resume parses
//! twice (the line, then the record's session dates); a run killed half way through a weekend
//! left 183,000 lines (85 MB), 3.5 s of the resume's start-up. A segment holds the same entries
//! with their session runs resolved and is read without parsing, and writing one costs only the
//! entries since the last (the shard's snapshot is rewritten once, at the end of the run).

use crate::calendar;
use crate::store::coverage::{FileCoverage, FinalRuns};
use crate::store::coverage_index::{
    fingerprint, index_file, read_log, read_snapshot, segment_file, segment_files, snapshot_file,
    Line,
};
use crate::store::coverage_snapshot::{self, SnapshotEntry};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Log size past which the writer turns the log into a segment: about 50,000 lines of
/// `8 hours x 6 M` coverage (~460 bytes each), a fifth of a second of parsing at resume.
pub const SEGMENT_BYTES: u64 = 24 << 20;

/// Appends entries to this shard's index.
pub struct IndexWriter {
    path: PathBuf,
    file: File,
    /// Bytes in the log now.
    log_bytes: u64,
    /// Log size at which the next segment is written.
    segment_at: u64,
    segment_bytes: u64,
    /// Number of the next segment.
    next_segment: u64,
    /// This writer's entries since the log was last emptied: the next segment's content, so
    /// writing it does not read the log back (reading and parsing 24 MiB left ~50 MB of
    /// allocator high-water mark per segment in the benchmark).
    pending: Vec<SnapshotEntry>,
    /// The log held lines of an earlier process when opened (a killed run): the next segment
    /// is made from the log itself, once.
    inherited: bool,
}

impl IndexWriter {
    /// Open (create) this shard's index for appending.
    pub fn open(
        state_root: &Path,
        scope: &str,
        batch_index: u32,
        batch_count: u32,
    ) -> std::io::Result<IndexWriter> {
        Self::open_with(state_root, scope, (batch_index, batch_count), SEGMENT_BYTES)
    }

    /// [`IndexWriter::open`] with another segment size (tests).
    pub fn open_with(
        state_root: &Path,
        scope: &str,
        (batch_index, batch_count): (u32, u32),
        segment_bytes: u64,
    ) -> std::io::Result<IndexWriter> {
        let path = index_file(state_root, scope, batch_index, batch_count);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let log_bytes = file.metadata()?.len();
        let next_segment = segment_files(&path).last().map_or(0, |(k, _)| k + 1);
        Ok(IndexWriter {
            path,
            file,
            pending: Vec::new(),
            inherited: log_bytes > 0,
            log_bytes,
            segment_at: segment_bytes.max(1),
            segment_bytes: segment_bytes.max(1),
            next_segment,
        })
    }

    /// Record the coverage of the file at `abs` (relative name `rel`) as it is on disk now.
    /// The entry is in the log when this returns; a log grown past the segment size is then
    /// turned into a segment (a failure there is logged and tried again a segment later: the
    /// entries stay in the log meanwhile).
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
        self.file.flush()?;
        self.log_bytes += text.len() as u64;
        if !self.inherited {
            self.pending.push(from_line(line));
        }
        if self.log_bytes >= self.segment_at {
            if let Err(e) = self.write_segment() {
                // The log still holds everything: the next try makes the segment from it.
                self.pending = Vec::new();
                self.inherited = true;
                self.segment_at = self.log_bytes + self.segment_bytes;
                tracing::warn!(
                    "coverage log {}: cannot turn it into a segment ({e}); it keeps growing",
                    self.path.display()
                );
            }
        }
        Ok(())
    }

    /// Turn the log into the next segment, then empty the log. Each step is an atomic
    /// replacement; a crash between them leaves the same entries in both, which readers
    /// resolve by their time.
    fn write_segment(&mut self) -> std::io::Result<()> {
        let entries = if self.inherited {
            newest_per_file(read_log(&self.path)?.into_iter().map(from_line))
        } else {
            newest_per_file(std::mem::take(&mut self.pending).into_iter())
        };
        let bytes = coverage_snapshot::encode(&entries, calendar::table_fingerprint());
        let segment = segment_file(&self.path, self.next_segment);
        crate::store::atomic::write_bytes(&segment, &bytes)?;
        self.next_segment += 1;
        self.empty_log()
    }

    fn empty_log(&mut self) -> std::io::Result<()> {
        crate::store::atomic::write_bytes(&self.path, b"")?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.log_bytes = 0;
        self.segment_at = self.segment_bytes;
        self.pending = Vec::new();
        self.inherited = false;
        Ok(())
    }

    /// Fold this shard's segments and log into its snapshot (newest entry per file, session
    /// runs resolved), then remove the segments and empty the log. The snapshot is replaced
    /// atomically first: a crash after it leaves entries in two places, resolved by their time.
    pub fn compact(&mut self, state_root: &Path, scope: &str) -> std::io::Result<()> {
        let _ = (state_root, scope);
        let snapshot = snapshot_file(&self.path);
        let segments = segment_files(&self.path);
        let mut sources = read_snapshot(&snapshot);
        for (_, seg) in &segments {
            sources.extend(read_snapshot(seg));
        }
        let log = read_log(&self.path)?;
        let entries = newest_per_file(sources.into_iter().chain(log.into_iter().map(from_line)));
        let bytes = coverage_snapshot::encode(&entries, calendar::table_fingerprint());
        crate::store::atomic::write_bytes(&snapshot, &bytes)?;
        for (_, seg) in &segments {
            std::fs::remove_file(seg)?;
        }
        self.next_segment = 0;
        self.empty_log()
    }
}

fn from_line(l: Line) -> SnapshotEntry {
    SnapshotEntry {
        runs: None,
        path: l.path,
        fp: l.fp,
        at: l.at,
        cov: l.cov,
    }
}

/// The newest entry per file (the later one on a tie: sources come oldest first), sorted by
/// path, with session runs resolved where a source did not have them.
fn newest_per_file(sources: impl Iterator<Item = SnapshotEntry>) -> Vec<SnapshotEntry> {
    let mut latest: HashMap<String, SnapshotEntry> = HashMap::new();
    for e in sources {
        if latest.get(&e.path).is_none_or(|old| old.at <= e.at) {
            latest.insert(e.path.clone(), e);
        }
    }
    let mut entries: Vec<SnapshotEntry> = latest.into_values().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    for e in &mut entries {
        if e.runs.is_none() {
            e.runs = FinalRuns::parse(&e.cov);
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::coverage::{Answer, Cover, Unit};
    use crate::store::coverage_index::CoverageIndex;
    use chrono::NaiveDate;

    fn coverage(day: u32) -> FileCoverage {
        let s = calendar::session(NaiveDate::from_ymd_opt(2026, 11, day).unwrap())
            .unwrap()
            .unwrap();
        let mut cov = FileCoverage::default();
        let cover = Cover {
            answer: Answer::Bars,
            provisional: false,
        };
        cov.set(&Unit::Session(s), cover);
        cov
    }

    #[test]
    fn a_growing_log_becomes_segments_that_readers_and_compaction_see() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut w = IndexWriter::open_with(&state, "sc", (0, 1), 2_000).unwrap();
        let log = index_file(&state, "sc", 0, 1);
        let t0 = Utc::now();
        // 40 files, each recorded twice (the second newer, another session).
        for round in 0..2u32 {
            for i in 0..40 {
                let at = t0 + chrono::Duration::milliseconds(i64::from(round * 100 + i));
                let rel = format!("f{i}.parquet");
                w.record(&rel, &dir.path().join(&rel), &coverage(23 + round), at)
                    .unwrap();
            }
        }
        let segments = segment_files(&log);
        assert!(segments.len() >= 3, "{segments:?}");
        assert!(std::fs::metadata(&log).unwrap().len() < 2_000);
        let check = |idx: &CoverageIndex| {
            assert_eq!(idx.len(), 40);
            for i in 0..40 {
                let rel = format!("f{i}.parquet");
                let got = idx.current(&rel, &dir.path().join(&rel));
                assert_eq!(got, Some(coverage(24)), "{rel}");
            }
        };
        check(&CoverageIndex::load(&state, "sc").unwrap());
        // A writer opened later (the log still holds lines of the first) numbers its segments
        // after the existing ones and keeps the inherited lines in its first segment.
        for i in 0..2 {
            if std::fs::metadata(&log).unwrap().len() > 0 {
                break;
            }
            let rel = format!("f{i}.parquet");
            let at = t0 + chrono::Duration::milliseconds(500 + i);
            w.record(&rel, &dir.path().join(&rel), &coverage(24), at)
                .unwrap();
        }
        assert!(std::fs::metadata(&log).unwrap().len() > 0);
        drop(w);
        let mut w = IndexWriter::open_with(&state, "sc", (0, 1), 2_000).unwrap();
        assert_eq!(w.next_segment, segments.last().unwrap().0 + 1);
        for i in 40..60 {
            let rel = format!("f{i}.parquet");
            let at = t0 + chrono::Duration::milliseconds(1000 + i64::from(i));
            w.record(&rel, &dir.path().join(&rel), &coverage(24), at)
                .unwrap();
        }
        assert!(segment_files(&log).len() > segments.len());
        let check_all = |idx: &CoverageIndex| {
            assert_eq!(idx.len(), 60);
            for i in 0..60 {
                let rel = format!("f{i}.parquet");
                let got = idx.current(&rel, &dir.path().join(&rel));
                assert_eq!(got, Some(coverage(24)), "{rel}");
            }
        };
        check_all(&CoverageIndex::load(&state, "sc").unwrap());
        w.compact(&state, "sc").unwrap();
        assert!(
            segment_files(&log).is_empty(),
            "segments folded and removed"
        );
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        check_all(&CoverageIndex::load(&state, "sc").unwrap());
    }

    #[test]
    fn a_crash_between_segment_and_emptied_log_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut w = IndexWriter::open_with(&state, "sc", (0, 1), u64::MAX).unwrap();
        let log = index_file(&state, "sc", 0, 1);
        let t0 = Utc::now();
        for i in 0..5 {
            let rel = format!("f{i}.parquet");
            let at = t0 + chrono::Duration::milliseconds(i);
            w.record(&rel, &dir.path().join(&rel), &coverage(23), at)
                .unwrap();
        }
        let lines = std::fs::read(&log).unwrap();
        w.write_segment().unwrap();
        // The log as it was before it was emptied, plus a newer entry of f0.
        std::fs::write(&log, &lines).unwrap();
        let mut w = IndexWriter::open_with(&state, "sc", (0, 1), u64::MAX).unwrap();
        let rel = dir.path().join("f0.parquet");
        w.record(
            "f0.parquet",
            &rel,
            &coverage(24),
            t0 + chrono::Duration::seconds(1),
        )
        .unwrap();
        for idx in [CoverageIndex::load(&state, "sc").unwrap(), {
            w.compact(&state, "sc").unwrap();
            CoverageIndex::load(&state, "sc").unwrap()
        }] {
            assert_eq!(idx.len(), 5);
            assert_eq!(idx.current("f0.parquet", &rel), Some(coverage(24)));
            let f4 = dir.path().join("f4.parquet");
            assert_eq!(idx.current("f4.parquet", &f4), Some(coverage(23)));
        }
    }
}
