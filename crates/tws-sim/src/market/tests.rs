use super::*;
use crate::window;
use chrono::NaiveTime;
use ib_model::calendar::{ny_to_utc, to_ny};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn today() -> NaiveDate {
    d(2026, 12, 1)
}

fn dur(s: &str) -> Duration {
    s.parse().unwrap()
}

fn close_of(date: NaiveDate) -> DateTime<Utc> {
    calendar::session(date).unwrap().unwrap().close
}

fn near_atm(m: &Market, symbol: &str, date: NaiveDate) -> SimContract {
    let spot = m.close(symbol, date).unwrap();
    m.existing_contracts(symbol)
        .into_iter()
        .filter(|c| c.right == Right::C && c.expiry > date + chrono::Duration::days(14))
        .min_by(|a, b| {
            (a.strike - spot)
                .abs()
                .total_cmp(&(b.strike - spot).abs())
                .then(a.expiry.cmp(&b.expiry))
        })
        .unwrap()
}

#[test]
fn universe_and_chains() {
    let m = Market::new(7, today());
    assert_eq!(m.underlyings().len(), 14);
    let spy = m.chain("SPY").unwrap();
    assert_eq!(spy.exchanges[0], "SMART");
    let class = &spy.classes[0];
    assert!(class.expirations.len() >= 10, "{}", class.expirations.len());
    let existing = m.existing_contracts("SPY");
    let combos = class.expirations.len() * class.strikes.len() * 2;
    assert!(
        existing.len() < combos,
        "some listed combinations must not exist"
    );
    assert!(existing.len() > 1000, "{}", existing.len());
    for c in existing.iter().step_by(97) {
        assert_eq!(m.contract_by_id(c.con_id).as_ref(), Some(c));
        assert!(c.listing <= today() && c.expiry >= today());
    }
    let small = m.existing_contracts("PLUG").len();
    assert!((50..1500).contains(&small), "{small}");
    assert!(m.chain("NOPE").is_none());
}

#[test]
fn big_chain_knob() {
    let mut s = Scenario::preset("fast").unwrap();
    s.market.big_chain = Some("SPY".into());
    let m = Market::from_scenario(&s);
    let n = m.existing_contracts("SPY").len();
    assert!((8_000..14_000).contains(&n), "{n}");
}

#[test]
fn deterministic_and_independent_of_today() {
    let a = Market::new(7, today());
    let b = Market::new(7, today() + chrono::Duration::days(1));
    let c = near_atm(&a, "AAPL", today());
    let end = close_of(d(2026, 11, 30));
    for what in ["TRADES", "MIDPOINT", "BID_ASK"] {
        let x = a
            .bars(c.con_id, what, BarSize::Mins30, end, dur("5 D"), true)
            .unwrap();
        let y = b
            .bars(c.con_id, what, BarSize::Mins30, end, dur("5 D"), true)
            .unwrap();
        assert_eq!(x, y, "{what}");
    }
    let other_seed = Market::new(8, today());
    let spy = a.underlying("SPY").unwrap().con_id;
    let x = a
        .bars(spy, "TRADES", BarSize::Day1, end, dur("5 D"), true)
        .unwrap();
    let y = other_seed
        .bars(spy, "TRADES", BarSize::Day1, end, dur("5 D"), true)
        .unwrap();
    assert_ne!(x, y);
}

#[test]
fn bars_do_not_depend_on_what_was_asked_before() {
    // The session knots are shared across requests: a market that served other contracts of
    // the symbol first (knots cached) answers exactly as a fresh one.
    let end = close_of(d(2026, 11, 20));
    let fresh = Market::new(3, today());
    let warm = Market::new(3, today());
    let contracts = warm.existing_contracts("AAPL");
    for other in contracts.iter().rev().step_by(97).take(5) {
        warm.bars(
            other.con_id,
            "TRADES",
            BarSize::Hours8,
            end,
            dur("2 M"),
            true,
        )
        .unwrap_or_default();
    }
    let c = near_atm(&fresh, "AAPL", d(2026, 11, 20));
    for (what, bar, du) in [
        ("TRADES", BarSize::Hours8, "2 M"),
        ("TRADES", BarSize::Mins30, "5 D"),
        ("MIDPOINT", BarSize::Mins30, "5 D"),
    ] {
        let x = fresh.bars(c.con_id, what, bar, end, dur(du), true).unwrap();
        let y = warm.bars(c.con_id, what, bar, end, dur(du), true).unwrap();
        assert!(!x.is_empty(), "{what} {bar}");
        assert_eq!(x, y, "{what} {bar}");
    }
}

