//! Loading a scenario from TOML: a preset as the base, the file's keys deep-merged over it,
//! serde with the key path for errors, then the range checks serde cannot make.
//!
//! Every error names the file and the key, so a typo in a scenario never silently runs the
//! preset's value.

use super::{Scenario, SimClock};
use chrono::Datelike;
use std::path::Path;

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
        use crate::universe::{SIM_FIRST_YEAR, SIM_LAST_YEAR};
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
