//! The HMDS service model: latency draws, service slots, the soft throttle and the small-bar
//! pacing rules, shared by every connection of one server.
//!
//! * Latency: lognormal around `latency-median-ms` (clamped), plus `per-bar-us` per bar, plus
//!   the soft throttle: `throttle-extra-ms` for every historical request over
//!   `throttle-free-requests` in the last `throttle-window-secs`.
//! * Slots: `slots` requests are served at once; the others wait in a FIFO queue (tokio's
//!   semaphore is fair), so latency seen by a client grows with load.
//! * Pacing (bars of 30 s or less only, gateway-wide): an identical request within
//!   `identical-window-secs`, more than `same-contract-max` requests for one contract and tick
//!   type within `same-contract-window-secs` (BID_ASK counts twice), or more than `window-max`
//!   within `window-secs` is a violation. Rejected requests are not counted in the windows.
//! * Compressed time: every span above is simulated time, turned into wall-clock time by
//!   [`Scenario::wall`] (divided by `time-scale`).

use super::pricing::{hash, normal, str_key, unit};
use super::scenario::Scenario;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What identifies a small-bar request for the pacing rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacingKey {
    /// Contract key (conId or description) + exchange + tick type.
    pub contract: u64,
    /// Everything of the request (contract key, end, duration, bar size, what, RTH).
    pub identical: u64,
    /// Weight: 2 for BID_ASK, else 1.
    pub weight: u32,
}

impl PacingKey {
    /// Build a key from the request fields.
    pub fn new(
        contract: &str,
        exchange: &str,
        what: &str,
        end: &str,
        duration: &str,
        bar: &str,
        rth: bool,
    ) -> PacingKey {
        let c = hash(0, &[str_key(contract), str_key(exchange), str_key(what)]);
        PacingKey {
            contract: c,
            identical: hash(
                c,
                &[
                    str_key(end),
                    str_key(duration),
                    str_key(bar),
                    u64::from(rth),
                ],
            ),
            weight: if what.eq_ignore_ascii_case("BID_ASK") {
                2
            } else {
                1
            },
        }
    }
}

/// Which pacing rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacingRule {
    /// Identical request within the identical window.
    Identical,
    /// Too many for one contract and tick type.
    SameContract,
    /// Too many overall.
    Window,
}

/// Seconds to a `Duration` that never panics (negative or NaN is zero, too large is the
/// maximum): scenario numbers are user input.
pub fn secs_f64(x: f64) -> Duration {
    Duration::try_from_secs_f64(x.max(0.0)).unwrap_or(if x.is_nan() {
        Duration::ZERO
    } else {
        Duration::MAX
    })
}

#[derive(Debug, Default)]
struct PacingState {
    recent: VecDeque<(Instant, PacingKey)>,
}

/// Shared HMDS state.
#[derive(Debug)]
pub struct Hmds {
    scenario: Scenario,
    /// Service slots.
    pub slots: Semaphore,
    draws: std::sync::atomic::AtomicU64,
    throttle: Mutex<VecDeque<Instant>>,
    pacing: Mutex<PacingState>,
}

impl Hmds {
    /// Model for a scenario.
    pub fn new(scenario: &Scenario) -> Hmds {
        Hmds {
            scenario: scenario.clone(),
            slots: Semaphore::new(scenario.hmds.slots.max(1) as usize),
            draws: std::sync::atomic::AtomicU64::new(0),
            throttle: Mutex::new(VecDeque::new()),
            pacing: Mutex::new(PacingState::default()),
        }
    }

    fn draw(&self, median_ms: f64) -> Duration {
        let h = &self.scenario.hmds;
        let n = self
            .draws
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let x = hash(self.scenario.seed, &[n, 0x1A7]);
        let z = normal(unit(x), unit(hash(x, &[1])));
        let ms = (median_ms * (h.latency_sigma * z).exp())
            .clamp(h.latency_min_ms.min(median_ms), h.latency_max_ms);
        secs_f64(ms.max(0.0) / 1000.0)
    }

    /// Service time of a historical request returning `bars` bars (drawn, plus per-bar cost,
    /// plus the soft throttle); registers the request in the throttle window.
    pub fn service_time(&self, bars: usize) -> Duration {
        let h = &self.scenario.hmds;
        let base = self.draw(h.latency_median_ms);
        let per_bar = secs_f64(bars as f64 * h.per_bar_us / 1e6);
        let now = Instant::now();
        let window = self.scenario.wall(h.throttle_window_secs.max(0.0));
        let over = match self.throttle.lock() {
            Ok(mut q) => {
                while q.front().is_some_and(|t| now.duration_since(*t) > window) {
                    q.pop_front();
                }
                q.push_back(now);
                q.len().saturating_sub(h.throttle_free_requests as usize)
            }
            Err(_) => 0,
        };
        let extra = secs_f64(over as f64 * h.throttle_extra_ms.max(0.0) / 1000.0);
        self.scenario.wall_of(base + per_bar + extra)
    }

