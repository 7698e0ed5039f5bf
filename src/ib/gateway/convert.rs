//! Translation between the tool's vocabulary and `ibapi`'s: contracts from option specs and
//! underlyings, bar sizes and durations, and received bars normalised to UTC.
//!
//! Kept in one place so the rest of the tool never names an `ibapi` type for these.

use super::{FetchedBar, HistRequest};
use crate::bars::{BarSize, Duration as IbDuration, DurationUnit};
use crate::cache::{Right, UnderlyingSecType};
use chrono::{NaiveDate, TimeZone, Utc};
use ibapi::contracts::{Contract, Currency, Exchange, OptionRight, SecurityType, Symbol};
use ibapi::market_data::historical::{
    BarSize as IbBarSize, BarTimestamp, Duration as IbApiDuration,
};

/// The `ibapi` contract of a request: the option it names, or its underlying.
pub(super) fn contract_for(req: &HistRequest) -> Contract {
    match &req.option {
        Some(o) => Contract {
            contract_id: i32::try_from(o.con_id).unwrap_or(0),
            symbol: Symbol(o.symbol.clone()),
            security_type: SecurityType::Option,
            last_trade_date_or_contract_month: o.expiry.format("%Y%m%d").to_string(),
            strike: o.strike,
            right: Some(match o.right {
                Right::C => OptionRight::Call,
                Right::P => OptionRight::Put,
            }),
            multiplier: format_multiplier(o.multiplier),
            exchange: Exchange(o.exchange.clone()),
            currency: Currency(o.currency.clone()),
            local_symbol: o.local_symbol.clone(),
            trading_class: o.trading_class.clone(),
            ..Contract::default()
        },
        None => underlying_contract(&req.stock_symbol, req.underlying_sec_type),
    }
}

/// The contract of an option underlying: `STK` on SMART in USD, or `IND` on the index's
/// exchange ([`crate::cache::index_exchange`]: SPX on CBOE).
pub(super) fn underlying_contract(symbol: &str, sec_type: UnderlyingSecType) -> Contract {
    match sec_type {
        UnderlyingSecType::Stk => Contract::stock(symbol).build(),
        UnderlyingSecType::Ind => Contract {
            symbol: Symbol(symbol.to_string()),
            security_type: SecurityType::Index,
            exchange: Exchange(crate::cache::index_exchange(symbol).to_string()),
            currency: Currency("USD".into()),
            ..Contract::default()
        },
    }
}

fn format_multiplier(m: f64) -> String {
    if m.fract() == 0.0 {
        format!("{}", m as i64)
    } else {
        m.to_string()
    }
}

/// A received bar with its timestamp in UTC (a daily bar's date as midnight New York).
pub(super) fn convert_bar(b: &ibapi::market_data::historical::Bar) -> FetchedBar {
    let ts = match b.date {
        BarTimestamp::DateTime(t) => Utc
            .timestamp_opt(t.unix_timestamp(), 0)
            .single()
            .unwrap_or_default(),
        BarTimestamp::Date(d) => {
            let nd = NaiveDate::from_ymd_opt(d.year(), u8::from(d.month()) as u32, d.day() as u32)
                .unwrap_or_default();
            crate::calendar::ny_to_utc(nd, chrono::NaiveTime::MIN)
        }
    };
    FetchedBar {
        ts,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
        wap: b.wap,
        count: b.count,
    }
}

/// Map our bar size to `ibapi`'s enum.
pub fn ib_bar_size(b: BarSize) -> Option<IbBarSize> {
    use BarSize::*;
    Some(match b {
        Secs1 => IbBarSize::Sec,
        Secs5 => IbBarSize::Sec5,
        Secs10 => IbBarSize::Sec10,
        Secs15 => IbBarSize::Sec15,
        Secs30 => IbBarSize::Sec30,
        Min1 => IbBarSize::Min,
        Mins2 => IbBarSize::Min2,
        Mins3 => IbBarSize::Min3,
        Mins5 => IbBarSize::Min5,
        Mins10 => IbBarSize::Min10,
        Mins15 => IbBarSize::Min15,
        Mins20 => IbBarSize::Min20,
        Mins30 => IbBarSize::Min30,
        Hour1 => IbBarSize::Hour,
        Hours2 => IbBarSize::Hour2,
        Hours3 => IbBarSize::Hour3,
        Hours4 => IbBarSize::Hour4,
        Hours8 => IbBarSize::Hour8,
        Day1 => IbBarSize::Day,
        Week1 => IbBarSize::Week,
        Month1 => IbBarSize::Month,
    })
}

/// Map our duration to `ibapi`'s.
pub(super) fn ib_duration(d: IbDuration) -> IbApiDuration {
    let n = i32::try_from(d.n).unwrap_or(i32::MAX);
    match d.unit {
        DurationUnit::Seconds => IbApiDuration::seconds(n),
        DurationUnit::Days => IbApiDuration::days(n),
        DurationUnit::Weeks => IbApiDuration::weeks(n),
        DurationUnit::Months => IbApiDuration::months(n),
        DurationUnit::Years => IbApiDuration::years(n),
    }
}
