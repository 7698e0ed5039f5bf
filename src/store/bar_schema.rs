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

/// One column of the bar file format, as documented in `schemas/bar_file.schema.json` and the
/// README.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// Name.
    pub name: &'static str,
    /// Arrow type as pyarrow prints it.
    pub arrow: &'static str,
    /// Format version that introduced it.
    pub since: u32,
    /// Meaning.
    pub doc: &'static str,
}

const fn col(name: &'static str, arrow: &'static str, since: u32, doc: &'static str) -> ColumnSpec {
    ColumnSpec {
        name,
        arrow,
        since,
        doc,
    }
}

const UTC_MS: &str = "timestamp[ms, tz=UTC]";
const STR: &str = "large_string";

/// The columns of [`COLUMNS`] with their types and meaning.
pub const SPECS: &[ColumnSpec] = &[
    col("ts", UTC_MS, 1, "Bar start (key)."),
    col(
        "ts_ny",
        "timestamp[ms, tz=America/New_York]",
        1,
        "Bar start tagged New York (the zone is Arrow metadata: DuckDB shows it as ts).",
    ),
    col("open", "double", 1, "Open."),
    col("high", "double", 1, "High."),
    col("low", "double", 1, "Low."),
    col("close", "double", 1, "Close."),
    col("volume", "double", 1, "Volume (contracts)."),
    col("wap", "double", 1, "Volume-weighted average price."),
    col(
        "bar_count",
        "int32",
        1,
        "Trades in the bar (-1: not reported).",
    ),
    col("conid", "int64", 1, "Option conId (key)."),
    col("symbol", STR, 1, "Underlying symbol."),
    col("expiry", "date32[day]", 1, "Last trade date."),
    col("strike", "double", 1, "Strike."),
    col("right", STR, 1, "C or P."),
    col("bar_size", STR, 1, "IB bar size, e.g. `8 hours` (key)."),
    col(
        "what_to_show",
        STR,
        1,
        "TRADES, MIDPOINT, BID, ASK, ... (key).",
    ),
    col("fetched_at", UTC_MS, 1, "When the bar was received."),
    col(
        "session_date",
        "date32[day]",
        2,
        "New York trading date of the bar.",
    ),
    col("local_symbol", STR, 2, "IB local symbol."),
    col("trading_class", STR, 2, "Trading class (SPX vs SPXW)."),
    col("multiplier", "double", 2, "Contract multiplier."),
    col("exchange", STR, 2, "Exchange the requests went to (SMART)."),
    col("currency", STR, 2, "Currency."),
];

/// The JSON description shipped as `schemas/bar_file.schema.json`.
pub fn description() -> serde_json::Value {
    use super::provenance as p;
    let columns: Vec<serde_json::Value> = SPECS
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "arrow_type": c.arrow, "since_version": c.since, "description": c.doc}))
        .collect();
    serde_json::json!({
        "title": "opt-backfill bar file",
        "description": "One Parquet file per contract, bar size and what-to-show, one row per bar sorted by ts. Key: ts, conid, bar_size, what_to_show. Columns are only appended between versions.",
        "format_version": p::FORMAT_VERSION,
        "columns": columns,
        "key_value_metadata": {
            p::FORMAT_KEY: "Format version (absent: 1).",
            p::TOOL_VERSION_KEY: "Version of opt-backfill that last wrote the file.",
            p::RUN_ID_KEY: "Run that last wrote the file.",
            p::REQUESTS_KEY: format!("JSON array of the last {} requests merged into the file, oldest first: {{end, duration, bar_size, what, use_rth, fetched_at, run_id}}.", p::MAX_REQUESTS),
            super::coverage::COVERAGE_KEY: "Coverage record: what the gateway answered per session (bars, empty, provisional).",
            "ARROW:schema": "Arrow schema at the oldest compat level (strings are large_string).",
        },
    })
}

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
        .map(|r| epoch_days(crate::calendar::trading_date(r.bar.ts)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_follow_columns() {
        let names: Vec<&str> = SPECS.iter().map(|c| c.name).collect();
        assert_eq!(names, COLUMNS);
    }
}
