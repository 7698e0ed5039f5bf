//! The connection to IB Gateway (or the simulated gateway): one shared `ibapi` async client,
//! replaced as a whole on reconnect, with every request bounded by a timeout.
//!
//! `ibapi`'s own reconnect is switched off (`max_reconnect_attempts(0)`): the executor decides
//! when and how long to reconnect (a weekend gateway restarts nightly, so that can be hours), and
//! it must know which requests were lost with a connection so it can put them back in the queue.
//!
//! This module holds the connection and the bar requests; `reference` the contract and chain
//! look-ups over it, `convert` the translation to and from `ibapi`'s types.

use super::outcome::{classify_error, Failure, OutcomeClass};
use super::session::budget::MessageBudget;
use crate::bars::{BarSize, Duration as IbDuration};
use crate::cache::Right;
use crate::cache::UnderlyingSecType;
use chrono::{DateTime, NaiveDate, Utc};
use ibapi::market_data::historical::WhatToShow;
use ibapi::market_data::TradingHours;
use ibapi::{Client, RateLimiter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, RwLock};

mod convert;
mod reference;

pub use convert::ib_bar_size;
use convert::{contract_for, convert_bar, ib_duration};
pub use reference::{ChainParams, QualifiedStock};

/// How to reach the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Host name or IP (IB Gateway runs on the same machine in most setups).
    pub host: String,
    /// Port: 4001 live / 4002 paper for IB Gateway, 7496/7497 for TWS.
    pub port: u16,
    /// API client id; must differ from every other connected client's.
    pub client_id: i32,
    /// Bound on the TCP connect plus handshake (`ibapi`'s connect has none of its own).
    pub connect_timeout: Duration,
    /// Bound on one historical request; on expiry it is cancelled and classed TIMEOUT.
    pub request_timeout: Duration,
    /// Socket messages per second sent to the gateway (IB allows 50; 45 leaves headroom).
    pub messages_per_second: u32,
    /// The window IB counts messages in: one second, divided by the time scale against a
    /// compressed simulator (historical requests keep `messages_per_second` x this window in
    /// any one window, see [`crate::ib::session::budget`]).
    pub message_window: Duration,
}

impl GatewayConfig {
    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect or handshake failed.
    #[error("cannot connect to IB Gateway at {address} (client id {client_id}): {source}. Is IB Gateway/TWS running with the API enabled on that port? It must offer server version 213 or later (IB Gateway 10.40+) for the protobuf protocol of ibapi 5.x")]
    Failed {
        /// host:port.
        address: String,
        /// Client id used.
        client_id: i32,
        /// What ibapi said.
        #[source]
        source: ibapi::Error,
    },
    /// No answer within the connect timeout.
    #[error("no handshake from IB Gateway at {address} within {timeout:?}; it must offer server version 213 or later (IB Gateway 10.40+) for ibapi 5.x")]
    Timeout {
        /// host:port.
        address: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Another client uses the same id.
    #[error("client id {client_id} is already in use at {address}; pass another with --client-id")]
    ClientIdInUse {
        /// host:port.
        address: String,
        /// Client id used.
        client_id: i32,
    },
    /// Stopped (Ctrl-C, SIGTERM) while waiting for the gateway.
    #[error("interrupted while waiting for the gateway")]
    Interrupted,
}

impl ConnectError {
    /// True when retrying cannot help: the handshake proved a server version too old for
    /// `ibapi`, or the client id is taken (or the user stopped the wait).
    pub fn is_permanent(&self) -> bool {
        match self {
            ConnectError::ClientIdInUse { .. } | ConnectError::Interrupted => true,
            ConnectError::Failed { source, .. } => {
                matches!(source, ibapi::Error::ServerVersion(..))
            }
            ConnectError::Timeout { .. } => false,
        }
    }

