//! Historical requests of one connection: validation, the 50-open limit, pacing, the service
//! task (farm, slot, bars, latency) and cancels.

use super::{Conn, InFlight, OpenReq, Out};
use crate::codec::{HistRequest, Reply, WireBar};
use crate::counters::HistOutcome;
use crate::hmds::PacingKey;
use crate::lookup;
use crate::market::{Market, SimBar};
use crate::pricing::{hash, unit};
use crate::shared::HistRequestRecord;
use crate::window::{self, HmdsError};
use chrono::{DateTime, Utc};
use ib_model::bars::{BarSize, Duration as IbDuration};
use std::sync::Arc;
use std::time::Instant;

impl Conn {
    pub(super) fn cancel(&self, req_id: i32) {
        let removed = self
            .out
            .open
            .lock()
            .ok()
            .and_then(|mut g| g.remove(&req_id));
        if let Some(o) = removed {
            o.abort.abort();
            let sh = self.sh();
            sh.counters.hist_outcome(HistOutcome::Cancelled, 0);
            sh.log_outcome(o.log_idx, "cancelled", 0);
            let e = HmdsError::cancelled(req_id);
            self.out.error(req_id, e.code, e.message);
        }
    }

    fn violation(&mut self) -> Option<&'static str> {
        let p = &self.out.sh.scenario.pacing;
        self.out.sh.counters.pacing_violation();
        let now = Instant::now();
        self.violations.push_back(now);
        let window = self.out.sh.scenario.wall(p.disconnect_window_secs.max(0.0));
        while self
            .violations
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.violations.pop_front();
        }
        (p.disconnect_window_secs > 0.0
            && p.disconnect_after_violations > 0
            && self.violations.len() as u32 >= p.disconnect_after_violations)
            .then_some("pacing-violations")
    }

    pub(super) fn historical(&mut self, h: HistRequest) -> Option<&'static str> {
        let sh = self.sh().clone();
        let req_id = h.req_id;
        let idx = sh.log_push(HistRequestRecord {
            seq: 0,
            client_id: self.client_id.unwrap_or(0),
            req_id,
            con_id: h.contract.con_id,
            bar_size: h.bar_size.clone(),
            duration: h.duration.clone(),
            end: h.end.clone(),
            what: h.what.clone(),
            use_rth: h.use_rth,
            outcome: "pending".into(),
            bars: 0,
            received_ms: sh.ms(),
            answered_ms: None,
        });
        let out0 = self.out.clone();
        let fail = move |e: HmdsError| {
            out0.sh.log_outcome(idx, &format!("error:{}", e.code), 0);
            out0.error(req_id, e.code, e.message);
        };
        let open_now = self.out.open.lock().map(|g| g.len()).unwrap_or(0);
        if open_now >= sh.scenario.hmds.max_open_per_connection as usize {
            fail(HmdsError::too_many_open(
                sh.scenario.hmds.max_open_per_connection,
            ));
            return None;
        }
        let p = match Parsed::of(&sh.market, &h) {
            Ok(x) => x,
            Err(e) => {
                fail(e);
                return None;
            }
        };
        if sh.scenario.faults.drop_on_con_ids.contains(&p.con_id) {
            return Some("fault-drop-on-con-id");
        }
        if p.bar.is_small() {
            let key = PacingKey::new(
                &p.con_id.to_string(),
                &h.contract.exchange,
                &h.what,
                &h.end,
                &h.duration,
                p.bar.as_str(),
                h.use_rth,
            );
            if let Err(rule) = sh.hmds.check_pacing(&key) {
                tracing::debug!(?rule, req_id, "pacing violation");
                fail(HmdsError::pacing());
                return self.violation();
            }
        }
        let hang =
            unit(hash(sh.scenario.seed, &[idx as u64, 0x4A6])) < sh.scenario.faults.hang_fraction;
        let out = self.out.clone();
        let Ok(mut open) = self.out.open.lock() else {
            return Some("internal-lock");
        };
        if open.contains_key(&req_id) {
            drop(open);
            fail(HmdsError {
                code: 322,
                message: "Error processing request:-'wd' : cause - Duplicate ticker id".into(),
            });
            return None;
        }
        sh.counters.hist_started();
        let guard = InFlight(sh.clone());
        let task = tokio::spawn(async move {
            let _guard = guard;
            serve(out, h, p, idx, hang).await;
        });
        open.insert(
            req_id,
            OpenReq {
                abort: task.abort_handle(),
                log_idx: idx,
            },
        );
        None
    }
}

