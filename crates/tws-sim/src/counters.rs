//! Server counters, readable in-process and printed as JSON when the standalone server stops, so
//! that tests and benchmarks can assert "zero pacing violations" and compute throughput.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Live counters (atomics and small locked maps).
#[derive(Debug)]
pub struct Counters {
    started: Instant,
    connections: AtomicU64,
    refused_connections: AtomicU64,
    active_connections: AtomicI64,
    requests: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<i32, u64>>,
    disconnects: Mutex<BTreeMap<String, u64>>,
    pacing_violations: AtomicU64,
    in_flight: AtomicI64,
    peak_in_flight: AtomicI64,
    bars_served: AtomicU64,
    hist_ok: AtomicU64,
    hist_empty: AtomicU64,
    hist_cancelled: AtomicU64,
    hist_hung: AtomicU64,
    malformed_frames: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountersSnapshot {
    /// Seconds since the server started.
    pub elapsed_secs: f64,
    /// Connections accepted and handshaken (or attempted).
    pub connections: u64,
    /// Connections refused during an outage.
    pub refused_connections: u64,
    /// Connections open now.
    pub active_connections: i64,
    /// Requests received, by kind (`historical_data`, `contract_details`, ...).
    pub requests: BTreeMap<String, u64>,
    /// Error messages sent, by code (notices such as 2104 included).
    pub errors: BTreeMap<i32, u64>,
    /// Connections closed by the server or the peer, by cause.
    pub disconnects: BTreeMap<String, u64>,
    /// Small-bar pacing violations answered.
    pub pacing_violations: u64,
    /// Historical requests being served or queued now.
    pub in_flight_historical: i64,
    /// Highest number of historical requests in flight at once.
    pub peak_in_flight_historical: i64,
    /// Bars sent.
    pub bars_served: u64,
    /// Historical requests answered with bars.
    pub historical_ok: u64,
    /// Historical requests answered with the no-data 162 (EMPTY).
    pub historical_empty: u64,
    /// Historical requests cancelled by the client while running.
    pub historical_cancelled: u64,
    /// Historical requests left unanswered on purpose (hang fault).
    pub historical_hung: u64,
    /// Frames that could not be decoded.
    pub malformed_frames: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            started: Instant::now(),
            connections: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            active_connections: AtomicI64::new(0),
            requests: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            disconnects: Mutex::new(BTreeMap::new()),
            pacing_violations: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            peak_in_flight: AtomicI64::new(0),
            bars_served: AtomicU64::new(0),
            hist_ok: AtomicU64::new(0),
            hist_empty: AtomicU64::new(0),
            hist_cancelled: AtomicU64::new(0),
            hist_hung: AtomicU64::new(0),
            malformed_frames: AtomicU64::new(0),
        }
    }
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    if let Ok(mut g) = m.lock() {
        *g.entry(k).or_insert(0) += 1;
    }
}

/// Which outcome a finished historical request had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistOutcome {
    /// Bars sent.
    Ok,
    /// No-data 162.
    Empty,
    /// Cancelled.
    Cancelled,
    /// Hang fault.
    Hung,
}

impl Counters {
    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.active_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection ended, for `cause`.
    pub fn connection_closed(&self, cause: &str) {
        self.active_connections.fetch_sub(1, Ordering::Relaxed);
        bump(&self.disconnects, cause.to_string());
    }

    /// A connection was refused (outage).
    pub fn refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A request of `kind` arrived.
    pub fn request(&self, kind: &str) {
        bump(&self.requests, kind.to_string());
    }

    /// An error message with `code` was sent.
    pub fn error(&self, code: i32) {
        bump(&self.errors, code);
    }

    /// A pacing violation was answered.
    pub fn pacing_violation(&self) {
        self.pacing_violations.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame did not decode.
    pub fn malformed(&self) {
        self.malformed_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// A historical request entered service (queued or running).
    pub fn hist_started(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    /// A historical request left service.
    pub fn hist_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Record how a historical request ended (`bars` sent when Ok).
    pub fn hist_outcome(&self, outcome: HistOutcome, bars: u64) {
        match outcome {
            HistOutcome::Ok => {
                self.hist_ok.fetch_add(1, Ordering::Relaxed);
                self.bars_served.fetch_add(bars, Ordering::Relaxed);
            }
            HistOutcome::Empty => {
                self.hist_empty.fetch_add(1, Ordering::Relaxed);
            }
            HistOutcome::Cancelled => {
                self.hist_cancelled.fetch_add(1, Ordering::Relaxed);
            }
            HistOutcome::Hung => {
                self.hist_hung.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Copy everything.
    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountersSnapshot {
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            connections: get(&self.connections),
            refused_connections: get(&self.refused_connections),
            active_connections: self.active_connections.load(Ordering::Relaxed),
            requests: self.requests.lock().map(|g| g.clone()).unwrap_or_default(),
            errors: self.errors.lock().map(|g| g.clone()).unwrap_or_default(),
            disconnects: self
                .disconnects
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default(),
            pacing_violations: get(&self.pacing_violations),
            in_flight_historical: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight_historical: self.peak_in_flight.load(Ordering::Relaxed),
            bars_served: get(&self.bars_served),
            historical_ok: get(&self.hist_ok),
            historical_empty: get(&self.hist_empty),
            historical_cancelled: get(&self.hist_cancelled),
            historical_hung: get(&self.hist_hung),
            malformed_frames: get(&self.malformed_frames),
        }
    }
}

impl CountersSnapshot {
    /// Requests of one kind.
    pub fn requests_of(&self, kind: &str) -> u64 {
        self.requests.get(kind).copied().unwrap_or(0)
    }

    /// Error messages with one code.
    pub fn errors_of(&self, code: i32) -> u64 {
        self.errors.get(&code).copied().unwrap_or(0)
    }
}
