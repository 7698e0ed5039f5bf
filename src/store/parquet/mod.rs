//! Per-contract Parquet bar files with incremental merge and atomic writes.
//!
//! One file per `{root}/raw/ib/historical_bars_{scope}/{SYMBOL}/{conId}/{WHAT}/{BAR}.parquet`.
//! A merge reads the file (if any), replaces the rows of the sessions just fetched with the
//! answer (merged by the key ts, conid, bar_size, what_to_show; conid, bar size and what are
//! constant in a file), sorts by `ts`, records what each fetched session answered in the file's
//! coverage ([`super::coverage`], in the Parquet key-value metadata) and writes a temporary file
//! in the same directory that is then renamed over the old one: a crash leaves either the old or
//! the new file, never half of one. These functions block: call them from `spawn_blocking`.
//!
//! This module holds the vocabulary (series key, paths, rows, errors, outcomes); `read` reads
//! files back and quarantines undecodable ones, `merge` merges an answer in and writes.

use crate::bars::BarSize;
use crate::cache::Right;
use crate::ib::FetchedBar;
use crate::store::coverage::{Answer, FileCoverage};
use crate::store::provenance::FileProvenance;
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::PolarsError;
use std::path::{Path, PathBuf};

mod merge;
mod read;

pub use super::bar_schema::COLUMNS;
pub use merge::{merge_bars, merge_units, write_atomic};
pub use read::{coverage, quarantine, read_bars, read_file};

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
    /// IB local symbol (e.g. `SPXW  261218C06000000`).
    pub local_symbol: String,
    /// Trading class: tells apart two classes of one underlying with the same expiry, strike
    /// and right (SPX and SPXW).
    pub trading_class: String,
    /// Contract multiplier.
    pub multiplier: f64,
    /// Exchange the requests went to (SMART).
    pub exchange: String,
    /// Currency.
    pub currency: String,
}

/// The directory of a scope's bar files.
pub fn scope_dir(output_root: &Path, scope: &str) -> PathBuf {
    output_root
        .join("raw")
        .join("ib")
        .join(format!("historical_bars_{scope}"))
}

/// Path of the bar file for a series.
pub fn bar_file_path(output_root: &Path, scope: &str, key: &SeriesKey) -> PathBuf {
    scope_dir(output_root, scope)
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
    /// Rows the file did not hold before (new timestamps).
    pub appended: usize,
    /// Rows in the file after the merge.
    pub total: usize,
    /// Where a corrupt previous file was moved, if one was.
    pub quarantined: Option<PathBuf>,
    /// The file's coverage after the merge.
    pub coverage: FileCoverage,
    /// False when nothing was written: no file existed and the answer had no bars (the coverage
    /// then lives only in the scope's coverage index).
    pub written: bool,
}

/// How fetched bars meet an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Keep the file's other sessions; the fetched units replace theirs.
    Merge,
    /// Start the file afresh from the fetched bars (`--no-incremental --no-resume`).
    Replace,
}

/// A bar file as read back: its rows and the coverage record it carries (None for files written
/// by older versions or by other tools).
#[derive(Debug, Clone, Default)]
pub struct BarFile {
    /// Rows, in file order.
    pub rows: Vec<StoredBar>,
    /// The file's coverage record, if it has one.
    pub coverage: Option<FileCoverage>,
    /// Format version, tool version, run and requests recorded in the file.
    pub provenance: FileProvenance,
}

