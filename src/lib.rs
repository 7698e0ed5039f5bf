//! opt-backfill: backfill historical option bars from Interactive Brokers, resumably and within
//! IB's pacing rules. The binary in `src/main.rs` is a thin shell over these modules.

pub mod cache;
pub mod cli;
pub mod compile;
pub mod discover;
pub mod exec;
pub mod ib;
pub mod inputs;
pub mod lake;
pub mod logging;
pub mod memory;
pub mod par;
pub mod plan;
pub mod progress;
pub mod report;
pub mod schemas;
pub mod store;
pub mod verify;

// IB's vocabulary and the simulated gateway live in their own crates (`crates/ib-model`,
// `crates/tws-sim`); re-exported at their old paths so `opt_backfill::calendar`,
// `opt_backfill::sim`, ... keep meaning what they did.
pub use ib_model::{bars, calendar, hours};
pub use tws_sim as sim;

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
    /// `plan --diff OLD --exit-code-on-diff`: the new manifest differs from the old one.
    pub const DIFF_NOT_EMPTY: i32 = 5;
    /// Interrupted by Ctrl-C (128 + SIGINT). A run stopped by SIGTERM exits 143 (128 + 15) and
    /// by SIGHUP 129 (128 + 1), after the same graceful stop; the same command resumes it.
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM (128 + 15), gracefully.
    pub const TERMINATED: i32 = 143;
    /// Stopped by SIGHUP (128 + 1), gracefully.
    pub const HANGUP: i32 = 129;
}
