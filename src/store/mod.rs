//! Parquet bar files and summary JSONL.
