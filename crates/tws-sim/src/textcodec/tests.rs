//! Text codec tests: request layouts as `ib_insync` 0.9.86 `client.py` writes them, reply
//! layouts as its `decoder.py` reads them, round trips, and hostile input.

use super::*;
use crate::codec::{ContractQuery, HistRequest};
use chrono::NaiveDate;
use ib_model::Right;

/// A body as `ib_insync`'s `Client.send` writes it: every field NUL-terminated.
fn body(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(f.as_bytes());
        out.push(0);
    }
    out
}

/// The fields of an encoded reply, split as `ib_insync` does (trailing empty popped).
fn fields(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mut f: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(f.pop().as_deref(), Some(""), "body must end with a NUL");
    f
}

/// The 12 contract fields `ib_insync` sends for `Option('AAPL', '20261218', 150, 'C', 'SMART')`.
const OPT: [&str; 12] = [
    "0", "AAPL", "OPT", "20261218", "150.0", "C", "", "SMART", "", "USD", "", "",
];

/// Encode a request as `ib_insync`'s `client.py` does (the inverse of the decoder, for round
/// trips).
fn encode_request(r: &Request) -> Vec<u8> {
    fn contract(q: &ContractQuery) -> Vec<String> {
        vec![
            q.con_id.to_string(),
            q.symbol.clone(),
            q.sec_type.clone(),
            q.expiry.clone(),
            format!("{:?}", q.strike),
            q.right.clone(),
            if q.multiplier == 0.0 {
                String::new()
            } else {
                format!("{}", q.multiplier)
            },
            q.exchange.clone(),
            String::new(),
            q.currency.clone(),
            q.local_symbol.clone(),
            q.trading_class.clone(),
        ]
    }
    let b = |x: bool| if x { "1" } else { "0" }.to_string();
    let f: Vec<String> = match r {
        Request::Historical(h) => {
            let mut f = vec!["20".into(), h.req_id.to_string()];
            f.extend(contract(&h.contract));
            f.extend([
                b(h.contract.include_expired),
                h.end.clone(),
                h.bar_size.clone(),
                h.duration.clone(),
                b(h.use_rth),
                h.what.clone(),
                h.format_date.to_string(),
                b(h.keep_up_to_date),
                String::new(),
            ]);
            f
        }
        Request::ContractDetails {
            req_id,
            contract: c,
        } => {
            let mut f = vec!["9".into(), "8".into(), req_id.to_string()];
            f.extend(contract(c));
            f.extend([
                b(c.include_expired),
                String::new(),
                String::new(),
                String::new(),
            ]);
            f
        }
        other => panic!("no encoder for {other:?}"),
    };
    let refs: Vec<&str> = f.iter().map(String::as_str).collect();
    body(&refs)
}

fn info() -> ContractInfo {
    ContractInfo {
        con_id: 812_345_678,
        symbol: "AAPL".into(),
        sec_type: "OPT".into(),
        expiry: NaiveDate::from_ymd_opt(2026, 12, 18),
        strike: 150.0,
        right: Some(Right::C),
        multiplier: 100.0,
        exchange: "SMART".into(),
        primary_exchange: String::new(),
        currency: "USD".into(),
        local_symbol: "AAPL  261218C00150000".into(),
        trading_class: "AAPL".into(),
        long_name: "APPLE INC".into(),
        under_con_id: 265598,
        under_symbol: "AAPL".into(),
        under_sec_type: "STK".into(),
        min_tick: 0.01,
        liquid_hours: "20261218:0930-20261218:1600".into(),
        trading_hours: "20261218:0400-20261218:2000".into(),
    }
}

