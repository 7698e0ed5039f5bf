//! IB's hard pacing rules for bars of 30 seconds or less (`docs/ib-behaviour.md` section 3): no
//! identical request within 15 s, fewer than 6 requests for one contract+exchange+tick type
//! within 2 s, at most 60 requests in any 10 minutes; BID_ASK counts twice.
//!
//! Pure bookkeeping over a clock passed in, so the rules are unit-tested without sleeping.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The rule numbers (IB's documented values by default).
#[derive(Debug, Clone, Copy)]
pub struct SmallBarRules {
    /// No identical request within this span.
    pub identical_window: Duration,
    /// At most `per_contract_max` requests for one contract within `per_contract_window`.
    pub per_contract_window: Duration,
    /// See `per_contract_window` (IB: fewer than 6, so 5).
    pub per_contract_max: usize,
    /// At most `global_max` requests within `global_window`.
    pub global_window: Duration,
    /// See `global_window`.
    pub global_max: usize,
}

impl Default for SmallBarRules {
    fn default() -> Self {
        SmallBarRules {
            identical_window: Duration::from_secs(15),
            per_contract_window: Duration::from_secs(2),
            per_contract_max: 5,
            global_window: Duration::from_secs(600),
            global_max: 60,
        }
    }
}

impl SmallBarRules {
    /// The same rules on a clock running `time_scale` times faster (a compressed-time
    /// simulator): the windows shrink, the counts stay.
    pub fn compressed(self, time_scale: f64) -> SmallBarRules {
        let f = |d: Duration| compress(d, time_scale);
        SmallBarRules {
            identical_window: f(self.identical_window),
            per_contract_window: f(self.per_contract_window),
            global_window: f(self.global_window),
            ..self
        }
    }
}

/// `d` divided by `time_scale` (a scale that is not a positive number leaves `d` alone).
pub fn compress(d: Duration, time_scale: f64) -> Duration {
    if time_scale.is_finite() && time_scale > 0.0 {
        Duration::try_from_secs_f64(d.as_secs_f64() / time_scale).unwrap_or(d)
    } else {
        d
    }
}

/// Identity of a small-bar request for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmallBarKey {
    /// contract + exchange + tick type (what to show).
    pub contract: String,
    /// The whole request (contract, bar, end, duration...).
    pub request: String,
    /// BID_ASK counts twice.
    pub weight: usize,
}

/// Requests sent recently.
#[derive(Debug, Default)]
pub struct SmallBarHistory {
    sent: VecDeque<(Instant, SmallBarKey)>,
}

impl SmallBarHistory {
    /// How long to wait before `key` may be sent at `now` (zero: send now).
    pub fn delay(&mut self, rules: &SmallBarRules, key: &SmallBarKey, now: Instant) -> Duration {
        while let Some((t, _)) = self.sent.front() {
            if now.duration_since(*t) >= rules.global_window {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        let mut wait = Duration::ZERO;
        // Identical request.
        if let Some((t, _)) = self
            .sent
            .iter()
            .rev()
            .find(|(_, k)| k.request == key.request)
        {
            wait = wait.max((*t + rules.identical_window).saturating_duration_since(now));
        }
        // Same contract within the short window.
        let recent: Vec<Instant> = self
            .sent
            .iter()
            .filter(|(t, k)| {
                k.contract == key.contract && now.duration_since(*t) < rules.per_contract_window
            })
            .flat_map(|(t, k)| std::iter::repeat_n(*t, k.weight))
            .collect();
        if recent.len() + key.weight > rules.per_contract_max {
            let idx = recent.len() + key.weight - rules.per_contract_max - 1;
            if let Some(t) = recent.get(idx) {
                wait = wait.max((*t + rules.per_contract_window).saturating_duration_since(now));
            }
        }
        // Global window.
        let weights: Vec<Instant> = self
            .sent
            .iter()
            .flat_map(|(t, k)| std::iter::repeat_n(*t, k.weight))
            .collect();
        if weights.len() + key.weight > rules.global_max {
            let idx = weights.len() + key.weight - rules.global_max - 1;
            if let Some(t) = weights.get(idx) {
                wait = wait.max((*t + rules.global_window).saturating_duration_since(now));
            }
        }
        wait
    }

    /// Record that `key` was sent at `now`.
    pub fn record(&mut self, key: SmallBarKey, now: Instant) {
        self.sent.push_back((now, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str, r: &str) -> SmallBarKey {
        SmallBarKey {
            contract: c.into(),
            request: r.into(),
            weight: 1,
        }
    }

    #[test]
    fn identical_request_waits_15s() {
        let rules = SmallBarRules::default();
        let mut h = SmallBarHistory::default();
        let t0 = Instant::now();
        assert_eq!(h.delay(&rules, &key("a", "a1"), t0), Duration::ZERO);
        h.record(key("a", "a1"), t0);
        assert_eq!(
            h.delay(&rules, &key("a", "a1"), t0 + Duration::from_secs(5)),
            Duration::from_secs(10)
        );
        assert_eq!(
            h.delay(&rules, &key("b", "b1"), t0 + Duration::from_secs(5)),
            Duration::ZERO
        );
    }

    #[test]
    fn sixth_request_for_a_contract_waits() {
        let rules = SmallBarRules::default();
        let mut h = SmallBarHistory::default();
        let t0 = Instant::now();
        for i in 0..5 {
            let k = key("a", &format!("a{i}"));
            let t = t0 + Duration::from_millis(100 * i);
            assert_eq!(h.delay(&rules, &k, t), Duration::ZERO, "request {i}");
            h.record(k, t);
        }
        let d = h.delay(&rules, &key("a", "a5"), t0 + Duration::from_millis(500));
        assert_eq!(
            d,
            Duration::from_millis(1500),
            "waits until the first leaves the 2 s window"
        );
    }

    #[test]
    fn sixty_in_ten_minutes() {
        let rules = SmallBarRules::default();
        let mut h = SmallBarHistory::default();
        let t0 = Instant::now();
        for i in 0..60 {
            let t = t0 + Duration::from_secs(3 * i);
            let k = key(&format!("c{i}"), &format!("r{i}"));
            assert_eq!(h.delay(&rules, &k, t), Duration::ZERO);
            h.record(k, t);
        }
        let now = t0 + Duration::from_secs(200);
        assert_eq!(
            h.delay(&rules, &key("x", "x"), now),
            Duration::from_secs(400)
        );
    }

    #[test]
    fn compressed_rules_wait_proportionally() {
        let rules = SmallBarRules::default().compressed(20.0);
        assert_eq!(rules.global_window, Duration::from_secs(30));
        assert_eq!(rules.per_contract_max, 5);
        let mut h = SmallBarHistory::default();
        let t0 = Instant::now();
        h.record(key("a", "a1"), t0);
        assert_eq!(
            h.delay(&rules, &key("a", "a1"), t0),
            Duration::from_millis(750),
            "15 s / 20"
        );
        assert_eq!(
            compress(Duration::from_secs(3), 0.0),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn bid_ask_counts_twice() {
        let rules = SmallBarRules::default();
        let mut h = SmallBarHistory::default();
        let t0 = Instant::now();
        for i in 0..2 {
            let k = SmallBarKey {
                contract: "a".into(),
                request: format!("r{i}"),
                weight: 2,
            };
            h.record(k, t0);
        }
        let k = SmallBarKey {
            contract: "a".into(),
            request: "r9".into(),
            weight: 2,
        };
        assert!(h.delay(&rules, &k, t0) > Duration::ZERO, "4 + 2 > 5");
    }
}
