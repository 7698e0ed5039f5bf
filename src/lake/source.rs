//! A bar file read for the index or the export: every column of the current format with its
//! canonical type, whatever format version wrote it (missing columns of older files are null,
//! except `session_date`, which follows from `ts`), and its coverage record.

use super::{pq_err, LakeError};
use crate::store::bar_schema::{epoch_days, COLUMNS};
use crate::store::coverage::{FileCoverage, COVERAGE_KEY};
use crate::store::provenance::FileProvenance;
use chrono::{TimeZone as _, Utc};
use polars::prelude::*;
use std::path::Path;

/// The polars type of a bar file column (see `schemas/bar_file.schema.json`).
pub fn dtype_of(name: &str) -> DataType {
    let utc = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    match name {
        "ts" | "fetched_at" => utc,
        "ts_ny" => DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::from_chrono(&chrono_tz::America::New_York)),
        ),
        "expiry" | "session_date" => DataType::Date,
        "conid" => DataType::Int64,
        "bar_count" => DataType::Int32,
        "open" | "high" | "low" | "close" | "volume" | "wap" | "strike" | "multiplier" => {
            DataType::Float64
        }
        _ => DataType::String,
    }
}

/// A bar file, normalized.
pub struct SourceFile {
    /// Every column of [`COLUMNS`], in order, with [`dtype_of`] types.
    pub df: DataFrame,
    /// The file's coverage record, if any.
    pub coverage: Option<FileCoverage>,
    /// Format version of the file as written.
    pub format_version: u32,
}

/// Read and normalize a bar file.
pub fn read(path: &Path) -> Result<SourceFile, LakeError> {
    let file = std::fs::File::open(path).map_err(super::io_err(path))?;
    let mut reader = ParquetReader::new(file);
    let meta = reader.get_metadata().map_err(|e| pq_err(path, e))?;
    let kv = meta.key_value_metadata().as_deref().unwrap_or_default();
    let pairs = || {
        kv.iter()
            .filter_map(|k| k.value.as_deref().map(|v| (k.key.as_str(), v)))
    };
    let coverage = pairs()
        .find(|(k, _)| *k == COVERAGE_KEY)
        .and_then(|(_, v)| FileCoverage::decode(v).ok());
    let format_version = FileProvenance::from_pairs(pairs()).format_version;
    let raw = reader.finish().map_err(|e| pq_err(path, e))?;
    let n = raw.height();
    let mut cols = Vec::with_capacity(COLUMNS.len());
    for name in COLUMNS {
        let dtype = dtype_of(name);
        let col = match raw.column(name) {
            Ok(c) => c
                .cast(&dtype)
                .map_err(|e| pq_err(path, format!("`{name}`: {e}")))?,
            Err(_) if *name == "session_date" => session_dates(path, &raw)?,
            Err(_) => Column::full_null((*name).into(), n, &dtype),
        };
        cols.push(col);
    }
    let df = DataFrame::new(n, cols).map_err(|e| pq_err(path, e))?;
    Ok(SourceFile {
        df,
        coverage,
        format_version,
    })
}

/// `session_date` of a file that predates it: the New York date of each `ts`.
fn session_dates(path: &Path, raw: &DataFrame) -> Result<Column, LakeError> {
    let ts = raw
        .column("ts")
        .and_then(|c| c.cast(&dtype_of("ts")))
        .and_then(|c| c.to_physical_repr().cast(&DataType::Int64))
        .map_err(|e| pq_err(path, format!("`ts`: {e}")))?;
    let days: Vec<Option<i32>> = ts
        .i64()
        .map_err(|e| pq_err(path, e))?
        .iter()
        .map(|ms| {
            let t = Utc.timestamp_millis_opt(ms?).single()?;
            Some(epoch_days(crate::calendar::trading_date(t)))
        })
        .collect();
    Series::new("session_date".into(), days)
        .cast(&DataType::Date)
        .map(Column::from)
        .map_err(|e| pq_err(path, e))
}