#[test]
fn start_api_and_cancels() {
    let c = TextCodec::new(176);
    assert_eq!(
        c.decode(&body(&["71", "2", "7", ""])).unwrap(),
        Request::StartApi { client_id: 7 }
    );
    assert_eq!(
        c.decode(&body(&["25", "1", "42"])).unwrap(),
        Request::CancelHistorical { req_id: 42 }
    );
    assert_eq!(
        c.decode(&body(&["90", "43"])).unwrap(),
        Request::CancelHeadTimestamp { req_id: 43 }
    );
    assert_eq!(c.decode(&body(&["49", "1"])).unwrap(), Request::CurrentTime);
}

#[test]
fn historical_request_as_ib_insync_sends_it() {
    let mut f = vec!["20", "5"];
    f.extend(OPT);
    f.extend([
        "0",
        "20261130 21:00:00 UTC",
        "30 mins",
        "1 D",
        "1",
        "TRADES",
        "2",
        "0",
        "",
    ]);
    let Request::Historical(h) = TextCodec::new(176).decode(&body(&f)).unwrap() else {
        panic!()
    };
    assert_eq!(h.req_id, 5);
    assert_eq!(
        (
            h.contract.symbol.as_str(),
            h.contract.strike,
            h.contract.right.as_str()
        ),
        ("AAPL", 150.0, "C")
    );
    assert_eq!(h.contract.expiry, "20261218");
    assert_eq!(h.contract.exchange, "SMART");
    assert_eq!(h.end, "20261130 21:00:00 UTC");
    assert_eq!(
        (h.bar_size.as_str(), h.duration.as_str()),
        ("30 mins", "1 D")
    );
    assert!(h.use_rth && !h.keep_up_to_date);
    assert_eq!((h.what.as_str(), h.format_date), ("TRADES", 2));
}

#[test]
fn contract_details_head_timestamp_and_chain_requests() {
    let c = TextCodec::new(176);
    let mut f = vec!["9", "8", "3"];
    f.extend(OPT);
    f.extend(["1", "", "", ""]);
    let Request::ContractDetails { req_id, contract } = c.decode(&body(&f)).unwrap() else {
        panic!()
    };
    assert_eq!(req_id, 3);
    assert!(contract.include_expired);
    assert_eq!(contract.currency, "USD");

    let mut f = vec!["87", "4"];
    f.extend(OPT);
    f.extend(["0", "1", "MIDPOINT", "2"]);
    assert_eq!(
        c.decode(&body(&f)).unwrap(),
        Request::HeadTimestamp {
            req_id: 4,
            contract: ContractQuery {
                symbol: "AAPL".into(),
                sec_type: "OPT".into(),
                expiry: "20261218".into(),
                strike: 150.0,
                right: "C".into(),
                exchange: "SMART".into(),
                currency: "USD".into(),
                ..Default::default()
            },
            use_rth: true,
            what: "MIDPOINT".into(),
            format_date: 2,
        }
    );
    assert_eq!(
        c.decode(&body(&["78", "6", "SPY", "", "STK", "756733"]))
            .unwrap(),
        Request::SecDefOptParams {
            req_id: 6,
            symbol: "SPY".into(),
            sec_type: "STK".into(),
            con_id: 756733,
        }
    );
}

