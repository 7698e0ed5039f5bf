//! The protobuf codec (`ibapi` 3.x and later): body = `i32 BE wire_id` + protobuf message, wire
//! id = message id + 200. Inbound and outbound ids collide (209 is reqContractDetails inbound and
//! NextValidId outbound), so decoding here is for the client -> server direction only.

use super::codec::{Codec, ContractInfo, ContractQuery, DecodeError, HistRequest, Reply, Request};
use super::proto;
use prost::Message;

/// Inbound wire ids (message id + 200).
pub mod wire_in {
    /// reqContractDetails (9).
    pub const CONTRACT_DATA: i32 = 209;
    /// reqHistoricalData (20).
    pub const HISTORICAL_DATA: i32 = 220;
    /// cancelHistoricalData (25).
    pub const CANCEL_HISTORICAL_DATA: i32 = 225;
    /// reqCurrentTime (49).
    pub const CURRENT_TIME: i32 = 249;
    /// startApi (71).
    pub const START_API: i32 = 271;
    /// reqSecDefOptParams (78).
    pub const SEC_DEF_OPT_PARAMS: i32 = 278;
    /// reqHeadTimeStamp (87).
    pub const HEAD_TIMESTAMP: i32 = 287;
    /// cancelHeadTimestamp (90).
    pub const CANCEL_HEAD_TIMESTAMP: i32 = 290;
    /// cancelContractData (106).
    pub const CANCEL_CONTRACT_DATA: i32 = 306;
}

/// Outbound wire ids (message id + 200).
pub mod wire_out {
    /// ErrorMessage (4).
    pub const ERROR: i32 = 204;
    /// NextValidId (9).
    pub const NEXT_VALID_ID: i32 = 209;
    /// ContractData (10).
    pub const CONTRACT_DATA: i32 = 210;
    /// ManagedAccounts (15).
    pub const MANAGED_ACCOUNTS: i32 = 215;
    /// HistoricalData (17).
    pub const HISTORICAL_DATA: i32 = 217;
    /// CurrentTime (49).
    pub const CURRENT_TIME: i32 = 249;
    /// ContractDataEnd (52).
    pub const CONTRACT_DATA_END: i32 = 252;
    /// SecDefOptParameter (75).
    pub const SEC_DEF_OPT_PARAMETER: i32 = 275;
    /// SecDefOptParameterEnd (76).
    pub const SEC_DEF_OPT_PARAMETER_END: i32 = 276;
    /// HeadTimestamp (88).
    pub const HEAD_TIMESTAMP: i32 = 288;
    /// HistoricalDataEnd (108).
    pub const HISTORICAL_DATA_END: i32 = 308;
}

/// The protobuf codec. Stateless.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProtobufCodec;

fn bad(wire_id: i32, e: impl std::fmt::Display) -> DecodeError {
    DecodeError {
        wire_id: Some(wire_id),
        why: e.to_string(),
    }
}

fn query(c: Option<proto::Contract>) -> ContractQuery {
    let c = c.unwrap_or_default();
    let expiry = c
        .last_trade_date_or_contract_month
        .filter(|s| !s.is_empty())
        .or(c.last_trade_date)
        .unwrap_or_default();
    ContractQuery {
        con_id: i64::from(c.con_id.unwrap_or(0)),
        symbol: c.symbol.unwrap_or_default(),
        sec_type: c.sec_type.unwrap_or_default(),
        expiry,
        strike: c.strike.unwrap_or(0.0),
        right: c.right.unwrap_or_default(),
        multiplier: c.multiplier.unwrap_or(0.0),
        exchange: c.exchange.unwrap_or_default(),
        currency: c.currency.unwrap_or_default(),
        local_symbol: c.local_symbol.unwrap_or_default(),
        trading_class: c.trading_class.unwrap_or_default(),
        include_expired: c.include_expired.unwrap_or(false),
    }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn nonzero(x: f64) -> Option<f64> {
    (x != 0.0).then_some(x)
}

fn contract_out(info: &ContractInfo) -> (proto::Contract, proto::ContractDetails) {
    let expiry = info.expiry.map(|d| d.format("%Y%m%d").to_string());
    let c = proto::Contract {
        con_id: i32::try_from(info.con_id).ok(),
        symbol: some(&info.symbol),
        sec_type: some(&info.sec_type),
        last_trade_date_or_contract_month: expiry.clone(),
        strike: nonzero(info.strike),
        right: info.right.map(|r| r.as_str().to_string()),
        multiplier: nonzero(info.multiplier),
        exchange: some(&info.exchange),
        primary_exch: some(&info.primary_exchange),
        currency: some(&info.currency),
        local_symbol: some(&info.local_symbol),
        trading_class: some(&info.trading_class),
        last_trade_date: expiry.clone(),
        ..Default::default()
    };
    let d = proto::ContractDetails {
        market_name: some(&info.trading_class),
        min_tick: Some(format!("{}", info.min_tick)),
        valid_exchanges: Some("SMART,CBOE,AMEX,ISE,PHLX,BOX".to_string()),
        under_con_id: (info.under_con_id != 0)
            .then(|| i32::try_from(info.under_con_id).ok())
            .flatten(),
        long_name: some(&info.long_name),
        contract_month: info.expiry.map(|d| d.format("%Y%m").to_string()),
        time_zone_id: Some("US/Eastern".to_string()),
        trading_hours: some(&info.trading_hours),
        liquid_hours: some(&info.liquid_hours),
        under_symbol: some(&info.under_symbol),
        under_sec_type: some(&info.under_sec_type),
        real_expiration_date: expiry,
        stock_type: (info.sec_type == "STK").then(|| "COMMON".to_string()),
    };
    (c, d)
}

fn body(wire_id: i32, msg: &impl Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + msg.encoded_len());
    out.extend_from_slice(&wire_id.to_be_bytes());
    // Encoding into a Vec cannot run out of capacity.
    let _ = msg.encode(&mut out);
    out
}

