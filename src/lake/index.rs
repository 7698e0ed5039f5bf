//! `_index.parquet`: one row per bar file of a scope, so a query filters a small table and then
//! reads only the files it names, instead of opening every footer of the lake.
//!
//! Each row carries the file's size and modification time when it was read: a refresh re-reads
//! only files whose fingerprint changed (a full `lake index` on an unchanged lake reads no bar
//! file), and `execute` refreshes only the files of its tasks. The index is derived data: it is
//! written atomically and can be deleted and rebuilt at any time.

use super::{footer, io_err, pq_err, source, LakeError, Scope};
use crate::store::coverage::Answer;
use crate::store::coverage_index::{fingerprint, Fingerprint};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the index at the scope root.
pub const INDEX_FILE: &str = "_index.parquet";
/// Version of the index's columns (key `opt_backfill.index_version` in its metadata).
pub const INDEX_VERSION: u32 = 1;
const INDEX_VERSION_KEY: &str = "opt_backfill.index_version";
const LOCK_FILE: &str = ".index.lock";

/// One bar file, as the index describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// Path relative to the scope directory (`SYMBOL/CONID/WHAT/BAR.parquet`).
    pub path: String,
    /// Underlying symbol.
    pub symbol: String,
    /// Option conId.
    pub conid: i64,
    /// IB local symbol (null for a format-1 file).
    pub local_symbol: Option<String>,
    /// Trading class (null for a format-1 file).
    pub trading_class: Option<String>,
    /// Expiry, days since the epoch (null: no rows).
    pub expiry: Option<i32>,
    /// Strike (null: no rows).
    pub strike: Option<f64>,
    /// Right (null: no rows).
    pub right: Option<String>,
    /// IB bar size.
    pub bar_size: String,
    /// What to show.
    pub what_to_show: String,
    /// Bars in the file.
    pub rows: u64,
    /// First bar start, ms since the epoch.
    pub first_ts: Option<i64>,
    /// Last bar start, ms since the epoch.
    pub last_ts: Option<i64>,
    /// Sessions the coverage record says answered with bars (null: no record).
    pub sessions_with_bars: Option<u32>,
    /// Sessions the coverage record says answered empty (null: no record).
    pub sessions_empty: Option<u32>,
    /// Format version of the file.
    pub format_version: u32,
    /// File size when indexed.
    pub file_bytes: u64,
    /// File modification time when indexed, ns since the epoch.
    pub file_mtime_ns: i64,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Bar files in the index after the refresh.
    pub files: usize,
    /// Bar files read (new or changed since they were indexed).
    pub read: usize,
    /// Rows dropped (their file is gone).
    pub removed: usize,
    /// Files that could not be read (left out of the index, named on stderr).
    pub unreadable: usize,
    /// Bars in all indexed files.
    pub bars: u64,
}

/// Path of a scope's index.
pub fn index_path(scope_dir: &Path) -> PathBuf {
    scope_dir.join(INDEX_FILE)
}

fn str_at(df: &DataFrame, name: &str, i: usize) -> Option<String> {
    let c = df.column(name).ok()?.str().ok()?.get(i)?;
    Some(c.to_string())
}

fn phys_i64(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i64>>> {
    let c = df.column(name)?.to_physical_repr().cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().collect())
}

/// Index one bar file (`rel` under `scope`), or None when it vanished meanwhile: from its
/// footer where that proves every value, else by reading its columns.
fn index_file(scope: &Scope, rel: &str) -> Result<Option<IndexRow>, LakeError> {
    let path = scope.dir.join(rel);
    let Some(fp) = fingerprint(&path).map_err(io_err(&path))? else {
        return Ok(None);
    };
    if let Some(row) = footer::index_row(&path, rel, fp)? {
        return Ok(Some(row));
    }
    read_row(&path, rel, fp)
}

/// Index one bar file by reading its columns (older formats, empty files).
pub(super) fn read_row(
    path: &Path,
    rel: &str,
    fp: Fingerprint,
) -> Result<Option<IndexRow>, LakeError> {
    let src = source::read(path)?;
    let df = &src.df;
    let parts: Vec<&str> = rel.split('/').collect();
    let ts = phys_i64(df, "ts").map_err(|e| pq_err(path, e))?;
    let expiry = df
        .column("expiry")
        .and_then(|c| c.cast(&DataType::Int32))
        .ok()
        .and_then(|c| c.i32().ok().and_then(|a| a.get(0)));
    let strike = df
        .column("strike")
        .ok()
        .and_then(|c| c.f64().ok().and_then(|a| a.get(0)));
    let conid = df
        .column("conid")
        .ok()
        .and_then(|c| c.i64().ok().and_then(|a| a.get(0)))
        .or_else(|| parts.get(1).and_then(|p| p.parse().ok()))
        .unwrap_or(0);
    let stem_size = parts
        .get(3)
        .map(|s| s.trim_end_matches(".parquet").replace('_', " "))
        .unwrap_or_default();
    let count = |a: Answer| {
        src.coverage
            .as_ref()
            .map(|c| c.sessions().filter(|(_, cv)| cv.answer == a).count() as u32)
    };
    Ok(Some(IndexRow {
        path: rel.to_string(),
        symbol: str_at(df, "symbol", 0).unwrap_or_else(|| parts[0].to_string()),
        conid,
        local_symbol: str_at(df, "local_symbol", 0),
        trading_class: str_at(df, "trading_class", 0),
        expiry,
        strike,
        right: str_at(df, "right", 0),
        bar_size: str_at(df, "bar_size", 0).unwrap_or(stem_size),
        what_to_show: str_at(df, "what_to_show", 0)
            .unwrap_or_else(|| parts.get(2).unwrap_or(&"").to_string()),
        rows: df.height() as u64,
        first_ts: ts.iter().flatten().min().copied(),
        last_ts: ts.iter().flatten().max().copied(),
        sessions_with_bars: count(Answer::Bars),
        sessions_empty: count(Answer::Empty),
        format_version: src.format_version,
        file_bytes: fp.len,
        file_mtime_ns: fp.mtime_ns as i64,
    }))
}

