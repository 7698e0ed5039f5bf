//! The weekend benchmark (issue 16): the weekend plan over hundreds of symbols against the
//! simulator's `realistic` preset in compressed time, end to end through the real binary.
//!
//! 1. Starts the simulator (`opt-backfill sim --scenario` on 127.0.0.1:0, a child process, one
//!    per step so its counters are the step's: `extra-symbols` generated small caps
//!    `SYM001..`, `realistic`, `time-scale` N), writes `plans/weekend.toml` with that
//!    universe, runs `opt-backfill discover --plan` and `plan --dry-run --json`.
//! 2. **Uninterrupted run** (lake A): `opt-backfill execute` as a child process; its VmRSS,
//!    VmHWM and utime+stime are read from /proc every 0.5 s; requests are the simulator's
//!    `historical_data` counter, printed when it stops.
//! 3. **Kill and resume** (lake B, same caches): the same command, `kill -9` once the run's
//!    summaries hold `WEEKEND_KILL_AT` of the dry-run's requests, then the same command
//!    again. Start-up = spawn to the first request: the earliest `started_at` of the run's
//!    summary records that sent a request (a task starts, reads its file and sends; no
//!    request is sent before a task starts). Lakes A and B are compared by file list and row
//!    counts.
//! 4. **Next weekend** (lake A): a new simulator with `today` + 7 days, incremental
//!    `discover`, then `execute`: start-up, requests sent (by the duration asked for, from the
//!    summaries' `requests`), wall time.
//!
//! `cargo bench --bench weekend`; environment (defaults = the full size):
//! - `WEEKEND_SYMBOLS` (300): generated symbols in the universe;
//! - `WEEKEND_TIME_SCALE` (50): simulator and executor `--time-scale`;
//! - `WEEKEND_KILL_AT` (0.5): fraction of the requests after which the second run is killed;
//! - `WEEKEND_STEPS` (`first,resume,next`): which steps to run; without `first`, the lake A
//!   an earlier run left in `WEEKEND_DIR` is compared with and continued (`resume,next`);
//! - `WEEKEND_DIR` (a new directory under the temp dir): where the lakes go; removed at the
//!   end unless `WEEKEND_KEEP=1` or `WEEKEND_DIR` is given;
//! - `WEEKEND_CACHES`: a `contracts_cache` directory of an earlier run of the same size, copied
//!   in first so that discovery has nothing to do (its figures are then not the first week's);
//! - `WEEKEND_BIN` (the `opt-backfill` built with the bench): the binary to run, e.g.
//!   `target/release/opt-backfill` when this harness is built in the test profile
//!   (`cargo test --bench weekend`) to save a second release build of the dependencies.

#[path = "weekend/child.rs"]
mod child;
#[path = "weekend/lake.rs"]
mod lake;

use child::{LineCounter, SimChild};
use chrono::{DateTime, NaiveDate, Utc};
use opt_backfill::sim::Scenario;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmark's settings.
struct Setup {
    bin: PathBuf,
    symbols: u32,
    scale: f64,
    kill_at: f64,
    steps: Vec<String>,
    dir: PathBuf,
    /// The first weekend: the simulator's `today` (a Saturday) and the executor's `--now`.
    today: NaiveDate,
}

impl Setup {
    fn step(&self, name: &str) -> bool {
        self.steps.iter().any(|s| s == name)
    }
    fn now(&self, today: NaiveDate) -> String {
        format!("{today}T15:00:00Z")
    }

    /// Start a simulator for `today`; its scenario file and log go in `dir`.
    fn sim(&self, today: NaiveDate, label: &str) -> SimChild {
        let file = self.dir.join(format!("sim_{label}.toml"));
        let text = format!(
            "base = \"realistic\"\ntoday = {today}\ntime-scale = {}\n[market]\nextra-symbols = {}\n",
            self.scale, self.symbols
        );
        std::fs::write(&file, text).unwrap();
        SimChild::start(&self.bin, &file, &self.dir.join(format!("sim_{label}.log")))
    }
}

