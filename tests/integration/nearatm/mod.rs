//! Near-ATM phases end to end: reference closes, the selection against a brute force, the
//! EMPTY rate of near-ATM minutes against all strikes, the rerun universe fed back, NO_REFERENCE
//! skips and the gateway close, and the run report. The real binary against the in-process
//! simulated gateway.

mod schemas;

use crate::support::*;
use chrono::NaiveDate;
use opt_backfill::store::summary::SummaryRecord;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The minutes phase (`30 mins` x `1 M`, TRADES) with the given `select` value.
fn minutes(select: &str) -> String {
    format!(
        r#"[[phase]]
name = "minutes"
what-to-show = "TRADES"
bars = [{{ size = "30 mins", duration = "1 M" }}]
select = {select}
"#
    )
}

fn near_atm(k: u32, e: u32, reference: &str) -> String {
    minutes(&format!(
        "{{ near-atm = {{ strikes = {k}, expiries = {e}, reference = {reference} }} }}"
    ))
}

/// Read a contracts cache as plain JSON (not through the crate's types, so the brute force
/// below is independent of the code under test).
fn cache_json(ws: &Workspace, symbol: &str) -> Value {
    let path = ws.caches().join(format!("{symbol}_{}.json", end_date()));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Brute force: for the E smallest expiries after `end`, for each right, sort the contracts by
/// (|strike - close|, strike) and keep K; return the conIds.
fn brute_force(cache: &Value, close: f64, end: NaiveDate, k: usize, e: usize) -> BTreeSet<i64> {
    let contracts = cache["contracts"].as_array().unwrap();
    let expiry = |c: &Value| NaiveDate::parse_from_str(c["expiry"].as_str().unwrap(), "%Y-%m-%d");
    let mut exps: Vec<NaiveDate> = contracts
        .iter()
        .map(|c| expiry(c).unwrap())
        .filter(|x| *x > end)
        .collect();
    exps.sort();
    exps.dedup();
    exps.truncate(e);
    let mut out = BTreeSet::new();
    for x in &exps {
        for right in ["C", "P"] {
            let mut group: Vec<(f64, f64, i64)> = contracts
                .iter()
                .filter(|c| expiry(c).unwrap() == *x && c["right"] == right)
                .map(|c| {
                    let strike = c["strike"].as_f64().unwrap();
                    (
                        (strike - close).abs(),
                        strike,
                        c["con_id"].as_i64().unwrap(),
                    )
                })
                .collect();
            group.sort_by(|a, b| a.partial_cmp(b).unwrap());
            out.extend(group.iter().take(k).map(|g| g.2));
        }
    }
    out
}

/// The recorded selections of a workspace: symbol -> JSON record.
fn selections(ws: &Workspace) -> BTreeMap<String, Value> {
    let dir = ws.root.join("state/run_logs/test/selections");
    let mut out = BTreeMap::new();
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let v: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        out.insert(v["symbol"].as_str().unwrap().to_string(), v);
    }
    out
}

/// The only run directory of a workspace with this run id.
fn run_dir(ws: &Workspace, run_id: &str) -> PathBuf {
    ws.root.join("state/run_logs/test").join(run_id)
}

/// EMPTY / (OK + EMPTY) over the latest records of a phase.
fn empty_rate(records: &[SummaryRecord]) -> (f64, usize, usize) {
    let l = latest(records);
    let ok = l.values().filter(|r| r.status == "OK").count();
    let empty = l.values().filter(|r| r.status == "EMPTY").count();
    (empty as f64 / (ok + empty).max(1) as f64, ok, empty)
}

fn execute(plan: &Path, run_id: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "execute".to_string(),
        s(plan),
        "--run-id".into(),
        run_id.into(),
    ];
    v.extend(extra.iter().map(|x| x.to_string()));
    v
}

