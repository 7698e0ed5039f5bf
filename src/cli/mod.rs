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
    /// Logging options (global: accepted before or after the subcommand).
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
    /// Subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulated IB Gateway as a standalone TCP server.
    Sim(sim::SimArgs),
    /// The whole job in one command against an in-process simulated gateway.
    Demo(demo::DemoArgs),
    /// Validate and compile a plan: print the requests it will send, compare with an earlier
    /// manifest, write the manifest.
    Plan(plan::PlanArgs),
    /// Run a plan or manifest against the gateway: resumable, paced, incremental.
    Execute(execute::ExecuteArgs),
    /// Build per-symbol contracts caches from the gateway.
    Discover(discover::DiscoverArgs),
    /// Per phase and bar size: OK, EMPTY, errors by class, bars, rates, error codes.
    Report(report::ReportArgs),
    /// Write the universe of failed tasks as CSV, to feed back with `execute --rerun`.
    Rerun(report::RerunArgs),
    /// Audit a scope's lake against its plan: sessions covered, empty, provisional, missing.
    Verify(verify::VerifyArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) on stdout: `opt-backfill man > opt-backfill.1`.
    Man,
    /// Index or export a scope's bar files for analysis.
    Lake(lake::LakeArgs),
}

pub mod common;
pub mod completions;
pub mod demo;
pub mod discover;
pub mod execute;
pub mod lake;
pub mod plan;
pub mod report;
pub mod sim;
pub mod verify;

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    crate::logging::init(&cli.log);
    crate::progress::set_quiet(cli.log.quiet > 0);
    match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Execute(args) => execute::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Report(args) => report::run_report(args),
        Command::Rerun(args) => report::run_rerun(args),
        Command::Verify(args) => verify::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man => completions::run_man(),
        Command::Lake(args) => lake::run(args),
    }
}
