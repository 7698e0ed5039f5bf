//! An index row from a bar file's footer alone: row count, the column statistics of `ts` and
//! of the contract identity columns, and the coverage record, without decoding a page.
//!
//! Why: `execute` refreshes the index for every file it touched, which at a weekend's scale is
//! hundreds of thousands of files; decoding every column of each (a zstd context per column
//! chunk) took most of that time. Every current-format file is one contract, bar size and
//! what-to-show, so its identity columns are constant and their min equals their max. Where the
//! footer cannot prove a value (an older format, no rows, statistics missing, truncated or
//! differing between min and max) the caller reads the file instead: the footer never guesses.

use super::index::IndexRow;
use super::{pq_err, LakeError};
use crate::store::coverage::{Answer, FileCoverage, COVERAGE_KEY};
use crate::store::coverage_index::Fingerprint;
use crate::store::provenance::{FileProvenance, FORMAT_VERSION};
use polars::prelude::*;
use polars_parquet::parquet::metadata::FileMetadata;
use polars_parquet::parquet::schema::types::{PrimitiveLogicalType, TimeUnit as PqTimeUnit};
use polars_parquet::parquet::statistics::Statistics;
use std::path::Path;

/// The row of the bar file at `path` (`rel` under its scope) from its footer, or `Ok(None)` when
/// the footer does not say enough (the caller then reads the columns).
pub fn index_row(path: &Path, rel: &str, fp: Fingerprint) -> Result<Option<IndexRow>, LakeError> {
    let file = std::fs::File::open(path).map_err(super::io_err(path))?;
    let mut reader = ParquetReader::new(file);
    let meta = reader.get_metadata().map_err(|e| pq_err(path, e))?.clone();
    Ok(row_of(&meta, rel, fp))
}

fn row_of(meta: &FileMetadata, rel: &str, fp: Fingerprint) -> Option<IndexRow> {
    let kv = meta.key_value_metadata().as_deref().unwrap_or_default();
    let pairs = || {
        kv.iter()
            .filter_map(|k| k.value.as_deref().map(|v| (k.key.as_str(), v)))
    };
    let format_version = FileProvenance::from_pairs(pairs()).format_version;
    if format_version != FORMAT_VERSION || meta.num_rows == 0 {
        return None;
    }
    let coverage = pairs()
        .find(|(k, _)| *k == COVERAGE_KEY)
        .and_then(|(_, v)| FileCoverage::decode(v).ok());
    let stats = ColumnStats { meta };
    let text = |name: &str| stats.constant_text(name);
    let (first_ts, last_ts) = stats.timestamp_ms_range("ts")?;
    let count = |a: Answer| {
        coverage
            .as_ref()
            .map(|c| c.sessions().filter(|(_, cv)| cv.answer == a).count() as u32)
    };
    Some(IndexRow {
        path: rel.to_string(),
        symbol: text("symbol")?,
        conid: stats.constant_i64("conid")?,
        local_symbol: Some(text("local_symbol")?),
        trading_class: Some(text("trading_class")?),
        expiry: Some(stats.constant_date("expiry")?),
        strike: Some(stats.constant_f64("strike")?),
        right: Some(text("right")?),
        bar_size: text("bar_size")?,
        what_to_show: text("what_to_show")?,
        rows: meta.num_rows as u64,
        first_ts: Some(first_ts),
        last_ts: Some(last_ts),
        sessions_with_bars: count(Answer::Bars),
        sessions_empty: count(Answer::Empty),
        format_version,
        file_bytes: fp.len,
        file_mtime_ns: fp.mtime_ns as i64,
    })
}

/// The statistics of one root column over all row groups.
struct ColumnStats<'m> {
    meta: &'m FileMetadata,
}

