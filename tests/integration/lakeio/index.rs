//! `lake index` and the index `execute` refreshes: one row per bar file, matching the file.

use super::*;
use opt_backfill::lake::index::{load, IndexRow};
use opt_backfill::store::coverage::Answer;
use opt_backfill::store::parquet::{read_bars, read_file};
use polars::prelude::*;

/// The index row of every bar file matches the file's content.
pub fn assert_index_matches(scope: &Path) -> Vec<IndexRow> {
    let rows = load(scope).unwrap().expect("an index");
    let files = bar_files(scope);
    let indexed: Vec<PathBuf> = rows.iter().map(|r| scope.join(&r.path)).collect();
    assert_eq!(indexed, files, "one row per bar file");
    for r in &rows {
        let path = scope.join(&r.path);
        let bars = read_bars(&path).unwrap().unwrap();
        assert_eq!(r.rows, bars.len() as u64, "{}", r.path);
        let first = bars.iter().map(|b| b.bar.ts.timestamp_millis()).min();
        let last = bars.iter().map(|b| b.bar.ts.timestamp_millis()).max();
        assert_eq!((r.first_ts, r.last_ts), (first, last), "{}", r.path);
        let df = ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap();
        let s = |c: &str| {
            df.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .map(str::to_string)
        };
        assert_eq!(Some(r.symbol.clone()), s("symbol"));
        assert_eq!(r.local_symbol, s("local_symbol"), "{}", r.path);
        assert_eq!(r.trading_class, s("trading_class"));
        assert_eq!(Some(r.bar_size.clone()), s("bar_size"));
        assert_eq!(
            Some(r.conid),
            df.column("conid").unwrap().i64().unwrap().get(0)
        );
        let file = read_file(&path).unwrap().unwrap();
        let with_bars = file.coverage.as_ref().map(|c| {
            c.sessions()
                .filter(|(_, cv)| cv.answer == Answer::Bars)
                .count() as u32
        });
        assert_eq!(r.sessions_with_bars, with_bars, "{}: coverage", r.path);
        assert_eq!(r.format_version, file.provenance.format_version);
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_refreshes_the_index_and_lake_index_rereads_only_changed_files() {
    let lake = lake(2).await;
    // `execute` wrote the index for the files of its tasks.
    let rows = assert_index_matches(&lake.scope);
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.format_version == 2 && r.sessions_with_bars > Some(0)),
        "{rows:?}"
    );
    let scope = lake.scope.display().to_string();
    let text = stdout_of(&run_cli(&["lake", "index", &scope], &lake.ws.root));
    assert!(
        text.contains("(0 read, 0 removed"),
        "unchanged lake: {text}"
    );
    // A file gone and a file rewritten (one bar dropped): one row removed, one re-read.
    let gone = lake.scope.join(&rows[0].path);
    std::fs::remove_file(&gone).unwrap();
    let changed = lake.scope.join(&rows[1].path);
    let bars = read_bars(&changed).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let df_path = changed.clone();
    let mut df = ParquetReader::new(std::fs::File::open(&df_path).unwrap())
        .finish()
        .unwrap();
    df = df.slice(1, df.height() - 1);
    ParquetWriter::new(std::fs::File::create(&changed).unwrap())
        .finish(&mut df)
        .unwrap();
    let text = stdout_of(&run_cli(&["lake", "index", &scope], &lake.ws.root));
    assert!(text.contains("(1 read, 1 removed"), "{text}");
    let rows2 = assert_index_matches(&lake.scope);
    assert_eq!(rows2.len(), rows.len() - 1);
    let r = rows2.iter().find(|r| r.path == rows[1].path).unwrap();
    assert_eq!(r.rows, bars.len() as u64 - 1);
}

#[test]
fn a_directory_that_is_not_a_scope_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let missing = dir.path().join("historical_bars_x").display().to_string();
    let out_dir = dir.path().join("out").display().to_string();
    for args in [
        vec!["lake", "index", d.as_str()],
        vec!["lake", "export", d.as_str(), "--to", out_dir.as_str()],
        vec!["lake", "index", missing.as_str()],
    ] {
        let out = run_cli(&args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a scope directory"), "{err}");
        assert!(err.contains(args[2]), "names the directory: {err}");
    }
    assert!(!dir.path().join("out").exists(), "nothing written");
}
