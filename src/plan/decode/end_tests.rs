//! `end`: a session date, `last-session`, or an explicit instant.

use crate::plan::{load_str, EndSpec, Format};
use chrono::{TimeZone, Utc};
use std::path::Path;

fn end(value: &str) -> Result<EndSpec, String> {
    let text = format!(
        "name = \"t\"\nscope = \"s\"\nend = \"{value}\"\n[universe]\nsymbols = [\"AAPL\"]\n[[phase]]\nname = \"hours\"\nbars = [{{ size = \"8 hours\", duration = \"1 M\" }}]\n"
    );
    load_str(&text, Path::new("p.toml"), Format::Toml)
        .map(|p| p.end)
        .map_err(|e| {
            e.0.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
}

#[test]
fn explicit_instants() {
    let eleven = Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap();
    for text in [
        "2026-12-01T11:00:00-05:00",
        "2026-12-01T16:00:00Z",
        "2026-12-01T11:00:00 America/New_York",
        "2026-12-01T11:00 America/New_York",
        "2026-12-01 11:00 America/New_York",
        "2026-12-01T10:00 America/Chicago",
    ] {
        assert_eq!(end(text), Ok(EndSpec::Instant(eleven)), "{text}");
    }
    // Summer time: 11:00 New York is 15:00 UTC.
    assert_eq!(
        end("2026-07-01T11:00 America/New_York"),
        Ok(EndSpec::Instant(
            Utc.with_ymd_and_hms(2026, 7, 1, 15, 0, 0).unwrap()
        ))
    );
    assert_eq!(end("last-session"), Ok(EndSpec::LastSession));
    assert!(matches!(end("2026-11-27"), Ok(EndSpec::Date(_))));
}

#[test]
fn bad_instants_are_located_with_the_reason() {
    let e = end("2026-12-01T11:00:00").unwrap_err();
    assert!(
        e.starts_with("p.toml:3:7: end: bad end `2026-12-01T11:00:00`: expected an offset"),
        "{e}"
    );
    assert!(
        e.contains("2026-12-01T11:00:00-05:00"),
        "hint names the form: {e}"
    );
    let e = end("2026-12-01T25:00 America/New_York").unwrap_err();
    assert!(
        e.contains("is not a `YYYY-MM-DDTHH:MM[:SS]` date-time"),
        "{e}"
    );
    let e = end("2026-12-01T11:00 Mars/Base").unwrap_err();
    assert!(e.contains("unknown time zone `Mars/Base`"), "{e}");
    // 02:30 on 2026-03-08 does not exist in New York; 01:30 on 2026-11-01 happens twice.
    let e = end("2026-03-08T02:30 America/New_York").unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    let e = end("2026-11-01T01:30 America/New_York").unwrap_err();
    assert!(e.contains("happens twice"), "{e}");
    let e = end("2046-12-01T11:00:00-05:00").unwrap_err();
    assert!(e.contains("outside the trading calendar"), "{e}");
    let e = end("2026-13-01T11:00:00-05:00").unwrap_err();
    assert!(e.contains("p.toml:3:7: end: bad end"), "{e}");
}
