//! Reading bar files back: rows, coverage record and provenance, whatever writer made them
//! (this tool's older formats, pandas/pyarrow rewrites), and moving an undecodable file aside.
//!
//! Kept apart from the merge so the distinction it rests on stays in one place: a transient I/O
//! failure ([`StoreError::Io`]) leaves the file alone, bytes that cannot be decoded
//! ([`StoreError::Corrupt`]) get the file quarantined by the caller.

use super::{BarFile, Coverage, StoreError, StoredBar};
use crate::ib::FetchedBar;
use crate::store::coverage::{FileCoverage, COVERAGE_KEY};
use crate::store::provenance::FileProvenance;
use chrono::{DateTime, TimeZone as _, Utc};
use polars::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

fn corrupt(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A polars error while reading: I/O errors (EMFILE, EIO, ...) are transient and leave the file
/// alone; anything else means the bytes cannot be decoded.
fn read_error(path: &Path, e: PolarsError) -> StoreError {
    match e {
        PolarsError::IO { error, .. } => StoreError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(error.kind(), error.to_string()),
        },
        other => corrupt(path, other),
    }
}

/// Milliseconds since the epoch of a timestamp column, whatever its unit and zone (files
/// rewritten by pandas/pyarrow carry µs or ns); integers are taken as milliseconds.
fn epoch_ms(path: &Path, df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, StoreError> {
    let col = df
        .column(name)
        .map_err(|_| corrupt(path, format!("no `{name}` column")))?;
    let per_ms: i64 = match col.dtype() {
        DataType::Datetime(TimeUnit::Nanoseconds, _) => 1_000_000,
        DataType::Datetime(TimeUnit::Microseconds, _) => 1_000,
        DataType::Datetime(TimeUnit::Milliseconds, _) => 1,
        DataType::Int64 | DataType::Int32 | DataType::UInt64 | DataType::UInt32 => 1,
        other => return Err(corrupt(path, format!("`{name}`: unexpected type {other}"))),
    };
    let phys = col
        .to_physical_repr()
        .cast(&DataType::Int64)
        .map_err(|e| corrupt(path, format!("`{name}`: {e}")))?;
    let ca = phys.i64().map_err(|e| corrupt(path, e))?;
    Ok(ca.iter().map(|v| v.map(|v| v.div_euclid(per_ms))).collect())
}

/// Read a bar file. `Ok(None)` when it does not exist; [`StoreError::Io`] for a transient read
/// failure (retry, never quarantine); [`StoreError::Corrupt`] when its bytes cannot be decoded.
pub fn read_file(path: &Path) -> Result<Option<BarFile>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut reader = ParquetReader::new(file);
    let (coverage, provenance) = {
        let meta = reader.get_metadata().map_err(|e| read_error(path, e))?;
        let kv = meta.key_value_metadata().as_deref().unwrap_or_default();
        let pairs = || {
            kv.iter()
                .filter_map(|k| k.value.as_deref().map(|v| (k.key.as_str(), v)))
        };
        let coverage = pairs()
            .find(|(k, _)| *k == COVERAGE_KEY)
            .and_then(|(_, v)| FileCoverage::decode(v).ok());
        (coverage, FileProvenance::from_pairs(pairs()))
    };
    let df = reader.finish().map_err(|e| read_error(path, e))?;
    let f64s = |name: &str| -> Result<Vec<Option<f64>>, StoreError> {
        let col = df
            .column(name)
            .map_err(|_| corrupt(path, format!("no `{name}` column")))?;
        let c = col
            .cast(&DataType::Float64)
            .map_err(|e| corrupt(path, format!("`{name}`: {e}")))?;
        Ok(c.f64().map_err(|e| corrupt(path, e))?.iter().collect())
    };
    let ts = epoch_ms(path, &df, "ts")?;
    let fetched = epoch_ms(path, &df, "fetched_at").unwrap_or_else(|_| vec![None; ts.len()]);
    let (open, high, low, close) = (f64s("open")?, f64s("high")?, f64s("low")?, f64s("close")?);
    let (volume, wap) = (f64s("volume")?, f64s("wap")?);
    let count: Vec<Option<f64>> = f64s("bar_count")?;
    let mut rows = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        let t = ts[i].ok_or_else(|| corrupt(path, format!("row {i}: null ts")))?;
        let to_utc = |ms: i64| Utc.timestamp_millis_opt(ms).single();
        let bar = FetchedBar {
            ts: to_utc(t).ok_or_else(|| corrupt(path, format!("row {i}: ts out of range")))?,
            open: open[i].unwrap_or(f64::NAN),
            high: high[i].unwrap_or(f64::NAN),
            low: low[i].unwrap_or(f64::NAN),
            close: close[i].unwrap_or(f64::NAN),
            volume: volume[i].unwrap_or(0.0),
            wap: wap[i].unwrap_or(f64::NAN),
            count: count[i].map(|c| c as i32).unwrap_or(-1),
        };
        let fetched_at = fetched[i].and_then(to_utc).unwrap_or(bar.ts);
        rows.push(StoredBar { bar, fetched_at });
    }
    Ok(Some(BarFile {
        rows,
        coverage,
        provenance,
    }))
}

/// Every row of a bar file. `Ok(None)` when it does not exist.
pub fn read_bars(path: &Path) -> Result<Option<Vec<StoredBar>>, StoreError> {
    Ok(read_file(path)?.map(|f| f.rows))
}

/// Coverage of an existing file; `Ok(None)` if absent or empty, `Err(Corrupt)` if unreadable.
pub fn coverage(path: &Path) -> Result<Option<Coverage>, StoreError> {
    let Some(rows) = read_bars(path)? else {
        return Ok(None);
    };
    let first = rows.iter().map(|r| r.bar.ts).min();
    let last = rows.iter().map(|r| r.bar.ts).max();
    Ok(match (first, last) {
        (Some(first), Some(last)) => Some(Coverage {
            first,
            last,
            rows: rows.len(),
        }),
        _ => None,
    })
}

/// Move an unusable file aside (kept for inspection) under a name no earlier quarantine used,
/// and return it.
pub fn quarantine(path: &Path, now: DateTime<Utc>) -> Result<PathBuf, StoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ");
    let mut target = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = path.with_file_name(format!("{name}.corrupt-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(target)
}
