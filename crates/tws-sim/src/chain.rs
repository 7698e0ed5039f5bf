//! Option chains: expiries, strike grids, listing dates and conIds.
//!
//! Expiries are Fridays (the Thursday before when the Friday is a holiday): the third Friday of
//! a month is the monthly, the others weeklies (only for underlyings that list weeklies). A
//! monthly is listed `monthly-listing-days` before expiry, a weekly `weekly-listing-days`
//! before; its strike grid is fixed at listing around the underlying's open that day: unit steps
//! near the money, coarser steps away from it, and a few far strikes missing. The option chain
//! of reqSecDefOptParams is the union of strikes over the listed expiries, so many expiry x
//! strike combinations it announces do not exist (qualification answers 200 for them).
//!
//! An option conId encodes (underlying index, expiry week, strike index, right) in 31 bits, so
//! it is a pure function of the contract and never changes with `today`:
//! `1<<30 | index<<20 | week<<11 | strike_units<<1 | put`.

use super::pricing::{hash, unit};
use super::universe::SimUnderlying;
use chrono::{Datelike, NaiveDate};
use ib_model::calendar;
use ib_model::Right;

/// Friday before the first expiry week (week 0).
pub fn friday0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 12, 31).unwrap_or_default()
}

/// Number of expiry weeks a conId can encode.
pub const MAX_WEEKS: u32 = 512;
/// Number of strike units a conId can encode.
pub const MAX_STRIKE_UNITS: u32 = 1024;

/// One option contract.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SimContract {
    /// conId.
    pub con_id: i64,
    /// Underlying symbol.
    pub symbol: String,
    /// OCC local symbol, e.g. `AAPL  261218C00200000`.
    pub local_symbol: String,
    /// Trading class (the symbol).
    pub trading_class: String,
    /// Last trade date.
    pub expiry: NaiveDate,
    /// Strike.
    pub strike: f64,
    /// Right.
    pub right: Right,
    /// Multiplier.
    pub multiplier: f64,
    /// Exchange (`SMART`).
    pub exchange: String,
    /// Currency.
    pub currency: String,
    /// First session with bars (reqHeadTimeStamp answers its open).
    pub listing: NaiveDate,
}

/// One trading class of a chain, as reqSecDefOptParams returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChainClass {
    /// Trading class.
    pub trading_class: String,
    /// Multiplier text.
    pub multiplier: String,
    /// Listed, unexpired expiries.
    pub expirations: Vec<NaiveDate>,
    /// Union of their strikes.
    pub strikes: Vec<f64>,
}

/// An option chain: the same classes on every exchange listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SimChain {
    /// Underlying symbol.
    pub symbol: String,
    /// Underlying conId.
    pub underlying_con_id: i64,
    /// Exchanges (`SMART` first).
    pub exchanges: Vec<String>,
    /// Trading classes.
    pub classes: Vec<ChainClass>,
}

/// Decoded option conId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionKey {
    /// Underlying index.
    pub index: u32,
    /// Expiry week.
    pub week: u32,
    /// Strike in strike units.
    pub strike_units: u32,
    /// Right.
    pub right: Right,
}

impl OptionKey {
    /// The conId.
    pub fn con_id(self) -> i64 {
        (1i64 << 30)
            | (i64::from(self.index) << 20)
            | (i64::from(self.week) << 11)
            | (i64::from(self.strike_units) << 1)
            | i64::from(self.right == Right::P)
    }

    /// Decode a conId; `None` when it is not an option conId.
    pub fn from_con_id(con_id: i64) -> Option<OptionKey> {
        if !(1i64 << 30..1i64 << 31).contains(&con_id) {
            return None;
        }
        let v = con_id - (1i64 << 30);
        Some(OptionKey {
            index: ((v >> 20) & 0x3FF) as u32,
            week: ((v >> 11) & 0x1FF) as u32,
            strike_units: ((v >> 1) & 0x3FF) as u32,
            right: if v & 1 == 1 { Right::P } else { Right::C },
        })
    }
}

/// Nominal Friday of a week.
pub fn week_friday(week: u32) -> NaiveDate {
    friday0() + chrono::Duration::weeks(i64::from(week))
}

/// Week index of a nominal Friday (or of the Thursday expiry of a holiday week).
pub fn week_of(expiry: NaiveDate) -> Option<u32> {
    let days = (expiry - friday0()).num_days();
    let w = (days + 3).div_euclid(7);
    (w >= 0 && w < i64::from(MAX_WEEKS)).then_some(w as u32)
}

