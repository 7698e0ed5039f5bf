//! The synthetic market: underlyings, chains, contracts and bars, as pure deterministic
//! functions of the seed (and `today` only for what exists and what has expired).
//!
//! Usable without a server: tests and benchmarks can ask the market what the gateway will
//! answer. Window semantics and alignment are documented in [`super::window`].

use super::chain::{self, ChainClass, ListingRules, OptionKey, SimChain, SimContract};
use super::pricing::round_to;
use super::scenario::{MarketSettings, OverLimit, Scenario, SimClock};
use super::universe::{self, DailyPath, SimUnderlying};
use super::window::{self, HmdsError};
use chrono::{DateTime, NaiveDate, Utc};
use ib_model::bars::{BarSize, Duration};
use ib_model::calendar::{self, Session};
use ib_model::Right;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

/// One bar.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SimBar {
    /// Bar start (label); for daily and longer bars the first session's open.
    pub ts: DateTime<Utc>,
    /// Session date of `ts` (the `YYYYMMDD` of daily bars).
    pub date: NaiveDate,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume (-1 for quote bars).
    pub volume: f64,
    /// Volume-weighted average price (-1 for quote bars).
    pub wap: f64,
    /// Trade count (-1 for quote bars).
    pub count: i32,
}

/// What a request's contract resolved to.
#[derive(Debug, Clone, PartialEq)]
pub enum Instrument {
    /// An underlying (by index).
    Stock(usize),
    /// An option.
    Option(SimContract),
}

/// The synthetic market.
#[derive(Debug)]
pub struct Market {
    seed: u64,
    today: DateTime<Utc>,
    today_date: NaiveDate,
    clock: SimClock,
    settings: MarketSettings,
    max_duration: BTreeMap<BarSize, Duration>,
    over_limit: OverLimit,
    underlyings: Vec<SimUnderlying>,
    by_symbol: HashMap<String, usize>,
    by_con_id: HashMap<i64, usize>,
    sessions: Vec<Session>,
    paths: Vec<OnceLock<DailyPath>>,
    knots: knots::KnotsCache,
}

impl Market {
    /// A market with the default (realistic preset) universe settings.
    pub fn new(seed: u64, today: NaiveDate) -> Market {
        let mut s = Scenario::preset("realistic").unwrap_or_else(|_| unreachable!());
        s.seed = seed;
        s.today = today;
        Market::from_scenario(&s)
    }

    /// The market a scenario describes (seed, today, universe, duration limits).
    pub fn from_scenario(s: &Scenario) -> Market {
        let underlyings = universe::build(s.seed, s.market.extra_symbols);
        let by_symbol = underlyings
            .iter()
            .enumerate()
            .map(|(i, u)| (u.symbol.clone(), i))
            .collect();
        let by_con_id = underlyings
            .iter()
            .enumerate()
            .map(|(i, u)| (u.con_id, i))
            .collect();
        let sessions = universe::all_sessions();
        let paths = underlyings.iter().map(|_| OnceLock::new()).collect();
        let today_close = calendar::session_on_or_before(s.today)
            .map(|x| x.close)
            .unwrap_or_else(|_| calendar::ny_to_utc(s.today, calendar::RTH_CLOSE));
        Market {
            seed: s.seed,
            today: today_close,
            today_date: s.today,
            clock: s.clock,
            settings: s.market.clone(),
            over_limit: s.hmds.over_limit,
            max_duration: ib_model::bars::BAR_SIZES
                .iter()
                .map(|(b, _)| (*b, s.max_duration(*b)))
                .collect(),
            underlyings,
            by_symbol,
            by_con_id,
            sessions,
            paths,
            knots: knots::KnotsCache::default(),
        }
    }

    /// The simulated current date.
    pub fn today(&self) -> NaiveDate {
        self.today_date
    }

    /// The simulated "now", by the scenario's clock: the close of the last session on or
    /// before `today`; a pinned instant; or, for a standalone server (`wall`), the wall clock
    /// when `today` is the real date and its session is still running. An absent end means
    /// this; later ends are clipped to it.
    pub fn now(&self) -> DateTime<Utc> {
        self.now_for(0)
    }

