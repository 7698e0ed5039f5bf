//! Resume: which tasks the lake already covers, decided before the scheduler starts, from the
//! scope's coverage index (or, for a scope written before the index existed, its summaries).

use super::run::{ExecConfig, ExecError};
use crate::bars::Duration as IbDuration;
use crate::compile::task::FetchTask;
use crate::store::coverage::{window_ordinals, window_units};
use crate::store::coverage_index::CoverageIndex;
use crate::store::{parquet, summary};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Drop tasks whose window the lake already covers, by the scope's coverage index: a task is
/// done when the index entry of its file still matches the file on disk (size and mtime) and
/// records every session of the window as answered and final (checked on the record's session
/// runs, without expanding it; a window with a provisional session or a chunk goes to the
/// scheduler, which decides from the file).
/// Anything else goes to the scheduler, which reads the file itself. A scope without an index
/// (written by an older version) falls back to the summaries for tasks that wrote no file
/// (EMPTY), and its files are re-read at run time, which records them in the index.
pub fn filter_resumed(cfg: &ExecConfig, tasks: Vec<FetchTask>) -> Result<Resumed, ExecError> {
    let io = |path: PathBuf| move |source| ExecError::Io { path, source };
    let index = CoverageIndex::load(&cfg.state_root, &cfg.scope).map_err(io(
        crate::store::coverage_index::index_dir(&cfg.state_root, &cfg.scope),
    ))?;
    if !cfg.resume || !cfg.incremental {
        return Ok(Resumed {
            tasks,
            finished: 0,
            index,
        });
    }
    let done = if index.is_empty() {
        let legacy = summary::load_resume_state(&cfg.state_root, &cfg.scope)
            .map_err(io(cfg.state_root.clone()))?;
        let mut checked = HashSet::new();
        tasks
            .iter()
            .map(|t| legacy.done_without_file(&t.id) && legacy.is_done(&t.id, &mut checked))
            .collect()
    } else {
        done_by_coverage(cfg, &index, &tasks)
    };
    let before = tasks.len();
    let left: Vec<FetchTask> = tasks
        .into_iter()
        .zip(done)
        .filter_map(|(t, done)| (!done).then_some(t))
        .collect();
    Ok(Resumed {
        finished: (before - left.len()) as u64,
        tasks: left,
        index,
    })
}

/// What resume found: the tasks still to do, how many were finished earlier, and the coverage
/// index it read (handed on to [`execute`](super::execute), so a run reads it once).
pub struct Resumed {
    /// Tasks for the scheduler.
    pub tasks: Vec<FetchTask>,
    /// Tasks whose window the lake already covers.
    pub finished: u64,
    /// The scope's coverage index as the run starts.
    pub index: CoverageIndex,
}

/// Per task, whether the index entry of its file still matches the file (size and mtime) and
/// covers its window. Checking is a `stat` per task (the rest is memory), spread over the
/// machine's cores: half a million files is seconds of system calls on one.
fn done_by_coverage(cfg: &ExecConfig, index: &CoverageIndex, tasks: &[FetchTask]) -> Vec<bool> {
    let scope_dir = parquet::scope_dir(&cfg.output_root, &cfg.scope);
    let check = |chunk: &[FetchTask]| -> Vec<bool> {
        // Windows are shared by every contract of a cell: their session span, computed once.
        type SessionSpan = Option<(u32, u32)>;
        let mut windows: HashMap<(DateTime<Utc>, IbDuration), SessionSpan> = HashMap::new();
        chunk
            .iter()
            .map(|t| {
                let rel = t.relative_bar_path();
                let Some(runs) = index.current_runs(&rel, &scope_dir.join(&rel)) else {
                    return false;
                };
                windows
                    .entry((t.end, t.duration))
                    .or_insert_with(|| window_ordinals(&window_units(t.end, t.duration)))
                    .is_some_and(|(a, b)| runs.covers(a, b))
            })
            .collect()
    };
    // A panicking check counts its tasks as not done: they are fetched, not skipped.
    crate::par::map_chunks(tasks, 4096, check, |chunk| vec![false; chunk.len()])
}
