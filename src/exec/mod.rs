//! The executor: preparation, scheduler, one task's path, retries and resume. The gateway
//! session it runs on (governor, reconnect, small-bar rules) is `ib::session`, shared with
//! discovery and re-exported here at its former paths.

pub mod closes;
pub mod empty_end;
pub mod incremental;
pub mod lock;
pub mod prepare;
mod queue;
pub mod report;
pub mod resume;
pub mod run;
pub mod safety;
mod send;
mod shared;
mod task;
pub mod timeline;

pub use crate::ib::session::{delivery, governor, reconnect, retry, small_bars};
pub use governor::{GovernorConfig, GovernorStats, PacingGovernor, Permit};
pub use lock::{lock_scope, RunLock};
pub use report::{ConsoleReporter, QuietReporter, Reporter, RunStats};
pub use resume::{filter_resumed, Resumed};
pub use run::{execute, ExecConfig, ExecError, RunReport};
