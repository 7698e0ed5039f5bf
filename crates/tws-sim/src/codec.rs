//! Framing and the per-connection codec seam.
//!
//! Every TWS API frame after the `API\0` prefix is `u32 BE length` + body. What a body means
//! depends on the codec the connection negotiated in its handshake: `ibapi` 3.x+ asks for
//! versions 213..226 and speaks protobuf; older Python clients (ib_insync) ask for 157..176 and
//! speak the NUL-separated text format. The connection logic works on the decoded
//! [`Request`]/[`Reply`] types below and asks its [`Codec`] for the bytes
//! ([`super::pbcodec`] or [`super::textcodec`]), so both client families share one market,
//! one service model, one set of pacing rules and faults.

use chrono::NaiveDate;
use ib_model::Right;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest frame body accepted (16 MiB). A client announcing a longer frame is disconnected
/// before anything is allocated: a hostile length must not exhaust memory.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Lowest server version the protobuf codec serves (`ibapi`'s floor, PROTOBUF_REST_MESSAGES_3).
pub const MIN_PROTOBUF_VERSION: u32 = 213;
/// Highest server version the simulator announces (`ibapi` 5.5.0's ceiling).
pub const MAX_SERVER_VERSION: u32 = 226;
/// Highest text-protocol version served: 182 adds a contract-details field `ib_insync` 0.9.86
/// cannot parse, and nothing between 176 and 178 changes the messages served here.
pub const MAX_TEXT_VERSION: u32 = 178;
/// Lowest text-protocol version served (`ib_insync`'s and `ib_async`'s floor): older layouts
/// (a version field in HistoricalData, `hasGaps` per bar) are not implemented, so such
/// clients are refused at the handshake rather than sent messages they would misread.
pub const MIN_TEXT_VERSION: u32 = 157;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the socket (cleanly, between frames).
    #[error("connection closed")]
    Closed,
    /// The announced length is over [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte cap")]
    TooLong(usize),
    /// Any other socket error, including EOF inside a frame.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Read one length-prefixed frame body.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Prefix a body with its `u32 BE` length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Parse the handshake's version range, e.g. `v213..226` or `v157..176 +PACEAPI`.
/// Only the part up to the first space counts; `None` when it is not a range.
pub fn parse_version_range(text: &str) -> Option<(u32, u32)> {
    let head = text.split(' ').next()?.trim();
    let head = head.strip_prefix('v')?;
    let (lo, hi) = head.split_once("..")?;
    let lo: u32 = lo.parse().ok()?;
    let hi: u32 = hi.parse().ok()?;
    (lo <= hi).then_some((lo, hi))
}

/// The codec a handshake's version range selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    /// Protobuf bodies, server version the returned value.
    Protobuf(u32),
    /// The NUL-separated text protocol (Python clients), server version the returned value.
    Text(u32),
}

/// Choose the codec and server version for a client's range: the highest version both sides
/// support. `None` when no version is shared.
pub fn negotiate(lo: u32, hi: u32) -> Option<CodecKind> {
    if hi >= MIN_PROTOBUF_VERSION && lo <= MAX_SERVER_VERSION {
        Some(CodecKind::Protobuf(hi.min(MAX_SERVER_VERSION)))
    } else if (MIN_TEXT_VERSION..MIN_PROTOBUF_VERSION).contains(&hi) {
        Some(CodecKind::Text(hi.min(MAX_TEXT_VERSION)))
    } else {
        None
    }
}

/// The account and order lists `ib_insync`'s `IB.connect` requests and waits for. The
/// simulator has no account, so each is answered with its End message and no rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// reqPositions -> positionEnd.
    Positions,
    /// reqOpenOrders / reqAutoOpenOrders / reqAllOpenOrders -> openOrderEnd.
    OpenOrders,
    /// reqCompletedOrders -> completedOrdersEnd.
    CompletedOrders,
    /// reqAccountUpdates(subscribe) -> accountDownloadEnd for the account.
    AccountUpdates {
        /// Account code as requested.
        account: String,
    },
    /// reqAccountUpdatesMulti -> accountUpdateMultiEnd.
    AccountUpdatesMulti {
        /// Request id.
        req_id: i32,
    },
    /// reqExecutions -> execDetailsEnd.
    Executions {
        /// Request id.
        req_id: i32,
    },
}

