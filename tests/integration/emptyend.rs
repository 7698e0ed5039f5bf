//! `execute --empty-end` on a weekend: the hours phase sent with an empty end date-time gets
//! exactly the bars of the explicit-end run, the summaries record the form of each request and
//! `report` shows the rate of each form.

use crate::support::*;
use opt_backfill::store::parquet::read_bars;
use std::collections::BTreeMap;
use std::path::Path;

/// Saturday after the tests' end session (Black Friday): no session has started since.
const SATURDAY: &str = "2026-11-28T15:00:00Z";

fn files(data: &Path) -> BTreeMap<String, Vec<String>> {
    bar_files(data)
        .into_iter()
        .map(|p| {
            let bars = read_bars(&p).unwrap().unwrap_or_default();
            (
                p.strip_prefix(data).unwrap().display().to_string(),
                bars.iter().map(|b| format!("{:?}", b.bar)).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_end_gets_the_same_bars_as_the_explicit_end() {
    // The simulator's "now" is Friday's close (its `today` is the Saturday).
    let Fixture {
        sim, market, syms, ..
    } = Fixture::builder()
        .today(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap())
        .symbols(2)
        .build()
        .await;
    let mut runs = Vec::new();
    for empty_end in [false, true] {
        let ws = Workspace::new();
        let n = ws.write_caches(&market, &syms, Caches::sampled(1, 0.2, 8));
        assert!(n >= 8);
        let plan = ws.write_plan(&PlanSpec::new("weekend", HOURS), &syms, sim.addr().port());
        let mut args = vec![
            "execute".to_string(),
            plan.display().to_string(),
            "--now".into(),
            SATURDAY.into(),
        ];
        if empty_end {
            args.push("--empty-end".into());
        }
        let before = sim.historical_log().len();
        ok(&run_cli_async(args, ws.root.clone()).await);
        let ends: Vec<String> = sim.historical_log()[before..]
            .iter()
            .map(|r| r.end.clone())
            .collect();
        assert!(!ends.is_empty());
        assert!(
            ends.iter().all(|e| e.is_empty() == empty_end),
            "empty_end {empty_end}: ends sent {ends:?}"
        );
        let recs = ws.summaries();
        let forms: Vec<bool> = recs
            .iter()
            .flat_map(|r| r.requests.iter())
            .map(|q| opt_backfill::exec::empty_end::is_empty_form(q))
            .collect();
        assert!(!forms.is_empty() && forms.iter().all(|f| *f == empty_end));
        let report = run_cli_async(
            vec![
                "report".into(),
                ws.root.join("state/run_logs/test").display().to_string(),
            ],
            ws.root.clone(),
        )
        .await;
        let text = ok_stdout(&report);
        assert_eq!(text.contains("empty end"), empty_end, "{text}");
        runs.push((files(&ws.root.join("data_test")), ws));
    }
    assert!(runs[0].0.values().any(|b| !b.is_empty()));
    assert_eq!(runs[0].0, runs[1].0, "same files, same bars");
}

fn ok_stdout(out: &std::process::Output) -> String {
    ok(out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
