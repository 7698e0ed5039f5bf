//! The columns of a bar file (format [`FORMAT_VERSION`]) and the frame that holds them.
//!
//! Types are the ones every reader handles: strings are utf8 (large utf8 in the embedded Arrow
//! schema, see [`super::parquet_compat`]), instants are milliseconds tagged UTC, dates are
//! date32. Columns are only ever appended, so a reader selecting by name or by position of the
//! seed's columns keeps working.
//!
//! [`FORMAT_VERSION`]: super::provenance::FORMAT_VERSION

use super::parquet::{SeriesKey, StoredBar};
use chrono::NaiveDate;
use polars::prelude::*;

/// Columns of a bar file, in order. `ts` and `fetched_at` are UTC (milliseconds); `ts_ny` is the
/// same instant tagged America/New_York (a zone only Arrow readers see; DuckDB shows it as
/// `ts`); `session_date` is the New York trading date of the bar. Format 2 appended the six
/// columns from `session_date` on.
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
    "session_date",
    "local_symbol",
    "trading_class",
    "multiplier",
    "exchange",
    "currency",
];

/// Days since 1970-01-01 (Arrow's date32).
pub fn epoch_days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as i32
}

fn f64_col(name: &str, rows: &[StoredBar], f: impl Fn(&StoredBar) -> f64) -> Column {
    Series::new(name.into(), rows.iter().map(f).collect::<Vec<_>>()).into()
}

fn const_str(name: &str, value: &str, n: usize) -> Column {
    Series::new(name.into(), vec![value; n]).into()
}

/// The frame of a bar file: `rows` (sorted by `ts`) of the series `key`, columns as [`COLUMNS`].
pub fn build_frame(key: &SeriesKey, rows: &[StoredBar]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let utc = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    let ny = DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::from_chrono(&chrono_tz::America::New_York)),
    );
    let ts: Vec<i64> = rows.iter().map(|r| r.bar.ts.timestamp_millis()).collect();
    let fetched: Vec<i64> = rows
        .iter()
        .map(|r| r.fetched_at.timestamp_millis())
        .collect();
    let sessions: Vec<i32> = rows
        .iter()
        .map(|r| epoch_days(crate::calendar::to_ny(r.bar.ts).date_naive()))
        .collect();
    let cols: Vec<Column> = vec![
        Series::new("ts".into(), ts.clone()).cast(&utc)?.into(),
        Series::new("ts_ny".into(), ts).cast(&ny)?.into(),
        f64_col("open", rows, |r| r.bar.open),
        f64_col("high", rows, |r| r.bar.high),
        f64_col("low", rows, |r| r.bar.low),
        f64_col("close", rows, |r| r.bar.close),
        f64_col("volume", rows, |r| r.bar.volume),
        f64_col("wap", rows, |r| r.bar.wap),
        Series::new(
            "bar_count".into(),
            rows.iter().map(|r| r.bar.count).collect::<Vec<_>>(),
        )
        .into(),
        Series::new("conid".into(), vec![key.con_id; n]).into(),
        const_str("symbol", &key.symbol, n),
        Series::new("expiry".into(), vec![epoch_days(key.expiry); n])
            .cast(&DataType::Date)?
            .into(),
        Series::new("strike".into(), vec![key.strike; n]).into(),
        const_str("right", key.right.as_str(), n),
        const_str("bar_size", key.bar_size.as_str(), n),
        const_str("what_to_show", &key.what, n),
        Series::new("fetched_at".into(), fetched).cast(&utc)?.into(),
        Series::new("session_date".into(), sessions)
            .cast(&DataType::Date)?
            .into(),
        const_str("local_symbol", &key.local_symbol, n),
        const_str("trading_class", &key.trading_class, n),
        Series::new("multiplier".into(), vec![key.multiplier; n]).into(),
        const_str("exchange", &key.exchange, n),
        const_str("currency", &key.currency, n),
    ];
    DataFrame::new(n, cols)
}