impl ColumnStats<'_> {
    /// Every row group's statistics of `name`, or None when one is missing or has nulls.
    fn all(&self, name: &str) -> Option<Vec<Statistics>> {
        let mut out = Vec::with_capacity(self.meta.row_groups.len());
        for rg in &self.meta.row_groups {
            let mut cols = rg.columns_under_root_iter(name)?;
            let col = cols.next()?;
            if cols.next().is_some() {
                return None;
            }
            let st = col.statistics(&self.meta.footer_buf)?.ok()?;
            out.push(st);
        }
        (!out.is_empty()).then_some(out)
    }

    fn constant_text(&self, name: &str) -> Option<String> {
        let mut value: Option<&[u8]> = None;
        let all = self.all(name)?;
        for st in &all {
            let Statistics::Binary(b) = st else {
                return None;
            };
            if b.null_count != Some(0) {
                return None;
            }
            let (min, max) = (b.min_value.as_deref()?, b.max_value.as_deref()?);
            if min != max || value.is_some_and(|v| v != min) {
                return None;
            }
            value = Some(min);
        }
        String::from_utf8(value?.to_vec()).ok()
    }

    fn i64_range(&self, name: &str) -> Option<(i64, i64)> {
        let mut range: Option<(i64, i64)> = None;
        for st in self.all(name)? {
            let Statistics::Int64(p) = st else {
                return None;
            };
            if p.null_count != Some(0) {
                return None;
            }
            let (lo, hi) = (p.min_value?, p.max_value?);
            range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        range
    }

    /// The range of a timestamp column stored in milliseconds (the index's unit).
    fn timestamp_ms_range(&self, name: &str) -> Option<(i64, i64)> {
        let ms = self.all(name)?.iter().all(|st| {
            matches!(st, Statistics::Int64(p) if matches!(
                p.primitive_type.logical_type,
                Some(PrimitiveLogicalType::Timestamp { unit: PqTimeUnit::Milliseconds, .. })
            ))
        });
        ms.then(|| self.i64_range(name)).flatten()
    }

    fn constant_i64(&self, name: &str) -> Option<i64> {
        let (lo, hi) = self.i64_range(name)?;
        (lo == hi).then_some(lo)
    }

    fn constant_date(&self, name: &str) -> Option<i32> {
        let mut value = None;
        for st in self.all(name)? {
            let Statistics::Int32(p) = st else {
                return None;
            };
            if p.primitive_type.logical_type != Some(PrimitiveLogicalType::Date) {
                return None;
            }
            let (lo, hi) = (p.min_value?, p.max_value?);
            if p.null_count != Some(0) || lo != hi || value.is_some_and(|v| v != lo) {
                return None;
            }
            value = Some(lo);
        }
        value
    }

    fn constant_f64(&self, name: &str) -> Option<f64> {
        let mut value: Option<f64> = None;
        for st in self.all(name)? {
            let Statistics::Double(p) = st else {
                return None;
            };
            let (lo, hi) = (p.min_value?, p.max_value?);
            if p.null_count != Some(0) || lo != hi || value.is_some_and(|v| v != lo) {
                return None;
            }
            value = Some(lo);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::super::index::read_row;
    use super::*;
    use crate::bars::BarSize;
    use crate::cache::Right;
    use crate::ib::FetchedBar;
    use crate::store::coverage_index::fingerprint;
    use crate::store::parquet::{bar_file_path, merge_bars, SeriesKey};
    use chrono::{NaiveDate, TimeZone as _, Utc};

    fn key() -> SeriesKey {
        SeriesKey {
            symbol: "SPX".into(),
            con_id: 4242,
            expiry: NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
            strike: 6000.0,
            right: Right::P,
            bar_size: BarSize::Hours8,
            what: "TRADES".into(),
            local_symbol: "SPXW  261218P06000000".into(),
            trading_class: "SPXW".into(),
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
        }
    }

    fn bar(ts: i64) -> FetchedBar {
        FetchedBar {
            ts: Utc.timestamp_opt(ts, 0).unwrap(),
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10.0,
            wap: 1.2,
            count: 3,
        }
    }

    #[test]
    fn a_current_file_is_indexed_from_its_footer_as_from_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = bar_file_path(dir.path(), "t", &key());
        // 09:30 New York on Monday and Tuesday 23-24 November 2026.
        let bars = [bar(1_795_444_200), bar(1_795_530_600)];
        merge_bars(&path, &key(), &bars, Utc::now(), true).unwrap();
        let fp = fingerprint(&path).unwrap().unwrap();
        let rel = "SPX/4242/TRADES/8_hours.parquet";
        let from_footer = index_row(&path, rel, fp).unwrap().expect("footer suffices");
        let from_columns = read_row(&path, rel, fp).unwrap().unwrap();
        assert_eq!(from_footer, from_columns);
        assert_eq!(from_footer.rows, 2);
        assert_eq!(from_footer.first_ts, Some(1_795_444_200_000));
        assert_eq!(from_footer.last_ts, Some(1_795_530_600_000));
        assert_eq!(from_footer.sessions_with_bars, Some(2));
    }

    #[test]
    fn a_file_without_the_current_format_key_is_left_to_the_column_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.parquet");
        let mut df = polars::df!("ts" => [1i64], "symbol" => ["SPX"]).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let fp = fingerprint(&path).unwrap().unwrap();
        assert_eq!(index_row(&path, "plain.parquet", fp).unwrap(), None);
    }
}
