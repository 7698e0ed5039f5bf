//! Progress display shared by `execute` and `discover`: an `indicatif` bar on a terminal, a
//! plain line every few seconds otherwise (a log file or a journal gets readable lines, not
//! carriage returns), nothing with `-q`.
//!
//! Log lines written to the terminal while a bar is shown go through [`suspend`], which lifts
//! the bar, writes the line and redraws the bar below it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar currently drawn, for [`suspend`].
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);
/// Set by `-q`: no progress at all.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Turn progress display off for the process (`-q`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Run `f` (which writes to stderr) with the active bar lifted, if any.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().ok().and_then(|g| g.clone());
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

enum Mode {
    Bar(ProgressBar),
    Lines {
        label: String,
        every: Duration,
        last: Option<Instant>,
    },
    Off,
}

/// One progress display: `update` as often as convenient (it rate-limits itself).
pub struct Progress {
    mode: Mode,
}

impl Progress {
    /// A bar on a terminal, periodic `label: ...` lines otherwise.
    pub fn new(label: &str, total: u64) -> Progress {
        Self::with_mode(label, total, std::io::stderr().is_terminal())
    }

    /// As `new`, with plain lines `every` this often instead of every 10 s.
    pub fn every(label: &str, total: u64, every: Duration) -> Progress {
        let mut p = Self::new(label, total);
        if let Mode::Lines { every: e, .. } = &mut p.mode {
            *e = every;
        }
        p
    }

    /// As `new`, choosing bar (`tty`) or lines explicitly.
    pub fn with_mode(label: &str, total: u64, tty: bool) -> Progress {
        if QUIET.load(Ordering::Relaxed) {
            return Progress { mode: Mode::Off };
        }
        if tty {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:24}] {pos}/{len} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            if let Ok(mut g) = ACTIVE.lock() {
                *g = Some(bar.clone());
            }
            Progress {
                mode: Mode::Bar(bar),
            }
        } else {
            Progress {
                mode: Mode::Lines {
                    label: label.to_string(),
                    every: Duration::from_secs(10),
                    last: None,
                },
            }
        }
    }

    /// Show `done` of `total` and a status line.
    pub fn update(&mut self, done: u64, total: u64, line: impl FnOnce() -> String) {
        match &mut self.mode {
            Mode::Bar(b) => {
                b.set_length(total);
                b.set_position(done);
                b.set_message(line());
            }
            Mode::Lines { label, every, last } => {
                if last.is_some_and(|l| l.elapsed() < *every) {
                    return;
                }
                *last = Some(Instant::now());
                eprintln!("{label}: {}", line());
            }
            Mode::Off => {}
        }
    }

    /// Remove the bar (the caller prints its final table after).
    pub fn finish(&mut self) {
        if let Mode::Bar(b) = &self.mode {
            b.finish_and_clear();
            if let Ok(mut g) = ACTIVE.lock() {
                *g = None;
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