/// Test 1: the selection made at run time equals a brute force over the cache JSON and the
/// close (snapshot for one symbol, cache for the other); the dry-run request count equals the
/// requests fetched; a resumed run with a very different close reuses the recorded selection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_matches_brute_force_and_dry_run_count() {
    let (k, e) = (3, 2);
    // The plan names a snapshot (required by the `snapshot` source); `--closes` overrides it.
    let Fixture {
        sim,
        market,
        syms,
        ws,
        plan,
        contracts: n,
    } = Fixture::builder()
        .symbols(2)
        .caches(Caches::near(3, 0.15))
        .plan(
            PlanSpec::new("sel", &near_atm(k, e, r#"["snapshot", "cache"]"#))
                .top("reference-snapshot = \"plan_closes.csv\""),
        )
        .build()
        .await;
    std::fs::write(ws.root.join("plan_closes.csv"), "symbol,date,close\n").unwrap();
    // The snapshot moves the first symbol's close by 3 %; the second has none (cache close).
    let snap_close = market.close(&syms[0], end_date()).unwrap() * 1.03;
    let snapshot = ws.root.join("closes.csv");
    std::fs::write(
        &snapshot,
        format!(
            "symbol,date,close\n{0},2026-11-20,1.0\n{0},{1},{2}\n{0},2026-12-01,99999\n",
            syms[0],
            end_date(),
            snap_close
        ),
    )
    .unwrap();

    // Dry run: the exact request count of the near-ATM phase, before any close is known.
    let dry = ws.cli(&["plan", &s(&plan), "--dry-run"]).await;
    let dry_out = String::from_utf8_lossy(&dry.stdout).into_owned();
    ok(&dry);
    let total: usize = dry_out
        .lines()
        .find_map(|l| l.strip_prefix("total requests: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no total in {dry_out}"));

    let out = run_cli_async(
        execute(&plan, "r1", &["--closes", &s(&snapshot)]),
        ws.root.clone(),
    )
    .await;
    let stderr = ok(&out);
    let log = sim.historical_log();
    assert_eq!(
        log.len(),
        total,
        "dry run said {total}, fetched {}: {dry_out}\n{stderr}",
        log.len()
    );
    assert!(log.iter().all(|r| r.bar_size == "30 mins"));

    let recorded = selections(&ws);
    let fetched: BTreeSet<i64> = log.iter().map(|r| r.con_id).collect();
    let mut expected_all = BTreeSet::new();
    for (i, sym) in syms.iter().enumerate() {
        let cache = cache_json(&ws, sym);
        let (close, source) = if i == 0 {
            (snap_close, "snapshot")
        } else {
            (
                cache["underlying"]["reference_close"].as_f64().unwrap(),
                "cache",
            )
        };
        let expected = brute_force(&cache, close, end_date(), k as usize, e as usize);
        assert_eq!(expected.len(), 2 * k as usize * e as usize, "{sym}");
        let rec = &recorded[sym];
        assert_eq!(rec["source"], source, "{sym}: {rec}");
        assert!(
            (rec["close"].as_f64().unwrap() - close).abs() < 1e-9,
            "{rec}"
        );
        let got: BTreeSet<i64> = rec["con_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(
            got, expected,
            "{sym}: selection differs from the brute force"
        );
        // Every summary record of the symbol carries the close and its source.
        for r in ws.summaries().iter().filter(|r| r.symbol == *sym) {
            assert_eq!(r.reference_close, Some(close), "{r:?}");
            assert_eq!(
                r.reference_source.map(|s| serde_json::to_value(s).unwrap()),
                Some(Value::from(source))
            );
        }
        expected_all.extend(expected);
    }
    assert_eq!(
        fetched, expected_all,
        "fetched exactly the selected contracts"
    );
    let summary: BTreeSet<i64> = latest(&ws.summaries()).values().map(|r| r.con_id).collect();
    assert_eq!(summary, expected_all);
    // The per-symbol report shows the close used.
    let by = run_cli_async(
        vec![
            "report".into(),
            s(&run_dir(&ws, "r1")),
            "--by-symbol".into(),
            "--json".into(),
        ],
        ws.root.clone(),
    )
    .await;
    ok(&by);
    let rows: Value = serde_json::from_slice(&by.stdout).unwrap();
    for (sym, rec) in &recorded {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["symbol"] == sym.as_str())
            .unwrap_or_else(|| panic!("no row for {sym}: {rows}"));
        assert_eq!(row["reference_close"], rec["close"]);
        assert_eq!(row["reference_source"], rec["source"]);
    }
    eprintln!(
        "{n} contracts in the caches, {} selected, {total} requests (dry run = fetched)",
        expected_all.len()
    );

    // A later run with a very different close reuses the recorded selection: nothing to fetch.
    std::fs::write(
        &snapshot,
        format!(
            "symbol,date,close\n{},{},{}\n",
            syms[0],
            end_date(),
            snap_close * 1.5
        ),
    )
    .unwrap();
    let out = run_cli_async(
        execute(&plan, "r2", &["--closes", &s(&snapshot)]),
        ws.root.clone(),
    )
    .await;
    ok(&out);
    assert_eq!(sim.historical_log().len(), total, "resume sends nothing");
    assert_eq!(
        selections(&ws),
        recorded,
        "the recorded selection is reused"
    );
}

