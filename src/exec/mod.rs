//! The executor: scheduler, pacing governor, retries and resume.

pub mod governor;
pub mod small_bars;

pub use governor::{GovernorConfig, GovernorStats, PacingGovernor, Permit};
