//! The pacing governor: every historical request passes through it.
//!
//! It keeps IB's hard rules (at most 50 open requests; the small-bar rules in
//! [`super::small_bars`]; the socket message rate is kept by `ibapi`'s `RateLimiter` in the
//! gateway client) and, inside them, adapts how many requests are in flight to what the gateway
//! gives, like TCP congestion control or vector's adaptive request concurrency:
//!
//! - slow start: the limit doubles every round trip while latency stays near its floor;
//! - additive increase: afterwards +1 per round trip in which the limit was actually used;
//! - multiplicative decrease: x0.9 when a round trip's mean latency exceeds `tolerance` times the
//!   floor (the gateway is queueing), x0.5 and a pause on a pacing error.
//!
//! A timeout is a lost request, not congestion: IB leaves some requests unanswered whatever the
//! load, and shrinking the window for each of them cut throughput to 86% at 2% hung requests
//! (to one in flight at 30%). A congested gateway shows in the latency of the requests it does
//! answer. Only a round trip whose requests mostly time out (more than twice as many timeouts
//! as answers: the gateway has stalled) shrinks the limit, x0.75.
//!
//! The floor ("base latency") is the lowest round-trip mean seen, allowed to drift up slowly so a
//! permanently slower gateway is accepted as the new normal.

use super::small_bars::{SmallBarHistory, SmallBarKey, SmallBarRules};
use crate::ib::OutcomeClass;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// IB's limit of open historical requests per connection.
pub const IB_MAX_OPEN_REQUESTS: u32 = 50;

/// Tuning of the governor.
#[derive(Debug, Clone)]
pub struct GovernorConfig {
    /// Hard cap on requests in flight (at most [`IB_MAX_OPEN_REQUESTS`]).
    pub max_in_flight: u32,
    /// Starting limit.
    pub initial_limit: u32,
    /// Latency above `tolerance` x base latency counts as congestion.
    pub tolerance: f64,
    /// Pause after a pacing error before sending again.
    pub pacing_pause: Duration,
    /// Small-bar rules.
    pub small_bars: SmallBarRules,
    /// When false the limit stays fixed at `initial_limit` (for the sequential baseline).
    pub adaptive: bool,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        GovernorConfig {
            max_in_flight: IB_MAX_OPEN_REQUESTS,
            initial_limit: 4,
            tolerance: 2.0,
            pacing_pause: Duration::from_secs(15),
            small_bars: SmallBarRules::default(),
            adaptive: true,
        }
    }
}

impl GovernorConfig {
    /// The same governor against a gateway whose clock runs `time_scale` times faster (a
    /// compressed-time simulator): the pacing pause and the small-bar windows model IB's
    /// rules in its time, so they shrink; the in-flight limits are counts and stay.
    pub fn compressed(self, time_scale: f64) -> GovernorConfig {
        GovernorConfig {
            pacing_pause: super::small_bars::compress(self.pacing_pause, time_scale),
            small_bars: self.small_bars.compressed(time_scale),
            ..self
        }
    }
}

/// Snapshot of the governor for the progress display and the summary.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
pub struct GovernorStats {
    /// Current in-flight limit.
    pub limit: u32,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Highest number in flight so far.
    pub peak_in_flight: u32,
    /// Mean latency of the last round trip, ms.
    pub latency_ms: f64,
    /// Latency floor, ms.
    pub base_latency_ms: f64,
    /// Pauses taken after pacing errors.
    pub pacing_pauses: u32,
    /// Pauses taken while the historical data farm was broken (2105).
    pub farm_pauses: u32,
    /// Congestion decreases.
    pub decreases: u32,
    /// Seconds paused so far (pacing pauses and disconnects).
    pub paused_secs: f64,
    /// True while dispatch is paused.
    pub paused: bool,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: u32,
    slow_start: bool,
    base_rtt: Option<f64>,
    window_start: Instant,
    window_sum: f64,
    window_n: u32,
    window_full: bool,
    window_congested: Option<OutcomeClass>,
    window_timeouts: u32,
    paused_until: Option<Instant>,
    held: bool,
    held_since: Option<Instant>,
    /// Set while the HMDS farm is broken: no dispatch until then (bounded wait).
    farm_until: Option<Instant>,
    farm_since: Option<Instant>,
    small: SmallBarHistory,
    stats: GovernorStats,
}

