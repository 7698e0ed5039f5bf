//! The compiler over the fixture universe: pinned manifest, determinism, TOML = YAML, sharding,
//! near-ATM counts and ids, graph shape, manifest round trip and diff.

use super::{load, opts};
use opt_backfill::cache::ContractsCache;
use opt_backfill::compile::{self, near_atm, CompileOptions, GraphNode, Manifest};
use opt_backfill::plan::{Batching, EndSpec};
use std::collections::BTreeSet;

fn small() -> compile::Compiled {
    compile::compile(&load("examples/fixtures/small.toml"), &opts()).unwrap()
}

#[test]
fn manifest_is_pinned() {
    let m = small().manifest;
    insta::assert_snapshot!("small_manifest", String::from_utf8(m.to_bytes()).unwrap());
}

#[test]
fn compiling_twice_is_byte_identical_and_toml_equals_yaml() {
    let a = small().manifest.to_bytes();
    let b = small().manifest.to_bytes();
    assert_eq!(a, b);
    let y = compile::compile(&load("examples/fixtures/small.yaml"), &opts())
        .unwrap()
        .manifest
        .to_bytes();
    assert_eq!(a, y, "the YAML twin compiles to the same manifest");
}

#[test]
fn shipped_weekend_plans_agree() {
    let mut t = load("plans/weekend.toml");
    let y = load("plans/weekend.yaml");
    t.path = y.path.clone();
    assert_eq!(t, y);
    assert_eq!(t.end, EndSpec::LastSession);
    // Both phases are one request per contract under the default (observed) table.
    assert_eq!(t.limits.base, opt_backfill::bars::LimitTable::Observed);
    for p in &t.phases {
        let cell = p.bars[0];
        assert!(
            t.limit(cell.size).approx_seconds() >= cell.duration.approx_seconds(),
            "{}: {} x {}",
            p.name,
            cell.size,
            cell.duration
        );
    }
}

