//! The HTML report: a run against the hostile simulator produces a page whose embedded data
//! match the summaries and the run's counts, a heatmap with exactly the holes `verify` reports,
//! and (where Debian's chromium is installed) a page a real browser renders without console
//! errors.

use crate::support::*;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The simulator's clock pins "now" to the Monday after the end: no result depends on when the
/// suite runs.
const NOW: &str = "2026-11-30T21:00:00Z";

/// The JSON embedded in a page.
fn page_data(path: &Path) -> Value {
    let html = std::fs::read_to_string(path).unwrap();
    let open = "<script type=\"application/json\" id=\"page-data\">";
    let start = html.find(open).expect("embedded data") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Self-contained: nothing fetched from anywhere.
fn assert_self_contained(path: &Path) {
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.contains("default-src 'none'"), "no CSP");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page refers to the network"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_run_page_matches_summaries_and_verify() {
    let sim_start = Utc::now();
    let Fixture {
        sim: _sim,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .preset("hostile")
        .scenario(|sc| {
            sc.hmds.latency_median_ms = 5.0;
            sc.hmds.latency_min_ms = 1.0;
            sc.hmds.latency_max_ms = 50.0;
            sc.hmds.throttle_free_requests = u32::MAX;
            sc.faults.drop_after_requests = Some(50);
            sc.faults.hang_fraction = 0.02;
            sc.faults.outage = Some(opt_backfill::sim::scenario::OutageSettings {
                at_secs: 2.0,
                duration_secs: 6.0,
            });
            sc.faults.farm_flap = Some(opt_backfill::sim::scenario::FarmFlapSettings {
                every_secs: 3.0,
                down_secs: 0.5,
            });
        })
        .symbols(3)
        .caches(Caches::near(2, 0.10))
        .plan(PlanSpec::new("hostile", HOURS))
        .build()
        .await;
    let run = |id: &str| {
        vec![
            "execute".to_string(),
            s(&plan),
            "--request-timeout".into(),
            "1s".into(),
            "--now".into(),
            NOW.into(),
            "--run-id".into(),
            id.into(),
        ]
    };
    let out = run_cli_async(run("first"), ws.root.clone()).await;
    let first_code = out.status.code().unwrap();
    if first_code != 0 {
        // Tasks that failed every retry: a second run finishes them.
        ok(&run_cli_async(run("second"), ws.root.clone()).await);
    }
    let run_dir = ws.root.join("state/run_logs/test/first");

    // The first run's page against its summaries and its final counts.
    let page = ws.root.join("first.html");
    ok(&run_cli_async(
        vec![
            "report".into(),
            s(&run_dir),
            "--html".into(),
            s(&page),
            "--json".into(),
        ],
        ws.root.clone(),
    )
    .await);
    assert_self_contained(&page);
    let data = page_data(&page);
    let records: Vec<_> = ws
        .summaries()
        .into_iter()
        .filter(|r| r.run_id == "first")
        .collect();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for r in latest(&records).values() {
        *totals.entry(r.status.to_string()).or_default() += 1;
    }
    let page_totals: BTreeMap<String, u64> =
        serde_json::from_value(data["header"]["totals"].clone()).unwrap();
    assert_eq!(page_totals, totals);
    assert_eq!(data["header"]["exit_codes"]["first/0of1"], first_code);
    assert_eq!(data["header"]["run_ids"], serde_json::json!(["first"]));
    let stats: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run_0of1.json")).unwrap()).unwrap();
    let reconnects = stats["reconnects"].as_u64().unwrap();
    assert!(reconnects > 0, "the hostile preset drops connections");
    assert_eq!(data["timeline"]["reconnect_count"], reconnects);
    let points = data["timeline"]["points"].as_array().unwrap();
    let requests: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, stats["requests"].as_u64().unwrap());
    let finished: u64 = points
        .iter()
        .flat_map(|p| p["finished"].as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        finished,
        records.len() as u64,
        "every summary record in the timeline"
    );
    // The gateway restart: refused from 2 s to 8 s after the simulator started. The page's
    // longest outage starts when a request saw the drop and ends at the reconnect after it.
    let outages = data["timeline"]["outages"].as_array().unwrap();
    let longest = outages
        .iter()
        .max_by(|a, b| {
            a["secs"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["secs"].as_f64().unwrap())
        })
        .expect("an outage");
    let (restart, back) = (
        sim_start + chrono::Duration::seconds(2),
        sim_start + chrono::Duration::seconds(8),
    );
    let (o_start, o_end) = (time(&longest["start"]), time(&longest["end"]));
    assert!(
        o_start <= back && o_end >= back,
        "{longest} vs {restart}..{back}"
    );
    assert!(longest["secs"].as_f64().unwrap() >= 3.0, "{longest}");
    assert_eq!(longest["lost"], false);
    assert_eq!(
        outages.iter().filter(|o| o["lost"] == false).count() as u64,
        reconnects,
        "each outage ended by a reconnect"
    );

    // The farm flapped every 3 s while the run went on: the page shows it going down and up.
    let farm: Vec<i64> = data["timeline"]["farm_notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_i64().unwrap())
        .collect();
    assert!(farm.contains(&2105) && farm.contains(&2106), "{farm:?}");

    // A hole: delete one file, then the verify page's heatmap shows exactly what verify reports.
    let victim = walk(&ws.root.join("data_test"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a bar file");
    std::fs::remove_file(&victim).unwrap();
    let con_id: i64 = victim
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .expect("conId directory");
    let vpage = ws.root.join("verify.html");
    let out = run_cli_async(
        vec![
            "verify".into(),
            s(&plan),
            "--now".into(),
            NOW.into(),
            "--json".into(),
            "--html".into(),
            s(&vpage),
        ],
        ws.root.clone(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "a hole makes verify exit 1");
    assert_self_contained(&vpage);
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vdata = page_data(&vpage);
    let heat = &vdata["heatmap"];
    assert_eq!(heat["complete"], false);
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    for m in audit["missing"].as_array().unwrap() {
        for d in m["sessions"].as_array().unwrap() {
            expected.insert((
                m["symbol"].as_str().unwrap().into(),
                d.as_str().unwrap().into(),
                format!(
                    "{} {} {}",
                    m["conId"],
                    m["phase"].as_str().unwrap(),
                    m["bar_size"].as_str().unwrap()
                ),
            ));
        }
    }
    assert!(expected
        .iter()
        .all(|e| e.2.starts_with(&con_id.to_string())));
    let mut shown = BTreeSet::new();
    for h in heat["holes"].as_array().unwrap() {
        for r in h["repair"].as_array().unwrap() {
            shown.insert((
                h["symbol"].as_str().unwrap().to_string(),
                h["session"].as_str().unwrap().to_string(),
                r.as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(!expected.is_empty());
    assert_eq!(
        shown, expected,
        "the heatmap's holes are verify's missing sessions"
    );
    let missing_rows: u64 = heat["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["missing"].as_u64().unwrap())
        .sum();
    assert_eq!(missing_rows, audit["totals"]["missing"].as_u64().unwrap());
    assert!(
        heat["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains(&*victim.to_string_lossy())),
        "the deleted file is named"
    );
    // Drawn, too: the hole cells carry what a repair run fetches.
    let vhtml = std::fs::read_to_string(&vpage).unwrap();
    assert!(
        vhtml.contains(&format!("a repair run fetches: {con_id} hours 8 hours")),
        "no drawn hole for conId {con_id}"
    );
    // The verify page carries the latest run's timeline too.
    assert!(!vdata["timeline"]["points"].as_array().unwrap().is_empty());
    render_in_chromium(&page);
    render_in_chromium(&vpage);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    bar_files(dir)
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Render a page in headless Chromium (Debian's package): no console message at all, and the
/// DOM after scripts ran still holds the panels. Skipped, with a line saying so, without it.
fn render_in_chromium(page: &Path) {
    if !Path::new(CHROMIUM).exists() {
        println!(
            "SKIPPED html::browser check of {}: {CHROMIUM} is not installed (apt-get install chromium)",
            page.display()
        );
        return;
    }
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(dom.contains("id=\"page-data\"") && dom.contains("<h2>Timeline</h2>"));
}