/// A historical request's fields as the gateway reads them.
#[derive(Clone, Copy)]
struct Parsed {
    bar: BarSize,
    dur: IbDuration,
    /// None: now.
    end: Option<DateTime<Utc>>,
    con_id: i64,
}

impl Parsed {
    /// Parse the fields and resolve the contract, failing with IB's error for the first bad one.
    fn of(market: &Market, h: &HistRequest) -> Result<Parsed, HmdsError> {
        let bar = window::parse_bar_size(&h.bar_size)?;
        let dur: IbDuration = h
            .duration
            .parse()
            .map_err(|_| HmdsError::bad_duration(&h.duration))?;
        let end = window::parse_end(&h.end)?;
        let con_id = lookup::resolve_con_id(market, &h.contract)?;
        Ok(Parsed {
            bar,
            dur,
            end,
            con_id,
        })
    }
}

/// The service of one accepted request: a hang when the fault says so, then the farm, an HMDS
/// slot, the bars and the service time; the answer is sent unless a cancel removed the request
/// meanwhile (the cancel answered it).
async fn serve(out: Arc<Out>, h: HistRequest, p: Parsed, idx: usize, hang: bool) {
    let Parsed {
        bar,
        dur,
        end,
        con_id,
    } = p;
    let req_id = h.req_id;
    let sh = out.sh.clone();
    if hang {
        sh.counters.hist_outcome(HistOutcome::Hung, 0);
        sh.log_outcome(idx, "hung", 0);
        std::future::pending::<()>().await;
    }
    sh.faults.farm_up().await;
    let Ok(_permit) = sh.hmds.slots.acquire().await else {
        return;
    };
    let market = sh.market.clone();
    let end_t = end.unwrap_or_else(|| market.now_of_hours(con_id, h.use_rth));
    let what = h.what.clone();
    let result =
        tokio::task::spawn_blocking(move || market.bars(con_id, &what, bar, end_t, dur, h.use_rth))
            .await
            .unwrap_or_else(|_| Err(HmdsError::no_security()));
    let n = result.as_ref().map(|b| b.len()).unwrap_or(0);
    tokio::time::sleep(sh.hmds.service_time(n)).await;
    let Ok(mut open) = out.open.lock() else {
        return;
    };
    if open.remove(&req_id).is_none() {
        return; // cancelled meanwhile: the cancel answered
    }
    answer(&out, &h, &p, end_t, idx, result);
    drop(open);
}

/// Send the bars (HistoricalData then HistoricalDataEnd, the window clipped to now) or the error,
/// and record the outcome.
fn answer(
    out: &Out,
    h: &HistRequest,
    p: &Parsed,
    end_t: DateTime<Utc>,
    idx: usize,
    result: Result<Vec<SimBar>, HmdsError>,
) {
    let (sh, req_id, n) = (
        &out.sh,
        h.req_id,
        result.as_ref().map(|b| b.len()).unwrap_or(0),
    );
    let (bar, dur, con_id) = (p.bar, p.dur, p.con_id);
    match result {
        Ok(bars) => {
            let now = sh.market.now_of_hours(con_id, h.use_rth);
            let end_c = end_t.min(now);
            let start = sh
                .market
                .window_start_of(con_id, end_c, dur, h.use_rth)
                .unwrap_or(end_c);
            let (start, end_c) = (window::fmt_utc(start), window::fmt_utc(end_c));
            out.send(&Reply::HistoricalData {
                req_id,
                start: start.clone(),
                end: end_c.clone(),
                bars: bars
                    .iter()
                    .map(|b| wire_bar(b, bar.is_daily_or_longer(), h.format_date))
                    .collect(),
            });
            out.send(&Reply::HistoricalDataEnd {
                req_id,
                start,
                end: end_c,
            });
            sh.counters.hist_outcome(HistOutcome::Ok, n as u64);
            sh.log_outcome(idx, "ok", n);
        }
        Err(e) => {
            if e.is_no_data() {
                sh.counters.hist_outcome(HistOutcome::Empty, 0);
                sh.log_outcome(idx, "empty", 0);
            } else {
                sh.log_outcome(idx, &format!("error:{}", e.code), 0);
            }
            out.error(req_id, e.code, e.message);
        }
    }
}

fn num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn wire_bar(b: &SimBar, daily: bool, format_date: i32) -> WireBar {
    let date = if daily {
        b.date.format("%Y%m%d").to_string()
    } else if format_date == 2 {
        b.ts.timestamp().to_string()
    } else {
        format!(
            "{} US/Eastern",
            ib_model::calendar::to_ny(b.ts).format("%Y%m%d %H:%M:%S")
        )
    };
    WireBar {
        date,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: num(b.volume),
        wap: num(b.wap),
        count: b.count,
    }
}
