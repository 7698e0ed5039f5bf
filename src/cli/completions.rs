//! `opt-backfill completions SHELL` and `opt-backfill man`: shell completions and a man page,
//! generated from the same clap definitions as the command line itself, so they never drift.

use clap::CommandFactory;

/// Arguments of `opt-backfill completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the completion script on stdout.
pub fn run(args: CompletionsArgs) -> i32 {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "opt-backfill", &mut out);
    print_all(&out)
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_all(bytes: &[u8]) -> i32 {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: {e}");
            crate::exit::TASK_ERRORS
        }
        _ => crate::exit::OK,
    }
}

/// Print the man page (roff) on stdout.
pub fn run_man() -> i32 {
    let cmd = super::Cli::command();
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("error: cannot render the man page: {e}");
        return crate::exit::TASK_ERRORS;
    }
    print_all(&out)
}
