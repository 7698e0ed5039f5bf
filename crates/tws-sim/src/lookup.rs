//! Contract lookup: what reqContractDetails, reqHistoricalData and reqHeadTimeStamp find for a
//! contract description (by conId, or by symbol / sec type / expiry / strike / right / class /
//! local symbol / exchange). Nothing found means error 200, as at IB.

use super::chain::{self, OptionKey, SimContract};
use super::codec::{ContractInfo, ContractQuery};
use super::market::Market;
use super::universe::SimUnderlying;
use super::window::HmdsError;
use chrono::NaiveDate;
use ib_model::Right;

/// Exchanges on which the synthetic options are found.
pub const OPTION_EXCHANGES: &[&str] = &["", "SMART", "CBOE", "AMEX"];

/// ContractInfo of an underlying: a stock or ETF (`STK`, SMART, with its primary exchange), or
/// an index (`IND` on its exchange, SPX on CBOE, no primary exchange, hours 09:30-16:00).
pub fn stock_info(u: &SimUnderlying, exchange: &str, today: chrono::NaiveDate) -> ContractInfo {
    if u.is_index() {
        let (liquid_hours, _) = super::hours::stock_hours(today);
        return ContractInfo {
            sec_type: "IND".into(),
            exchange: u.primary_exchange.clone(),
            primary_exchange: String::new(),
            trading_class: u.symbol.clone(),
            trading_hours: liquid_hours.clone(),
            liquid_hours,
            ..stock_info_of(u, exchange, today)
        };
    }
    stock_info_of(u, exchange, today)
}

fn stock_info_of(u: &SimUnderlying, exchange: &str, today: chrono::NaiveDate) -> ContractInfo {
    let (liquid_hours, trading_hours) = super::hours::stock_hours(today);
    ContractInfo {
        con_id: u.con_id,
        symbol: u.symbol.clone(),
        sec_type: "STK".into(),
        expiry: None,
        strike: 0.0,
        right: None,
        multiplier: 0.0,
        exchange: if exchange.is_empty() {
            "SMART".into()
        } else {
            exchange.to_string()
        },
        primary_exchange: u.primary_exchange.clone(),
        currency: u.currency.clone(),
        local_symbol: u.symbol.clone(),
        trading_class: if u.primary_exchange == "ARCA" {
            u.symbol.clone()
        } else {
            "NMS".into()
        },
        long_name: u.long_name.clone(),
        under_con_id: 0,
        under_symbol: String::new(),
        under_sec_type: String::new(),
        min_tick: 0.01,
        liquid_hours,
        trading_hours,
    }
}

/// ContractInfo of an option.
pub fn option_info(m: &Market, c: &SimContract, exchange: &str) -> ContractInfo {
    let u = m.underlying(&c.symbol);
    let (liquid_hours, trading_hours) = super::hours::option_hours(&c.trading_class, m.today());
    ContractInfo {
        con_id: c.con_id,
        symbol: c.symbol.clone(),
        sec_type: "OPT".into(),
        expiry: Some(c.expiry),
        strike: c.strike,
        right: Some(c.right),
        multiplier: c.multiplier,
        exchange: if exchange.is_empty() {
            "SMART".into()
        } else {
            exchange.to_string()
        },
        primary_exchange: String::new(),
        currency: c.currency.clone(),
        local_symbol: c.local_symbol.clone(),
        trading_class: c.trading_class.clone(),
        long_name: u.map(|u| u.long_name.clone()).unwrap_or_default(),
        under_con_id: u.map(|u| u.con_id).unwrap_or(0),
        under_symbol: c.symbol.clone(),
        under_sec_type: u.map(|u| u.sec_type.as_str()).unwrap_or("STK").into(),
        min_tick: if u.is_some_and(|u| u.is_index()) {
            0.05
        } else {
            0.01
        },
        liquid_hours,
        trading_hours,
    }
}

fn parse_right(s: &str) -> Result<Option<Right>, ()> {
    match s.trim().to_ascii_uppercase().as_str() {
        "" | "?" => Ok(None),
        "C" | "CALL" => Ok(Some(Right::C)),
        "P" | "PUT" => Ok(Some(Right::P)),
        _ => Err(()),
    }
}

fn currency_ok(q: &ContractQuery) -> bool {
    q.currency.is_empty() || q.currency.eq_ignore_ascii_case("USD")
}