#[test]
fn totals_and_expired() {
    let m = small().manifest;
    assert_eq!(m.missing_cache, vec!["ZZZ".to_string()]);
    assert_eq!(m.end.session.to_string(), "2026-11-27");
    assert!(m.end.half_day);
    assert_eq!(m.end.close.to_rfc3339(), "2026-11-27T18:00:00+00:00");
    // AAPL: newest cache (2026-11-27) is used, not 2026-11-20.
    let aapl = m.symbols.iter().find(|s| s.symbol == "AAPL").unwrap();
    assert_eq!(aapl.cache_as_of.to_string(), "2026-11-27");
    // No task for an expired contract, and expired ones are counted per phase and symbol.
    assert!(m.tasks.iter().all(|t| t.contract.expiry > m.end.session));
    assert!(m
        .expired
        .iter()
        .any(|e| e.phase == "hours" && e.symbol == "AAPL" && e.contracts == 20));
    assert_eq!(
        m.totals.requests,
        m.totals.tasks + m.totals.selection_requests
    );
    assert_eq!(m.totals.tasks, m.tasks.len() as u64);
    // Sorted: phase (plan order), symbol, conId, cell, window.
    let phase_pos = |p: &str| m.phases.iter().position(|x| x.name == p).unwrap();
    let keys: Vec<_> = m
        .tasks
        .iter()
        .map(|t| {
            (
                phase_pos(&t.phase),
                t.symbol.clone(),
                t.contract.con_id,
                t.bar_size,
                t.duration,
                t.window,
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let ids: BTreeSet<_> = m.tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids.len(), m.tasks.len(), "task ids are unique");
}

#[test]
fn near_atm_count_is_exact_and_ids_match_the_all_path() {
    let m = small().manifest;
    for sel in &m.selections {
        let cache: ContractsCache = serde_json::from_slice(
            &std::fs::read(format!(
                "examples/fixtures/contracts_cache/{}_2026-11-27.json",
                sel.symbol
            ))
            .unwrap(),
        )
        .unwrap();
        let close = cache.underlying.reference_close.unwrap();
        let windows: u64 = sel.cells.iter().map(|c| c.windows.len() as u64).sum();
        for probe in [close, close * 0.5, close * 2.0, 0.01] {
            // Selecting from the full cache or from the recorded candidates gives the same.
            let full = near_atm::select(
                &cache.contracts,
                probe,
                sel.window_end,
                sel.rule.strikes as usize,
                sel.rule.expiries as usize,
            );
            let cand = near_atm::select(
                &sel.candidates,
                probe,
                sel.window_end,
                sel.rule.strikes as usize,
                sel.rule.expiries as usize,
            );
            assert_eq!(full, cand);
            let tasks = near_atm::expand_selection(sel, &cand);
            assert_eq!(
                tasks.len() as u64,
                sel.requests,
                "{} at {probe}",
                sel.symbol
            );
            assert_eq!(cand.len() as u64 * windows, sel.requests);
        }
    }

    // The same contracts under an `all` phase get the same ids.
    let mut plan = load("examples/fixtures/small.toml");
    for p in &mut plan.phases {
        p.select = opt_backfill::plan::Select::All;
        p.depends_on.clear();
    }
    let all = compile::compile(&plan, &opts()).unwrap().manifest;
    let all_ids: BTreeSet<_> = all.tasks.iter().map(|t| t.id.clone()).collect();
    for sel in &m.selections {
        let chosen = near_atm::select(&sel.candidates, 100.0, sel.window_end, 2, 2);
        for t in near_atm::expand_selection(sel, &chosen) {
            assert!(all_ids.contains(&t.id), "{t:?}");
        }
    }
}

#[test]
fn graph_has_barriers_and_reference_closes() {
    let c = small();
    let g = &c.graph;
    let m = &c.manifest;
    assert_eq!(g.task_nodes.len(), m.tasks.len());
    assert_eq!(g.selection_nodes.len(), m.selections.len());
    let count = |f: &dyn Fn(&GraphNode) -> bool| g.graph.node_weights().filter(|n| f(n)).count();
    assert_eq!(count(&|n| matches!(n, GraphNode::ReferenceClose(_))), 3);
    // minutes and quotes depend on hours: one barrier per (dependency, symbol) and dependent.
    assert_eq!(count(&|n| matches!(n, GraphNode::Barrier { .. })), 2 * 3);
    // Linear edge count: every hours task feeds two barriers, every quotes task and selection
    // hangs off one barrier, every selection off its reference close.
    let hours = m.tasks.iter().filter(|t| &*t.phase == "hours").count();
    let quotes = m.tasks.iter().filter(|t| &*t.phase == "quotes").count();
    assert_eq!(
        g.graph.edge_count(),
        2 * hours + quotes + 2 * m.selections.len()
    );
    // Selections wait for their reference close and the hours barrier.
    for n in &g.selection_nodes {
        assert_eq!(g.in_degree(*n), 2);
    }
    assert!(petgraph::algo::toposort(&g.graph, None).is_ok());
}

#[test]
fn shards_partition_the_universe() {
    let plan = load("examples/fixtures/small.toml");
    let full = compile::compile(&plan, &opts()).unwrap().manifest;
    for count in 1..=4u32 {
        let mut symbols = Vec::new();
        let mut tasks = 0;
        for index in 0..count {
            let o = CompileOptions {
                batching: Some(Batching { count, index }),
                ..opts()
            };
            let m = compile::compile(&plan, &o).unwrap().manifest;
            symbols.extend(m.symbols.iter().map(|s| s.symbol.clone()));
            symbols.extend(m.missing_cache.iter().cloned());
            tasks += m.tasks.len();
        }
        symbols.sort();
        assert_eq!(symbols, vec!["AAPL", "MSFT", "SPY", "ZZZ"], "count {count}");
        assert_eq!(tasks, full.tasks.len());
    }
}

#[test]
fn last_session_resolves_from_now() {
    let mut plan = load("examples/fixtures/small.toml");
    plan.end = EndSpec::LastSession;
    let at = |s: &str| CompileOptions {
        now: Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()),
        ..opts()
    };
    // Saturday after Thanksgiving: the Friday half day.
    let m = compile::compile(&plan, &at("2026-11-28T15:00:00Z"))
        .unwrap()
        .manifest;
    assert_eq!(m.end.session.to_string(), "2026-11-27");
    assert_eq!(m.end.spec, "last-session");
    // Friday 12:00 New York: the half day is not complete yet, so Wednesday.
    let m = compile::compile(&plan, &at("2026-11-27T17:00:00Z"))
        .unwrap()
        .manifest;
    assert_eq!(m.end.session.to_string(), "2026-11-25");
}

#[test]
fn an_end_of_today_while_its_session_is_open_is_the_last_closed_session() {
    let plan = load("examples/fixtures/small.toml"); // end = 2026-11-27, the half day
    let at = |s: &str| CompileOptions {
        now: Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()),
        ..opts()
    };
    // Friday 12:00 New York: the half day is still open, so Wednesday, with a note.
    let c = compile::compile(&plan, &at("2026-11-27T17:00:00Z")).unwrap();
    assert_eq!(c.manifest.end.session.to_string(), "2026-11-25");
    assert_eq!(c.manifest.end.spec, "2026-11-27");
    let notes: Vec<_> = c.notes.iter().filter(|n| n.starts_with("note:")).collect();
    assert_eq!(notes.len(), 1, "{:?}", c.notes);
    assert!(notes[0].contains("still open") && notes[0].contains("2026-11-25"));
    // ... which names the explicit-instant form, at now.
    assert!(
        notes[0].contains("end = \"2026-11-27T12:00:00-05:00\""),
        "{}",
        notes[0]
    );
    // After the close: the day itself, no note.
    let c = compile::compile(&plan, &at("2026-11-27T18:30:00Z")).unwrap();
    assert_eq!(c.manifest.end.session.to_string(), "2026-11-27");
    assert!(c.notes.iter().all(|n| !n.starts_with("note:")));
}

