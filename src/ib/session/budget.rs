//! The socket message budget of historical requests, in the gateway's own time.
//!
//! IB counts a connection's messages in one-second windows (50 allowed; error 100, then a drop
//! after three such seconds). `ibapi`'s `RateLimiter` enforces that for real time only: against
//! a simulator compressed N times, its per-second rate times N admits a burst of a tenth of
//! N x 45 messages at once, where the simulator's window (1/N s) takes 50. Found by the weekend
//! benchmark once the simulator stopped being the bottleneck (error 100 at 300 requests/s wall
//! under `--time-scale 50`). This budget has `ibapi`'s arithmetic (a burst of n/10, then an even
//! pace; at most n in any window) over a window that is one second divided by the time scale.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// At most `n` messages in any window of the configured length (GCRA).
#[derive(Debug)]
pub struct MessageBudget {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next message.
    tat: Mutex<Option<Instant>>,
}

impl MessageBudget {
    /// `n` messages (at least 1) per `window`: a burst of `max(1, n / 10)`, then
    /// `n - burst + 1` per window.
    pub fn per_window(n: u32, window: Duration) -> Self {
        let n = n.max(1);
        let burst = (n / 10).max(1);
        let rate = u64::from((n + 1).saturating_sub(burst).max(1));
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1);
        let interval = Duration::from_nanos(window_ns.div_ceil(rate));
        MessageBudget {
            interval,
            tolerance: interval * (burst - 1),
            tat: Mutex::new(None),
        }
    }

    /// Reserve a send time at `now`; returns how long to wait for it.
    fn reserve(&self, now: Instant) -> Duration {
        let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        let at = tat.map_or(now, |t| t.max(now));
        let send_at = at
            .checked_sub(self.tolerance)
            .map_or(now, |earliest| earliest.max(now));
        *tat = Some(at + self.interval);
        send_at - now
    }

    /// Wait until a message may be sent (its slot is taken even if the caller is dropped).
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Count a message sent without waiting (a cancel): later messages wait for it.
    pub fn charge(&self) {
        let _ = self.reserve(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Many senders at once against a 20 ms window (one second at time scale 50): never more
    /// than n in any window, and the pace is the budget's, not the timer's.
    #[tokio::test(start_paused = true)]
    async fn at_most_n_in_any_window_at_the_full_pace() {
        let window = Duration::from_millis(20);
        let budget = Arc::new(MessageBudget::per_window(45, window));
        let log = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (budget, log) = (budget.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    budget.acquire().await;
                    log.lock().unwrap().push(Instant::now());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = log.lock().unwrap().clone();
        times.sort();
        let worst = (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|u| u.duration_since(times[i]) < window)
                    .count()
            })
            .max()
            .unwrap();
        assert!(worst <= 45, "{worst} messages in one window");
        let windows = times.last().unwrap().duration_since(t0).as_secs_f64() / 0.020;
        let per_window = times.len() as f64 / windows;
        assert!(per_window > 40.0, "{per_window:.1} per window");
    }

    #[test]
    fn a_cancel_pushes_the_next_message_back() {
        let budget = MessageBudget::per_window(5, Duration::from_secs(1));
        let now = Instant::now();
        // Burst of 1 (5 / 10 rounded up to 1), then one per 200 ms.
        assert_eq!(budget.reserve(now), Duration::ZERO);
        budget.charge();
        assert_eq!(budget.reserve(now), Duration::from_millis(400));
    }
}
