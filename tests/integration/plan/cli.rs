//! The `plan` command end to end: pinned dry-run output, `--dry-run` writes nothing, `--out`
//! writes the library's bytes, `--diff` against an earlier shard.

use super::{run, text};

#[test]
fn dry_run_output_is_pinned_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("m.json");
    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--by-symbol",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!out_path.exists(), "--dry-run wrote the manifest");
    insta::assert_snapshot!("small_dry_run", stdout);
}

#[test]
fn yaml_dry_run_matches_toml() {
    let t = run(&["plan", "examples/fixtures/small.toml", "--dry-run"]);
    let y = run(&["plan", "examples/fixtures/small.yaml", "--dry-run"]);
    assert_eq!(t.status.code(), Some(0));
    assert_eq!(t.stdout, y.stdout);
}

#[test]
fn out_writes_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("m.json");
    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("manifest written:"), "{stdout}");
    let m = opt_backfill::compile::compile(
        &super::load("examples/fixtures/small.toml"),
        &super::opts(),
    )
    .unwrap()
    .manifest;
    assert_eq!(std::fs::read(&out_path).unwrap(), m.to_bytes());
}

#[test]
fn diff_against_an_earlier_shard() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--batch-count",
        "2",
        "--batch-index",
        "0",
        "--out",
        old.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--diff",
        old.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let changes = stdout
        .split_once("changes since ")
        .map(|(_, c)| c.split_once('\n').map(|x| x.1).unwrap_or(""))
        .unwrap_or("");
    insta::assert_snapshot!("small_diff_vs_shard", changes);
}

#[test]
fn now_override_from_env() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(["plan", "plans/weekend.toml", "--dry-run"])
        .current_dir(super::repo())
        .env("OPT_BACKFILL_NOW", "not a time")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPT_BACKFILL_NOW"));
}

#[test]
fn diff_against_a_version_1_manifest() {
    // A manifest written before the limit tables (format 1, split with the strict table).
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let m = opt_backfill::compile::compile(
        &super::load("examples/fixtures/small.toml"),
        &super::opts(),
    )
    .unwrap()
    .manifest;
    let mut v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("format_version".into(), 1.into());
    for k in ["limit_table", "limit_table_origin", "effective_limits"] {
        o.remove(k);
    }
    std::fs::write(&old, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--diff",
        old.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("limits: observed (plan default), overrides: 1 min = 1 D"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "~ limits: strict, overrides: 1 min = 1 D -> observed, overrides: 1 min = 1 D"
        ),
        "{stdout}"
    );
}
