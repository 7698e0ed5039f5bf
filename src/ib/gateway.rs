//! The connection to IB Gateway (or the simulated gateway): one shared `ibapi` async client,
//! replaced as a whole on reconnect, with every request bounded by a timeout.
//!
//! `ibapi`'s own reconnect is switched off (`max_reconnect_attempts(0)`): the executor decides
//! when and how long to reconnect (a weekend gateway restarts nightly, so that can be hours), and
//! it must know which requests were lost with a connection so it can put them back in the queue.

use super::outcome::{classify_error, Failure, OutcomeClass};
use crate::bars::{BarSize, Duration as IbDuration, DurationUnit};
use crate::cache::Right;
use crate::cache::UnderlyingSecType;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ibapi::contracts::{Contract, Currency, Exchange, OptionRight, SecurityType, Symbol};
use ibapi::market_data::historical::{
    BarSize as IbBarSize, BarTimestamp, Duration as IbApiDuration, WhatToShow,
};
use ibapi::market_data::TradingHours;
use ibapi::{Client, RateLimiter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, RwLock};

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
        Ok(Gateway {
            cfg,
            client: RwLock::new(Arc::new(client)),
            generation: AtomicU64::new(0),
            reconnect_lock: Mutex::new(()),
            limiter,
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
        match tokio::time::timeout(self.cfg.request_timeout, builder.fetch()).await {
            Err(_) => Err(Failure::new(
                OutcomeClass::Timeout,
                format!(
                    "no answer within {:?}; request cancelled",
                    self.cfg.request_timeout
                ),
            )),
            Ok(Err(e)) => Err(classify_error(&e, expired)),
            Ok(Ok(data)) => Ok(data.bars.iter().map(convert_bar).collect()),
        }
    }
}

/// The underlying as IB qualifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct QualifiedStock {
    /// Symbol.
    pub symbol: String,
    /// conId.
    pub con_id: i64,
    /// Currency.
    pub currency: String,
    /// Primary exchange, when IB says.
    pub primary_exchange: Option<String>,
}

/// One reqSecDefOptParams answer (one exchange x trading class).
#[derive(Debug, Clone, PartialEq)]
pub struct ChainParams {
    /// Exchange (keep `SMART`).
    pub exchange: String,
    /// Trading class.
    pub trading_class: String,
    /// Multiplier.
    pub multiplier: f64,
    /// Expirations.
    pub expirations: Vec<NaiveDate>,
    /// Strikes.
    pub strikes: Vec<f64>,
}

impl Gateway {
    /// Qualify a US stock (STK, SMART, USD): its conId and primary exchange.
    pub async fn qualify_stock(&self, symbol: &str) -> Result<QualifiedStock, Failure> {
        self.qualify_underlying(symbol, UnderlyingSecType::Stk)
            .await
    }

    /// Qualify an option underlying: a US stock (STK, SMART, USD) or an index (IND on its
    /// exchange, e.g. SPX on CBOE): its conId and (primary) exchange.
    pub async fn qualify_underlying(
        &self,
        symbol: &str,
        sec_type: UnderlyingSecType,
    ) -> Result<QualifiedStock, Failure> {
        let (_, client) = self.current().await;
        let contract = underlying_contract(symbol, sec_type);
        let details = self
            .bounded(client.contract_details(&contract), false)
            .await?;
        let d = details.into_iter().next().ok_or_else(|| {
            Failure::new(
                OutcomeClass::UnknownContract,
                format!("no contract details for {symbol}"),
            )
        })?;
        let primary = match sec_type {
            UnderlyingSecType::Stk => d.contract.primary_exchange.0.clone(),
            UnderlyingSecType::Ind => d.contract.exchange.0.clone(),
        };
        Ok(QualifiedStock {
            symbol: symbol.to_string(),
            con_id: i64::from(d.contract.contract_id),
            currency: if d.contract.currency.0.is_empty() {
                "USD".into()
            } else {
                d.contract.currency.0.clone()
            },
            primary_exchange: (!primary.is_empty()).then_some(primary),
        })
    }

