//! The lake as analysts read it: an index of a scope's bar files (`_index.parquet`, filter it,
//! then read only the files it names) and a Hive-partitioned export for scans.
//!
//! `execute` writes and merges one file per contract, bar size and what-to-show: the unit of
//! resume and of atomic rewrites. Half a million such files make every glob open half a million
//! footers; the index and the export are derived from them and can always be rebuilt.

pub mod export;
mod footer;
pub mod index;
pub mod source;

use std::path::{Path, PathBuf};

/// Prefix of a scope directory's name: `{output root}/raw/ib/historical_bars_{scope}`.
pub const SCOPE_PREFIX: &str = "historical_bars_";

/// What can go wrong building the index or the export.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The directory given is not a scope directory (bad input: exit 2).
    #[error(
        "{path}: not a scope directory ({why}); expected <output root>/raw/ib/historical_bars_<scope>, \
         holding SYMBOL/CONID/WHAT/BAR.parquet"
    )]
    NotAScope {
        /// Directory given.
        path: PathBuf,
        /// Why it is not one.
        why: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: {reason}")]
    Parquet {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl LakeError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LakeError::NotAScope { .. } => crate::exit::BAD_INPUT,
            _ => crate::exit::TASK_ERRORS,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn pq_err(path: &Path, reason: impl ToString) -> LakeError {
    LakeError::Parquet {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A scope directory, checked.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The directory.
    pub dir: PathBuf,
}

impl Scope {
    /// Check that `dir` is a scope directory: an existing directory named
    /// `historical_bars_<scope>`.
    pub fn open(dir: &Path) -> Result<Scope, LakeError> {
        let not = |why: &str| LakeError::NotAScope {
            path: dir.to_path_buf(),
            why: why.to_string(),
        };
        let meta = std::fs::metadata(dir).map_err(|e| not(&e.to_string()))?;
        if !meta.is_dir() {
            return Err(not("not a directory"));
        }
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        if !name.starts_with(SCOPE_PREFIX) || name.len() == SCOPE_PREFIX.len() {
            return Err(not(&format!(
                "its name does not start with `{SCOPE_PREFIX}`"
            )));
        }
        Ok(Scope {
            dir: dir.to_path_buf(),
        })
    }

    /// Every bar file of the scope, as paths relative to it (`SYMBOL/CONID/WHAT/BAR.parquet`),
    /// sorted. Quarantined (`*.corrupt-*`), temporary (`.*`) and index (`_*`) files are not bar
    /// files.
    pub fn bar_files(&self) -> Result<Vec<String>, LakeError> {
        let mut out = Vec::new();
        let mut stack = vec![(self.dir.clone(), String::new(), 0usize)];
        while let Some((dir, rel, depth)) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
            for e in entries {
                let e = e.map_err(io_err(&dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.starts_with('_') {
                    continue;
                }
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let is_dir = e.file_type().map_err(io_err(&e.path()))?.is_dir();
                if depth < 3 && is_dir {
                    stack.push((e.path(), child, depth + 1));
                } else if depth == 3 && !is_dir && name.ends_with(".parquet") {
                    out.push(child);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
