use clap::Parser;

fn main() {
    let cli = opt_backfill::cli::Cli::parse();
    std::process::exit(opt_backfill::cli::run(cli));
}