    /// reqSecDefOptParams for an underlying (its conId from [`Gateway::qualify_underlying`]
    /// with the same `sec_type`): every exchange x trading class.
    pub async fn option_chain(
        &self,
        symbol: &str,
        sec_type: UnderlyingSecType,
        con_id: i64,
    ) -> Result<Vec<ChainParams>, Failure> {
        let (_, client) = self.current().await;
        let id = i32::try_from(con_id).map_err(|_| {
            Failure::new(
                OutcomeClass::InvalidRequest,
                format!("conId {con_id} out of range"),
            )
        })?;
        let timeout = self.cfg.request_timeout;
        let fut = async {
            let mut sub = client
                .option_chain(
                    symbol,
                    match sec_type {
                        UnderlyingSecType::Stk => SecurityType::Stock,
                        UnderlyingSecType::Ind => SecurityType::Index,
                    },
                    id,
                )
                .subscribe()
                .await?;
            sub.collect_to_end_within(timeout).await
        };
        let chains = self.bounded(fut, false).await?;
        Ok(chains
            .into_iter()
            .map(|c| ChainParams {
                exchange: c.exchange,
                trading_class: c.trading_class,
                multiplier: c.multiplier.parse().unwrap_or(100.0),
                expirations: c
                    .expirations
                    .iter()
                    .filter_map(|e| NaiveDate::parse_from_str(e, "%Y%m%d").ok())
                    .collect(),
                strikes: c.strikes,
            })
            .collect())
    }

    /// Qualify one fully specified option: `Ok(Some)` with its conId and local symbol, and the
    /// trading hours of its contract details, when it exists; `Ok(None)` when IB answers 200
    /// (no such contract).
    pub async fn qualify_option(
        &self,
        spec: &OptionSpec,
    ) -> Result<Option<(OptionSpec, crate::hours::RawHours)>, Failure> {
        let (_, client) = self.current().await;
        let mut contract = contract_for(&HistRequest {
            option: Some(spec.clone()),
            stock_symbol: spec.symbol.clone(),
            underlying_sec_type: UnderlyingSecType::Stk,
            what: String::new(),
            bar_size: BarSize::Hours8,
            duration: IbDuration {
                n: 1,
                unit: DurationUnit::Days,
            },
            end: None,
            use_rth: true,
        });
        contract.contract_id = 0;
        contract.local_symbol.clear();
        match self
            .bounded(client.contract_details(&contract), false)
            .await
        {
            Ok(details) => {
                let Some(d) = details.into_iter().next() else {
                    return Ok(None);
                };
                let hours = crate::hours::RawHours {
                    liquid_hours: d.liquid_hours.join(";"),
                    trading_hours: d.trading_hours.join(";"),
                    time_zone_id: d.time_zone_id.clone(),
                };
                let c = d.contract;
                Ok(Some((
                    OptionSpec {
                        con_id: i64::from(c.contract_id),
                        local_symbol: c.local_symbol.clone(),
                        trading_class: if c.trading_class.is_empty() {
                            spec.trading_class.clone()
                        } else {
                            c.trading_class.clone()
                        },
                        multiplier: c.multiplier.parse().unwrap_or(spec.multiplier),
                        ..spec.clone()
                    },
                    hours,
                )))
            }
            Err(f) if f.code == Some(200) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// The last complete daily close of an underlying (stock or index) at or before `end`
    /// (`1 day` TRADES, RTH, 5 D).
    pub async fn stock_close(
        &self,
        symbol: &str,
        sec_type: UnderlyingSecType,
        end: DateTime<Utc>,
    ) -> Result<Option<(NaiveDate, f64)>, Failure> {
        let req = HistRequest {
            option: None,
            stock_symbol: symbol.to_string(),
            underlying_sec_type: sec_type,
            what: "TRADES".into(),
            bar_size: BarSize::Day1,
            duration: IbDuration {
                n: 5,
                unit: DurationUnit::Days,
            },
            end: Some(end),
            use_rth: true,
        };
        let bars = self.historical(&req, false).await?;
        Ok(bars
            .iter()
            .filter(|b| b.ts < end)
            .max_by_key(|b| b.ts)
            .map(|b| (crate::calendar::to_ny(b.ts).date_naive(), b.close)))
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, ibapi::Error>>,
        expired: bool,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.cfg.request_timeout, fut).await {
            Err(_) => Err(Failure::new(
                OutcomeClass::Timeout,
                format!("no answer within {:?}", self.cfg.request_timeout),
            )),
            Ok(Err(e)) => Err(classify_error(&e, expired)),
            Ok(Ok(v)) => Ok(v),
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

fn contract_for(req: &HistRequest) -> Contract {
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
fn underlying_contract(symbol: &str, sec_type: UnderlyingSecType) -> Contract {
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

fn convert_bar(b: &ibapi::market_data::historical::Bar) -> FetchedBar {
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

fn ib_duration(d: IbDuration) -> IbApiDuration {
    let n = i32::try_from(d.n).unwrap_or(i32::MAX);
    match d.unit {
        DurationUnit::Seconds => IbApiDuration::seconds(n),
        DurationUnit::Days => IbApiDuration::days(n),
        DurationUnit::Weeks => IbApiDuration::weeks(n),
        DurationUnit::Months => IbApiDuration::months(n),
        DurationUnit::Years => IbApiDuration::years(n),
    }
}
