//! Contract vocabulary both the backfill tool and the simulated gateway speak: the option right
//! and the security type of an option's underlying, spelled as IB spells them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Option right.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Right {
    /// Call.
    C,
    /// Put.
    P,
}

impl Right {
    /// IB's one-letter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::C => "C",
            Right::P => "P",
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IB security type of an option underlying: a stock or ETF (`STK`), or an index (`IND`,
/// e.g. SPX on CBOE), which IB qualifies, charts and lists options for under its own type.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum UnderlyingSecType {
    /// Stock or ETF.
    #[default]
    #[serde(rename = "STK")]
    Stk,
    /// Index.
    #[serde(rename = "IND")]
    Ind,
}

impl UnderlyingSecType {
    /// IB's spelling (`STK`, `IND`).
    pub fn as_str(self) -> &'static str {
        match self {
            UnderlyingSecType::Stk => "STK",
            UnderlyingSecType::Ind => "IND",
        }
    }

    /// True for `STK` (the default, left out of cache files).
    pub fn is_stock(&self) -> bool {
        *self == UnderlyingSecType::Stk
    }
}

impl fmt::Display for UnderlyingSecType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