/// Test 2 and 5: the minutes phase over near-ATM contracts has an EMPTY rate at most half that
/// of the same phase over all strikes; `report` shows it (table, `--json`, `--by-symbol`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_atm_minutes_empty_rate_is_far_below_all_strikes_and_report_shows_it() {
    // Same caches for both: 2 expiries, a wide band of strikes, sampled.
    let wide = Caches::sampled(2, 0.95, 40);
    let Fixture {
        sim,
        market,
        syms,
        ws: atm,
        plan: p_atm,
        contracts: n,
    } = Fixture::builder()
        .pick(|market| {
            // The two least liquid underlyings: their far strikes rarely trade.
            let mut by_liquidity: Vec<_> = market.underlyings().to_vec();
            by_liquidity.sort_by(|a, b| a.liquidity.total_cmp(&b.liquidity));
            by_liquidity
                .iter()
                .take(2)
                .map(|u| u.symbol.clone())
                .collect()
        })
        .caches(wide)
        .plan(PlanSpec::new("atm", &near_atm(2, 2, r#"["cache"]"#)))
        .build()
        .await;
    let all = Workspace::new();
    all.write_caches(&market, &syms, wide);
    let port = sim.addr().port();
    let p_all = all.plan("all", &syms, end_date(), port, &minutes(r#""all""#));
    ok(&run_cli_async(execute(&p_atm, "atm", &[]), atm.root.clone()).await);
    let after_atm = sim.historical_log().len();
    ok(&run_cli_async(execute(&p_all, "all", &[]), all.root.clone()).await);
    assert_eq!(
        sim.historical_log().len() - after_atm,
        n,
        "one request per contract"
    );

    let (r_atm, ok_atm, empty_atm) = empty_rate(&atm.summaries());
    let (r_all, ok_all, empty_all) = empty_rate(&all.summaries());
    eprintln!(
        "EMPTY rate, minutes 30 mins x 1 M: near-ATM {:.1}% ({empty_atm} of {}), all strikes {:.1}% ({empty_all} of {})",
        100.0 * r_atm,
        ok_atm + empty_atm,
        100.0 * r_all,
        ok_all + empty_all
    );
    assert!(ok_all + empty_all == n && ok_atm + empty_atm == 8 * syms.len());
    assert!(
        r_atm <= r_all / 2.0,
        "near-ATM EMPTY rate {r_atm} is not at most half of all strikes' {r_all}"
    );
    assert!(r_all > 0.0);

    // The report over the all-strikes run: table, JSON, per symbol.
    let dir = run_dir(&all, "all");
    let rep = run_cli_async(vec!["report".into(), s(&dir)], all.root.clone()).await;
    ok(&rep);
    let table = String::from_utf8_lossy(&rep.stdout).into_owned();
    eprintln!("{table}");
    let header = table.lines().next().unwrap();
    for col in [
        "OK", "EMPTY", "ERR", "bars", "req/s", "empty%", "first", "last", "codes",
    ] {
        assert!(header.contains(col), "{col} missing: {header}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("minutes") && l.contains("30 mins"))
        .unwrap_or_else(|| panic!("no minutes row: {table}"));
    assert!(
        row.contains(&format!("{:.1}%", 100.0 * r_all)),
        "EMPTY rate in {row}"
    );
    assert!(row.contains("162x"), "EMPTY answers are IB code 162: {row}");

    let js = run_cli_async(
        vec!["report".into(), s(&dir), "--json".into()],
        all.root.clone(),
    )
    .await;
    ok(&js);
    let rows: Value = serde_json::from_slice(&js.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["phase"], "minutes");
    assert_eq!(r["bar_size"], "30 mins");
    assert_eq!(r["tasks"].as_u64(), Some(n as u64));
    assert_eq!(r["by_status"]["OK"].as_u64(), Some(ok_all as u64));
    assert_eq!(r["by_status"]["EMPTY"].as_u64(), Some(empty_all as u64));
    assert!((r["empty_rate"].as_f64().unwrap() - r_all).abs() < 1e-9);
    let bars: u64 = all.summaries().iter().map(|r| r.bars).sum();
    assert_eq!(r["bars"].as_u64(), Some(bars));
    assert!(bars > 0 && r["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["first"].is_string() && r["last"].is_string());

    let by = run_cli_async(
        vec![
            "report".into(),
            s(&dir),
            "--by-symbol".into(),
            "--json".into(),
        ],
        all.root.clone(),
    )
    .await;
    ok(&by);
    let rows: Value = serde_json::from_slice(&by.stdout).unwrap();
    let per_symbol: BTreeSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["symbol"].as_str().map(String::from))
        .collect();
    assert_eq!(per_symbol, syms.iter().cloned().collect());
    let by = run_cli_async(
        vec!["report".into(), s(&dir), "--by-symbol".into()],
        all.root.clone(),
    )
    .await;
    ok(&by);
    let text = String::from_utf8_lossy(&by.stdout).into_owned();
    for sym in &syms {
        assert_eq!(
            text.lines().filter(|l| l.starts_with(sym.as_str())).count(),
            1,
            "one row for {sym}: {text}"
        );
    }

    // A torn last line (a killed run) is skipped and said so.
    let file = dir.join("summary_minutes_0of1.jsonl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"run_id\":\"all\",\"task_");
    std::fs::write(&file, text).unwrap();
    let rep = run_cli_async(vec!["report".into(), s(&dir)], all.root.clone()).await;
    ok(&rep);
    let table = String::from_utf8_lossy(&rep.stdout).into_owned();
    assert!(
        table.contains("1 unreadable summary lines skipped"),
        "{table}"
    );
}

/// Test 3: a run with hanging requests (one attempt, short timeout) yields a rerun CSV that,
/// fed back, fetches exactly the failed tasks and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_csv_fetches_exactly_the_failed_tasks() {
    let phases = format!(
        "{HOURS}\n{}depends-on = [\"hours\"]\n",
        near_atm(2, 2, r#"["cache"]"#)
    );
    let Fixture { sim, ws, plan, .. } = Fixture::builder()
        .scenario(|sc| sc.faults.hang_fraction = 0.25)
        .symbols(2)
        .caches(Caches::sampled(2, 0.3, 30))
        .plan(PlanSpec::new("rerun", &phases).max_attempts(1))
        .build()
        .await;

    let out = run_cli_async(
        execute(&plan, "r1", &["--request-timeout", "1s"]),
        ws.root.clone(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "some tasks time out: {stderr}");
    let first = sim.historical_log().len();
    let failed: BTreeSet<(i64, String)> = latest(&ws.summaries())
        .values()
        .filter(|r| r.status != "OK" && r.status != "EMPTY")
        .map(|r| (r.con_id, r.bar_size.to_string()))
        .collect();
    assert!(!failed.is_empty(), "the hang fault produced no failure");

    let csv = ws.root.join("rerun.csv");
    let out = run_cli_async(
        vec![
            "rerun".into(),
            s(&run_dir(&ws, "r1")),
            "--contracts".into(),
            "-o".into(),
            s(&csv),
        ],
        ws.root.clone(),
    )
    .await;
    ok(&out);
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: BTreeSet<(i64, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[3].to_string())
        })
        .collect();
    assert_eq!(rows, failed, "{text}");
    assert!(text.contains("TIMEOUT"), "{text}");

    let out = run_cli_async(
        execute(
            &plan,
            "r2",
            &["--rerun", &s(&csv), "--request-timeout", "1s"],
        ),
        ws.root.clone(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let again: Vec<(i64, String)> = sim.historical_log()[first..]
        .iter()
        .map(|r| (r.con_id, r.bar_size.to_string()))
        .collect();
    let again_set: BTreeSet<(i64, String)> = again.iter().cloned().collect();
    assert_eq!(again.len(), again_set.len(), "each failed task once");
    assert_eq!(
        again_set, rows,
        "the rerun fetched exactly the failed tasks"
    );
    eprintln!(
        "{} requests in the first run, {} failed and re-run",
        first,
        again.len()
    );
}

/// Test 4: a symbol without a reference close is SKIPPED with NO_REFERENCE by default (no
/// gateway request), and fetched with `--no-skip-underlying-close` from the gateway's close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reference_close_is_skipped_then_fetched_from_the_gateway() {
    let Fixture {
        sim,
        market,
        syms,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(Caches::near(2, 0.1))
        .plan(PlanSpec::new("noref", &near_atm(2, 2, r#"["cache"]"#)))
        .build()
        .await;
    // The second symbol's cache has no close.
    let path = ws.caches().join(format!("{}_{}.json", syms[1], end_date()));
    let mut cache: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for k in [
        "reference_close",
        "reference_close_date",
        "reference_close_source",
    ] {
        cache["underlying"][k] = Value::Null;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&cache).unwrap()).unwrap();

    let out = run_cli_async(execute(&plan, "r1", &[]), ws.root.clone()).await;
    ok(&out);
    let log = sim.historical_log();
    assert!(
        log.iter().all(|r| r.bar_size == "30 mins"),
        "no gateway close"
    );
    let recs = latest(&ws.summaries());
    let skipped: Vec<&SummaryRecord> = recs.values().filter(|r| r.status == "SKIPPED").collect();
    assert_eq!(skipped.len(), 1, "{recs:?}");
    assert_eq!(skipped[0].symbol, syms[1]);
    assert!(
        skipped[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.starts_with("NO_REFERENCE")),
        "{:?}",
        skipped[0]
    );
    assert!(recs
        .values()
        .filter(|r| r.status != "SKIPPED")
        .all(|r| r.symbol == syms[0]));
    let first = log.len();
    assert_eq!(first, 8);

    // The rerun universe of the first run is the skipped symbol (a symbol-level row).
    let csv = ws.root.join("noref.csv");
    ok(&run_cli_async(
        vec![
            "rerun".into(),
            s(&run_dir(&ws, "r1")),
            "--contracts".into(),
            "-o".into(),
            s(&csv),
        ],
        ws.root.clone(),
    )
    .await);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(&format!("{},0,minutes,30 mins,SKIPPED", syms[1])),
        "{text}"
    );
    let out = run_cli_async(
        execute(
            &plan,
            "r2",
            &["--rerun", &s(&csv), "--no-skip-underlying-close"],
        ),
        ws.root.clone(),
    )
    .await;
    ok(&out);
    let log = sim.historical_log()[first..].to_vec();
    let daily: Vec<_> = log.iter().filter(|r| r.bar_size == "1 day").collect();
    assert_eq!(
        daily.len(),
        1,
        "one underlying close, for the symbol without one"
    );
    let rec = &selections(&ws)[&syms[1]];
    assert_eq!(rec["source"], "gateway");
    let close = market.close(&syms[1], end_date()).unwrap();
    assert!(
        (rec["close"].as_f64().unwrap() - close).abs() < 1e-6,
        "{rec} vs {close}"
    );
    let expected = brute_force(&cache, close, end_date(), 2, 2);
    let fetched: BTreeSet<i64> = log
        .iter()
        .filter(|r| r.bar_size == "30 mins")
        .map(|r| r.con_id)
        .collect();
    assert_eq!(fetched, expected, "only the skipped symbol's contracts");
    assert_eq!(log.len(), 1 + expected.len());
    // Over both runs nothing is left to re-run: the SKIPPED line is superseded.
    ok(&run_cli_async(
        vec![
            "rerun".into(),
            s(&ws.root.join("state/run_logs/test")),
            "--contracts".into(),
            "-o".into(),
            s(&csv),
        ],
        ws.root.clone(),
    )
    .await);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(latest(&ws.summaries())
        .values()
        .filter(|r| r.symbol == syms[1] && r.status != "SKIPPED")
        .all(|r| r.reference_close == Some(rec["close"].as_f64().unwrap())));
}