#[test]
fn connect_time_listings() {
    let c = TextCodec::new(176);
    let l = |f: &[&str]| match c.decode(&body(f)).unwrap() {
        Request::Listing(l) => l,
        other => panic!("{other:?}"),
    };
    assert_eq!(l(&["61", "1"]), Listing::Positions);
    assert_eq!(l(&["5", "1"]), Listing::OpenOrders);
    assert_eq!(l(&["15", "1", "1"]), Listing::OpenOrders);
    assert_eq!(l(&["99", "0"]), Listing::CompletedOrders);
    assert_eq!(
        l(&["6", "2", "1", "DU1234567"]),
        Listing::AccountUpdates {
            account: "DU1234567".into()
        }
    );
    assert_eq!(
        l(&["76", "1", "9", "DU1234567", "", "0"]),
        Listing::AccountUpdatesMulti { req_id: 9 }
    );
    assert_eq!(
        l(&["7", "3", "10", "0", "", "", "", "", "", ""]),
        Listing::Executions { req_id: 10 }
    );
    // Unsubscribing from account updates needs no answer.
    assert_eq!(
        c.decode(&body(&["6", "2", "0", "DU1234567"])).unwrap(),
        Request::Unsupported { wire_id: 6 }
    );
    // reqMarketDataType: well-formed, not served.
    assert_eq!(
        c.decode(&body(&["59", "1", "3"])).unwrap(),
        Request::Unsupported { wire_id: 59 }
    );

    let e = |l: Listing| fields(&c.encode(&Reply::ListingEnd(l)));
    assert_eq!(e(Listing::Positions), ["62", "1"]);
    assert_eq!(e(Listing::OpenOrders), ["53", "1"]);
    assert_eq!(e(Listing::CompletedOrders), ["102"]);
    assert_eq!(
        e(Listing::AccountUpdates {
            account: "DU1".into()
        }),
        ["54", "1", "DU1"]
    );
    assert_eq!(
        e(Listing::AccountUpdatesMulti { req_id: 9 }),
        ["74", "1", "9"]
    );
    assert_eq!(e(Listing::Executions { req_id: 10 }), ["55", "1", "10"]);
}

#[test]
fn handshake_replies_and_errors() {
    let c = TextCodec::new(176);
    assert_eq!(fields(&c.encode(&Reply::NextValidId(1))), ["9", "1", "1"]);
    assert_eq!(
        fields(&c.encode(&Reply::ManagedAccounts("DU1234567".into()))),
        ["15", "1", "DU1234567"]
    );
    assert_eq!(
        fields(&c.encode(&Reply::CurrentTime(1_800_000_000))),
        ["49", "1", "1800000000"]
    );
    let err = Reply::Error {
        id: 5,
        code: 200,
        message: "No security definition has been found for the request".into(),
    };
    // Version 2 layout; the advanced-order-reject JSON from 166 on (ib_insync unpacks it).
    assert_eq!(
        fields(&c.encode(&err)),
        [
            "4",
            "2",
            "5",
            "200",
            "No security definition has been found for the request",
            ""
        ]
    );
    assert_eq!(fields(&TextCodec::new(165).encode(&err)).len(), 5);
}

#[test]
fn historical_data_carries_its_window_and_has_no_end_below_196() {
    let c = TextCodec::new(176);
    let bar = WireBar {
        date: "1796745600".into(),
        open: 1.5,
        high: 2.0,
        low: 1.25,
        close: 1.75,
        volume: "12".into(),
        wap: "1.6".into(),
        count: 3,
    };
    let r = Reply::HistoricalData {
        req_id: 8,
        start: "20261130-14:30:00".into(),
        end: "20261130-21:00:00".into(),
        bars: vec![bar.clone(), bar],
    };
    let f = fields(&c.encode(&r));
    assert_eq!(
        &f[..5],
        ["17", "8", "20261130-14:30:00", "20261130-21:00:00", "2"]
    );
    assert_eq!(
        &f[5..13],
        ["1796745600", "1.5", "2", "1.25", "1.75", "12", "1.6", "3"]
    );
    assert_eq!(f.len(), 5 + 2 * 8);
    assert_eq!(decode_reply(176, &f), r);
    let end = Reply::HistoricalDataEnd {
        req_id: 8,
        start: String::new(),
        end: String::new(),
    };
    assert!(c.encode(&end).is_empty());
    // From 196 on the window moves to message 108.
    let c196 = TextCodec::new(196);
    assert_eq!(fields(&c196.encode(&r))[..3], ["17", "8", "2"]);
    assert_eq!(fields(&c196.encode(&end)), ["108", "8", "", ""]);
}

