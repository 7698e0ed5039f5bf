//! One client connection: handshake, startApi, then requests until either side closes.
//!
//! Replies go through an unbounded channel to a writer task, so slow historical requests run as
//! their own tasks and answer whenever they finish. A request's answer and a cancel of it are
//! decided under one lock, so a cancelled request never also sends bars. Nothing a client
//! sends can panic the server: malformed frames are counted and logged, and the connection
//! goes on.

use super::codec::{self, Codec, CodecKind, FrameError, Reply, Request};
use super::faults::Event;
use super::lookup;
use super::pbcodec::ProtobufCodec;
use super::textcodec::TextCodec;
use super::window::HmdsError;
use crate::shared::Shared;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Account list sent in ManagedAccounts.
pub const ACCOUNT: &str = "DU1234567";

/// An open historical request: how to abort it and where it is logged.
struct OpenReq {
    abort: AbortHandle,
    log_idx: usize,
}

/// What request tasks need to answer.
struct Out {
    sh: Arc<Shared>,
    codec: Arc<dyn Codec>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    open: Mutex<HashMap<i32, OpenReq>>,
}

impl Out {
    fn send(&self, reply: &Reply) {
        let body = self.codec.encode(reply);
        // An empty body: the negotiated protocol has no such message.
        if !body.is_empty() {
            let _ = self.tx.send(codec::frame(&body));
        }
    }

    fn error(&self, id: i32, code: i32, message: impl Into<String>) {
        self.sh.counters.error(code);
        self.send(&Reply::Error {
            id,
            code,
            message: message.into(),
        });
    }
}

/// Decrements the in-flight count however the request task ends (abort included).
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.counters.hist_finished();
    }
}

/// Serve one accepted socket to the end; counts the connection and its disconnect cause.
pub async fn serve(sh: Arc<Shared>, sock: TcpStream, peer: SocketAddr) {
    sh.counters.connection_opened();
    let cause = run(&sh, sock).await;
    tracing::debug!(%peer, cause, "connection closed");
    sh.counters.connection_closed(cause);
}

async fn handshake(
    sh: &Shared,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
) -> Result<CodecKind, &'static str> {
    let mut prefix = [0u8; 4];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, rd.read_exact(&mut prefix)).await {
        Ok(Ok(_)) if &prefix == b"API\0" => {}
        Ok(Ok(_)) => {
            sh.counters.malformed();
            return Err("bad-handshake");
        }
        Ok(Err(_)) => return Err("peer-closed"),
        Err(_) => return Err("handshake-timeout"),
    }
    let body = match tokio::time::timeout(HANDSHAKE_TIMEOUT, codec::read_frame(rd)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return Err("bad-handshake"),
        Err(_) => return Err("handshake-timeout"),
    };
    let text = String::from_utf8_lossy(&body);
    let Some((lo, hi)) = codec::parse_version_range(&text) else {
        sh.counters.malformed();
        return Err("bad-handshake");
    };
    codec::negotiate(lo, hi).ok_or("no-common-version")
}

async fn run(sh: &Arc<Shared>, sock: TcpStream) -> &'static str {
    let (mut rd, mut wr) = sock.into_split();
    let kind = match handshake(sh, &mut rd).await {
        Ok(k) => k,
        Err(cause) => return cause,
    };
    let (version, codec): (u32, Arc<dyn Codec>) = match kind {
        CodecKind::Protobuf(v) => (v, Arc::new(ProtobufCodec)),
        CodecKind::Text(v) => (v, Arc::new(TextCodec::new(v))),
    };
    tracing::debug!(?kind, "handshake");
    let now = ib_model::calendar::to_ny(sh.clock());
    let ack = format!(
        "{version}\0{} America/New_York\0",
        now.format("%Y%m%d %H:%M:%S")
    );
    if wr.write_all(&codec::frame(ack.as_bytes())).await.is_err() {
        return "io-error";
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if wr.write_all(&f).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let out = Arc::new(Out {
        sh: sh.clone(),
        codec,
        tx,
        open: Mutex::new(HashMap::new()),
    });
    let mut conn = Conn {
        out: out.clone(),
        client_id: None,
        registered: false,
        violations: VecDeque::new(),
        rate_window: VecDeque::new(),
        last_rate_error: None,
        over_rate_secs: 0,
        requests: 0,
    };
    let mut events = sh.faults.events.subscribe();
    let cause = loop {
        tokio::select! {
            r = codec::read_frame(&mut rd) => match r {
                Ok(body) => {
                    if let Some(cause) = conn.handle(&body) {
                        break cause;
                    }
                }
                Err(FrameError::Closed) => break "peer-closed",
                Err(FrameError::TooLong(n)) => {
                    tracing::warn!("frame of {n} bytes over the cap: closing");
                    sh.counters.malformed();
                    break "frame-too-long";
                }
                Err(FrameError::Io(_)) => break "io-error",
            },
            ev = events.recv() => match ev {
                Ok(Event::Drop(cause)) => break cause,
                Ok(Event::Notice(code, msg)) => out.error(-1, code, msg),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break "server-stop",
            },
        }
    };
    // Abandon open requests, free the client id, flush and close.
    let open: Vec<OpenReq> = out
        .open
        .lock()
        .map(|mut g| g.drain().map(|(_, v)| v).collect())
        .unwrap_or_default();
    for o in open {
        o.abort.abort();
        sh.log_outcome(o.log_idx, "disconnected", 0);
    }
    if conn.registered {
        if let (Ok(mut ids), Some(id)) = (sh.client_ids.lock(), conn.client_id) {
            ids.remove(&id);
        }
    }
    drop(conn);
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    cause
}

