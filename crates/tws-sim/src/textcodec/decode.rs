//! Reading a client's text messages: a cursor over the NUL-separated fields, and the layout of
//! each request the simulator serves at the negotiated versions.
//!
//! Every read names the field it expected, so a malformed message becomes a [`DecodeError`]
//! saying which field was wrong, never a panic.

use super::msg_in;
use crate::codec::{ContractQuery, DecodeError, HistRequest, Listing, Request};
use std::fmt::Display;

/// A cursor over the fields of one inbound message.
struct Fields<'a> {
    msg_id: i32,
    rest: std::slice::Iter<'a, &'a str>,
}

impl<'a> Fields<'a> {
    fn err(&self, why: impl Display) -> DecodeError {
        DecodeError {
            wire_id: Some(self.msg_id),
            why: why.to_string(),
        }
    }

    /// The next field; a missing required field is an error.
    fn next(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        match self.rest.next() {
            Some(s) => Ok(s),
            None => Err(self.err(format_args!("missing field {what}"))),
        }
    }

    /// The next field, empty when the message ends (trailing optional fields).
    fn opt(&mut self) -> &'a str {
        self.rest.next().copied().unwrap_or("")
    }

    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        self.next(what).map(str::to_string)
    }

    fn int(&mut self, what: &str) -> Result<i64, DecodeError> {
        let s = self.next(what)?.trim();
        if s.is_empty() {
            return Ok(0);
        }
        s.parse()
            .map_err(|_| self.err(format_args!("{what}: not an integer: {s:?}")))
    }

    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        let v = self.int(what)?;
        i32::try_from(v).map_err(|_| self.err(format_args!("{what}: out of range: {v}")))
    }

    fn f64(&mut self, what: &str) -> Result<f64, DecodeError> {
        let s = self.next(what)?.trim();
        if s.is_empty() {
            return Ok(0.0);
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            Ok(_) => Ok(0.0), // UNSET_DOUBLE sent as a number: treat as unset
            Err(_) => Err(self.err(format_args!("{what}: not a number: {s:?}"))),
        }
    }

    fn bool(&mut self, what: &str) -> Result<bool, DecodeError> {
        let s = self.next(what)?.trim();
        match s.to_ascii_lowercase().as_str() {
            "" | "0" | "false" => Ok(false),
            "1" | "true" => Ok(true),
            _ => Err(self.err(format_args!("{what}: not a bool: {s:?}"))),
        }
    }

    /// The 12 contract fields `ib_insync` sends for a Contract argument.
    fn contract(&mut self) -> Result<ContractQuery, DecodeError> {
        let con_id = self.int("conId")?;
        let symbol = self.string("symbol")?;
        let sec_type = self.string("secType")?;
        let expiry = self.string("lastTradeDateOrContractMonth")?;
        let strike = self.f64("strike")?;
        let right = self.string("right")?;
        let multiplier = self.f64("multiplier")?;
        let exchange = self.string("exchange")?;
        let _primary = self.next("primaryExchange")?;
        let currency = self.string("currency")?;
        let local_symbol = self.string("localSymbol")?;
        let trading_class = self.string("tradingClass")?;
        Ok(ContractQuery {
            con_id,
            symbol,
            sec_type,
            expiry,
            strike,
            right,
            multiplier,
            exchange,
            currency,
            local_symbol,
            trading_class,
            include_expired: false,
        })
    }
}

