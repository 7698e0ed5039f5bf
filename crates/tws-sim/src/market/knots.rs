//! Intraday price knots kept across requests. A session's knots (one underlying price per
//! minute, a Box-Muller draw and an `exp` each) are the same for every option of that
//! underlying, and a weekend run asks for a symbol's contracts one after another: computing
//! them once per request made them a third of the simulator's CPU at 300 symbols. The cache
//! only saves work; the knots are a pure function of (seed, underlying, session), so the bars
//! are the same with or without it.

use chrono::NaiveDate;
use ib_model::calendar::Session;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One session's knots: its prices at each minute from the open to the close.
#[derive(Debug)]
pub(super) struct SessionKnots {
    pub session: Session,
    pub prices: Vec<f64>,
}

/// Knots by (underlying index, session date), at most [`KnotsCache::CAPACITY`] sessions
/// (about 3 KB each for a regular session): when full it starts over, which costs a
/// recomputation and never changes a bar.
#[derive(Debug, Default)]
pub(super) struct KnotsCache {
    map: Mutex<HashMap<(usize, NaiveDate), Arc<SessionKnots>>>,
}

impl KnotsCache {
    /// Sessions kept: six months of 64 underlyings.
    const CAPACITY: usize = 8192;

    /// The knots of `key`, from the cache or computed by `compute` (outside the lock: two
    /// requests may compute the same session at once; both get equal knots).
    pub fn get_or_insert(
        &self,
        key: (usize, NaiveDate),
        compute: impl FnOnce() -> Option<SessionKnots>,
    ) -> Option<Arc<SessionKnots>> {
        if let Some(k) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Some(k);
        }
        let knots = Arc::new(compute()?);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= Self::CAPACITY {
                m.clear();
            }
            m.insert(key, knots.clone());
        }
        Some(knots)
    }
}
