//! Command-line interface: one file per subcommand, each with its clap `Args` and a `run`.

use clap::{Parser, Subcommand};

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "opt-backfill",
    version,
    about = "Backfill historical option bars from Interactive Brokers"
)]
pub struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulated IB Gateway as a standalone TCP server.
    Sim(sim::SimArgs),
    /// Validate and compile a plan: print the requests it will send, compare with an earlier
    /// manifest, write the manifest.
    Plan(plan::PlanArgs),
}

pub mod plan;
pub mod sim;

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Plan(args) => plan::run(args),
    }
}
