//! `opt-backfill sim`: the simulated gateway as a standalone server.

/// Arguments of `opt-backfill sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4002")]
    pub listen: String,
}

/// Run the simulator until Ctrl-C.
pub fn run(_args: SimArgs) -> i32 {
    eprintln!("not yet implemented");
    crate::exit::BAD_INPUT
}
