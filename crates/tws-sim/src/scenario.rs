//! Scenarios: every number of the simulated gateway (market universe, HMDS service model, pacing
//! rules, limits, faults) in one serde struct, with three presets and TOML files on top.
//!
//! A TOML scenario names a preset to start from (`base = "realistic"`, the default) and overrides
//! any key of it; keys are kebab-case and unknown keys are rejected with the file and key named,
//! so a typo never silently runs the default. See `scenarios/*.toml` in this crate.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ib_model::bars::{BarSize, Duration, DurationUnit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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

/// The default duration limit table: IB's strict older table for bars under 30 minutes
/// ([`BarSize::max_duration`]) and one year for 30-minute and longer bars (the current docs).
pub fn default_max_duration(bar: BarSize) -> Duration {
    if bar.seconds() >= BarSize::Mins30.seconds() && bar.seconds() < 86400 {
        Duration {
            n: 1,
            unit: DurationUnit::Years,
        }
    } else {
        bar.max_duration()
    }
}

/// The built-in scenarios, for `--preset` (see [`Scenario::preset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Millisecond latencies, no faults: tests and a quick look.
    Fast,
    /// IB-like latencies and throttling.
    Realistic,
    /// The practitioners' observation: first requests 0.5-0.6 s, then 5-20 s each under load.
    Throttled,
    /// Realistic plus drops, a gateway restart, farm flapping and hanging requests.
    Hostile,
}