    /// [`Market::now`] for an instrument closing `close_offset` minutes after the equity close:
    /// under the `close` clock, the close of that instrument's last session (16:15 for SPY
    /// options), so a late class's last quarter hour of `today` is served.
    pub fn now_for(&self, close_offset: i32) -> DateTime<Utc> {
        let close = self.today + chrono::Duration::minutes(i64::from(close_offset));
        match self.clock {
            SimClock::Close => close,
            SimClock::At(t) => t.min(close),
            SimClock::Wall => {
                let wall = Utc::now();
                if calendar::to_ny(wall).date_naive() == self.today_date && wall < close {
                    wall
                } else {
                    close
                }
            }
        }
    }

    /// [`Market::now_for`] the instrument `con_id` (the equity close for stocks and unknown
    /// ids): what an absent end means for a regular-hours request on it.
    pub fn now_of(&self, con_id: i64) -> DateTime<Utc> {
        self.now_of_hours(con_id, true)
    }

    /// [`Market::now_of`] for a request with `use_rth`: an all-hours request on a class with
    /// a session after the close (SPX's curb) runs to that session's end.
    pub fn now_of_hours(&self, con_id: i64, use_rth: bool) -> DateTime<Utc> {
        match self.resolve(con_id) {
            Ok(Instrument::Option(c)) => self.now_for(
                super::hours::option_served_hours(&c.trading_class, use_rth).last_end_offset(),
            ),
            _ => self.now(),
        }
    }

    /// The start of a request's window as HistoricalDataEnd reports it: an all-hours `N D`
    /// window on a class with an overnight session starts the evening before.
    pub fn window_start_of(
        &self,
        con_id: i64,
        end: DateTime<Utc>,
        duration: Duration,
        use_rth: bool,
    ) -> Result<DateTime<Utc>, HmdsError> {
        let hours = self
            .resolve(con_id)
            .map(|i| Self::served_hours(&i, use_rth))
            .unwrap_or_default();
        window::window_start_in(end, duration, &hours)
    }

    /// The hours a request on `inst` is served in.
    fn served_hours(inst: &Instrument, use_rth: bool) -> window::ServedHours {
        match inst {
            Instrument::Stock(_) => window::ServedHours::default(),
            Instrument::Option(c) => super::hours::option_served_hours(&c.trading_class, use_rth),
        }
    }

    /// Whether [`Market::now`] follows the wall clock (a standalone server's `wall` clock).
    pub fn follows_wall_clock(&self) -> bool {
        self.clock == SimClock::Wall
    }

    /// All underlyings.
    pub fn underlyings(&self) -> &[SimUnderlying] {
        &self.underlyings
    }

    /// An underlying by symbol.
    pub fn underlying(&self, symbol: &str) -> Option<&SimUnderlying> {
        self.by_symbol.get(symbol).map(|i| &self.underlyings[*i])
    }

    /// The underlying whose options trade in `trading_class` (SPX for SPXW), or the
    /// underlying named so.
    pub fn underlying_of_class(&self, trading_class: &str) -> Option<&SimUnderlying> {
        self.underlying(trading_class).or_else(|| {
            let root = trading_class.strip_suffix('W')?;
            self.underlying(root).filter(|u| u.is_index())
        })
    }

    /// An underlying by its STK conId.
    pub fn underlying_by_id(&self, con_id: i64) -> Option<&SimUnderlying> {
        self.by_con_id.get(&con_id).map(|i| &self.underlyings[*i])
    }

    fn path(&self, idx: usize) -> &DailyPath {
        self.paths[idx]
            .get_or_init(|| universe::daily_path(self.seed, &self.underlyings[idx], &self.sessions))
    }

    fn session_index(&self, date: NaiveDate) -> Option<usize> {
        self.sessions.binary_search_by_key(&date, |s| s.date).ok()
    }

    /// Close of `symbol` on session `date` (None on a non-session day or outside the path).
    pub fn close(&self, symbol: &str, date: NaiveDate) -> Option<f64> {
        let idx = *self.by_symbol.get(symbol)?;
        let i = self.session_index(date)?;
        Some(self.path(idx).closes[i])
    }

    fn rules(&self, u: &SimUnderlying) -> ListingRules {
        let big = self.settings.big_chain.as_deref() == Some(u.symbol.as_str());
        ListingRules {
            monthly_days: self.settings.monthly_listing_days,
            weekly_days: self.settings.weekly_listing_days * if big { 3 } else { 1 },
            width_scale: if big { 2.0 } else { 1.0 },
        }
    }

