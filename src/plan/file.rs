//! The plan file exactly as users write it (TOML or YAML, kebab-case keys), as serde types.
//!
//! These types are the source of `schemas/plan.schema.json`, so editors can validate plan files.
//! Loading does not go through serde (see [`super::decode`], which collects every error with its
//! location); tests check that the decoder's key lists equal this schema's properties, section
//! by section (`plan/decode/keys.rs`), and that the shipped plans deserialize through these
//! types too, so the schema and the loader cannot drift apart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A backfill plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "opt-backfill plan")]
pub struct PlanFile {
    /// Plan name: names the manifest file; letters, digits, `.`, `-`, `_`.
    pub name: String,
    /// Scope: a directory component of every output path (`historical_bars_<scope>`), so runs of
    /// different plans never mix files.
    pub scope: String,
    /// Root of the Parquet output (default `data_test`), relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_root: Option<String>,
    /// Root of manifests, run logs and caches (default `state`), relative to the working
    /// directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<String>,
    /// IANA time zone used to display times (default `America/New_York`); sessions always follow
    /// the New York exchange calendar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// End of the backfill: `YYYY-MM-DD` (that session's close; a non-trading day means the last
    /// session before it), `last-session` (the last complete session when the plan is compiled),
    /// or an instant (`2026-12-01T11:00:00-05:00`, `2026-12-01T11:00 America/New_York`): windows
    /// end there, a session in progress included up to it (provisional until it closes).
    pub end: String,
    /// Optional CSV of reference closes (`symbol,date,close`), relative to the plan file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_snapshot: Option<String>,
    /// Which underlyings, and where their contracts caches are.
    pub universe: UniverseFile,
    /// Shard of the universe this run covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<BatchingFile>,
    /// IB Gateway connection and request settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayFile>,
    /// Longest duration per request, per bar size: longer cells are split into windows of this
    /// length. A built-in table by name (`"observed"`, the default, or `"strict"`), or a table
    /// of per-bar-size overrides (e.g. `"8 hours" = "6 M"`) on top of `base` (default
    /// `observed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsFile>,
    /// The phases, run in dependency order.
    #[schemars(length(min = 1))]
    pub phase: Vec<PhaseFile>,
}

/// The `limits` key: a table name, or overrides on top of a base table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LimitsFile {
    /// `strict` (the older TWS API table) or `observed` (what real gateways serve).
    Table(crate::bars::LimitTable),
    /// Per-bar-size overrides with an optional base table.
    Overrides(LimitOverridesFile),
}

/// Per-bar-size limit overrides (unknown keys land in `sizes`; the loader checks them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LimitOverridesFile {
    /// The built-in table for bar sizes without an override (default `observed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<crate::bars::LimitTable>,
    /// Bar size (as IB spells it) = longest duration per request (`N S|D|W|M|Y`).
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<BarSizeName, DurationText>")]
    pub sizes: BTreeMap<String, String>,
}

/// Universe of underlyings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UniverseFile {
    /// Symbols inline (exclusive with `symbols-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
    /// A CSV with one symbol per line (first column; optional `symbol` header; `#` comments),
    /// relative to the plan file (exclusive with `symbols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols_file: Option<String>,
    /// The symbols that are indices (IB secType `IND`, e.g. `SPX`, qualified on CBOE; `NDX` on
    /// NASDAQ, `RUT` on RUSSELL); each must be one of the universe's symbols. The others are
    /// stocks or ETFs (`STK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<String>>,
    /// Directory of `{SYMBOL}_{YYYY-MM-DD}.json` contracts caches (default
    /// `<state-root>/contracts_cache`), relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracts_cache: Option<String>,
    /// What to do when a symbol has no cache: `skip` (record it, default) or `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_missing_cache: Option<OnMissingCache>,
}

/// What to do about a symbol without a contracts cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnMissingCache {
    /// Record the symbol as missing and plan the others.
    Skip,
    /// Refuse to compile.
    Fail,
}

/// Shard selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BatchingFile {
    /// Number of shards (1..=10000).
    #[schemars(range(min = 1, max = 10000))]
    pub batch_count: u32,
    /// This run's shard, `0..batch-count`.
    pub batch_index: u32,
}

/// Gateway settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GatewayFile {
    /// Host (default `127.0.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port (default 4002, IB Gateway paper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// API client id (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<i32>,
    /// Connect timeout, e.g. `30s` (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<HumanDuration>,
    /// Per-request timeout after which the request is cancelled, e.g. `120s` (default 120s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<HumanDuration>,
    /// Most historical requests in flight (1..=50, IB's limit; default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub max_in_flight: Option<u32>,
    /// How long to keep reconnecting after a disconnect, e.g. `12h` (default 12h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_for: Option<HumanDuration>,
    /// Attempts per task for retryable errors (1..=100, default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: Option<u32>,
}

/// One phase: a set of contracts and a matrix of bar cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PhaseFile {
    /// Phase name (unique; letters, digits, `-`, `_`).
    pub name: String,
    /// IB `whatToShow` (default `TRADES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::bars::WhatToShow>")]
    pub what_to_show: Option<String>,
    /// Regular trading hours only (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_rth: Option<bool>,
    /// Bar size x duration cells.
    #[schemars(length(min = 1))]
    pub bars: Vec<BarCellFile>,
    /// Which contracts: `all` (default) or `{ near-atm = { ... } }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<SelectFile>,
    /// Phases whose tasks (for the same symbol) must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// One bar size x duration cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BarCellFile {
    /// Bar size, spelled as IB does (`8 hours`, `30 mins`, `1 min`).
    #[schemars(with = "BarSizeName")]
    pub size: String,
    /// Duration back from the end, `N S|D|W|M|Y` (e.g. `6 M`).
    #[schemars(with = "DurationText")]
    pub duration: String,
}

/// Contract selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SelectFile {
    /// Every non-expired contract in the cache.
    All,
    /// Per symbol, the K strikes nearest the reference close for each right among the E nearest
    /// expiries after the end.
    NearAtm(NearAtmFile),
}

/// Near-the-money selection rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NearAtmFile {
    /// K: strikes per right and expiry (1..=50).
    #[schemars(range(min = 1, max = 50))]
    pub strikes: u32,
    /// E: nearest expiries after the end (1..=12).
    #[schemars(range(min = 1, max = 12))]
    pub expiries: u32,
    /// Reference close sources, tried in this order (default `["snapshot", "cache"]` when a
    /// snapshot is configured, else `["cache"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Vec<crate::cache::CloseSource>>,
}

/// A human duration: one or more terms of a number (decimals allowed) and a unit (`ms`, `s`,
/// `m`, `h`, `d`), added up, e.g. `30s`, `1.5h`, `1h30m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("pattern" = crate::inputs::duration::PATTERN))]
pub struct HumanDuration(pub String);

/// A bar size as IB spells it.
#[derive(JsonSchema)]
#[schemars(extend("enum" = crate::bars::BAR_SIZES.iter().map(|(_, s)| *s).collect::<Vec<_>>()))]
#[allow(dead_code)]
struct BarSizeName(String);

/// An IB duration `N S|D|W|M|Y`.
#[derive(JsonSchema)]
#[schemars(extend("pattern" = r"^[1-9][0-9]* [SDWMY]$"))]
#[allow(dead_code)]
struct DurationText(String);
