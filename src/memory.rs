//! The process's memory at the stages of a run, in the run log.
//!
//! Why: a weekend run holds hundreds of thousands of tasks for hours; when it grows, the run
//! log should say at which stage (plan compiled, resume checked, queue built, run ended), so
//! that a user (and the weekend benchmark) can tell the plan's share from the run's.

/// Resident and peak resident memory of this process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident set now (`VmRSS`).
    pub rss: u64,
    /// Highest resident set so far (`VmHWM`).
    pub peak: u64,
}

/// The process's memory, where the system tells it (Linux `/proc/self/status`; None elsewhere).
pub fn usage() -> Option<Usage> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_status(text: &str) -> Option<Usage> {
    let kib = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let n: u64 = line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(n * 1024)
    };
    Some(Usage {
        rss: kib("VmRSS:")?,
        peak: kib("VmHWM:")?,
    })
}

/// Log the memory at `stage` (info: the run log always has it).
pub fn log_stage(stage: &str) {
    if let Some(u) = usage() {
        tracing::info!(
            "memory at {stage}: {} MB resident, {} MB peak",
            u.rss >> 20,
            u.peak >> 20
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_and_peak_lines() {
        let text = "Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(text),
            Some(Usage {
                rss: 100 << 20,
                peak: 200 << 20
            })
        );
        assert_eq!(parse_status("VmRSS:\t12 kB\n"), None);
    }
}
