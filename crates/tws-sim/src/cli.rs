//! The simulated gateway as a standalone server, so any TWS API client (`ibapi` 3.x+ over
//! protobuf, `ib_insync`/`ib_async` over the text protocol) can be pointed at it like at IB
//! Gateway. The `tws-sim` binary and `opt-backfill sim` are both this module.

use crate::Scenario;
use std::path::PathBuf;

/// Process exit codes of [`run`] (the same numbers `opt-backfill` uses for the same causes).
pub mod exit {
    /// Stopped by Ctrl-C after serving.
    pub const OK: i32 = 0;
    /// Bad scenario file, preset or flag.
    pub const BAD_INPUT: i32 = 2;
    /// The address could not be bound or the runtime not started.
    pub const GATEWAY: i32 = 3;
}

/// Arguments of the standalone server (`tws-sim`, `opt-backfill sim`).
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4002")]
    pub listen: String,
    /// Scenario TOML file (see the simulator crate's scenarios/ folder).
    #[arg(long, conflicts_with = "preset")]
    pub scenario: Option<PathBuf>,
    /// Built-in preset.
    #[arg(long, value_enum)]
    pub preset: Option<crate::scenario::Preset>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's simulated current date (YYYY-MM-DD).
    #[arg(long)]
    pub today: Option<chrono::NaiveDate>,
    /// Where the simulated "now" comes from: `wall` (the wall clock while --today is the real
    /// date; the default without --scenario), `close` (the close of --today's session) or an
    /// RFC 3339 instant on --today.
    #[arg(long)]
    pub clock: Option<crate::SimClock>,
    /// Compressed time: run the simulated clock N times faster (latencies / N, throttle,
    /// pacing and message-rate windows / N, faults at their simulated times). Point an
    /// executor started with the same `--time-scale` at it to replay a long run quickly.
    #[arg(long)]
    pub time_scale: Option<f64>,
}

fn load(args: &SimArgs) -> Result<Scenario, String> {
    let mut s = match (&args.scenario, &args.preset) {
        (Some(path), _) => Scenario::from_toml_path(path).map_err(|e| e.to_string())?,
        (None, Some(p)) => Scenario::preset(p.as_str()).map_err(|e| e.to_string())?,
        (None, None) => Scenario::preset("realistic").map_err(|e| e.to_string())?,
    };
    // A standalone server is a gateway to point clients at today: it follows the wall clock
    // unless the scenario pins one.
    if let Some(clock) = args.clock {
        s.clock = clock;
    } else if args.scenario.is_none() {
        s.clock = crate::SimClock::Wall;
    }
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    if let Some(today) = args.today {
        s.today = today;
    }
    if let Some(n) = args.time_scale {
        s.time_scale = n;
    }
    s.validate()
        .map_err(|(k, m)| format!("--today/--clock/--time-scale: {k}: {m}"))?;
    Ok(s)
}

/// Run the simulator until Ctrl-C; print the listen address first and the counters (JSON) on
/// stop.
pub fn run(args: SimArgs) -> i32 {
    let scenario = match load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::GATEWAY;
        }
    };
    rt.block_on(async move {
        let name = scenario.name.clone();
        let today = scenario.today;
        let scale = scenario.time_scale;
        let handle = match crate::start(scenario, &args.listen).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return exit::GATEWAY;
            }
        };
        println!("{}", handle.addr());
        eprintln!(
            "simulated IB Gateway (scenario `{name}`, today {today}, time x{scale}) listening on {}; Ctrl-C stops it",
            handle.addr()
        );
        let _ = tokio::signal::ctrl_c().await;
        let counters = handle.stop().await;
        match serde_json::to_string_pretty(&counters) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: counters: {e}"),
        }
        exit::OK
    })
}
