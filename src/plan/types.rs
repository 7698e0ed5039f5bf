//! The validated plan: every value parsed, defaulted and checked, ready for the compiler.
//!
//! Types that also appear in the manifest derive serde and JsonSchema here (snake_case, as the
//! manifest is a machine format), so the plan and the manifest describe a phase the same way.

use crate::bars::{BarSize, Duration, LimitTable};
use crate::cache::CloseSource;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use super::file::OnMissingCache;

/// A plan that passed validation: the only input [`crate::compile::compile`] accepts, so the
/// compiler never has to re-check what the loader checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPlan {
    /// The plan file, as given on the command line.
    pub path: PathBuf,
    /// Plan name.
    pub name: String,
    /// Scope (output path component).
    pub scope: String,
    /// Output root, as written (relative paths are relative to the working directory).
    pub output_root: PathBuf,
    /// State root, as written (relative paths are relative to the working directory).
    pub state_root: PathBuf,
    /// Display time zone.
    pub time_zone: chrono_tz::Tz,
    /// End of the backfill, unresolved.
    pub end: EndSpec,
    /// Reference close snapshot, resolved against the plan file's directory.
    pub reference_snapshot: Option<PathBuf>,
    /// Closes from the snapshot: symbol -> session date -> close (empty without a snapshot).
    pub reference_closes: BTreeMap<String, BTreeMap<NaiveDate, f64>>,
    /// The universe.
    pub universe: Universe,
    /// Shard of the universe this plan covers (the command line may override it).
    pub batching: Batching,
    /// Gateway settings.
    pub gateway: GatewaySettings,
    /// The limit table and per-bar-size overrides the windows are split with.
    pub limits: PlanLimits,
    /// Phases in plan order.
    pub phases: Vec<Phase>,
}

impl ValidatedPlan {
    /// The longest duration one request may cover for `bar`: the plan's `[limits]` entry, else
    /// the plan's base table (default `observed`).
    pub fn limit(&self, bar: BarSize) -> Duration {
        self.limits.limit(bar)
    }

    /// The snapshot close of `symbol` on the latest date on or before `on`, if any.
    pub fn snapshot_close(&self, symbol: &str, on: NaiveDate) -> Option<(NaiveDate, f64)> {
        self.reference_closes
            .get(symbol)?
            .range(..=on)
            .next_back()
            .map(|(d, c)| (*d, *c))
    }

    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

/// The per-request duration limits of a plan: a built-in table plus per-bar-size overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanLimits {
    /// The built-in table under the overrides.
    pub base: LimitTable,
    /// Where the base table came from: named in the plan, or the default.
    pub origin: LimitOrigin,
    /// Per-bar-size overrides from the plan's `[limits]` table.
    pub overrides: BTreeMap<BarSize, Duration>,
}

impl PlanLimits {
    /// The override for `bar`, else the base table's entry.
    pub fn limit(&self, bar: BarSize) -> Duration {
        self.overrides
            .get(&bar)
            .copied()
            .unwrap_or_else(|| self.base.max_duration(bar))
    }
}

/// Whether a plan named its limit table or took the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitOrigin {
    /// `limits = "strict"`, or `base = ...` in the `[limits]` table.
    Plan,
    /// Not named: [`LimitTable::default`].
    #[default]
    Default,
}

impl LimitOrigin {
    /// How the dry run labels it: `plan` or `plan default`.
    pub fn label(self) -> &'static str {
        match self {
            LimitOrigin::Plan => "plan",
            LimitOrigin::Default => "plan default",
        }
    }
}

/// End of the backfill window as written in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSpec {
    /// The close of the session on this date (or the last session before it).
    Date(NaiveDate),
    /// The last complete session at compile time.
    LastSession,
    /// An explicit instant (`2026-12-01T11:00:00-05:00`, or a local time with an IANA zone,
    /// `2026-12-01T11:00 America/New_York`): windows end there, so a session in progress is
    /// planned up to it; at or after a session's close it is that close.
    Instant(chrono::DateTime<chrono::Utc>),
}

/// The underlyings and their caches.
#[derive(Debug, Clone, PartialEq)]
pub struct Universe {
    /// Symbols in plan order, each checked with [`crate::cache::check_symbol`], no duplicates.
    pub symbols: Vec<String>,
    /// The symbols CSV, when the symbols came from one (resolved against the plan's directory).
    pub symbols_file: Option<PathBuf>,
    /// The symbols that are indices (`IND`, e.g. SPX), each one of `symbols`; the others are
    /// stocks or ETFs (`STK`).
    pub indices: std::collections::BTreeSet<String>,
    /// Contracts cache directory, as written.
    pub contracts_cache: PathBuf,
    /// What to do when a symbol has no cache.
    pub on_missing_cache: OnMissingCache,
}

/// Which shard of the universe to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Batching {
    /// Number of shards, at least 1.
    pub count: u32,
    /// This shard, `0..count`.
    pub index: u32,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { count: 1, index: 0 }
    }
}

/// Gateway settings, defaults filled in, durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// API client id.
    pub client_id: i32,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Per-request timeout, ms.
    pub request_timeout_ms: u64,
    /// Most requests in flight (1..=50).
    pub max_in_flight: u32,
    /// How long to keep reconnecting, ms.
    pub reconnect_for_ms: u64,
    /// Attempts per task for retryable errors.
    pub max_attempts: u32,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            host: "127.0.0.1".into(),
            port: 4002,
            client_id: 1,
            connect_timeout_ms: 30_000,
            request_timeout_ms: 120_000,
            max_in_flight: 50,
            reconnect_for_ms: 12 * 3_600_000,
            max_attempts: 5,
        }
    }
}

/// One phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Unique name.
    pub name: String,
    /// IB `whatToShow`.
    pub what: crate::bars::WhatToShow,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// Bar cells in plan order, no duplicates.
    pub bars: Vec<BarCell>,
    /// Contract selection.
    pub select: Select,
    /// Phases this one waits for, per symbol.
    pub depends_on: Vec<String>,
}

/// A bar size x duration cell.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct BarCell {
    /// Bar size.
    #[schemars(with = "String")]
    pub size: BarSize,
    /// Total duration back from the end.
    #[schemars(with = "String")]
    pub duration: Duration,
}

/// Contract selection of a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// Every non-expired contract.
    All,
    /// Near-the-money subset, chosen once the reference close is known.
    NearAtm(NearAtmRule),
}

/// Near-the-money rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NearAtmRule {
    /// K: strikes per expiry and right.
    pub strikes: u32,
    /// E: nearest expiries strictly after the end.
    pub expiries: u32,
    /// Reference close sources in the order to try.
    pub reference: Vec<CloseSource>,
}
