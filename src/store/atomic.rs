//! Atomic file replacement: write a temporary file in the same directory, sync it, rename it
//! over the target. A crash leaves the old file or the new one, never half of one.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A temporary name next to `path`, unique to this process and write: `.{name}.tmp-{pid}-{n}`.
/// Created with `create_new`, so two writers (two tasks, two processes) never share one.
pub fn temp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Remove temporary files of `path` left by processes that no longer exist (a run killed while
/// writing): their content never became the file, and the task that wrote them is redone.
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let fname = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = fname
            .strip_prefix(&prefix)
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let dead = pid != std::process::id()
            && Path::new("/proc/self").exists()
            && !Path::new(&format!("/proc/{pid}")).exists();
        if dead {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Write through `fill` into a temporary file, then rename it to `path`.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    remove_stale_temps(path);
    let tmp = temp_path(path);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Write bytes atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// Write pretty JSON (with a trailing newline) atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temp_of_a_dead_process_is_removed_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        // No process has pid 4,000,000 (above Linux's pid_max default); our own temp is kept.
        let stale = dir.path().join(".f.parquet.tmp-4000000");
        let own = temp_path(&path);
        std::fs::write(&stale, b"half").unwrap();
        write_bytes(&path, b"whole").unwrap();
        assert!(!stale.exists(), "stale temp removed");
        assert!(!own.exists(), "own temp renamed away");
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }
}
