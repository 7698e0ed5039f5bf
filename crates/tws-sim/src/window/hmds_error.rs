//! The errors the simulated gateway answers a historical request with, in IB's exact codes and
//! texts: clients (and the tool's outcome classification) match on these strings, so they live
//! in one place, copied from what the real gateway sends.

/// The HMDS message prefix (no space after the colon, as IB sends it).
pub const HMDS_PREFIX: &str = "Historical Market Data Service error message:";

/// An error the gateway answers a request with: IB's code and exact text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct HmdsError {
    /// TWS error code (162, 200, 321, 322, ...).
    pub code: i32,
    /// TWS error text.
    pub message: String,
}

impl HmdsError {
    fn hmds(text: impl std::fmt::Display) -> HmdsError {
        HmdsError {
            code: 162,
            message: format!("{HMDS_PREFIX}{text}"),
        }
    }

    /// 162 no data: the window has no bars (an EMPTY result, not a failure).
    pub fn no_data(local_symbol: &str, what: &str) -> HmdsError {
        Self::hmds(format_args!(
            "HMDS query returned no data: {local_symbol}@SMART {}",
            what_word(what)
        ))
    }

    /// True for the no-data 162.
    pub fn is_no_data(&self) -> bool {
        self.code == 162 && self.message.contains("HMDS query returned no data")
    }

    /// 200: unknown or expired contract.
    pub fn no_security() -> HmdsError {
        HmdsError {
            code: 200,
            message: "No security definition has been found for the request".into(),
        }
    }

    /// 321: illegal bar size.
    pub fn bad_bar_size() -> HmdsError {
        HmdsError {
            code: 321,
            message: format!(
                "Error validating request.-'bK' : cause - Historical data bar size setting is invalid. Legal ones are: {}",
                ib_model::bars::BarSize::legal_list()
            ),
        }
    }

    /// 321: a duration that does not parse.
    pub fn bad_duration(text: &str) -> HmdsError {
        HmdsError {
            code: 321,
            message: format!("Error validating request.-'bX' : cause - Historical data query duration is invalid: {text}"),
        }
    }

    /// 321: an unknown what-to-show.
    pub fn bad_what(text: &str) -> HmdsError {
        HmdsError {
            code: 321,
            message: format!(
                "Error validating request.-'bL' : cause - Unknown what to show: {text}"
            ),
        }
    }

    /// 10314: an end date-time that does not parse.
    pub fn bad_end(text: &str) -> HmdsError {
        HmdsError {
            code: 10314,
            message: format!(
                "End Date/Time: The date, time, or time-zone entered is invalid. ({text})"
            ),
        }
    }

    /// 162: duration over the bar size's limit.
    pub fn too_long() -> HmdsError {
        Self::hmds("Time length exceed max.")
    }

    /// 162: daily bars requested for an option.
    pub fn eod_chart(what: &str) -> HmdsError {
        Self::hmds(format_args!(
            "No data of type EODChart is available for the exchange 'BEST' and the security type 'Option' and '1 d' and '{}'",
            what.to_ascii_uppercase()
        ))
    }

    /// 162: pacing violation.
    pub fn pacing() -> HmdsError {
        Self::hmds("Historical data request pacing violation")
    }

    /// 162: the answer to a cancel of a running request.
    pub fn cancelled(req_id: i32) -> HmdsError {
        Self::hmds(format_args!(
            "API historical data query cancelled: {req_id}"
        ))
    }

    /// 322: over the open-request limit.
    pub fn too_many_open(limit: u32) -> HmdsError {
        HmdsError {
            code: 322,
            message: format!(
                "Error processing request:-'wd' : cause - Only {limit} simultaneous API historical data requests allowed."
            ),
        }
    }
}

/// IB's word for a tick type in the no-data text (`Trades`, `Midpoint`, `Bid_Ask`, ...).
pub fn what_word(what: &str) -> String {
    let lower = what.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut up = true;
    for c in lower.chars() {
        out.push(if up { c.to_ascii_uppercase() } else { c });
        up = c == '_';
    }
    out
}