impl BarFile {
    /// The coverage to plan with: the record checked against the rows (a session recorded with
    /// bars that has none in the file is forgotten), or, without a record, rebuilt from them.
    pub fn effective_coverage(&self) -> FileCoverage {
        let times = || self.rows.iter().map(|r| (r.bar.ts, Some(r.fetched_at)));
        match &self.coverage {
            None => FileCoverage::from_bar_times(times()),
            Some(c) => {
                let held: std::collections::BTreeSet<NaiveDate> = self
                    .rows
                    .iter()
                    .map(|r| crate::calendar::trading_date(r.bar.ts))
                    .collect();
                let mut c = c.clone();
                let lost: Vec<NaiveDate> = c
                    .sessions()
                    .filter(|(d, cv)| cv.answer == Answer::Bars && !held.contains(*d))
                    .map(|(d, _)| *d)
                    .collect();
                for d in lost {
                    c.forget_session(d);
                }
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::coverage::Unit;
    use crate::store::provenance::Provenance;
    use chrono::TimeZone as _;
    use polars::prelude::*;
    use std::fs::File;

    const T0: i64 = 1_795_444_200;

    fn key() -> SeriesKey {
        SeriesKey {
            symbol: "AAPL".into(),
            con_id: 42,
            expiry: NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
            strike: 200.0,
            right: Right::C,
            bar_size: BarSize::Hours8,
            what: "TRADES".into(),
            local_symbol: "AAPL  261218C00200000".into(),
            trading_class: "AAPL".into(),
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
        }
    }

    /// A bar `t` seconds after 14:30 UTC (09:30 New York) on Monday 2026-11-23.
    fn bar(t: i64, close: f64) -> FetchedBar {
        FetchedBar {
            ts: Utc.timestamp_opt(T0 + t, 0).unwrap(),
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
        // The session fetched again: its answer replaces the stored bars of that session (2000
        // with another close, 3000 new, 1000 no longer served).
        let out = merge_bars(&path, &key(), &[bar(3000, 3.0), bar(2000, 99.0)], now, true).unwrap();
        assert_eq!((out.appended, out.total), (1, 2));
        let rows = read_bars(&path).unwrap().unwrap();
        let closes: Vec<f64> = rows.iter().map(|r| r.bar.close).collect();
        assert_eq!(
            closes,
            vec![99.0, 3.0],
            "the session's answer, sorted by ts"
        );
        let cov = coverage(&path).unwrap().unwrap();
        assert_eq!(cov.last.timestamp(), T0 + 3000);
        // The file carries its coverage: the session of the bars, answered with bars.
        let file = read_file(&path).unwrap().unwrap();
        let c = file.coverage.expect("coverage record");
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(c.session(day).map(|c| c.answer), Some(Answer::Bars));
    }

    /// A file as the seed wrote it: its 17 columns, no format version, no provenance.
    fn write_format_1(path: &Path, rows: &[StoredBar]) {
        let df = crate::store::bar_schema::build_frame(&key(), rows).unwrap();
        let mut df = df
            .drop_many(["session_date", "local_symbol", "trading_class"])
            .drop_many(["multiplier", "exchange", "currency"]);
        assert_eq!(df.width(), 17);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        ParquetWriter::new(File::create(path).unwrap())
            .finish(&mut df)
            .unwrap();
    }

    #[test]
    fn format_1_file_gains_the_new_columns_on_its_next_merge_without_losing_bars() {
        let dir = tempfile::tempdir().unwrap();
        let path = bar_file_path(dir.path(), "t", &key());
        let old_at = Utc.timestamp_opt(1_000_000, 0).unwrap();
        // 2026-11-23 and 2026-11-24, 14:30 UTC (sessions of New York).
        let old: Vec<StoredBar> = [0, 86_400]
            .iter()
            .map(|t| StoredBar {
                bar: bar(*t, 1.0),
                fetched_at: old_at,
            })
            .collect();
        write_format_1(&path, &old);
        assert_eq!(
            read_file(&path).unwrap().unwrap().provenance.format_version,
            1
        );
        let t = Utc.timestamp_opt(1_795_617_000, 0).unwrap(); // 2026-11-25 14:30 UTC
        let prov = Provenance::of_request(
            "run-a",
            t,
            t,
            "1 D".parse().unwrap(),
            BarSize::Hours8,
            "TRADES",
            true,
        );
        let units = vec![Unit::Session(
            crate::calendar::session(NaiveDate::from_ymd_opt(2026, 11, 25).unwrap())
                .unwrap()
                .unwrap(),
        )];
        let out = merge_units(
            &path,
            &key(),
            &[bar(172_800, 5.0)],
            &units,
            WriteMode::Merge,
            None,
            &prov,
        )
        .unwrap();
        assert_eq!((out.appended, out.total), (1, 3), "old bars kept");
        let mut prov2 = prov.clone();
        prov2.run_id = "run-b".into();
        merge_units(
            &path,
            &key(),
            &[bar(172_800, 6.0)],
            &units,
            WriteMode::Merge,
            None,
            &prov2,
        )
        .unwrap();
        let f = read_file(&path).unwrap().unwrap();
        assert_eq!(f.rows.len(), 3);
        assert_eq!(
            f.rows[0].fetched_at, old_at,
            "untouched bars keep their fetch time"
        );
        assert_eq!(
            f.provenance.format_version,
            crate::store::provenance::FORMAT_VERSION
        );
        assert_eq!(f.provenance.run_id.as_deref(), Some("run-b"));
        assert_eq!(f.provenance.requests.len(), 2, "both requests recorded");
        assert_eq!(f.provenance.requests[0].run_id, "run-a");
        assert!(
            f.coverage.is_some(),
            "coverage record kept next to provenance"
        );
        let df = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
        assert_eq!(names, COLUMNS);
        let ls = df.column("local_symbol").unwrap().str().unwrap().get(0);
        assert_eq!(ls, Some("AAPL  261218C00200000"), "filled from the key");
        let sd = df
            .column("session_date")
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap();
        let want =
            crate::store::bar_schema::epoch_days(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(
            sd.i32().unwrap().get(0),
            Some(want),
            "New York trading date"
        );
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
