//! The in-flight limit, decided by the delivery rate (answers per second), not by latency.
//!
//! Why: a gateway can be slow for two reasons that call for opposite answers. A *queue* (fixed
//! service slots, the rest wait) answers more in flight with proportionally more latency and
//! the same rate: the surplus should go. A *rate throttle* (IB's soft slow-down: every request
//! over a quota in the last minute is served slower, whatever is in flight) answers with more
//! latency too, but each extra request in flight still raises the rate until the slots are
//! full: shrinking the limit there only lowers the rate, and the throttle's one-minute memory
//! keeps latency high anyway. Latency alone cannot tell them apart; the rate can. So the limit
//! is moved by experiments, like BBR or a gradient controller:
//!
//! - **startup**: the limit doubles every round trip while the rate grows by at least 25%;
//!   after two round trips without such growth it settles at 1.25 x the smallest limit that
//!   gave the best rate (the knee, plus a little headroom), but at most one probe step under
//!   the last limit (a throttle setting in, or a busy client, can hide the last doubling's gain);
//! - **cruise**: a few epochs at a steady limit; then a **probe**: the limit moves 25% up or
//!   down for one epoch. A probe up is kept if the rate rose by at least 8%, and is followed by
//!   another. A probe down is judged after one more epoch back at the old limit, against the
//!   mean of the epochs on both sides (a throttle filling or emptying its one-minute window
//!   drifts the rate by itself, and that drift must not pass for the effect of the smaller
//!   limit): kept if the rate fell by at most 3%. Probes alternate direction, and a probe down
//!   is only tried while latency is above `tolerance` x its floor (below that there is no
//!   queue to drain);
//! - epochs whose in-flight count stayed well under the limit (the executor had too little
//!   work to send) say nothing about the gateway and decide nothing;
//! - a hung request (timeout) is a lost request, not congestion: it only holds a slot. Only an
//!   epoch whose requests mostly time out (at least 3, more than twice the answers: a stalled
//!   gateway) cuts the limit, x0.75; a pacing error halves it.
//!
//! Every epoch starts one smoothed round trip after a limit change (the answers of that first
//! round trip were sent under the old limit) and lasts at least two round trips and three
//! answers per slot of the limit, so a rate is measured over dozens of answers; once a request
//! has timed out, an epoch also spans at least one request timeout (the time a hung request
//! holds its slot), or the number of slots held by hung requests would swing from one epoch to
//! the next and drown what the limit changed.
//!
//! The controller is pure: it sees only sends and outcomes with their times (seconds since an
//! origin the caller chooses), so unit tests drive it with a simulated gateway and virtual time.

/// Growth of a probe up (and 1 / this for a probe down).
const PROBE_GAIN: f64 = 1.25;
/// A probe up is kept when the rate rose by at least this fraction.
const UP_GAIN_NEEDED: f64 = 0.08;
/// A probe down is kept when the rate fell by at most this fraction.
const DOWN_LOSS_ALLOWED: f64 = 0.03;
/// Startup goes on while each doubling raises the rate by this factor.
const STARTUP_GROWTH: f64 = 1.25;
/// Startup ends after this many epochs in a row without that growth.
const STARTUP_FLAT_EPOCHS: u32 = 2;
/// Steady epochs between probes.
const CRUISE_EPOCHS: u32 = 2;
/// An epoch lasts at least this many smoothed round trips ...
const EPOCH_RTTS: f64 = 2.0;
/// ... and this many answers per unit of the limit ...
const EPOCH_ANSWERS_PER_SLOT: f64 = 3.0;
/// ... and at least this many answers.
const EPOCH_MIN_ANSWERS: u32 = 20;
/// An epoch counts only if the mean in flight reached this fraction of the limit.
const BUSY_FRACTION: f64 = 0.8;
/// Weight of a new latency in the smoothed round trip.
const SRTT_WEIGHT: f64 = 0.125;
/// The latency floor drifts up this much per epoch, so a slower normal is accepted.
const FLOOR_DRIFT: f64 = 1.005;

/// Settings of the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Starting limit.
    pub initial: u32,
    /// Highest limit (IB's open-request limit or lower).
    pub cap: u32,
    /// A probe down is tried only while the latency exceeds this multiple of its floor.
    pub tolerance: f64,
    /// When false the limit stays at `initial` (the rate is still measured).
    pub adaptive: bool,
}

