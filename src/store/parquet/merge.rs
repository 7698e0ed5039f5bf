//! Writing bar files: merging a fetched answer into the stored rows by session, recording what
//! each session answered in the file's coverage, and the atomic write that makes the rows and
//! that record visible together.

use super::read::{quarantine, read_file};
use super::{MergeOutcome, SeriesKey, StoreError, StoredBar, WriteMode};
use crate::ib::FetchedBar;
use crate::store::coverage::{Answer, Cover, FileCoverage, Unit, COVERAGE_KEY};
use crate::store::provenance::Provenance;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::path::Path;

/// Merge bars fetched for `units` into the series' file: in [`WriteMode::Merge`] the file's
/// rows of other units stay, the fetched units' stored rows are replaced by the answer (merged
/// by key: ts within the file's conid, bar size and what; bars outside the units, such as the
/// half session before a window's first whole one, are not kept), and the coverage records what
/// each unit answered; `Replace` starts the file afresh. `prior`: the coverage known for a
/// series without a file (sessions answered empty so far). A file that cannot be decoded is
/// quarantined first; one that cannot be read (I/O) fails the merge and is left alone. The file
/// is written in the current format whatever format it had (an older file gains the new
/// columns, from `key`), with `prov` appended to its provenance.
pub fn merge_units(
    path: &Path,
    key: &SeriesKey,
    fetched: &[FetchedBar],
    units: &[Unit],
    mode: WriteMode,
    prior: Option<&FileCoverage>,
    prov: &Provenance,
) -> Result<MergeOutcome, StoreError> {
    let fetched_at = prov.fetched_at;
    let mut quarantined = None;
    let existing = match mode {
        WriteMode::Replace => None,
        WriteMode::Merge => match read_file(path) {
            Ok(f) => f,
            Err(StoreError::Corrupt { .. }) => {
                quarantined = Some(quarantine(path, fetched_at)?);
                None
            }
            Err(e) => return Err(e),
        },
    };
    let (rows, mut coverage, earlier) = match existing {
        Some(f) => {
            let cov = f.effective_coverage();
            (f.rows, cov, f.provenance.requests)
        }
        None => (
            Vec::new(),
            match mode {
                WriteMode::Merge => prior.cloned().unwrap_or_default(),
                WriteMode::Replace => FileCoverage::default(),
            },
            Vec::new(),
        ),
    };
    let before: std::collections::HashSet<i64> =
        rows.iter().map(|r| r.bar.ts.timestamp_millis()).collect();
    let mut by_ts: BTreeMap<i64, StoredBar> = rows
        .into_iter()
        .filter(|r| !units.iter().any(|u| u.holds(r.bar.ts)))
        .map(|r| (r.bar.ts.timestamp_millis(), r))
        .collect();
    for b in fetched
        .iter()
        .filter(|b| units.iter().any(|u| u.holds(b.ts)))
    {
        by_ts.insert(
            b.ts.timestamp_millis(),
            StoredBar {
                bar: *b,
                fetched_at,
            },
        );
    }
    for u in units {
        let answer = if fetched.iter().any(|b| u.holds(b.ts)) {
            Answer::Bars
        } else {
            Answer::Empty
        };
        coverage.set(
            u,
            Cover {
                answer,
                provisional: fetched_at < u.end(),
            },
        );
    }
    let appended = by_ts.keys().filter(|k| !before.contains(k)).count();
    let rows: Vec<StoredBar> = by_ts.into_values().collect();
    let written = !rows.is_empty() || path.exists();
    if written {
        let kv = crate::store::provenance::metadata(prov, &earlier);
        write_atomic(path, key, &rows, &coverage, kv)?;
    }
    Ok(MergeOutcome {
        appended,
        total: rows.len(),
        quarantined,
        coverage,
        written,
    })
}

/// Merge fetched bars whatever sessions they fall in (tests and benchmarks: the units are the
/// sessions of the bars). `incremental = false` replaces the file.
pub fn merge_bars(
    path: &Path,
    key: &SeriesKey,
    fetched: &[FetchedBar],
    fetched_at: DateTime<Utc>,
    incremental: bool,
) -> Result<MergeOutcome, StoreError> {
    let dates: std::collections::BTreeSet<NaiveDate> = fetched
        .iter()
        .map(|b| crate::calendar::trading_date(b.ts))
        .collect();
    let units: Vec<Unit> = dates
        .into_iter()
        .filter_map(|d| crate::calendar::session(d).ok().flatten())
        .map(Unit::Session)
        .collect();
    let mode = if incremental {
        WriteMode::Merge
    } else {
        WriteMode::Replace
    };
    merge_units(
        path,
        key,
        fetched,
        &units,
        mode,
        None,
        &Provenance::untracked(fetched_at),
    )
}

/// Write rows, their coverage record and the key-value pairs `extra` (provenance) to `path` via
/// a temporary file in the same directory and a rename: the record and the bars it describes
/// become visible together.
pub fn write_atomic(
    path: &Path,
    key: &SeriesKey,
    rows: &[StoredBar],
    coverage: &FileCoverage,
    extra: Vec<(String, String)>,
) -> Result<(), StoreError> {
    let mut df =
        crate::store::bar_schema::build_frame(key, rows).map_err(|source| StoreError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    let mut kv = vec![(COVERAGE_KEY.to_string(), coverage.encode())];
    kv.extend(extra);
    crate::store::atomic::write_with(path, |f| {
        crate::store::parquet_compat::write_frame(f, &mut df, kv, None)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })
    .map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}
