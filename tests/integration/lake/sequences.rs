//! Random sequences of plan edits and faults, then one fault-free run: every file holds exactly
//! the simulator market's bars for every window of the final plan (the oracle is the market, not
//! the executor's window helpers), every bar it holds is the market's, and `verify` is clean.

use super::*;
use opt_backfill::bars::BarSize;
use opt_backfill::store::parquet::{bar_file_path, SeriesKey};
use rand::{Rng, SeedableRng};

const MONTHLY: &str = "[limits]\n\"8 hours\" = \"1 M\"\n";
const ONE_WINDOW: &str = "[limits]\n\"8 hours\" = \"1 Y\"\n";

fn hours(months: u32) -> String {
    format!(
        "[[phase]]\nname = \"hours\"\nbars = [{{ size = \"8 hours\", duration = \"{months} M\" }}]\n"
    )
}

/// Write the plan for one step: `months` of 8-hour bars ending at `end`, against `port`.
fn step_plan(
    ws: &Workspace,
    syms: &[String],
    port: u16,
    months: u32,
    end: chrono::NaiveDate,
    fast_fail: bool,
    limits: &str,
) -> PathBuf {
    let mut spec = PlanSpec::new("seq", &hours(months)).end(end).limits(limits);
    if fast_fail {
        spec = spec.fast_fail();
    }
    ws.write_plan(&spec, syms, port)
}

/// Run `execute`, killing it with SIGKILL after `kill_after` if given.
async fn run_step(ws: &Workspace, plan: &Path, flags: &[&str], kill_after: Option<u64>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_opt-backfill"));
    cmd.arg("execute")
        .arg(plan)
        .args(flags)
        .current_dir(&ws.root)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    match kill_after {
        Some(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            let _ = child.kill();
            let _ = child.wait();
        }
        None => {
            let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
                .await
                .unwrap();
            assert!(matches!(status.code(), Some(0) | Some(1)), "{status:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_edits_and_faults_then_one_clean_run_leave_the_markets_bars() {
    let Fixture {
        sim: good,
        market,
        syms,
        ..
    } = Fixture::builder()
        .scenario(|s| s.hmds.latency_median_ms = 15.0)
        .symbols(2)
        .build()
        .await;
    let hung = sim("fast", |s| {
        s.hmds.latency_median_ms = 15.0;
        s.faults.hang_fraction = 0.3;
    })
    .await;
    // Sessions the plan may end at, oldest first (ends only move forward, like weekly runs).
    let ends: Vec<chrono::NaiveDate> = opt_backfill::calendar::sessions_between(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
        end_date(),
    )
    .unwrap()
    .iter()
    .map(|s| s.date)
    .collect();
    for seed in 0..3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let ws = Workspace::new();
        ws.write_caches(&market, &syms, LONG_LISTED);
        let mut end_idx = 0;
        let mut months = 1;
        let mut log = Vec::new();
        for _ in 0..5 {
            end_idx = (end_idx + rng.random_range(0..3)).min(ends.len() - 1);
            months = rng.random_range(1..=6);
            let faulty = rng.random_bool(0.4);
            let kill = rng.random_bool(0.3).then(|| rng.random_range(50..600));
            let mut flags = Vec::new();
            if rng.random_bool(0.25) {
                flags.push("--no-incremental");
                if rng.random_bool(0.5) {
                    flags.push("--no-resume");
                }
            }
            let port = if faulty {
                hung.addr().port()
            } else {
                good.addr().port()
            };
            let plan = step_plan(&ws, &syms, port, months, ends[end_idx], faulty, MONTHLY);
            log.push(format!(
                "{months} M to {} faulty={faulty} kill={kill:?} {flags:?}",
                ends[end_idx]
            ));
            run_step(&ws, &plan, &flags, kill).await;
        }
        // The final plan, fault-free, in one window per contract (so the market's answer for
        // the same window is the oracle), over what the split windows left.
        let plan = step_plan(
            &ws,
            &syms,
            good.addr().port(),
            months,
            ends[end_idx],
            false,
            ONE_WINDOW,
        );
        run_step(&ws, &plan, &[], None).await;
        let (code, out) = verify(&ws, &plan, &[]).await;
        assert_eq!(code, Some(0), "seed {seed}: {log:?}\n{out}");
        let session = opt_backfill::calendar::session(ends[end_idx])
            .unwrap()
            .unwrap();
        let mut compared = 0;
        for f in std::fs::read_dir(ws.caches()).unwrap().flatten() {
            let cache: opt_backfill::cache::ContractsCache =
                serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
            for c in &cache.contracts {
                // Each class's own close: 16:15 (13:15) for SPY, QQQ, IWM, 16:00 otherwise.
                let end = opt_backfill::hours::class_close(
                    &session,
                    opt_backfill::hours::builtin_close_offset(&c.trading_class),
                );
                let key = SeriesKey {
                    symbol: cache.underlying.symbol.clone(),
                    con_id: c.con_id,
                    expiry: c.expiry,
                    strike: c.strike,
                    right: c.right,
                    bar_size: BarSize::Hours8,
                    what: "TRADES".into(),
                    local_symbol: c.local_symbol.clone(),
                    trading_class: c.trading_class.clone(),
                    multiplier: c.multiplier,
                    exchange: c.exchange.clone(),
                    currency: c.currency.clone(),
                };
                let path = bar_file_path(&ws.root.join("data_test"), "test", &key);
                let held = read_bars(&path).unwrap().unwrap_or_default();
                // Every bar held is the market's bar at that time.
                let everything = market
                    .bars(
                        c.con_id,
                        "TRADES",
                        BarSize::Hours8,
                        end,
                        "1 Y".parse().unwrap(),
                        true,
                    )
                    .unwrap_or_default();
                let by_ts: BTreeMap<i64, f64> = everything
                    .iter()
                    .map(|b| (b.ts.timestamp_millis(), b.close))
                    .collect();
                for r in &held {
                    assert_eq!(
                        by_ts.get(&r.bar.ts.timestamp_millis()),
                        Some(&r.bar.close),
                        "seed {seed} {}: a bar the market does not have at {}",
                        c.local_symbol,
                        r.bar.ts
                    );
                }
                // Every bar of the final plan's windows is held.
                let want = market
                    .bars(
                        c.con_id,
                        "TRADES",
                        BarSize::Hours8,
                        end,
                        format!("{months} M").parse().unwrap(),
                        true,
                    )
                    .unwrap_or_default();
                let have: std::collections::BTreeSet<i64> =
                    held.iter().map(|r| r.bar.ts.timestamp_millis()).collect();
                for b in &want {
                    assert!(
                        have.contains(&b.ts.timestamp_millis()),
                        "seed {seed} {}: missing the bar at {} after {log:?}",
                        c.local_symbol,
                        b.ts
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "seed {seed}: only {compared} bars compared");
    }
}
