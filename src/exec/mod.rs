//! The executor: scheduler, pacing governor, retries and resume.

pub mod closes;
pub mod delivery;
pub mod empty_end;
pub mod governor;
pub mod incremental;
pub mod lock;
pub mod prepare;
mod queue;
pub mod reconnect;
pub mod report;
pub mod resume;
pub mod run;
pub mod safety;
mod send;
pub mod small_bars;
mod task;
pub mod timeline;

pub use governor::{GovernorConfig, GovernorStats, PacingGovernor, Permit};
pub use lock::{lock_scope, RunLock};
pub use report::{ConsoleReporter, QuietReporter, Reporter, RunStats};
pub use resume::{filter_resumed, Resumed};
pub use run::{execute, ExecConfig, ExecError, RunReport};
