//! Sending one request: the governor's permit, retries with backoff, reconnects, and the
//! quarantine of a task that keeps dropping the connection.

use super::incremental::Request;
use super::run::{Event, Shared};
use super::safety::{DropTracker, MAX_FARM_TIMEOUTS};
use super::small_bars::SmallBarKey;
use super::task::{hist_request, TaskTally};
use crate::compile::task::FetchTask;
use crate::ib::{FetchedBar, OutcomeClass};
use std::sync::Arc;
use std::time::Duration;

/// What one request of a task came to.
pub(super) enum Sent {
    /// Bars (possibly none: a silent empty answer).
    Bars(Vec<FetchedBar>),
    /// A final failure (EMPTY included).
    Failed(crate::ib::Failure),
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
    let cfg = &sh.cfg;
    let mut hreq = hist_request(t, req);
    if empty_end {
        hreq.end = None;
    }
    let expired = t.contract.expiry < sh.today;
    let small = t.bar_size.is_small().then(|| SmallBarKey {
        contract: format!("{}|{}|{}", t.contract.con_id, t.contract.exchange, t.what),
        request: format!(
            "{}|{}|{}|{}|{}",
            t.contract.con_id, t.what, t.bar_size, req.end, req.duration
        ),
        weight: if t.what == "BID_ASK" { 2 } else { 1 },
    });
    let mut attempts = 0u32;
    let mut drops = DropTracker::default();
    let mut farm_timeouts = 0u32;
    loop {
        if *sh.stop.borrow() || sh.lost.borrow().is_some() {
            return Sent::Stopped; // not recorded (the run exits non-zero): the next run does it
        }
        let solo = drops.solo();
        let (_shared_guard, _solo_guard) = if solo {
            tracing::warn!(
                "{} {} conId {} was in flight at {} disconnects: sending it alone",
                t.phase,
                t.symbol,
                t.contract.con_id,
                drops.disconnects
            );
            (None, Some(sh.solo.write().await))
        } else {
            (Some(sh.solo.read().await), None)
        };
        let generation = sh.gateway.generation();
        let permit = sh.governor.acquire(small.as_ref()).await;
        attempts += 1;
        tally.attempts += 1;
        let _ = sh.events.send(Event::Request {
            retry: attempts > 1,
        });
        let result = sh.gateway.historical(&hreq, expired).await;
        drop((_shared_guard, _solo_guard));
        let class = match &result {
            Ok(_) => OutcomeClass::Ok,
            Err(f) => f.class,
        };
        let latency = permit.finish(class);
        tally.latency_ms = Some(latency.as_millis() as u64);
        let _ = sh.events.send(Event::Answered { class, latency });
        match result {
            Ok(bars) => return Sent::Bars(bars),
            Err(f) if f.class == OutcomeClass::Disconnected => {
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
                    return Sent::Failed(crate::ib::Failure {
                        class,
                        code: f.code,
                        message,
                    });
                }
                if !reconnect(sh, generation).await {
                    return Sent::Stopped;
                }
                attempts -= 1; // not the task's fault
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
                attempts -= 1;
                tally.attempts -= 1;
                tracing::info!(
                    "{} {} conId {} {}: {f} while the farm is broken; sent again once it is back",
                    t.phase,
                    t.symbol,
                    t.contract.con_id,
                    t.bar_size
                );
            }
            Err(f) if f.class.is_retryable() && attempts < cfg.max_attempts => {
                let backoff = cfg
                    .retry_backoff
                    .saturating_mul(1 << (attempts - 1).min(6))
                    .min(Duration::from_secs(60));
                let backoff = super::reconnect::jittered(backoff);
                tracing::info!(
                    "{} {} conId {} {}: {f}; retry {} of {} in {backoff:.1?}",
                    t.phase,
                    t.symbol,
                    t.contract.con_id,
                    t.bar_size,
                    attempts + 1,
                    cfg.max_attempts
                );
                tokio::time::sleep(backoff).await;
            }
            Err(f) => return Sent::Failed(f),
        }
    }
}

/// Reconnect after a drop seen on connection `generation`. Returns false when the run must stop.
pub(super) async fn reconnect(sh: &Arc<Shared>, generation: u64) -> bool {
    let _guard = sh.reconnecting.lock().await;
    if sh.lost.borrow().is_some() {
        return false;
    }
    match super::reconnect::reconnect_with_backoff(
        &sh.gateway,
        &sh.governor,
        generation,
        sh.cfg.reconnect_for,
        &sh.stop,
    )
    .await
    {
        Ok(true) => {
            let _ = sh.events.send(Event::Reconnected);
            true
        }
        Ok(false) => true,
        Err(why) => {
            if !*sh.stop.borrow() {
                let _ = sh.lost.send(Some(why.clone()));
                let _ = sh.events.send(Event::GatewayLost(why));
            }
            false
        }
    }
}
