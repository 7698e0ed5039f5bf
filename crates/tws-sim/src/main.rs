//! `tws-sim`: a simulated IB Gateway on a TCP port, for testing any TWS API client without an
//! IB account. Prints the bound address, serves until Ctrl-C, then prints its counters as JSON.

use clap::Parser;

/// A simulated IB Gateway (TWS API: protobuf for `ibapi`, the text protocol for
/// `ib_insync`/`ib_async`) with a deterministic synthetic option market and IB's pacing rules.
#[derive(Debug, Parser)]
#[command(name = "tws-sim", version)]
struct Cli {
    #[command(flatten)]
    args: tws_sim::cli::SimArgs,
}

fn main() {
    let cli = Cli::parse();
    std::process::exit(tws_sim::cli::run(cli.args));
}
