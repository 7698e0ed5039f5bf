//! The executor (or discovery) as a child process: spawn it with its stderr timestamped line by
//! line, sample its memory and CPU from `/proc/PID/status` and `/proc/PID/stat`, and kill it
//! with SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on every Linux this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// One sample of the child.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the child was spawned.
    pub at: f64,
    /// Resident set, MB.
    pub rss_mb: f64,
    /// Peak resident set so far, MB.
    pub hwm_mb: f64,
    /// User + system CPU seconds so far.
    pub cpu_secs: f64,
}

/// A running child with its stderr lines (time since spawn, text).
pub struct Running {
    pub child: Child,
    pub started: Instant,
    pub lines: Arc<Mutex<Vec<(f64, String)>>>,
    pub samples: Vec<Sample>,
}

/// Spawn `bin args...` in `cwd`; stderr is read by a thread that timestamps each line and
/// copies it to `log` (stdout too, untimed).
pub fn spawn(bin: &Path, args: &[String], cwd: &Path, log: &Path) -> Running {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let file = Arc::new(Mutex::new(
        std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display())),
    ));
    if let Some(err) = child.stderr.take() {
        let (lines, file) = (lines.clone(), file.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let at = started.elapsed().as_secs_f64();
                if let Ok(mut f) = file.lock() {
                    let _ = writeln!(f, "[{at:9.3}] {line}");
                }
                if let Ok(mut l) = lines.lock() {
                    l.push((at, line));
                }
            }
        });
    }
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut f) = file.lock() {
                    let _ = writeln!(f, "stdout: {line}");
                }
            }
        });
    }
    Running {
        child,
        started,
        lines,
        samples: Vec::new(),
    }
}

impl Running {
    /// Seconds since spawn.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Read `/proc/PID` now and keep the sample (None once the process is gone).
    pub fn sample(&mut self) -> Option<Sample> {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may contain spaces) start at field 3.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the command name.
        let s = Sample {
            at: self.elapsed(),
            rss_mb: kb("VmRSS:") / 1024.0,
            hwm_mb: kb("VmHWM:") / 1024.0,
            cpu_secs: (ticks(11) + ticks(12)) / TICKS_PER_SEC,
        };
        if s.rss_mb == 0.0 {
            return None; // a zombie: exited, not yet reaped
        }
        self.samples.push(s);
        Some(s)
    }

    /// The exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL (std's `kill` is SIGKILL on Unix), then reap.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// Wait for the exit, sampling every `every` and calling `tick` every 10 ms with the
    /// seconds since spawn; `tick` returning true kills the child (-9).
    pub fn watch(
        &mut self,
        every: Duration,
        mut tick: impl FnMut(f64) -> bool,
    ) -> (Option<ExitStatus>, bool) {
        let mut next_sample = Instant::now();
        loop {
            if let Some(st) = self.try_wait() {
                return (Some(st), false);
            }
            if Instant::now() >= next_sample {
                self.sample();
                next_sample += every;
            }
            if tick(self.elapsed()) {
                self.sample();
                return (self.kill9(), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first stderr line containing `needle`, with its time since spawn.
    pub fn line_with(&self, needle: &str) -> Option<(f64, String)> {
        let l = self.lines.lock().ok()?;
        l.iter().find(|(_, s)| s.contains(needle)).cloned()
    }

    /// Peak RSS (the last VmHWM read), final RSS (the last VmRSS read) and CPU seconds.
    pub fn figures(&self) -> (f64, f64, f64) {
        let last = self.samples.last().copied().unwrap_or_default();
        let peak = self.samples.iter().map(|s| s.hwm_mb).fold(0.0, f64::max);
        (peak, last.rss_mb, last.cpu_secs)
    }
}

/// The simulator as a child process (`opt-backfill sim --scenario FILE --listen 127.0.0.1:0`):
/// the release binary serves the executor, whatever profile this harness is built in.
pub struct SimChild {
    child: Child,
    pub addr: String,
    stdout: Arc<Mutex<String>>,
}

impl SimChild {
    /// Start it and read the address it prints first.
    pub fn start(bin: &Path, scenario: &Path, log: &Path) -> SimChild {
        let mut child = Command::new(bin)
            .args(["sim", "--listen", "127.0.0.1:0", "--scenario"])
            .arg(scenario)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("sim log"))
            .spawn()
            .expect("opt-backfill sim");
        let mut out = BufReader::new(child.stdout.take().expect("sim stdout"));
        let mut addr = String::new();
        out.read_line(&mut addr).expect("sim address");
        let stdout = Arc::new(Mutex::new(String::new()));
        let s2 = stdout.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Ok(mut s) = s2.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        SimChild {
            child,
            addr: addr.trim().to_string(),
            stdout,
        }
    }

    /// Stop it (SIGINT, like Ctrl-C) and return the counters it prints.
    pub fn stop(mut self) -> serde_json::Value {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        let text = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

/// Counts the lines appended to a run's summary files (`summary_*`), reading
/// only what was added since the last call.
#[derive(Default)]
pub struct LineCounter {
    offsets: std::collections::HashMap<std::path::PathBuf, u64>,
    pub lines: u64,
}

impl LineCounter {
    pub fn poll(&mut self, dir: &Path) -> u64 {
        use std::io::{Read, Seek, SeekFrom};
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("summary_"))
            {
                continue;
            }
            let off = self.offsets.entry(p.clone()).or_insert(0);
            let Ok(mut f) = std::fs::File::open(&p) else {
                continue;
            };
            if f.seek(SeekFrom::Start(*off)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_ok() {
                *off += buf.len() as u64;
                self.lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            }
        }
        self.lines
    }
}
