//! Plan edits, faults and hand-made holes, each followed by a plain run: the lake equals a clean
//! run of the final plan, and `verify` reports nothing missing.

use super::*;

/// Under a `1 M` limit, `8 hours x 6 M` is six windows per contract (a series of six tasks).
const MONTHLY: &str = "[limits]\n\"8 hours\" = \"1 M\"\n";

const HOURS_1M: &str = r#"[[phase]]
name = "hours"
bars = [{ size = "8 hours", duration = "1 M" }]
"#;

const HOURS_6M: &str = r#"[[phase]]
name = "hours"
bars = [{ size = "8 hours", duration = "6 M" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lengthening_a_cell_fetches_the_new_sessions() {
    let Fixture {
        sim,
        market,
        syms,
        ws,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(LONG_LISTED)
        .build()
        .await;
    let port = sim.addr().port();
    let short = plan_with_limits(&ws, "short", &syms, port, MONTHLY, HOURS_1M);
    let (code, err) = execute(&ws, &short, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let long = plan_with_limits(&ws, "long", &syms, port, MONTHLY, HOURS_6M);
    let (code, _) = verify(&ws, &long, &[]).await;
    assert_eq!(
        code,
        Some(1),
        "five months are missing before the longer run"
    );
    let before = sim.historical_log().len();
    let (code, err) = execute(&ws, &long, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        sim.historical_log().len() > before,
        "the new months were requested"
    );
    let (code, out) = verify(&ws, &long, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let clean = clean_lake(&market, &syms, port, MONTHLY, HOURS_6M).await;
    assert_same_lake(&read_lake(&ws.root), &clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phases_writing_one_file_keep_the_union_of_their_windows() {
    let Fixture {
        sim,
        market,
        syms,
        ws,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(LONG_LISTED)
        .build()
        .await;
    let port = sim.addr().port();
    // Two independent phases (no depends-on): both write every contract's 8_hours file.
    let phases = format!(
        "{HOURS_6M}\n[[phase]]\nname = \"recent\"\nbars = [{{ size = \"8 hours\", duration = \"1 M\" }}]\n"
    );
    let plan = plan_with_limits(&ws, "two", &syms, port, MONTHLY, &phases);
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let recs = latest(&ws.summaries());
    assert!(
        recs.values()
            .all(|r| r.status != "OK" || r.bars_written > 0 || r.bars == 0 || r.phase == "recent"),
        "an OK task of the long phase wrote nothing"
    );
    let (code, out) = verify(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let clean = clean_lake(&market, &syms, port, MONTHLY, HOURS_6M).await;
    assert_same_lake(&read_lake(&ws.root), &clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_inside_a_series_are_refetched_by_a_plain_rerun() {
    // A gateway that leaves a third of the requests unanswered: windows in the middle of a
    // series time out while later windows of the same file succeed.
    let spec = PlanSpec::new("p", HOURS_6M).limits(MONTHLY);
    let Fixture {
        sim: _hung,
        market,
        syms,
        ws,
        plan,
        ..
    } = Fixture::builder()
        .scenario(|s| s.faults.hang_fraction = 0.35)
        .symbols(2)
        .caches(LONG_LISTED)
        .plan(spec.clone().fast_fail())
        .build()
        .await;
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(1), "some tasks time out: {err}");
    let timed_out = latest(&ws.summaries())
        .values()
        .filter(|r| r.status == "TIMEOUT")
        .count();
    assert!(timed_out > 0);
    let (code, out) = verify(&ws, &plan, &[]).await;
    assert_eq!(code, Some(1), "verify sees the holes: {out}");
    assert!(out.contains("INCOMPLETE"), "{out}");
    // The same plan against a healthy gateway (same market): a plain run repairs everything.
    let good = sim("fast", |_| {}).await;
    let port = good.addr().port();
    let plan = ws.write_plan(&spec, &syms, port);
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, out) = verify(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let clean = clean_lake(&market, &syms, port, MONTHLY, HOURS_6M).await;
    assert_same_lake(&read_lake(&ws.root), &clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_incremental_keeps_every_window_of_a_split_cell() {
    let Fixture {
        sim, market, syms, ..
    } = Fixture::builder().symbols(1).build().await;
    let port = sim.addr().port();
    let clean = clean_lake(&market, &syms, port, MONTHLY, HOURS_6M).await;
    for resume in [true, false] {
        let ws = Workspace::new();
        ws.write_caches(&market, &syms, LONG_LISTED);
        let plan = plan_with_limits(&ws, "p", &syms, port, MONTHLY, HOURS_6M);
        let (code, err) = execute(&ws, &plan, &[]).await;
        assert_eq!(code, Some(0), "{err}");
        let mut flags = vec!["--no-incremental"];
        if !resume {
            flags.push("--no-resume");
        }
        let (code, err) = execute(&ws, &plan, &flags).await;
        assert_eq!(code, Some(0), "{err}");
        assert_same_lake(&read_lake(&ws.root), &clean);
        let (code, out) = verify(&ws, &plan, &[]).await;
        assert_eq!(code, Some(0), "resume={resume}: {out}");
    }
}

/// Rewrite a bar file as another tool would: no coverage record, `ts` in microseconds, and
/// optionally without the rows of one session.
fn rewrite_foreign(path: &Path, drop_session: Option<chrono::NaiveDate>) {
    use polars::prelude::*;
    let mut df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    if let Some(day) = drop_session {
        let keep: Vec<bool> = read_bars(path)
            .unwrap()
            .unwrap()
            .iter()
            .map(|r| opt_backfill::calendar::to_ny(r.bar.ts).date_naive() != day)
            .collect();
        df = df
            .filter(&BooleanChunked::from_slice("keep".into(), &keep))
            .unwrap();
    }
    let us = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    let ts = df.column("ts").unwrap().cast(&us).unwrap();
    df.with_column(ts).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_holes_and_a_plain_run_repairs_them() {
    let Fixture {
        sim,
        market,
        syms,
        ws,
        ..
    } = Fixture::builder()
        .symbols(2)
        .caches(LONG_LISTED)
        .build()
        .await;
    let port = sim.addr().port();
    let plan = plan_with_limits(&ws, "p", &syms, port, MONTHLY, HOURS_6M);
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, out) = verify(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let files: Vec<PathBuf> = read_lake(&ws.root)
        .keys()
        .map(|f| {
            ws.root
                .join("data_test/raw/ib/historical_bars_test")
                .join(f)
        })
        .collect();
    assert!(files.len() >= 3, "{} files", files.len());
    // A hole: one session's bars gone, the file rewritten by "pandas" (µs, no record).
    let holed = &files[0];
    let day = read_bars(holed).unwrap().unwrap()[3].bar.ts;
    let day = opt_backfill::calendar::to_ny(day).date_naive();
    rewrite_foreign(holed, Some(day));
    // A file rewritten with µs timestamps but nothing lost.
    rewrite_foreign(&files[1], None);
    // A file whose summary says OK, deleted.
    std::fs::remove_file(&files[2]).unwrap();
    let rerun = ws.root.join("repair.csv");
    let (code, out) = verify(&ws, &plan, &["--rerun", rerun.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("missing"), "{out}");
    assert!(
        out.contains(&files[2].display().to_string()),
        "the deleted file is named: {out}"
    );
    let csv = std::fs::read_to_string(&rerun).unwrap();
    let con_id = |p: &Path| {
        p.parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    for f in [&files[0], &files[2]] {
        assert!(
            csv.contains(&format!(",{},", con_id(f))),
            "{} not in {csv}",
            f.display()
        );
    }
    let before = sim.historical_log().len();
    let (code, err) = execute(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let sent: Vec<_> = sim.historical_log()[before..].to_vec();
    assert!(
        sent.iter().any(|r| r.duration == "1 D"),
        "the hole is one session: {:?}",
        sent.iter().map(|r| &r.duration).collect::<Vec<_>>()
    );
    let (code, out) = verify(&ws, &plan, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let clean = clean_lake(&market, &syms, port, MONTHLY, HOURS_6M).await;
    assert_same_lake(&read_lake(&ws.root), &clean);
}
