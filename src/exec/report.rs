//! Run statistics and reporters: the runner emits events, a reporter shows them. A terminal gets
//! a one-line progress bar redrawn in place; anything else gets a plain log line every few
//! seconds; both end with the same final table.

use super::governor::GovernorStats;
use crate::ib::OutcomeClass;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts of a run so far.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunStats {
    /// Tasks in this run (after resume filtering).
    pub total: u64,
    /// Tasks skipped because an earlier run finished them.
    pub resumed: u64,
    /// Tasks finished in this run, by final status (listed by spelling).
    pub by_status: BTreeMap<OutcomeClass, u64>,
    /// Requests sent (including retries).
    pub requests: u64,
    /// Retries sent.
    pub retries: u64,
    /// Bars received.
    pub bars: u64,
    /// Reconnects made.
    pub reconnects: u64,
    /// Summary lines or run totals that could not be written: each is an error (logged with
    /// its path) and makes the run exit non-zero, since a task without its summary line is not
    /// known to be done.
    pub write_failures: u64,
    /// Seconds since the run started.
    pub elapsed_secs: f64,
    /// Governor state at the end (or now).
    pub governor: GovernorStats,
    /// Windows split because a window longer than the strict limit table answered zero bars or
    /// "Time length exceed max".
    pub limit_splits: u64,
    /// Limits learned in this run, per bar size (windows are split to this many sessions).
    pub learned_limits: BTreeMap<String, String>,
}

impl RunStats {
    /// Tasks finished in this run.
    pub fn done(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// Count one final status.
    pub fn count(&mut self, class: OutcomeClass) {
        *self.by_status.entry(class).or_default() += 1;
    }

    /// Tasks finished in this run in `class`.
    pub fn get(&self, class: OutcomeClass) -> u64 {
        self.by_status.get(&class).copied().unwrap_or(0)
    }

    /// Finished tasks that ended in an error class. SKIPPED (a near-ATM symbol without a
    /// reference close under `--skip-underlying-close`) is a decision, not an error: it is in
    /// the summary for `rerun`, but does not make the run exit 1.
    pub fn errors(&self) -> u64 {
        self.done()
            - self.get(OutcomeClass::Ok)
            - self.get(OutcomeClass::Empty)
            - self.get(OutcomeClass::UpToDate)
            - self.get(OutcomeClass::Skipped)
    }

    /// Requests per second so far.
    pub fn rate(&self) -> f64 {
        // Under a second the figure is noise (the first burst of sends over a few ms).
        if self.elapsed_secs >= 1.0 {
            self.requests as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// One progress line.
    pub fn progress_line(&self) -> String {
        let done = self.done();
        let rate = self.rate();
        let eta = if rate > 0.0 && done > 0 && self.total > done {
            let secs =
                (self.total - done) as f64 / (done as f64 / self.elapsed_secs.max(1e-9)).max(1e-9);
            format_secs(secs)
        } else {
            "-".into()
        };
        let g = &self.governor;
        format!(
            "{done}/{total} ({pct:.1}%) ok {ok} empty {empty} up-to-date {utd} err {err} | {rate:.1} req/s | in flight {inf}/{lim} lat {lat:.0} ms{paused} | ETA {eta}",
            total = self.total,
            pct = if self.total > 0 { 100.0 * done as f64 / self.total as f64 } else { 100.0 },
            ok = self.get(OutcomeClass::Ok),
            empty = self.get(OutcomeClass::Empty),
            utd = self.get(OutcomeClass::UpToDate),
            err = self.errors(),
            inf = g.in_flight,
            lim = g.limit,
            lat = g.latency_ms,
            paused = if g.paused { " PAUSED" } else { "" },
        )
    }

    /// The final table.
    pub fn final_table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("{:<18} {:>10}\n", "status", "tasks"));
        for (k, v) in &self.by_status {
            s.push_str(&format!("{:<18} {v:>10}\n", k.as_str()));
        }
        s.push_str(&format!(
            "{:<18} {:>10}\n",
            "resumed (skipped)", self.resumed
        ));
        s.push_str(&format!(
            "requests {} (retries {}), bars {}, {:.1} req/s over {}, reconnects {}\n",
            self.requests,
            self.retries,
            self.bars,
            self.rate(),
            format_secs(self.elapsed_secs),
            self.reconnects
        ));
        if self.write_failures > 0 {
            s.push_str(&format!(
                "WRITE FAILURES: {} (summary lines or run totals not written; see the log)\n",
                self.write_failures
            ));
        }
        let g = &self.governor;
        s.push_str(&format!(
            "governor: limit {} (peak in flight {}), {:.1} answers/s, latency {:.0} ms (floor {:.0} ms), {} decreases, {} pacing pauses, paused {:.1} s\n",
            g.limit, g.peak_in_flight, g.delivery_rps, g.latency_ms, g.base_latency_ms, g.decreases, g.pacing_pauses, g.paused_secs
        ));
        s
    }
}

fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", secs.max(0.0))
    }
}

/// Receives progress from the runner.
pub trait Reporter: Send {
    /// Called about once a second and after every finished task (cheap to call often).
    fn progress(&mut self, stats: &RunStats);
    /// Called once at the end.
    fn finish(&mut self, stats: &RunStats);
}

/// Progress bar on a terminal, periodic log lines otherwise (see [`crate::progress`]); final
/// table on stderr.
pub struct ConsoleReporter {
    progress: crate::progress::Progress,
}

impl ConsoleReporter {
    /// Detects whether stderr is a terminal.
    pub fn new() -> Self {
        ConsoleReporter {
            progress: crate::progress::Progress::new("progress", 0),
        }
    }
}

impl Default for ConsoleReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for ConsoleReporter {
    fn progress(&mut self, stats: &RunStats) {
        self.progress
            .update(stats.done(), stats.total, || stats.progress_line());
    }

    fn finish(&mut self, stats: &RunStats) {
        self.progress.finish();
        eprint!("{}", stats.final_table());
    }
}

/// Discards progress (tests, benchmarks).
pub struct QuietReporter;

impl Reporter for QuietReporter {
    fn progress(&mut self, _: &RunStats) {}
    fn finish(&mut self, _: &RunStats) {}
}
