//! Connecting and reconnecting, shared by `execute` and `discover`: the first connection and
//! every reconnect after a drop are retried with [`RetryPolicy::connect`] (0.5 s doubling to
//! 30 s, with jitter) for as long as `reconnect-for` allows. A weekend gateway restarts nightly
//! and refuses connections meanwhile, so a run started at the wrong minute must wait, not fail.
//!
//! A run's requests share one [`Reconnector`]: many requests seeing the same drop reconnect
//! once, and once reconnecting gave up the run's "gateway lost" state is set, so every later
//! request fails at once instead of each reconnecting again for `reconnect-for` in turn.

use super::governor::PacingGovernor;
use super::retry::{retry_for, GaveUp, RetryPolicy};
use crate::ib::{ConnectError, Gateway, GatewayConfig};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;

/// Make the first connection, retrying with backoff for up to `allowed` (said on the terminal
/// and in the log). Fails at once when the handshake proves that retrying cannot help (a server
/// version too old for `ibapi`, a client id in use), when `allowed` is used up, or on `stop`.
pub async fn connect_with_retry(
    cfg: &GatewayConfig,
    allowed: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<Gateway, ConnectError> {
    let mut said = false;
    let res = retry_for(
        &RetryPolicy::connect(),
        allowed,
        stop,
        || Gateway::connect(cfg.clone()),
        ConnectError::is_permanent,
        |err: &ConnectError, _, wait| {
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
        },
    )
    .await;
    match res {
        Ok(g) => {
            if said {
                tracing::warn!("gateway {} is up: connected", cfg.address());
            }
            Ok(g)
        }
        Err(GaveUp::Permanent(e)) => Err(e),
        Err(GaveUp::Interrupted) => Err(ConnectError::Interrupted),
        Err(GaveUp::OutOfTime(e)) => {
            tracing::error!(
                "gateway {} still unreachable after {allowed:?}: {e}",
                cfg.address()
            );
            Err(e)
        }
    }
}

/// Reconnect after a drop seen on connection `generation` (many callers seeing the same drop
/// reconnect once: the gateway ignores a stale generation), holding the governor meanwhile.
/// Gives up after `allowed`, or when `stop` turns true. Returns whether this call replaced the
/// connection, or a description of the last error when it gives up.
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
    if *stop.borrow() {
        return Err("interrupted while reconnecting".into());
    }
    governor.hold();
    let res = retry_for(
        &RetryPolicy::connect(),
        allowed,
        stop,
        || gateway.reconnect(generation),
        // After a drop even "client id in use" passes: the old session lingers for a while.
        |_| false,
        |e, _, wait| tracing::warn!("reconnect failed, retrying in {wait:.1?}: {e}"),
    )
    .await;
    governor.resume();
    match res {
        Ok(()) => {
            tracing::info!("reconnected to {}", gateway.config().address());
            Ok(true)
        }
        Err(GaveUp::Interrupted) => Err("interrupted while reconnecting".into()),
        Err(GaveUp::OutOfTime(e) | GaveUp::Permanent(e)) => {
            Err(format!("gateway unreachable for {allowed:?}: {e}"))
        }
    }
}

/// What [`Reconnector::reconnect`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconnect {
    /// This call replaced the connection.
    Reconnected,
    /// Another caller had already replaced it: go on.
    Unneeded,
    /// The gateway was lost before this call (by another request's reconnect).
    AlreadyLost(String),
    /// This call gave up: the gateway is now lost for the whole run.
    GaveUp(String),
    /// The run is stopping (Ctrl-C, SIGTERM): not a lost gateway.
    Interrupted,
}

/// A run's reconnects and its "gateway lost" state, shared by all its requests.
#[derive(Debug)]
pub struct Reconnector {
    allowed: Duration,
    reconnecting: tokio::sync::Mutex<()>,
    lost: OnceLock<String>,
}

impl Reconnector {
    /// Reconnects each kept trying for up to `allowed` (`reconnect-for`).
    pub fn new(allowed: Duration) -> Self {
        Reconnector {
            allowed,
            reconnecting: tokio::sync::Mutex::new(()),
            lost: OnceLock::new(),
        }
    }

    /// Why the gateway is lost for good, once it is.
    pub fn lost(&self) -> Option<&str> {
        self.lost.get().map(String::as_str)
    }

    /// True once the gateway is lost for good.
    pub fn is_lost(&self) -> bool {
        self.lost.get().is_some()
    }

    /// Reconnect after a drop seen on connection `generation`, one caller at a time (the
    /// others wait and find the connection replaced, or the gateway lost).
    pub async fn reconnect(
        &self,
        gateway: &Gateway,
        governor: &PacingGovernor,
        generation: u64,
        stop: &watch::Receiver<bool>,
    ) -> Reconnect {
        let _one_at_a_time = self.reconnecting.lock().await;
        if let Some(why) = self.lost.get() {
            return Reconnect::AlreadyLost(why.clone());
        }
        match reconnect_with_backoff(gateway, governor, generation, self.allowed, stop).await {
            Ok(true) => Reconnect::Reconnected,
            Ok(false) => Reconnect::Unneeded,
            Err(_) if *stop.borrow() => Reconnect::Interrupted,
            Err(why) => {
                let _ = self.lost.set(why.clone());
                Reconnect::GaveUp(why)
            }
        }
    }
}
