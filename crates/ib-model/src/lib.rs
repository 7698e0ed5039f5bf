//! Interactive Brokers' vocabulary, written once for both sides of the wire: the backfill tool
//! (`opt-backfill`, which plans and sends requests) and the simulated gateway (`tws-sim`, which
//! answers them the way IB does). Both must agree on what a bar size or duration means, which
//! days have a session and when an option class stops trading, so neither owns it.
//!
//! Modules: [`bars`] (bar sizes, durations, per-request limits), [`calendar`] (NYSE sessions
//! 2000-2035), [`hours`] (class closes and IB's trading-hours strings), [`contract`] (option
//! right, underlying security type), [`what`] (what-to-show).

pub mod bars;
pub mod calendar;
pub mod contract;
pub mod hours;
pub mod what;

pub use bars::WhatToShow;
pub use contract::{Right, UnderlyingSecType};