    /// Latency of a contract-details answer.
    pub fn contract_details_time(&self) -> Duration {
        self.scenario
            .wall_of(self.draw(self.scenario.hmds.contract_details_median_ms))
    }

    /// Latency of an option-chain or head-timestamp answer.
    pub fn sec_def_time(&self) -> Duration {
        self.scenario
            .wall_of(self.draw(self.scenario.hmds.sec_def_median_ms))
    }

    /// Apply the small-bar pacing rules to a new request: `Err` names the rule broken.
    pub fn check_pacing(&self, key: &PacingKey) -> Result<(), PacingRule> {
        let p = &self.scenario.pacing;
        if !p.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut st) = self.pacing.lock() else {
            return Ok(());
        };
        let keep = self.scenario.wall(
            p.window_secs
                .max(p.identical_window_secs)
                .max(p.same_contract_window_secs)
                .max(0.0),
        );
        while st
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > keep)
        {
            st.recent.pop_front();
        }
        let within = |t: &Instant, secs: f64| now.duration_since(*t) < self.scenario.wall(secs);
        let identical = st
            .recent
            .iter()
            .any(|(t, k)| k.identical == key.identical && within(t, p.identical_window_secs));
        let same: u32 = st
            .recent
            .iter()
            .filter(|(t, k)| k.contract == key.contract && within(t, p.same_contract_window_secs))
            .map(|(_, k)| k.weight)
            .sum();
        let total: u32 = st
            .recent
            .iter()
            .filter(|(t, _)| within(t, p.window_secs))
            .map(|(_, k)| k.weight)
            .sum();
        if identical {
            return Err(PacingRule::Identical);
        }
        if same + key.weight > p.same_contract_max {
            return Err(PacingRule::SameContract);
        }
        if total + key.weight > p.window_max {
            return Err(PacingRule::Window);
        }
        st.recent.push_back((now, key.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_rules() {
        let s = Scenario::preset("fast").unwrap();
        let h = Hmds::new(&s);
        let k = |c: &str, end: &str| {
            PacingKey::new(c, "SMART", "TRADES", end, "1800 S", "1 secs", true)
        };
        assert!(h.check_pacing(&k("1", "a")).is_ok());
        assert!(
            h.check_pacing(&k("1", "a")).is_err(),
            "identical within 15 s"
        );
        for i in 0..4 {
            assert!(h.check_pacing(&k("1", &format!("b{i}"))).is_ok());
        }
        assert!(
            h.check_pacing(&k("1", "c")).is_err(),
            "6th for one contract within 2 s"
        );
        let mut ok = 5;
        for i in 0..100 {
            if h.check_pacing(&k(&format!("x{i}"), "a")).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 60, "60 in 10 minutes");
    }

    #[test]
    fn bid_ask_counts_twice() {
        let s = Scenario::preset("fast").unwrap();
        let h = Hmds::new(&s);
        let k = |end: &str| PacingKey::new("7", "SMART", "BID_ASK", end, "1800 S", "5 secs", true);
        assert!(h.check_pacing(&k("a")).is_ok());
        assert!(h.check_pacing(&k("b")).is_ok());
        assert_eq!(
            h.check_pacing(&k("c")),
            Err(PacingRule::SameContract),
            "2+2+2 > 5"
        );
        let other = PacingKey::new("7", "SMART", "TRADES", "a", "1800 S", "5 secs", true);
        assert!(
            h.check_pacing(&other).is_ok(),
            "another tick type is another contract key"
        );
    }

    #[test]
    fn compressed_time_divides_latencies_and_shortens_windows() {
        let mut s = Scenario::preset("realistic").unwrap();
        s.time_scale = 10.0;
        let h = Hmds::new(&s);
        let mut v: Vec<_> = (0..200).map(|_| h.contract_details_time()).collect();
        v.sort();
        let median = v[100].as_secs_f64();
        assert!((0.025..0.06).contains(&median), "400 ms / 10: {median}");
        // The identical-request window is 15 simulated s = 1.5 wall s.
        let k = PacingKey::new("1", "SMART", "TRADES", "a", "1800 S", "1 secs", true);
        assert!(h.check_pacing(&k).is_ok());
        assert!(h.check_pacing(&k).is_err());
        assert_eq!(s.wall(15.0), Duration::from_millis(1500));
    }

    #[test]
    fn latency_is_clamped_and_throttled() {
        let mut s = Scenario::preset("realistic").unwrap();
        s.hmds.throttle_free_requests = 2;
        let h = Hmds::new(&s);
        let mut v: Vec<_> = (0..200).map(|_| h.contract_details_time()).collect();
        v.sort();
        let median = v[100].as_secs_f64();
        assert!((0.25..0.6).contains(&median), "{median}");
        let a = h.service_time(0);
        assert!(a >= Duration::from_millis(150));
        let _ = h.service_time(0);
        let c = h.service_time(0);
        assert!(c >= Duration::from_millis(150 + 40));
    }
}
