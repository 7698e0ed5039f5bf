//! The run's timeline: what the HTML report plots, recorded as the run goes rather than
//! reconstructed from logs afterwards.
//!
//! `execute` appends to `<run dir>/timeline_<i>of<n>.jsonl` one line per wall-clock minute
//! (requests, answers by class, median and p95 latency, the governor's in-flight limit, pacing
//! pauses) and one line per reconnect, gateway outage and farm notice. The size is bounded: one
//! sample per minute (about 300 bytes, so about 1 MB for a 60-hour weekend) and at most
//! [`MAX_EVENT_LINES`] event lines per run (later ones are only counted in the end line).
//! Lines are appended and flushed one at a time, so a killed run keeps everything up to its last
//! minute, and a resumed run with the same id appends to the same file.

use super::governor::GovernorStats;
use crate::ib::OutcomeClass;
use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Event lines (reconnects, outages, farm notices) written per run at most.
pub const MAX_EVENT_LINES: u64 = 10_000;

/// Latencies kept per minute for the percentiles (a minute rarely holds more requests).
const MAX_LATENCIES_PER_MINUTE: usize = 8_192;

/// One line of a timeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineLine {
    /// Written by the CLI before the run: what the report needs to find the plan again.
    Plan {
        /// When.
        at: DateTime<Utc>,
        /// Plan or manifest file (absolute).
        plan: String,
        /// The pinned clock of the run (`--now`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        now: Option<DateTime<Utc>>,
    },
    /// The executor started.
    Start {
        /// When.
        at: DateTime<Utc>,
        /// Run id.
        run_id: String,
        /// Scope.
        scope: String,
        /// Shard index.
        batch_index: u32,
        /// Shard count.
        batch_count: u32,
        /// Tasks to run (after resume filtering).
        tasks: u64,
        /// Tasks an earlier run finished.
        resumed: u64,
    },
    /// One minute of the run.
    Minute(MinuteSample),
    /// The connection was made again after a drop.
    Reconnect {
        /// When.
        at: DateTime<Utc>,
    },
    /// The gateway was unreachable: from the first dropped request to the reconnect (or to the
    /// end of the run when it never came back).
    Outage {
        /// First request that saw the connection gone.
        start: DateTime<Utc>,
        /// Reconnected (or gave up).
        end: DateTime<Utc>,
        /// True when the run gave up on the gateway.
        lost: bool,
    },
    /// A data-farm status message from the gateway (2103-2108, 2157/2158).
    Farm {
        /// When.
        at: DateTime<Utc>,
        /// IB code.
        code: i32,
        /// IB text.
        message: String,
    },
    /// The executor finished.
    End {
        /// When.
        at: DateTime<Utc>,
        /// Requests sent.
        requests: u64,
        /// Reconnects made.
        reconnects: u64,
        /// Stopped by Ctrl-C.
        interrupted: bool,
        /// Why the gateway was given up, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gateway_lost: Option<String>,
        /// Event lines not written because of [`MAX_EVENT_LINES`].
        #[serde(default)]
        events_dropped: u64,
    },
    /// Written by the CLI after the run: the process's exit code.
    Exit {
        /// When.
        at: DateTime<Utc>,
        /// Exit code.
        code: i32,
    },
}

/// One minute of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteSample {
    /// Start of the minute (UTC).
    pub minute: DateTime<Utc>,
    /// Requests sent (retries included).
    pub requests: u64,
    /// Of which retries.
    pub retries: u64,
    /// Answers by class (`OK`, `EMPTY`, `TIMEOUT`, `PACING`, `DISCONNECTED`, ...).
    pub answers: BTreeMap<String, u64>,
    /// Tasks finished, by final status.
    pub finished: BTreeMap<String, u64>,
    /// Bars received.
    pub bars: u64,
    /// Median latency of the minute's answers, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<u64>,
    /// The governor's in-flight limit at the end of the minute.
    pub inflight_limit: u32,
    /// Its lowest value during the minute.
    pub inflight_limit_min: u32,
    /// Pacing pauses started in the minute.
    pub pacing_pauses: u32,
    /// Seconds dispatch was paused in the minute (pacing pauses and disconnects).
    pub paused_secs: f64,
}