struct Conn {
    out: Arc<Out>,
    client_id: Option<i32>,
    registered: bool,
    violations: VecDeque<Instant>,
    /// Arrival instants of the messages in the last rate window.
    rate_window: VecDeque<Instant>,
    last_rate_error: Option<Instant>,
    over_rate_secs: u32,
    requests: u64,
}

impl Conn {
    fn sh(&self) -> &Arc<Shared> {
        &self.out.sh
    }

    /// Handle one frame; `Some(cause)` closes the connection.
    fn handle(&mut self, body: &[u8]) -> Option<&'static str> {
        if let Some(cause) = self.rate_limit() {
            return Some(cause);
        }
        let req = match self.out.codec.decode(body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("{e}");
                self.sh().counters.malformed();
                return None;
            }
        };
        self.sh().counters.request(req.kind());
        if let Request::StartApi { client_id } = req {
            return self.start_api(client_id);
        }
        if self.client_id.is_none() {
            tracing::warn!("{} before startApi: ignored", req.kind());
            return None;
        }
        self.requests += 1;
        if let Some(n) = self.sh().scenario.faults.drop_after_requests {
            if self.requests >= n {
                return Some("fault-drop-after-requests");
            }
        }
        match req {
            Request::StartApi { .. } => None,
            Request::Historical(h) => self.historical(h),
            Request::CancelHistorical { req_id } => {
                self.cancel(req_id);
                None
            }
            Request::SecDefOptParams {
                req_id,
                symbol,
                sec_type,
                con_id,
            } => {
                self.sec_def(req_id, symbol, &sec_type, con_id);
                None
            }
            Request::ContractDetails { req_id, contract } => {
                let out = self.out.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(out.sh.hmds.contract_details_time()).await;
                    let found = lookup::find(&out.sh.market, &contract);
                    if found.is_empty() {
                        let e = HmdsError::no_security();
                        out.error(req_id, e.code, e.message);
                        return;
                    }
                    for info in found {
                        out.send(&Reply::ContractData {
                            req_id,
                            info: Box::new(info),
                        });
                    }
                    out.send(&Reply::ContractDataEnd(req_id));
                });
                None
            }
            Request::HeadTimestamp {
                req_id,
                contract,
                format_date,
                ..
            } => {
                let out = self.out.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(out.sh.hmds.sec_def_time()).await;
                    let m = &out.sh.market;
                    match lookup::resolve_con_id(m, &contract).and_then(|id| m.head_timestamp(id)) {
                        Ok(t) => out.send(&Reply::HeadTimestamp {
                            req_id,
                            epoch: t.timestamp(),
                            format_date,
                        }),
                        Err(e) => out.error(req_id, e.code, e.message),
                    }
                });
                None
            }
            Request::CurrentTime => {
                self.out
                    .send(&Reply::CurrentTime(self.sh().clock().timestamp()));
                None
            }
            Request::CancelContractDetails { .. } | Request::CancelHeadTimestamp { .. } => None,
            // No account: every list is empty, answered at once so `IB.connect` does not wait.
            Request::Listing(l) => {
                self.out.send(&Reply::ListingEnd(l));
                None
            }
            Request::Unsupported { wire_id } => {
                tracing::info!(wire_id, "unsupported request ignored");
                None
            }
        }
    }

    /// The socket message rate: more than `msg-rate-limit` messages in any sliding window of
    /// one (simulated) second (less 10 ms of tolerance for network jitter) answers error 100, at most once a
    /// second; the `msg-rate-drop-after`-th such second closes the connection. The handshake and
    /// startApi are not counted (as `ibapi`'s own limiter does not count them), so a client
    /// pacing itself at exactly the limit is never refused.
    fn rate_limit(&mut self) -> Option<&'static str> {
        let p = &self.out.sh.scenario.pacing;
        if p.msg_rate_limit == 0 || self.client_id.is_none() {
            return None;
        }
        let now = Instant::now();
        let scenario = &self.out.sh.scenario;
        let (window, second) = (scenario.wall(0.99), scenario.wall(1.0));
        while self
            .rate_window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.rate_window.pop_front();
        }
        self.rate_window.push_back(now);
        let count = self.rate_window.len();
        if count > p.msg_rate_limit as usize
            && self
                .last_rate_error
                .is_none_or(|t| now.duration_since(t) >= second)
        {
            self.last_rate_error = Some(now);
            self.over_rate_secs += 1;
            self.out.error(
                -1,
                100,
                format!(
                    "Max rate of messages per second has been exceeded:max={} rec={} ({})",
                    p.msg_rate_limit, count, self.over_rate_secs
                ),
            );
            if self.over_rate_secs >= p.msg_rate_drop_after.max(1) {
                return Some("message-rate");
            }
        }
        // Keep the window bounded whatever the rate.
        while self.rate_window.len() > p.msg_rate_limit as usize + 1 {
            self.rate_window.pop_front();
        }
        None
    }

    fn start_api(&mut self, client_id: i32) -> Option<&'static str> {
        if self.client_id.is_some() {
            return None;
        }
        let sh = self.sh().clone();
        let fresh = sh
            .client_ids
            .lock()
            .map(|mut g| g.insert(client_id))
            .unwrap_or(false);
        if !fresh {
            self.out.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
            );
            return Some("duplicate-client-id");
        }
        self.client_id = Some(client_id);
        self.registered = true;
        self.out.send(&Reply::NextValidId(1));
        self.out.send(&Reply::ManagedAccounts(ACCOUNT.into()));
        self.out
            .error(-1, 2104, "Market data farm connection is OK:usfarm");
        self.out.error(-1, 2106, super::faults::FARM_OK);
        self.out
            .error(-1, 2158, "Sec-def data farm connection is OK:secdefnj");
        if sh.faults.restored_notice_due() {
            self.out.error(-1, 1102, super::faults::RESTORED);
        }
        None
    }

    /// reqSecDefOptParams. An index's chain is answered only when asked for as `IND` with the
    /// index's conId (IB answers nothing else for it: the conId must come from qualifying the
    /// `IND` contract); a stock's by symbol, else by conId.
    fn sec_def(&self, req_id: i32, symbol: String, sec_type: &str, con_id: i64) {
        let out = self.out.clone();
        let index_request = sec_type.eq_ignore_ascii_case("IND");
        tokio::spawn(async move {
            tokio::time::sleep(out.sh.hmds.sec_def_time()).await;
            let m = &out.sh.market;
            let symbol = if m.underlying(&symbol).is_some() {
                symbol
            } else {
                m.underlying_by_id(con_id)
                    .map(|u| u.symbol.clone())
                    .unwrap_or(symbol)
            };
            let answered = m
                .underlying(&symbol)
                .is_some_and(|u| !u.is_index() || (index_request && con_id == u.con_id));
            if let Some(chain) = m.chain(&symbol).filter(|_| answered) {
                for ex in &chain.exchanges {
                    for class in &chain.classes {
                        out.send(&Reply::SecDefOptParameter {
                            req_id,
                            exchange: ex.clone(),
                            underlying_con_id: chain.underlying_con_id,
                            trading_class: class.trading_class.clone(),
                            multiplier: class.multiplier.clone(),
                            expirations: class
                                .expirations
                                .iter()
                                .map(|d| d.format("%Y%m%d").to_string())
                                .collect(),
                            strikes: class.strikes.clone(),
                        });
                    }
                }
            }
            out.send(&Reply::SecDefOptParameterEnd(req_id));
        });
    }
}

mod hist;
