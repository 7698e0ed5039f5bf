//! Provenance of a bar file: which format, tool version, run and requests wrote it, carried in
//! the file's Parquet key-value metadata next to the coverage record.
//!
//! Why: a lake of half a million files is rewritten by many runs over months; when a bar looks
//! wrong, the file itself says which version of the tool and which requests produced it.

use crate::bars::{BarSize, Duration as IbDuration};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the bar file format (columns and key-value metadata), bumped on any change a
/// reader can see. 1: the seed's 17 columns, no version key. 2: contract identity and
/// `session_date` columns, provenance keys.
pub const FORMAT_VERSION: u32 = 2;

/// Key of the format version.
pub const FORMAT_KEY: &str = "opt_backfill.format_version";
/// Key of the version of opt-backfill that last wrote the file.
pub const TOOL_VERSION_KEY: &str = "opt_backfill.tool_version";
/// Key of the id of the run that last wrote the file.
pub const RUN_ID_KEY: &str = "opt_backfill.run_id";
/// Key of the JSON array of the requests whose answers the file holds (the last
/// [`MAX_REQUESTS`], oldest first).
pub const REQUESTS_KEY: &str = "opt_backfill.requests";

/// Requests kept per file: enough for a season of daily runs, bounded so the footer stays small.
pub const MAX_REQUESTS: usize = 32;

/// One historical-data request whose answer was merged into the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request end (UTC).
    pub end: DateTime<Utc>,
    /// IB duration, e.g. `5 D`.
    pub duration: String,
    /// IB bar size, e.g. `8 hours`.
    pub bar_size: String,
    /// `TRADES`, `MIDPOINT`, ...
    pub what: String,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// When the answer arrived.
    pub fetched_at: DateTime<Utc>,
    /// The run that sent it.
    pub run_id: String,
}

/// What a merge records about who is writing: passed to
/// [`super::parquet::merge_units`] by the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The run writing the file.
    pub run_id: String,
    /// When the merged bars were fetched (their `fetched_at`).
    pub fetched_at: DateTime<Utc>,
    /// The request that fetched them (None: bars from elsewhere, e.g. tests and benchmarks).
    pub request: Option<RequestRecord>,
}

impl Provenance {
    /// Provenance of one gateway request's answer.
    pub fn of_request(
        run_id: &str,
        fetched_at: DateTime<Utc>,
        end: DateTime<Utc>,
        duration: IbDuration,
        bar_size: BarSize,
        what: &str,
        use_rth: bool,
    ) -> Provenance {
        Provenance {
            run_id: run_id.to_string(),
            fetched_at,
            request: Some(RequestRecord {
                end,
                duration: duration.to_string(),
                bar_size: bar_size.as_str().to_string(),
                what: what.to_string(),
                use_rth,
                fetched_at,
                run_id: run_id.to_string(),
            }),
        }
    }

    /// Bars without a request (tests, benchmarks, imports).
    pub fn untracked(fetched_at: DateTime<Utc>) -> Provenance {
        Provenance {
            run_id: String::new(),
            fetched_at,
            request: None,
        }
    }
}

/// The provenance keys of a file about to be written: `earlier` requests (from the file being
/// replaced) followed by this write's, the last [`MAX_REQUESTS`] kept.
pub fn metadata(prov: &Provenance, earlier: &[RequestRecord]) -> Vec<(String, String)> {
    let mut requests: Vec<&RequestRecord> = earlier.iter().chain(prov.request.as_ref()).collect();
    let drop = requests.len().saturating_sub(MAX_REQUESTS);
    requests.drain(..drop);
    vec![
        (FORMAT_KEY.to_string(), FORMAT_VERSION.to_string()),
        (
            TOOL_VERSION_KEY.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (RUN_ID_KEY.to_string(), prov.run_id.clone()),
        (
            REQUESTS_KEY.to_string(),
            serde_json::to_string(&requests).unwrap_or_else(|_| "[]".into()),
        ),
    ]
}

/// The provenance read back from a file's key-value metadata (absent keys: defaults; a
/// malformed request list reads as empty, it only loses history).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileProvenance {
    /// Format version (1 for files without the key).
    pub format_version: u32,
    /// Tool version that last wrote the file.
    pub tool_version: Option<String>,
    /// Run that last wrote the file.
    pub run_id: Option<String>,
    /// Requests recorded, oldest first.
    pub requests: Vec<RequestRecord>,
}

impl FileProvenance {
    /// Read from `(key, value)` pairs.
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> FileProvenance {
        let mut out = FileProvenance {
            format_version: 1,
            ..Default::default()
        };
        for (k, v) in pairs {
            match k {
                FORMAT_KEY => out.format_version = v.parse().unwrap_or(1),
                TOOL_VERSION_KEY => out.tool_version = Some(v.to_string()),
                RUN_ID_KEY => out.run_id = Some(v.to_string()),
                REQUESTS_KEY => out.requests = serde_json::from_str(v).unwrap_or_default(),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn requests_are_bounded_and_round_trip() {
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let p = Provenance::of_request(
            "run-1",
            t,
            t,
            "5 D".parse().unwrap(),
            BarSize::Hours8,
            "TRADES",
            true,
        );
        let earlier = vec![p.request.clone().unwrap(); MAX_REQUESTS + 5];
        let kv = metadata(&p, &earlier);
        let back = FileProvenance::from_pairs(kv.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(back.format_version, FORMAT_VERSION);
        assert_eq!(back.run_id.as_deref(), Some("run-1"));
        assert_eq!(back.requests.len(), MAX_REQUESTS);
        assert_eq!(back.requests[0].duration, "5 D");
        assert_eq!(back.requests[0].bar_size, "8 hours");
        let none = FileProvenance::from_pairs(std::iter::empty());
        assert_eq!(none.format_version, 1, "no key: the seed's format");
    }
}
