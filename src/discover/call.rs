//! One discovery request on the shared session: through the governor and the message pacer,
//! retried by the run's [`RetryPolicy`](crate::ib::session::retry::RetryPolicy), reconnected
//! through the run's [`Reconnector`] (a drop is not a try), and failing at once once the
//! gateway is lost for good.

use super::DiscoverConfig;
use crate::ib::session::governor::PacingGovernor;
use crate::ib::session::pacer::MessagePacer;
use crate::ib::session::reconnect::{Reconnect, Reconnector};
use crate::ib::session::retry::Attempts;
use crate::ib::{Failure, Gateway, OutcomeClass};
use std::sync::Arc;
use tokio::sync::watch;

/// What every request of a discovery run shares.
pub(super) struct Ctx {
    pub(super) gateway: Gateway,
    pub(super) governor: Arc<PacingGovernor>,
    pub(super) pacer: MessagePacer,
    pub(super) cfg: DiscoverConfig,
    pub(super) stop: watch::Receiver<bool>,
    /// Reconnects after a drop; the "gateway lost" state once they gave up, so that every
    /// later call fails at once instead of each worker reconnecting again for
    /// `reconnect_for` in turn.
    pub(super) reconnector: Reconnector,
}

/// Why a request finally failed: a [`Failure`] from the gateway, or the connection gone for good.
pub(super) enum CallError {
    Failed(Failure),
    GatewayLost(String),
    Interrupted,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Failed(e) => write!(f, "{e}"),
            CallError::GatewayLost(why) => write!(f, "gateway lost: {why}"),
            CallError::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// A symbol's failure: a message for the summary, and whether the gateway is gone for good.
pub(super) struct SymbolError {
    pub(super) message: String,
    pub(super) gateway_lost: bool,
}

impl SymbolError {
    pub(super) fn new(message: String) -> Self {
        SymbolError {
            message,
            gateway_lost: false,
        }
    }

    pub(super) fn from_call(context: &str, e: CallError) -> Self {
        SymbolError {
            gateway_lost: matches!(e, CallError::GatewayLost(_)),
            message: format!("{context}: {e}"),
        }
    }
}

impl Ctx {
    /// [`Ctx::call_with`] for requests whose every success ends natively (no cancel is sent).
    pub(super) async fn call<T, F, Fut>(&self, f: F) -> (Result<T, CallError>, usize)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        self.call_with(f, |_| false).await
    }

    /// One request through the governor and the message pacer, with retries (bounded by the
    /// policy's tries, exponential backoff) and reconnects (a drop is not a try). Every error
    /// but a drop, and every success `cancelled_ok` names, made `ibapi` write a cancel: it is
    /// charged to the pacer. Returns the result and the number of requests sent.
    pub(super) async fn call_with<T, F, Fut>(
        &self,
        mut f: F,
        cancelled_ok: fn(&T) -> bool,
    ) -> (Result<T, CallError>, usize)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut tries = Attempts::new(self.cfg.retry);
        let mut sent = 0usize;
        loop {
            if *self.stop.borrow() {
                return (Err(CallError::Interrupted), sent);
            }
            if let Some(why) = self.reconnector.lost() {
                return (Err(CallError::GatewayLost(why.to_string())), sent);
            }
            let generation = self.gateway.generation();
            let permit = self.governor.acquire(None).await;
            self.pacer.acquire().await;
            if let Some(why) = self.reconnector.lost() {
                return (Err(CallError::GatewayLost(why.to_string())), sent);
            }
            sent += 1;
            tries.start();
            let res = f().await;
            let (class, cancelled) = match &res {
                Ok(v) => (OutcomeClass::Ok, cancelled_ok(v)),
                Err(e) => (e.class, e.class != OutcomeClass::Disconnected),
            };
            if cancelled {
                self.pacer.charge();
            }
            permit.finish(class);
            match res {
                Ok(v) => return (Ok(v), sent),
                Err(e) if e.class == OutcomeClass::Disconnected => {
                    tries.refund();
                    if let Err(e) = self.reconnect(generation).await {
                        return (Err(e), sent);
                    }
                }
                Err(e) if e.class.is_retryable() && tries.can_retry() => {
                    let wait = tries.retry_delay();
                    tracing::debug!("retry {} in {wait:.1?}: {e}", tries.made());
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return (Err(CallError::Failed(e)), sent),
            }
        }
    }

    /// Reconnect after a drop seen on connection `generation`; an error when the request must
    /// end (the gateway is lost, or the run stops).
    async fn reconnect(&self, generation: u64) -> Result<(), CallError> {
        let outcome = self
            .reconnector
            .reconnect(&self.gateway, &self.governor, generation, &self.stop)
            .await;
        match outcome {
            Reconnect::Reconnected | Reconnect::Unneeded => Ok(()),
            Reconnect::AlreadyLost(why) | Reconnect::GaveUp(why) => {
                Err(CallError::GatewayLost(why))
            }
            Reconnect::Interrupted => Err(CallError::Interrupted),
        }
    }
}
