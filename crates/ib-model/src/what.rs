//! What a historical request asks for (`whatToShow`), as IB spells it.
//!
//! Why its own module: plans, manifests, summaries and the simulator all carry it; a closed
//! enum catches a typo where a plan is read instead of as a gateway error hours later.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a historical request asks for (`whatToShow`), closed to the values IB serves for
/// options, so a typo is caught where a plan is read rather than answered by the gateway with an
/// error (other values exist for stocks and indices). Serialized as IB spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum WhatToShow {
    /// Trades (the default).
    #[default]
    Trades,
    /// Bid/ask midpoint.
    Midpoint,
    /// Bid.
    Bid,
    /// Ask.
    Ask,
    /// Bid and ask in one bar (IB counts it as two requests for pacing).
    BidAsk,
    /// Historical volatility.
    HistoricalVolatility,
    /// Option implied volatility.
    OptionImpliedVolatility,
}

/// Every legal what-to-show with IB's spelling, in the order error messages list them.
pub const WHAT_TO_SHOW: &[(WhatToShow, &str)] = &[
    (WhatToShow::Trades, "TRADES"),
    (WhatToShow::Midpoint, "MIDPOINT"),
    (WhatToShow::Bid, "BID"),
    (WhatToShow::Ask, "ASK"),
    (WhatToShow::BidAsk, "BID_ASK"),
    (WhatToShow::HistoricalVolatility, "HISTORICAL_VOLATILITY"),
    (
        WhatToShow::OptionImpliedVolatility,
        "OPTION_IMPLIED_VOLATILITY",
    ),
];

/// The spellings of [`WHAT_TO_SHOW`] alone (hints, schema enums).
pub const WHAT_TO_SHOW_SPELLINGS: &[&str] = &[
    "TRADES",
    "MIDPOINT",
    "BID",
    "ASK",
    "BID_ASK",
    "HISTORICAL_VOLATILITY",
    "OPTION_IMPLIED_VOLATILITY",
];

impl WhatToShow {
    /// IB's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WhatToShow::Trades => "TRADES",
            WhatToShow::Midpoint => "MIDPOINT",
            WhatToShow::Bid => "BID",
            WhatToShow::Ask => "ASK",
            WhatToShow::BidAsk => "BID_ASK",
            WhatToShow::HistoricalVolatility => "HISTORICAL_VOLATILITY",
            WhatToShow::OptionImpliedVolatility => "OPTION_IMPLIED_VOLATILITY",
        }
    }
}

impl fmt::Display for WhatToShow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for WhatToShow {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A what-to-show IB does not serve for options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown what-to-show `{0}`")]
pub struct BadWhatToShow(pub String);

impl FromStr for WhatToShow {
    type Err = BadWhatToShow;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WHAT_TO_SHOW
            .iter()
            .find(|(_, legal)| *legal == s)
            .map(|(w, _)| *w)
            .ok_or_else(|| BadWhatToShow(s.to_string()))
    }
}

impl Serialize for WhatToShow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WhatToShow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for WhatToShow {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WhatToShow".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "IB `whatToShow` values accepted for options.",
            "type": "string",
            "enum": WHAT_TO_SHOW_SPELLINGS,
        })
    }
}