/// A contract as a request describes it (any field may be empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractQuery {
    /// conId, 0 when absent.
    pub con_id: i64,
    /// Symbol.
    pub symbol: String,
    /// `STK`, `OPT`, ...
    pub sec_type: String,
    /// `YYYYMMDD` or `YYYYMM` (tag 4 or tag 21).
    pub expiry: String,
    /// Strike, 0 when absent.
    pub strike: f64,
    /// `C`, `P`, `CALL`, `PUT` or empty.
    pub right: String,
    /// Multiplier, 0 when absent.
    pub multiplier: f64,
    /// Exchange.
    pub exchange: String,
    /// Currency.
    pub currency: String,
    /// Local symbol.
    pub local_symbol: String,
    /// Trading class.
    pub trading_class: String,
    /// includeExpired flag.
    pub include_expired: bool,
}

/// A historical-data request, fields as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct HistRequest {
    /// Request id.
    pub req_id: i32,
    /// Contract.
    pub contract: ContractQuery,
    /// End date-time text (empty = now).
    pub end: String,
    /// Bar size text, e.g. `8 hours`.
    pub bar_size: String,
    /// Duration text, e.g. `6 M`.
    pub duration: String,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// `TRADES`, `MIDPOINT`, `BID_ASK`, ...
    pub what: String,
    /// 1 = `YYYYMMDD HH:MM:SS` strings, 2 = epoch seconds.
    pub format_date: i32,
    /// Streaming updates requested (not supported: answered like a one-shot).
    pub keep_up_to_date: bool,
}

/// A decoded client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// startApi.
    StartApi {
        /// Client id.
        client_id: i32,
    },
    /// reqHistoricalData.
    Historical(HistRequest),
    /// cancelHistoricalData.
    CancelHistorical {
        /// Request id.
        req_id: i32,
    },
    /// reqSecDefOptParams.
    SecDefOptParams {
        /// Request id.
        req_id: i32,
        /// Underlying symbol.
        symbol: String,
        /// Underlying sec type.
        sec_type: String,
        /// Underlying conId.
        con_id: i64,
    },
    /// reqContractDetails.
    ContractDetails {
        /// Request id.
        req_id: i32,
        /// Contract description.
        contract: ContractQuery,
    },
    /// cancelContractData (answered requests are never pending: ignored).
    CancelContractDetails {
        /// Request id.
        req_id: i32,
    },
    /// reqHeadTimeStamp.
    HeadTimestamp {
        /// Request id.
        req_id: i32,
        /// Contract.
        contract: ContractQuery,
        /// RTH only.
        use_rth: bool,
        /// What to show.
        what: String,
        /// 1 = date-time text, 2 = epoch seconds.
        format_date: i32,
    },
    /// cancelHeadTimestamp (ignored: answers are immediate).
    CancelHeadTimestamp {
        /// Request id.
        req_id: i32,
    },
    /// reqCurrentTime.
    CurrentTime,
    /// An account or order list, answered empty.
    Listing(Listing),
    /// A well-formed message of a kind the simulator does not serve.
    Unsupported {
        /// Wire id.
        wire_id: i32,
    },
}

impl Request {
    /// Short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::StartApi { .. } => "start_api",
            Request::Historical(_) => "historical_data",
            Request::CancelHistorical { .. } => "cancel_historical_data",
            Request::SecDefOptParams { .. } => "sec_def_opt_params",
            Request::ContractDetails { .. } => "contract_details",
            Request::CancelContractDetails { .. } => "cancel_contract_details",
            Request::HeadTimestamp { .. } => "head_timestamp",
            Request::CancelHeadTimestamp { .. } => "cancel_head_timestamp",
            Request::CurrentTime => "current_time",
            Request::Listing(_) => "listing",
            Request::Unsupported { .. } => "unsupported",
        }
    }
}

/// A contract as the gateway describes it in ContractData.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractInfo {
    /// conId.
    pub con_id: i64,
    /// Symbol.
    pub symbol: String,
    /// `STK` or `OPT`.
    pub sec_type: String,
    /// Expiry for options.
    pub expiry: Option<NaiveDate>,
    /// Strike (0 for stocks).
    pub strike: f64,
    /// Right for options.
    pub right: Option<Right>,
    /// Multiplier (0 for stocks).
    pub multiplier: f64,
    /// Exchange.
    pub exchange: String,
    /// Primary exchange.
    pub primary_exchange: String,
    /// Currency.
    pub currency: String,
    /// Local symbol.
    pub local_symbol: String,
    /// Trading class.
    pub trading_class: String,
    /// Long name.
    pub long_name: String,
    /// Underlying conId (options).
    pub under_con_id: i64,
    /// Underlying symbol (options).
    pub under_symbol: String,
    /// Underlying sec type (options).
    pub under_sec_type: String,
    /// Minimum tick.
    pub min_tick: f64,
    /// IB's `liquidHours` (regular hours), see [`super::hours`].
    pub liquid_hours: String,
    /// IB's `tradingHours` (all hours).
    pub trading_hours: String,
}

