//! The text codec, for Python clients (`ib_insync`, `ib_async`) that offer server versions
//! below 213: a frame body is NUL-terminated fields, the first the message id.
//!
//! The layouts follow what `ib_insync` 0.9.86 sends (`client.py`) and reads (`decoder.py`) at the
//! negotiated version ([`super::codec::MIN_TEXT_VERSION`]..=[`super::codec::MAX_TEXT_VERSION`]).
//! Only the messages the simulator serves are decoded; any other well-formed message becomes
//! [`Request::Unsupported`] (logged and ignored by the connection), and a malformed one a
//! [`DecodeError`]: nothing a client sends can panic the server.

use super::codec::{
    Codec, ContractInfo, ContractQuery, DecodeError, HistRequest, Listing, Reply, Request, WireBar,
};
use std::fmt::Display;

/// Inbound (client -> server) message ids.
pub mod msg_in {
    /// reqOpenOrders.
    pub const REQ_OPEN_ORDERS: i32 = 5;
    /// reqAccountUpdates.
    pub const REQ_ACCOUNT_UPDATES: i32 = 6;
    /// reqExecutions.
    pub const REQ_EXECUTIONS: i32 = 7;
    /// reqContractDetails.
    pub const REQ_CONTRACT_DATA: i32 = 9;
    /// reqAutoOpenOrders.
    pub const REQ_AUTO_OPEN_ORDERS: i32 = 15;
    /// reqAllOpenOrders.
    pub const REQ_ALL_OPEN_ORDERS: i32 = 16;
    /// reqHistoricalData.
    pub const REQ_HISTORICAL_DATA: i32 = 20;
    /// cancelHistoricalData.
    pub const CANCEL_HISTORICAL_DATA: i32 = 25;
    /// reqCurrentTime.
    pub const REQ_CURRENT_TIME: i32 = 49;
    /// reqPositions.
    pub const REQ_POSITIONS: i32 = 61;
    /// startApi.
    pub const START_API: i32 = 71;
    /// reqAccountUpdatesMulti.
    pub const REQ_ACCOUNT_UPDATES_MULTI: i32 = 76;
    /// reqSecDefOptParams.
    pub const REQ_SEC_DEF_OPT_PARAMS: i32 = 78;
    /// reqHeadTimeStamp.
    pub const REQ_HEAD_TIMESTAMP: i32 = 87;
    /// cancelHeadTimeStamp.
    pub const CANCEL_HEAD_TIMESTAMP: i32 = 90;
    /// reqCompletedOrders.
    pub const REQ_COMPLETED_ORDERS: i32 = 99;
}

/// Outbound (server -> client) message ids.
pub mod msg_out {
    /// errMsg.
    pub const ERROR: i32 = 4;
    /// nextValidId.
    pub const NEXT_VALID_ID: i32 = 9;
    /// contractDetails.
    pub const CONTRACT_DATA: i32 = 10;
    /// managedAccounts.
    pub const MANAGED_ACCOUNTS: i32 = 15;
    /// historicalData.
    pub const HISTORICAL_DATA: i32 = 17;
    /// currentTime.
    pub const CURRENT_TIME: i32 = 49;
    /// contractDetailsEnd.
    pub const CONTRACT_DATA_END: i32 = 52;
    /// openOrderEnd.
    pub const OPEN_ORDER_END: i32 = 53;
    /// accountDownloadEnd.
    pub const ACCOUNT_DOWNLOAD_END: i32 = 54;
    /// execDetailsEnd.
    pub const EXEC_DETAILS_END: i32 = 55;
    /// positionEnd.
    pub const POSITION_END: i32 = 62;
    /// accountUpdateMultiEnd.
    pub const ACCOUNT_UPDATE_MULTI_END: i32 = 74;
    /// securityDefinitionOptionParameter.
    pub const SEC_DEF_OPT_PARAMETER: i32 = 75;
    /// securityDefinitionOptionParameterEnd.
    pub const SEC_DEF_OPT_PARAMETER_END: i32 = 76;
    /// headTimestamp.
    pub const HEAD_TIMESTAMP: i32 = 88;
    /// completedOrdersEnd.
    pub const COMPLETED_ORDERS_END: i32 = 102;
    /// historicalDataEnd (server version 196 and later only).
    pub const HISTORICAL_DATA_END: i32 = 108;
}