/// The reply decoder of `ib_insync` 0.9.86 for the messages with counted lists, as a test
/// oracle: reads exactly the fields `decoder.py` reads and rebuilds the [`Reply`].
fn decode_reply(version: u32, f: &[String]) -> Reply {
    let mut it = f.iter().map(String::as_str);
    let mut next = || it.next().expect("short message").to_string();
    match next().as_str() {
        "17" => {
            let req_id = next().parse().unwrap();
            assert!(version < 196);
            let start = next();
            let end = next();
            let n: usize = next().parse().unwrap();
            let bars = (0..n)
                .map(|_| WireBar {
                    date: next(),
                    open: next().parse().unwrap(),
                    high: next().parse().unwrap(),
                    low: next().parse().unwrap(),
                    close: next().parse().unwrap(),
                    volume: next(),
                    wap: next(),
                    count: next().parse().unwrap(),
                })
                .collect();
            Reply::HistoricalData {
                req_id,
                start,
                end,
                bars,
            }
        }
        "75" => {
            let req_id = next().parse().unwrap();
            let exchange = next();
            let underlying_con_id = next().parse().unwrap();
            let trading_class = next();
            let multiplier = next();
            let n: usize = next().parse().unwrap();
            let expirations = (0..n).map(|_| next()).collect();
            let k: usize = next().parse().unwrap();
            let strikes = (0..k).map(|_| next().parse().unwrap()).collect();
            Reply::SecDefOptParameter {
                req_id,
                exchange,
                underlying_con_id,
                trading_class,
                multiplier,
                expirations,
                strikes,
            }
        }
        other => panic!("no oracle for {other}"),
    }
}

#[test]
fn option_chain_round_trip() {
    let c = TextCodec::new(176);
    let r = Reply::SecDefOptParameter {
        req_id: 2,
        exchange: "SMART".into(),
        underlying_con_id: 265598,
        trading_class: "AAPL".into(),
        multiplier: "100".into(),
        expirations: vec!["20261204".into(), "20261211".into()],
        strikes: vec![100.0, 102.5, 105.0],
    };
    let f = fields(&c.encode(&r));
    assert_eq!(f.len(), 7 + 2 + 1 + 3);
    assert_eq!(decode_reply(176, &f), r);
    assert_eq!(
        fields(&c.encode(&Reply::SecDefOptParameterEnd(2))),
        ["76", "2"]
    );
}

/// Contract details as `ib_insync`'s `decoder.contractDetails` unpacks them: the field count
/// and the positions of the fields it reads, at each layout version.
#[test]
fn contract_details_layout_per_version() {
    for (version, len, shift) in [
        (176u32, 40usize, 0usize),
        (164, 40, 0),
        (163, 40, 1),
        (157, 39, 1),
    ] {
        let f = fields(&TextCodec::new(version).encode(&Reply::ContractData {
            req_id: 3,
            info: Box::new(info()),
        }));
        assert_eq!(f.len(), len, "version {version}: {f:?}");
        let g = |i: usize| f[i + shift].as_str();
        assert_eq!(f[0], "10");
        assert_eq!((g(1), g(2), g(3), g(4)), ("3", "AAPL", "OPT", "20261218"));
        assert_eq!((g(5), g(6), g(7), g(8)), ("150", "C", "SMART", "USD"));
        assert_eq!(
            (g(9), g(11), g(12), g(13)),
            ("AAPL  261218C00150000", "AAPL", "812345678", "0.01")
        );
        // After minTick (and mdSizeMultiplier below 164): multiplier, ..., underConId, longName.
        let m = 14 + shift + usize::from(version < 164);
        assert_eq!(
            (f[m].as_str(), f[m + 4].as_str(), f[m + 5].as_str()),
            ("100", "265598", "APPLE INC")
        );
        assert_eq!(f[m + 11], "US/Eastern");
        assert_eq!(f[m + 12], "20261218:0400-20261218:2000", "tradingHours");
        assert_eq!(f[m + 13], "20261218:0930-20261218:1600", "liquidHours");
        assert_eq!(f[m + 16], "0", "no secIds");
        assert_eq!((f[m + 18].as_str(), f[m + 19].as_str()), ("AAPL", "STK"));
        assert_eq!(f[m + 21], "20261218", "realExpirationDate");
    }
}