/// True when the week's Friday is the third Friday of its month.
pub fn is_monthly(week: u32) -> bool {
    let f = week_friday(week);
    (15..=21).contains(&f.day())
}

/// Last trade date of a week's expiry: the Friday, or the session before it on a holiday.
pub fn expiry_date(week: u32) -> Option<NaiveDate> {
    calendar::session_on_or_before(week_friday(week))
        .ok()
        .map(|s| s.date)
}

/// Listing-related settings, resolved per underlying.
#[derive(Debug, Clone, Copy)]
pub struct ListingRules {
    /// Monthly lead, days.
    pub monthly_days: u32,
    /// Weekly lead, days.
    pub weekly_days: u32,
    /// Strike-width multiplier (2 for the big-chain symbol).
    pub width_scale: f64,
}

/// Listing date of an expiry: the first session on or after `expiry - lead`.
pub fn listing_date(week: u32, rules: &ListingRules) -> Option<NaiveDate> {
    let exp = expiry_date(week)?;
    let lead = if is_monthly(week) {
        rules.monthly_days
    } else {
        rules.weekly_days
    };
    let d = exp - chrono::Duration::days(i64::from(lead));
    calendar::session_after(d.pred_opt()?).ok().map(|s| s.date)
}

/// Whether an underlying lists this week's expiry at all.
pub fn lists_week(u: &SimUnderlying, week: u32, weeklies: bool) -> bool {
    week < MAX_WEEKS && (is_monthly(week) || weeklies || u.weeklies)
}

/// Strike grid of one expiry (in strike units), fixed at listing around `spot`.
pub fn strike_grid(
    seed: u64,
    u: &SimUnderlying,
    week: u32,
    spot: f64,
    listing: NaiveDate,
    rules: &ListingRules,
) -> Vec<u32> {
    let Some(exp) = expiry_date(week) else {
        return Vec::new();
    };
    let t = ((exp - listing).num_days().max(1) as f64) / 365.0;
    let monthly = is_monthly(week);
    let base = if monthly {
        (2.5 * u.vol * t.sqrt()).max(0.12)
    } else {
        (2.0 * u.vol * t.sqrt()).max(0.06)
    };
    let width = (base * rules.width_scale).min(0.9);
    let near = width / 3.0;
    let lo = ((spot * (1.0 - width)) / u.strike_unit).ceil().max(1.0) as u32;
    let hi = ((spot * (1.0 + width)) / u.strike_unit).floor() as u32;
    let far = u.far_step_units.max(1);
    (lo..=hi.min(MAX_STRIKE_UNITS - 1))
        .filter(|k| {
            let strike = f64::from(*k) * u.strike_unit;
            if (strike - spot).abs() <= near * spot {
                return true;
            }
            k % far == 0
                && unit(hash(
                    seed,
                    &[u64::from(u.index), u64::from(week), u64::from(*k), 0x5742],
                )) >= 0.04
        })
        .collect()
}

/// OCC-style local symbol: symbol padded to 6, `YYMMDD`, right, strike x 1000 in 8 digits.
pub fn local_symbol(symbol: &str, expiry: NaiveDate, right: Right, strike: f64) -> String {
    format!(
        "{symbol:<6}{}{}{:08}",
        expiry.format("%y%m%d"),
        right.as_str(),
        (strike * 1000.0).round() as i64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn con_ids_round_trip() {
        let k = OptionKey {
            index: 1000,
            week: 511,
            strike_units: 1023,
            right: Right::P,
        };
        let id = k.con_id();
        assert!(id < i64::from(i32::MAX));
        assert_eq!(OptionKey::from_con_id(id), Some(k));
        assert_eq!(OptionKey::from_con_id(265598), None);
    }

    #[test]
    fn weeks_and_expiries() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 18).unwrap();
        let w = week_of(d).unwrap();
        assert_eq!(week_friday(w), d);
        assert!(is_monthly(w));
        assert!(!is_monthly(w + 1));
        // Good Friday 2026 (April 3): the weekly expires Thursday April 2.
        let gf = week_of(NaiveDate::from_ymd_opt(2026, 4, 3).unwrap()).unwrap();
        assert_eq!(expiry_date(gf), NaiveDate::from_ymd_opt(2026, 4, 2));
        assert_eq!(
            week_of(NaiveDate::from_ymd_opt(2026, 4, 2).unwrap()),
            Some(gf)
        );
        assert_eq!(
            local_symbol("AAPL", d, Right::C, 200.0),
            "AAPL  261218C00200000"
        );
    }
}
