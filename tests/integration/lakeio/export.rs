//! `lake export`: the dataset holds exactly the bars of the source files, sorted per partition;
//! a re-run rewrites only changed partitions; a kill -9 never leaves part of a partition.

use super::*;
use opt_backfill::lake::export::part_files;
use opt_backfill::store::parquet::read_bars;
use polars::prelude::*;
use std::collections::BTreeMap;

/// (conid, ts ms) -> close, per (bar size, what, symbol), from the bar files.
type Bars = BTreeMap<(String, String, String), BTreeMap<(i64, i64), f64>>;

fn source_bars(scope: &Path) -> Bars {
    let mut out = Bars::new();
    for f in bar_files(scope) {
        let rel = f
            .strip_prefix(scope)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let p: Vec<&str> = rel.split('/').collect();
        let key = (
            p[3].trim_end_matches(".parquet").replace('_', " "),
            p[2].to_string(),
            p[0].to_string(),
        );
        let conid: i64 = p[1].parse().unwrap();
        let e = out.entry(key).or_default();
        for b in read_bars(&f).unwrap().unwrap() {
            e.insert((conid, b.bar.ts.timestamp_millis()), b.bar.close);
        }
    }
    out
}

fn decode(v: &str) -> String {
    v.replace("%20", " ")
}

/// The dataset's bars, checking each partition's sort order and that partition columns are
/// directories only.
fn export_bars(to: &Path) -> Bars {
    let mut out = Bars::new();
    for part in part_files(to) {
        let rel = part
            .strip_prefix(to)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let kv: Vec<String> = rel
            .split('/')
            .take(3)
            .map(|s| decode(s.split_once('=').unwrap().1))
            .collect();
        let df = ParquetReader::new(std::fs::File::open(&part).unwrap())
            .finish()
            .unwrap();
        for c in ["bar_size", "what_to_show", "symbol"] {
            assert!(df.column(c).is_err(), "{c} is a directory, not a column");
        }
        let ts = df.column("ts").unwrap().to_physical_repr();
        let ts = ts.i64().unwrap();
        let con = df.column("conid").unwrap().i64().unwrap().clone();
        let exp = df.column("expiry").unwrap().to_physical_repr();
        let exp = exp.i32().unwrap();
        let strike = df.column("strike").unwrap().f64().unwrap().clone();
        let right = df.column("right").unwrap().str().unwrap().clone();
        let close = df.column("close").unwrap().f64().unwrap().clone();
        let e = out
            .entry((kv[0].clone(), kv[1].clone(), kv[2].clone()))
            .or_default();
        let mut prev: Option<(i32, f64, String, i64)> = None;
        for i in 0..df.height() {
            let k = (
                exp.get(i).unwrap(),
                strike.get(i).unwrap(),
                right.get(i).unwrap().to_string(),
                ts.get(i).unwrap(),
            );
            if let Some(p) = &prev {
                assert!(
                    p.partial_cmp(&k).unwrap().is_le(),
                    "{rel}: sorted at row {i}"
                );
            }
            prev = Some(k);
            let dup = e.insert(
                (con.get(i).unwrap(), ts.get(i).unwrap()),
                close.get(i).unwrap(),
            );
            assert!(dup.is_none(), "{rel}: one row per bar");
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_the_source_bars_and_rewrites_only_changed_partitions() {
    let lake = lake(2).await;
    let to = lake.ws.root.join("dataset");
    let (scope, dest) = (lake.scope.display().to_string(), to.display().to_string());
    let args = ["lake", "export", scope.as_str(), "--to", dest.as_str()];
    let first = stdout_of(&run_cli(&args, &lake.ws.root));
    let want = source_bars(&lake.scope);
    assert!(want.len() >= 2, "two partitions at least: {want:?}");
    assert_eq!(export_bars(&to), want, "{first}");
    let again = stdout_of(&run_cli(&args, &lake.ws.root));
    assert!(again.contains("(0 written"), "{again}");
    // One symbol loses a contract: its partition alone is rewritten, without those bars.
    let victim = bar_files(&lake.scope).pop().unwrap();
    std::fs::remove_file(&victim).unwrap();
    let third = stdout_of(&run_cli(&args, &lake.ws.root));
    assert!(third.contains("(1 written"), "{third}");
    assert_eq!(export_bars(&to), source_bars(&lake.scope));
}

/// Part files visible to a `**/*.parquet` glob (what DuckDB and polars read).
fn visible_parts(to: &Path) -> Vec<PathBuf> {
    if !to.exists() {
        return Vec::new();
    }
    bar_files(to)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/."))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_export_or_index_leaves_no_half_partition() {
    let lake = lake(3).await;
    let to = lake.ws.root.join("dataset");
    let (scope, dest) = (lake.scope.display().to_string(), to.display().to_string());
    let bin = env!("CARGO_BIN_EXE_opt-backfill");
    let mut killed = 0;
    for delay_ms in [5u64, 15, 30, 50, 80, 120, 200, 400] {
        // Each round starts from a fresh dataset and index, so every kill lands in a full run.
        let _ = std::fs::remove_dir_all(&to);
        let _ = std::fs::remove_file(lake.scope.join("_index.parquet"));
        for args in [
            vec!["lake", "export", scope.as_str(), "--to", dest.as_str()],
            vec!["lake", "index", scope.as_str()],
        ] {
            let mut child = std::process::Command::new(bin)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            if child.try_wait().unwrap().is_none() {
                killed += 1;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
        // Whatever is visible is whole: every part file reads, with every bar of its partition.
        let want = source_bars(&lake.scope);
        for part in visible_parts(&to) {
            let df = ParquetReader::new(std::fs::File::open(&part).unwrap())
                .finish()
                .unwrap_or_else(|e| panic!("{}: half written? {e}", part.display()));
            let rel = part
                .strip_prefix(&to)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kv: Vec<String> = rel
                .split('/')
                .take(3)
                .map(|s| decode(s.split_once('=').unwrap().1))
                .collect();
            let n = want[&(kv[0].clone(), kv[1].clone(), kv[2].clone())].len();
            assert_eq!(
                df.height(),
                n,
                "{rel}: a whole partition (delay {delay_ms} ms)"
            );
        }
        if lake.scope.join("_index.parquet").exists() {
            super::index::assert_index_matches(&lake.scope);
        }
    }
    assert!(killed > 0, "at least one run was killed mid-way");
    // A run after the kills completes the dataset and the index.
    let args = ["lake", "export", scope.as_str(), "--to", dest.as_str()];
    stdout_of(&run_cli(&args, &lake.ws.root));
    assert_eq!(export_bars(&to), source_bars(&lake.scope));
    stdout_of(&run_cli(&["lake", "index", &scope], &lake.ws.root));
    super::index::assert_index_matches(&lake.scope);
}