    fn is_big(&self, u: &SimUnderlying) -> bool {
        self.settings.big_chain.as_deref() == Some(u.symbol.as_str())
    }

    /// Listing date and strike grid of one expiry week, if the underlying lists it.
    fn expiry_grid(&self, idx: usize, week: u32) -> Option<(NaiveDate, Vec<u32>)> {
        let u = &self.underlyings[idx];
        if !chain::lists_week(u, week, self.is_big(u)) {
            return None;
        }
        let rules = self.rules(u);
        let listing = chain::listing_date(week, &rules)?;
        let first = self.sessions.first()?.date;
        let listing = listing.max(first);
        let li = self.session_index(listing)?;
        let spot = self.path(idx).opens[li];
        Some((
            listing,
            chain::strike_grid(self.seed, u, week, spot, listing, &rules),
        ))
    }

    fn contract(
        &self,
        idx: usize,
        week: u32,
        k: u32,
        right: Right,
        listing: NaiveDate,
    ) -> Option<SimContract> {
        let u = &self.underlyings[idx];
        let expiry = chain::expiry_date(week)?;
        let strike = round_to(f64::from(k) * u.strike_unit, 0.001);
        let class = u.option_class(chain::is_monthly(week));
        Some(SimContract {
            con_id: OptionKey {
                index: u.index,
                week,
                strike_units: k,
                right,
            }
            .con_id(),
            symbol: u.symbol.clone(),
            local_symbol: chain::local_symbol(&class, expiry, right, strike),
            trading_class: class,
            expiry,
            strike,
            right,
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: u.currency.clone(),
            listing,
        })
    }

    /// Expiry weeks listed as of `today` and not expired, within the chain horizon.
    fn chain_weeks(&self, idx: usize) -> Vec<(u32, NaiveDate, Vec<u32>)> {
        let today = self.today_date;
        let Some(w0) = chain::week_of(today) else {
            return Vec::new();
        };
        let horizon = today + chrono::Duration::days(i64::from(self.settings.chain_horizon_days));
        let mut out = Vec::new();
        for week in w0..chain::MAX_WEEKS {
            let Some(exp) = chain::expiry_date(week) else {
                break;
            };
            if exp > horizon {
                break;
            }
            if exp < today {
                continue;
            }
            if let Some((listing, grid)) = self.expiry_grid(idx, week) {
                if listing <= today && !grid.is_empty() {
                    out.push((week, listing, grid));
                }
            }
        }
        out
    }

    /// The option chain as reqSecDefOptParams returns it (None for an unknown symbol).
    pub fn chain(&self, symbol: &str) -> Option<SimChain> {
        let idx = *self.by_symbol.get(symbol)?;
        let u = &self.underlyings[idx];
        let weeks = self.chain_weeks(idx);
        // Per trading class (one for a stock; SPX and SPXW for an index): its expiries and the
        // union of their strikes.
        let mut by_class: BTreeMap<String, (Vec<NaiveDate>, BTreeSet<u32>)> = BTreeMap::new();
        for (week, _, grid) in &weeks {
            let entry = by_class
                .entry(u.option_class(chain::is_monthly(*week)))
                .or_default();
            if let Some(e) = chain::expiry_date(*week) {
                entry.0.push(e);
            }
            entry.1.extend(grid.iter().copied());
        }
        if by_class.is_empty() {
            by_class.insert(u.symbol.clone(), Default::default());
        }
        Some(SimChain {
            symbol: u.symbol.clone(),
            underlying_con_id: u.con_id,
            exchanges: vec!["SMART".into(), "CBOE".into(), "AMEX".into()],
            classes: by_class
                .into_iter()
                .map(|(trading_class, (expirations, strikes))| ChainClass {
                    trading_class,
                    multiplier: "100".into(),
                    expirations,
                    strikes: strikes
                        .into_iter()
                        .map(|k| round_to(f64::from(k) * u.strike_unit, 0.001))
                        .collect(),
                })
                .collect(),
        })
    }

    /// Every contract that exists as of `today` (listed, not expired) for `symbol`.
    pub fn existing_contracts(&self, symbol: &str) -> Vec<SimContract> {
        let Some(&idx) = self.by_symbol.get(symbol) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (week, listing, grid) in self.chain_weeks(idx) {
            for right in [Right::C, Right::P] {
                for k in &grid {
                    out.extend(self.contract(idx, week, *k, right, listing));
                }
            }
        }
        out
    }