fn historical(counters: &serde_json::Value) -> u64 {
    counters["requests"]["historical_data"]
        .as_u64()
        .unwrap_or(0)
}

/// `plans/weekend.toml` with the generated universe.
fn write_plan(setup: &Setup, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/weekend.toml");
    let text = std::fs::read_to_string(&src).expect("plans/weekend.toml");
    let list: Vec<String> = (1..=setup.symbols)
        .map(|i| format!("\"SYM{i:03}\""))
        .collect();
    let mut replaced = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("symbols = ") {
                replaced = true;
                format!("symbols = [{}]", list.join(", "))
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(replaced, "plans/weekend.toml has no `symbols = ` line");
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("weekend.toml");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Discovery of the plan's universe for `date` against its own simulator; prints its time
/// and requests.
fn discover(setup: &Setup, cwd: &Path, today: NaiveDate, label: &str) {
    let sim = setup.sim(today, &format!("discover_{label}"));
    let date = today.pred_opt().expect("date").to_string();
    let mps = (45.0 * setup.scale).round().to_string();
    let a = args(&[
        "discover",
        "--plan",
        "weekend.toml",
        "--date",
        &date,
        "--fetch-close",
        "--gateway",
        &sim.addr,
        "--messages-per-second",
        &mps,
    ]);
    let log = cwd.join(format!("discover_{label}.log"));
    let mut r = child::spawn(&setup.bin, &a, cwd, &log);
    let (st, _) = r.watch(Duration::from_secs(1), |_| false);
    let c = sim.stop();
    println!(
        "discover ({label}, date {date}): {:.1} s wall, exit {:?}, {} contract-details requests, {} option-chain requests (log {})",
        r.elapsed(),
        st.and_then(|s| s.code()),
        c["requests"]["contract_details"],
        c["requests"]["sec_def_opt_params"],
        log.display()
    );
}

/// `plan --dry-run --json`: (all requests, per phase).
fn dry_run(setup: &Setup, cwd: &Path, today: NaiveDate) -> (u64, BTreeMap<String, u64>) {
    let out = std::process::Command::new(&setup.bin)
        .args(["plan", "weekend.toml", "--dry-run", "--json", "--now"])
        .arg(setup.now(today))
        .current_dir(cwd)
        .output()
        .expect("plan --dry-run");
    assert!(
        out.status.success(),
        "plan --dry-run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dry-run JSON");
    let t = &v["totals"];
    let per_phase = t["per_phase"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    (t["requests"].as_u64().unwrap_or(0), per_phase)
}

/// What one `execute` child did.
#[derive(Default)]
struct ExecFigures {
    wall: f64,
    code: Option<i32>,
    killed: bool,
    /// Historical requests the simulator received.
    requests: u64,
    pacing_violations: u64,
    /// Error 100 (socket message rate exceeded) the simulator sent.
    message_rate_errors: u64,
    /// Summary records written.
    records: u64,
    /// Spawn to the first request (the earliest `started_at` of a record that sent one).
    first_request: Option<f64>,
    /// Spawn to the "N tasks to fetch" line (manifest built and resume checked).
    queue_ready: Option<f64>,
    queue_line: String,
    /// Spawn to the final table (all requests answered; the lake index refresh follows).
    requests_done: Option<f64>,
    peak_rss: f64,
    final_rss: f64,
    cpu: f64,
    rss_curve: String,
    /// The executor's own `memory at <stage>` lines from its run log.
    memory_stages: Vec<String>,
    /// Requests sent, by `bar size x duration`.
    by_cell: BTreeMap<String, u64>,
    statuses: BTreeMap<String, u64>,
}

/// Counts by name (cell, status).
type Counts = BTreeMap<String, u64>;

/// A run's summary file (`summary_{phase}_{i}of{n}.jsonl`, not the timeline).
fn is_summary(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("summary_"))
        && p.extension().is_some_and(|x| x == "jsonl")
}

/// The run's summary records: earliest `started_at` of one that sent a request, requests by
/// cell and records by status.
fn read_summaries(run_dir: &Path) -> (Option<DateTime<Utc>>, Counts, Counts) {
    let (mut first, mut cells, mut statuses) = (None, BTreeMap::new(), BTreeMap::new());
    for e in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        let p = e.path();
        if !is_summary(&p) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            *statuses
                .entry(v["status"].as_str().unwrap_or("?").to_string())
                .or_insert(0) += 1;
            let reqs = v["requests"].as_array().cloned().unwrap_or_default();
            for r in &reqs {
                let d = r.as_str().unwrap_or("").split('@').next().unwrap_or("");
                let cell = format!("{} x {d}", v["bar_size"].as_str().unwrap_or("?"));
                *cells.entry(cell).or_insert(0) += 1;
            }
            if !reqs.is_empty() {
                if let Some(t) = v["started_at"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                {
                    let t = t.with_timezone(&Utc);
                    if first.is_none_or(|f| t < f) {
                        first = Some(t);
                    }
                }
            }
        }
    }
    (first, cells, statuses)
}

/// Run `execute` against a new simulator in `cwd` until it exits, or kill -9 it once its
/// summaries hold `kill_after` records.
fn execute(
    setup: &Setup,
    cwd: &Path,
    today: NaiveDate,
    run_id: &str,
    kill_after: Option<u64>,
) -> ExecFigures {
    let sim = setup.sim(today, &format!("execute_{run_id}"));
    let scale = setup.scale.to_string();
    let now = setup.now(today);
    let a = args(&[
        "execute",
        "weekend.toml",
        "--gateway",
        &sim.addr,
        "--now",
        &now,
        "--time-scale",
        &scale,
        "--run-id",
        run_id,
    ]);
    let run_dir = cwd.join("state/run_logs/weekend").join(run_id);
    let spawned_at = Utc::now();
    let mut r = child::spawn(
        &setup.bin,
        &a,
        cwd,
        &cwd.join(format!("execute_{run_id}.log")),
    );
    let mut counter = LineCounter::default();
    let mut next_poll = 0.0;
    let (st, killed) = r.watch(Duration::from_millis(500), |t| {
        let Some(k) = kill_after else { return false };
        if t < next_poll {
            return false;
        }
        next_poll = t + 0.1;
        counter.poll(&run_dir) >= k
    });
    let wall = r.elapsed();
    let counters = sim.stop();
    let (peak, fin, cpu) = r.figures();
    let curve: Vec<String> = (1..=10)
        .filter_map(|i| {
            let at = wall * f64::from(i) / 10.0;
            r.samples
                .iter()
                .rev()
                .find(|s| s.at <= at)
                .map(|s| format!("{:.0}", s.rss_mb))
        })
        .collect();
    let ready = r.line_with("tasks to fetch");
    // The final table's totals line: every request answered, before the lake index refresh.
    let requests_done = r.line_with(" req/s over ").map(|(t, _)| t);
    let (first, by_cell, statuses) = read_summaries(&run_dir);
    ExecFigures {
        wall,
        code: st.and_then(|s| s.code()),
        killed,
        requests: historical(&counters),
        pacing_violations: counters["pacing_violations"].as_u64().unwrap_or(0),
        message_rate_errors: counters["errors"]["100"].as_u64().unwrap_or(0),
        records: statuses.values().sum(),
        first_request: first.map(|f| (f - spawned_at).num_milliseconds() as f64 / 1000.0),
        queue_ready: ready.as_ref().map(|(t, _)| *t),
        queue_line: ready.map(|(_, l)| l).unwrap_or_default(),
        requests_done,
        peak_rss: peak,
        final_rss: fin,
        cpu,
        rss_curve: curve.join(" "),
        memory_stages: std::fs::read_to_string(run_dir.join("execute_0of1.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.find("memory at ").map(|i| l[i + 10..].to_string()))
            .collect(),
        by_cell,
        statuses,
    }
}

fn print_exec(label: &str, f: &ExecFigures, setup: &Setup, capacity: f64) {
    let end = f.requests_done.unwrap_or(f.wall);
    let span = (end - f.first_request.unwrap_or(0.0)).max(1e-9);
    let sim_rate = f.requests as f64 / (span * setup.scale);
    println!("--- {label} ---");
    println!(
        "exit {:?}{}, wall {:.1} s, requests {} (summary records {}, {:?}), pacing violations {}, message-rate errors (100) {}",
        f.code,
        if f.killed { " (killed -9)" } else { "" },
        f.wall,
        f.requests,
        f.records,
        f.statuses,
        f.pacing_violations,
        f.message_rate_errors
    );
    println!(
        "start-up: first request {} s after spawn; queue ready {} s ({})",
        f.first_request.map_or("-".into(), |t| format!("{t:.2}")),
        f.queue_ready.map_or("-".into(), |t| format!("{t:.2}")),
        f.queue_line
    );
    println!(
        "after the last request: {:.1} s to exit (lake index refresh)",
        f.wall - end
    );
    println!(
        "requests/s from the first request to the last answer ({span:.1} s): {:.1} wall = {sim_rate:.2} simulated = {:.2} of the preset's sustained capacity ({capacity:.2})",
        f.requests as f64 / span,
        sim_rate / capacity
    );
    println!(
        "RSS: peak {:.0} MB, final {:.0} MB; at each tenth of the run (MB): {}",
        f.peak_rss, f.final_rss, f.rss_curve
    );
    println!("memory by stage: {}", f.memory_stages.join("; "));
    println!(
        "CPU: {:.1} s (utime+stime) = {:.2} s per 1,000 requests",
        f.cpu,
        f.cpu / (f.requests.max(1) as f64 / 1000.0)
    );
    println!("requests by cell: {:?}", f.by_cell);
}

fn print_disk(label: &str, dir: &Path) {
    let d = lake::disk_use(&dir.join("data_test"));
    let s = lake::disk_use(&dir.join("state"));
    println!(
        "{label}: {} bar files, {:.0} MB ({:.0} MB on disk); state {} files, {:.0} MB ({:.0} MB on disk)",
        d.bar_files, d.bytes_mb, d.disk_mb, s.files, s.bytes_mb, s.disk_mb
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn compare_lakes(dir_a: &Path, dir_b: &Path) {
    let t = Instant::now();
    let d = lake::compare(&dir_a.join("data_test"), &dir_b.join("data_test"));
    println!(
        "lake A vs lake B: {} vs {} files, {} vs {} rows; only in A {}, only in B {}, row counts differ {}: {} ({:.1} s)",
        d.files_a,
        d.files_b,
        d.rows_a,
        d.rows_b,
        d.only_a.len(),
        d.only_b.len(),
        d.rows_differ.len(),
        if d.equal() { "EQUAL" } else { "DIFFERENT" },
        t.elapsed().as_secs_f64()
    );
    for p in d.only_a.iter().chain(&d.only_b).take(5) {
        println!("  only on one side: {}", p.display());
    }
    for (p, a, b) in d.rows_differ.iter().take(5) {
        println!("  rows differ: {} {a} vs {b}", p.display());
    }
}

fn main() {
    let given_dir = std::env::var("WEEKEND_DIR").ok();
    let setup = Setup {
        bin: std::env::var("WEEKEND_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_opt-backfill"))),
        symbols: env_or("WEEKEND_SYMBOLS", 300),
        scale: env_or("WEEKEND_TIME_SCALE", 50.0),
        kill_at: env_or("WEEKEND_KILL_AT", 0.5),
        steps: env_or("WEEKEND_STEPS", "first,resume,next".to_string())
            .split(',')
            .map(str::to_string)
            .collect(),
        dir: given_dir.clone().map(PathBuf::from).unwrap_or_else(|| {
            std::env::temp_dir().join(format!("opt-backfill-weekend-{}", std::process::id()))
        }),
        today: NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"),
    };
    std::fs::create_dir_all(&setup.dir).unwrap();
    let (dir_a, dir_b) = (setup.dir.join("a"), setup.dir.join("b"));
    let mut sc = Scenario::preset("realistic").expect("realistic preset");
    sc.market.extra_symbols = setup.symbols;
    sc.today = setup.today;
    let capacity = sc.theoretical_capacity_rps();
    println!(
        "weekend benchmark: {} symbols, realistic preset, time scale {} (capacity {capacity:.2} req/s simulated = {:.0} req/s wall), today {}, --now {}, binary {}, dir {}",
        setup.symbols,
        setup.scale,
        capacity * setup.scale,
        setup.today,
        setup.now(setup.today),
        setup.bin.display(),
        setup.dir.display()
    );
    let t = Instant::now();
    write_plan(&setup, &dir_a);
    if let Ok(caches) = std::env::var("WEEKEND_CACHES") {
        // Contracts caches of an earlier run of the same size: discovery skips those symbols.
        copy_dir(Path::new(&caches), &dir_a.join("state/contracts_cache"));
    }
    discover(&setup, &dir_a, setup.today, "first weekend");
    let (total, per_phase) = dry_run(&setup, &dir_a, setup.today);
    println!(
        "dry-run: {total} requests {per_phase:?} (discover + dry-run {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    if total < 300_000 && setup.symbols >= 300 {
        println!("NOTE: fewer than 300,000 requests at this size");
    }
    if setup.step("first") {
        let f = execute(&setup, &dir_a, setup.today, "first", None);
        print_exec(
            "first weekend, uninterrupted (lake A)",
            &f,
            &setup,
            capacity,
        );
        print_disk("lake A", &dir_a);
    }
    // Lake A: this run's first step, or one an earlier run of the same size left in
    // `WEEKEND_DIR` (so `WEEKEND_STEPS=resume,next` measures the later steps without
    // fetching the first weekend again).
    let lake_a = setup.step("first") || dir_a.join("data_test").is_dir();
    if setup.step("resume") {
        let _ = std::fs::remove_dir_all(&dir_b);
        write_plan(&setup, &dir_b);
        copy_dir(
            &dir_a.join("state/contracts_cache"),
            &dir_b.join("state/contracts_cache"),
        );
        let kill_after = ((total as f64) * setup.kill_at).round() as u64;
        let k = execute(&setup, &dir_b, setup.today, "killed", Some(kill_after));
        print_exec("first weekend, killed (lake B)", &k, &setup, capacity);
        let r = execute(&setup, &dir_b, setup.today, "resumed", None);
        print_exec(
            "first weekend, resumed after kill -9 (lake B)",
            &r,
            &setup,
            capacity,
        );
        println!(
            "kill + resume: {} + {} = {} requests (dry-run: {total})",
            k.requests,
            r.requests,
            k.requests + r.requests
        );
        print_disk("lake B", &dir_b);
        if lake_a {
            compare_lakes(&dir_a, &dir_b);
        }
    }
    if setup.step("next") && lake_a {
        let next = setup.today + chrono::Duration::days(7);
        discover(&setup, &dir_a, next, "next weekend");
        let (total, per_phase) = dry_run(&setup, &dir_a, next);
        println!("dry-run (next weekend): {total} requests {per_phase:?}");
        let f = execute(&setup, &dir_a, next, "next", None);
        print_exec(
            "next weekend (lake A, today + 7 days)",
            &f,
            &setup,
            capacity,
        );
        print_disk("lake A after the next weekend", &dir_a);
    }
    if given_dir.is_none() && std::env::var("WEEKEND_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&setup.dir);
    } else {
        println!("kept {}", setup.dir.display());
    }
}
