//! How a failed step is tried again, written once for everything that talks to the gateway:
//! a [`RetryPolicy`] (exponential backoff from a base delay up to a cap, a number of tries, a
//! time scale for compressed-time runs), the count of one request's tries ([`Attempts`]), and
//! the loop that keeps trying until a deadline ([`retry_for`], used to connect and reconnect).
//!
//! Why one type: the executor, discovery and the connection each wait differently (a
//! historical request after a pacing error needs seconds, a contract-details request half a
//! second), but the arithmetic, the jitter and the rule "a dropped connection is not the
//! request's fault" must not drift apart between them.

use super::small_bars::compress;
use rand::Rng;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Exponential backoff: the wait after the `n`-th failed try is `base x 2^(n-1)`, at most
/// `cap`, divided by `time_scale`; at most `max_attempts` tries in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failed try; it doubles after every further one.
    pub base: Duration,
    /// Longest wait between two tries.
    pub cap: Duration,
    /// Tries in all, the first included; [`u32::MAX`] when only a deadline bounds them.
    pub max_attempts: u32,
    /// How many times faster than the wall clock the gateway's clock runs (a compressed-time
    /// simulator, `execute --time-scale`); every wait is divided by it. 1 is real time.
    pub time_scale: f64,
}

impl RetryPolicy {
    /// A real-time policy.
    pub const fn new(base: Duration, cap: Duration, max_attempts: u32) -> Self {
        RetryPolicy {
            base,
            cap,
            max_attempts,
            time_scale: 1.0,
        }
    }

    /// The executor's historical requests: 2 s doubling to 60 s. A retryable answer there is
    /// mostly a pacing violation or a busy farm, which a few seconds' wait clears.
    pub const fn historical(max_attempts: u32) -> Self {
        Self::new(
            Duration::from_secs(2),
            Duration::from_secs(60),
            max_attempts,
        )
    }

    /// Discovery's requests (contract details, chains, closes): 0.5 s doubling to 16 s. A
    /// qualification answers in under half a second and thousands are asked per symbol, so
    /// the historical requests' seconds would only idle the message rate.
    pub const fn discovery(max_attempts: u32) -> Self {
        Self::new(
            Duration::from_millis(500),
            Duration::from_secs(16),
            max_attempts,
        )
    }

    /// Connecting and reconnecting: 0.5 s doubling to 30 s, bounded by a deadline
    /// (`reconnect-for`) rather than a number of tries.
    pub const fn connect() -> Self {
        Self::new(
            Duration::from_millis(500),
            Duration::from_secs(30),
            u32::MAX,
        )
    }

    /// The same policy against a gateway whose clock runs `time_scale` times faster.
    pub fn compressed(self, time_scale: f64) -> Self {
        RetryPolicy { time_scale, ..self }
    }

    /// The wait after failed try number `attempt` (1 for the first), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let d = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        compress(d, self.time_scale)
    }

    /// [`RetryPolicy::delay`] with jitter ([`jittered`]).
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        jittered(self.delay(attempt))
    }

    /// Whether another try may follow failed try number `attempt`.
    pub fn allows_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

/// `d` scaled by a random factor in 0.75..1.25, so that many clients (or many tasks) that failed
/// together do not come back in lockstep.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.75..1.25))
}

/// The tries of one request under a policy. A try that was not the request's fault (the
/// connection dropped under it, the farm broke while it was out) is given back with
/// [`Attempts::refund`], so it does not use up the request's retries.
#[derive(Debug, Clone)]
pub struct Attempts {
    policy: RetryPolicy,
    made: u32,
}

impl Attempts {
    /// No try made yet.
    pub fn new(policy: RetryPolicy) -> Self {
        Attempts { policy, made: 0 }
    }

    /// Count one more try; returns its number (1 for the first).
    pub fn start(&mut self) -> u32 {
        self.made += 1;
        self.made
    }

    /// Tries counted so far.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// The last try does not count.
    pub fn refund(&mut self) {
        self.made = self.made.saturating_sub(1);
    }

    /// Whether the policy allows another try after the last one failed.
    pub fn can_retry(&self) -> bool {
        self.policy.allows_retry(self.made)
    }

    /// The wait before the next try, jittered.
    pub fn retry_delay(&self) -> Duration {
        self.policy.jittered_delay(self.made)
    }

    /// The policy's limit of tries.
    pub fn max(&self) -> u32 {
        self.policy.max_attempts
    }
}

/// Why [`retry_for`] stopped trying.
#[derive(Debug)]
pub enum GaveUp<E> {
    /// An error retrying cannot help with.
    Permanent(E),
    /// The next wait would end past the deadline; the last error.
    OutOfTime(E),
    /// `stop` turned true.
    Interrupted,
}