/// The timeline file of one shard of a run.
pub fn timeline_path(run_dir: &Path, batch_index: u32, batch_count: u32) -> PathBuf {
    run_dir.join(format!("timeline_{batch_index}of{batch_count}.jsonl"))
}

/// Append one line to a timeline file (the CLI's `Plan` and `Exit` lines).
pub fn append_line(path: &Path, line: &TimelineLine) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut s = serde_json::to_string(line).map_err(std::io::Error::other)?;
    s.push('\n');
    f.write_all(s.as_bytes())
}

/// Read a timeline file; torn or unknown lines (a killed run, a newer version) are skipped and
/// counted.
pub fn read(path: &Path) -> std::io::Result<(Vec<TimelineLine>, usize)> {
    let mut out = Vec::new();
    let bad = crate::inputs::jsonl::read(path, |l| out.push(l))?;
    Ok((out, bad.len()))
}

/// The current minute's tallies.
#[derive(Default)]
struct Bucket {
    sample: MinuteSample,
    latencies: Vec<u32>,
}

/// Records the timeline of one executor run. Fed from the scheduler loop (which sees every
/// event), never from request tasks, so it needs no lock.
pub struct TimelineRecorder {
    path: PathBuf,
    file: Option<File>,
    bucket: Option<Bucket>,
    outage_since: Option<DateTime<Utc>>,
    last_pauses: u32,
    last_paused_secs: f64,
    event_lines: u64,
    events_dropped: u64,
}

