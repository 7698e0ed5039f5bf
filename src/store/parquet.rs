//! Per-contract Parquet bar files with incremental merge and atomic writes.
//!
//! One file per `{root}/raw/ib/historical_bars_{scope}/{SYMBOL}/{conId}/{WHAT}/{BAR}.parquet`.
//! A merge reads the file (if any), keeps its rows, appends only fetched bars newer than its last
//! `ts`, deduplicates on (ts, conid, bar_size, what_to_show), sorts by `ts` and writes a temporary
//! file in the same directory that is then renamed over the old one: a crash leaves either the old
//! or the new file, never half of one. These functions block: call them from `spawn_blocking`.

use crate::bars::BarSize;
use crate::cache::Right;
use crate::ib::FetchedBar;
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Columns of a bar file, in order. `ts` and `fetched_at` are UTC (milliseconds); `ts_ny` is the
/// same instant tagged America/New_York for readers who want local session times.
pub const COLUMNS: &[&str] = &[
    "ts",
    "ts_ny",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "wap",
    "bar_count",
    "conid",
    "symbol",
    "expiry",
    "strike",
    "right",
    "bar_size",
    "what_to_show",
    "fetched_at",
];

/// What identifies the series stored in one file (constant over its rows).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesKey {
    /// Underlying symbol.
    pub symbol: String,
    /// Option conId.
    pub con_id: i64,
    /// Expiry.
    pub expiry: NaiveDate,
    /// Strike.
    pub strike: f64,
    /// Right.
    pub right: Right,
    /// Bar size.
    pub bar_size: BarSize,
    /// What to show.
    pub what: String,
}

/// Path of the bar file for a series.
pub fn bar_file_path(output_root: &Path, scope: &str, key: &SeriesKey) -> PathBuf {
    output_root
        .join("raw")
        .join("ib")
        .join(format!("historical_bars_{scope}"))
        .join(&key.symbol)
        .join(key.con_id.to_string())
        .join(&key.what)
        .join(format!("{}.parquet", key.bar_size.file_stem()))
}

/// A stored row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredBar {
    /// The bar.
    pub bar: FetchedBar,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// What an existing file holds, as far as planning the next request is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Earliest bar start.
    pub first: DateTime<Utc>,
    /// Latest bar start.
    pub last: DateTime<Utc>,
    /// Number of rows.
    pub rows: usize,
}

/// A bar file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not a readable bar file.
    #[error("{path}: unreadable bar file: {reason}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Polars failed to build or write a frame.
    #[error("{path}: cannot write Parquet: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: PolarsError,
    },
}

/// Result of a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    /// Rows newly written.
    pub appended: usize,
    /// Rows in the file after the merge.
    pub total: usize,
    /// Where a corrupt previous file was moved, if one was.
    pub quarantined: Option<PathBuf>,
}

fn corrupt(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Read every row of a bar file. `Ok(None)` when it does not exist.
pub fn read_bars(path: &Path) -> Result<Option<Vec<StoredBar>>, StoreError> {
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
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| corrupt(path, e))?;
    let ms = |name: &str| -> Result<Vec<Option<i64>>, StoreError> {
        let col = df
            .column(name)
            .map_err(|_| corrupt(path, format!("no `{name}` column")))?;
        let phys = col
            .cast(&DataType::Int64)
            .map_err(|e| corrupt(path, format!("`{name}`: {e}")))?;
        let ca = phys.i64().map_err(|e| corrupt(path, e))?;
        Ok(ca.iter().collect())
    };
    let f64s = |name: &str| -> Result<Vec<Option<f64>>, StoreError> {
        let col = df
            .column(name)
            .map_err(|_| corrupt(path, format!("no `{name}` column")))?;
        let c = col
            .cast(&DataType::Float64)
            .map_err(|e| corrupt(path, format!("`{name}`: {e}")))?;
        Ok(c.f64().map_err(|e| corrupt(path, e))?.iter().collect())
    };
    let ts = ms("ts")?;
    let fetched = ms("fetched_at").unwrap_or_else(|_| vec![None; ts.len()]);
    let (open, high, low, close) = (f64s("open")?, f64s("high")?, f64s("low")?, f64s("close")?);
    let (volume, wap) = (f64s("volume")?, f64s("wap")?);
    let count: Vec<Option<f64>> = f64s("bar_count")?;
    let mut out = Vec::with_capacity(ts.len());
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
        out.push(StoredBar { bar, fetched_at });
    }
    Ok(Some(out))
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

/// Move an unusable file aside (kept for inspection) and return its new name.
pub fn quarantine(path: &Path, now: DateTime<Utc>) -> Result<PathBuf, StoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = path.with_file_name(format!(
        "{name}.corrupt-{}",
        now.format("%Y%m%dT%H%M%S%.3fZ")
    ));
    std::fs::rename(path, &target).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(target)
}

