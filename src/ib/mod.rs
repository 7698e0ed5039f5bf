//! The gateway client over `ibapi` 5.5.0 and the one classification of IB outcomes.

pub mod gateway;
pub mod outcome;
pub mod session;
mod spec;

pub use gateway::{
    ChainParams, ConnectError, FetchedBar, Gateway, GatewayConfig, HistRequest, OptionSpec,
    QualifiedStock,
};
pub use outcome::{classify_error, classify_notice, Failure, OutcomeClass};