impl Preset {
    /// The preset's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Fast => "fast",
            Preset::Realistic => "realistic",
            Preset::Throttled => "throttled",
            Preset::Hostile => "hostile",
        }
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Unknown preset name.
    #[error("unknown preset `{0}` (known: fast, realistic, throttled, hostile)")]
    UnknownPreset(String),
    /// File could not be read.
    #[error("{file}: {source}")]
    Read {
        /// File.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax error.
    #[error("{file}: {message}")]
    Syntax {
        /// File.
        file: String,
        /// toml's message (with line and column).
        message: String,
    },
    /// A key has a bad value or is unknown.
    #[error("{file}: key `{key}`: {message}")]
    Key {
        /// File.
        file: String,
        /// Dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// A built-in preset: `fast` (millisecond latencies, for tests), `realistic` (IB's
    /// documented and observed numbers, `docs/ib-behaviour.md` sections 3 and 9), `throttled` (the
    /// observed slow-down under sustained load: 0.5-0.6 s, then 5-20 s per request) or
    /// `hostile` (realistic plus every fault).
    pub fn preset(name: &str) -> Result<Scenario, ScenarioError> {
        let realistic = Scenario {
            name: "realistic".into(),
            seed: 1,
            today: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default(),
            clock: SimClock::Close,
            time_scale: 1.0,
            market: MarketSettings {
                extra_symbols: 0,
                big_chain: None,
                chain_horizon_days: 365,
                monthly_listing_days: 270,
                weekly_listing_days: 35,
                risk_free_rate: 0.04,
            },
            hmds: HmdsSettings {
                latency_median_ms: 500.0,
                latency_sigma: 0.5,
                latency_min_ms: 150.0,
                latency_max_ms: 30_000.0,
                per_bar_us: 50.0,
                slots: 16,
                max_open_per_connection: 50,
                // About 20 requests/s sustained before the soft throttle adds latency; past
                // that, 25 req/s for a minute adds ~6 s per request (the 5-20 s seen under load).
                throttle_window_secs: 60.0,
                throttle_free_requests: 1200,
                throttle_extra_ms: 20.0,
                contract_details_median_ms: 400.0,
                sec_def_median_ms: 300.0,
                max_duration: BTreeMap::new(),
                over_limit: OverLimit::Error,
            },
            pacing: PacingSettings {
                enabled: true,
                identical_window_secs: 15.0,
                same_contract_window_secs: 2.0,
                same_contract_max: 5,
                window_secs: 600.0,
                window_max: 60,
                disconnect_after_violations: 5,
                disconnect_window_secs: 60.0,
                msg_rate_limit: 50,
                msg_rate_drop_after: 3,
            },
            faults: FaultSettings::default(),
        };
        let mut s = match name {
            "realistic" => realistic,
            "fast" => Scenario {
                name: "fast".into(),
                hmds: HmdsSettings {
                    latency_median_ms: 2.0,
                    latency_sigma: 0.3,
                    latency_min_ms: 1.0,
                    latency_max_ms: 5.0,
                    per_bar_us: 0.0,
                    slots: 64,
                    throttle_free_requests: u32::MAX,
                    throttle_extra_ms: 0.0,
                    contract_details_median_ms: 1.0,
                    sec_def_median_ms: 1.0,
                    ..realistic.hmds.clone()
                },
                pacing: PacingSettings {
                    msg_rate_limit: 2000,
                    ..realistic.pacing.clone()
                },
                ..realistic
            },
            // Practitioners' observation for options (IB notes, HMDS rules): the first
            // requests answer in 0.5-0.6 s, then 5-20 s each under sustained load. 60 requests
            // a minute are free; each one over adds 50 ms, so the sustained rate settles near
            // 2.75 requests/s with the 16 slots busy 5.8 s each (more in flight only queues,
            // up to ~18 s at 50). The real gateway's sustained rate is unknown and likely lies
            // between this preset and `realistic`.
            "throttled" => Scenario {
                name: "throttled".into(),
                hmds: HmdsSettings {
                    latency_median_ms: 550.0,
                    latency_sigma: 0.05,
                    latency_min_ms: 500.0,
                    throttle_window_secs: 60.0,
                    throttle_free_requests: 60,
                    throttle_extra_ms: 50.0,
                    ..realistic.hmds.clone()
                },
                ..realistic
            },
            "hostile" => Scenario {
                name: "hostile".into(),
                faults: FaultSettings {
                    drop_after_requests: Some(400),
                    drop_at_secs: None,
                    outage: Some(OutageSettings {
                        at_secs: 600.0,
                        duration_secs: 30.0,
                    }),
                    hang_fraction: 0.01,
                    farm_flap: Some(FarmFlapSettings {
                        every_secs: 300.0,
                        down_secs: 10.0,
                    }),
                    drop_on_con_ids: Vec::new(),
                },
                ..realistic
            },
            other => return Err(ScenarioError::UnknownPreset(other.to_string())),
        };
        s.hmds.max_duration = ib_model::bars::BAR_SIZES
            .iter()
            .map(|(b, _)| (*b, default_max_duration(*b)))
            .collect();
        Ok(s)
    }

    /// Load a TOML scenario: `base` names the preset to start from (default `realistic`), every
    /// other key overrides it. Errors name the file and the key.
    pub fn from_toml_path(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &file)
    }

    /// [`Scenario::from_toml_path`] on text already read; `file` is used in messages.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ScenarioError::Syntax {
                    file: file.to_string(),
                    message: e.to_string(),
                })?;
        let key_err = |key: &str, message: String| ScenarioError::Key {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        let base = match table.remove("base") {
            None => "realistic".to_string(),
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(key_err(
                    "base",
                    format!("expected a preset name, found {other}"),
                ))
            }
        };
        let preset = Self::preset(&base).map_err(|e| key_err("base", e.to_string()))?;
        let mut merged = toml::Value::try_from(&preset).map_err(|e| key_err("", e.to_string()))?;
        merge(&mut merged, toml::Value::Table(table));
        let scenario: Scenario = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            key_err(&key, e.into_inner().to_string())
        })?;
        scenario
            .validate()
            .map_err(|(k, m): (String, String)| key_err(&k, m))?;
        Ok(scenario)
    }

    /// Check values serde cannot (ranges); returns the bad key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let h = &self.hmds;
        if h.slots == 0 {
            return Err(("hmds.slots".into(), "must be at least 1".into()));
        }
        if h.max_open_per_connection == 0 {
            return Err((
                "hmds.max-open-per-connection".into(),
                "must be at least 1".into(),
            ));
        }
        if h.latency_min_ms.partial_cmp(&h.latency_max_ms) == Some(std::cmp::Ordering::Greater)
            || h.latency_min_ms.is_nan()
            || h.latency_min_ms < 0.0
        {
            return Err((
                "hmds.latency-min-ms".into(),
                "must be >= 0 and <= latency-max-ms".into(),
            ));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err((
                "time-scale".into(),
                "must be a number greater than 0".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.faults.hang_fraction) {
            return Err((
                "faults.hang-fraction".into(),
                "must be between 0 and 1".into(),
            ));
        }
        use super::universe::{SIM_FIRST_YEAR, SIM_LAST_YEAR};
        if !(SIM_FIRST_YEAR..=SIM_LAST_YEAR).contains(&self.today.year())
            || ib_model::calendar::session_on_or_before(self.today).is_err()
        {
            return Err((
                "today".into(),
                format!("outside the simulated market's years ({SIM_FIRST_YEAR}-{SIM_LAST_YEAR})"),
            ));
        }
        if let SimClock::At(t) = self.clock {
            if ib_model::calendar::to_ny(t).date_naive() != self.today {
                return Err((
                    "clock".into(),
                    format!("{t} is not on `today` ({}) in New York", self.today),
                ));
            }
        }
        Ok(())
    }

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

/// Deep-merge `over` into `base` (tables merge key by key, anything else replaces). TOML dates
/// become strings so chrono's deserializers accept them.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        let mut v = v;
                        dates_to_strings(&mut v);
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, mut v) => {
            dates_to_strings(&mut v);
            *slot = v;
        }
    }
}

fn dates_to_strings(v: &mut toml::Value) {
    match v {
        toml::Value::Datetime(d) => *v = toml::Value::String(d.to_string()),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| dates_to_strings(v)),
        toml::Value::Array(a) => a.iter_mut().for_each(dates_to_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