/// One bar as sent on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireBar {
    /// Epoch seconds, `YYYYMMDD` or `YYYYMMDD HH:MM:SS` per format and bar size.
    pub date: String,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume (decimal string).
    pub volume: String,
    /// WAP (decimal string).
    pub wap: String,
    /// Trade count (-1 when unknown).
    pub count: i32,
}

/// A message the gateway sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// NextValidId.
    NextValidId(i32),
    /// ManagedAccounts.
    ManagedAccounts(String),
    /// Error or notice (`id` -1 for none).
    Error {
        /// Request id or -1.
        id: i32,
        /// Error code.
        code: i32,
        /// Text.
        message: String,
    },
    /// All bars of a historical request. The text protocol carries the window in this message
    /// (below server version 196 it has no HistoricalDataEnd), protobuf in the End message.
    HistoricalData {
        /// Request id.
        req_id: i32,
        /// Window start text.
        start: String,
        /// Window end text.
        end: String,
        /// Bars.
        bars: Vec<WireBar>,
    },
    /// End of a historical request, with its window.
    HistoricalDataEnd {
        /// Request id.
        req_id: i32,
        /// Window start text.
        start: String,
        /// Window end text.
        end: String,
    },
    /// One exchange x trading class of an option chain.
    SecDefOptParameter {
        /// Request id.
        req_id: i32,
        /// Exchange.
        exchange: String,
        /// Underlying conId.
        underlying_con_id: i64,
        /// Trading class.
        trading_class: String,
        /// Multiplier text.
        multiplier: String,
        /// Expirations `YYYYMMDD`.
        expirations: Vec<String>,
        /// Strikes.
        strikes: Vec<f64>,
    },
    /// End of the option chain.
    SecDefOptParameterEnd(i32),
    /// One contract of a contract-details answer.
    ContractData {
        /// Request id.
        req_id: i32,
        /// The contract (boxed: with its hours strings it is the largest reply by far).
        info: Box<ContractInfo>,
    },
    /// End of contract details.
    ContractDataEnd(i32),
    /// Head timestamp (epoch seconds).
    HeadTimestamp {
        /// Request id.
        req_id: i32,
        /// Epoch seconds.
        epoch: i64,
        /// The request's formatDate (the text codec honours it; protobuf always sends epoch).
        format_date: i32,
    },
    /// Current time (epoch seconds).
    CurrentTime(i64),
    /// The End message of an (empty) account or order list.
    ListingEnd(Listing),
}

/// A frame body that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message (wire id {wire_id:?}): {why}")]
pub struct DecodeError {
    /// The wire id when one could be read.
    pub wire_id: Option<i32>,
    /// What was wrong.
    pub why: String,
}

/// Turns frame bodies into [`Request`]s and [`Reply`]s into frame bodies, for one connection.
pub trait Codec: Send + Sync {
    /// Decode one frame body.
    fn decode(&self, body: &[u8]) -> Result<Request, DecodeError>;
    /// Encode one reply as a frame body (without the length prefix). An empty body means the
    /// protocol has no such message (e.g. HistoricalDataEnd in text below version 196): nothing
    /// is sent.
    fn encode(&self, reply: &Reply) -> Vec<u8>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        assert_eq!(parse_version_range("v213..226"), Some((213, 226)));
        assert_eq!(parse_version_range("v157..176 +PACEAPI"), Some((157, 176)));
        assert_eq!(parse_version_range("213..226"), None);
        assert_eq!(parse_version_range("v300..200"), None);
        assert_eq!(negotiate(213, 226), Some(CodecKind::Protobuf(226)));
        assert_eq!(negotiate(213, 230), Some(CodecKind::Protobuf(226)));
        assert_eq!(negotiate(157, 176), Some(CodecKind::Text(176)));
        assert_eq!(negotiate(157, 190), Some(CodecKind::Text(178)));
        assert_eq!(negotiate(100, 150), None);
        assert_eq!(negotiate(227, 240), None);
    }
}