/// Every contract matching the description (empty: answer 200).
pub fn find(m: &Market, q: &ContractQuery) -> Vec<ContractInfo> {
    if !currency_ok(q) {
        return Vec::new();
    }
    if q.con_id != 0 {
        if let Some(u) = m.underlying_by_id(q.con_id) {
            return vec![stock_info(u, &q.exchange, m.today())];
        }
        return match m.contract_by_id(q.con_id) {
            Some(c) if c.expiry >= m.today() || q.include_expired => {
                vec![option_info(m, &c, &q.exchange)]
            }
            _ => Vec::new(),
        };
    }
    let sec = q.sec_type.to_ascii_uppercase();
    let symbol = if q.symbol.is_empty() {
        q.trading_class.as_str()
    } else {
        q.symbol.as_str()
    };
    match sec.as_str() {
        "STK" => m
            .underlying(symbol)
            .filter(|u| {
                !u.is_index()
                    && (q.exchange.is_empty()
                        || q.exchange == "SMART"
                        || q.exchange == u.primary_exchange)
            })
            .map(|u| vec![stock_info(u, &q.exchange, m.today())])
            .unwrap_or_default(),
        // An index is found on its own exchange only (SPX on CBOE), as at IB.
        "IND" => m
            .underlying(symbol)
            .filter(|u| u.is_index() && q.exchange.eq_ignore_ascii_case(&u.primary_exchange))
            .map(|u| vec![stock_info(u, &q.exchange, m.today())])
            .unwrap_or_default(),
        "OPT" => find_options(m, q, symbol)
            .iter()
            .map(|c| option_info(m, c, &q.exchange))
            .collect(),
        _ => Vec::new(),
    }
}

fn find_options(m: &Market, q: &ContractQuery, symbol: &str) -> Vec<SimContract> {
    if !OPTION_EXCHANGES.contains(&q.exchange.to_ascii_uppercase().as_str()) {
        return Vec::new();
    }
    let Ok(right) = parse_right(&q.right) else {
        return Vec::new();
    };
    if q.multiplier != 0.0 && (q.multiplier - 100.0).abs() > 1e-9 {
        return Vec::new();
    }
    let symbol = if symbol.is_empty() {
        q.local_symbol.get(..6).unwrap_or("").trim()
    } else {
        symbol
    };
    let Some(u) = m.underlying_of_class(symbol) else {
        return Vec::new();
    };
    let full_date = NaiveDate::parse_from_str(q.expiry.trim(), "%Y%m%d").ok();
    // Fast path: a fully specified contract is one conId.
    if let (Some(date), Some(right), true) = (full_date, right, q.strike > 0.0) {
        let units = q.strike / u.strike_unit;
        if (units - units.round()).abs() > 1e-6
            || units < 1.0
            || units >= f64::from(chain::MAX_STRIKE_UNITS)
        {
            return Vec::new();
        }
        let Some(week) = chain::week_of(date) else {
            return Vec::new();
        };
        let key = OptionKey {
            index: u.index,
            week,
            strike_units: units.round() as u32,
            right,
        };
        return m
            .contract_by_id(key.con_id())
            .filter(|c| c.expiry == date && (c.expiry >= m.today() || q.include_expired))
            .filter(|c| matches_rest(q, c))
            .into_iter()
            .collect();
    }
    let month = q.expiry.trim();
    m.existing_contracts(&u.symbol)
        .into_iter()
        .filter(|c| {
            (month.is_empty() || c.expiry.format("%Y%m%d").to_string().starts_with(month))
                && (q.strike == 0.0 || (c.strike - q.strike).abs() < 1e-6)
                && right.is_none_or(|r| r == c.right)
                && matches_rest(q, c)
        })
        .collect()
}

fn matches_rest(q: &ContractQuery, c: &SimContract) -> bool {
    (q.trading_class.is_empty() || q.trading_class == c.trading_class)
        && (q.local_symbol.is_empty() || q.local_symbol == c.local_symbol)
}

/// The single conId a historical or head-timestamp request means, or 200.
pub fn resolve_con_id(m: &Market, q: &ContractQuery) -> Result<i64, HmdsError> {
    if q.con_id != 0 {
        return Ok(q.con_id);
    }
    let found = find(m, q);
    match found.as_slice() {
        [one] => Ok(one.con_id),
        _ => Err(HmdsError::no_security()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualification() {
        let m = Market::new(3, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        let c = m.existing_contracts("AAPL").into_iter().nth(50).unwrap();
        let q = ContractQuery {
            symbol: "AAPL".into(),
            sec_type: "OPT".into(),
            expiry: c.expiry.format("%Y%m%d").to_string(),
            strike: c.strike,
            right: c.right.as_str().into(),
            exchange: "SMART".into(),
            currency: "USD".into(),
            ..Default::default()
        };
        let found = find(&m, &q);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].con_id, c.con_id);
        assert_eq!(resolve_con_id(&m, &q).unwrap(), c.con_id);
        let mut bad = q.clone();
        bad.strike += 0.37;
        assert!(find(&m, &bad).is_empty());
        let month = ContractQuery {
            expiry: c.expiry.format("%Y%m").to_string(),
            strike: 0.0,
            right: String::new(),
            ..q.clone()
        };
        assert!(find(&m, &month).len() > 10);
        let stk = ContractQuery {
            symbol: "AAPL".into(),
            sec_type: "STK".into(),
            exchange: "SMART".into(),
            ..Default::default()
        };
        assert_eq!(find(&m, &stk)[0].con_id, 265598);
        assert!(find(
            &m,
            &ContractQuery {
                symbol: "ZZZZ".into(),
                ..stk
            }
        )
        .is_empty());
    }
}
