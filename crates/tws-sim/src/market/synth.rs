//! Bar synthesis: underlying bars from the intraday path, option quote bars by Black-Scholes
//! on it, and option TRADES bars from per-minute trade draws (so every bar size sees the same
//! trades, and far out-of-the-money contracts often have none: an EMPTY answer).

use super::knots::SessionKnots;
use super::{Market, SimBar};
use crate::chain::SimContract;
use crate::pricing::{
    black_scholes, hash, round_to, smile_vol, spread, str_key, trade_probability,
    trade_probability_bound, unit,
};
use crate::universe;
use crate::window::Slot;
use chrono::{DateTime, NaiveDate, Utc};
use ib_model::calendar::{self, Session};
use ib_model::Right;
use std::sync::Arc;

impl Market {
    /// Underlying price knots of the session on `date` (computed once, then shared).
    fn knots(&self, idx: usize, date: NaiveDate) -> Option<Arc<SessionKnots>> {
        self.knots.get_or_insert((idx, date), || {
            let i = self.session_index(date)?;
            let session = self.sessions[i];
            let p = self.path(idx);
            Some(SessionKnots {
                session,
                prices: universe::intraday_knots(
                    self.seed,
                    &self.underlyings[idx],
                    &session,
                    p.opens[i],
                    p.closes[i],
                ),
            })
        })
    }

    /// Sample instants of a slot: every minute knot inside plus both ends.
    fn samples(slot: &Slot) -> Vec<DateTime<Utc>> {
        let mut v = vec![slot.from];
        let mut t =
            slot.from + chrono::Duration::seconds(60 - slot.from.timestamp().rem_euclid(60));
        while t < slot.to {
            v.push(t);
            t += chrono::Duration::seconds(60);
        }
        if slot.to > slot.from {
            v.push(slot.to);
        }
        v
    }

    /// Iterate the slots with each one's session knots (sessions grouped by date).
    fn with_knots<F: FnMut(&Slot, &[Arc<SessionKnots>])>(
        &self,
        idx: usize,
        slots: &[Slot],
        mut f: F,
    ) {
        let mut cache: Vec<Arc<SessionKnots>> = Vec::new();
        for slot in slots {
            if slot.to <= slot.from {
                continue;
            }
            let first = calendar::to_ny(slot.from).date_naive();
            let last = calendar::to_ny(slot.to - chrono::Duration::seconds(1)).date_naive();
            // An overnight slot (the evening before) belongs to the next day's session.
            let first = first.min(slot.date);
            let last = last.max(slot.date);
            cache.retain(|k| k.session.date >= first);
            if let Ok(sessions) = calendar::sessions_between(first, last) {
                for s in sessions {
                    if !cache.iter().any(|k| k.session.date == s.date) {
                        cache.extend(self.knots(idx, s.date));
                    }
                }
            }
            f(slot, &cache);
        }
    }

    pub(super) fn stock_bars(&self, idx: usize, what: &str, slots: &[Slot]) -> Vec<SimBar> {
        let u = &self.underlyings[idx];
        let key = str_key(&u.symbol);
        let mut out = Vec::with_capacity(slots.len());
        self.with_knots(idx, slots, |slot, days| {
            let mut prices = Vec::new();
            let mut volume = 0.0;
            let mut count = 0i64;
            for d in days {
                let (s, k) = (&d.session, &d.prices);
                let from = slot.from.max(s.open);
                let to = slot.to.min(s.close);
                if from >= to {
                    continue;
                }
                let sub = Slot {
                    label: from,
                    from,
                    to,
                    date: s.date,
                };
                for t in Self::samples(&sub) {
                    prices.push(universe::price_at(k, s, t));
                }
                let mut m = from.timestamp().div_euclid(60);
                while m * 60 < to.timestamp() {
                    let h = hash(self.seed, &[key, m as u64, 0x57C]);
                    let n = 20 + (unit(h) * 200.0) as i64;
                    count += n;
                    volume += (n * 100) as f64;
                    m += 1;
                }
            }
            if prices.is_empty() {
                return;
            }
            let half = if what == "TRADES" || what == "MIDPOINT" {
                0.0
            } else {
                0.01
            };
            let bar = ohlc(slot, &prices, what, half, 0.01);
            out.push(if what == "TRADES" {
                let wap = round_to(prices.iter().sum::<f64>() / prices.len() as f64, 0.0001);
                SimBar {
                    volume,
                    wap,
                    count: count.min(i64::from(i32::MAX)) as i32,
                    ..bar
                }
            } else {
                bar
            });
        });
        out
    }

