//! The synthetic underlyings and their price paths.
//!
//! Each underlying has a daily open/close path on the US trading calendar from
//! [`PATH_START`] to the end of [`SIM_LAST_YEAR`] (2030), a mean-reverting geometric Brownian motion
//! seeded per symbol, and an intraday path per session: a Brownian bridge from the open to the
//! close at one-minute knots, linearly interpolated between them. Both depend only on the seed
//! and the symbol, never on the scenario's `today`, so a server started "the next day" sees the
//! same history plus one more session.

use super::pricing::{hash, normal, str_key, unit};
use chrono::{DateTime, NaiveDate, Utc};
use ib_model::calendar::{self, Session};
use ib_model::UnderlyingSecType;

/// First session of every price path.
pub const PATH_START: (i32, u32, u32) = (2022, 1, 3);

/// First year a scenario's `today` may be in. The NYSE calendar reaches further (2000-2035),
/// but the simulated market keeps its own, shorter range: every underlying's path holds one
/// open and close per session up to [`SIM_LAST_YEAR`], so a longer range costs memory and start
/// time for every market built, and the paths (indexed by session) stay as they were.
pub const SIM_FIRST_YEAR: i32 = 2020;
/// Last year of the simulated market's price paths and of a scenario's `today`.
pub const SIM_LAST_YEAR: i32 = 2030;

/// An underlying stock, ETF or index.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SimUnderlying {
    /// Ticker.
    pub symbol: String,
    /// IB conId of the STK contract.
    pub con_id: i64,
    /// Primary listing exchange.
    pub primary_exchange: String,
    /// Currency.
    pub currency: String,
    /// Annualised volatility of the path and of the option prices.
    pub vol: f64,
    /// Long name for contract details.
    pub long_name: String,
    /// Price on the path's first session.
    pub spot0: f64,
    /// Smallest strike increment.
    pub strike_unit: f64,
    /// Strike increment away from the money, in multiples of `strike_unit`.
    pub far_step_units: u32,
    /// Weekly expiries listed (else monthlies only).
    pub weeklies: bool,
    /// Per-minute trade probability of an at-the-money option.
    pub liquidity: f64,
    /// Index in the universe (part of option conIds).
    pub index: u32,
    /// `STK` (stocks and ETFs) or `IND` (SPX): what it is qualified and charted as.
    pub sec_type: UnderlyingSecType,
}

impl SimUnderlying {
    /// True for an index (secType `IND`).
    pub fn is_index(&self) -> bool {
        self.sec_type == UnderlyingSecType::Ind
    }

    /// The option trading class of an expiry week: the symbol, except for an index's
    /// non-monthly (weekly, PM-settled) expiries, listed under the symbol + `W` (SPXW), as
    /// reqSecDefOptParams and contract details show them at IB.
    pub fn option_class(&self, monthly: bool) -> String {
        if self.is_index() && !monthly {
            format!("{}W", self.symbol)
        } else {
            self.symbol.clone()
        }
    }
}

/// The built-in universe: (symbol, conId, exchange, long name, spot, vol, strike unit,
/// far-step units, weeklies, liquidity).
#[allow(clippy::type_complexity)]
const BASE: &[(&str, i64, &str, &str, f64, f64, f64, u32, bool, f64)] = &[
    (
        "SPY",
        756733,
        "ARCA",
        "SPDR S&P 500 ETF TRUST",
        470.0,
        0.16,
        1.0,
        5,
        true,
        0.9,
    ),
    (
        "QQQ",
        320227571,
        "NASDAQ",
        "INVESCO QQQ TRUST SERIES 1",
        400.0,
        0.20,
        1.0,
        5,
        true,
        0.8,
    ),
    (
        "IWM",
        9579970,
        "ARCA",
        "ISHARES RUSSELL 2000 ETF",
        200.0,
        0.22,
        1.0,
        5,
        true,
        0.6,
    ),
    (
        "AAPL",
        265598,
        "NASDAQ",
        "APPLE INC",
        185.0,
        0.25,
        2.5,
        2,
        true,
        0.8,
    ),
    (
        "MSFT",
        272093,
        "NASDAQ",
        "MICROSOFT CORP",
        375.0,
        0.24,
        2.5,
        2,
        true,
        0.6,
    ),
    (
        "AMZN",
        3691937,
        "NASDAQ",
        "AMAZON.COM INC",
        150.0,
        0.30,
        2.5,
        2,
        true,
        0.6,
    ),
    (
        "NVDA",
        4815747,
        "NASDAQ",
        "NVIDIA CORP",
        480.0,
        0.45,
        5.0,
        2,
        true,
        0.8,
    ),
    (
        "TSLA",
        76792991,
        "NASDAQ",
        "TESLA INC",
        250.0,
        0.55,
        2.5,
        2,
        true,
        0.85,
    ),
    (
        "SOFI",
        465155221,
        "NASDAQ",
        "SOFI TECHNOLOGIES INC",
        9.0,
        0.60,
        0.5,
        2,
        false,
        0.25,
    ),
    (
        "PLUG",
        43645865,
        "NASDAQ",
        "PLUG POWER INC",
        5.0,
        0.80,
        0.5,
        2,
        false,
        0.2,
    ),
    (
        "RIOT",
        62299302,
        "NASDAQ",
        "RIOT PLATFORMS INC",
        15.0,
        0.80,
        0.5,
        2,
        false,
        0.2,
    ),
    (
        "MARA",
        472402755,
        "NASDAQ",
        "MARA HOLDINGS INC",
        20.0,
        0.85,
        0.5,
        2,
        false,
        0.2,
    ),
];