/// Columns of the index, in order.
pub const INDEX_COLUMNS: &[&str] = &[
    "path",
    "symbol",
    "conid",
    "local_symbol",
    "trading_class",
    "expiry",
    "strike",
    "right",
    "bar_size",
    "what_to_show",
    "rows",
    "first_ts",
    "last_ts",
    "sessions_with_bars",
    "sessions_empty",
    "format_version",
    "file_bytes",
    "file_mtime_ns",
];

fn frame(rows: &[IndexRow]) -> PolarsResult<DataFrame> {
    let utc = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    macro_rules! col {
        ($name:expr, $f:expr) => {
            Column::from(Series::new(
                $name.into(),
                rows.iter().map($f).collect::<Vec<_>>(),
            ))
        };
    }
    let cols = vec![
        col!("path", |r| r.path.as_str()),
        col!("symbol", |r| r.symbol.as_str()),
        col!("conid", |r| r.conid),
        col!("local_symbol", |r| r.local_symbol.as_deref()),
        col!("trading_class", |r| r.trading_class.as_deref()),
        col!("expiry", |r| r.expiry).cast(&DataType::Date)?,
        col!("strike", |r| r.strike),
        col!("right", |r| r.right.as_deref()),
        col!("bar_size", |r| r.bar_size.as_str()),
        col!("what_to_show", |r| r.what_to_show.as_str()),
        col!("rows", |r| r.rows),
        col!("first_ts", |r| r.first_ts).cast(&utc)?,
        col!("last_ts", |r| r.last_ts).cast(&utc)?,
        col!("sessions_with_bars", |r| r.sessions_with_bars),
        col!("sessions_empty", |r| r.sessions_empty),
        col!("format_version", |r| r.format_version),
        col!("file_bytes", |r| r.file_bytes),
        col!("file_mtime_ns", |r| r.file_mtime_ns),
    ];
    DataFrame::new(rows.len(), cols)
}

/// The index of a scope as last written; `Ok(None)` when there is none.
pub fn load(scope_dir: &Path) -> Result<Option<Vec<IndexRow>>, LakeError> {
    let path = index_path(scope_dir);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| pq_err(&path, e))?;
    let bad = |e: PolarsError| pq_err(&path, e);
    let strs = |n: &str| -> Result<Vec<Option<String>>, LakeError> {
        Ok(df
            .column(n)
            .map_err(bad)?
            .str()
            .map_err(bad)?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect())
    };
    let ints = |n: &str| phys_i64(&df, n).map_err(bad);
    let floats = |n: &str| -> Result<Vec<Option<f64>>, LakeError> {
        let c = df
            .column(n)
            .map_err(bad)?
            .cast(&DataType::Float64)
            .map_err(bad)?;
        Ok(c.f64().map_err(bad)?.iter().collect())
    };
    let (p, sym, ls, tc, right, bs, what) = (
        strs("path")?,
        strs("symbol")?,
        strs("local_symbol")?,
        strs("trading_class")?,
        strs("right")?,
        strs("bar_size")?,
        strs("what_to_show")?,
    );
    let (conid, expiry, rows, first, last) = (
        ints("conid")?,
        ints("expiry")?,
        ints("rows")?,
        ints("first_ts")?,
        ints("last_ts")?,
    );
    let (sb, se, fv, fb, fm) = (
        ints("sessions_with_bars")?,
        ints("sessions_empty")?,
        ints("format_version")?,
        ints("file_bytes")?,
        ints("file_mtime_ns")?,
    );
    let strike = floats("strike")?;
    let out = (0..df.height())
        .map(|i| IndexRow {
            path: p[i].clone().unwrap_or_default(),
            symbol: sym[i].clone().unwrap_or_default(),
            conid: conid[i].unwrap_or(0),
            local_symbol: ls[i].clone(),
            trading_class: tc[i].clone(),
            expiry: expiry[i].map(|d| d as i32),
            strike: strike[i],
            right: right[i].clone(),
            bar_size: bs[i].clone().unwrap_or_default(),
            what_to_show: what[i].clone().unwrap_or_default(),
            rows: rows[i].unwrap_or(0) as u64,
            first_ts: first[i],
            last_ts: last[i],
            sessions_with_bars: sb[i].map(|v| v as u32),
            sessions_empty: se[i].map(|v| v as u32),
            format_version: fv[i].unwrap_or(1) as u32,
            file_bytes: fb[i].unwrap_or(0) as u64,
            file_mtime_ns: fm[i].unwrap_or(0),
        })
        .collect();
    Ok(Some(out))
}