/// Server versions at which a message layout changes.
pub mod versions {
    /// Errors carry the advanced-order-reject JSON field.
    pub const ADVANCED_ORDER_REJECT: u32 = 166;
    /// Contract details lose their version field and mdSizeMultiplier and gain the size rules.
    pub const SIZE_RULES: u32 = 164;
    /// Contract details carry suggestedSizeIncrement alone (this version only).
    pub const SUGGESTED_SIZE_INCREMENT: u32 = 163;
    /// HistoricalData loses its window and a separate HistoricalDataEnd (108) carries it.
    pub const HISTORICAL_DATA_END: u32 = 196;
}

/// The text codec at one negotiated server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextCodec {
    version: u32,
}

impl TextCodec {
    /// A codec for the server version the handshake negotiated.
    pub fn new(version: u32) -> TextCodec {
        TextCodec { version }
    }

    /// The negotiated server version.
    pub fn version(&self) -> u32 {
        self.version
    }
}

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

/// Builds one outbound body: every field is followed by a NUL. A NUL inside a value cannot be
/// framed and is dropped.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn new(msg_id: i32) -> Body {
        let mut b = Body(Vec::with_capacity(64));
        b.put(msg_id);
        b
    }

    fn put(&mut self, v: impl Display) -> &mut Body {
        let s = v.to_string();
        self.0.extend(s.bytes().filter(|&c| c != 0));
        self.0.push(0);
        self
    }

    fn num(&mut self, x: f64) -> &mut Body {
        if x.is_finite() {
            self.put(x)
        } else {
            self.put("")
        }
    }
}

