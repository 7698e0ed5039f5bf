//! The simulated IB Gateway: a TCP server speaking the TWS API protobuf protocol (`ibapi`) and
//! the older text protocol (`ib_insync`, `ib_async`), with a deterministic synthetic option
//! market and IB's pacing rules, errors and faults.
//!
//! No IB Gateway can be reached from the development and CI machines, so every part of the
//! project that talks to IB is tested against this server, driven by the real `ibapi` client
//! (and the team's Python code by `ib_insync`). Modules: [`codec`]/[`pbcodec`]/[`proto`]/
//! [`textcodec`] (wire), [`market`] with [`universe`], [`chain`],
//! [`pricing`] and [`window`] (the synthetic market), [`scenario`] (settings and presets),
//! [`server`], [`conn`] and the [`shared`] state they both use (TCP), [`cli`] (the standalone
//! server), [`hmds`] (service model, pacing), [`faults`], [`counters`],
//! [`lookup`] (contract qualification).

pub mod chain;
pub mod cli;
pub mod codec;
pub mod conn;
pub mod counters;
pub mod faults;
pub mod hmds;
pub mod hours;
pub mod lookup;
pub mod market;
pub mod pbcodec;
pub mod pricing;
pub mod proto;
pub mod scenario;
pub mod server;
pub mod shared;
pub mod textcodec;
pub mod universe;
pub mod window;

pub use chain::{SimChain, SimContract};
pub use counters::CountersSnapshot;
pub use market::{Market, SimBar};
pub use scenario::{Scenario, SimClock};
pub use server::{start, SimHandle};
pub use shared::HistRequestRecord;
pub use universe::SimUnderlying;
pub use window::HmdsError;