impl TimelineRecorder {
    /// Open (append) the shard's timeline file. A file that cannot be opened is logged and the
    /// run goes on without a timeline: the report is not worth a failed run.
    pub fn open(run_dir: &Path, batch_index: u32, batch_count: u32) -> Self {
        let path = timeline_path(run_dir, batch_index, batch_count);
        let file = std::fs::create_dir_all(run_dir)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            })
            .map_err(|e| tracing::error!("{}: {e}; no timeline for this run", path.display()))
            .ok();
        TimelineRecorder {
            path,
            file,
            bucket: None,
            outage_since: None,
            last_pauses: 0,
            last_paused_secs: 0.0,
            event_lines: 0,
            events_dropped: 0,
        }
    }

    fn write(&mut self, line: &TimelineLine) {
        let Some(f) = self.file.as_mut() else { return };
        let res = serde_json::to_string(line)
            .map_err(std::io::Error::other)
            .and_then(|mut s| {
                s.push('\n');
                f.write_all(s.as_bytes())
            });
        if let Err(e) = res {
            tracing::error!("{}: {e}; the timeline stops here", self.path.display());
            self.file = None;
        }
    }

    fn write_event(&mut self, line: &TimelineLine) {
        if self.event_lines >= MAX_EVENT_LINES {
            self.events_dropped += 1;
            return;
        }
        self.event_lines += 1;
        self.write(line);
    }

    /// The run starts.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        at: DateTime<Utc>,
        run_id: &str,
        scope: &str,
        batch: (u32, u32),
        tasks: u64,
        resumed: u64,
        gov: &GovernorStats,
    ) {
        self.last_pauses = gov.pacing_pauses;
        self.last_paused_secs = gov.paused_secs;
        self.write(&TimelineLine::Start {
            at,
            run_id: run_id.to_string(),
            scope: scope.to_string(),
            batch_index: batch.0,
            batch_count: batch.1,
            tasks,
            resumed,
        });
    }

    /// The bucket of the minute holding `at`, flushing earlier minutes first.
    fn bucket(&mut self, at: DateTime<Utc>, gov: Option<&GovernorStats>) -> &mut Bucket {
        let minute = at
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap_or(at);
        if self
            .bucket
            .as_ref()
            .is_some_and(|b| b.sample.minute < minute)
        {
            self.flush(gov);
        }
        self.bucket.get_or_insert_with(|| Bucket {
            sample: MinuteSample {
                minute,
                inflight_limit_min: u32::MAX,
                ..Default::default()
            },
            latencies: Vec::new(),
        })
    }

    /// Write the current minute's sample (with the governor's state, if known).
    fn flush(&mut self, gov: Option<&GovernorStats>) {
        let Some(mut b) = self.bucket.take() else {
            return;
        };
        if let Some(g) = gov {
            self.observe_governor(&mut b.sample, g);
        }
        if b.sample.inflight_limit_min == u32::MAX {
            b.sample.inflight_limit_min = b.sample.inflight_limit;
        }
        b.latencies.sort_unstable();
        b.sample.latency_p50_ms = percentile(&b.latencies, 0.50);
        b.sample.latency_p95_ms = percentile(&b.latencies, 0.95);
        self.write(&TimelineLine::Minute(b.sample));
    }

    fn observe_governor(&mut self, s: &mut MinuteSample, g: &GovernorStats) {
        s.inflight_limit = g.limit;
        s.inflight_limit_min = s.inflight_limit_min.min(g.limit);
        s.pacing_pauses += g.pacing_pauses.saturating_sub(self.last_pauses);
        s.paused_secs += (g.paused_secs - self.last_paused_secs).max(0.0);
        self.last_pauses = g.pacing_pauses;
        self.last_paused_secs = g.paused_secs;
    }

    /// Called on the scheduler's tick: samples the governor, closes finished minutes.
    pub fn tick(&mut self, at: DateTime<Utc>, gov: &GovernorStats) {
        let minute = at
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap_or(at);
        if self
            .bucket
            .as_ref()
            .is_some_and(|b| b.sample.minute < minute)
        {
            self.flush(Some(gov));
        }
        // Idle minutes (an outage, a long pause) get a sample too: a gap means "not recorded".
        let mut b = self.bucket.take().unwrap_or_else(|| Bucket {
            sample: MinuteSample {
                minute,
                inflight_limit_min: u32::MAX,
                ..Default::default()
            },
            latencies: Vec::new(),
        });
        self.observe_governor(&mut b.sample, gov);
        self.bucket = Some(b);
    }

    /// A request was sent.
    pub fn request(&mut self, at: DateTime<Utc>, retry: bool) {
        let b = self.bucket(at, None);
        b.sample.requests += 1;
        if retry {
            b.sample.retries += 1;
        }
    }

    /// A request was answered (or failed) after `latency`.
    pub fn answer(&mut self, at: DateTime<Utc>, class: OutcomeClass, latency: Duration) {
        let b = self.bucket(at, None);
        *b.sample
            .answers
            .entry(class.as_str().to_string())
            .or_default() += 1;
        if b.latencies.len() < MAX_LATENCIES_PER_MINUTE {
            b.latencies
                .push(latency.as_millis().min(u32::MAX as u128) as u32);
        }
    }

    /// A task finished.
    pub fn finished(&mut self, at: DateTime<Utc>, class: OutcomeClass, bars: u64) {
        let b = self.bucket(at, None);
        *b.sample
            .finished
            .entry(class.as_str().to_string())
            .or_default() += 1;
        b.sample.bars += bars;
    }

    /// A request found the connection gone: an outage starts unless one is open.
    pub fn disconnected(&mut self, at: DateTime<Utc>) {
        self.outage_since.get_or_insert(at);
    }

    /// The connection is back.
    pub fn reconnected(&mut self, at: DateTime<Utc>) {
        self.write_event(&TimelineLine::Reconnect { at });
        if let Some(start) = self.outage_since.take() {
            self.write_event(&TimelineLine::Outage {
                start,
                end: at,
                lost: false,
            });
        }
    }

    /// The run gave up on the gateway.
    pub fn gateway_lost(&mut self, at: DateTime<Utc>) {
        let start = self.outage_since.take().unwrap_or(at);
        self.write_event(&TimelineLine::Outage {
            start,
            end: at,
            lost: true,
        });
    }

    /// A data-farm notice from the gateway (2103-2108: market data / HMDS farm broken or OK;
    /// 2157/2158: sec-def farm). The hook for the gateway layer's farm-notice handling: call it
    /// from the scheduler loop when the gateway reports one.
    pub fn record_farm_notice(&mut self, at: DateTime<Utc>, code: i32, message: &str) {
        self.write_event(&TimelineLine::Farm {
            at,
            code,
            message: message.chars().take(300).collect(),
        });
    }

    /// The run ends: flush the last minute and write the end line.
    pub fn end(
        &mut self,
        at: DateTime<Utc>,
        gov: &GovernorStats,
        requests: u64,
        reconnects: u64,
        interrupted: bool,
        gateway_lost: Option<&str>,
    ) {
        if let Some(start) = self.outage_since.take() {
            // Never reconnected and never given up: the run stopped (Ctrl-C) during the drop.
            self.write_event(&TimelineLine::Outage {
                start,
                end: at,
                lost: gateway_lost.is_some(),
            });
        }
        self.bucket(at, Some(gov));
        self.flush(Some(gov));
        let dropped = self.events_dropped;
        self.write(&TimelineLine::End {
            at,
            requests,
            reconnects,
            interrupted,
            gateway_lost: gateway_lost.map(str::to_string),
            events_dropped: dropped,
        });
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(u64::from(sorted[rank - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn minutes_outages_and_percentiles_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = TimelineRecorder::open(dir.path(), 0, 1);
        let mut g = GovernorStats {
            limit: 4,
            ..Default::default()
        };
        r.start(t("2026-11-28T10:00:10Z"), "r", "s", (0, 1), 5, 0, &g);
        for i in 0..100u64 {
            r.request(t("2026-11-28T10:00:20Z"), i % 10 == 0);
            r.answer(
                t("2026-11-28T10:00:21Z"),
                OutcomeClass::Ok,
                Duration::from_millis(i + 1),
            );
        }
        r.disconnected(t("2026-11-28T10:00:30Z"));
        r.disconnected(t("2026-11-28T10:00:31Z"));
        g.limit = 2;
        g.pacing_pauses = 1;
        r.tick(t("2026-11-28T10:00:40Z"), &g);
        g.limit = 6;
        // Two idle minutes pass: each gets its own sample.
        r.tick(t("2026-11-28T10:01:00Z"), &g);
        r.tick(t("2026-11-28T10:02:00Z"), &g);
        r.reconnected(t("2026-11-28T10:02:05Z"));
        r.finished(t("2026-11-28T10:02:06Z"), OutcomeClass::Empty, 0);
        r.end(t("2026-11-28T10:02:07Z"), &g, 100, 1, false, None);
        let (lines, bad) = read(&timeline_path(dir.path(), 0, 1)).unwrap();
        assert_eq!(bad, 0);
        let minutes: Vec<&MinuteSample> = lines
            .iter()
            .filter_map(|l| match l {
                TimelineLine::Minute(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(minutes.len(), 3, "{lines:?}");
        assert_eq!(minutes[0].requests, 100);
        assert_eq!(minutes[0].retries, 10);
        assert_eq!(minutes[0].latency_p50_ms, Some(50));
        assert_eq!(minutes[0].latency_p95_ms, Some(95));
        assert_eq!(minutes[0].inflight_limit_min, 2);
        assert_eq!(minutes[0].pacing_pauses, 1);
        assert_eq!(minutes[1].requests, 0);
        assert_eq!(minutes[2].finished.get("EMPTY"), Some(&1));
        assert!(lines.contains(&TimelineLine::Outage {
            start: t("2026-11-28T10:00:30Z"),
            end: t("2026-11-28T10:02:05Z"),
            lost: false
        }));
        assert!(matches!(
            lines.last(),
            Some(TimelineLine::End { reconnects: 1, .. })
        ));
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("timeline_0of1.jsonl");
        append_line(
            &p,
            &TimelineLine::Exit {
                at: t("2026-11-28T10:00:00Z"),
                code: 1,
            },
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"kind\":\"minute\",\"min").unwrap();
        let (lines, bad) = read(&p).unwrap();
        assert_eq!((lines.len(), bad), (1, 1));
    }
}
