//! Reconnecting after a drop, shared by `execute` and `discover`: hold the governor, retry the
//! connection with exponential backoff (0.5 s doubling to 30 s) for as long as allowed, resume.

use super::governor::PacingGovernor;
use crate::ib::Gateway;
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
                tracing::warn!("reconnect failed, retrying in {backoff:?}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