#[test]
fn eight_hour_and_thirty_minute_alignment() {
    let m = Market::new(7, today());
    let c = near_atm(&m, "SPY", today());
    let bars = m
        .bars(
            c.con_id,
            "MIDPOINT",
            BarSize::Hours8,
            m.now(),
            dur("6 M"),
            true,
        )
        .unwrap();
    for b in &bars {
        assert_eq!(
            to_ny(b.ts).time(),
            NaiveTime::from_hms_opt(9, 30, 0).unwrap()
        );
        assert!(b.ts.date_naive() >= c.listing - chrono::Duration::days(1));
    }
    let bars = m
        .bars(
            c.con_id,
            "MIDPOINT",
            BarSize::Mins30,
            m.now(),
            dur("1 M"),
            true,
        )
        .unwrap();
    // SPY options trade until 16:15 (13:15 on the half day): the 16:00 (13:00) bar is a
    // quarter hour long.
    let half: Vec<_> = bars.iter().filter(|b| b.date == d(2026, 11, 27)).collect();
    assert_eq!(half.len(), 8);
    assert_eq!(
        half.last().unwrap().ts,
        ny_to_utc(d(2026, 11, 27), NaiveTime::from_hms_opt(13, 0, 0).unwrap())
    );
    let full: Vec<_> = bars.iter().filter(|b| b.date == d(2026, 11, 24)).collect();
    assert_eq!(full.len(), 14);
    for b in &bars {
        assert!(b.low <= b.open && b.open <= b.high && b.low <= b.close && b.close <= b.high);
    }
    // AAPL options stop with the stock at 16:00 (13:00).
    let a = near_atm(&m, "AAPL", today());
    let bars = m
        .bars(
            a.con_id,
            "MIDPOINT",
            BarSize::Mins30,
            m.now(),
            dur("1 M"),
            true,
        )
        .unwrap();
    let half: Vec<_> = bars.iter().filter(|b| b.date == d(2026, 11, 27)).collect();
    assert_eq!(half.len(), 7);
    assert_eq!(
        half.last().unwrap().ts,
        ny_to_utc(d(2026, 11, 27), NaiveTime::from_hms_opt(12, 30, 0).unwrap())
    );
    assert_eq!(
        bars.iter().filter(|b| b.date == d(2026, 11, 24)).count(),
        13
    );
}

#[test]
fn listing_dates_bound_the_bars() {
    let m = Market::new(7, today());
    let c = m
        .existing_contracts("AAPL")
        .into_iter()
        .find(|c| c.listing > today() - chrono::Duration::days(20) && c.listing < today())
        .expect("a recently listed weekly");
    let head = m.head_timestamp(c.con_id).unwrap();
    assert_eq!(to_ny(head).date_naive(), c.listing);
    let bars = m
        .bars(
            c.con_id,
            "MIDPOINT",
            BarSize::Hours8,
            m.now(),
            dur("1 Y"),
            true,
        )
        .unwrap();
    assert_eq!(bars[0].ts, head);
}

#[test]
fn errors() {
    let m = Market::new(7, today());
    let c = near_atm(&m, "SPY", today());
    let now = m.now();
    assert_eq!(
        m.bars(c.con_id, "TRADES", BarSize::Day1, now, dur("5 D"), true)
            .unwrap_err()
            .code,
        162
    );
    let e = m
        .bars(c.con_id, "TRADES", BarSize::Min1, now, dur("1 W"), true)
        .unwrap_err();
    assert_eq!(e, HmdsError::too_long());
    let mut silent = Scenario::preset("fast").unwrap();
    silent.hmds.over_limit = OverLimit::SilentEmpty;
    silent.seed = 7;
    let sm = Market::from_scenario(&silent);
    assert_eq!(
        sm.bars(c.con_id, "TRADES", BarSize::Min1, now, dur("6 M"), true),
        Ok(vec![])
    );
    assert_eq!(
        m.bars(12345, "TRADES", BarSize::Hours8, now, dur("1 D"), true)
            .unwrap_err()
            .code,
        200
    );
    // An option that expired before today: 200, while a server on its expiry day serves it.
    let earlier = Market::new(7, d(2026, 10, 1));
    let old = earlier
        .existing_contracts("SPY")
        .into_iter()
        .find(|c| c.expiry < today())
        .unwrap();
    assert_eq!(
        m.bars(
            old.con_id,
            "MIDPOINT",
            BarSize::Hours8,
            now,
            dur("1 M"),
            true
        )
        .unwrap_err()
        .code,
        200
    );
    assert!(earlier
        .bars(
            old.con_id,
            "MIDPOINT",
            BarSize::Hours8,
            earlier.now(),
            dur("1 M"),
            true
        )
        .is_ok());
    let spy = m.underlying("SPY").unwrap();
    let daily = m
        .bars(spy.con_id, "TRADES", BarSize::Day1, now, dur("5 D"), true)
        .unwrap();
    assert_eq!(daily.len(), 5);
    assert_eq!(
        daily.last().unwrap().close,
        m.close("SPY", today()).unwrap()
    );
}

