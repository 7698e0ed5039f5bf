//! The pacing governor: every historical request passes through it.
//!
//! It keeps IB's hard rules (at most 50 open requests; the small-bar rules in
//! [`super::small_bars`]; the socket message rate is kept by `ibapi`'s `RateLimiter` in the
//! gateway client) and, inside them, adapts how many requests are in flight to what the gateway
//! gives. The limit follows the delivery rate (answers per second), not latency, see
//! [`super::delivery`]: IB's soft throttle raises latency with the request rate whatever is in
//! flight, and reading that as a queue cut the limit until one request was in flight (0.58 of
//! the `throttled` simulator preset's capacity). A more-in-flight that does not raise the rate
//! is a queue and is given back; one that does is kept.
//!
//! A timeout is a lost request, not congestion: IB leaves some requests unanswered whatever the
//! load; a hung request only holds a slot until its timeout. Only epochs whose requests mostly
//! time out (the gateway has stalled) shrink the limit, x0.75; a pacing error halves it and
//! pauses dispatch.

use super::delivery::{Controller, Outcome, Tuning};
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
    /// Latency above `tolerance` x its floor suggests a queue: only then does the governor try
    /// a smaller limit (kept if the delivery rate does not fall).
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
    /// Mean latency of the last measured epoch, ms.
    pub latency_ms: f64,
    /// Latency floor, ms.
    pub base_latency_ms: f64,
    /// Answers per second in the last measured epoch.
    pub delivery_rps: f64,
    /// Pauses taken after pacing errors.
    pub pacing_pauses: u32,
    /// Pauses taken while the historical data farm was broken (2105).
    pub farm_pauses: u32,
    /// Times the limit was lowered (a smaller limit kept the rate, a stall, a pacing error).
    pub decreases: u32,
    /// Seconds paused so far (pacing pauses and disconnects).
    pub paused_secs: f64,
    /// True while dispatch is paused.
    pub paused: bool,
}

impl State {
    /// `at` in the controller's clock: seconds since the governor was made.
    fn secs(&self, at: Instant) -> f64 {
        at.duration_since(self.origin).as_secs_f64()
    }
}

#[derive(Debug)]
struct State {
    /// The in-flight limit and count, driven by sends and outcomes in seconds since `origin`.
    ctl: Controller,
    origin: Instant,
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
        let ctl = Controller::new(
            Tuning {
                initial: cfg.initial_limit,
                cap: cfg.max_in_flight.clamp(1, IB_MAX_OPEN_REQUESTS),
                tolerance: cfg.tolerance,
                adaptive: cfg.adaptive,
            },
            0.0,
        );
        Arc::new(PacingGovernor {
            state: Mutex::new(State {
                stats: GovernorStats {
                    limit: ctl.limit(),
                    ..Default::default()
                },
                ctl,
                origin: Instant::now(),
                paused_until: None,
                held: false,
                held_since: None,
                farm_until: None,
                farm_since: None,
                small: SmallBarHistory::default(),
            }),
            cfg,
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
                } else if !st.ctl.can_send() {
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
                        let at = st.secs(now);
                        st.ctl.sent(at);
                        let in_flight = st.ctl.in_flight();
                        st.stats.in_flight = in_flight;
                        st.stats.peak_in_flight = st.stats.peak_in_flight.max(in_flight);
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
        self.finish_with(Outcome::Released);
    }

    fn complete(&self, class: OutcomeClass, latency: Duration) {
        let outcome = match class {
            OutcomeClass::Pacing => {
                let mut st = self.lock();
                if st.paused_until.is_none() {
                    st.paused_until = Some(Instant::now() + self.cfg.pacing_pause);
                    st.stats.pacing_pauses += 1;
                    tracing::warn!(
                        "pacing violation: dispatch paused for {:?}",
                        self.cfg.pacing_pause
                    );
                    st.stats.paused_secs += self.cfg.pacing_pause.as_secs_f64();
                }
                Outcome::Pacing
            }
            OutcomeClass::Timeout => Outcome::TimedOut(latency.as_secs_f64()),
            // A disconnect says nothing about the service.
            OutcomeClass::Disconnected => Outcome::Released,
            // Any answer of the gateway (bars, no data, an error about the request) is one
            // delivered request.
            _ => Outcome::Answered(latency.as_secs_f64()),
        };
        self.finish_with(outcome);
    }

    fn finish_with(&self, outcome: Outcome) {
        let mut st = self.lock();
        let at = st.secs(Instant::now());
        st.ctl.finished(at, outcome);
        st.stats.in_flight = st.ctl.in_flight();
        drop(st);
        self.changed.notify_waiters();
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
            let at = st.secs(Instant::now());
            st.ctl.restart(at);
            st.stats.paused = false;
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
        s.limit = st.ctl.limit();
        s.in_flight = st.ctl.in_flight();
        s.latency_ms = st.ctl.latency() * 1000.0;
        s.base_latency_ms = st.ctl.floor() * 1000.0;
        s.delivery_rps = st.ctl.delivery_rate();
        s.decreases = st.ctl.decreases();
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
