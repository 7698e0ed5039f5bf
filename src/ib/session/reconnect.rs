//! Connecting and reconnecting, shared by `execute` and `discover`: the first connection and
//! every reconnect after a drop are retried with exponential backoff (0.5 s doubling to 30 s,
//! with jitter) for as long as `reconnect-for` allows. A weekend gateway restarts nightly and
//! refuses connections meanwhile, so a run started at the wrong minute must wait, not fail.

use super::governor::PacingGovernor;
use crate::ib::{ConnectError, Gateway, GatewayConfig};
use rand::Rng;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `d` scaled by a random factor in 0.75..1.25, so that many clients (or many tasks) that failed
/// together do not come back in lockstep.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.75..1.25))
}

/// Make the first connection, retrying with backoff for up to `allowed` (said on the terminal
/// and in the log). Fails at once when the handshake proves that retrying cannot help (a server
/// version too old for `ibapi`, a client id in use), when `allowed` is used up, or on `stop`.
pub async fn connect_with_retry(
    cfg: &GatewayConfig,
    allowed: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<Gateway, ConnectError> {
    let deadline = Instant::now() + allowed;
    let mut backoff = Duration::from_millis(500);
    let mut said = false;
    loop {
        let err = match Gateway::connect(cfg.clone()).await {
            Ok(g) => {
                if said {
                    tracing::warn!("gateway {} is up: connected", cfg.address());
                }
                return Ok(g);
            }
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => e,
        };
        let wait = jittered(backoff);
        if Instant::now() + wait > deadline {
            tracing::error!(
                "gateway {} still unreachable after {allowed:?}: {err}",
                cfg.address()
            );
            return Err(err);
        }
        if !said {
            tracing::warn!(
                "gateway {} not reachable ({}); retrying for up to {allowed:?} (reconnect-for)",
                cfg.address(),
                err.short()
            );
            said = true;
        } else {
            tracing::info!(
                "gateway {} not reachable yet ({}); retrying in {wait:.1?}",
                cfg.address(),
                err.short()
            );
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return Err(ConnectError::Interrupted),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Reconnect after a drop seen on connection `generation` (many callers seeing the same drop
/// reconnect once: the gateway ignores a stale generation). Gives up after `allowed`, or when
/// `stop` turns true. Returns a description of the last error when it gives up.
pub async fn reconnect_with_backoff(
    gateway: &Gateway,
    governor: &PacingGovernor,
    generation: u64,
    allowed: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<bool, String> {
    if gateway.generation() != generation {
        return Ok(false);
    }
    governor.hold();
    let deadline = Instant::now() + allowed;
    let mut backoff = Duration::from_millis(500);
    loop {
        if *stop.borrow() {
            governor.resume();
            return Err("interrupted while reconnecting".into());
        }
        match gateway.reconnect(generation).await {
            Ok(()) => {
                tracing::info!("reconnected to {}", gateway.config().address());
                governor.resume();
                return Ok(true);
            }
            Err(e) => {
                if Instant::now() + backoff > deadline {
                    governor.resume();
                    return Err(format!("gateway unreachable for {allowed:?}: {e}"));
                }
                let wait = jittered(backoff);
                tracing::warn!("reconnect failed, retrying in {wait:.1?}: {e}");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
