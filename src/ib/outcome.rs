//! One classification of everything a historical request can end in, used by the executor's
//! retry policy, the pacing governor, the summary JSONL and the reports alike.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The class of a request's outcome (the `status` of a summary record).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutcomeClass {
    /// Bars received (possibly none beyond what the file already had).
    Ok,
    /// The file already covered the whole window: no request was sent.
    UpToDate,
    /// 162 `HMDS query returned no data`: no trades in the window. Final, not an error.
    Empty,
    /// 162 pacing violation or 322 too many open requests: retry after slowing down.
    Pacing,
    /// 200 for a contract whose expiry has passed: IB serves no history for it.
    Expired,
    /// 200 for a contract that never existed (or conId unknown).
    UnknownContract,
    /// No answer within the request timeout; the request was cancelled.
    Timeout,
    /// The connection dropped while the request was open.
    Disconnected,
    /// 321, 162 `Time length exceed max.`/`invalid step`, EODChart: the request itself is wrong.
    InvalidRequest,
    /// 162 `No market data permissions`.
    Permission,
    /// Any other error code.
    Other,
    /// Not requested (e.g. no reference close for a near-ATM phase).
    Skipped,
    /// Zero bars and no error for a window longer than the strict limit table allows: a real
    /// gateway's silent answer to a too-long window. Not done, not EMPTY: the executor splits
    /// the window; a task records it only when it ended before the split answered.
    ZeroBars,
    /// The connection dropped every time this task was sent, even alone: set aside so it does
    /// not disconnect every other request again. An error (in the rerun CSV).
    Quarantined,
}

impl OutcomeClass {
    /// Final classes are recorded and never retried; the resume logic skips tasks that ended in
    /// one of `Ok`, `Empty`, `UpToDate`.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            OutcomeClass::Ok | OutcomeClass::Empty | OutcomeClass::UpToDate
        )
    }

    /// Worth retrying in this run (with backoff, bounded).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            OutcomeClass::Pacing
                | OutcomeClass::Timeout
                | OutcomeClass::Disconnected
                | OutcomeClass::Other
        )
    }

    /// The summary spelling (`OK`, `EMPTY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Ok => "OK",
            OutcomeClass::UpToDate => "UP_TO_DATE",
            OutcomeClass::Empty => "EMPTY",
            OutcomeClass::Pacing => "PACING",
            OutcomeClass::Expired => "EXPIRED",
            OutcomeClass::UnknownContract => "UNKNOWN_CONTRACT",
            OutcomeClass::Timeout => "TIMEOUT",
            OutcomeClass::Disconnected => "DISCONNECTED",
            OutcomeClass::InvalidRequest => "INVALID_REQUEST",
            OutcomeClass::Permission => "PERMISSION",
            OutcomeClass::Other => "OTHER",
            OutcomeClass::Skipped => "SKIPPED",
            OutcomeClass::ZeroBars => "ZERO_BARS",
            OutcomeClass::Quarantined => "QUARANTINED",
        }
    }
}

