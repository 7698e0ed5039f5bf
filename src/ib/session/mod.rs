//! The gateway session as both `discover` and `execute` use it: the pacing governor (in-flight
//! limit by delivery rate, IB's hard pacing rules), the small-bar rules, the message pacer, and
//! connecting and reconnecting, and the one retry policy
//! ([`retry::RetryPolicy`]) every retried step waits by.
//!
//! Why here, under `ib`: discovery and the executor are siblings that both talk to one gateway
//! under the same rules; neither should reach into the other for them.

pub mod budget;
pub mod delivery;
pub mod governor;
pub mod pacer;
pub mod reconnect;
pub mod retry;
pub mod small_bars;