#[test]
fn empty_rate_far_otm_vs_near_atm() {
    let m = Market::new(7, today());
    let end = close_of(d(2026, 11, 30));
    let spot = m.close("AAPL", d(2026, 11, 30)).unwrap();
    let all: Vec<_> = m
        .existing_contracts("AAPL")
        .into_iter()
        .filter(|c| c.listing < d(2026, 11, 1))
        .collect();
    let rate = |pred: &dyn Fn(&SimContract) -> bool| {
        let set: Vec<_> = all.iter().filter(|c| pred(c)).take(40).collect();
        assert!(set.len() >= 10, "{}", set.len());
        let empty = set
            .iter()
            .filter(|c| {
                m.bars(c.con_id, "TRADES", BarSize::Mins30, end, dur("1 D"), true)
                    .is_err_and(|e| e.is_no_data())
            })
            .count();
        empty as f64 / set.len() as f64
    };
    let near = rate(&|c| (c.strike / spot - 1.0).abs() < 0.03);
    let far = rate(&|c| {
        (c.right == Right::C && c.strike / spot > 1.2)
            || (c.right == Right::P && c.strike / spot < 0.8)
    });
    assert!(near < 0.2, "near-ATM EMPTY rate {near}");
    assert!(far > 0.6, "far-OTM EMPTY rate {far}");
}

