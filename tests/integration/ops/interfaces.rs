//! What scripts and orchestrators rely on: closed sets checked by clap, environment
//! variables, `plan --json` and its exit code for a non-empty diff, completions and man page.

use super::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_repo(a: &[&str]) -> Output {
    run_env(&args(a), &repo(), &[])
}

#[test]
fn a_misspelt_status_exits_2_naming_the_legal_values() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("r.csv");
    let out = run_repo(&[
        "rerun",
        dir.path().to_str().unwrap(),
        "--status",
        "TIMOUT",
        "-o",
        out_csv.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("TIMOUT"), "{err}");
    for legal in ["TIMEOUT", "QUARANTINED", "UP_TO_DATE", "PACING"] {
        assert!(err.contains(legal), "{legal}: {err}");
    }
    assert!(!out_csv.exists(), "no header-only CSV");
    // A misspelt preset and log format too.
    let out = run_repo(&["sim", "--preset", "realstic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("realistic"), "{}", stderr(&out));
    let out = run_repo(&["report", ".", "--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("json"), "{}", stderr(&out));
}

#[test]
fn environment_variables_are_shown_in_help_and_used() {
    let out = run_repo(&["execute", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for v in [
        "OPT_BACKFILL_GATEWAY",
        "OPT_BACKFILL_CLIENT_ID",
        "OPT_BACKFILL_STATE_ROOT",
        "OPT_BACKFILL_OUTPUT_ROOT",
    ] {
        assert!(help.contains(v), "{v} not in help:\n{help}");
    }
    // The variable is read: a bad value is reported as the option's.
    let out = run_env(
        &args(&["execute", "examples/fixtures/small.toml"]),
        &repo(),
        &[("OPT_BACKFILL_CLIENT_ID", "seventeen")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--client-id"), "{}", stderr(&out));
}

#[test]
fn plan_json_is_one_document_and_a_diff_can_set_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let out = run_repo(&[
        "plan",
        "examples/fixtures/small.toml",
        "--batch-count",
        "2",
        "--batch-index",
        "0",
        "--out",
        old.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["manifest_path"].as_str(), old.to_str());
    assert_eq!(doc["batch"]["count"], 2);
    // Against the full plan: a non-empty diff, exit 5 only when asked for.
    let full = |extra: &[&str]| {
        let mut a = vec![
            "plan",
            "examples/fixtures/small.toml",
            "--dry-run",
            "--json",
            "--diff",
            old.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        run_repo(&a)
    };
    let out = full(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert!(doc.get("manifest_path").is_none(), "dry run writes nothing");
    let rows = doc["cells"].as_array().unwrap();
    let sum: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, doc["totals"]["requests"].as_u64().unwrap());
    assert_eq!(doc["diff"]["empty"], false);
    assert!(doc["diff"]["added"].as_u64().unwrap() > 0, "{doc}");
    let out = full(&["--exit-code-on-diff"]);
    assert_eq!(out.status.code(), Some(opt_backfill::exit::DIFF_NOT_EMPTY));
    // Against itself: empty, exit 0.
    let same = dir.path().join("same.json");
    let out = run_repo(&[
        "plan",
        "examples/fixtures/small.toml",
        "--out",
        same.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = run_repo(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--diff",
        same.to_str().unwrap(),
        "--exit-code-on-diff",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run_repo(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("execute") && text.contains("log-format"),
            "{shell}"
        );
    }
    let out = run_repo(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(".ie") || text.contains(".TH opt-backfill"),
        "{text}"
    );
}
