//! Parquet bar files and summary JSONL.

pub mod parquet;
pub mod summary;
