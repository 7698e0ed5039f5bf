//! The discovery summary: one JSON line per symbol (`state/run_logs/discover/discover_<run
//! id>.jsonl`), so that a failed symbol can be found and re-run, a slow one explained, and the
//! split of an incremental run (reused, skipped, qualified) seen. Versioned; the JSON Schema in
//! `schemas/discover_summary.schema.json` is generated from [`SymbolReport`].

use super::DiscoveryMode;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format version of the discovery summary lines; bump it with a line in
/// [`SUMMARY_FORMAT_CHANGELOG`].
pub const SUMMARY_FORMAT_VERSION: u32 = 2;

/// What changed in each discovery summary version.
pub const SUMMARY_FORMAT_CHANGELOG: &[(u32, &str)] = &[
    (1, "first version (lines without format_version)"),
    (
        2,
        "format_version, mode, earlier_cache, reused, known_missing_skipped, qualified_now, new_missing, verified, verify_mismatches, rebuilt_full",
    ),
];

/// What happened to one symbol (one line of the discovery summary JSONL), so that a failed
/// symbol can be found and re-run and a slow one explained.
/// The JSON Schema in `schemas/discover_summary.schema.json` is generated from this type.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
pub struct SymbolReport {
    /// Summary format version ([`SUMMARY_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Run id (UTC start time), shared by every line of one run.
    pub run_id: String,
    /// Symbol.
    pub symbol: String,
    /// Cache date.
    pub date: NaiveDate,
    /// `OK`, `SKIPPED` (cache exists) or `ERR`.
    pub status: String,
    /// Underlying conId, when qualified.
    pub con_id: Option<i64>,
    /// Underlying close used for the strike band and recorded in the cache, when known.
    pub reference_close: Option<f64>,
    /// How the cache was built: `incremental` (from `earlier_cache`) or `full`.
    pub mode: DiscoveryMode,
    /// The earlier cache an incremental run started from.
    pub earlier_cache: Option<String>,
    /// Candidates from the SMART chain after the filters.
    pub candidates: usize,
    /// Candidates kept from the earlier cache without a request.
    pub reused: usize,
    /// Candidates the negative cache says do not exist, not asked again.
    pub known_missing_skipped: usize,
    /// Candidates qualified in this run (the verification sample not included).
    pub qualified_now: usize,
    /// Candidates that exist (written to the cache).
    pub qualified: usize,
    /// Candidates IB answered 200 for in this run (do not exist).
    pub not_found: usize,
    /// Of `not_found`, those the negative cache did not hold before.
    pub new_missing: usize,
    /// Reused contracts re-qualified by the verification sample.
    pub verified: usize,
    /// Differences the verification sample found (a non-empty list rebuilt the symbol in full).
    pub verify_mismatches: Vec<String>,
    /// True when the verification sample found a difference and the symbol was rebuilt in full.
    pub rebuilt_full: bool,
    /// Requests sent for this symbol (with retries).
    pub requests: usize,
    /// Error, for `ERR`.
    pub error: Option<String>,
    /// Cache file.
    pub path: Option<String>,
    /// Seconds spent on the symbol.
    pub elapsed_secs: f64,
    /// Seconds spent qualifying the candidates (the paced part).
    pub qualify_secs: f64,
}

impl SymbolReport {
    /// The line of a symbol about to be discovered: status OK until something says otherwise,
    /// nothing counted yet.
    pub(super) fn started(
        run_id: &str,
        symbol: &str,
        date: NaiveDate,
        mode: DiscoveryMode,
    ) -> Self {
        SymbolReport {
            format_version: SUMMARY_FORMAT_VERSION,
            run_id: run_id.to_string(),
            symbol: symbol.to_string(),
            date,
            status: "OK".into(),
            con_id: None,
            reference_close: None,
            mode,
            earlier_cache: None,
            candidates: 0,
            reused: 0,
            known_missing_skipped: 0,
            qualified_now: 0,
            qualified: 0,
            not_found: 0,
            new_missing: 0,
            verified: 0,
            verify_mismatches: Vec::new(),
            rebuilt_full: false,
            requests: 0,
            error: None,
            path: None,
            elapsed_secs: 0.0,
            qualify_secs: 0.0,
        }
    }

    /// The one line said on the terminal when a symbol is done.
    pub(super) fn console_line(&self) -> String {
        format!(
            "discover {}: {} {} ({} candidates: {} reused, {} known missing skipped, {} qualified now, {} new missing; {} in cache; {} requests, {:.1} s{})",
            self.symbol,
            self.status,
            match self.mode {
                DiscoveryMode::Incremental => "incremental",
                DiscoveryMode::Full => "full",
            },
            self.candidates,
            self.reused,
            self.known_missing_skipped,
            self.qualified_now,
            self.new_missing,
            self.qualified,
            self.requests,
            self.elapsed_secs,
            self.error
                .as_ref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }
}

/// A whole discovery run.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoverReport {
    /// Per symbol, in input order.
    pub symbols: Vec<SymbolReport>,
    /// Candidates answered (existing or 200) per second of qualification, over the run.
    pub qualified_per_sec: f64,
    /// Summary file.
    pub summary_path: PathBuf,
    /// Governor figures at the end (peak in flight, limit, latency), to explain the rate.
    pub governor: crate::ib::session::governor::GovernorStats,
    /// True when the stop signal ended the run early.
    pub interrupted: bool,
    /// Set when the gateway was lost for good; later symbols were not attempted.
    pub gateway_lost: Option<String>,
}

/// Append one line to the summary; a write error is reported, not fatal (the caches are the
/// product, the summary is the log).
pub(super) fn append_summary(path: &Path, rep: &SymbolReport) {
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let line = serde_json::to_string(rep).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")
    })();
    if let Err(e) = res {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}
