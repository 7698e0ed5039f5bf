//! The controller against gateway models in virtual time: a pure queue (fixed service slots),
//! and the simulator's `throttled` and `realistic` presets (slots, lognormal service and the
//! soft throttle, read from the presets' own settings, as `sim::hmds` serves them).

use super::*;
use crate::sim::Scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Bars of the benchmark's typical request (8 hours x 6 M), for the per-bar service cost.
const TYPICAL_BARS: f64 = 126.0;

/// A gateway model: `slots` served at once, the rest wait FIFO; each service takes a
/// lognormal draw (clamped) plus a fixed cost plus the soft throttle's extra for every
/// service start over `free` in the last `window` seconds.
struct Gateway {
    slots: u32,
    busy: u32,
    queue: VecDeque<usize>,
    starts: VecDeque<f64>,
    median: f64,
    sigma: f64,
    clamp: (f64, f64),
    fixed: f64,
    window: f64,
    free: usize,
    extra: f64,
    rng: ChaCha8Rng,
}

impl Gateway {
    fn preset(name: &str) -> (Gateway, f64) {
        let s = Scenario::preset(name).unwrap();
        let h = &s.hmds;
        let gw = Gateway {
            slots: h.slots,
            busy: 0,
            queue: VecDeque::new(),
            starts: VecDeque::new(),
            median: h.latency_median_ms / 1000.0,
            sigma: h.latency_sigma,
            clamp: (h.latency_min_ms / 1000.0, h.latency_max_ms / 1000.0),
            fixed: TYPICAL_BARS * h.per_bar_us / 1e6,
            window: h.throttle_window_secs,
            free: h.throttle_free_requests as usize,
            extra: h.throttle_extra_ms / 1000.0,
            rng: ChaCha8Rng::seed_from_u64(7),
        };
        (gw, s.theoretical_capacity_rps())
    }

    /// A pure queue: `slots` slots of `service` seconds (lognormal, sigma 0.3, so the
    /// slots do not answer in lockstep), no throttle.
    fn queue(slots: u32, service: f64) -> Gateway {
        Gateway {
            slots,
            busy: 0,
            queue: VecDeque::new(),
            starts: VecDeque::new(),
            median: service,
            sigma: 0.3,
            clamp: (0.0, f64::MAX),
            fixed: 0.0,
            window: 0.0,
            free: usize::MAX,
            extra: 0.0,
            rng: ChaCha8Rng::seed_from_u64(7),
        }
    }

    /// As if another client had sent `n` requests evenly over the last throttle window.
    fn already_throttled(mut self, n: usize) -> Gateway {
        self.starts = (0..n)
            .map(|i| -self.window + self.window * (i as f64 + 0.5) / n as f64)
            .collect();
        self
    }

    fn service(&mut self, now: f64) -> f64 {
        while self.starts.front().is_some_and(|t| now - t > self.window) {
            self.starts.pop_front();
        }
        self.starts.push_back(now);
        let over = self.starts.len().saturating_sub(self.free);
        let (u1, u2): (f64, f64) = (self.rng.random(), self.rng.random());
        let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let base = (self.median * (self.sigma * z).exp()).clamp(self.clamp.0, self.clamp.1);
        base + self.fixed + over as f64 * self.extra
    }
}

/// What the client does besides following the limit.
#[derive(Clone, Copy)]
struct Client {
    requests: usize,
    /// Every n-th request never answers (0: none) and times out after `timeout` s.
    hang_every: usize,
    timeout: f64,
    /// The client never has more than this many requests ready to send.
    demand: u32,
    /// Answers per second the client can take in (decoding them on a busy machine); the
    /// answers wait in turn, so the client is a queue of its own.
    intake: f64,
}

impl Client {
    fn plain(requests: usize) -> Client {
        Client {
            requests,
            hang_every: 0,
            timeout: 120.0,
            demand: u32::MAX,
            intake: f64::INFINITY,
        }
    }
}

/// One run: answer times, and (time, limit, latency) after every event.
struct Run {
    answers: Vec<f64>,
    trace: Vec<(f64, u32)>,
    ctl: Controller,
}

impl Run {
    /// Answers per second from `from` to the last answer.
    fn rate_after(&self, from: f64) -> f64 {
        let end = *self.answers.last().unwrap();
        let n = self.answers.iter().filter(|t| **t >= from).count();
        n as f64 / (end - from)
    }

    /// Time-weighted mean limit from `from` on.
    fn mean_limit_after(&self, from: f64) -> f64 {
        let mut sum = 0.0;
        let mut span = 0.0;
        for w in self.trace.windows(2) {
            if w[0].0 >= from {
                sum += f64::from(w[0].1) * (w[1].0 - w[0].0);
                span += w[1].0 - w[0].0;
            }
        }
        sum / span
    }
}

fn tuning() -> Tuning {
    Tuning {
        initial: 4,
        cap: 50,
        tolerance: 2.0,
        adaptive: true,
    }
}

