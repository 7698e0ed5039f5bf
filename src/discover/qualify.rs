//! Qualification of a symbol's candidates: one contract-details request each, by a fixed pool
//! of workers through the shared governor and message pacer.

use super::call::{CallError, Ctx};
use crate::ib::OptionSpec;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What qualifying a symbol's candidates gave.
#[derive(Default)]
pub(super) struct Qualified {
    /// (request, answer) of the candidates that exist.
    pub(super) found: Vec<(OptionSpec, OptionSpec)>,
    /// Candidates answered 200.
    pub(super) missing: Vec<OptionSpec>,
    /// The contract-details hours of the first contract qualified per trading class.
    pub(super) hours: std::collections::BTreeMap<String, crate::hours::RawHours>,
    pub(super) requests: usize,
    pub(super) failures: Vec<String>,
    pub(super) lost: Option<CallError>,
}

/// Qualify every candidate with one contract-details request each, through the governor.
///
/// A fixed pool of workers (as many as the governor's hard cap) pulls candidates from a shared
/// queue, so a 10,000-contract chain is not 10,000 tasks all woken on every completion. Once the
/// gateway is lost for good or the run is interrupted, the workers stop taking candidates.
pub(super) async fn qualify_all(ctx: &Arc<Ctx>, label: &str, cands: Vec<OptionSpec>) -> Qualified {
    let total = cands.len();
    let queue = Arc::new(std::sync::Mutex::new(cands.into_iter()));
    let done = Arc::new(AtomicUsize::new(0));
    let abort = Arc::new(AtomicBool::new(false));
    let workers = ctx.cfg.governor.max_in_flight.clamp(1, 50) as usize;
    let mut joins = tokio::task::JoinSet::new();
    for _ in 0..workers.min(total.max(1)) {
        let (ctx, queue, done, abort) = (ctx.clone(), queue.clone(), done.clone(), abort.clone());
        joins.spawn(async move {
            let mut out = Qualified::default();
            loop {
                if abort.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some(spec) = next else { break };
                let (res, n) = ctx
                    .call_with(|| ctx.gateway.qualify_option(&spec), Option::is_none)
                    .await;
                out.requests += n;
                done.fetch_add(1, Ordering::Relaxed);
                match res {
                    Ok(Some((found, hours))) => {
                        out.hours
                            .entry(found.trading_class.clone())
                            .or_insert(hours);
                        out.found.push((spec, found));
                    }
                    Ok(None) => out.missing.push(spec),
                    Err(CallError::Failed(f)) => out.failures.push(format!(
                        "{} {} {} {}: {f}",
                        spec.expiry, spec.strike, spec.right, spec.trading_class
                    )),
                    Err(e) => {
                        abort.store(true, Ordering::SeqCst);
                        out.lost = Some(e);
                        break;
                    }
                }
            }
            out
        });
    }
    let progress = ctx
        .cfg
        .progress_every
        .map(|every| spawn_progress(ctx, label, total, done.clone(), every));
    let mut all = Qualified::default();
    while let Some(j) = joins.join_next().await {
        let q = match j {
            Ok(q) => q,
            Err(e) => {
                all.failures.push(format!("worker failed: {e}"));
                continue;
            }
        };
        all.found.extend(q.found);
        all.missing.extend(q.missing);
        for (class, h) in q.hours {
            all.hours.entry(class).or_insert(h);
        }
        all.requests += q.requests;
        all.failures.extend(q.failures);
        if all.lost.is_none() {
            all.lost = q.lost;
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    all
}

/// A progress bar on a terminal, a line every `every` otherwise (shared with `execute`), of
/// `done` out of `total` candidates qualified, until aborted.
fn spawn_progress(
    ctx: &Arc<Ctx>,
    label: &str,
    total: usize,
    done: Arc<AtomicUsize>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let ctx = ctx.clone();
    let label = label.to_string();
    tokio::spawn(async move {
        let t0 = Instant::now();
        let mut bar =
            crate::progress::Progress::every(&format!("progress: {label}"), total as u64, every);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let n = done.load(Ordering::Relaxed);
            let g = ctx.governor.stats();
            let secs = t0.elapsed().as_secs_f64().max(1e-9);
            let rate = n as f64 / secs;
            bar.update(n as u64, total as u64, || {
                format!(
                "{n}/{total} qualified, {rate:.1}/s, ETA {:.0} s, in flight {} (limit {}), latency {:.0} ms{}",
                if rate > 0.0 { (total - n.min(total)) as f64 / rate } else { 0.0 },
                g.in_flight,
                g.limit,
                g.latency_ms,
                if g.paused { ", paused" } else { "" }
            )
            });
        }
    })
}
