//! A test workspace (plan, caches, outputs and state under one temp dir), the plan files the
//! tests write into it, and the binary run inside it.

use super::{end_date, run_cli_async, Caches};
use chrono::NaiveDate;
use opt_backfill::sim::Market;
use opt_backfill::store::summary::SummaryRecord;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The limits section every test plan has unless it names its own.
pub const DEFAULT_LIMITS: &str = "[limits]\n\"8 hours\" = \"6 M\"\n";

/// A plan file's text field by field, with the tests' defaults: scope `test`, client id 7,
/// 5 s timeouts, six attempts, `8 hours` = `6 M`. Symbols and the gateway port come from where
/// it is written ([`Workspace::write_plan`]).
#[derive(Clone, Debug)]
pub struct PlanSpec {
    /// The plan's name (and file stem).
    pub name: String,
    /// `[[phase]]` sections as TOML text.
    pub phases: String,
    /// The `end` value (a date, or an instant with an offset).
    pub end: String,
    /// The whole `[limits]` section.
    pub limits: String,
    /// `gateway.request-timeout`.
    pub request_timeout: String,
    /// `gateway.max-attempts`.
    pub max_attempts: u32,
    /// Extra top-level lines, after `end`.
    pub top: String,
    /// `universe.indices`, if any.
    pub indices: Vec<String>,
}

impl PlanSpec {
    /// A plan of `phases` ending at [`end_date`].
    pub fn new(name: &str, phases: &str) -> PlanSpec {
        PlanSpec {
            name: name.into(),
            phases: phases.into(),
            end: end_date().to_string(),
            limits: DEFAULT_LIMITS.into(),
            request_timeout: "5s".into(),
            max_attempts: 6,
            top: String::new(),
            indices: Vec::new(),
        }
    }

    /// End at session `d`.
    pub fn end(mut self, d: NaiveDate) -> PlanSpec {
        self.end = d.to_string();
        self
    }

    /// End at an instant (`2026-11-30T12:00:00-05:00`).
    pub fn end_at(mut self, instant: &str) -> PlanSpec {
        self.end = instant.into();
        self
    }

    /// Replace the `[limits]` section (whole text, header included).
    pub fn limits(mut self, section: &str) -> PlanSpec {
        self.limits = section.into();
        self
    }

    /// `gateway.max-attempts`.
    pub fn max_attempts(mut self, n: u32) -> PlanSpec {
        self.max_attempts = n;
        self
    }

    /// `gateway.request-timeout`.
    pub fn request_timeout(mut self, t: &str) -> PlanSpec {
        self.request_timeout = t.into();
        self
    }

    /// One attempt of 300 ms per request: hung requests fail fast.
    pub fn fast_fail(self) -> PlanSpec {
        self.request_timeout("300ms").max_attempts(1)
    }

    /// An extra top-level line (`reference-snapshot = "..."`).
    pub fn top(mut self, line: &str) -> PlanSpec {
        self.top.push_str(line);
        self.top.push('\n');
        self
    }

    /// Declare `symbols` indices in the universe.
    pub fn indices(mut self, symbols: &[&str]) -> PlanSpec {
        self.indices = symbols.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The TOML text for a workspace, symbols and port.
    pub fn render(&self, ws: &Workspace, symbols: &[String], port: u16) -> String {
        let quoted = |v: &[String]| -> String {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let indices = if self.indices.is_empty() {
            String::new()
        } else {
            format!("indices = [{}]\n", quoted(&self.indices))
        };
        format!(
            r#"name = "{name}"
scope = "test"
output-root = "{out}"
state-root = "{state}"
end = "{end}"
{top}
[universe]
symbols = [{syms}]
{indices}contracts-cache = "{caches}"

[gateway]
host = "127.0.0.1"
port = {port}
client-id = 7
connect-timeout = "5s"
request-timeout = "{timeout}"
reconnect-for = "90s"
max-attempts = {attempts}

{limits}
{phases}
"#,
            name = self.name,
            end = self.end,
            top = self.top,
            out = ws.output().display(),
            state = ws.state().display(),
            caches = ws.caches().display(),
            syms = quoted(symbols),
            timeout = self.request_timeout,
            attempts = self.max_attempts,
            limits = self.limits,
            phases = self.phases,
        )
    }
}

/// A test workspace: plan, caches, outputs and state under one temp dir.
pub struct Workspace {
    /// Keeps the directory alive.
    pub _dir: tempfile::TempDir,
    /// Root.
    pub root: PathBuf,
}

impl Workspace {
    /// New empty workspace.
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Workspace { _dir: dir, root }
    }

    /// Caches directory.
    pub fn caches(&self) -> PathBuf {
        self.root.join("state/contracts_cache")
    }

    /// The plans' state root.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The plans' output root.
    pub fn output(&self) -> PathBuf {
        self.root.join("data_test")
    }

    /// The scope's run logs (one directory per run).
    pub fn run_logs(&self) -> PathBuf {
        self.root.join("state/run_logs/test")
    }

    /// Write caches for `symbols` from `market`; returns the number of contracts.
    pub fn write_caches(&self, market: &Market, symbols: &[String], caches: Caches) -> usize {
        caches.write(market, symbols, &self.caches())
    }

    /// Write a plan with the given symbols, end and phases (TOML `[[phase]]` text).
    pub fn plan(
        &self,
        name: &str,
        symbols: &[String],
        end: NaiveDate,
        port: u16,
        phases: &str,
    ) -> PathBuf {
        self.write_plan(&PlanSpec::new(name, phases).end(end), symbols, port)
    }

    /// Write `spec` for `symbols` against `port` as `<name>.toml` in the root.
    pub fn write_plan(&self, spec: &PlanSpec, symbols: &[String], port: u16) -> PathBuf {
        let p = self.root.join(format!("{}.toml", spec.name));
        std::fs::write(&p, spec.render(self, symbols, port)).unwrap();
        p
    }

    /// Run the binary with `args` in the root.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let args = args.iter().map(|a| a.to_string()).collect();
        run_cli_async(args, self.root.clone()).await
    }

    /// `execute <plan> <extra>` in the root.
    pub async fn execute(&self, plan: &Path, extra: &[&str]) -> Output {
        let plan = plan.display().to_string();
        let mut args = vec!["execute", plan.as_str()];
        args.extend_from_slice(extra);
        self.cli(&args).await
    }

    /// All summary records written so far.
    pub fn summaries(&self) -> Vec<SummaryRecord> {
        let mut out = Vec::new();
        let Ok(runs) = std::fs::read_dir(self.run_logs()) else {
            return out;
        };
        for run in runs.flatten() {
            if !run.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(run.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("summary_") {
                    for line in std::fs::read_to_string(f.path()).unwrap().lines() {
                        if let Ok(r) = serde_json::from_str::<SummaryRecord>(line) {
                            out.push(r);
                        }
                    }
                }
            }
        }
        out
    }
}
