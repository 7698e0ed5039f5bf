//! The simulated gateway driven by the real `ibapi` 5.5.0 async client.

mod bench;
mod faults;
mod fuzz;
mod history;
mod limits;
mod protocol;
mod service;
mod support;