fn drive(mut gw: Gateway, tuning: Tuning, client: Client) -> Run {
    let mut ctl = Controller::new(tuning, 0.0);
    // (time in ns, request id, event): answers, timeouts and intakes in time order.
    const ANSWER: u8 = 0;
    const LOST: u8 = 1;
    const TAKEN_IN: u8 = 2;
    let mut heap: BinaryHeap<Reverse<(u64, usize, u8)>> = BinaryHeap::new();
    let mut intake_free = 0.0f64;
    let mut sent_at: Vec<f64> = Vec::new();
    let ns = |t: f64| (t * 1e9).round() as u64;
    let mut now = 0.0;
    let mut run = Run {
        answers: Vec::new(),
        trace: Vec::new(),
        ctl: ctl.clone(),
    };
    loop {
        while ctl.can_send() && ctl.in_flight() < client.demand && sent_at.len() < client.requests {
            let id = sent_at.len();
            sent_at.push(now);
            ctl.sent(now);
            if client.hang_every > 0 && id % client.hang_every == client.hang_every - 1 {
                heap.push(Reverse((ns(now + client.timeout), id, LOST)));
            } else if gw.busy < gw.slots {
                gw.busy += 1;
                heap.push(Reverse((ns(now + gw.service(now)), id, ANSWER)));
            } else {
                gw.queue.push_back(id);
            }
        }
        run.trace.push((now, ctl.limit()));
        let Some(Reverse((t, id, event))) = heap.pop() else {
            break;
        };
        now = t as f64 / 1e9;
        match event {
            LOST => ctl.finished(now, Outcome::TimedOut(client.timeout)),
            TAKEN_IN => {
                run.answers.push(now);
                ctl.finished(now, Outcome::Answered(now - sent_at[id]));
            }
            _ => {
                if client.intake.is_finite() {
                    intake_free = intake_free.max(now) + 1.0 / client.intake;
                    heap.push(Reverse((ns(intake_free), id, TAKEN_IN)));
                } else {
                    run.answers.push(now);
                    ctl.finished(now, Outcome::Answered(now - sent_at[id]));
                }
                if let Some(next) = gw.queue.pop_front() {
                    heap.push(Reverse((ns(now + gw.service(now)), next, ANSWER)));
                } else {
                    gw.busy -= 1;
                }
            }
        }
    }
    run.ctl = ctl;
    run
}

#[test]
fn holds_the_throttled_presets_capacity() {
    let (gw, capacity) = Gateway::preset("throttled");
    let run = drive(gw, tuning(), Client::plain(1500));
    // After two throttle windows, when the throttle's memory is full.
    let rate = run.rate_after(120.0);
    assert!(
        rate >= 0.9 * capacity,
        "{rate:.2} req/s vs capacity {capacity:.2} (mean limit {:.1})",
        run.mean_limit_after(120.0)
    );
    // Over the whole run too (the burst of the first minute helps).
    let whole = run.answers.len() as f64 / run.answers.last().unwrap();
    assert!(whole >= 0.9 * capacity, "{whole:.2} vs {capacity:.2}");
}

/// A run started while the throttle still remembers a previous one (a resume right after a
/// kill): latency is high from the first request and falls while the old requests leave the
/// window, so startup's doublings look less rewarding than they are.
#[test]
fn holds_the_throttled_capacity_when_the_throttle_is_already_on() {
    let (gw, capacity) = Gateway::preset("throttled");
    let run = drive(gw.already_throttled(165), tuning(), Client::plain(1500));
    let whole = run.answers.len() as f64 / run.answers.last().unwrap();
    assert!(
        whole >= 0.9 * capacity,
        "{whole:.2} req/s vs capacity {capacity:.2} (mean limit {:.1})",
        run.mean_limit_after(0.0)
    );
}

/// The client itself can take in only so many answers per second (a busy machine): its own
/// backlog during the first minute's burst looks like a queue, so the limit comes down, and
/// must climb again once the throttle makes the gateway the bottleneck.
#[test]
fn holds_the_throttled_capacity_behind_a_slow_client() {
    for intake in [4.0, 10.0] {
        let (gw, capacity) = Gateway::preset("throttled");
        let run = drive(
            gw,
            tuning(),
            Client {
                intake,
                ..Client::plain(1000)
            },
        );
        let whole = run.answers.len() as f64 / run.answers.last().unwrap();
        assert!(
            whole >= 0.9 * capacity,
            "intake {intake}/s: {whole:.2} req/s vs capacity {capacity:.2}"
        );
    }
}

#[test]
fn holds_the_realistic_presets_capacity() {
    let (gw, capacity) = Gateway::preset("realistic");
    let run = drive(gw, tuning(), Client::plain(8000));
    let rate = run.rate_after(120.0);
    assert!(
        rate >= 0.9 * capacity,
        "{rate:.2} req/s vs capacity {capacity:.2} (mean limit {:.1})",
        run.mean_limit_after(120.0)
    );
}

