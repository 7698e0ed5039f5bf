//! The executor: scheduler, pacing governor, retries and resume.

pub mod closes;
pub mod delivery;
pub mod empty_end;
pub mod governor;
pub mod incremental;
pub mod reconnect;
pub mod report;
pub mod run;
pub mod safety;
pub mod small_bars;
pub mod timeline;

pub use governor::{GovernorConfig, GovernorStats, PacingGovernor, Permit};
pub use report::{ConsoleReporter, QuietReporter, Reporter, RunStats};
pub use run::{execute, filter_resumed, lock_scope, ExecConfig, ExecError, RunReport};