fn decode_request(fields: &[&str]) -> Result<Request, DecodeError> {
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

fn contract_data(version: u32, req_id: i32, c: &ContractInfo) -> Vec<u8> {
    let expiry = c
        .expiry
        .map(|d| d.format("%Y%m%d").to_string())
        .unwrap_or_default();
    let month = c
        .expiry
        .map(|d| d.format("%Y%m").to_string())
        .unwrap_or_default();
    let is_opt = c.sec_type == "OPT";
    let mut b = Body::new(msg_out::CONTRACT_DATA);
    if version < versions::SIZE_RULES {
        b.put(8);
    }
    b.put(req_id)
        .put(&c.symbol)
        .put(&c.sec_type)
        .put(&expiry)
        .num(c.strike)
        .put(c.right.map(|r| r.as_str()).unwrap_or(""))
        .put(&c.exchange)
        .put(&c.currency)
        .put(&c.local_symbol)
        .put(if is_opt { &c.trading_class } else { &c.symbol })
        .put(&c.trading_class)
        .put(c.con_id)
        .num(c.min_tick);
    if version < versions::SIZE_RULES {
        b.put(1); // mdSizeMultiplier
    }
    let multiplier = if c.multiplier != 0.0 {
        num_text(c.multiplier)
    } else {
        String::new()
    };
    b.put(multiplier)
        .put("ACTIVETIM,AD,ALERT,ALLOC,DAY,GTC,LMT,MKT,NONALGO,OPG,STP")
        .put("SMART,AMEX,CBOE,ISE,PHLX,BOX")
        .put(1) // priceMagnifier
        .put(c.under_con_id)
        .put(&c.long_name)
        .put(&c.primary_exchange)
        .put(&month)
        .put("") // industry
        .put("") // category
        .put("") // subcategory
        .put("US/Eastern")
        .put(&c.trading_hours)
        .put(&c.liquid_hours)
        .put("") // evRule
        .put("") // evMultiplier
        .put(0) // secIdList count
        .put(if is_opt { 2 } else { 1 }) // aggGroup
        .put(&c.under_symbol)
        .put(&c.under_sec_type)
        .put(if is_opt { "32" } else { "26" }) // marketRuleIds
        .put(&expiry) // realExpirationDate
        .put(if c.sec_type == "STK" { "COMMON" } else { "" });
    if version == versions::SUGGESTED_SIZE_INCREMENT {
        b.put(1);
    }
    if version >= versions::SIZE_RULES {
        b.put(1).put(1).put(1); // minSize, sizeIncrement, suggestedSizeIncrement
    }
    b.0
}

/// Decimal text of a number: integers without a fraction (`100`, not `100.0`).
fn num_text(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn bar(b: &mut Body, w: &WireBar) {
    b.put(&w.date)
        .num(w.open)
        .num(w.high)
        .num(w.low)
        .num(w.close)
        .put(&w.volume)
        .put(&w.wap)
        .put(w.count);
}

impl Codec for TextCodec {
    fn decode(&self, body: &[u8]) -> Result<Request, DecodeError> {
        let text = String::from_utf8_lossy(body);
        let mut fields: Vec<&str> = text.split('\0').collect();
        // Every field is NUL-terminated: the split leaves one empty tail.
        if fields.len() > 1 && fields.last() == Some(&"") {
            fields.pop();
        }
        decode_request(&fields)
    }

    fn encode(&self, reply: &Reply) -> Vec<u8> {
        use msg_out::*;
        let v = self.version;
        let mut b;
        match reply {
            Reply::NextValidId(id) => {
                b = Body::new(NEXT_VALID_ID);
                b.put(1).put(id);
            }
            Reply::ManagedAccounts(a) => {
                b = Body::new(MANAGED_ACCOUNTS);
                b.put(1).put(a);
            }
            Reply::Error { id, code, message } => {
                b = Body::new(ERROR);
                b.put(2).put(id).put(code).put(message);
                if v >= versions::ADVANCED_ORDER_REJECT {
                    b.put("");
                }
            }
            Reply::HistoricalData {
                req_id,
                start,
                end,
                bars,
            } => {
                b = Body::new(HISTORICAL_DATA);
                b.put(req_id);
                if v < versions::HISTORICAL_DATA_END {
                    b.put(start).put(end);
                }
                b.put(bars.len());
                for w in bars {
                    bar(&mut b, w);
                }
            }
            Reply::HistoricalDataEnd { req_id, start, end } => {
                if v < versions::HISTORICAL_DATA_END {
                    return Vec::new();
                }
                b = Body::new(HISTORICAL_DATA_END);
                b.put(req_id).put(start).put(end);
            }
            Reply::SecDefOptParameter {
                req_id,
                exchange,
                underlying_con_id,
                trading_class,
                multiplier,
                expirations,
                strikes,
            } => {
                b = Body::new(SEC_DEF_OPT_PARAMETER);
                b.put(req_id)
                    .put(exchange)
                    .put(underlying_con_id)
                    .put(trading_class)
                    .put(multiplier)
                    .put(expirations.len());
                for e in expirations {
                    b.put(e);
                }
                b.put(strikes.len());
                for s in strikes {
                    b.num(*s);
                }
            }
            Reply::SecDefOptParameterEnd(req_id) => {
                b = Body::new(SEC_DEF_OPT_PARAMETER_END);
                b.put(req_id);
            }
            Reply::ContractData { req_id, info } => return contract_data(v, *req_id, info),
            Reply::ContractDataEnd(req_id) => {
                b = Body::new(CONTRACT_DATA_END);
                b.put(1).put(req_id);
            }
            Reply::HeadTimestamp {
                req_id,
                epoch,
                format_date,
            } => {
                b = Body::new(HEAD_TIMESTAMP);
                b.put(req_id);
                match chrono::DateTime::from_timestamp(*epoch, 0) {
                    Some(t) if *format_date != 2 => b.put(t.format("%Y%m%d-%H:%M:%S")),
                    _ => b.put(epoch),
                };
            }
            Reply::CurrentTime(t) => {
                b = Body::new(CURRENT_TIME);
                b.put(1).put(t);
            }
            Reply::ListingEnd(l) => match l {
                Listing::Positions => {
                    b = Body::new(POSITION_END);
                    b.put(1);
                }
                Listing::OpenOrders => {
                    b = Body::new(OPEN_ORDER_END);
                    b.put(1);
                }
                Listing::CompletedOrders => b = Body::new(COMPLETED_ORDERS_END),
                Listing::AccountUpdates { account } => {
                    b = Body::new(ACCOUNT_DOWNLOAD_END);
                    b.put(1).put(account);
                }
                Listing::AccountUpdatesMulti { req_id } => {
                    b = Body::new(ACCOUNT_UPDATE_MULTI_END);
                    b.put(1).put(req_id);
                }
                Listing::Executions { req_id } => {
                    b = Body::new(EXEC_DETAILS_END);
                    b.put(1).put(req_id);
                }
            },
        }
        b.0
    }
}

#[cfg(test)]
mod tests;