#[test]
fn explicit_end_follows_the_nyse_calendar() {
    // Days the former calendar got wrong: Saturday holidays close the Friday before (but the
    // Monday after is open), and the national day of mourning 2025-01-09 is closed.
    let mut plan = load("examples/fixtures/small.toml");
    let date = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    for (end, session, half_day) in [
        ("2027-06-18", "2027-06-17", false),
        ("2027-06-21", "2027-06-21", false),
        ("2027-12-24", "2027-12-23", false),
        ("2027-12-27", "2027-12-27", false),
        ("2021-12-24", "2021-12-23", false),
        ("2022-01-03", "2022-01-03", false),
        ("2025-01-09", "2025-01-08", false),
        ("2026-11-27", "2026-11-27", true),
    ] {
        plan.end = EndSpec::Date(date(end));
        let m = compile::compile(&plan, &opts()).unwrap().manifest;
        assert_eq!(m.end.session.to_string(), session, "end = {end}");
        assert_eq!(m.end.half_day, half_day, "end = {end}");
    }
    // On Christmas Day 2027 the last complete session is Thursday 2027-12-23.
    plan.end = EndSpec::LastSession;
    let o = CompileOptions {
        now: Some(
            chrono::DateTime::parse_from_rfc3339("2027-12-25T15:00:00Z")
                .unwrap()
                .to_utc(),
        ),
        ..opts()
    };
    let m = compile::compile(&plan, &o).unwrap().manifest;
    assert_eq!(m.end.session.to_string(), "2027-12-23");
}

#[test]
fn manifest_round_trip_and_atomic_write() {
    let m = small().manifest;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/small.manifest.json");
    m.write_atomic(&path).unwrap();
    let back = Manifest::read(&path).unwrap();
    assert_eq!(back, m);
    assert_eq!(std::fs::read(&path).unwrap(), m.to_bytes());
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format_version\": 99}").unwrap();
    let e = Manifest::read(&bad).unwrap_err().to_string();
    assert!(
        e.contains("bad.json") && e.contains("format_version 99"),
        "{e}"
    );
    let e = Manifest::read(&dir.path().join("none.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.json"), "{e}");
}

