//! The manifest: the compiled plan as a versioned JSON file, what `execute` runs and what
//! `plan --diff` compares.
//!
//! Deterministic by construction: no timestamps of the compile, every list sorted, every map a
//! `BTreeMap`, struct fields in declaration order; the same plan and inputs give the same bytes.
//! The writer puts one task per line so that large manifests stay greppable and diffable.

use super::task::FetchTask;
use super::windows::Window;
use crate::bars::LimitTable;
use crate::cache::OptionContract;
use crate::plan::{Batching, GatewaySettings, LimitOrigin, NearAtmRule, Select};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Current manifest format version; bump it with a line in [`MANIFEST_CHANGELOG`].
pub const MANIFEST_FORMAT_VERSION: u32 = 3;

/// What changed in each manifest format version.
pub const MANIFEST_CHANGELOG: &[(u32, &str)] = &[
    (
        1,
        "first version: plan, resolved end, batch, gateway, phases with windows, tasks, near-ATM selections, expired and missing-cache counts, totals",
    ),
    (
        2,
        "limit_table (strict | observed, the base the windows were split with; the plan default became observed), limit_table_origin (plan | default) and effective_limits (per bar size of the plan's cells); a version 1 manifest reads as strict for `plan --diff`",
    ),
    (
        3,
        "cells carry class_windows: the windows of trading classes closing after the equity close (16:15 classes); task ends follow them",
    ),
];

/// Manifests before version 2 were split with the strict table, the only one there was.
fn strict_table() -> LimitTable {
    LimitTable::Strict
}

/// A compiled plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "opt-backfill manifest")]
pub struct Manifest {
    /// [`MANIFEST_FORMAT_VERSION`].
    pub format_version: u32,
    /// Plan identity and roots.
    pub plan: PlanInfo,
    /// The resolved end of the backfill.
    pub end: EndInfo,
    /// Display time zone (IANA).
    pub time_zone: String,
    /// The shard this manifest covers.
    pub batch: Batching,
    /// Gateway settings.
    pub gateway: GatewaySettings,
    /// The built-in limit table under the plan's overrides (absent before version 2: strict).
    #[serde(default = "strict_table")]
    pub limit_table: LimitTable,
    /// Whether the plan named the table or took the default.
    #[serde(default)]
    pub limit_table_origin: LimitOrigin,
    /// Per-bar-size limit overrides from the plan (`8 hours` -> `6 M`).
    pub limits: BTreeMap<String, String>,
    /// The longest duration per request the windows were split with, for every bar size of the
    /// plan's cells: the override, else the table's entry (absent before version 2).
    #[serde(default)]
    pub effective_limits: BTreeMap<String, String>,
    /// Phases in plan order, with their request windows.
    pub phases: Vec<PhaseInfo>,
    /// Symbols of this shard with a cache, sorted.
    pub symbols: Vec<SymbolInfo>,
    /// Symbols of this shard without a contracts cache (skipped), sorted.
    pub missing_cache: Vec<String>,
    /// Expired contracts (expiry on or before the end), per phase and symbol; not planned.
    pub expired: Vec<ExpiredCount>,
    /// Fetch tasks of `all` phases, sorted by phase (plan order), symbol, conId, bar cell,
    /// window.
    pub tasks: Vec<FetchTask>,
    /// Near-ATM selections, one per (phase, symbol), sorted the same way.
    pub selections: Vec<Selection>,
    /// Totals.
    pub totals: Totals,
}

/// Plan identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInfo {
    /// Plan name.
    pub name: String,
    /// Scope.
    pub scope: String,
    /// Output root as written in the plan.
    pub output_root: String,
    /// State root as written in the plan.
    pub state_root: String,
    /// Contracts cache directory as written (or defaulted).
    pub contracts_cache: String,
}

/// The resolved end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndInfo {
    /// As written: a date or `last-session`.
    pub spec: String,
    /// The session the backfill ends with.
    pub session: NaiveDate,
    /// Its close (UTC): every `all` task's last window ends here.
    pub close: DateTime<Utc>,
    /// True on a half day (13:00 New York close).
    pub half_day: bool,
}