/// How a request in flight ended, as far as the limit is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The gateway answered (bars, no data, an error about the request) after this many
    /// seconds: one delivered request.
    Answered(f64),
    /// No answer within the request timeout (this many seconds): a lost request.
    TimedOut(f64),
    /// A pacing error: the gateway says we send too much.
    Pacing,
    /// Ended without telling anything about the gateway (a disconnect, a cancelled task).
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Doubling per epoch while the rate grows by [`STARTUP_GROWTH`] over `grown_from`;
    /// `best_limit` is the smallest limit that gave (within 5%) the best rate `best_rate`.
    Startup {
        grown_from: f64,
        best_rate: f64,
        best_limit: f64,
        flat: u32,
    },
    /// Steady; `left` epochs before the next probe, whose direction `next_up` suggests.
    Cruise { left: u32, next_up: bool },
    /// One epoch at a moved limit. Up: judged against the epoch before it. Down: followed by
    /// a [`Phase::Check`] epoch.
    Probe {
        up: bool,
        base_limit: f64,
        base_rate: f64,
    },
    /// One epoch back at the base limit after a probe down, to judge the probe against the
    /// mean of the epochs before and after it.
    Check {
        probe_limit: f64,
        probe_rate: f64,
        base_rate: f64,
    },
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, Default)]
struct Epoch {
    /// Measuring starts here (after the settling round trip of a limit change).
    from: f64,
    answers: u32,
    timeouts: u32,
    latency_sum: f64,
    /// Integral of the in-flight count over the measured time.
    busy: f64,
    /// Time up to which `busy` is counted.
    last: f64,
}

/// The in-flight limit controller; see the module documentation.
#[derive(Debug, Clone)]
pub struct Controller {
    tuning: Tuning,
    limit: f64,
    in_flight: u32,
    phase: Phase,
    epoch: Epoch,
    srtt: Option<f64>,
    /// The longest a lost request held its slot (the request timeout), once one was lost.
    hang_span: f64,
    floor: Option<f64>,
    last_latency: f64,
    last_rate: f64,
    decreases: u32,
}

impl Controller {
    /// A controller starting at `now` (seconds).
    pub fn new(tuning: Tuning, now: f64) -> Controller {
        let cap = tuning.cap.max(1);
        let tuning = Tuning { cap, ..tuning };
        Controller {
            limit: f64::from(tuning.initial.clamp(1, cap)),
            tuning,
            in_flight: 0,
            phase: Self::startup(),
            epoch: Epoch {
                from: now,
                last: now,
                ..Default::default()
            },
            srtt: None,
            hang_span: 0.0,
            floor: None,
            last_latency: 0.0,
            last_rate: 0.0,
            decreases: 0,
        }
    }

