//! Plan + contracts caches -> validated task graph -> manifest, dry-run table and diff.

pub mod task;