impl Codec for ProtobufCodec {
    fn decode(&self, frame: &[u8]) -> Result<Request, DecodeError> {
        let Some((id, payload)) = frame.split_first_chunk::<4>() else {
            return Err(DecodeError {
                wire_id: None,
                why: format!("body of {} bytes cannot hold a message id", frame.len()),
            });
        };
        let wire_id = i32::from_be_bytes(*id);
        use wire_in::*;
        let req = match wire_id {
            START_API => {
                let m = proto::StartApiRequest::decode(payload).map_err(|e| bad(wire_id, e))?;
                Request::StartApi {
                    client_id: m.client_id.unwrap_or(0),
                }
            }
            HISTORICAL_DATA => {
                let m =
                    proto::HistoricalDataRequest::decode(payload).map_err(|e| bad(wire_id, e))?;
                Request::Historical(HistRequest {
                    req_id: m.req_id.unwrap_or(0),
                    contract: query(m.contract),
                    end: m.end_date_time.unwrap_or_default(),
                    bar_size: m.bar_size_setting.unwrap_or_default(),
                    duration: m.duration.unwrap_or_default(),
                    use_rth: m.use_rth.unwrap_or(false),
                    what: m.what_to_show.unwrap_or_default(),
                    format_date: m.format_date.unwrap_or(1),
                    keep_up_to_date: m.keep_up_to_date.unwrap_or(false),
                })
            }
            CANCEL_HISTORICAL_DATA | CANCEL_CONTRACT_DATA | CANCEL_HEAD_TIMESTAMP => {
                let m = proto::ReqIdOnly::decode(payload).map_err(|e| bad(wire_id, e))?;
                let req_id = m.req_id.unwrap_or(0);
                match wire_id {
                    CANCEL_HISTORICAL_DATA => Request::CancelHistorical { req_id },
                    CANCEL_CONTRACT_DATA => Request::CancelContractDetails { req_id },
                    _ => Request::CancelHeadTimestamp { req_id },
                }
            }
            SEC_DEF_OPT_PARAMS => {
                let m =
                    proto::SecDefOptParamsRequest::decode(payload).map_err(|e| bad(wire_id, e))?;
                Request::SecDefOptParams {
                    req_id: m.req_id.unwrap_or(0),
                    symbol: m.underlying_symbol.unwrap_or_default(),
                    sec_type: m.underlying_sec_type.unwrap_or_default(),
                    con_id: i64::from(m.underlying_con_id.unwrap_or(0)),
                }
            }
            CONTRACT_DATA => {
                let m = proto::ContractDataRequest::decode(payload).map_err(|e| bad(wire_id, e))?;
                Request::ContractDetails {
                    req_id: m.req_id.unwrap_or(0),
                    contract: query(m.contract),
                }
            }
            HEAD_TIMESTAMP => {
                let m =
                    proto::HeadTimestampRequest::decode(payload).map_err(|e| bad(wire_id, e))?;
                Request::HeadTimestamp {
                    req_id: m.req_id.unwrap_or(0),
                    contract: query(m.contract),
                    use_rth: m.use_rth.unwrap_or(false),
                    what: m.what_to_show.unwrap_or_default(),
                    format_date: m.format_date.unwrap_or(2),
                }
            }
            CURRENT_TIME => Request::CurrentTime,
            // Protobuf ids are message id + 200; anything else is not a protobuf frame.
            id if (201..=400).contains(&id) => Request::Unsupported { wire_id },
            _ => return Err(bad(wire_id, "not a protobuf wire id")),
        };
        Ok(req)
    }