    fn startup() -> Phase {
        Phase::Startup {
            grown_from: 0.0,
            best_rate: 0.0,
            best_limit: 0.0,
            flat: 0,
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> u32 {
        (self.limit.floor() as u32).clamp(1, self.tuning.cap)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// True when one more request may be sent.
    pub fn can_send(&self) -> bool {
        self.in_flight < self.limit()
    }

    /// Mean latency of the last completed epoch, seconds.
    pub fn latency(&self) -> f64 {
        self.last_latency
    }

    /// The latency floor (lowest epoch mean, drifting up slowly), seconds.
    pub fn floor(&self) -> f64 {
        self.floor.unwrap_or(0.0)
    }

    /// Answers per second in the last completed epoch.
    pub fn delivery_rate(&self) -> f64 {
        self.last_rate
    }

    /// Times the limit was lowered.
    pub fn decreases(&self) -> u32 {
        self.decreases
    }

    /// A request was sent at `now`.
    pub fn sent(&mut self, now: f64) {
        self.advance(now);
        self.in_flight += 1;
    }

    /// A request sent earlier ended at `now`.
    pub fn finished(&mut self, now: f64, outcome: Outcome) {
        self.advance(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        // An answer at the very instant an epoch starts belongs to the one before (answers can
        // arrive together; counting them in both would inflate one epoch's rate).
        let measuring = now > self.epoch.from;
        match outcome {
            Outcome::Answered(secs) => {
                let secs = secs.max(0.0);
                self.srtt = Some(match self.srtt {
                    None => secs,
                    Some(s) => s + SRTT_WEIGHT * (secs - s),
                });
                if measuring {
                    self.epoch.answers += 1;
                    self.epoch.latency_sum += secs;
                }
            }
            Outcome::TimedOut(secs) => {
                self.hang_span = self.hang_span.max(secs);
                if measuring {
                    self.epoch.timeouts += 1;
                }
            }
            Outcome::Pacing => {
                if self.tuning.adaptive {
                    self.decrease(0.5);
                    self.cruise(true);
                    self.new_epoch(now, true);
                }
                return;
            }
            Outcome::Released => {}
        }
        self.maybe_end_epoch(now);
    }

    /// Dispatch resumes at `now` after a pause (a reconnect): the gateway may have changed, so
    /// start again from a cautious limit.
    pub fn restart(&mut self, now: f64) {
        if self.tuning.adaptive {
            self.limit = f64::from(self.tuning.initial.max(1)).min(self.limit.max(1.0));
            self.phase = Self::startup();
        }
        self.new_epoch(now, false);
    }

    fn advance(&mut self, now: f64) {
        let e = &mut self.epoch;
        let start = e.last.max(e.from);
        if now > start {
            e.busy += f64::from(self.in_flight) * (now - start);
        }
        e.last = e.last.max(now);
    }

    fn new_epoch(&mut self, now: f64, limit_changed: bool) {
        let settle = if limit_changed {
            self.srtt.unwrap_or(0.0)
        } else {
            0.0
        };
        self.epoch = Epoch {
            from: now + settle,
            last: now,
            ..Default::default()
        };
    }

    fn decrease(&mut self, factor: f64) {
        self.limit = (self.limit * factor).max(1.0);
        self.decreases += 1;
    }

    fn cruise(&mut self, next_up: bool) {
        self.phase = Phase::Cruise {
            left: CRUISE_EPOCHS,
            next_up,
        };
    }

    fn cap(&self) -> f64 {
        f64::from(self.tuning.cap)
    }

    fn moved(&self, up: bool) -> f64 {
        let l = self.limit.floor();
        if up {
            (l * PROBE_GAIN).max(l + 1.0).min(self.cap())
        } else {
            (l / PROBE_GAIN).min(l - 1.0).max(1.0)
        }
    }

    fn maybe_end_epoch(&mut self, now: f64) {
        let measured = now - self.epoch.from;
        if measured <= 0.0 {
            return;
        }
        let srtt = self.srtt.unwrap_or(0.0);
        let e = self.epoch;
        // Mostly lost requests: the gateway has stalled rather than dropped a few.
        if e.timeouts >= 3 && e.timeouts > 2 * e.answers && measured >= srtt {
            if self.tuning.adaptive {
                self.decrease(0.75);
                self.cruise(true);
            }
            self.new_epoch(now, self.tuning.adaptive);
            return;
        }
        let limit = f64::from(self.limit());
        let (rtts, answers) = match self.phase {
            Phase::Startup { .. } => (1.0, limit.max(3.0)),
            _ => (
                EPOCH_RTTS,
                (limit * EPOCH_ANSWERS_PER_SLOT).max(f64::from(EPOCH_MIN_ANSWERS)),
            ),
        };
        // Once requests hang, an epoch spans a request timeout: shorter ones would see the
        // number of slots held by hung requests swing rather than the gateway.
        let span = match self.phase {
            Phase::Startup { .. } => rtts * srtt,
            _ => (rtts * srtt).max(self.hang_span),
        };
        if measured < span || f64::from(e.answers) < answers {
            return;
        }
        let rate = f64::from(e.answers) / measured;
        let latency = e.latency_sum / f64::from(e.answers);
        let busy = e.busy / measured >= BUSY_FRACTION * limit;
        self.last_rate = rate;
        self.last_latency = latency;
        let queue_suspected = self
            .floor
            .is_some_and(|f| latency > self.tuning.tolerance * f);
        self.floor = Some(match self.floor {
            None => latency,
            Some(f) => (f * FLOOR_DRIFT).min(latency),
        });
        let changed = self.tuning.adaptive && busy && self.decide(rate, queue_suspected);
        self.new_epoch(now, changed);
    }

    /// The end of a busy epoch: move the limit; true when it changed.
    fn decide(&mut self, rate: f64, queue_suspected: bool) -> bool {
        let before = self.limit;
        match self.phase {
            Phase::Startup {
                grown_from,
                best_rate,
                best_limit,
                flat,
            } => self.startup_epoch(rate, grown_from, best_rate, best_limit, flat),
            Phase::Cruise { left, next_up } => {
                self.cruise_epoch(rate, queue_suspected, left, next_up)
            }
            Phase::Probe {
                up: true,
                base_limit,
                base_rate,
            } => self.probe_up_epoch(rate, base_limit, base_rate),
            Phase::Probe {
                up: false,
                base_limit,
                base_rate,
            } => self.probe_down_epoch(rate, base_limit, base_rate),
            Phase::Check {
                probe_limit,
                probe_rate,
                base_rate,
            } => self.check_epoch(rate, probe_limit, probe_rate, base_rate),
        }
        self.limit != before
    }

    /// Startup: double the limit while the rate grows; after a few flat epochs settle a little
    /// above the smallest limit that gave the best rate, and cruise.
    fn startup_epoch(
        &mut self,
        rate: f64,
        grown_from: f64,
        mut best_rate: f64,
        mut best_limit: f64,
        flat: u32,
    ) {
        let before = self.limit;
        // The smallest limit giving the best rate: a queue's rate stops growing at its
        // slots; a throttle setting in during startup can make a doubling look flat
        // while it still paid, and then the larger limit is kept.
        if rate > best_rate * (1.0 + UP_GAIN_NEEDED) {
            best_rate = rate;
            best_limit = self.limit.floor();
        }
        if rate >= grown_from * STARTUP_GROWTH {
            self.phase = Phase::Startup {
                grown_from: rate,
                best_rate,
                best_limit,
                flat: 0,
            };
            self.limit = (self.limit * 2.0).min(self.cap());
            if self.limit == before {
                self.cruise(false);
            }
        } else if flat + 1 >= STARTUP_FLAT_EPOCHS {
            // 1.25 x the knee, but no more than one probe step under the last
            // limit: a throttle setting in (or a busy client) can hide the gain of
            // the last doubling, and probes down drain a real queue later anyway.
            let knee = best_limit.max(1.0);
            let settled = (knee * PROBE_GAIN)
                .max(knee + 1.0)
                .max(self.limit.floor() / PROBE_GAIN)
                .min(self.cap());
            if settled < self.limit {
                self.limit = settled;
                self.decreases += 1;
            }
            self.cruise(false);
        } else {
            self.phase = Phase::Startup {
                grown_from,
                best_rate,
                best_limit,
                flat: flat + 1,
            };
        }
    }

    /// Cruise: hold the limit for a few epochs, then probe (down when latency suggests a queue,
    /// up otherwise, or the other way after a probe that did not pay).
    fn cruise_epoch(&mut self, rate: f64, queue_suspected: bool, left: u32, next_up: bool) {
        if left > 0 {
            self.phase = Phase::Cruise {
                left: left - 1,
                next_up,
            };
        } else {
            let up = next_up || !queue_suspected;
            let target = self.moved(up);
            if target == self.limit.floor() {
                self.cruise(!up);
            } else {
                self.phase = Phase::Probe {
                    up,
                    base_limit: self.limit,
                    base_rate: rate,
                };
                self.limit = target;
            }
        }
    }

    /// A probe up: kept (and one more step tried) when the rate grew enough, else undone.
    fn probe_up_epoch(&mut self, rate: f64, base_limit: f64, base_rate: f64) {
        if rate < base_rate * (1.0 + UP_GAIN_NEEDED) {
            self.limit = base_limit;
            self.cruise(false);
        } else if self.moved(true) != self.limit.floor() {
            // Kept: and one more step up, judged against this epoch.
            self.phase = Phase::Probe {
                up: true,
                base_limit: self.limit,
                base_rate: rate,
            };
            self.limit = self.moved(true);
        } else {
            self.cruise(false);
        }
    }

    /// A probe down measured: return to the base limit for one epoch before judging it.
    fn probe_down_epoch(&mut self, rate: f64, base_limit: f64, base_rate: f64) {
        // Back to the base limit for one epoch before judging: the probe is compared
        // with the mean of the epochs on either side of it, which cancels a drift of the
        // gateway's own (a throttle filling or emptying its window) that would
        // otherwise pass for the effect of the smaller limit.
        self.phase = Phase::Check {
            probe_limit: self.limit,
            probe_rate: rate,
            base_rate,
        };
        self.limit = base_limit;
    }

    /// Judge a probe down against the mean of the base epochs on either side: kept when the
    /// rate did not drop by more than allowed.
    fn check_epoch(&mut self, rate: f64, probe_limit: f64, probe_rate: f64, base_rate: f64) {
        let around = (base_rate + rate) / 2.0;
        if probe_rate >= around * (1.0 - DOWN_LOSS_ALLOWED) {
            self.limit = probe_limit;
            self.decreases += 1;
            // The next epoch measures the new limit; a further probe down follows if
            // latency still says there is a queue.
            self.phase = Phase::Cruise {
                left: 0,
                next_up: false,
            };
        } else {
            self.cruise(true);
        }
    }
}

#[cfg(test)]
mod tests;