/// Decode one message from its fields (the first the message id).
pub(super) fn decode_request(fields: &[&str]) -> Result<Request, DecodeError> {
    let Some((first, rest)) = fields.split_first() else {
        return Err(DecodeError {
            wire_id: None,
            why: "empty message".into(),
        });
    };
    let msg_id: i32 = first.trim().parse().map_err(|_| DecodeError {
        wire_id: None,
        why: format!("message id is not an integer: {first:?}"),
    })?;
    let mut f = Fields {
        msg_id,
        rest: rest.iter(),
    };
    use msg_in::*;
    let req = match msg_id {
        START_API => {
            f.next("version")?;
            Request::StartApi {
                client_id: f.i32("clientId")?,
            }
        }
        REQ_HISTORICAL_DATA => historical_request(&mut f)?,
        CANCEL_HISTORICAL_DATA => {
            f.next("version")?;
            Request::CancelHistorical {
                req_id: f.i32("reqId")?,
            }
        }
        REQ_SEC_DEF_OPT_PARAMS => {
            let req_id = f.i32("reqId")?;
            let symbol = f.string("underlyingSymbol")?;
            let _fut_fop_exchange = f.next("futFopExchange")?;
            let sec_type = f.string("underlyingSecType")?;
            let con_id = f.int("underlyingConId")?;
            Request::SecDefOptParams {
                req_id,
                symbol,
                sec_type,
                con_id,
            }
        }
        REQ_CONTRACT_DATA => {
            f.next("version")?;
            let req_id = f.i32("reqId")?;
            let mut contract = f.contract()?;
            contract.include_expired = f.bool("includeExpired")?;
            Request::ContractDetails { req_id, contract }
        }
        REQ_HEAD_TIMESTAMP => head_timestamp_request(&mut f)?,
        CANCEL_HEAD_TIMESTAMP => Request::CancelHeadTimestamp {
            req_id: f.i32("reqId")?,
        },
        REQ_CURRENT_TIME => Request::CurrentTime,
        REQ_POSITIONS
        | REQ_OPEN_ORDERS
        | REQ_AUTO_OPEN_ORDERS
        | REQ_ALL_OPEN_ORDERS
        | REQ_COMPLETED_ORDERS
        | REQ_ACCOUNT_UPDATES
        | REQ_ACCOUNT_UPDATES_MULTI
        | REQ_EXECUTIONS => listing_request(&mut f)?,
        id if (1..=200).contains(&id) => Request::Unsupported { wire_id: id },
        _ => return Err(f.err("not a text message id")),
    };
    Ok(req)
}

/// reqHistoricalData: the contract, the window and what to show, skipping a combo's legs.
fn historical_request(f: &mut Fields<'_>) -> Result<Request, DecodeError> {
    let req_id = f.i32("reqId")?;
    let mut contract = f.contract()?;
    contract.include_expired = f.bool("includeExpired")?;
    let end = f.string("endDateTime")?;
    let bar_size = f.string("barSizeSetting")?;
    let duration = f.string("durationStr")?;
    let use_rth = f.bool("useRTH")?;
    let what = f.string("whatToShow")?;
    let format_date = f.i32("formatDate")?;
    if contract.sec_type.eq_ignore_ascii_case("BAG") {
        let legs = f.int("comboLegs")?;
        for _ in 0..legs.clamp(0, 1000) * 4 {
            f.next("comboLeg")?;
        }
    }
    let keep = f.opt();
    let keep_up_to_date = keep == "1" || keep.eq_ignore_ascii_case("true");
    Ok(Request::Historical(HistRequest {
        req_id,
        contract,
        end,
        bar_size,
        duration,
        use_rth,
        what,
        format_date,
        keep_up_to_date,
    }))
}

/// reqHeadTimestamp: the contract and what to show.
fn head_timestamp_request(f: &mut Fields<'_>) -> Result<Request, DecodeError> {
    let req_id = f.i32("reqId")?;
    let mut contract = f.contract()?;
    contract.include_expired = f.bool("includeExpired")?;
    let use_rth = f.bool("useRTH")?;
    let what = f.string("whatToShow")?;
    let format_date = f.i32("formatDate")?;
    Ok(Request::HeadTimestamp {
        req_id,
        contract,
        use_rth,
        what,
        format_date,
    })
}

/// The account and order listings a client asks for at start-up (positions, open and completed
/// orders, account updates, executions): answered empty, so a client's start-up completes.
fn listing_request(f: &mut Fields<'_>) -> Result<Request, DecodeError> {
    use msg_in::*;
    let msg_id = f.msg_id;
    let req = match msg_id {
        REQ_POSITIONS => Request::Listing(Listing::Positions),
        REQ_OPEN_ORDERS | REQ_AUTO_OPEN_ORDERS | REQ_ALL_OPEN_ORDERS => {
            Request::Listing(Listing::OpenOrders)
        }
        REQ_COMPLETED_ORDERS => Request::Listing(Listing::CompletedOrders),
        REQ_ACCOUNT_UPDATES => {
            f.next("version")?;
            let subscribe = f.bool("subscribe")?;
            let account = f.opt().to_string();
            if subscribe {
                Request::Listing(Listing::AccountUpdates { account })
            } else {
                Request::Unsupported { wire_id: msg_id }
            }
        }
        REQ_ACCOUNT_UPDATES_MULTI => {
            f.next("version")?;
            Request::Listing(Listing::AccountUpdatesMulti {
                req_id: f.i32("reqId")?,
            })
        }
        REQ_EXECUTIONS => {
            f.next("version")?;
            Request::Listing(Listing::Executions {
                req_id: f.i32("reqId")?,
            })
        }
        _ => return Err(f.err("not a listing message id")),
    };
    Ok(req)
}
