//! Parquet bar files and summary JSONL.

pub mod atomic;
pub mod parquet;
pub mod summary;