/// A pure queue: 8 slots of 100 ms. The rate is full from 8 in flight on; more only queues,
/// so the limit stays near the slots (a queue is drained while latency is over twice its
/// floor) instead of running to the cap.
#[test]
fn stays_near_the_slots_of_a_queue() {
    let run = drive(Gateway::queue(8, 0.1), tuning(), Client::plain(4000));
    let rate = run.rate_after(5.0);
    let limit = run.mean_limit_after(5.0);
    assert!(
        rate >= 0.9 * 80.0,
        "{rate:.1} req/s of 80 (limit {limit:.1})"
    );
    assert!(
        (8.0..=24.0).contains(&limit),
        "mean limit {limit:.1} for 8 slots"
    );
    assert!(run.ctl.decreases() > 0);
    assert!(
        run.ctl.latency() <= 0.3,
        "latency {:.3} s: at most three times the service time",
        run.ctl.latency()
    );
}

/// A gateway answering whatever is in flight after a fixed delay (no slots: an unlimited
/// server): more in flight always pays, so the limit climbs to the cap.
#[test]
fn climbs_to_the_cap_while_more_in_flight_pays() {
    let run = drive(Gateway::queue(1000, 0.5), tuning(), Client::plain(3000));
    assert_eq!(run.ctl.limit(), 50);
}

#[test]
fn hung_requests_are_lost_not_congestion() {
    let (gw, _) = Gateway::preset("realistic");
    let clean = drive(gw, tuning(), Client::plain(8000));
    let (gw, _) = Gateway::preset("realistic");
    let hung = drive(
        gw,
        tuning(),
        Client {
            hang_every: 50,
            timeout: 10.0,
            ..Client::plain(8000)
        },
    );
    let (clean_rate, hung_rate) = (clean.rate_after(120.0), hung.rate_after(120.0));
    assert!(
        hung_rate >= 0.9 * clean_rate,
        "2% hung: {hung_rate:.2} vs {clean_rate:.2} answered/s (limit {:.1} vs {:.1})",
        hung.mean_limit_after(120.0),
        clean.mean_limit_after(120.0)
    );
    // A third hung (timeout 3x the service) in an 8-slot queue: the limit grows past the
    // slots to keep them busy instead of collapsing.
    let run = drive(
        Gateway::queue(8, 0.1),
        tuning(),
        Client {
            hang_every: 3,
            timeout: 0.3,
            ..Client::plain(6000)
        },
    );
    let limit = run.mean_limit_after(5.0);
    let rate = run.rate_after(5.0);
    assert!(limit >= 12.0, "a third hung: mean limit {limit:.1}");
    assert!(
        rate >= 0.85 * 80.0,
        "a third hung: {rate:.1} answered/s of 80"
    );
}

#[test]
fn a_stalled_gateway_cuts_the_limit() {
    let mut ctl = Controller::new(
        Tuning {
            initial: 20,
            ..tuning()
        },
        0.0,
    );
    for _ in 0..20 {
        ctl.sent(0.0);
    }
    ctl.finished(0.5, Outcome::Answered(0.5));
    for i in 0..3 {
        ctl.finished(10.0 + f64::from(i), Outcome::TimedOut(10.0));
    }
    assert_eq!(ctl.limit(), 15, "x0.75 once");
    assert_eq!(ctl.decreases(), 1);
    // Still stalled an epoch later: cut again.
    for i in 0..3 {
        ctl.finished(20.0 + f64::from(i), Outcome::TimedOut(10.0));
    }
    assert_eq!(ctl.limit(), 11);
}

#[test]
fn a_pacing_error_halves_the_limit() {
    let mut ctl = Controller::new(
        Tuning {
            initial: 20,
            ..tuning()
        },
        0.0,
    );
    ctl.sent(0.0);
    ctl.finished(1.0, Outcome::Pacing);
    assert_eq!(ctl.limit(), 10);
}

/// The client never has more than 3 requests ready: epochs below the limit decide nothing,
/// so the limit is neither cut (nothing says the gateway queues) nor grown.
#[test]
fn epochs_with_too_little_work_decide_nothing() {
    let run = drive(
        Gateway::queue(8, 0.1),
        Tuning {
            initial: 20,
            ..tuning()
        },
        Client {
            demand: 3,
            ..Client::plain(2000)
        },
    );
    assert_eq!(run.ctl.limit(), 20);
    assert_eq!(run.ctl.decreases(), 0);
}

#[test]
fn a_fixed_limit_stays() {
    let run = drive(
        Gateway::queue(8, 0.1),
        Tuning {
            initial: 3,
            adaptive: false,
            ..tuning()
        },
        Client::plain(1000),
    );
    assert!(run.trace.iter().all(|(_, l)| *l == 3));
    // 3 in flight x 1 / (0.1 s x e^(0.3^2/2)) = 28.7 answers/s, measured all the same.
    let rate = run.rate_after(1.0);
    assert!((26.0..31.0).contains(&rate), "{rate:.1}");
    assert!(run.ctl.delivery_rate() > 20.0);
}

/// After a reconnect the controller starts over from the initial limit.
#[test]
fn restart_begins_again_from_the_initial_limit() {
    let mut run = drive(Gateway::queue(1000, 0.5), tuning(), Client::plain(3000));
    assert_eq!(run.ctl.limit(), 50);
    run.ctl.restart(10_000.0);
    assert_eq!(run.ctl.limit(), 4);
}