/// Try `op` until it succeeds, waiting per `policy` (jittered) between tries, for up to
/// `allowed`. Gives up on an error `permanent` says retrying cannot help with, when the next
/// wait would end past the deadline, or once `stop` is true (checked after every failed try and
/// during the wait). `on_retry(error, attempt, wait)` is told of every wait, for the log.
pub async fn retry_for<T, E, Fut>(
    policy: &RetryPolicy,
    allowed: Duration,
    stop: &watch::Receiver<bool>,
    mut op: impl FnMut() -> Fut,
    permanent: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(&E, u32, Duration),
) -> Result<T, GaveUp<E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + allowed;
    let mut attempts = Attempts::new(*policy);
    loop {
        attempts.start();
        let err = match op().await {
            Ok(v) => return Ok(v),
            Err(e) if permanent(&e) => return Err(GaveUp::Permanent(e)),
            Err(e) => e,
        };
        if *stop.borrow() {
            return Err(GaveUp::Interrupted);
        }
        let wait = attempts.retry_delay();
        if !attempts.can_retry() || Instant::now() + wait > deadline {
            return Err(GaveUp::OutOfTime(err));
        }
        on_retry(&err, attempts.made(), wait);
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return Err(GaveUp::Interrupted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn historical_doubles_from_two_seconds_to_a_minute() {
        let p = RetryPolicy::historical(10);
        let waits: Vec<u64> = (1..=8).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn discovery_doubles_from_half_a_second_to_sixteen() {
        let p = RetryPolicy::discovery(10);
        let waits: Vec<Duration> = (1..=8).map(|n| p.delay(n)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 16000, 16000].map(ms)
        );
    }

    #[test]
    fn connect_doubles_from_half_a_second_to_thirty_without_a_try_limit() {
        let p = RetryPolicy::connect();
        let waits: Vec<Duration> = (1..=8).map(|n| p.delay(n)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000].map(ms)
        );
        assert!(p.allows_retry(1_000_000));
    }

    #[test]
    fn a_compressed_policy_divides_every_wait_cap_included() {
        let p = RetryPolicy::historical(10).compressed(20.0);
        assert_eq!(p.delay(1), ms(100));
        assert_eq!(p.delay(4), ms(800));
        assert_eq!(p.delay(9), ms(3000));
        // A scale that is not a positive number leaves the waits alone.
        assert_eq!(
            RetryPolicy::historical(3).compressed(0.0).delay(2),
            ms(4000)
        );
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let p = RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(90), u32::MAX);
        assert_eq!(p.delay(0), Duration::from_secs(1));
        assert_eq!(p.delay(40), Duration::from_secs(90));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(90));
    }

    #[test]
    fn max_attempts_counts_the_first_try() {
        let p = RetryPolicy::historical(3);
        assert!(p.allows_retry(1));
        assert!(p.allows_retry(2));
        assert!(!p.allows_retry(3));
        assert!(!RetryPolicy::historical(1).allows_retry(1));
    }

    #[test]
    fn a_refunded_try_does_not_use_up_the_retries() {
        let mut a = Attempts::new(RetryPolicy::discovery(2));
        assert_eq!(a.start(), 1);
        a.refund(); // the connection dropped under it
        assert_eq!(a.start(), 1);
        assert!(a.can_retry());
        let wait = a.retry_delay();
        assert!(wait >= ms(375) && wait < ms(625), "{wait:?}");
        assert_eq!(a.start(), 2);
        assert!(!a.can_retry());
        assert_eq!(a.max(), 2);
    }

    #[test]
    fn jitter_stays_within_a_quarter_and_varies() {
        let d = Duration::from_secs(8);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(d)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(6) && *w < Duration::from_secs(10)));
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "not in lockstep: {}", distinct.len());
    }

    fn tiny() -> RetryPolicy {
        RetryPolicy::new(ms(1), ms(2), u32::MAX)
    }

    #[tokio::test]
    async fn retry_for_tries_until_success_and_tells_each_wait() {
        let (_tx, stop) = watch::channel(false);
        let mut left = 3;
        let mut told = Vec::new();
        let r: Result<u32, GaveUp<&str>> = retry_for(
            &tiny(),
            Duration::from_secs(5),
            &stop,
            || {
                left -= 1;
                let r = if left > 0 { Err("refused") } else { Ok(7) };
                async move { r }
            },
            |_| false,
            |_, n, _| told.push(n),
        )
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(told, [1, 2]);
    }

    #[tokio::test]
    async fn retry_for_gives_up_on_a_permanent_error_the_deadline_or_stop() {
        let (tx, stop) = watch::channel(false);
        let fail = || async { Err::<(), _>("no") };
        let tiny = tiny();
        let permanent = retry_for(
            &tiny,
            Duration::from_secs(5),
            &stop,
            fail,
            |_| true,
            |_, _, _| {},
        );
        assert!(matches!(permanent.await, Err(GaveUp::Permanent("no"))));
        let late = retry_for(&tiny, Duration::ZERO, &stop, fail, |_| false, |_, _, _| {});
        assert!(matches!(late.await, Err(GaveUp::OutOfTime("no"))));
        let bounded = RetryPolicy::new(ms(1), ms(1), 2);
        let tries = retry_for(
            &bounded,
            Duration::from_secs(5),
            &stop,
            fail,
            |_| false,
            |_, _, _| {},
        );
        assert!(matches!(tries.await, Err(GaveUp::OutOfTime("no"))));
        tx.send(true).unwrap();
        let stopped = retry_for(
            &tiny,
            Duration::from_secs(5),
            &stop,
            fail,
            |_| false,
            |_, _, _| {},
        );
        assert!(matches!(stopped.await, Err(GaveUp::Interrupted)));
    }
}