#[test]
fn diff_reports_changes_per_phase_bar_and_symbol() {
    let plan = load("examples/fixtures/small.toml");
    let full = compile::compile(&plan, &opts()).unwrap().manifest;
    assert!(compile::diff::diff(&full, &full).is_empty());
    let mut later = plan.clone();
    later.end = EndSpec::Date(chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
    let new = compile::compile(&later, &opts()).unwrap().manifest;
    let d = compile::diff::diff(&full, &new);
    let text = compile::diff::render(&d);
    assert!(text.contains("~ end: 2026-11-27 -> 2026-12-04"), "{text}");
    assert!(text.contains("hours / 8 hours / AAPL"), "{text}");
    assert!(text.contains("Plan: "), "{text}");
}

#[test]
fn missing_cache_can_be_fatal() {
    let mut plan = load("examples/fixtures/small.toml");
    plan.universe.on_missing_cache = opt_backfill::plan::OnMissingCache::Fail;
    let e = compile::compile(&plan, &opts()).unwrap_err();
    assert!(matches!(e, compile::CompileError::Inputs(_)));
    let text = e.to_string();
    assert!(
        text.contains(
            "examples/fixtures/contracts_cache:1:1: no contracts cache `ZZZ_YYYY-MM-DD.json`"
        ),
        "{text}"
    );

    let mut plan = load("examples/fixtures/small.toml");
    plan.universe.contracts_cache = "examples/fixtures/nowhere".into();
    let text = compile::compile(&plan, &opts()).unwrap_err().to_string();
    assert!(
        text.contains("nowhere:1:1: cannot read the contracts cache directory"),
        "{text}"
    );
}

#[test]
fn oversized_plans_are_refused_before_allocating() {
    let mut plan = load("examples/fixtures/small.toml");
    // 1-second bars over six years: about 20,000 windows per contract, three times over.
    let cell = opt_backfill::plan::BarCell {
        size: opt_backfill::bars::BarSize::Secs1,
        duration: "6 Y".parse().unwrap(),
    };
    for p in &mut plan.phases {
        p.bars = vec![cell];
        p.select = opt_backfill::plan::Select::All;
    }
    let e = compile::compile(&plan, &opts()).unwrap_err();
    assert!(matches!(e, compile::CompileError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("--batch-count"));
}

/// Tasks per contract of the `hours` phase when it holds only `cell`, under `limits`.
fn requests_per_contract(limits: &str, size: &str, duration: &str) -> (usize, Manifest) {
    let mut plan = load("examples/fixtures/small.toml");
    plan.limits = match limits {
        "default" => Default::default(),
        name => opt_backfill::plan::PlanLimits {
            base: name.parse().unwrap(),
            origin: opt_backfill::plan::LimitOrigin::Plan,
            overrides: Default::default(),
        },
    };
    plan.phases.truncate(1);
    plan.phases[0].bars = vec![opt_backfill::plan::BarCell {
        size: size.parse().unwrap(),
        duration: duration.parse().unwrap(),
    }];
    let m = compile::compile(&plan, &opts()).unwrap().manifest;
    let contracts: BTreeSet<i64> = m.tasks.iter().map(|t| t.contract.con_id).collect();
    assert!(!contracts.is_empty());
    assert_eq!(m.tasks.len() % contracts.len(), 0);
    (m.tasks.len() / contracts.len(), m)
}

#[test]
fn observed_table_is_the_default() {
    // One request per contract where the strict table sends 22 (one per session) or 6.
    let (n, m) = requests_per_contract("default", "1 min", "1 M");
    assert_eq!(n, 1);
    assert_eq!(m.limit_table, opt_backfill::bars::LimitTable::Observed);
    assert_eq!(
        m.limit_table_origin,
        opt_backfill::plan::LimitOrigin::Default
    );
    assert_eq!(m.effective_limits["1 min"], "1 M");
    assert_eq!(m.phases[0].cells[0].limit.to_string(), "1 M");
    let (n, m) = requests_per_contract("default", "8 hours", "6 M");
    assert_eq!(n, 1);
    assert_eq!(m.effective_limits["8 hours"], "1 Y");
    assert_eq!(requests_per_contract("observed", "8 hours", "6 M").0, 1);
    // Past the observed limit the cell is still split: 1 min x 3 M is three monthly windows.
    assert_eq!(requests_per_contract("default", "1 min", "3 M").0, 3);
}

#[test]
fn strict_table_splits_as_before() {
    let (n, m) = requests_per_contract("strict", "1 min", "1 M");
    assert_eq!(n, 22, "one 1 D window per session of the month");
    assert_eq!(m.limit_table, opt_backfill::bars::LimitTable::Strict);
    assert_eq!(m.limit_table_origin, opt_backfill::plan::LimitOrigin::Plan);
    assert_eq!(m.effective_limits["1 min"], "1 D");
    assert_eq!(
        opt_backfill::compile::dryrun::limits_label(&m),
        "strict (plan)"
    );
    assert_eq!(requests_per_contract("strict", "8 hours", "6 M").0, 6);
    assert_eq!(requests_per_contract("strict", "5 mins", "1 M").0, 5);
}

/// `m` as a format 1 manifest: no limit table fields, version 1.
fn as_version_1(m: &Manifest) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("format_version".into(), 1.into());
    for k in ["limit_table", "limit_table_origin", "effective_limits"] {
        assert!(o.remove(k).is_some(), "{k}");
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn a_version_1_manifest_is_read_for_diff_only() {
    let (_, strict) = requests_per_contract("strict", "8 hours", "6 M");
    let (_, observed) = requests_per_contract("default", "8 hours", "6 M");
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    std::fs::write(&old, as_version_1(&strict)).unwrap();
    // Executing needs this build's format ...
    let e = Manifest::read(&old).unwrap_err().to_string();
    assert!(e.contains("format_version 1 is not supported"), "{e}");
    // ... comparing does not: version 1 was split with the strict table.
    let back = Manifest::read_any_version(&old).unwrap();
    assert_eq!(back.limit_table, opt_backfill::bars::LimitTable::Strict);
    assert!(back.effective_limits.is_empty());
    let text = compile::diff::render(&compile::diff::diff(&back, &observed));
    assert!(text.contains("~ limits: strict -> observed"), "{text}");
    assert!(
        text.contains("~ hours / 8 hours / AAPL: +40 -240 requests"),
        "{text}"
    );
}