    /// The cause alone, for "retrying" lines (the full message carries setup advice).
    pub fn short(&self) -> String {
        match self {
            ConnectError::Failed { source, .. } => source.to_string(),
            ConnectError::Timeout { timeout, .. } => format!("no handshake within {timeout:?}"),
            other => other.to_string(),
        }
    }
}

/// A fully specified option contract to request bars for.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSpec {
    /// Underlying symbol.
    pub symbol: String,
    /// conId (what IB keys on).
    pub con_id: i64,
    /// Local symbol.
    pub local_symbol: String,
    /// Trading class.
    pub trading_class: String,
    /// Expiry.
    pub expiry: NaiveDate,
    /// Strike.
    pub strike: f64,
    /// Right.
    pub right: Right,
    /// Multiplier.
    pub multiplier: f64,
    /// Exchange (SMART).
    pub exchange: String,
    /// Currency.
    pub currency: String,
}

/// One historical-data request.
#[derive(Debug, Clone, PartialEq)]
pub struct HistRequest {
    /// The contract: an option, or the underlying stock when `option` is `None`.
    pub option: Option<OptionSpec>,
    /// Underlying symbol (used when `option` is `None`).
    pub stock_symbol: String,
    /// The underlying's security type (used when `option` is `None`): a stock, or an index
    /// asked for as `IND` on its exchange.
    pub underlying_sec_type: UnderlyingSecType,
    /// `TRADES`, `MIDPOINT`, ...
    pub what: String,
    /// Bar size.
    pub bar_size: BarSize,
    /// Duration back from `end`.
    pub duration: IbDuration,
    /// Window end (exclusive); `None` asks for "now".
    pub end: Option<DateTime<Utc>>,
    /// Regular trading hours only.
    pub use_rth: bool,
}

/// One bar as received, timestamp normalised to UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchedBar {
    /// Bar start (UTC). Daily bars carry only a date: their `ts` is midnight New York of it.
    pub ts: DateTime<Utc>,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: f64,
    /// Volume-weighted average price.
    pub wap: f64,
    /// Number of trades (-1 when IB does not say).
    pub count: i32,
}

/// The shared connection. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Gateway {
    cfg: GatewayConfig,
    client: RwLock<Arc<Client>>,
    generation: AtomicU64,
    reconnect_lock: Mutex<()>,
    limiter: RateLimiter,
    /// Historical requests' share of the message rate, in the gateway's time.
    budget: MessageBudget,
    /// True while the gateway says its historical data farm is broken (2105 until 2106/2158).
    hmds_down: tokio::sync::watch::Sender<bool>,
}

impl Gateway {
    /// Connect once, bounded by the connect timeout.
    pub async fn connect(cfg: GatewayConfig) -> Result<Gateway, ConnectError> {
        let limiter = RateLimiter::per_second(cfg.messages_per_second.max(1));
        let client = connect_client(&cfg, &limiter).await?;
        let hmds_down = tokio::sync::watch::channel(false).0;
        watch_notices(&client, &hmds_down);
        let budget = MessageBudget::per_window(
            (f64::from(cfg.messages_per_second) * cfg.message_window.as_secs_f64())
                .round()
                .clamp(1.0, f64::from(u32::MAX)) as u32,
            cfg.message_window,
        );
        Ok(Gateway {
            cfg,
            client: RwLock::new(Arc::new(client)),
            generation: AtomicU64::new(0),
            reconnect_lock: Mutex::new(()),
            limiter,
            budget,
            hmds_down,
        })
    }