/// Ordered by spelling, so maps keyed by status (run totals, report rows, the HTML page) list
/// them alphabetically, as they did when they were keyed by the text.
impl Ord for OutcomeClass {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for OutcomeClass {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<&str> for OutcomeClass {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A status this build does not know (e.g. in a summary line of another version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for OutcomeClass {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <OutcomeClass as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl fmt::Display for OutcomeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: its class and, when IB said something, the code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Class.
    pub class: OutcomeClass,
    /// IB error code, when there was one.
    pub code: Option<i32>,
    /// IB's message or our own description.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "{} ({c}: {})", self.class, self.message),
            None => write!(f, "{} ({})", self.class, self.message),
        }
    }
}

impl Failure {
    /// A failure without an IB code.
    pub fn new(class: OutcomeClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            code: None,
            message: message.into(),
        }
    }
}

/// Classify an IB error message by code and text. `expired` tells whether the contract's expiry
/// has passed (only the caller knows), which turns a 200 into EXPIRED rather than UNKNOWN_CONTRACT.
pub fn classify_notice(code: i32, message: &str, expired: bool) -> OutcomeClass {
    let m = message.to_ascii_lowercase();
    match code {
        162 if m.contains("returned no data") => OutcomeClass::Empty,
        162 if m.contains("pacing violation") => OutcomeClass::Pacing,
        162 if m.contains("no market data permissions") => OutcomeClass::Permission,
        162 if m.contains("time length exceed")
            || m.contains("invalid step")
            || m.contains("eodchart") =>
        {
            OutcomeClass::InvalidRequest
        }
        162 if m.contains("query cancelled") => OutcomeClass::Timeout,
        322 => OutcomeClass::Pacing,
        100 => OutcomeClass::Pacing,
        200 if expired => OutcomeClass::Expired,
        200 => OutcomeClass::UnknownContract,
        321 => OutcomeClass::InvalidRequest,
        354 | 10090 | 10167 | 10168 => OutcomeClass::Permission,
        504 | 1100 | 1300 => OutcomeClass::Disconnected,
        _ => OutcomeClass::Other,
    }
}

/// Classify an `ibapi` error.
pub fn classify_error(err: &ibapi::Error, expired: bool) -> Failure {
    use ibapi::Error as E;
    match err {
        E::Notice(n) => Failure {
            class: classify_notice(n.code, &n.message, expired),
            code: Some(n.code),
            message: n.message.clone(),
        },
        E::Timeout => Failure::new(
            OutcomeClass::Timeout,
            "no answer within the request timeout",
        ),
        E::ConnectionFailed
        | E::ConnectionReset
        | E::Shutdown
        | E::Io(_)
        | E::EndOfStream
        | E::UnexpectedEndOfStream
        | E::Cancelled => Failure::new(OutcomeClass::Disconnected, err.to_string()),
        other => Failure::new(OutcomeClass::Other, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_order_by_spelling() {
        let all = <OutcomeClass as clap::ValueEnum>::value_variants();
        for c in all {
            assert_eq!(c.as_str().parse::<OutcomeClass>(), Ok(*c));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        assert!("NOPE".parse::<OutcomeClass>().is_err());
        let mut sorted = all.to_vec();
        sorted.sort();
        let spelled: Vec<&str> = sorted.iter().map(|c| c.as_str()).collect();
        let mut alphabetical = spelled.clone();
        alphabetical.sort();
        assert_eq!(spelled, alphabetical);
    }

    #[test]
    fn classifies_ib_texts() {
        let hmds = "Historical Market Data Service error message:";
        assert_eq!(
            classify_notice(
                162,
                &format!("{hmds}HMDS query returned no data: X@SMART Trades"),
                false
            ),
            OutcomeClass::Empty
        );
        assert_eq!(
            classify_notice(
                162,
                &format!("{hmds}Historical data request pacing violation"),
                false
            ),
            OutcomeClass::Pacing
        );
        assert_eq!(
            classify_notice(
                322,
                "Error processing request:-'wd' : cause - Only 50 simultaneous",
                false
            ),
            OutcomeClass::Pacing
        );
        assert_eq!(
            classify_notice(162, &format!("{hmds}Time length exceed max."), false),
            OutcomeClass::InvalidRequest
        );
        assert_eq!(
            classify_notice(
                162,
                &format!("{hmds}No market data permissions for AMEX OPT"),
                false
            ),
            OutcomeClass::Permission
        );
        assert_eq!(
            classify_notice(
                200,
                "No security definition has been found for the request",
                true
            ),
            OutcomeClass::Expired
        );
        assert_eq!(
            classify_notice(
                200,
                "No security definition has been found for the request",
                false
            ),
            OutcomeClass::UnknownContract
        );
        assert_eq!(
            classify_notice(321, "Error validating request.-'bK'", false),
            OutcomeClass::InvalidRequest
        );
        assert_eq!(classify_notice(9999, "?", false), OutcomeClass::Other);
    }

    #[test]
    fn done_and_retryable_are_disjoint() {
        use OutcomeClass::*;
        for c in [
            Ok,
            UpToDate,
            Empty,
            Pacing,
            Expired,
            UnknownContract,
            Timeout,
            Disconnected,
            InvalidRequest,
            Permission,
            Other,
            Skipped,
            ZeroBars,
            Quarantined,
        ] {
            assert!(!(c.is_done() && c.is_retryable()), "{c}");
        }
    }
}