    fn encode(&self, reply: &Reply) -> Vec<u8> {
        use wire_out::*;
        match reply {
            Reply::NextValidId(id) => body(
                NEXT_VALID_ID,
                &proto::NextValidId {
                    order_id: Some(*id),
                },
            ),
            Reply::ManagedAccounts(a) => body(
                MANAGED_ACCOUNTS,
                &proto::ManagedAccounts {
                    accounts_list: Some(a.clone()),
                },
            ),
            Reply::Error { id, code, message } => body(
                ERROR,
                &proto::ErrorMessage {
                    id: Some(*id),
                    error_time: Some(chrono::Utc::now().timestamp_millis()),
                    error_code: Some(*code),
                    error_msg: some(message),
                    advanced_order_reject_json: None,
                },
            ),
            Reply::HistoricalData { req_id, bars, .. } => body(
                HISTORICAL_DATA,
                &proto::HistoricalData {
                    req_id: Some(*req_id),
                    historical_data_bars: bars
                        .iter()
                        .map(|b| proto::HistoricalDataBar {
                            date: Some(b.date.clone()),
                            open: Some(b.open),
                            high: Some(b.high),
                            low: Some(b.low),
                            close: Some(b.close),
                            volume: Some(b.volume.clone()),
                            wap: Some(b.wap.clone()),
                            bar_count: (b.count != -1).then_some(b.count),
                        })
                        .collect(),
                },
            ),
            Reply::HistoricalDataEnd { req_id, start, end } => body(
                HISTORICAL_DATA_END,
                &proto::HistoricalDataEnd {
                    req_id: Some(*req_id),
                    start_date_str: Some(start.clone()),
                    end_date_str: Some(end.clone()),
                },
            ),
            Reply::SecDefOptParameter {
                req_id,
                exchange,
                underlying_con_id,
                trading_class,
                multiplier,
                expirations,
                strikes,
            } => body(
                SEC_DEF_OPT_PARAMETER,
                &proto::SecDefOptParameter {
                    req_id: Some(*req_id),
                    exchange: some(exchange),
                    underlying_con_id: i32::try_from(*underlying_con_id).ok(),
                    trading_class: some(trading_class),
                    multiplier: some(multiplier),
                    expirations: expirations.clone(),
                    strikes: strikes.clone(),
                },
            ),
            Reply::SecDefOptParameterEnd(req_id) => body(
                SEC_DEF_OPT_PARAMETER_END,
                &proto::ReqIdOnly {
                    req_id: Some(*req_id),
                },
            ),
            Reply::ContractData { req_id, info } => {
                let (c, d) = contract_out(info);
                body(
                    CONTRACT_DATA,
                    &proto::ContractData {
                        req_id: Some(*req_id),
                        contract: Some(c),
                        contract_details: Some(d),
                    },
                )
            }
            Reply::ContractDataEnd(req_id) => body(
                CONTRACT_DATA_END,
                &proto::ReqIdOnly {
                    req_id: Some(*req_id),
                },
            ),
            Reply::HeadTimestamp { req_id, epoch, .. } => body(
                HEAD_TIMESTAMP,
                &proto::HeadTimestamp {
                    req_id: Some(*req_id),
                    head_timestamp: Some(epoch.to_string()),
                },
            ),
            Reply::CurrentTime(t) => body(
                CURRENT_TIME,
                &proto::CurrentTime {
                    current_time: Some(*t),
                },
            ),
            // `ibapi`'s requests for these are not decoded (they arrive as Unsupported), so
            // their End messages are never due on a protobuf connection.
            Reply::ListingEnd(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics() {
        let c = ProtobufCodec;
        for body in [
            &b""[..],
            &b"\x00\x00"[..],
            &b"\x00\x00\x00\xdc\xff\xff\xff"[..],
            &b"\x00\x00\x00\xdc\x0a\x05abc"[..],
            &b"\x7f\xff\xff\xff"[..],
        ] {
            let _ = c.decode(body);
        }
    }

    #[test]
    fn start_api_round_trip() {
        let m = proto::StartApiRequest {
            client_id: Some(7),
            optional_capabilities: None,
        };
        let b = body(wire_in::START_API, &m);
        assert_eq!(
            ProtobufCodec.decode(&b).unwrap(),
            Request::StartApi { client_id: 7 }
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    proptest::proptest! {
        /// Arbitrary bodies, with a plausible wire id or not, decode or fail: never panic.
        #[test]
        fn decode_never_panics(id in 195i32..320, tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut body = id.to_be_bytes().to_vec();
            body.extend_from_slice(&tail);
            let _ = ProtobufCodec.decode(&body);
            let _ = ProtobufCodec.decode(&tail);
        }
    }
}