    /// Follows the HMDS farm notices: true while the historical data farm is broken.
    pub fn hmds_down(&self) -> tokio::sync::watch::Receiver<bool> {
        self.hmds_down.subscribe()
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// The current client and its generation (incremented on every reconnect).
    pub async fn current(&self) -> (u64, Arc<Client>) {
        let c = self.client.read().await.clone();
        (self.generation.load(Ordering::SeqCst), c)
    }

    /// Generation of the current connection.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Replace the connection if it is still the one of `seen_generation` (so that many tasks
    /// seeing the same drop reconnect once). One attempt, bounded by the connect timeout.
    pub async fn reconnect(&self, seen_generation: u64) -> Result<(), ConnectError> {
        let _guard = self.reconnect_lock.lock().await;
        if self.generation.load(Ordering::SeqCst) != seen_generation {
            return Ok(());
        }
        let client = connect_client(&self.cfg, &self.limiter).await?;
        // A new session starts with the farms up (the gateway says so if not).
        self.hmds_down.send_replace(false);
        watch_notices(&client, &self.hmds_down);
        *self.client.write().await = Arc::new(client);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Send one historical request and wait for its bars, at most the request timeout.
    /// `expired` is passed through to the classification of error 200.
    pub async fn historical(
        &self,
        req: &HistRequest,
        expired: bool,
    ) -> Result<Vec<FetchedBar>, Failure> {
        let (_, client) = self.current().await;
        let contract = contract_for(req);
        let bar = ib_bar_size(req.bar_size).ok_or_else(|| {
            Failure::new(
                OutcomeClass::InvalidRequest,
                format!("bar size {} not supported by ibapi", req.bar_size),
            )
        })?;
        let what: WhatToShow = req.what.parse().map_err(|_| {
            Failure::new(
                OutcomeClass::InvalidRequest,
                format!("unknown what-to-show {}", req.what),
            )
        })?;
        let mut builder = client
            .historical_data(&contract, bar)
            .what_to_show(what)
            .trading_hours(if req.use_rth {
                TradingHours::Regular
            } else {
                TradingHours::Extended
            })
            .duration(ib_duration(req.duration));
        if let Some(end) = req.end {
            let end = time::OffsetDateTime::from_unix_timestamp(end.timestamp())
                .map_err(|e| Failure::new(OutcomeClass::InvalidRequest, e.to_string()))?;
            builder = builder.ending(end);
        }
        self.budget.acquire().await;
        match tokio::time::timeout(self.cfg.request_timeout, builder.fetch()).await {
            Err(_) => {
                // ibapi cancels the dropped request: one more message.
                self.budget.charge();
                Err(Failure::new(
                    OutcomeClass::Timeout,
                    format!(
                        "no answer within {:?}; request cancelled",
                        self.cfg.request_timeout
                    ),
                ))
            }
            Ok(Err(e)) => Err(classify_error(&e, expired)),
            Ok(Ok(data)) => Ok(data.bars.iter().map(convert_bar).collect()),
        }
    }
}

/// Log the notices the gateway sends outside any request (connectivity, farms) and follow the
/// HMDS farm: 2105 (broken) sets `hmds_down`, 2106 (HMDS OK) and 2158 (sec-def OK) clear it.
/// 2107 ("inactive but should be available upon demand") is what an idle gateway says at
/// connect time: the farm wakes on the next request, so it does not pause anything.
fn watch_notices(client: &Client, hmds_down: &tokio::sync::watch::Sender<bool>) {
    let Ok(mut stream) = client.notice_stream() else {
        return;
    };
    let hmds_down = hmds_down.clone();
    tokio::spawn(async move {
        while let Some(n) = stream.next().await {
            match n.code {
                2105 => {
                    tracing::warn!("farm notice {}: {}", n.code, n.message);
                    hmds_down.send_replace(true);
                }
                2106 | 2158 => {
                    tracing::info!("farm notice {}: {}", n.code, n.message);
                    hmds_down.send_replace(false);
                }
                2104 | 2107 | 2108 | 2119 => {
                    tracing::info!("farm notice {}: {}", n.code, n.message)
                }
                1100 | 1101 | 1102 | 1300 => {
                    tracing::warn!("connectivity notice {}: {}", n.code, n.message)
                }
                _ => tracing::debug!("notice {}: {}", n.code, n.message),
            }
        }
    });
}

async fn connect_client(
    cfg: &GatewayConfig,
    limiter: &RateLimiter,
) -> Result<Client, ConnectError> {
    let address = cfg.address();
    let fut = Client::builder()
        .address(address.clone())
        .client_id(cfg.client_id)
        .tcp_no_delay(true)
        .max_reconnect_attempts(0)
        .rate_limiter(limiter.clone())
        .connect();
    match tokio::time::timeout(cfg.connect_timeout, fut).await {
        Err(_) => Err(ConnectError::Timeout {
            address,
            timeout: cfg.connect_timeout,
        }),
        Ok(Err(ibapi::Error::ClientIdInUse { client_id })) => {
            Err(ConnectError::ClientIdInUse { address, client_id })
        }
        Ok(Err(source)) => Err(ConnectError::Failed {
            address,
            client_id: cfg.client_id,
            source,
        }),
        Ok(Ok(c)) => {
            tracing::info!(
                "connected to {address} (client id {}, server version {})",
                cfg.client_id,
                c.server_version()
            );
            Ok(c)
        }
    }
}