#[test]
fn head_timestamp_honours_format_date() {
    let c = TextCodec::new(176);
    let r = |format_date| Reply::HeadTimestamp {
        req_id: 4,
        epoch: 1_796_745_600,
        format_date,
    };
    assert_eq!(fields(&c.encode(&r(2))), ["88", "4", "1796745600"]);
    assert_eq!(fields(&c.encode(&r(1))), ["88", "4", "20261208-16:00:00"]);
}

#[test]
fn malformed_and_truncated_messages_are_errors_not_panics() {
    let c = TextCodec::new(176);
    assert!(c.decode(b"").is_err());
    assert!(c.decode(b"\0").is_err());
    assert!(c.decode(b"abc\0").is_err());
    assert!(c.decode(b"-5\0").is_err());
    assert!(c.decode(&body(&["20", "x"])).is_err());
    let mut f = vec!["20", "5"];
    f.extend(OPT);
    f.extend(["0", "", "30 mins", "1 D", "1", "TRADES", "2", "0", ""]);
    let full = body(&f);
    // Every prefix decodes or fails cleanly; dropping a required field fails.
    for n in 0..full.len() {
        let _ = c.decode(&full[..n]);
    }
    assert!(c.decode(&body(&f[..10])).is_err());
    // Missing trailing optional fields are fine.
    assert!(c.decode(&body(&f[..f.len() - 2])).is_ok());
}

proptest::proptest! {
    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = TextCodec::new(176).decode(&bytes);
    }

    /// A served message id followed by arbitrary fields never panics.
    #[test]
    fn served_ids_with_random_fields(
        id in proptest::sample::select(vec![5, 6, 7, 9, 15, 16, 20, 25, 49, 61, 71, 76, 78, 87, 90, 99]),
        tail in proptest::collection::vec("[0-9a-zA-Z .:-]{0,8}", 0..40),
    ) {
        let mut f = vec![id.to_string()];
        f.extend(tail);
        let refs: Vec<&str> = f.iter().map(String::as_str).collect();
        let _ = TextCodec::new(176).decode(&body(&refs));
    }

    /// Historical and contract-details requests survive encode -> decode unchanged.
    #[test]
    fn request_round_trip(
        req_id in 0i32..1_000_000,
        con_id in 0i64..2_000_000_000,
        symbol in "[A-Z]{1,5}",
        strike in 0u32..100_000,
        right in proptest::sample::select(vec!["", "C", "P"]),
        include_expired in proptest::prelude::any::<bool>(),
        use_rth in proptest::prelude::any::<bool>(),
        format_date in 1i32..=2,
        bar in proptest::sample::select(vec!["8 hours", "30 mins", "1 day"]),
    ) {
        let contract = ContractQuery {
            con_id,
            symbol,
            sec_type: "OPT".into(),
            expiry: "20261218".into(),
            strike: f64::from(strike) / 2.0,
            right: right.into(),
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
            local_symbol: String::new(),
            trading_class: String::new(),
            include_expired,
        };
        let h = Request::Historical(HistRequest {
            req_id,
            contract: contract.clone(),
            end: "20261130 21:00:00 UTC".into(),
            bar_size: bar.into(),
            duration: "1 M".into(),
            use_rth,
            what: "TRADES".into(),
            format_date,
            keep_up_to_date: false,
        });
        let c = TextCodec::new(176);
        proptest::prop_assert_eq!(c.decode(&encode_request(&h)).unwrap(), h);
        let d = Request::ContractDetails { req_id, contract };
        proptest::prop_assert_eq!(c.decode(&encode_request(&d)).unwrap(), d);
    }
}
