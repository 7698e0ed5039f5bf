//! Parquet bar files, their coverage, and summary JSONL.

pub mod atomic;
pub mod coverage;
pub mod coverage_index;
pub mod parquet;
pub mod summary;
