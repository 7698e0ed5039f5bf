//! The timeline part of the page: finding the runs' `timeline_*.jsonl` files, reading them back,
//! and folding every shard's per-minute samples and connection events into one chart series.
//!
//! Apart from the page's assembly because it is the one part that reads files of its own (the
//! summaries come in already loaded) and the one that must bound its size by bucketing.

use super::{FarmNotice, Outage, Timeline, MAX_TIMELINE_POINTS};
use crate::exec::timeline::{MinuteSample, TimelineLine};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Timeline files under `paths` (searched recursively), with their labels (`run/0of1`).
pub fn timeline_files(paths: &[PathBuf]) -> Vec<(String, PathBuf)> {
    fn walk(p: &Path, out: &mut Vec<(String, PathBuf)>) {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
        } else if let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) {
            if let Some(shard) = name
                .strip_prefix("timeline_")
                .and_then(|n| n.strip_suffix(".jsonl"))
            {
                let run = p
                    .parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((format!("{run}/{shard}"), p.to_path_buf()));
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out
}

/// The timelines read back, per label, with the count of unreadable lines.
pub fn read_timelines(paths: &[PathBuf]) -> (Vec<(String, Vec<TimelineLine>)>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for (label, path) in timeline_files(paths) {
        match crate::exec::timeline::read(&path) {
            Ok((lines, b)) => {
                bad += b;
                out.push((label, lines));
            }
            Err(e) => {
                tracing::warn!("{}: {e}", path.display());
                bad += 1;
            }
        }
    }
    (out, bad)
}

/// The plan recorded by the latest run among `timelines` (for the heatmap), with its pinned
/// clock.
pub fn recorded_plan(
    timelines: &[(String, Vec<TimelineLine>)],
) -> Option<(PathBuf, Option<DateTime<Utc>>)> {
    timelines
        .iter()
        .flat_map(|(_, lines)| lines)
        .filter_map(|l| match l {
            TimelineLine::Plan { at, plan, now } => Some((*at, PathBuf::from(plan), *now)),
            _ => None,
        })
        .max_by_key(|(at, _, _)| *at)
        .map(|(_, p, n)| (p, n))
}

/// Add one minute's counts into another (shards of a run, or minutes of a bucket).
fn add_sample(into: &mut MinuteSample, s: &MinuteSample) {
    into.requests += s.requests;
    into.retries += s.retries;
    for (k, v) in &s.answers {
        *into.answers.entry(k.clone()).or_default() += v;
    }
    for (k, v) in &s.finished {
        *into.finished.entry(k.clone()).or_default() += v;
    }
    into.bars += s.bars;
    // Shards' percentiles cannot be merged exactly: the worst shard's is shown.
    into.latency_p50_ms = into.latency_p50_ms.max(s.latency_p50_ms);
    into.latency_p95_ms = into.latency_p95_ms.max(s.latency_p95_ms);
    into.inflight_limit += s.inflight_limit;
    into.inflight_limit_min += s.inflight_limit_min;
    into.pacing_pauses += s.pacing_pauses;
    into.paused_secs += s.paused_secs;
}

/// The chart's series: every shard's minutes summed, bucketed to at most
/// [`MAX_TIMELINE_POINTS`] points, with the reconnects, outages and farm notices beside them.
pub(super) fn timeline(timelines: &[(String, Vec<TimelineLine>)]) -> Timeline {
    let mut per_minute: BTreeMap<DateTime<Utc>, MinuteSample> = BTreeMap::new();
    let mut t = Timeline {
        bucket_minutes: 1,
        ..Default::default()
    };
    for (_, lines) in timelines {
        // A minute can be written twice (a resumed run with the same id): shards sum, a
        // shard's own repeated minute sums too (both halves were real requests).
        for l in lines {
            match l {
                TimelineLine::Minute(s) => {
                    let e = per_minute.entry(s.minute).or_insert_with(|| MinuteSample {
                        minute: s.minute,
                        ..Default::default()
                    });
                    add_sample(e, s);
                }
                TimelineLine::Reconnect { at } => t.reconnects.push(*at),
                TimelineLine::Outage { start, end, lost } => t.outages.push(Outage {
                    start: *start,
                    end: *end,
                    lost: *lost,
                    secs: (*end - *start).num_milliseconds() as f64 / 1000.0,
                }),
                TimelineLine::Farm { at, code, message } => t.farm_notices.push(FarmNotice {
                    at: *at,
                    code: *code,
                    message: message.clone(),
                }),
                TimelineLine::End { events_dropped, .. } => {
                    t.reconnect_count += events_dropped;
                }
                _ => {}
            }
        }
    }
    t.reconnects.sort();
    t.reconnect_count += t.reconnects.len() as u64;
    t.outages.sort_by_key(|o| o.start);
    t.farm_notices.sort_by_key(|f| f.at);
    let points: Vec<MinuteSample> = per_minute.into_values().collect();
    let k = points.len().div_ceil(MAX_TIMELINE_POINTS).max(1);
    t.bucket_minutes = k as u32;
    t.points = if k == 1 {
        points
    } else {
        points
            .chunks(k)
            .map(|c| {
                let mut m = MinuteSample {
                    minute: c[0].minute,
                    ..Default::default()
                };
                for s in c {
                    add_sample(&mut m, s);
                }
                // Limits are levels, not counts: the bucket shows their mean.
                m.inflight_limit /= c.len() as u32;
                m.inflight_limit_min = c.iter().map(|s| s.inflight_limit_min).min().unwrap_or(0);
                m
            })
            .collect()
    };
    t
}
