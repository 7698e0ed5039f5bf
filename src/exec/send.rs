//! Sending one request: the governor's permit, retries with backoff, reconnects, and the
//! quarantine of a task that keeps dropping the connection.

use super::incremental::Request;
use super::run::{Event, Shared};
use super::safety::{DropTracker, MAX_FARM_TIMEOUTS};
use super::small_bars::SmallBarKey;
use super::task::{hist_request, TaskTally};
use crate::compile::task::FetchTask;
use crate::ib::session::reconnect::Reconnect;
use crate::ib::session::retry::Attempts;
use crate::ib::{Failure, FetchedBar, HistRequest, OutcomeClass};
use std::sync::Arc;

/// What one request of a task came to.
pub(super) enum Sent {
    /// Bars (possibly none: a silent empty answer).
    Bars(Vec<FetchedBar>),
    /// A final failure (EMPTY included).
    Failed(Failure),
    /// The run is stopping: not recorded, the next run does it.
    Stopped,
}

/// Send one request with retries and reconnects (the task's attempts are counted in `tally`).
/// A task in flight at repeated disconnects is sent alone, and set aside (QUARANTINED) when
/// the connection drops even then, so it cannot disconnect everyone else again.
pub(super) async fn send(
    sh: &Arc<Shared>,
    t: &FetchTask,
    req: &Request,
    empty_end: bool,
    tally: &mut TaskTally,
) -> Sent {
    let mut hreq = hist_request(t, req);
    if empty_end {
        hreq.end = None;
    }
    let expired = t.contract.expiry < sh.today;
    let small = small_bar_key(t, req);
    let mut tries = Attempts::new(sh.cfg.retry);
    let mut drops = DropTracker::default();
    let mut farm_timeouts = 0u32;
    loop {
        if *sh.stop.borrow() || sh.reconnector.is_lost() {
            return Sent::Stopped; // not recorded (the run exits non-zero): the next run does it
        }
        let solo = drops.solo();
        if solo {
            tracing::warn!(
                "{} {} conId {} was in flight at {} disconnects: sending it alone",
                t.phase,
                t.symbol,
                t.contract.con_id,
                drops.disconnects
            );
        }
        let one = Try {
            hreq: &hreq,
            expired,
            small: small.as_ref(),
            solo,
        };
        let (generation, result) = one.send(sh, &mut tries, tally).await;
        match result {
            Ok(bars) => return Sent::Bars(bars),
            Err(f) if f.class == OutcomeClass::Disconnected => {
                if let Some(end) = after_drop(sh, t, generation, solo, &mut drops, f).await {
                    return end;
                }
                tries.refund(); // not the task's fault
                tally.attempts -= 1;
            }
            Err(f)
                if f.class == OutcomeClass::Timeout
                    && sh.governor.farm_paused()
                    && farm_timeouts < MAX_FARM_TIMEOUTS =>
            {
                // The farm broke while this request was out: not the request's fault. The
                // governor holds the retry until the farm is back.
                farm_timeouts += 1;
                tries.refund();
                tally.attempts -= 1;
                tracing::info!(
                    "{} {} conId {} {}: {f} while the farm is broken; sent again once it is back",
                    t.phase,
                    t.symbol,
                    t.contract.con_id,
                    t.bar_size
                );
            }
            Err(f) if f.class.is_retryable() && tries.can_retry() => {
                let backoff = tries.retry_delay();
                tracing::info!(
                    "{} {} conId {} {}: {f}; retry {} of {} in {backoff:.1?}",
                    t.phase,
                    t.symbol,
                    t.contract.con_id,
                    t.bar_size,
                    tries.made() + 1,
                    tries.max()
                );
                tokio::time::sleep(backoff).await;
            }
            Err(f) => return Sent::Failed(f),
        }
    }
}

/// The small-bar pacing key of a request (bar sizes of 30 seconds or less only).
fn small_bar_key(t: &FetchTask, req: &Request) -> Option<SmallBarKey> {
    t.bar_size.is_small().then(|| SmallBarKey {
        contract: format!("{}|{}|{}", t.contract.con_id, t.contract.exchange, t.what),
        request: format!(
            "{}|{}|{}|{}|{}",
            t.contract.con_id, t.what, t.bar_size, req.end, req.duration
        ),
        weight: if t.what == "BID_ASK" { 2 } else { 1 },
    })
}

/// One try of a request.
struct Try<'a> {
    hreq: &'a HistRequest,
    expired: bool,
    small: Option<&'a SmallBarKey>,
    /// Sent alone: no other request is in flight meanwhile.
    solo: bool,
}

impl Try<'_> {
    /// Send it: the solo guard, the governor's permit, the request, and the events of both
    /// ends. Returns the generation of the connection it went out on, and the answer.
    async fn send(
        &self,
        sh: &Shared,
        tries: &mut Attempts,
        tally: &mut TaskTally,
    ) -> (u64, Result<Vec<FetchedBar>, Failure>) {
        let guards = if self.solo {
            (None, Some(sh.solo.write().await))
        } else {
            (Some(sh.solo.read().await), None)
        };
        let generation = sh.gateway.generation();
        let permit = sh.governor.acquire(self.small).await;
        let attempt = tries.start();
        tally.attempts += 1;
        let _ = sh.events.send(Event::Request { retry: attempt > 1 });
        let result = sh.gateway.historical(self.hreq, self.expired).await;
        drop(guards);
        let class = match &result {
            Ok(_) => OutcomeClass::Ok,
            Err(f) => f.class,
        };
        let latency = permit.finish(class);
        tally.latency_ms = Some(latency.as_millis() as u64);
        let _ = sh.events.send(Event::Answered { class, latency });
        (generation, result)
    }
}

/// After the connection dropped under a try on `generation`: reconnect and send again
/// (`None`), or end the request: the run is stopping, or the task keeps dropping the
/// connection and is set aside once the connection is back for the others.
async fn after_drop(
    sh: &Arc<Shared>,
    t: &FetchTask,
    generation: u64,
    solo: bool,
    drops: &mut DropTracker,
    f: Failure,
) -> Option<Sent> {
    // Late answers from a connection already replaced do not reopen the outage.
    if sh.gateway.generation() == generation {
        let _ = sh.events.send(Event::Disconnected);
    }
    tracing::warn!(
        "connection lost during {} {} conId {}: {f}; reconnecting",
        t.phase,
        t.symbol,
        t.contract.con_id
    );
    if let Some((class, message)) = drops.dropped(solo, &f.message) {
        tracing::error!(
            "{} {} conId {} {}: {class}: {message}",
            t.phase,
            t.symbol,
            t.contract.con_id,
            t.bar_size
        );
        // Let the connection come back for the others before leaving.
        reconnect(sh, generation).await;
        return Some(Sent::Failed(Failure {
            class,
            code: f.code,
            message,
        }));
    }
    if !reconnect(sh, generation).await {
        return Some(Sent::Stopped);
    }
    None
}

/// Reconnect after a drop seen on connection `generation`. Returns false when the run must stop.
pub(super) async fn reconnect(sh: &Arc<Shared>, generation: u64) -> bool {
    let outcome = sh
        .reconnector
        .reconnect(&sh.gateway, &sh.governor, generation, &sh.stop)
        .await;
    match outcome {
        Reconnect::Reconnected => {
            let _ = sh.events.send(Event::Reconnected);
            true
        }
        Reconnect::Unneeded => true,
        Reconnect::GaveUp(why) => {
            let _ = sh.events.send(Event::GatewayLost(why));
            false
        }
        Reconnect::AlreadyLost(_) | Reconnect::Interrupted => false,
    }
}