/// Merge fetched bars into the series' file. `incremental = true`: keep the file's rows and append
/// only bars newer than its last `ts`; `false`: replace the file with the fetched bars. A file that
/// cannot be read is quarantined first and the fetched bars written fresh.
pub fn merge_bars(
    path: &Path,
    key: &SeriesKey,
    fetched: &[FetchedBar],
    fetched_at: DateTime<Utc>,
    incremental: bool,
) -> Result<MergeOutcome, StoreError> {
    let mut quarantined = None;
    let existing = if incremental {
        match read_bars(path) {
            Ok(rows) => rows.unwrap_or_default(),
            Err(StoreError::Corrupt { .. }) => {
                quarantined = Some(quarantine(path, fetched_at)?);
                Vec::new()
            }
            Err(e) => return Err(e),
        }
    } else {
        Vec::new()
    };
    let last = existing.iter().map(|r| r.bar.ts).max();
    // Keyed on ts: conid, bar size and what are constant within a file, so this is the
    // (ts, conid, bar_size, what_to_show) dedupe.
    let mut rows: BTreeMap<i64, StoredBar> = existing
        .into_iter()
        .map(|r| (r.bar.ts.timestamp_millis(), r))
        .collect();
    let before = rows.len();
    for b in fetched {
        if last.is_none_or(|l| b.ts > l) {
            rows.entry(b.ts.timestamp_millis()).or_insert(StoredBar {
                bar: *b,
                fetched_at,
            });
        }
    }
    let appended = rows.len() - before;
    if appended == 0 && quarantined.is_none() && path.exists() {
        return Ok(MergeOutcome {
            appended: 0,
            total: rows.len(),
            quarantined,
        });
    }
    let rows: Vec<StoredBar> = rows.into_values().collect();
    write_atomic(path, key, &rows)?;
    Ok(MergeOutcome {
        appended,
        total: rows.len(),
        quarantined,
    })
}

fn build_frame(key: &SeriesKey, rows: &[StoredBar]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let utc = DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC));
    let ny_tz = polars::prelude::TimeZone::from_chrono(&chrono_tz::America::New_York);
    let ny = DataType::Datetime(TimeUnit::Milliseconds, Some(ny_tz));
    let ts: Vec<i64> = rows.iter().map(|r| r.bar.ts.timestamp_millis()).collect();
    let fetched: Vec<i64> = rows
        .iter()
        .map(|r| r.fetched_at.timestamp_millis())
        .collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let expiry_days = (key.expiry - epoch).num_days() as i32;
    let cols: Vec<Column> = vec![
        Series::new("ts".into(), ts.clone()).cast(&utc)?.into(),
        Series::new("ts_ny".into(), ts).cast(&ny)?.into(),
        Series::new(
            "open".into(),
            rows.iter().map(|r| r.bar.open).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "high".into(),
            rows.iter().map(|r| r.bar.high).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "low".into(),
            rows.iter().map(|r| r.bar.low).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "close".into(),
            rows.iter().map(|r| r.bar.close).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "volume".into(),
            rows.iter().map(|r| r.bar.volume).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "wap".into(),
            rows.iter().map(|r| r.bar.wap).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "bar_count".into(),
            rows.iter().map(|r| r.bar.count).collect::<Vec<_>>(),
        )
        .into(),
        Series::new("conid".into(), vec![key.con_id; n]).into(),
        Series::new("symbol".into(), vec![key.symbol.as_str(); n]).into(),
        Series::new("expiry".into(), vec![expiry_days; n])
            .cast(&DataType::Date)?
            .into(),
        Series::new("strike".into(), vec![key.strike; n]).into(),
        Series::new("right".into(), vec![key.right.as_str(); n]).into(),
        Series::new("bar_size".into(), vec![key.bar_size.as_str(); n]).into(),
        Series::new("what_to_show".into(), vec![key.what.as_str(); n]).into(),
        Series::new("fetched_at".into(), fetched).cast(&utc)?.into(),
    ];
    DataFrame::new(n, cols)
}

/// Write rows to `path` via a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, key: &SeriesKey, rows: &[StoredBar]) -> Result<(), StoreError> {
    let mut df = build_frame(key, rows).map_err(|source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    crate::store::atomic::write_with(path, |f| {
        ParquetWriter::new(f)
            .finish(&mut df)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })
    .map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SeriesKey {
        SeriesKey {
            symbol: "AAPL".into(),
            con_id: 42,
            expiry: NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
            strike: 200.0,
            right: Right::C,
            bar_size: BarSize::Hours8,
            what: "TRADES".into(),
        }
    }

    fn bar(t: i64, close: f64) -> FetchedBar {
        FetchedBar {
            ts: Utc.timestamp_opt(t, 0).unwrap(),
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 10.0,
            wap: close,
            count: 3,
        }
    }

    #[test]
    fn merge_appends_only_newer_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = bar_file_path(dir.path(), "t", &key());
        let now = Utc::now();
        let out = merge_bars(&path, &key(), &[bar(2000, 2.0), bar(1000, 1.0)], now, true).unwrap();
        assert_eq!((out.appended, out.total), (2, 2));
        // An overlapping fetch: 2000 is already there (with another close), 3000 is new.
        let out = merge_bars(&path, &key(), &[bar(2000, 99.0), bar(3000, 3.0)], now, true).unwrap();
        assert_eq!((out.appended, out.total), (1, 3));
        let rows = read_bars(&path).unwrap().unwrap();
        let closes: Vec<f64> = rows.iter().map(|r| r.bar.close).collect();
        assert_eq!(closes, vec![1.0, 2.0, 3.0], "old bar kept, sorted by ts");
        let cov = coverage(&path).unwrap().unwrap();
        assert_eq!(cov.last.timestamp(), 3000);
    }

    #[test]
    fn corrupt_file_is_quarantined_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = bar_file_path(dir.path(), "t", &key());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"not parquet").unwrap();
        assert!(matches!(coverage(&path), Err(StoreError::Corrupt { .. })));
        let out = merge_bars(&path, &key(), &[bar(1000, 1.0)], Utc::now(), true).unwrap();
        let q = out.quarantined.expect("quarantined");
        assert_eq!(std::fs::read(&q).unwrap(), b"not parquet");
        assert_eq!(read_bars(&path).unwrap().unwrap().len(), 1);
    }

    #[test]
    fn path_layout() {
        let p = bar_file_path(Path::new("data_test"), "weekend", &key());
        assert_eq!(
            p,
            Path::new("data_test/raw/ib/historical_bars_weekend/AAPL/42/TRADES/8_hours.parquet")
        );
    }
}
