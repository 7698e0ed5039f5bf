//! What the tasks of one run share: the configuration, the gateway and governor, the summary and
//! coverage writers, the limits learned so far, and the channel of events the scheduler counts
//! ([`Event`]). The scheduler ([`super::run`]) builds it once per run.

use super::governor::PacingGovernor;
use super::reconnect::Reconnector;
use super::run::ExecConfig;
use crate::bars::BarSize;
use crate::ib::{Gateway, OutcomeClass};
use crate::store::coverage::FileCoverage;
use crate::store::coverage_index::{CoverageIndex, IndexWriter};
use crate::store::summary::SummaryWriter;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the tasks tell the scheduler (counted into the totals and the timeline).
pub(super) enum Event {
    Request {
        retry: bool,
    },
    Learned {
        bar: BarSize,
        sessions: usize,
    },
    Finished {
        class: OutcomeClass,
        bars: u64,
    },
    SeriesDone {
        phases: Vec<Arc<str>>,
        symbol: Arc<str>,
    },
    Reconnected,
    GatewayLost(String),
    /// A request was answered (any class) after this long: for the timeline.
    Answered {
        class: OutcomeClass,
        latency: Duration,
    },
    /// A request found the connection gone (an outage starts): for the timeline.
    Disconnected,
    /// A finished task's summary line could not be written: the task is not done.
    WriteFailed,
}

pub(super) struct Shared {
    pub(super) cfg: ExecConfig,
    pub(super) gateway: Gateway,
    pub(super) governor: Arc<PacingGovernor>,
    pub(super) summary: Arc<Mutex<SummaryWriter>>,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) stop: watch::Receiver<bool>,
    /// Reconnects after a drop, and the "gateway lost" state once they gave up.
    pub(super) reconnector: Reconnector,
    pub(super) today: chrono::NaiveDate,
    /// Coverage of files as the run started (fast path for files without a Parquet record).
    pub(super) index: CoverageIndex,
    pub(super) index_writer: Arc<Mutex<IndexWriter>>,
    /// Coverage of series without a file recorded in this run (the index above is as of the
    /// start).
    pub(super) fileless: Mutex<HashMap<String, FileCoverage>>,
    pub(super) limits: Mutex<LearnedLimits>,
    pub(super) probes: Mutex<HashMap<BarSize, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests hold a read guard while in flight; a suspect task sent alone takes the write
    /// guard (tokio's lock is fair: new requests wait behind it).
    pub(super) solo: tokio::sync::RwLock<()>,
}

/// Per bar size, what this run learned about the gateway's duration limit (in sessions).
#[derive(Default)]
pub(super) struct LearnedLimits {
    /// Longest window that answered with bars.
    confirmed: HashMap<BarSize, usize>,
    /// Windows are split to this many sessions (a longer one answered zero bars or too long).
    learned: HashMap<BarSize, usize>,
}

impl Shared {
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.cfg.now.unwrap_or_else(Utc::now)
    }

    /// Coverage of a series without a file (all-empty so far): recorded earlier in this run, or
    /// in the index by an earlier one.
    pub(super) fn index_entry(&self, rel: &str, path: &std::path::Path) -> Option<FileCoverage> {
        if !path.exists() {
            if let Some(c) = self.fileless.lock().ok().and_then(|m| m.get(rel).cloned()) {
                return Some(c);
            }
        }
        self.index.current(rel, path)
    }

    /// Note a series' coverage for the rest of this run (series without a file live only here
    /// and in the index).
    pub(super) fn note_coverage(&self, rel: &str, path: &std::path::Path, cov: &FileCoverage) {
        if let Ok(mut m) = self.fileless.lock() {
            if path.exists() {
                m.remove(rel);
            } else {
                m.insert(rel.to_string(), cov.clone());
            }
        }
    }

    /// A series finished: no later task of this run writes its file (a file is one series), so
    /// its in-run coverage is dropped. Without this the map grew by a coverage record (a few
    /// KB for a six-month window) per all-empty series over the whole run.
    pub(super) fn series_done(&self, rel: &str) {
        if let Ok(mut m) = self.fileless.lock() {
            m.remove(rel);
        }
    }

    /// Series without a file whose coverage this run still holds (those still running).
    pub(super) fn fileless_held(&self) -> usize {
        self.fileless.lock().map_or(0, |m| m.len())
    }

    /// Append a series' coverage to the index. Called after the task's summary record is
    /// written: a run killed in between leaves the index stale (the file's fingerprint no longer
    /// matches), so the task is planned again from the file and recorded UP_TO_DATE.
    pub(super) async fn persist_coverage(
        &self,
        rel: &str,
        path: &std::path::Path,
        cov: &FileCoverage,
    ) {
        let (w, rel, path, cov, now) = (
            self.index_writer.clone(),
            rel.to_string(),
            path.to_path_buf(),
            cov.clone(),
            Utc::now(),
        );
        let res = tokio::task::spawn_blocking(move || {
            w.lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .record(&rel, &path, &cov, now)
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("cannot append to the coverage index: {e}"),
            Err(e) => tracing::error!("coverage index task failed: {e}"),
        }
    }

    pub(super) fn learned_limit(&self, bar: BarSize) -> Option<usize> {
        self.limits.lock().ok()?.learned.get(&bar).copied()
    }

    pub(super) fn confirmed(&self, bar: BarSize, sessions: usize) -> bool {
        self.limits
            .lock()
            .map(|l| l.confirmed.get(&bar).is_some_and(|c| *c >= sessions))
            .unwrap_or(false)
    }

    pub(super) fn confirm(&self, bar: BarSize, sessions: usize) {
        if let Ok(mut l) = self.limits.lock() {
            let c = l.confirmed.entry(bar).or_default();
            *c = (*c).max(sessions);
        }
    }

    pub(super) fn learn(&self, bar: BarSize, sessions: usize) {
        if let Ok(mut l) = self.limits.lock() {
            let e = l.learned.entry(bar).or_insert(sessions);
            *e = (*e).min(sessions);
        }
        let _ = self.events.send(Event::Learned { bar, sessions });
    }

    pub(super) fn probe_lock(&self, bar: BarSize) -> Arc<tokio::sync::Mutex<()>> {
        match self.probes.lock() {
            Ok(mut m) => m.entry(bar).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}
