//! Message pacing for qualification that counts the cancels `ibapi` sends on its own.
//!
//! `ibapi` 5.5.0 answers a contract-details request that ends in an error (200 for a candidate
//! that does not exist, or a timeout) by writing `CancelContractData` when the request is
//! dropped, and its `RateLimiter` sends cancels at once, charging them only to the requests
//! still to come. When many requests already wait in that limiter (their send times reserved),
//! the cancels go out on top of them: qualifying a chain in which a third of the candidates do
//! not exist then exceeds IB's 50 messages/s (error 100, and a drop after three such seconds;
//! found by the realistic-preset test). IB counts every message, cancels included.
//!
//! [`MessagePacer`] lets one request out at a time, no earlier than one interval after the
//! previous message of any kind, and is told about every cancel as it happens
//! ([`MessagePacer::charge`]), which pushes the next request back. No send time is reserved
//! ahead, so a cancel always delays the requests after it, and requests plus cancels stay at
//! the configured rate (45/s leaves headroom under IB's 50).

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Spaces requests so that requests and the cancels they cause stay within a message rate.
#[derive(Debug)]
pub struct MessagePacer {
    interval: Duration,
    /// Earliest time the next request may go out.
    next: Mutex<Option<Instant>>,
    /// Serialises waiting requests: only one holds a place in the schedule at a time.
    turn: tokio::sync::Mutex<()>,
}

impl MessagePacer {
    /// A pacer for `per_second` messages per second (at least 1).
    pub fn per_second(per_second: u32) -> Self {
        MessagePacer {
            interval: Duration::from_nanos(1_000_000_000 / u64::from(per_second.max(1))),
            next: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.next.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until a request may be sent, and take its place in the schedule.
    pub async fn acquire(&self) {
        let _turn = self.turn.lock().await;
        loop {
            let now = Instant::now();
            let wait = {
                let mut next = self.lock();
                match *next {
                    Some(t) if t > now => t - now,
                    _ => {
                        *next = Some(now + self.interval);
                        return;
                    }
                }
            };
            // Re-read after the sleep: a cancel meanwhile pushes the schedule back.
            tokio::time::sleep(wait).await;
        }
    }

    /// Count a message sent without asking (a cancel): the next request waits one more interval.
    pub fn charge(&self) {
        let now = Instant::now();
        let mut next = self.lock();
        let base = next.map_or(now, |t| t.max(now));
        *next = Some(base + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Requests from many tasks, a cancel after every other one: in every one-second window
    /// requests plus cancels stay within the rate (plus the one message at the window's edge).
    #[tokio::test(start_paused = true)]
    async fn requests_and_cancels_stay_within_the_rate() {
        let pacer = Arc::new(MessagePacer::per_second(45));
        let log = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..40 {
            let (pacer, log) = (pacer.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    pacer.acquire().await;
                    log.lock().unwrap().push(Instant::now());
                    // The answer comes 400 ms later; half are 200s, which ibapi cancels.
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    if (w + i) % 2 == 0 {
                        pacer.charge();
                        log.lock().unwrap().push(Instant::now());
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = log.lock().unwrap().clone();
        times.sort();
        let total = times.len();
        let mut worst = 0;
        for (i, t) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            worst = worst.max(n);
        }
        assert!(worst <= 46, "{worst} messages in one second");
        let secs = times.last().unwrap().duration_since(t0).as_secs_f64();
        assert!(total as f64 / secs > 40.0, "{total} in {secs:.1} s");
    }
}
