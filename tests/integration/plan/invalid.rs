//! Every invalid plan fixture fails with located errors and exit code 2, never a panic; the
//! exact messages are pinned by snapshots.

use super::{run, text};

/// Each fixture and a fragment every run must print (file:line:col and key path).
const FIXTURES: &[(&str, &[&str])] = &[
    (
        "bad_bar_size.toml",
        &["bad_bar_size.toml:12:18: phase[0].bars[0].size: illegal bar size `30 min`", "did you mean `30 mins`?"],
    ),
    ("bad_duration.toml", &["bad_duration.toml:12:40: phase[0].bars[0].duration: bad duration `6M`", "did you mean `6 M`?"]),
    ("unknown_depends_on.toml", &["phase[1].depends-on[0]: unknown phase `hour`", "did you mean `hours`?"]),
    ("cycle.toml", &["phase[0].depends-on[0]: dependency cycle: a -> b -> c -> a", "phase `d` depends on itself"]),
    (
        "near_atm_range.toml",
        &["phase[0].select.near-atm.strikes: 0 is out of range", "phase[0].select.near-atm.expiries: 99 is out of range"],
    ),
    ("batch_index.toml", &["batch_index.toml:12:15: batching.batch-index: batch index 2 is out of range"]),
    ("unknown_key.toml", &["unknown_key.toml:2:1: nmae: unknown key `nmae`", "phase[0].use_rth: unknown key `use_rth` (hint: did you mean `use-rth`?)"]),
    ("bad_symbols.toml", &["universe.symbols[1]: symbol `../x` is not allowed", "universe.symbols[2]: symbol `A/B` is not allowed"]),
    ("bad_values.toml", &["time-zone: unknown time zone", "options have no `1 day` bars"]),
    ("syntax_error.toml", &["syntax_error.toml:3:9: TOML syntax error"]),
    ("many_errors.yaml", &["many_errors.yaml:11:17: phase[0].bars[0].size: illegal bar size `8 hour`", "many_errors.yaml:16:19: phase[1].bars[0].duration"]),
    ("corrupt_cache.toml", &["bad_caches/corrupt/AAPL_2026-11-27.json:29:17: not a valid contracts cache"]),
    ("schema_cache.toml", &["bad_caches/schema/AAPL_2026-11-27.json:52:21: not a valid contracts cache: invalid type: string \"230\", expected f64"]),
    (
        "bad_snapshot.toml",
        &["bad_snapshot/closes.csv:3:1: reference-snapshot: symbol `A/B` is not allowed", "closes.csv:4:6: reference-snapshot: bad date `2026-13-01`", "closes.csv:5:16: reference-snapshot: bad close `-3`", "closes.csv:6:1: reference-snapshot: duplicate row", "closes.csv:7:1: reference-snapshot: expected 3 fields"],
    ),
    ("duplicate_key.yaml", &["duplicate_key.yaml:3:1: YAML syntax error: duplicate mapping key: name"]),
    (
        "missing_symbols_file.toml",
        &["missing_symbols_file.toml:7:16: universe.symbols-file: cannot read `examples/fixtures/invalid/no_such_universe.csv`"],
    ),
    ("mismatch_cache.toml", &["bad_caches/mismatch/AAPL_2026-11-27.json:1:1: not a valid contracts cache: underlying.symbol `MSFT`"]),
    (
        "use_rth_conflict.toml",
        &["use_rth_conflict.toml:17:1: phase[1].use-rth: phase `extended` (use-rth = false) and phase `hours` (use-rth = true) write the same TRADES `8 hours` files", "give both phases the same `use-rth`"],
    ),
    ("bad_limit_table.toml", &["bad_limit_table.toml:5:10: limits: unknown limit table `lenient`", "`strict` (the older TWS API table"]),
    (
        "bad_limits.yaml",
        &["bad_limits.yaml:9:9: limits.base: unknown limit table `strickt` (hint: did you mean `strict`?", "bad_limits.yaml:10:3: limits.bsae: unknown key `bsae` (hint: did you mean `base`?"],
    ),
];

