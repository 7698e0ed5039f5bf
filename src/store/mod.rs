//! Parquet bar files and summary JSONL.

pub mod parquet;