/// Build the universe: the base underlyings plus `extra` generated small caps `SYM001..`.
pub fn build(seed: u64, extra: u32) -> Vec<SimUnderlying> {
    let mut out: Vec<SimUnderlying> = BASE
        .iter()
        .enumerate()
        .map(|(i, b)| SimUnderlying {
            symbol: b.0.to_string(),
            con_id: b.1,
            primary_exchange: b.2.to_string(),
            currency: "USD".into(),
            long_name: b.3.to_string(),
            spot0: b.4,
            vol: b.5,
            strike_unit: b.6,
            far_step_units: b.7,
            weeklies: b.8,
            liquidity: b.9,
            index: i as u32,
            sec_type: UnderlyingSecType::Stk,
        })
        .collect();
    for i in 1..=extra.min(1000) {
        let h = hash(seed, &[0xE7, u64::from(i)]);
        let symbol = format!("SYM{i:03}");
        let spot0 = 5.0 + 75.0 * unit(h);
        out.push(SimUnderlying {
            long_name: format!("SYNTHETIC {symbol} INC"),
            symbol,
            con_id: 90_000_000 + i64::from(i),
            primary_exchange: "NASDAQ".into(),
            currency: "USD".into(),
            vol: 0.3 + 0.6 * unit(hash(h, &[1])),
            spot0,
            strike_unit: if spot0 < 25.0 { 0.5 } else { 1.0 },
            far_step_units: 2,
            weeklies: false,
            liquidity: 0.15,
            index: out.len() as u32,
            sec_type: UnderlyingSecType::Stk,
        });
    }
    // Added after the generated small caps, at a fixed index, so that no existing symbol's
    // position or option conIds move.
    let d = DIA;
    out.push(SimUnderlying {
        symbol: d.0.to_string(),
        con_id: d.1,
        primary_exchange: d.2.to_string(),
        currency: "USD".into(),
        long_name: d.3.to_string(),
        spot0: d.4,
        vol: d.5,
        strike_unit: d.6,
        far_step_units: d.7,
        weeklies: d.8,
        liquidity: d.9,
        index: DIA_INDEX,
        sec_type: UnderlyingSecType::Stk,
    });
    let x = SPX;
    out.push(SimUnderlying {
        symbol: x.0.to_string(),
        con_id: x.1,
        primary_exchange: x.2.to_string(),
        currency: "USD".into(),
        long_name: x.3.to_string(),
        spot0: x.4,
        vol: x.5,
        strike_unit: x.6,
        far_step_units: x.7,
        weeklies: x.8,
        liquidity: x.9,
        index: SPX_INDEX,
        sec_type: UnderlyingSecType::Ind,
    });
    out
}

/// SPX, the S&P 500 index (secType `IND` on CBOE, IB conId 416904): monthly options in class
/// SPX, weeklies in SPXW, trading until 16:15 (same fields as [`BASE`]). Its strikes step by
/// 10 points (IB lists 5-point strikes near the money): option conIds encode at most 1,023
/// strike units, and 10-point units reach 10,230.
#[allow(clippy::type_complexity)]
const SPX: (&str, i64, &str, &str, f64, f64, f64, u32, bool, f64) = (
    "SPX",
    416904,
    "CBOE",
    "S&P 500 Stock Index",
    4700.0,
    0.15,
    10.0,
    5,
    true,
    0.9,
);

/// SPX's universe index: the one before DIA's, after the last generated small cap's (1,011).
const SPX_INDEX: u32 = 1022;

/// DIA, an ETF whose options trade until 16:15 like SPY's, QQQ's and IWM's (same fields as
/// [`BASE`]).
#[allow(clippy::type_complexity)]
const DIA: (&str, i64, &str, &str, f64, f64, f64, u32, bool, f64) = (
    "DIA",
    73128548,
    "ARCA",
    "SPDR DOW JONES INDUSTRIAL AVERAGE ETF",
    360.0,
    0.15,
    1.0,
    5,
    true,
    0.6,
);

/// DIA's universe index: the last one option conIds can encode (the generated small caps stop
/// at 1,000 after the base list).
const DIA_INDEX: u32 = 1023;

/// Daily path of one underlying: open and close per session, parallel to the market's session
/// list.
#[derive(Debug, Clone)]
pub struct DailyPath {
    /// Session opens.
    pub opens: Vec<f64>,
    /// Session closes.
    pub closes: Vec<f64>,
}

