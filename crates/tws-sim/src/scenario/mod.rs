//! Scenarios: every number of the simulated gateway (market universe, HMDS service model, pacing
//! rules, limits, faults) in one serde struct, with three presets and TOML files on top.
//!
//! A TOML scenario names a preset to start from (`base = "realistic"`, the default) and overrides
//! any key of it; keys are kebab-case and unknown keys are rejected with the file and key named,
//! so a typo never silently runs the default. See `scenarios/*.toml` in this crate.
//!
//! This module holds the scenario's shape and the numbers derived from it (wall time, limits,
//! capacity); `presets` the built-in values, `load` the TOML loading and validation.

use chrono::{DateTime, NaiveDate, Utc};
use ib_model::bars::{BarSize, Duration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod load;
mod presets;

pub use load::ScenarioError;
pub use presets::{default_max_duration, Preset};

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &["fast", "realistic", "throttled", "hostile"];

/// A complete simulator configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in logs and counters.
    pub name: String,
    /// Seed of every random choice: same seed, same market, same latencies sequence.
    pub seed: u64,
    /// The simulated current date: contracts expiring before it are expired (error 200), and
    /// no bar starts after its last session's close.
    pub today: NaiveDate,
    /// Where the simulated "now" comes from: `close` (default: the close of the last session
    /// on or before `today`, whatever the wall clock says), `wall` (the wall clock while
    /// `today` is the real New York date and its session runs: a standalone server), or an
    /// RFC 3339 instant on `today` (pinned, for tests of a session still open).
    #[serde(default)]
    pub clock: SimClock,
    /// Compressed time: the simulator's clock runs this many times faster than the wall clock.
    /// Every duration of the scenario is simulated time: latencies are divided by it, the soft
    /// throttle, pacing, violation and message-rate windows are shortened by it (the same
    /// counts in a shorter wall-clock span) and faults fire at their simulated offsets. So a
    /// client whose own clock-based limits are compressed alike (`execute --time-scale`)
    /// sees the same gateway, N times faster. 1 (the default) is real time.
    #[serde(default = "real_time")]
    pub time_scale: f64,
    /// Synthetic market universe.
    pub market: MarketSettings,
    /// HMDS service model (latency, slots, open-request limit, duration limits).
    pub hmds: HmdsSettings,
    /// IB's pacing rules and message-rate limit.
    pub pacing: PacingSettings,
    /// Injected faults.
    pub faults: FaultSettings,
}

fn real_time() -> f64 {
    1.0
}

/// Where the simulator's "now" comes from; see [`Scenario::clock`]. Only `Wall` reads the
/// wall clock, so tests built on `Close` or `At` give the same answers at any time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimClock {
    /// The close of the last session on or before `today`.
    #[default]
    Close,
    /// The wall clock while `today` is the real date and its session runs, else `Close`.
    Wall,
    /// A fixed instant (clipped to `today`'s close).
    At(DateTime<Utc>),
}

impl std::fmt::Display for SimClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimClock::Close => f.write_str("close"),
            SimClock::Wall => f.write_str("wall"),
            SimClock::At(t) => f.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        }
    }
}

impl std::str::FromStr for SimClock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "close" => Ok(SimClock::Close),
            "wall" => Ok(SimClock::Wall),
            other => DateTime::parse_from_rfc3339(other)
                .map(|t| SimClock::At(t.with_timezone(&Utc)))
                .map_err(|e| {
                    format!("`{other}`: expected `close`, `wall` or an RFC 3339 instant ({e})")
                }),
        }
    }
}

impl Serialize for SimClock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimClock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Market universe settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MarketSettings {
    /// Extra generated small-cap symbols `SYM001..` for large tests.
    pub extra_symbols: u32,
    /// A symbol whose chain is made about 10,000 contracts (discovery tests), if any.
    pub big_chain: Option<String>,
    /// Chains list expiries up to this many days after `today`.
    pub chain_horizon_days: u32,
    /// A monthly (third-Friday) expiry is listed this many days before it expires.
    pub monthly_listing_days: u32,
    /// A weekly expiry is listed this many days before it expires.
    pub weekly_listing_days: u32,
    /// Risk-free rate of the Black-Scholes prices.
    pub risk_free_rate: f64,
}

