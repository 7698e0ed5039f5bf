//! opt-backfill: backfill historical option bars from Interactive Brokers, resumably and within
//! IB's pacing rules. The binary in `src/main.rs` is a thin shell over these modules.

pub mod bars;
pub mod cache;
pub mod calendar;
pub mod cli;
pub mod compile;
pub mod discover;
pub mod exec;
pub mod ib;
pub mod lake;
pub mod plan;
pub mod report;
pub mod sim;
pub mod store;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A run finished but some tasks ended in an error class.
    pub const TASK_ERRORS: i32 = 1;
    /// Bad plan, manifest, cache or command-line input (nothing was run).
    pub const BAD_INPUT: i32 = 2;
    /// The gateway could not be reached or the handshake failed.
    pub const GATEWAY: i32 = 3;
    /// Another executor holds the lock for this scope and batch.
    pub const LOCKED: i32 = 4;
    /// Interrupted by Ctrl-C (128 + SIGINT).
    pub const INTERRUPTED: i32 = 130;
}
