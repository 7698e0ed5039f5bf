//! Human durations: the plan's `gateway.connect-timeout`, `request-timeout`, `reconnect-for`
//! and the CLI's `--request-timeout`, `--reconnect-for`.
//!
//! Rules: one or more `<number><unit>` terms, added up; the number is decimal digits with an
//! optional fraction (`1.5`), the unit one of `ms`, `s`, `m`, `h`, `d`; spaces may separate a
//! number from its unit and terms from each other. So `30s`, `250ms`, `1.5h`, `1h30m`, `1h 30m`
//! and `90 s` are accepted; `30` (no unit), `5 weeks`, `-1s` and `1h 30` are not. The value is
//! exact to the nanosecond (no floating point), and an overflow is an error, not a wrap.

use std::time::Duration;

/// What to write, for error hints.
pub const HINT: &str = "a number and a unit (ms, s, m, h, d), e.g. `30s`, `1.5h`, `1h30m`";

/// The same rules as a regular expression, for the plan's JSON Schema (editors check a plan
/// with it); a test keeps it in step with [`parse`].
pub const PATTERN: &str = r"^ *([0-9]+(\.[0-9]+)? *(ms|s|m|h|d) *)+$";

/// A duration that does not follow the rules of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration `{0}`")]
pub struct BadDuration(pub String);

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parse a human duration (see the module docs for the rules).
pub fn parse(s: &str) -> Result<Duration, BadDuration> {
    total_nanos(s)
        .and_then(|n| {
            let secs = u64::try_from(n / NANOS_PER_SEC).ok()?;
            let nanos = u32::try_from(n % NANOS_PER_SEC).ok()?;
            Some(Duration::new(secs, nanos))
        })
        .ok_or_else(|| BadDuration(s.to_string()))
}

fn total_nanos(s: &str) -> Option<u128> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.chars().take_while(char::is_ascii_digit).count();
        if int_len == 0 {
            return None;
        }
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(after) = rest.strip_prefix('.') {
            let frac_len = after.chars().take_while(char::is_ascii_digit).count();
            if frac_len == 0 {
                return None;
            }
            frac = &after[..frac_len];
            rest = &after[frac_len..];
        }
        rest = rest.trim_start();
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit: u128 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "d" => 86_400 * NANOS_PER_SEC,
            _ => return None,
        };
        rest = rest[unit_len..].trim_start();
        let whole = int.parse::<u128>().ok()?.checked_mul(unit)?;
        // The fraction in nanoseconds: digits beyond a nanosecond are dropped.
        let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?);
        let part = match (frac.is_empty(), scale) {
            (true, _) => 0,
            (false, Some(scale)) => frac.parse::<u128>().ok()?.checked_mul(unit)? / scale,
            (false, None) => return None,
        };
        total = total.checked_add(whole)?.checked_add(part)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Option<u128> {
        parse(s).ok().map(|d| d.as_millis())
    }

    #[test]
    fn single_terms() {
        assert_eq!(ms("30s"), Some(30_000));
        assert_eq!(ms("250ms"), Some(250));
        assert_eq!(ms("5m"), Some(300_000));
        assert_eq!(ms("12h"), Some(43_200_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        assert_eq!(ms(" 90 s "), Some(90_000));
    }

    /// The plan's old parser took `1h30m` but not `1.5h`; the CLI's the opposite. Both now take
    /// both, and agree on the value.
    #[test]
    fn compound_and_fractional_terms_agree() {
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("1h 30m"), Some(5_400_000));
        assert_eq!(ms("1.5h"), Some(5_400_000));
        assert_eq!(ms("0.25s"), Some(250));
        assert_eq!(parse("0.1s").unwrap(), Duration::from_millis(100), "exact");
        assert_eq!(parse("1.5ms").unwrap(), Duration::from_micros(1500));
    }

    /// The plan decoder's old cases, unchanged.
    #[test]
    fn human_durations() {
        assert_eq!(ms("30s"), Some(30_000));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("12h"), Some(43_200_000));
        for bad in ["", "30", "s", "3x", "1h 30"] {
            assert_eq!(ms(bad), None, "{bad}");
        }
    }

    const REJECTED: &[&str] = &[
        "", "30", "s", "3x", "1h 30", "5", "5 weeks", "-1s", "1.h", ".5h", "1..5h", "1h30", "1e3s",
        "nan s", "5m s",
    ];
    const ACCEPTED: &[&str] = &[
        "30s", "250ms", "5m", "12h", "1d", " 90 s ", "1h30m", "1h 30m", "1.5h", "0.25s", "1.5ms",
    ];

    #[test]
    fn schema_pattern_agrees_with_the_parser() {
        let re = regex::Regex::new(PATTERN).unwrap();
        for s in ACCEPTED {
            assert!(re.is_match(s) && parse(s).is_ok(), "{s:?}");
        }
        for s in REJECTED {
            assert!(!re.is_match(s) && parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn rejected() {
        for bad in REJECTED {
            assert_eq!(parse(bad), Err(BadDuration(bad.to_string())), "{bad}");
        }
        assert!(parse("99999999999999999999999d").is_err(), "overflow");
        assert_eq!(
            parse("two minutes").unwrap_err().to_string(),
            "bad duration `two minutes`"
        );
    }
}