/// A phase as compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseInfo {
    /// Name.
    pub name: String,
    /// `whatToShow`.
    pub what: crate::bars::WhatToShow,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// Contract selection.
    pub select: Select,
    /// Phases this one waits for (per symbol).
    pub depends_on: Vec<String>,
    /// Bar cells with their windows.
    pub cells: Vec<CellInfo>,
}

/// A bar cell and its request windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CellInfo {
    /// Bar size.
    #[schemars(with = "String")]
    pub size: crate::bars::BarSize,
    /// Duration requested in the plan.
    #[schemars(with = "String")]
    pub duration: crate::bars::Duration,
    /// Longest duration per request used for the split.
    #[schemars(with = "String")]
    pub limit: crate::bars::Duration,
    /// Windows, oldest first, of classes that close with the equities (16:00, 13:00 on half
    /// days).
    pub windows: Vec<Window>,
    /// Windows of the trading classes that close at another time (16:15 for SPY, QQQ, SPX, ...),
    /// by class, oldest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_windows: BTreeMap<String, Vec<Window>>,
}

impl CellInfo {
    /// The windows of a contract of `trading_class`.
    pub fn windows_for(&self, trading_class: &str) -> &[Window] {
        self.class_windows
            .get(trading_class)
            .map(Vec::as_slice)
            .unwrap_or(&self.windows)
    }
}

/// A symbol of the shard and its cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SymbolInfo {
    /// Symbol.
    pub symbol: String,
    /// Underlying conId.
    pub underlying_con_id: i64,
    /// Cache file name (in the contracts cache directory).
    pub cache_file: String,
    /// Cache date.
    pub cache_as_of: NaiveDate,
    /// Contracts in the cache.
    pub contracts: u32,
    /// Of which expired at the end.
    pub expired: u32,
    /// Reference close recorded in the cache, if any.
    pub cache_close: Option<f64>,
    /// Reference close from the plan's snapshot: the latest on or before the end session.
    pub snapshot_close: Option<DatedClose>,
}

/// A close and its session date.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatedClose {
    /// Session date.
    pub date: NaiveDate,
    /// Close.
    pub close: f64,
}

/// Expired contracts of one phase and symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiredCount {
    /// Phase.
    pub phase: String,
    /// Symbol.
    pub symbol: String,
    /// Contracts with expiry on or before the end.
    pub contracts: u32,
    /// Of which expire on the end session itself: still listed when the caches were built, but
    /// IB drops their definitions within about a day, so a run after the end loses them.
    pub on_end: u32,
}

/// The near-ATM selection of one phase and symbol: everything needed to pick the contracts once
/// the reference close is known, and the exact number of requests that will follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Phase.
    pub phase: String,
    /// Symbol.
    pub symbol: String,
    /// Underlying conId (for the gateway reference close).
    pub underlying_con_id: i64,
    /// Underlying security type, from the cache: `IND` closes are asked for as index bars
    /// (omitted for `STK`).
    #[serde(
        default,
        skip_serializing_if = "crate::cache::UnderlyingSecType::is_stock"
    )]
    pub underlying_sec_type: crate::cache::UnderlyingSecType,
    /// K, E and the reference sources.
    pub rule: NearAtmRule,
    /// Expiries must be strictly after this date (the end session).
    pub window_end: NaiveDate,
    /// `whatToShow`.
    pub what: crate::bars::WhatToShow,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// Bar cells and windows each selected contract gets.
    pub cells: Vec<CellInfo>,
    /// The E nearest expiries after the end (known now; only strikes wait for the close).
    pub expiries: Vec<NaiveDate>,
    /// Candidates: the non-expired contracts of those expiries, in cache order.
    pub candidates: Vec<OptionContract>,
    /// Contracts that will be selected: sum over expiries and rights of min(K, strikes there).
    pub contracts: u32,
    /// Requests: `contracts` x windows per contract.
    pub requests: u64,
    /// Reference close recorded in the cache, if any.
    pub cache_close: Option<f64>,
    /// Reference close from the plan's snapshot, if any (latest on or before `window_end`).
    pub snapshot_close: Option<DatedClose>,
}

