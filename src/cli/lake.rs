//! `opt-backfill lake index|export`: derived views of a scope's bar files for analysis.

use crate::lake::{export, index, LakeError, Scope};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `opt-backfill lake`.
#[derive(Debug, clap::Args)]
pub struct LakeArgs {
    /// What to build.
    #[command(subcommand)]
    pub command: LakeCommand,
}

/// `lake` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LakeCommand {
    /// Write `_index.parquet` at the scope root: one row per bar file (path, contract, bar size,
    /// rows, first/last bar, coverage). Re-reads only files changed since the last index.
    Index {
        /// The scope directory, `<output root>/raw/ib/historical_bars_<scope>`.
        scope_dir: PathBuf,
    },
    /// Write the scope as a Hive-partitioned dataset
    /// (`bar_size=/what_to_show=/symbol=/part-0.parquet`), rewriting only partitions whose
    /// source files changed since the last export to the same directory.
    Export {
        /// The scope directory, `<output root>/raw/ib/historical_bars_<scope>`.
        scope_dir: PathBuf,
        /// Dataset directory.
        #[arg(long)]
        to: PathBuf,
    },
}

fn fail(e: LakeError) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}

/// Run `lake`.
pub fn run(args: LakeArgs) -> i32 {
    let started = Instant::now();
    match args.command {
        LakeCommand::Index { scope_dir } => {
            let scope = match Scope::open(&scope_dir) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            match index::refresh(&scope, None) {
                Ok(s) => {
                    println!(
                        "{}: {} files ({} read, {} removed, {} unreadable), {} bars, {:.1} s",
                        index::index_path(&scope.dir).display(),
                        s.files,
                        s.read,
                        s.removed,
                        s.unreadable,
                        s.bars,
                        started.elapsed().as_secs_f64()
                    );
                    if s.unreadable > 0 {
                        crate::exit::TASK_ERRORS
                    } else {
                        crate::exit::OK
                    }
                }
                Err(e) => fail(e),
            }
        }
        LakeCommand::Export { scope_dir, to } => {
            let scope = match Scope::open(&scope_dir) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let mut files_done = 0usize;
            let mut progress = |p: &export::Progress| {
                files_done += p.files;
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let what = if p.written {
                    format!("{} files, {} bars", p.files, p.bars)
                } else {
                    "up to date".to_string()
                };
                eprintln!(
                    "[{}/{}] {}: {what} ({:.0} files/s)",
                    p.done,
                    p.total,
                    p.partition,
                    files_done as f64 / secs
                );
            };
            match export::export(&scope, &to, &mut progress) {
                Ok(s) => {
                    let secs = started.elapsed().as_secs_f64();
                    println!(
                        "{}: {} partitions ({} written, {} up to date, {} removed), {} files read, \
                         {} bars written, {:.1} s ({:.0} files/s)",
                        to.display(),
                        s.partitions,
                        s.written,
                        s.skipped,
                        s.removed,
                        s.files_read,
                        s.bars_written,
                        secs,
                        s.files_read as f64 / secs.max(1e-9)
                    );
                    crate::exit::OK
                }
                Err(e) => fail(e),
            }
        }
    }
}