/// HMDS service model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HmdsSettings {
    /// Median service latency of a historical request, milliseconds (lognormal).
    pub latency_median_ms: f64,
    /// Sigma of the lognormal latency (0 = always the median).
    pub latency_sigma: f64,
    /// Lower clamp of the drawn latency, ms.
    pub latency_min_ms: f64,
    /// Upper clamp of the drawn latency, ms.
    pub latency_max_ms: f64,
    /// Extra service time per bar returned, microseconds.
    pub per_bar_us: f64,
    /// Requests served at once; the rest wait FIFO (soft throttling).
    pub slots: u32,
    /// Open historical requests allowed per connection (the next answers 322).
    pub max_open_per_connection: u32,
    /// Soft throttle: window over which historical requests are counted, seconds.
    pub throttle_window_secs: f64,
    /// Soft throttle: requests in the window served without penalty.
    pub throttle_free_requests: u32,
    /// Soft throttle: extra latency per request over the free count, ms.
    pub throttle_extra_ms: f64,
    /// Median latency of contract details, ms.
    pub contract_details_median_ms: f64,
    /// Median latency of option-chain (reqSecDefOptParams) and head-timestamp requests, ms.
    pub sec_def_median_ms: f64,
    /// Longest duration accepted per bar size (over it: 162 `Time length exceed max.`).
    /// Sizes not listed use [`default_max_duration`].
    pub max_duration: BTreeMap<BarSize, Duration>,
    /// What a duration over the limit gets: `error` (162 `Time length exceed max.`, the
    /// documented behaviour) or `silent-empty` (zero bars and no error, as a real gateway was
    /// seen answering `1 min` x `6 M`, `docs/ib-behaviour.md` section 5).
    #[serde(default)]
    pub over_limit: OverLimit,
}

/// Answer to a duration over the bar size's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverLimit {
    /// 162 `Time length exceed max.`
    #[default]
    Error,
    /// HistoricalData with zero bars, then HistoricalDataEnd.
    SilentEmpty,
}

/// Pacing rules (small bars of 30 s or less) and the socket message rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PacingSettings {
    /// Apply the small-bar pacing rules at all.
    pub enabled: bool,
    /// No identical small-bar request within this many seconds.
    pub identical_window_secs: f64,
    /// Same contract + tick type: window, seconds.
    pub same_contract_window_secs: f64,
    /// Same contract + tick type: requests allowed in the window (the next one violates).
    pub same_contract_max: u32,
    /// Overall small-bar window, seconds.
    pub window_secs: f64,
    /// Small-bar requests allowed in the overall window (the next one violates).
    pub window_max: u32,
    /// Disconnect a connection after this many violations ...
    pub disconnect_after_violations: u32,
    /// ... within this many seconds (0 = never disconnect).
    pub disconnect_window_secs: f64,
    /// Inbound messages per second allowed per connection (0 = unlimited).
    pub msg_rate_limit: u32,
    /// Disconnect after this many seconds over the rate (error 100 each).
    pub msg_rate_drop_after: u32,
}

/// A nightly-restart style outage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OutageSettings {
    /// Seconds after server start.
    pub at_secs: f64,
    /// Length, seconds.
    pub duration_secs: f64,
}

/// HMDS farm broken/restored cycles (2105 then 2106).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FarmFlapSettings {
    /// A cycle starts every this many seconds.
    pub every_secs: f64,
    /// The farm stays broken this long; historical answers wait until it is back.
    pub down_secs: f64,
}

/// Faults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FaultSettings {
    /// Drop a connection after it has sent this many requests.
    pub drop_after_requests: Option<u64>,
    /// Drop every connection at this many seconds after start.
    pub drop_at_secs: Option<f64>,
    /// Gateway restart: refuse connections for a while.
    pub outage: Option<OutageSettings>,
    /// Fraction of historical requests never answered (0..1).
    pub hang_fraction: f64,
    /// HMDS farm flapping.
    pub farm_flap: Option<FarmFlapSettings>,
    /// Drop the connection whenever a historical request names one of these conIds: a
    /// contract that breaks the session every time it is asked for (the executor must
    /// quarantine it rather than disconnect everyone again and again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_on_con_ids: Vec<i64>,
}

impl Scenario {
    /// The wall-clock span of `simulated_secs` seconds of simulated time (see
    /// [`Scenario::time_scale`]); never panics on odd values.
    pub fn wall(&self, simulated_secs: f64) -> std::time::Duration {
        super::hmds::secs_f64(simulated_secs / self.time_scale.max(f64::MIN_POSITIVE))
    }

    /// [`Scenario::wall`] of a duration.
    pub fn wall_of(&self, simulated: std::time::Duration) -> std::time::Duration {
        self.wall(simulated.as_secs_f64())
    }

    /// The duration limit in force for a bar size.
    pub fn max_duration(&self, bar: BarSize) -> Duration {
        self.hmds
            .max_duration
            .get(&bar)
            .copied()
            .unwrap_or_else(|| default_max_duration(bar))
    }

    /// Mean service time of a typical historical request (an `8 hours` x `6 M` window, about
    /// 126 bars) without the soft throttle, seconds.
    pub fn mean_service_secs(&self) -> f64 {
        let h = &self.hmds;
        let mean_ms = (h.latency_median_ms * (h.latency_sigma * h.latency_sigma / 2.0).exp())
            .clamp(h.latency_min_ms, h.latency_max_ms)
            + 126.0 * h.per_bar_us / 1000.0;
        mean_ms.max(0.001) / 1000.0
    }

    /// Requests per second the service slots give in a short burst: slots / mean service time.
    pub fn burst_capacity_rps(&self) -> f64 {
        f64::from(self.hmds.slots) / self.mean_service_secs()
    }

