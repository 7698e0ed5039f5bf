//! Parquet writing that every reader handles.
//!
//! polars embeds the Arrow schema of what it writes (`ARROW:schema` in the key-value metadata)
//! at its newest compat level, where strings are `string_view`. pyarrow then reads string
//! columns as `string_view`, and its filters fail on them (`no kernel matching input types
//! (string_view, string)`). The Parquet column types are the same at either level (a string is a
//! `BYTE_ARRAY` with the `String` logical type), so the fix is the embedded schema alone: it is
//! rewritten at the oldest compat level (large utf8) and passed as our own `ARROW:schema` entry,
//! which polars keeps instead of its own.

use polars::io::parquet::write::KeyValueMetadata;
use polars::prelude::*;
use std::io::Write;

/// Write `df` as Parquet to `out` with the key-value pairs `kv` (besides the Arrow schema),
/// `row_group_rows` rows per row group (None: polars' default), zstd, statistics on.
pub fn write_frame<W: Write>(
    out: W,
    df: &mut DataFrame,
    kv: Vec<(String, String)>,
    row_group_rows: Option<usize>,
) -> PolarsResult<u64> {
    let arrow = df.schema().to_arrow(CompatLevel::oldest());
    let schema_kv = polars_parquet::write::schema_to_metadata_key(&arrow);
    let mut pairs = Vec::with_capacity(kv.len() + 1);
    if let Some(v) = schema_kv.value {
        pairs.push((schema_kv.key, v));
    }
    pairs.extend(kv);
    // polars' writer issues a write call per page header, statistic and footer field (some
    // 4,000 per 8-hour-bar file: in the weekend benchmark, most of the executor's CPU went to
    // those system calls). Buffered, a file is a few calls.
    let mut buf = std::io::BufWriter::with_capacity(64 * 1024, out);
    let size = ParquetWriter::new(&mut buf)
        .with_row_group_size(row_group_rows)
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(pairs)))
        .finish(df)?;
    buf.flush()?;
    Ok(size)
}
