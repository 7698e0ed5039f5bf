//! pyarrow (with a filter on a string column), DuckDB and polars read every column of a bar file
//! written by `execute`, with the documented types.

use super::*;
use opt_backfill::store::bar_schema::COLUMNS;
use serde_json::{json, Value};

/// Column types per reader, as each prints them.
fn expected(reader: &str, column: &str) -> &'static str {
    let kind = match column {
        "ts" | "fetched_at" => "utc",
        "ts_ny" => "ny",
        "expiry" | "session_date" => "date",
        "conid" => "i64",
        "bar_count" => "i32",
        "open" | "high" | "low" | "close" | "volume" | "wap" | "strike" | "multiplier" => "f64",
        _ => "str",
    };
    match (reader, kind) {
        ("pyarrow", "utc") => "timestamp[ms, tz=UTC]",
        ("pyarrow", "ny") => "timestamp[ms, tz=America/New_York]",
        ("pyarrow", "date") => "date32[day]",
        ("pyarrow", "i64") => "int64",
        ("pyarrow", "i32") => "int32",
        ("pyarrow", "f64") => "double",
        ("pyarrow", "str") => "large_string",
        ("duckdb", "utc" | "ny") => "TIMESTAMP WITH TIME ZONE",
        ("duckdb", "date") => "DATE",
        ("duckdb", "i64") => "BIGINT",
        ("duckdb", "i32") => "INTEGER",
        ("duckdb", "f64") => "DOUBLE",
        ("duckdb", "str") => "VARCHAR",
        ("polars", "utc") => "Datetime(time_unit='ms', time_zone='UTC')",
        ("polars", "ny") => "Datetime(time_unit='ms', time_zone='America/New_York')",
        ("polars", "date") => "Date",
        ("polars", "i64") => "Int64",
        ("polars", "i32") => "Int32",
        ("polars", "f64") => "Float64",
        ("polars", "str") => "String",
        _ => unreachable!(),
    }
}

/// Run tests/python/lake_readers.py on `file`, filtering `column = value`.
pub fn read_with_python(py: &Path, file: &Path, column: &str, value: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/lake_readers.py");
    let spec = json!({"file": file, "column": column, "value": value});
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(spec.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lake_readers.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_duckdb_and_polars_read_every_column_with_its_type() {
    let Some(py) = python_readers() else { return };
    let lake = lake(1).await;
    let file = bar_files(&lake.scope)
        .into_iter()
        .next()
        .expect("a bar file");
    let bars = opt_backfill::store::parquet::read_bars(&file)
        .unwrap()
        .unwrap();
    let symbol = file
        .strip_prefix(&lake.scope)
        .unwrap()
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let r = read_with_python(&py, &file, "symbol", &symbol);
    for reader in ["pyarrow", "duckdb", "polars"] {
        let got = &r[reader];
        assert!(got.get("error").is_none(), "{reader}: {got}");
        let names: Vec<&str> = got["types"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want: Vec<&str> = COLUMNS.to_vec();
        let mut sorted = names.clone();
        sorted.sort();
        want.sort();
        assert_eq!(sorted, want, "{reader}: every column");
        for c in COLUMNS {
            assert_eq!(got["types"][c], expected(reader, c), "{reader}: `{c}`");
        }
        assert_eq!(got["rows"], bars.len(), "{reader}: rows");
        assert_eq!(got["filtered"], bars.len(), "{reader}: symbol = {symbol}");
    }
    let keys = r["pyarrow"]["metadata_keys"].to_string();
    for k in [
        "opt_backfill.coverage",
        "opt_backfill.format_version",
        "opt_backfill.requests",
    ] {
        assert!(keys.contains(k), "{k} in {keys}");
    }
    // A filter that matches nothing is a filter, not a no-op.
    let none = read_with_python(&py, &file, "trading_class", "NO-SUCH-CLASS");
    assert_eq!(none["pyarrow"]["filtered"], 0, "{none}");
    assert_eq!(none["duckdb"]["filtered"], 0, "{none}");
}
