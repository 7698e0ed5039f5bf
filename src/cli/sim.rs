//! `opt-backfill sim`: the simulated gateway as a standalone server. The command is the
//! simulator crate's own CLI (also its `tws-sim` binary), so both stay the same program.

pub use crate::sim::cli::{run, SimArgs};