/// All sessions from [`PATH_START`] to the end of [`SIM_LAST_YEAR`].
pub fn all_sessions() -> Vec<Session> {
    let from =
        NaiveDate::from_ymd_opt(PATH_START.0, PATH_START.1, PATH_START.2).unwrap_or_default();
    let to = NaiveDate::from_ymd_opt(SIM_LAST_YEAR, 12, 31).unwrap_or_default();
    calendar::sessions_between(from, to).unwrap_or_default()
}

/// The daily path: log price mean-reverting (kappa 1/year) towards the start price's log,
/// with 6%/year drift in the target, so decade-long paths stay within a sane strike range.
pub fn daily_path(seed: u64, u: &SimUnderlying, sessions: &[Session]) -> DailyPath {
    let key = str_key(&u.symbol);
    let dt = 1.0 / 252.0;
    let mut opens = Vec::with_capacity(sessions.len());
    let mut closes = Vec::with_capacity(sessions.len());
    let mut prev_close = u.spot0;
    for (i, _s) in sessions.iter().enumerate() {
        let h = hash(seed, &[key, i as u64, 0xDA11]);
        let z_gap = normal(unit(h), unit(hash(h, &[1])));
        let z_day = normal(unit(hash(h, &[2])), unit(hash(h, &[3])));
        let target = u.spot0.ln() + 0.06 * (i as f64) * dt;
        let gap = 0.15 * u.vol * dt.sqrt() * z_gap;
        let open = prev_close * gap.exp();
        let x = open.ln() + 1.0 * (target - open.ln()) * dt + u.vol * 0.98 * dt.sqrt() * z_day;
        let close = x.exp();
        opens.push(round_to_cent(open));
        closes.push(round_to_cent(close));
        prev_close = close;
    }
    DailyPath { opens, closes }
}

fn round_to_cent(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Intraday knots of one session: price at each minute from the open (index 0) to the close
/// (last index), a Brownian bridge between the session's open and close.
pub fn intraday_knots(
    seed: u64,
    u: &SimUnderlying,
    session: &Session,
    open: f64,
    close: f64,
) -> Vec<f64> {
    let minutes = ((session.close - session.open).num_minutes()).max(1) as usize;
    let key = str_key(&u.symbol);
    let day = session.date.to_string();
    let h0 = hash(seed, &[key, str_key(&day), 0x1D]);
    let step = u.vol * (1.0f64 / (252.0 * 390.0)).sqrt();
    let mut w = Vec::with_capacity(minutes + 1);
    w.push(0.0);
    let mut acc = 0.0;
    for m in 0..minutes {
        let h = hash(h0, &[m as u64]);
        acc += step * normal(unit(h), unit(hash(h, &[9])));
        w.push(acc);
    }
    let (lo, lc) = (open.ln(), close.ln());
    let wl = acc;
    (0..=minutes)
        .map(|m| {
            let f = m as f64 / minutes as f64;
            (lo + w[m] + f * (lc - lo - wl)).exp()
        })
        .collect()
}

/// Price at instant `t` within a session from its knots (clamped to the session).
pub fn price_at(knots: &[f64], session: &Session, t: DateTime<Utc>) -> f64 {
    let secs = (t - session.open).num_seconds().max(0) as f64;
    let pos = secs / 60.0;
    let i = pos.floor() as usize;
    if i + 1 >= knots.len() {
        return knots.last().copied().unwrap_or(0.0);
    }
    let f = pos - i as f64;
    knots[i] * (1.0 - f) + knots[i + 1] * f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_deterministic_and_sane() {
        let sessions = all_sessions();
        assert!(sessions.len() > 2000);
        let u = build(1, 3);
        assert_eq!(u.len(), BASE.len() + 3 + 2);
        assert_eq!(u[BASE.len()].symbol, "SYM001");
        assert_eq!(u[u.len() - 2].symbol, "DIA");
        let spx = u.last().unwrap();
        assert_eq!((spx.symbol.as_str(), spx.index), ("SPX", 1022));
        assert!(spx.is_index());
        assert_eq!(spx.option_class(true), "SPX");
        assert_eq!(spx.option_class(false), "SPXW");
        assert_eq!(u[0].option_class(false), "SPY");
        for x in &u {
            let p = daily_path(1, x, &sessions);
            let q = daily_path(1, x, &sessions);
            assert_eq!(p.closes, q.closes);
            let max = p.closes.iter().cloned().fold(0.0, f64::max);
            let min = p.closes.iter().cloned().fold(f64::MAX, f64::min);
            assert!(
                min > x.spot0 * 0.1 && max < x.spot0 * 10.0,
                "{} {min} {max}",
                x.symbol
            );
        }
        let p = daily_path(1, &u[0], &sessions);
        let s = &sessions[10];
        let k = intraday_knots(1, &u[0], s, p.opens[10], p.closes[10]);
        assert_eq!(k.len(), 391);
        assert!((k[0] - p.opens[10]).abs() < 1e-9 && (k[390] - p.closes[10]).abs() < 1e-9);
        assert!((price_at(&k, s, s.close) - p.closes[10]).abs() < 1e-9);
    }
}
