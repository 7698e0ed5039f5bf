//! The command line reads close snapshots, symbols files and durations through the same parsers
//! as the plan: the same file is refused with the same located errors and exit code 2, before
//! any gateway is contacted.

use super::{run, text};

#[test]
fn execute_closes_flag_reports_every_bad_line_like_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().display().to_string();
    let out = run(&[
        "execute",
        "examples/fixtures/small.toml",
        "--closes",
        "examples/fixtures/bad_snapshot/closes.csv",
        "--state-root",
        &state,
        "--output-root",
        &state,
        "--gateway",
        "127.0.0.1:1",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for fragment in [
        "bad_snapshot/closes.csv:3:1: symbol `A/B` is not allowed",
        "bad_snapshot/closes.csv:4:6: bad date `2026-13-01`",
        "bad_snapshot/closes.csv:5:16: bad close `-3`",
        "bad_snapshot/closes.csv:6:1: duplicate row for AAPL on 2026-11-27",
        "bad_snapshot/closes.csv:7:1: expected 3 fields, found 2",
    ] {
        assert!(
            stderr.contains(fragment),
            "expected `{fragment}` in\n{stderr}"
        );
    }
}

#[test]
fn discover_universe_and_duration_flags_follow_the_plan_rules() {
    let dir = tempfile::tempdir().unwrap();
    let universe = dir.path().join("u.csv");
    std::fs::write(
        &universe,
        "name,symbol\nApple,AAPL\nSPY again,SPY\nApple,AAPL\n",
    )
    .unwrap();
    let out = run(&[
        "discover",
        "--universe",
        &universe.display().to_string(),
        "--gateway",
        "127.0.0.1:1",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("u.csv:4:7: duplicate symbol `AAPL` (first on line 2)"),
        "{stderr}"
    );

    let out = run(&[
        "execute",
        "examples/fixtures/small.toml",
        "--request-timeout",
        "30",
        "--gateway",
        "127.0.0.1:1",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--request-timeout: bad duration `30`"),
        "{stderr}"
    );
}
