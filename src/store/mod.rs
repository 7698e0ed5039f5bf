//! Parquet bar files, their coverage, and summary JSONL.

pub mod atomic;
pub mod bar_schema;
pub mod coverage;
pub mod coverage_index;
pub mod coverage_snapshot;
pub mod coverage_writer;
pub mod parquet;
pub mod parquet_compat;
pub mod provenance;
pub mod summary;
