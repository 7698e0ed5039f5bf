//! Logging: one `tracing` subscriber for the whole process, installed by `main`.
//!
//! Two outputs. The terminal (stderr) shows warnings and errors by default (`-v` info, `-vv`
//! debug, `-vvv` trace, `-q` errors only, `-qq` nothing), or whatever `RUST_LOG` says when it is
//! set. A run log file, opened by `execute` and `discover` in their run directory, always gets
//! info and above with timestamps (debug with `-vv`), so an unattended weekend run can be read on
//! Monday whatever the terminal showed. `log` records (what `ibapi` emits) are bridged into
//! `tracing` by `tracing-log`.
//!
//! Terminal lines go through [`crate::progress`], so they never tangle with a progress bar.

use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers: journald, Loki, CloudWatch...).
    Json,
}

/// The logging options every command takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// More output on the terminal: -v info, -vv debug, -vvv trace (ignored when RUST_LOG is set).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: -q errors only and no progress display, -qq no log lines at all.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Format of log lines, on the terminal and in the run log file.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "OPT_BACKFILL_LOG_FORMAT")]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The terminal's filter when `RUST_LOG` is not set.
    pub fn console_directives(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (q, _) if q >= 2 => "off",
            (1, _) => "error",
            (_, 0) => "warn",
            (_, 1) => "info,ibapi=warn",
            (_, 2) => "debug",
            _ => "trace",
        }
    }

    /// The run log file's filter.
    pub fn file_directives(&self) -> &'static str {
        if self.verbose >= 2 {
            "debug"
        } else {
            "info,ibapi=warn"
        }
    }
}

/// The run log file currently open, if any.
static RUN_LOG: Mutex<Option<LineWriter<File>>> = Mutex::new(None);

/// Writes to the open run log file; a no-op when none is open.
#[derive(Clone, Copy)]
struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut g) = RUN_LOG.lock() {
            if let Some(f) = g.as_mut() {
                // A full disk must not stop the run: the summary is the record that matters.
                let _ = f.write_all(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut g) = RUN_LOG.lock() {
            if let Some(f) = g.as_mut() {
                let _ = f.flush();
            }
        }
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Writes terminal lines above the progress bar when one is shown.
#[derive(Clone, Copy)]
struct ConsoleWriter;

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::progress::suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ConsoleWriter {
    type Writer = ConsoleWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(format: LogFormat, writer: W, ansi: bool, filter: EnvFilter) -> BoxedLayer
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => base.with_filter(filter).boxed(),
        LogFormat::Json => base.json().with_filter(filter).boxed(),
    }
}

/// Install the process's subscriber (and the `log` bridge). Call once, from `main`; a second
/// call (tests) is ignored.
pub fn init(args: &LogArgs) {
    use std::io::IsTerminal;
    let console_filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::try_new(&s).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG `{s}`: {e}; using `warn`");
            EnvFilter::new("warn")
        }),
        _ => EnvFilter::new(args.console_directives()),
    };
    let ansi = std::io::stderr().is_terminal() && args.log_format == LogFormat::Text;
    let console = layer(args.log_format, ConsoleWriter, ansi, console_filter);
    let file = layer(
        args.log_format,
        RunLogWriter,
        false,
        EnvFilter::new(args.file_directives()),
    );
    let _ = tracing_subscriber::registry()
        .with(vec![console, file])
        .try_init();
}

/// Keeps the run log file open; closing (drop) flushes it and stops writing to it.
#[derive(Debug)]
pub struct RunLogGuard {
    path: PathBuf,
}

impl RunLogGuard {
    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLogGuard {
    fn drop(&mut self) {
        if let Ok(mut g) = RUN_LOG.lock() {
            if let Some(mut f) = g.take() {
                let _ = f.flush();
            }
        }
    }
}

/// Open (append to) the run log file at `path`, creating its directory. Every log line from now
/// until the guard is dropped also goes there.
pub fn open_run_log(path: &Path) -> std::io::Result<RunLogGuard> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if let Ok(mut g) = RUN_LOG.lock() {
        *g = Some(LineWriter::new(f));
    }
    Ok(RunLogGuard {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_filters() {
        let a = |verbose, quiet| LogArgs {
            verbose,
            quiet,
            log_format: LogFormat::Text,
        };
        assert_eq!(a(0, 0).console_directives(), "warn");
        assert_eq!(a(1, 0).console_directives(), "info,ibapi=warn");
        assert_eq!(a(2, 0).console_directives(), "debug");
        assert_eq!(a(5, 0).console_directives(), "trace");
        assert_eq!(a(0, 1).console_directives(), "error");
        assert_eq!(a(0, 2).console_directives(), "off");
        assert_eq!(a(0, 0).file_directives(), "info,ibapi=warn");
        assert_eq!(a(2, 0).file_directives(), "debug");
    }
}
