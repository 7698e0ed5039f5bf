//! The simulated gateway driven by the real `ibapi` 5.5.0 async client (and, in [`python`], by
//! real `ib_insync` over the text protocol).

mod bench;
mod faults;
mod fuzz;
mod history;
mod limits;
mod protocol;
mod python;
mod service;
mod support;