    /// The option with this conId if it has been listed by `today` (expired ones included:
    /// requests for them answer 200, see [`Market::resolve`]).
    pub fn contract_by_id(&self, con_id: i64) -> Option<SimContract> {
        let key = OptionKey::from_con_id(con_id)?;
        let idx = self.underlyings.iter().position(|u| u.index == key.index)?;
        let (listing, grid) = self.expiry_grid(idx, key.week)?;
        if listing > self.today_date || grid.binary_search(&key.strike_units).is_err() {
            return None;
        }
        self.contract(idx, key.week, key.strike_units, key.right, listing)
    }

    /// Resolve a conId to a live instrument, or 200 (unknown, not yet listed, or expired).
    pub fn resolve(&self, con_id: i64) -> Result<Instrument, HmdsError> {
        if let Some(&i) = self.by_con_id.get(&con_id) {
            return Ok(Instrument::Stock(i));
        }
        match self.contract_by_id(con_id) {
            Some(c) if c.expiry >= self.today_date => Ok(Instrument::Option(c)),
            _ => Err(HmdsError::no_security()),
        }
    }

    /// First bar instant of an instrument (reqHeadTimeStamp): the listing session's open for
    /// options, the path's first session for underlyings.
    pub fn head_timestamp(&self, con_id: i64) -> Result<DateTime<Utc>, HmdsError> {
        match self.resolve(con_id)? {
            Instrument::Stock(_) => self
                .sessions
                .first()
                .map(|s| s.open)
                .ok_or_else(HmdsError::no_security),
            Instrument::Option(c) => calendar::session(c.listing)
                .ok()
                .flatten()
                .map(|s| s.open)
                .ok_or_else(HmdsError::no_security),
        }
    }

    /// Bars of a request (see [`super::window`] for the window semantics). Errors carry IB's
    /// code and text: 200 unknown/expired, 162 EODChart for daily option bars, 162 time length
    /// exceeded, 162 no data (EMPTY), 321 bad what-to-show. `Ok` with no bars only for a
    /// duration over the limit under `over-limit = "silent-empty"`.
    pub fn bars(
        &self,
        con_id: i64,
        what: &str,
        bar: BarSize,
        end: DateTime<Utc>,
        duration: Duration,
        use_rth: bool,
    ) -> Result<Vec<SimBar>, HmdsError> {
        let what_u = what.to_ascii_uppercase();
        if !matches!(
            what_u.as_str(),
            "TRADES" | "MIDPOINT" | "BID" | "ASK" | "BID_ASK"
        ) {
            return Err(HmdsError::bad_what(what));
        }
        let inst = self.resolve(con_id)?;
        if matches!(inst, Instrument::Option(_)) && bar.is_daily_or_longer() {
            return Err(HmdsError::eod_chart(&what_u));
        }
        let limit = self
            .max_duration
            .get(&bar)
            .copied()
            .unwrap_or_else(|| bar.max_duration());
        if duration.approx_seconds() > limit.approx_seconds() {
            if self.over_limit == OverLimit::SilentEmpty {
                return Ok(Vec::new());
            }
            return Err(HmdsError::too_long());
        }
        let hours = Self::served_hours(&inst, use_rth);
        let now = self.now_for(hours.last_end_offset());
        let end = end.min(now);
        let mut start = window::window_start_in(end, duration, &hours)?;
        let local = match &inst {
            Instrument::Stock(i) => self.underlyings[*i].symbol.clone(),
            Instrument::Option(c) => {
                if let Ok(Some(s)) = calendar::session(c.listing) {
                    start = start.max(hours.day_start(&s));
                }
                c.local_symbol.clone()
            }
        };
        let slots = window::slots_in(bar, start, end, now, &hours);
        let bars = match &inst {
            Instrument::Stock(i) => self.stock_bars(*i, &what_u, &slots),
            Instrument::Option(c) => self.option_bars(c, &what_u, &slots),
        };
        if bars.is_empty() {
            return Err(HmdsError::no_data(&local, &what_u));
        }
        Ok(bars)
    }
}

mod knots;
mod synth;

#[cfg(test)]
mod tests;