/// The governor. Share it as `Arc<PacingGovernor>`.
pub struct PacingGovernor {
    cfg: GovernorConfig,
    state: Mutex<State>,
    changed: Notify,
}

/// Held while a request is in flight; report how it went with [`Permit::finish`]. Dropping it
/// without finishing releases the slot without a latency sample.
pub struct Permit {
    gov: Arc<PacingGovernor>,
    sent: Instant,
    done: bool,
}

impl Permit {
    /// Report the outcome and latency, release the slot.
    pub fn finish(mut self, class: OutcomeClass) -> Duration {
        self.done = true;
        let latency = self.sent.elapsed();
        self.gov.complete(class, latency);
        latency
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.gov.release();
        }
    }
}

impl PacingGovernor {
    /// A governor with `cfg`.
    pub fn new(cfg: GovernorConfig) -> Arc<Self> {
        let limit = f64::from(
            cfg.initial_limit
                .clamp(1, cfg.max_in_flight.clamp(1, IB_MAX_OPEN_REQUESTS)),
        );
        Arc::new(PacingGovernor {
            state: Mutex::new(State {
                limit,
                in_flight: 0,
                slow_start: cfg.adaptive,
                base_rtt: None,
                window_start: Instant::now(),
                window_sum: 0.0,
                window_n: 0,
                window_full: false,
                window_congested: None,
                window_timeouts: 0,
                paused_until: None,
                held: false,
                held_since: None,
                farm_until: None,
                farm_since: None,
                small: SmallBarHistory::default(),
                stats: GovernorStats {
                    limit: limit as u32,
                    ..Default::default()
                },
            }),
            cfg,
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hard_cap(&self) -> u32 {
        self.cfg.max_in_flight.clamp(1, IB_MAX_OPEN_REQUESTS)
    }

    /// Wait until a request may be sent, then take a slot. `small` is the request's identity
    /// when its bar size falls under the small-bar rules.
    pub async fn acquire(self: &Arc<Self>, small: Option<&SmallBarKey>) -> Permit {
        loop {
            let notified = self.changed.notified();
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                let mut wait: Option<Duration> = None;
                if st.farm_until.is_some_and(|u| u <= now) {
                    tracing::warn!("no farm OK notice within the farm wait: dispatch resumes");
                    Self::end_farm_pause(&mut st);
                }
                if st.held {
                    wait = Some(Duration::from_millis(500));
                } else if let Some(until) = st.farm_until {
                    wait = Some((until - now).min(Duration::from_millis(500)));
                } else if let Some(until) = st.paused_until.filter(|u| *u > now) {
                    wait = Some(until - now);
                } else if st.in_flight >= (st.limit.floor() as u32).clamp(1, self.hard_cap()) {
                    wait = Some(Duration::from_secs(1));
                } else if let Some(k) = small {
                    let rules = self.cfg.small_bars;
                    let d = st.small.delay(&rules, k, now);
                    if d > Duration::ZERO {
                        wait = Some(d);
                    } else {
                        st.small.record(k.clone(), now);
                    }
                }
                match wait {
                    Some(w) => w,
                    None => {
                        st.paused_until = None;
                        st.in_flight += 1;
                        if st.in_flight as f64 >= st.limit.floor() {
                            st.window_full = true;
                        }
                        st.stats.in_flight = st.in_flight;
                        st.stats.peak_in_flight = st.stats.peak_in_flight.max(st.in_flight);
                        return Permit {
                            gov: self.clone(),
                            sent: now,
                            done: false,
                        };
                    }
                }
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn release(&self) {
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        st.stats.in_flight = st.in_flight;
        drop(st);
        self.changed.notify_waiters();
    }

    fn complete(&self, class: OutcomeClass, latency: Duration) {
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        st.stats.in_flight = st.in_flight;
        let ms = latency.as_secs_f64() * 1000.0;
        match class {
            OutcomeClass::Pacing => {
                st.window_congested = Some(OutcomeClass::Pacing);
                if st.paused_until.is_none() {
                    st.paused_until = Some(Instant::now() + self.cfg.pacing_pause);
                    st.stats.pacing_pauses += 1;
                    tracing::warn!(
                        "pacing violation: dispatch paused for {:?}",
                        self.cfg.pacing_pause
                    );
                    st.stats.paused_secs += self.cfg.pacing_pause.as_secs_f64();
                }
            }
            OutcomeClass::Timeout => st.window_timeouts += 1,
            // Answers that carry a meaningful latency; disconnects do not.
            OutcomeClass::Disconnected => {}
            _ => {
                st.window_sum += ms;
                st.window_n += 1;
            }
        }
        self.maybe_adjust(&mut st);
        drop(st);
        self.changed.notify_waiters();
    }

    fn maybe_adjust(&self, st: &mut State) {
        let now = Instant::now();
        let rtt_ms = st.base_rtt.unwrap_or(500.0).max(20.0);
        let window_len = Duration::from_secs_f64(rtt_ms / 1000.0);
        let enough = st.window_n >= 3 || st.window_timeouts >= 3 || st.window_congested.is_some();
        if now.duration_since(st.window_start) < window_len || !enough {
            return;
        }
        // Mostly lost requests: the gateway has stalled rather than dropped a few.
        if st.window_timeouts >= 3
            && st.window_timeouts > 2 * st.window_n
            && st.window_congested.is_none()
        {
            st.window_congested = Some(OutcomeClass::Timeout);
        }
        let mean = if st.window_n > 0 {
            st.window_sum / f64::from(st.window_n)
        } else {
            rtt_ms
        };
        st.stats.latency_ms = mean;
        let cap = f64::from(self.hard_cap());
        if self.cfg.adaptive {
            match st.window_congested {
                Some(OutcomeClass::Pacing) => {
                    st.limit = (st.limit * 0.5).max(1.0);
                    st.slow_start = false;
                    st.stats.decreases += 1;
                }
                Some(_) => {
                    st.limit = (st.limit * 0.75).max(1.0);
                    st.slow_start = false;
                    st.stats.decreases += 1;
                }
                None => {
                    let base = st.base_rtt.unwrap_or(mean);
                    if st.window_n > 0 && mean > base * self.cfg.tolerance {
                        st.limit = (st.limit * 0.9).max(1.0);
                        st.slow_start = false;
                        st.stats.decreases += 1;
                    } else if st.window_full {
                        st.limit = if st.slow_start {
                            st.limit * 2.0
                        } else {
                            st.limit + 1.0
                        }
                        .min(cap);
                    }
                }
            }
        }
        if st.window_n > 0 {
            // The floor drifts up 0.5% per round trip so a slower normal is accepted.
            st.base_rtt = Some(match st.base_rtt {
                None => mean,
                Some(b) => (b * 1.005).min(mean),
            });
        }
        st.stats.base_latency_ms = st.base_rtt.unwrap_or(0.0);
        st.stats.limit = st.limit.floor() as u32;
        st.window_start = now;
        st.window_sum = 0.0;
        st.window_n = 0;
        st.window_full = st.in_flight as f64 >= st.limit.floor();
        st.window_congested = None;
        st.window_timeouts = 0;
    }

    /// Stop dispatching (a disconnect): nothing is sent until [`PacingGovernor::resume`].
    pub fn hold(&self) {
        let mut st = self.lock();
        if !st.held {
            st.held = true;
            st.held_since = Some(Instant::now());
            st.stats.paused = true;
        }
    }

    /// Resume after [`PacingGovernor::hold`]; restart from a cautious limit (slow start).
    pub fn resume(&self) {
        let mut st = self.lock();
        if st.held {
            st.held = false;
            if let Some(since) = st.held_since.take() {
                st.stats.paused_secs += since.elapsed().as_secs_f64();
            }
            if self.cfg.adaptive {
                st.limit = f64::from(self.cfg.initial_limit.max(1)).min(st.limit.max(1.0));
                st.slow_start = true;
            }
            st.stats.paused = false;
            st.stats.limit = st.limit.floor() as u32;
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// The HMDS farm is broken (2105): dispatch no historical request until
    /// [`PacingGovernor::farm_ok`] or `bound`, whichever comes first. Requests in flight keep
    /// their own timeout.
    pub fn farm_down(&self, bound: Duration) {
        let mut st = self.lock();
        if st.farm_until.is_none() {
            st.farm_until = Some(Instant::now() + bound);
            st.farm_since = Some(Instant::now());
            st.stats.farm_pauses += 1;
            tracing::warn!("historical data farm broken: dispatch paused (at most {bound:?})");
        }
    }

    /// The HMDS farm is back (2106/2158): resume dispatch.
    pub fn farm_ok(&self) {
        let mut st = self.lock();
        if st.farm_until.is_some() {
            tracing::info!("historical data farm OK: dispatch resumes");
            Self::end_farm_pause(&mut st);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// True while dispatch waits for the farm.
    pub fn farm_paused(&self) -> bool {
        self.lock().farm_until.is_some()
    }

    fn end_farm_pause(st: &mut State) {
        st.farm_until = None;
        if let Some(since) = st.farm_since.take() {
            st.stats.paused_secs += since.elapsed().as_secs_f64();
        }
    }

    /// Current figures.
    pub fn stats(&self) -> GovernorStats {
        let st = self.lock();
        let mut s = st.stats;
        s.limit = st.limit.floor() as u32;
        s.paused = st.held
            || st.farm_until.is_some()
            || st.paused_until.is_some_and(|u| u > Instant::now());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queueing gateway in virtual time: `slots` served at once, each taking `service`.
    /// Requests beyond `slots` wait, so latency grows with the limit while throughput does not.
    #[tokio::test(start_paused = true)]
    async fn converges_near_service_slots_and_backs_off_on_pacing() {
        let gov = PacingGovernor::new(GovernorConfig {
            tolerance: 1.8,
            ..Default::default()
        });
        let slots = Arc::new(tokio::sync::Semaphore::new(8));
        let mut handles = Vec::new();
        for _ in 0..2000 {
            let p = gov.acquire(None).await;
            let slots = slots.clone();
            handles.push(tokio::spawn(async move {
                let _s = slots.acquire().await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                p.finish(OutcomeClass::Ok);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let s = gov.stats();
        assert!(
            s.limit >= 8 && s.limit <= 24,
            "limit {} should settle near the 8 slots",
            s.limit
        );
        assert!(s.decreases > 0);
        let before = gov.stats().limit;
        let p = gov.acquire(None).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        p.finish(OutcomeClass::Pacing);
        let p = gov.acquire(None).await; // waits out the pause
        p.finish(OutcomeClass::Ok);
        let s = gov.stats();
        assert_eq!(s.pacing_pauses, 1);
        assert!(
            s.limit < before,
            "pacing halves the limit: {} -> {}",
            before,
            s.limit
        );
    }

    /// 8 slots of 100 ms; `hang_every`-th request never answers and times out after
    /// `timeout`. Returns the final limit and the requests answered per virtual second.
    async fn run_with_hangs(hang_every: usize, timeout: Duration) -> (u32, f64) {
        let gov = PacingGovernor::new(GovernorConfig {
            tolerance: 1.8,
            ..Default::default()
        });
        let slots = Arc::new(tokio::sync::Semaphore::new(8));
        let t0 = Instant::now();
        let mut handles = Vec::new();
        let mut answered = 0;
        for i in 0..3000 {
            let p = gov.acquire(None).await;
            let slots = slots.clone();
            let hang = hang_every > 0 && i % hang_every == hang_every - 1;
            answered += usize::from(!hang);
            handles.push(tokio::spawn(async move {
                if hang {
                    tokio::time::sleep(timeout).await;
                    p.finish(OutcomeClass::Timeout);
                    return;
                }
                let _s = slots.acquire().await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                p.finish(OutcomeClass::Ok);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        (
            gov.stats().limit,
            answered as f64 / t0.elapsed().as_secs_f64(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn hung_requests_are_lost_not_congestion() {
        let (_, clean) = run_with_hangs(0, Duration::from_secs(2)).await;
        let (limit, hung) = run_with_hangs(50, Duration::from_secs(2)).await;
        assert!(
            hung >= 0.9 * clean,
            "2% hung: {hung:.1} vs {clean:.1} answered/s (limit {limit})"
        );
        let (limit, hung) = run_with_hangs(3, Duration::from_millis(300)).await;
        assert!(
            limit >= 8,
            "a third hung: the limit stays above the slots ({limit}, {hung:.1}/s)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_exceeds_the_hard_cap() {
        let gov = PacingGovernor::new(GovernorConfig {
            max_in_flight: 50,
            initial_limit: 50,
            ..Default::default()
        });
        let mut permits = Vec::new();
        for _ in 0..50 {
            permits.push(gov.acquire(None).await);
        }
        let blocked = tokio::time::timeout(Duration::from_secs(5), gov.acquire(None)).await;
        assert!(blocked.is_err(), "the 51st waits");
        permits.pop().unwrap().finish(OutcomeClass::Ok);
        let p = tokio::time::timeout(Duration::from_secs(5), gov.acquire(None)).await;
        assert!(p.is_ok());
    }
}
