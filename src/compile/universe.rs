//! Contracts caches of the universe: find the newest `{SYMBOL}_{YYYY-MM-DD}.json` per symbol,
//! read it, and check it against the cache format, naming the file (and line and column where
//! the JSON parser knows them) on any problem.

use crate::cache::{ContractsCache, CACHE_FORMAT_VERSION, OLDEST_READABLE_VERSION};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in an input file other than the plan (a contracts cache, a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (1 when unknown).
    pub line: u32,
    /// 1-based column (1 when unknown).
    pub col: u32,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    fn at_start(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// The newest cache file of each symbol in `dir`: symbol -> (date, path). Files that do not
/// follow `{SYMBOL}_{YYYY-MM-DD}.json` are ignored.
pub fn scan_cache_dir(dir: &Path) -> Result<BTreeMap<String, (NaiveDate, PathBuf)>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        InputError::at_start(
            dir,
            format!("cannot read the contracts cache directory: {e} (run `discover` first, or fix `universe.contracts-cache`)"),
        )
    })?;
    let mut out: BTreeMap<String, (NaiveDate, PathBuf)> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| InputError::at_start(dir, e.to_string()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((symbol, date)) = parse_cache_name(name) else {
            continue;
        };
        let path = entry.path();
        match out.get(symbol) {
            Some((d, _)) if *d >= date => {}
            _ => {
                out.insert(symbol.to_string(), (date, path));
            }
        }
    }
    Ok(out)
}

/// `AAPL_2026-11-27.json` -> (`AAPL`, 2026-11-27).
pub fn parse_cache_name(name: &str) -> Option<(&str, NaiveDate)> {
    let stem = name.strip_suffix(".json")?;
    let (symbol, date) = stem.rsplit_once('_')?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    if symbol.is_empty() {
        return None;
    }
    Some((symbol, date))
}

/// Read and check one cache file for `symbol` dated `date`.
pub fn load_cache(
    path: &Path,
    symbol: &str,
    date: NaiveDate,
) -> Result<ContractsCache, InputError> {
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::at_start(path, format!("cannot read the contracts cache: {e}")))?;
    let cache: ContractsCache = serde_json::from_slice(&bytes).map_err(|e| InputError {
        file: path.to_path_buf(),
        line: u32::try_from(e.line()).unwrap_or(u32::MAX).max(1),
        col: u32::try_from(e.column()).unwrap_or(u32::MAX).max(1),
        message: format!(
            "not a valid contracts cache: {} (see schemas/contracts_cache.schema.json)",
            strip_position(&e.to_string())
        ),
    })?;
    check_cache(&cache, symbol, date).map_err(|m| {
        InputError::at_start(
            path,
            format!("not a valid contracts cache: {m} (see schemas/contracts_cache.schema.json)"),
        )
    })?;
    Ok(cache)
}

/// The warning for a cache written before trading hours were recorded (format version 1), or
/// `None` for a current one: its hours come from the built-in list of late-closing classes.
pub fn hours_warning(file: &Path, cache: &ContractsCache) -> Option<String> {
    if cache.format_version >= 2 {
        return None;
    }
    let late: Vec<String> = cache
        .close_offsets()
        .into_iter()
        .filter(|(_, o)| *o != 0)
        .map(|(c, o)| format!("{c} +{o} min"))
        .collect();
    Some(format!(
        "warning: {}: contracts cache format version {} records no trading hours per class; using the built-in list of classes that close at 16:15 ({}); run `discover` again to record them",
        file.display(),
        cache.format_version,
        if late.is_empty() {
            "none of this cache's classes is on it".to_string()
        } else {
            late.join(", ")
        }
    ))
}

/// serde_json appends ` at line L column C`; the location is already in front of the message.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Checks the schema cannot express: version, file name agreement, positive ids and prices,
/// unique conIds.
fn check_cache(c: &ContractsCache, symbol: &str, date: NaiveDate) -> Result<(), String> {
    if !(OLDEST_READABLE_VERSION..=CACHE_FORMAT_VERSION).contains(&c.format_version) {
        return Err(format!(
            "format_version {} is not supported (this build reads {OLDEST_READABLE_VERSION} to {CACHE_FORMAT_VERSION})",
            c.format_version
        ));
    }
    let mut classes = HashSet::with_capacity(c.class_hours.len());
    for (i, h) in c.class_hours.iter().enumerate() {
        let max = crate::hours::MAX_OFFSET_MINUTES;
        if h.rth_close_offset_minutes.abs() > max {
            return Err(format!(
                "class_hours[{i}].rth_close_offset_minutes {} is outside -{max}..={max}",
                h.rth_close_offset_minutes
            ));
        }
        if !classes.insert(h.trading_class.as_str()) {
            return Err(format!(
                "class_hours[{i}].trading_class `{}` appears twice",
                h.trading_class
            ));
        }
    }
    if c.underlying.symbol != symbol {
        return Err(format!(
            "underlying.symbol `{}` does not match the file name's `{symbol}`",
            c.underlying.symbol
        ));
    }
    if c.as_of != date {
        return Err(format!(
            "as_of {} does not match the file name's date {date}",
            c.as_of
        ));
    }
    if let Some(close) = c.underlying.reference_close {
        if !(close.is_finite() && close > 0.0) {
            return Err(format!(
                "underlying.reference_close {close} is not a positive number"
            ));
        }
    }
    let mut ids = HashSet::with_capacity(c.contracts.len());
    for (i, k) in c.contracts.iter().enumerate() {
        if k.con_id <= 0 {
            return Err(format!(
                "contracts[{i}].con_id {} is not positive",
                k.con_id
            ));
        }
        if !(k.strike.is_finite() && k.strike > 0.0) {
            return Err(format!(
                "contracts[{i}].strike {} is not a positive number",
                k.strike
            ));
        }
        if !(k.multiplier.is_finite() && k.multiplier > 0.0) {
            return Err(format!(
                "contracts[{i}].multiplier {} is not a positive number",
                k.multiplier
            ));
        }
        if k.exchange.is_empty() || k.currency.is_empty() {
            return Err(format!(
                "contracts[{i}]: exchange and currency must not be empty"
            ));
        }
        if !ids.insert(k.con_id) {
            return Err(format!("contracts[{i}].con_id {} appears twice", k.con_id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(parse_cache_name("AAPL_2026-11-27.json"), Some(("AAPL", d)));
        assert_eq!(
            parse_cache_name("BRK B_2026-11-27.json"),
            Some(("BRK B", d))
        );
        assert_eq!(parse_cache_name("X_Y_2026-11-27.json"), Some(("X_Y", d)));
        assert_eq!(parse_cache_name("AAPL_2026-13-01.json"), None);
        assert_eq!(parse_cache_name("README.md"), None);
        assert_eq!(parse_cache_name("_2026-11-27.json"), None);
    }
}
