//! Reference data over the same connection: qualifying underlyings and options (conId, local
//! symbol, trading hours), the option chain parameters, and an underlying's last daily close.
//!
//! Discovery and the reference closes ask these; they share the connection and the request
//! timeout with the bar requests but none of their pacing, hence their own bounded wrapper.

use super::convert::{contract_for, underlying_contract};
use super::{Gateway, HistRequest, OptionSpec};
use crate::bars::{BarSize, Duration as IbDuration, DurationUnit};
use crate::cache::UnderlyingSecType;
use crate::ib::outcome::{classify_error, Failure, OutcomeClass};
use chrono::{DateTime, NaiveDate, Utc};
use ibapi::contracts::SecurityType;

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
