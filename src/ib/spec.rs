//! The one conversion between a cached option contract ([`OptionContract`], what the compiler
//! and the executor hold) and the gateway's contract spec ([`OptionSpec`], what a request
//! names), so a field added to one is carried over in one place.

use super::gateway::OptionSpec;
use crate::cache::OptionContract;

impl OptionSpec {
    /// The spec of `contract`, an option on `symbol`.
    pub fn of(symbol: &str, contract: &OptionContract) -> Self {
        OptionSpec {
            symbol: symbol.to_string(),
            con_id: contract.con_id,
            local_symbol: contract.local_symbol.clone(),
            trading_class: contract.trading_class.clone(),
            expiry: contract.expiry,
            strike: contract.strike,
            right: contract.right,
            multiplier: contract.multiplier,
            exchange: contract.exchange.clone(),
            currency: contract.currency.clone(),
        }
    }

    /// The contract as the cache stores it (the symbol is the cache's, not the contract's).
    pub fn into_contract(self) -> OptionContract {
        OptionContract {
            con_id: self.con_id,
            local_symbol: self.local_symbol,
            trading_class: self.trading_class,
            expiry: self.expiry,
            strike: self.strike,
            right: self.right,
            multiplier: self.multiplier,
            exchange: self.exchange,
            currency: self.currency,
        }
    }
}