#[test]
fn extra_symbols_have_chains_and_distinct_con_ids() {
    let mut s = Scenario::preset("fast").unwrap();
    s.market.extra_symbols = 120;
    let m = Market::from_scenario(&s);
    assert_eq!(m.underlyings().len(), 134);
    let mut ids = std::collections::HashSet::new();
    for u in m.underlyings() {
        assert!(
            ids.insert(u.con_id),
            "duplicate underlying conId {}",
            u.con_id
        );
    }
    for sym in ["SYM001", "SYM060", "SYM120"] {
        let contracts = m.existing_contracts(sym);
        assert!(contracts.len() > 20, "{sym}: {}", contracts.len());
        for c in &contracts {
            assert!(ids.insert(c.con_id), "duplicate conId {}", c.con_id);
            assert_eq!(m.contract_by_id(c.con_id).as_ref(), Some(c));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever a client sends as end, duration and bar size, the market answers or errs; it
    /// never panics.
    #[test]
    fn arbitrary_requests_never_panic(
        end in "\\PC{0,24}",
        n in 0u32..=u32::MAX,
        unit in 0usize..5,
        bar in 0usize..21,
        con in proptest::prelude::any::<i64>(),
    ) {
        let m = Market::new(1, today());
        let _ = window::parse_end(&end);
        let d = Duration { n: n.max(1), unit: [ib_model::bars::DurationUnit::Seconds, ib_model::bars::DurationUnit::Days, ib_model::bars::DurationUnit::Weeks, ib_model::bars::DurationUnit::Months, ib_model::bars::DurationUnit::Years][unit] };
        let _ = window::window_start(m.now(), d);
        let bar = ib_model::bars::BAR_SIZES[bar].0;
        let spy = near_atm(&m, "SPY", today()).con_id;
        for id in [con, spy] {
            let _ = m.bars(id, "MIDPOINT", bar, m.now(), d, true);
        }
    }
}

/// The clock pinned at 10:00 New York on `today` (a session still open): earlier sessions'
/// daily bars close at the market's closes, today's bar is the partial one up to 10:00, whose
/// close is the last minute bar's; the same answers whatever the wall clock says.
#[test]
fn clock_pinned_inside_todays_session() {
    let mut s = Scenario::preset("fast").unwrap();
    s.seed = 7;
    s.today = today();
    let ten = ny_to_utc(today(), NaiveTime::from_hms_opt(10, 0, 0).unwrap());
    s.clock = SimClock::At(ten);
    assert_eq!(s.validate(), Ok(()));
    let m = Market::from_scenario(&s);
    assert_eq!(m.now(), ten);
    let spy = m.underlying("SPY").unwrap().con_id;
    let daily = m
        .bars(spy, "TRADES", BarSize::Day1, m.now(), dur("5 D"), true)
        .unwrap();
    assert_eq!(daily.len(), 5);
    for bar in &daily[..4] {
        assert_eq!(Some(bar.close), m.close("SPY", bar.date), "{}", bar.date);
    }
    let last = daily.last().unwrap();
    assert_eq!(last.date, today());
    let minutes = m
        .bars(spy, "TRADES", BarSize::Min1, m.now(), dur("1 D"), true)
        .unwrap();
    let last_minute = minutes.last().unwrap();
    assert!(last_minute.ts < ten, "no bar starts at or after the clock");
    assert_eq!(to_ny(last_minute.ts).date_naive(), today());
    assert_eq!(last.close, last_minute.close);
    // The default clock is today's close: the full day, whatever time the suite runs at.
    let closed = Market::new(7, today());
    let full = closed
        .bars(spy, "TRADES", BarSize::Day1, closed.now(), dur("5 D"), true)
        .unwrap();
    assert_eq!(
        full.last().unwrap().close,
        closed.close("SPY", today()).unwrap()
    );
    // A pinned instant on another day is refused by validation, naming the key.
    s.clock = SimClock::At(ten - chrono::Duration::days(1));
    assert_eq!(s.validate().unwrap_err().0, "clock");
}

#[test]
fn etf_options_trade_until_16_15_and_stock_options_until_16_00() {
    let m = Market::new(7, today());
    let full = d(2026, 11, 25);
    let late_close = close_of(full) + chrono::Duration::minutes(15);
    for (symbol, last) in [
        ("SPY", (16, 14)),
        ("QQQ", (16, 14)),
        ("IWM", (16, 14)),
        ("DIA", (16, 14)),
        ("SPX", (16, 14)),
        ("AAPL", (15, 59)),
        ("MSFT", (15, 59)),
    ] {
        let c = near_atm(&m, symbol, full);
        // Asked up to 16:15: the class's own close bounds the bars.
        let bars = m
            .bars(
                c.con_id,
                "MIDPOINT",
                BarSize::Min1,
                late_close,
                dur("1 D"),
                true,
            )
            .unwrap();
        let t = to_ny(bars.last().unwrap().ts).time();
        assert_eq!(
            t,
            NaiveTime::from_hms_opt(last.0, last.1, 0).unwrap(),
            "{symbol}"
        );
        if symbol == "SPX" {
            continue; // extended sessions: see the next test
        }
        // use_rth = false is served the same hours (no ETF option session outside them).
        let all = m
            .bars(
                c.con_id,
                "MIDPOINT",
                BarSize::Min1,
                late_close,
                dur("1 D"),
                false,
            )
            .unwrap();
        assert_eq!(all, bars, "{symbol}");
    }
    // The underlying stock stops at 16:00 whatever the end.
    let spy = m.underlying("SPY").unwrap().con_id;
    let bars = m
        .bars(spy, "TRADES", BarSize::Min1, late_close, dur("1 D"), true)
        .unwrap();
    assert_eq!(
        to_ny(bars.last().unwrap().ts).time(),
        NaiveTime::from_hms_opt(15, 59, 0).unwrap()
    );
}

#[test]
fn spx_is_an_index_with_monthly_spx_and_weekly_spxw_classes() {
    use crate::codec::ContractQuery;
    use crate::lookup;
    let m = Market::new(7, today());
    let spx = m.underlying("SPX").unwrap();
    assert!(spx.is_index());
    // Qualified as IND on CBOE only: not as a stock, not on another exchange.
    let q = |sec: &str, ex: &str| ContractQuery {
        symbol: "SPX".into(),
        sec_type: sec.into(),
        exchange: ex.into(),
        currency: "USD".into(),
        ..Default::default()
    };
    let found = lookup::find(&m, &q("IND", "CBOE"));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].con_id, found[0].sec_type.as_str()),
        (416904, "IND")
    );
    assert_eq!(found[0].exchange, "CBOE");
    assert!(lookup::find(&m, &q("STK", "SMART")).is_empty());
    assert!(lookup::find(&m, &q("IND", "SMART")).is_empty());
    assert!(lookup::find(&m, &q("IND", "")).is_empty());
    // Two classes: SPX (third Fridays) and SPXW (the other Fridays).
    let chain = m.chain("SPX").unwrap();
    let names: Vec<&str> = chain
        .classes
        .iter()
        .map(|c| c.trading_class.as_str())
        .collect();
    assert_eq!(names, ["SPX", "SPXW"]);
    assert_eq!(chain.underlying_con_id, 416904);
    for c in &chain.classes {
        for e in &c.expirations {
            let monthly = chain::is_monthly(chain::week_of(*e).unwrap());
            assert_eq!(monthly, c.trading_class == "SPX", "{} {e}", c.trading_class);
        }
    }
    let contracts = m.existing_contracts("SPX");
    let weekly = contracts
        .iter()
        .find(|c| c.trading_class == "SPXW")
        .unwrap();
    assert!(
        weekly.local_symbol.starts_with("SPXW  "),
        "{}",
        weekly.local_symbol
    );
    let monthly = contracts.iter().find(|c| c.trading_class == "SPX").unwrap();
    assert!(
        monthly.local_symbol.starts_with("SPX   "),
        "{}",
        monthly.local_symbol
    );
    // An option's details name the index as its underlying and carry the 16:15 close.
    let info = lookup::option_info(&m, weekly, "SMART");
    assert_eq!(
        (info.under_con_id, info.under_sec_type.as_str()),
        (416904, "IND")
    );
    assert!(
        info.liquid_hours.contains("0930-20261201:1615"),
        "{}",
        info.liquid_hours
    );
    // Qualifying a weekly by class finds it; the wrong class does not.
    let oq = ContractQuery {
        symbol: "SPX".into(),
        sec_type: "OPT".into(),
        expiry: weekly.expiry.format("%Y%m%d").to_string(),
        strike: weekly.strike,
        right: weekly.right.as_str().into(),
        exchange: "SMART".into(),
        trading_class: "SPXW".into(),
        ..Default::default()
    };
    assert_eq!(lookup::find(&m, &oq)[0].con_id, weekly.con_id);
    let wrong = ContractQuery {
        trading_class: "SPX".into(),
        ..oq.clone()
    };
    assert!(lookup::find(&m, &wrong).is_empty());
    // The index's daily closes are served (an index reference close).
    let bars = m
        .bars(
            416904,
            "TRADES",
            BarSize::Day1,
            close_of(d(2026, 11, 27)),
            dur("5 D"),
            true,
        )
        .unwrap();
    assert_eq!(
        bars.last().unwrap().close,
        m.close("SPX", d(2026, 11, 27)).unwrap()
    );
}