#[test]
fn every_invalid_fixture_fails_located_with_exit_2() {
    let dir = super::repo().join("examples/fixtures/invalid");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every fixture in examples/fixtures/invalid is listed here"
    );

    for (file, fragments) in FIXTURES {
        let path = format!("examples/fixtures/invalid/{file}");
        let out = run(&["plan", &path, "--dry-run"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: exit code\n{stderr}");
        assert!(!stderr.contains("panicked"), "{file} panicked:\n{stderr}");
        assert!(
            stdout.is_empty(),
            "{file}: nothing on stdout, got\n{stdout}"
        );
        for f in *fragments {
            assert!(stderr.contains(f), "{file}: expected `{f}` in\n{stderr}");
        }
        // Every error line is located: FILE:LINE:COL:.
        for line in stderr.lines().filter(|l| !l.starts_with("error:")) {
            let mut parts = line.splitn(4, ':');
            let (_, l, c) = (parts.next(), parts.next(), parts.next());
            assert!(
                l.is_some_and(|x| x.parse::<u32>().is_ok())
                    && c.is_some_and(|x| x.parse::<u32>().is_ok()),
                "{file}: unlocated line `{line}`"
            );
        }
        insta::assert_snapshot!(format!("invalid__{}", file.replace('.', "_")), stderr);
    }
}

#[test]
fn command_line_errors_exit_2() {
    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--batch-count",
        "2",
        "--batch-index",
        "5",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("batch index 5 is out of range for batch count 2"),
        "{stderr}"
    );

    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--now",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["plan", "examples/fixtures/missing.toml", "--dry-run"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.starts_with("examples/fixtures/missing.toml:1:1: cannot read the plan"),
        "{stderr}"
    );

    let out = run(&["plan", "README.md", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&[
        "plan",
        "examples/fixtures/small.toml",
        "--dry-run",
        "--diff",
        "examples/fixtures/universe.csv",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("universe.csv:1:1: not a valid manifest"),
        "{stderr}"
    );
}

#[test]
fn garbage_never_panics() {
    use opt_backfill::plan::{load_str, Format};
    let samples = [
        "", "\u{0}", "[[phase]]", "phase = 3", "name = 1\nscope = []\nend = {}\nuniverse = 2\nphase = [1, \"x\", {}]",
        "[universe]\nsymbols = [[], {}, 1.5]\n[[phase]]\nbars = [1, {size = 2, duration = true}]\nselect = {near-atm = 3}\ndepends-on = [1]",
        "[limits]\n\"x\" = 1\n\"8 hours\" = \"99999999999 D\"",
        "end = 9999-12-31\n",
    ];
    for s in samples {
        for f in [Format::Toml, Format::Yaml] {
            let r = load_str(s, std::path::Path::new("x"), f);
            assert!(r.is_err(), "{s:?} should be rejected");
        }
    }
    let yaml = [
        "- 1\n- 2",
        "a: [",
        "name: *x",
        "&a [*a]",
        "? [1]\n: 2",
        "x: !!binary aGk=",
        "phase: ~",
    ];
    for s in yaml {
        assert!(load_str(s, std::path::Path::new("x.yaml"), Format::Yaml).is_err());
    }
}

mod fuzz {
    use opt_backfill::plan::{load_str, Format};
    use proptest::prelude::*;

    /// Plan-shaped text: real keys and values in random order and nesting.
    fn plan_like() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            Just("name = \"x\"".to_string()),
            Just("scope = \"s\"".to_string()),
            Just("end = \"2026-11-27\"".to_string()),
            Just("end = \"last-session\"".to_string()),
            Just("[universe]".to_string()),
            Just("symbols = [\"AAPL\", \"../x\"]".to_string()),
            Just("contracts-cache = \"examples/fixtures/contracts_cache\"".to_string()),
            Just("[[phase]]".to_string()),
            Just("[limits]".to_string()),
            Just("base = \"strict\"".to_string()),
            Just("limits = \"observed\"".to_string()),
            Just("\"8 hours\" = \"6 M\"".to_string()),
            Just("bars = [{ size = \"8 hours\", duration = \"6 M\" }]".to_string()),
            Just("select = { near-atm = { strikes = 3, expiries = 2 } }".to_string()),
            Just("depends-on = [\"x\"]".to_string()),
            Just("[batching]".to_string()),
            Just("batch-count = 0".to_string()),
            "[a-z-]{1,12} = [0-9]{1,3}".prop_map(|s| s),
            "\\PC{0,20}".prop_map(|s| s),
        ];
        proptest::collection::vec(line, 0..20).prop_map(|v| v.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = load_str(&s, std::path::Path::new("fuzz.toml"), Format::Toml);
            let _ = load_str(&s, std::path::Path::new("fuzz.yaml"), Format::Yaml);
        }

        #[test]
        fn plan_shaped_text_never_panics_and_errors_are_located(s in plan_like()) {
            if let Err(errs) = load_str(&s, std::path::Path::new("fuzz.toml"), Format::Toml) {
                prop_assert!(!errs.is_empty());
                for e in &errs.0 {
                    prop_assert!(e.line >= 1 && e.col >= 1);
                }
            }
        }
    }
}
