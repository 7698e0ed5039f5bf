//! The run's locks: one per scope and batch, plus the scope's own (shared by the shards of a
//! sharded run, exclusive for an unsharded one).

use super::run::{ExecConfig, ExecError};
use std::path::PathBuf;

/// Holds the per-scope-and-batch lock for the life of the run (released by the OS even on
/// SIGKILL, since it is an advisory file lock, not a file's existence).
pub struct RunLock {
    _file: std::fs::File,
    _scope: std::fs::File,
}

/// Take the locks for a scope and batch: the batch's own lock, and the scope's lock, shared by
/// the shards of a sharded run and exclusive for an unsharded one, so an unsharded run and a
/// sharded run of the same scope never write at once.
pub fn lock_scope(cfg: &ExecConfig) -> Result<RunLock, ExecError> {
    let dir = cfg.state_root.join("run_logs").join(&cfg.scope);
    std::fs::create_dir_all(&dir).map_err(|source| ExecError::Io {
        path: dir.clone(),
        source,
    })?;
    let open = |path: &std::path::Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| ExecError::Io {
                path: path.to_path_buf(),
                source,
            })
    };
    let locked = |path: PathBuf| ExecError::Locked {
        scope: cfg.scope.clone(),
        batch: format!("{}/{}", cfg.batch_index, cfg.batch_count),
        path,
    };
    let scope_path = dir.join(".lock-scope");
    let scope_file = open(&scope_path)?;
    let scope_lock = if cfg.batch_count > 1 {
        scope_file.try_lock_shared()
    } else {
        scope_file.try_lock()
    };
    if scope_lock.is_err() {
        return Err(locked(scope_path));
    }
    let path = dir.join(format!(".lock-{}of{}", cfg.batch_index, cfg.batch_count));
    let file = open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock {
            _file: file,
            _scope: scope_file,
        }),
        Err(_) => Err(locked(path)),
    }
}
