//! Compressed time: the same small run against the `realistic` simulator at time scale 1 and
//! at 20 (the executor told the same scale) ends the same way: statuses, bars and no pacing
//! violation. The hours phase and a small-bar phase (under IB's hard pacing rules) both run.

use crate::support::*;
use opt_backfill::store::parquet::read_bars;
use std::collections::BTreeMap;

const PHASES: &str = r#"[[phase]]
name = "hours"
bars = [{ size = "8 hours", duration = "6 M" }]

[[phase]]
name = "secs"
bars = [{ size = "30 secs", duration = "1 D" }]
"#;

/// Task id -> (phase, status, bars).
type Statuses = BTreeMap<String, (String, String, u64)>;

/// Run the plan at `scale`; return the statuses, file -> bars, and the pacing violations.
async fn run_at(scale: f64) -> (Statuses, BTreeMap<String, Vec<String>>, u64) {
    let Fixture {
        sim,
        ws,
        plan,
        contracts: n,
        ..
    } = Fixture::builder()
        .preset("realistic")
        .scenario(|s| s.time_scale = scale)
        .symbols(2)
        .caches(Caches::sampled(1, 0.1, 6))
        .plan(PlanSpec::new("scaled", PHASES))
        .build()
        .await;
    assert!(n >= 6, "{n} contracts");
    let out = ws
        .execute(&plan, &["--time-scale", &scale.to_string()])
        .await;
    ok(&out);
    let statuses = latest(&ws.summaries())
        .into_iter()
        .map(|(id, r)| (id, (r.phase, r.status.to_string(), r.bars)))
        .collect();
    let data = ws.root.join("data_test");
    let mut files = BTreeMap::new();
    for f in walk(&data) {
        let bars = read_bars(&f).unwrap().unwrap_or_default();
        let rel = f.strip_prefix(&data).unwrap().display().to_string();
        files.insert(
            rel,
            bars.iter()
                .map(|b| format!("{:?}", b.bar))
                .collect::<Vec<_>>(),
        );
    }
    (statuses, files, sim.counters().pacing_violations)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    bar_files(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_at_time_scale_20_ends_as_at_scale_1() {
    let (s1, f1, v1) = run_at(1.0).await;
    let (s20, f20, v20) = run_at(20.0).await;
    assert_eq!((v1, v20), (0, 0), "pacing violations");
    for phase in ["hours", "secs"] {
        assert!(
            s1.values().any(|(p, st, _)| p == phase && st == "OK"),
            "{phase} fetched bars: {s1:?}"
        );
    }
    eprintln!("{} tasks, {} files", s1.len(), f1.len());
    assert_eq!(s1, s20, "statuses and bar counts per task");
    assert!(!f1.is_empty());
    assert_eq!(
        f1.keys().collect::<Vec<_>>(),
        f20.keys().collect::<Vec<_>>()
    );
    assert_eq!(f1, f20, "bars per file");
}
