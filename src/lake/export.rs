//! `lake export`: the scope's bar files as one Hive-partitioned dataset,
//! `bar_size=<>/what_to_show=<>/symbol=<>/part-0.parquet`, each partition sorted by expiry,
//! strike, right and ts, so a scan of one symbol reads one file and prunes by row group.
//!
//! Atomic per partition: a partition is one file, written under a hidden temporary name in its
//! directory and renamed over the previous one, so a reader (or a kill -9) sees the old
//! partition or the new one, never part of one. Re-runnable: `_export_manifest.json` records
//! per partition a fingerprint of its source files (path, size, modification time); a partition
//! whose sources did not change is not rewritten.

use super::{io_err, pq_err, source, LakeError, Scope};
use crate::store::coverage_index::fingerprint;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the manifest at the export root.
pub const MANIFEST_FILE: &str = "_export_manifest.json";
/// The part file of a partition.
pub const PART_FILE: &str = "part-0.parquet";
/// Rows per row group: large enough for scans, small enough that a filter on expiry or strike
/// skips most of a large partition.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Columns that are directories in the export (not stored in the part files).
pub const PARTITION_COLUMNS: [&str; 3] = ["bar_size", "what_to_show", "symbol"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    partitions: BTreeMap<String, PartitionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PartitionRecord {
    /// SHA-256 over the scope and its source files' (path, size, mtime).
    fingerprint: String,
    files: usize,
    bars: u64,
}

/// One partition's progress, reported as it is done.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Partitions done so far (this one included).
    pub done: usize,
    /// Partitions in all.
    pub total: usize,
    /// Partition path relative to the export root.
    pub partition: String,
    /// Its source files.
    pub files: usize,
    /// Bars written (0 when skipped).
    pub bars: u64,
    /// False when it was up to date.
    pub written: bool,
}

/// Totals of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExportStats {
    /// Partitions in the dataset.
    pub partitions: usize,
    /// Partitions (re)written.
    pub written: usize,
    /// Partitions up to date.
    pub skipped: usize,
    /// Partitions removed (no source file left).
    pub removed: usize,
    /// Source files read.
    pub files_read: usize,
    /// Bars written.
    pub bars_written: u64,
}

/// Percent-encode a partition value (what pyarrow, DuckDB and polars decode).
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The partition of a bar file (`SYMBOL/CONID/WHAT/BAR.parquet`).
fn partition_of(rel: &str) -> Option<String> {
    let p: Vec<&str> = rel.split('/').collect();
    let [symbol, _, what, bar] = p.as_slice() else {
        return None;
    };
    let bar_size = bar.strip_suffix(".parquet")?.replace('_', " ");
    Some(format!(
        "bar_size={}/what_to_show={}/symbol={}",
        encode(&bar_size),
        encode(what),
        encode(symbol)
    ))
}

fn partition_fingerprint(scope: &Scope, files: &[String]) -> Result<String, LakeError> {
    let mut h = Sha256::new();
    let root = scope
        .dir
        .canonicalize()
        .unwrap_or_else(|_| scope.dir.clone());
    h.update(root.to_string_lossy().as_bytes());
    for rel in files {
        let path = scope.dir.join(rel);
        let fp = fingerprint(&path).map_err(io_err(&path))?;
        let (len, mtime) = fp.map(|f| (f.len, f.mtime_ns)).unwrap_or((0, 0));
        h.update(format!("\n{rel}\t{len}\t{mtime}").as_bytes());
    }
    Ok(h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>())
}