#[test]
fn spx_options_get_overnight_and_curb_bars_when_use_rth_is_false() {
    let m = Market::new(7, today());
    let full = d(2026, 11, 25);
    let c = near_atm(&m, "SPX", full);
    let end = close_of(full) + chrono::Duration::minutes(60);
    let get = |rth: bool| {
        m.bars(c.con_id, "MIDPOINT", BarSize::Hour1, end, dur("1 D"), rth)
            .unwrap()
    };
    let labels = |bars: &[SimBar]| -> Vec<String> {
        bars.iter()
            .map(|b| to_ny(b.ts).format("%d %H:%M").to_string())
            .collect()
    };
    let rth = get(true);
    assert_eq!(
        labels(&rth),
        [
            "25 09:30", "25 10:00", "25 11:00", "25 12:00", "25 13:00", "25 14:00", "25 15:00",
            "25 16:00"
        ]
    );
    let all = get(false);
    let l = labels(&all);
    // From 20:15 the evening before to the curb's 16:00-17:00 hour.
    assert_eq!(l.first().map(String::as_str), Some("24 20:15"));
    assert_eq!(l.last().map(String::as_str), Some("25 16:00"));
    // The 09:00 hour holds 09:00-09:15 and 09:30-10:00 (no 09:30 bar).
    assert!(l.contains(&"25 09:00".to_string()) && !l.contains(&"25 09:30".to_string()));
    assert_eq!(all.len(), 4 + 10 + 6 + 1, "{l:?}");
    // The whole regular hours in between are the same bars; the 16:00 hour runs into the curb.
    for b in &rth[1..rth.len() - 1] {
        assert!(all.contains(b), "{b:?}");
    }
    // Absent an end, an all-hours request runs to the curb's end.
    assert_eq!(
        m.now_of_hours(c.con_id, false),
        close_of(today()) + chrono::Duration::minutes(60)
    );
    assert_eq!(
        m.now_of_hours(c.con_id, true),
        close_of(today()) + chrono::Duration::minutes(15)
    );
}