    /// Requests per second the HMDS model can sustain at best: the rate `r` at which the slots
    /// are saturated once the soft throttle adds `throttle-extra-ms` per request over
    /// `throttle-free-requests` in the window, i.e. the root of
    /// `r * (mean + max(0, r * window - free) * extra) = slots`. Without a throttle this is
    /// [`Scenario::burst_capacity_rps`]. Benchmarks divide measured throughput by it.
    pub fn theoretical_capacity_rps(&self) -> f64 {
        let h = &self.hmds;
        let (slots, mean) = (f64::from(h.slots), self.mean_service_secs());
        let burst = slots / mean;
        let (w, e, free) = (
            h.throttle_window_secs.max(0.0),
            h.throttle_extra_ms.max(0.0) / 1000.0,
            f64::from(h.throttle_free_requests),
        );
        if e == 0.0 || w == 0.0 || burst * w <= free {
            return burst;
        }
        // w*e*r^2 + (mean - free*e)*r - slots = 0, positive root.
        let (a, b, c) = (w * e, mean - free * e, -slots);
        let r = (-b + (b * b - 4.0 * a * c).sqrt()) / (2.0 * a);
        r.max(free / w).min(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn presets_load_and_validate() {
        for p in PRESETS {
            let s = Scenario::preset(p).unwrap();
            s.validate().unwrap();
            assert!(s.theoretical_capacity_rps() > 0.0);
        }
        assert!(Scenario::preset("nope").is_err());
        let r = Scenario::preset("realistic").unwrap();
        assert_eq!(r.max_duration(BarSize::Hours8).to_string(), "1 Y");
        assert_eq!(r.max_duration(BarSize::Min1).to_string(), "1 D");
        let burst = r.burst_capacity_rps();
        assert!(burst > 20.0 && burst < 40.0, "{burst}");
        let cap = r.theoretical_capacity_rps();
        assert!(
            cap > 15.0 && cap < burst,
            "sustained under the soft throttle: {cap}"
        );
        let f = Scenario::preset("fast").unwrap();
        assert_eq!(f.theoretical_capacity_rps(), f.burst_capacity_rps());
        let t = Scenario::preset("throttled").unwrap();
        let cap = t.theoretical_capacity_rps();
        assert!(cap > 2.0 && cap < 4.0, "throttled sustains {cap}");
        // At that rate the 16 slots serve each request in 5-20 s.
        let busy = f64::from(t.hmds.slots) / cap;
        assert!((5.0..20.0).contains(&busy), "{busy}");
    }

    #[test]
    fn toml_overrides_and_errors() {
        let s = Scenario::from_toml_str(
            "base = \"fast\"\nseed = 9\ntoday = 2026-06-01\n[hmds]\nslots = 3\n[hmds.max-duration]\n\"1 min\" = \"1 W\"\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!((s.seed, s.hmds.slots, s.name.as_str()), (9, 3, "fast"));
        assert_eq!(s.today, NaiveDate::from_ymd_opt(2026, 6, 1).unwrap());
        assert_eq!(s.max_duration(BarSize::Min1).to_string(), "1 W");
        assert_eq!(s.max_duration(BarSize::Mins5).to_string(), "1 W");

        let e = Scenario::from_toml_str("[hmds]\nslotz = 3\n", "x.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("x.toml") && msg.contains("slotz"), "{msg}");
        let e = Scenario::from_toml_str("[hmds]\nslots = \"many\"\n", "y.toml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("y.toml") && msg.contains("hmds.slots"),
            "{msg}"
        );
        let e = Scenario::from_toml_str("[hmds.max-duration]\n\"7 mins\" = \"1 D\"\n", "z.toml")
            .unwrap_err();
        assert!(e.to_string().contains("7 mins"), "{e}");
        let e = Scenario::from_toml_str("[faults]\nhang-fraction = 2.0\n", "w.toml").unwrap_err();
        assert!(e.to_string().contains("faults.hang-fraction"), "{e}");
        // The NYSE calendar knows 2031, but the simulated market's paths stop in 2030.
        let e = Scenario::from_toml_str("today = 2031-06-02\n", "v.toml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("today") && msg.contains("(2020-2030)"),
            "{msg}"
        );
        assert!(Scenario::from_toml_str("today = 2019-12-31\n", "u.toml").is_err());
        assert!(Scenario::from_toml_str("today = 2030-12-31\n", "t.toml").is_ok());
    }

    #[test]
    fn example_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for p in PRESETS {
            let s = Scenario::from_toml_path(&dir.join(format!("{p}.toml"))).unwrap();
            assert_eq!(
                s,
                Scenario::preset(p).unwrap(),
                "{p}.toml must equal the preset"
            );
        }
        let c = Scenario::from_toml_path(&dir.join("custom.toml")).unwrap();
        assert_eq!((c.seed, c.market.extra_symbols, c.hmds.slots), (42, 40, 8));
        assert_eq!(c.max_duration(BarSize::Hours8).to_string(), "1 M");
        assert_eq!(c.max_duration(BarSize::Mins30).to_string(), "1 Y");
        let e = Scenario::from_toml_path(&dir.join("missing.toml")).unwrap_err();
        assert!(e.to_string().contains("missing.toml"));
    }
}