fn load_manifest(to: &Path) -> Manifest {
    std::fs::read(to.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Read, stack and sort the source files of one partition.
fn build_partition(scope: &Scope, files: &[String]) -> Result<DataFrame, LakeError> {
    let mut out: Option<DataFrame> = None;
    for rel in files {
        let path = scope.dir.join(rel);
        let df = source::read(&path)?.df.drop_many(PARTITION_COLUMNS);
        match out.as_mut() {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut(&df).map_err(|e| pq_err(&path, e))?;
            }
        }
    }
    let df = out.unwrap_or_default();
    df.sort(
        ["expiry", "strike", "right", "ts"],
        SortMultipleOptions::default().with_maintain_order(true),
    )
    .map_err(|e| pq_err(&scope.dir, e))
}

fn write_part(dir: &Path, df: &mut DataFrame) -> Result<(), LakeError> {
    let path = dir.join(PART_FILE);
    df.rechunk_mut();
    crate::store::atomic::write_with(&path, |f| {
        crate::store::parquet_compat::write_frame(f, df, Vec::new(), Some(ROW_GROUP_ROWS))
            .map(|_| ())
            .map_err(std::io::Error::other)
    })
    .map_err(io_err(&path))
}

/// Export `scope` to `to`, rewriting only partitions whose source files changed since the last
/// export there; `progress` is called after each partition.
pub fn export(
    scope: &Scope,
    to: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ExportStats, LakeError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rel in scope.bar_files()? {
        if let Some(p) = partition_of(&rel) {
            groups.entry(p).or_default().push(rel);
        }
    }
    let mut manifest = load_manifest(to);
    manifest.version = 1;
    let manifest_path = to.join(MANIFEST_FILE);
    let mut stats = ExportStats {
        partitions: groups.len(),
        ..Default::default()
    };
    let total = groups.len();
    for (i, (partition, files)) in groups.iter().enumerate() {
        let dir = to.join(partition);
        let fp = partition_fingerprint(scope, files)?;
        let current = manifest
            .partitions
            .get(partition)
            .is_some_and(|r| r.fingerprint == fp)
            && dir.join(PART_FILE).is_file();
        let mut bars = 0;
        if current {
            stats.skipped += 1;
        } else {
            let mut df = build_partition(scope, files)?;
            bars = df.height() as u64;
            write_part(&dir, &mut df)?;
            stats.written += 1;
            stats.files_read += files.len();
            stats.bars_written += bars;
            manifest.partitions.insert(
                partition.clone(),
                PartitionRecord {
                    fingerprint: fp,
                    files: files.len(),
                    bars,
                },
            );
            crate::store::atomic::write_json(&manifest_path, &manifest)
                .map_err(io_err(&manifest_path))?;
        }
        progress(&Progress {
            done: i + 1,
            total,
            partition: partition.clone(),
            files: files.len(),
            bars,
            written: !current,
        });
    }
    // Partitions whose source files are all gone.
    let gone: Vec<String> = manifest
        .partitions
        .keys()
        .filter(|p| !groups.contains_key(*p))
        .cloned()
        .collect();
    for p in gone {
        let part = to.join(&p).join(PART_FILE);
        match std::fs::remove_file(&part) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&part)(e)),
        }
        let _ = std::fs::remove_dir(to.join(&p));
        manifest.partitions.remove(&p);
        stats.removed += 1;
        crate::store::atomic::write_json(&manifest_path, &manifest)
            .map_err(io_err(&manifest_path))?;
    }
    if stats.written == 0 && stats.removed == 0 {
        crate::store::atomic::write_json(&manifest_path, &manifest)
            .map_err(io_err(&manifest_path))?;
    }
    Ok(stats)
}

/// The part file of every partition under `to` (for tests and benchmarks).
pub fn part_files(to: &Path) -> Vec<PathBuf> {
    let m = load_manifest(to);
    m.partitions
        .keys()
        .map(|p| to.join(p).join(PART_FILE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_are_hive_and_percent_encoded() {
        assert_eq!(
            partition_of("SPY/123/TRADES/8_hours.parquet").as_deref(),
            Some("bar_size=8%20hours/what_to_show=TRADES/symbol=SPY")
        );
        assert_eq!(
            partition_of("BRK B/1/BID_ASK/1_min.parquet").as_deref(),
            Some("bar_size=1%20min/what_to_show=BID_ASK/symbol=BRK%20B")
        );
        assert_eq!(partition_of("SPY/8_hours.parquet"), None);
    }
}