fn write(scope_dir: &Path, rows: &[IndexRow]) -> Result<(), LakeError> {
    let path = index_path(scope_dir);
    let mut df = frame(rows).map_err(|e| pq_err(&path, e))?;
    let kv = vec![(INDEX_VERSION_KEY.to_string(), INDEX_VERSION.to_string())];
    crate::store::atomic::write_with(&path, |f| {
        crate::store::parquet_compat::write_frame(f, &mut df, kv, None)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })
    .map_err(io_err(&path))
}

/// Bring the index of `scope` up to date. `touched`: only these files (relative paths) may have
/// changed (a run's files); None: walk the whole scope. Only files whose size or modification
/// time differs from their row are read. Without a readable index, the whole scope is indexed.
pub fn refresh(scope: &Scope, touched: Option<&[String]>) -> Result<IndexStats, LakeError> {
    let lock_path = scope.dir.join(LOCK_FILE);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    // Shards of one run finish at different times: one refresh at a time, each re-reading the
    // index the previous one wrote.
    lock.lock().map_err(io_err(&lock_path))?;
    let existing = load(&scope.dir).unwrap_or_else(|e| {
        eprintln!("warning: {e}: rebuilding the index");
        None
    });
    let mut stats = IndexStats::default();
    let (mut by_path, candidates): (BTreeMap<String, IndexRow>, Vec<String>) =
        match (existing, touched) {
            (Some(rows), Some(t)) => (
                rows.into_iter().map(|r| (r.path.clone(), r)).collect(),
                t.to_vec(),
            ),
            (existing, _) => {
                let all = scope.bar_files()?;
                let mut map: BTreeMap<String, IndexRow> = existing
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| (r.path.clone(), r))
                    .collect();
                let keep: std::collections::HashSet<&String> = all.iter().collect();
                let before = map.len();
                map.retain(|p, _| keep.contains(p));
                stats.removed = before - map.len();
                (map, all)
            }
        };
    let mut seen = std::collections::HashSet::new();
    let mut to_read = Vec::new();
    for rel in candidates {
        if !seen.insert(rel.clone()) {
            continue;
        }
        let path = scope.dir.join(&rel);
        match (
            fingerprint(&path).map_err(io_err(&path))?,
            by_path.get(&rel),
        ) {
            (Some(fp), Some(row))
                if row.file_bytes == fp.len && row.file_mtime_ns == fp.mtime_ns as i64 => {}
            (None, _) => stats.removed += usize::from(by_path.remove(&rel).is_some()),
            (Some(_), _) => to_read.push(rel),
        }
    }
    // Files are independent: read on all cores (a footer each, mostly).
    let read = crate::par::map_chunks(
        &to_read,
        64,
        |chunk| chunk.iter().map(|rel| index_file(scope, rel)).collect(),
        |chunk| {
            chunk
                .iter()
                .map(|rel| {
                    Err(LakeError::Parquet {
                        path: scope.dir.join(rel),
                        reason: "indexing it panicked".into(),
                    })
                })
                .collect()
        },
    );
    for (rel, result) in to_read.into_iter().zip(read) {
        match result {
            Ok(Some(row)) => {
                stats.read += 1;
                by_path.insert(rel, row);
            }
            Ok(None) => {
                stats.removed += usize::from(by_path.remove(&rel).is_some());
            }
            Err(e) => {
                eprintln!("warning: {e}: left out of the index");
                stats.unreadable += 1;
                by_path.remove(&rel);
            }
        }
    }
    let rows: Vec<IndexRow> = by_path.into_values().collect();
    stats.files = rows.len();
    stats.bars = rows.iter().map(|r| r.rows).sum();
    write(&scope.dir, &rows)?;
    Ok(stats)
}

/// Refresh the index of the scope at `scope_dir` for the files a run wrote or checked
/// (`touched`, relative to the scope directory, duplicates allowed). For `execute`'s end: a
/// scope without bar files yet is left without an index.
pub fn refresh_after_run(scope_dir: &Path, touched: &[String]) -> Result<IndexStats, LakeError> {
    if !scope_dir.is_dir() {
        return Ok(IndexStats::default());
    }
    let scope = Scope::open(scope_dir)?;
    refresh(&scope, Some(touched))
}
