//! The text codec, for Python clients (`ib_insync`, `ib_async`) that offer server versions
//! below 213: a frame body is NUL-terminated fields, the first the message id.
//!
//! The layouts follow what `ib_insync` 0.9.86 sends (`client.py`) and reads (`decoder.py`) at the
//! negotiated version ([`super::codec::MIN_TEXT_VERSION`]..=[`super::codec::MAX_TEXT_VERSION`]).
//! Only the messages the simulator serves are decoded; any other well-formed message becomes
//! [`Request::Unsupported`] (logged and ignored by the connection), and a malformed one a
//! [`DecodeError`]: nothing a client sends can panic the server.

use super::codec::{Codec, ContractInfo, DecodeError, Listing, Reply, Request, WireBar};
use std::fmt::Display;

mod decode;

use decode::decode_request;

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