/// Totals of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Symbols in the whole universe (all shards).
    pub universe_symbols: u32,
    /// Symbols in this shard.
    pub shard_symbols: u32,
    /// Symbols of this shard without a cache.
    pub missing_cache: u32,
    /// Fetch tasks of `all` phases.
    pub tasks: u64,
    /// Requests of near-ATM selections (exact).
    pub selection_requests: u64,
    /// Reference closes to resolve (symbols with a near-ATM phase).
    pub reference_closes: u64,
    /// All requests: tasks + selection requests.
    pub requests: u64,
    /// Expired contracts summed over phases and symbols.
    pub expired: u64,
    /// Requests dropped because an earlier phase already has the identical request.
    pub duplicates: u64,
    /// Per phase: requests.
    pub per_phase: BTreeMap<String, u64>,
}

/// A manifest that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// I/O on the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a manifest, or not this format.
    #[error("{}:{line}:{col}: not a valid manifest: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line.
        line: usize,
        /// Column.
        col: usize,
        /// Cause.
        message: String,
    },
}

impl Manifest {
    /// The canonical bytes: pretty at the top two levels, one list item (task, selection,
    /// symbol, ...) per line, a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing JSON to memory cannot fail");
        out
    }

    /// Write the canonical bytes to `w`.
    pub fn write_to<W: Write>(&self, w: W) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, w);
        let mut ser = serde_json::Serializer::with_formatter(&mut w, ShallowPretty::default());
        self.serialize(&mut ser).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    /// Write to `path` atomically: a temporary file in the same directory, fsync, rename. A
    /// reader never sees a half-written manifest. Creates the parent directories.
    pub fn write_atomic(&self, path: &Path) -> Result<(), ManifestError> {
        let io = |source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "manifest.json".into());
        let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
        let result = (|| {
            let f = std::fs::File::create(&tmp)?;
            self.write_to(&f)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// Read a manifest, with an error naming the file (and line and column when the JSON is
    /// malformed, or a message when the version is not this build's).
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_slice(&bytes, path)
    }

    /// Read a manifest of this or any earlier format version, for comparing with (`plan
    /// --diff`); fields added since read as their documented defaults. Never for executing.
    pub fn read_any_version(path: &Path) -> Result<Manifest, ManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, path, 1)
    }

    /// Parse manifest bytes; `path` names the source in errors.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Manifest, ManifestError> {
        Self::parse(bytes, path, MANIFEST_FORMAT_VERSION)
    }

    /// Parse a manifest whose version is in `oldest..=MANIFEST_FORMAT_VERSION`.
    fn parse(bytes: &[u8], path: &Path, oldest: u32) -> Result<Manifest, ManifestError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: Option<u32>,
        }
        if let Ok(Version {
            format_version: Some(v),
        }) = serde_json::from_slice::<Version>(bytes)
        {
            if !(oldest..=MANIFEST_FORMAT_VERSION).contains(&v) {
                return Err(ManifestError::Invalid {
                    path: path.to_path_buf(),
                    line: 1,
                    col: 1,
                    message: format!(
                        "format_version {v} is not supported (this build reads {MANIFEST_FORMAT_VERSION}): compile the plan again"
                    ),
                });
            }
        }
        let mut m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid {
                path: path.to_path_buf(),
                line: e.line().max(1),
                col: e.column().max(1),
                message: e.to_string(),
            })?;
        super::task::share_parts(&mut m.tasks);
        Ok(m)
    }
}

/// serde_json formatter: newlines and indentation for the first two nesting levels only, compact
/// below, so each task is one line.
#[derive(Default)]
struct ShallowPretty {
    depth: usize,
    has_value: bool,
}

const PRETTY_DEPTH: usize = 2;

impl ShallowPretty {
    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> std::io::Result<()> {
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for ShallowPretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value && self.depth < PRETTY_DEPTH {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        self.has_value = true;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.depth <= PRETTY_DEPTH {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        Ok(())
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value && self.depth < PRETTY_DEPTH {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        self.has_value = true;
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.depth <= PRETTY_DEPTH {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        Ok(())
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.depth <= PRETTY_DEPTH {
            w.write_all(b": ")
        } else {
            w.write_all(b":")
        }
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}
