//! The state every part of a running simulated gateway shares: the accept loop in
//! [`crate::server`], each connection in [`crate::conn`] and the [`crate::SimHandle`] tests hold.
//! It lives apart from both so the server can hand sockets to `conn` without `conn` reaching
//! back into the server.

use crate::counters::Counters;
use crate::faults::Faults;
use crate::hmds::Hmds;
use crate::market::Market;
use crate::scenario::Scenario;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// One historical request as received, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistRequestRecord {
    /// Order of arrival (0-based, server-wide).
    pub seq: u64,
    /// Client id of the connection.
    pub client_id: i32,
    /// Request id.
    pub req_id: i32,
    /// conId asked for (0 when the request described the contract by fields).
    pub con_id: i64,
    /// Bar size as sent.
    pub bar_size: String,
    /// Duration as sent.
    pub duration: String,
    /// End date-time as sent (empty = now).
    pub end: String,
    /// What to show.
    pub what: String,
    /// RTH only.
    pub use_rth: bool,
    /// `pending`, `ok`, `empty`, `error:<code>`, `cancelled`, `hung`, `disconnected`.
    pub outcome: String,
    /// Bars sent.
    pub bars: usize,
    /// Milliseconds after server start when it arrived.
    pub received_ms: u64,
    /// Milliseconds after server start when it was answered, if it was.
    pub answered_ms: Option<u64>,
}

/// State shared by the accept loop, every connection and the handle.
#[derive(Debug)]
pub struct Shared {
    /// The scenario.
    pub scenario: Scenario,
    /// The market.
    pub market: Arc<Market>,
    /// Counters.
    pub counters: Counters,
    /// Service model.
    pub hmds: Hmds,
    /// Fault state and events.
    pub faults: Arc<Faults>,
    /// Client ids connected now.
    pub client_ids: Mutex<HashSet<i32>>,
    /// Historical request log.
    pub log: Mutex<Vec<HistRequestRecord>>,
    /// Server start.
    pub started: Instant,
    /// Set to true on stop.
    pub stop: watch::Sender<bool>,
}

impl Shared {
    /// Milliseconds since start.
    pub fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Append a record; returns its index.
    pub fn log_push(&self, mut rec: HistRequestRecord) -> usize {
        match self.log.lock() {
            Ok(mut g) => {
                rec.seq = g.len() as u64;
                g.push(rec);
                g.len() - 1
            }
            Err(_) => usize::MAX,
        }
    }

    /// Set the outcome of a record.
    pub fn log_outcome(&self, idx: usize, outcome: &str, bars: usize) {
        let ms = self.ms();
        if let Ok(mut g) = self.log.lock() {
            if let Some(r) = g.get_mut(idx) {
                if r.outcome == "pending" {
                    r.outcome = outcome.to_string();
                    r.bars = bars;
                    if outcome != "hung" && outcome != "disconnected" {
                        r.answered_ms = Some(ms);
                    }
                }
            }
        }
    }

    /// The gateway's clock: the wall clock when the scenario follows it and `today` is the
    /// real date, else the market's "now" advanced by the time since start (so clients
    /// computing "the last session" from reqCurrentTime agree with the market).
    pub fn clock(&self) -> chrono::DateTime<chrono::Utc> {
        let now = self.market.now();
        if self.market.follows_wall_clock()
            && now > chrono::Utc::now() - chrono::Duration::seconds(1)
        {
            chrono::Utc::now()
        } else {
            // Simulated time runs `time-scale` times faster than the wall clock.
            let elapsed = self.started.elapsed().as_secs_f64() * self.scenario.time_scale;
            now + chrono::Duration::from_std(crate::hmds::secs_f64(elapsed)).unwrap_or_default()
        }
    }
}