    pub(super) fn option_bars(&self, c: &SimContract, what: &str, slots: &[Slot]) -> Vec<SimBar> {
        let Some(&idx) = self.by_symbol.get(&c.symbol) else {
            return Vec::new();
        };
        let u = &self.underlyings[idx];
        let rate = self.settings.risk_free_rate;
        let expiry_close = calendar::session(c.expiry)
            .ok()
            .flatten()
            .map(|s| s.close)
            .unwrap_or_else(|| calendar::ny_to_utc(c.expiry, calendar::RTH_CLOSE));
        let call = c.right == Right::C;
        let offset = crate::hours::option_close_offset(&c.trading_class);
        let class_close = |s: &Session| ib_model::hours::class_close(s, offset);
        let price = |spot: f64, t: DateTime<Utc>| {
            let years = (expiry_close - t).num_seconds().max(0) as f64 / (365.0 * 86400.0);
            black_scholes(
                call,
                spot,
                c.strike,
                years,
                rate,
                smile_vol(u.vol, spot, c.strike),
            )
            .max(0.0)
        };
        let mut out = Vec::with_capacity(slots.len());
        self.with_knots(idx, slots, |slot, days| {
            let Some(d) = days.iter().find(|d| d.session.date == slot.date) else {
                return;
            };
            let (s, k) = (&d.session, &d.prices[..]);
            if what != "TRADES" {
                let mids: Vec<f64> = Self::samples(slot)
                    .into_iter()
                    .map(|t| price(universe::price_at(k, s, t), t))
                    .collect();
                if !mids.is_empty() {
                    out.push(ohlc(slot, &mids, what, -1.0, 0.005));
                }
                return;
            }
            // TRADES: per-minute trade draws, so any bar size sees the same trades.
            let (open, close) = (s.open.timestamp(), class_close(s).timestamp());
            let (from, to) = (slot.from.timestamp(), slot.to.timestamp());
            let expiry_secs = expiry_close.timestamp();
            let mut trades: Vec<(f64, f64)> = Vec::new();
            let mut m = from.div_euclid(60);
            while m * 60 < to {
                let t0 = m * 60;
                let h = hash(self.seed, &[c.con_id as u64, m as u64, 0x7AD]);
                let years = (expiry_secs - t0).max(0) as f64 / (365.0 * 86400.0);
                // Extended sessions (SPX's overnight and curb) trade far less.
                let share = if t0 < open || t0 >= close {
                    EXTENDED_TRADE_SHARE
                } else {
                    1.0
                };
                // The draw against the probability's upper bound first (the moneyness factor
                // is at most 1): most minutes of most contracts end here without the
                // logarithm and exponential, and the outcome is the same.
                if unit(h) >= trade_probability_bound(u.liquidity, years) * share {
                    m += 1;
                    continue;
                }
                let at0 = DateTime::<Utc>::from_timestamp(t0, 0).unwrap_or(slot.from);
                let spot = universe::price_at(k, s, at0);
                let mut p = trade_probability(u.liquidity, u.vol, spot, c.strike, years);
                if share != 1.0 {
                    p *= share;
                }
                if unit(h) < p {
                    let n = 1 + (unit(hash(h, &[1])) * 6.0 * p) as u32;
                    for j in 0..n {
                        let hj = hash(h, &[2, u64::from(j)]);
                        let ts = t0 + (hj % 60) as i64;
                        if ts < from || ts >= to {
                            continue;
                        }
                        let at = DateTime::<Utc>::from_timestamp(ts, 0).unwrap_or(at0);
                        let mid = price(universe::price_at(k, s, at), at);
                        let side = if unit(hash(hj, &[3])) < 0.5 {
                            -0.5
                        } else {
                            0.5
                        };
                        let px = round_to((mid + side * spread(mid)).max(0.01), 0.01);
                        let size = 1.0 + (unit(hash(hj, &[4])) * 10.0).floor();
                        trades.push((px, size));
                    }
                }
                m += 1;
            }
            if trades.is_empty() {
                return;
            }
            let prices: Vec<f64> = trades.iter().map(|t| t.0).collect();
            let volume: f64 = trades.iter().map(|t| t.1).sum();
            let wap = round_to(
                trades.iter().map(|t| t.0 * t.1).sum::<f64>() / volume,
                0.0001,
            );
            let bar = ohlc(slot, &prices, "TRADES", 0.0, 0.01);
            out.push(SimBar {
                volume,
                wap,
                count: trades.len() as i32,
                ..bar
            });
        });
        out
    }
}

/// Share of the regular-hours trade probability an option keeps in extended sessions.
const EXTENDED_TRADE_SHARE: f64 = 0.1;

/// OHLC over a price series. For BID/ASK/BID_ASK quote bars the spread (`half` < 0: derived
/// from the price; else fixed) is applied the way IB builds them: BID_ASK = average bid, max
/// ask, min bid, average ask.
fn ohlc(slot: &Slot, prices: &[f64], what: &str, half: f64, tick: f64) -> SimBar {
    let hs = |p: f64| if half < 0.0 { spread(p) / 2.0 } else { half };
    let adj = |p: f64, sign: f64| round_to((p + sign * hs(p)).max(tick), tick);
    let (o, c) = (prices[0], prices[prices.len() - 1]);
    let hi = prices.iter().cloned().fold(f64::MIN, f64::max);
    let lo = prices.iter().cloned().fold(f64::MAX, f64::min);
    let (open, high, low, close) = match what {
        "BID" => (adj(o, -1.0), adj(hi, -1.0), adj(lo, -1.0), adj(c, -1.0)),
        "ASK" => (adj(o, 1.0), adj(hi, 1.0), adj(lo, 1.0), adj(c, 1.0)),
        "BID_ASK" => {
            let n = prices.len() as f64;
            let avg_bid = prices.iter().map(|p| adj(*p, -1.0)).sum::<f64>() / n;
            let avg_ask = prices.iter().map(|p| adj(*p, 1.0)).sum::<f64>() / n;
            (
                round_to(avg_bid, 0.0001),
                adj(hi, 1.0),
                adj(lo, -1.0),
                round_to(avg_ask, 0.0001),
            )
        }
        _ => (
            round_to(o.max(tick), tick),
            round_to(hi.max(tick), tick),
            round_to(lo.max(tick), tick),
            round_to(c.max(tick), tick),
        ),
    };
    SimBar {
        ts: slot.label,
        date: slot.date,
        open,
        high: high.max(open).max(close),
        low: low.min(open).min(close),
        close,
        volume: -1.0,
        wap: -1.0,
        count: -1,
    }
}
