//! What a run left on disk: bar files, bytes, disk blocks; and the comparison of two lakes by
//! file list and row counts.

use polars::prelude::{ParquetReader, SerReader};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files and bytes under a directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskUse {
    /// Bar files (`*.parquet` not starting with `_`).
    pub bar_files: usize,
    /// All files.
    pub files: usize,
    /// Sum of file sizes, MB.
    pub bytes_mb: f64,
    /// Disk blocks allocated, MB (what `du` says).
    pub disk_mb: f64,
}

fn walk(dir: &Path, mut each: impl FnMut(&Path, &std::fs::Metadata)) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else {
                each(&p, &m);
            }
        }
    }
}

fn is_bar_file(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "parquet")
        && !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('_'))
}

/// Files and bytes under `dir`.
pub fn disk_use(dir: &Path) -> DiskUse {
    let mut u = DiskUse::default();
    walk(dir, |p, m| {
        u.files += 1;
        u.bar_files += usize::from(is_bar_file(p));
        u.bytes_mb += m.len() as f64 / 1e6;
        u.disk_mb += (m.blocks() * 512) as f64 / 1e6;
    });
    u
}

/// Every bar file under `dir` (path relative to it) with its row count.
pub fn rows_by_file(dir: &Path) -> BTreeMap<PathBuf, usize> {
    let mut out = BTreeMap::new();
    walk(dir, |p, _| {
        if is_bar_file(p) {
            let rows = std::fs::File::open(p)
                .ok()
                .and_then(|f| ParquetReader::new(f).num_rows().ok())
                .unwrap_or(usize::MAX);
            let rel = p.strip_prefix(dir).unwrap_or(p).to_path_buf();
            out.insert(rel, rows);
        }
    });
    out
}

/// How two lakes differ: files only in one, files with other row counts.
#[derive(Debug, Default)]
pub struct LakeDiff {
    pub files_a: usize,
    pub files_b: usize,
    pub rows_a: u64,
    pub rows_b: u64,
    pub only_a: Vec<PathBuf>,
    pub only_b: Vec<PathBuf>,
    pub rows_differ: Vec<(PathBuf, usize, usize)>,
}

impl LakeDiff {
    pub fn equal(&self) -> bool {
        self.only_a.is_empty() && self.only_b.is_empty() && self.rows_differ.is_empty()
    }
}

/// Compare two lakes by file list and row counts.
pub fn compare(a: &Path, b: &Path) -> LakeDiff {
    let (ra, rb) = (rows_by_file(a), rows_by_file(b));
    let mut d = LakeDiff {
        files_a: ra.len(),
        files_b: rb.len(),
        rows_a: ra.values().map(|&r| r as u64).sum(),
        rows_b: rb.values().map(|&r| r as u64).sum(),
        ..Default::default()
    };
    for (p, &n) in &ra {
        match rb.get(p) {
            None => d.only_a.push(p.clone()),
            Some(&m) if m != n => d.rows_differ.push((p.clone(), n, m)),
            Some(_) => {}
        }
    }
    d.only_b = rb
        .keys()
        .filter(|p| !ra.contains_key(*p))
        .cloned()
        .collect();
    d
}
