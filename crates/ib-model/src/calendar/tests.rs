use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[test]
fn thanksgiving_week_2026() {
    assert!(
        !is_session(d(2026, 11, 26)).unwrap(),
        "Thanksgiving is closed"
    );
    let fri = session(d(2026, 11, 27)).unwrap().unwrap();
    assert!(fri.half_day);
    assert_eq!(to_ny(fri.close).time(), HALF_DAY_CLOSE);
    let wed = session(d(2026, 11, 25)).unwrap().unwrap();
    assert!(!wed.half_day);
    assert_eq!(to_ny(wed.open).time(), RTH_OPEN);
    assert_eq!(wed.close - wed.open, chrono::Duration::minutes(390));
}

#[test]
fn weekend_resolves_to_friday() {
    assert_eq!(
        session_on_or_before(d(2026, 11, 29)).unwrap().date,
        d(2026, 11, 27)
    );
    assert_eq!(
        session_after(d(2026, 11, 25)).unwrap().date,
        d(2026, 11, 27)
    );
}

#[test]
fn last_complete_session_waits_for_close() {
    let during = ny_to_utc(d(2026, 11, 24), NaiveTime::from_hms_opt(12, 0, 0).unwrap());
    assert_eq!(last_complete_session(during).unwrap().date, d(2026, 11, 23));
    let after = ny_to_utc(d(2026, 11, 24), NaiveTime::from_hms_opt(16, 0, 0).unwrap());
    assert_eq!(last_complete_session(after).unwrap().date, d(2026, 11, 24));
}

#[test]
fn out_of_range_is_an_error() {
    assert!(is_session(d(2036, 1, 2)).is_err());
    assert!(is_session(d(1999, 12, 31)).is_err());
    assert!(is_session(d(2035, 12, 31)).unwrap());
    assert!(is_session(d(2000, 1, 3)).unwrap());
    assert_eq!(
        sessions_between(d(2035, 12, 1), d(2036, 1, 5)),
        Err(OutOfRange(d(2036, 1, 5)))
    );
    assert_eq!(
        session_after(d(2035, 12, 31)),
        Err(OutOfRange(d(2036, 1, 1)))
    );
    assert_eq!(
        session_on_or_before(d(2000, 1, 2)),
        Err(OutOfRange(d(1999, 12, 31)))
    );
}

#[test]
fn saturday_holidays_close_the_friday_before_except_new_year() {
    let closed = [
        d(2027, 6, 18),
        d(2027, 12, 24),
        d(2021, 12, 24),
        d(2026, 7, 3),
    ];
    for day in closed {
        assert_eq!(session(day).unwrap(), None, "{day} is closed");
    }
    // The Mondays after stay open, and New Year's Day on a Saturday closes no day at all.
    for day in [
        d(2027, 6, 21),
        d(2027, 12, 27),
        d(2022, 1, 3),
        d(2021, 12, 31),
        d(2028, 1, 3),
    ] {
        let s = session(day)
            .unwrap()
            .unwrap_or_else(|| panic!("{day} is a session"));
        assert!(!s.half_day, "{day} is a full day");
    }
    // With Christmas Eve closed, 2027 has no Christmas half day; 2021-12-23 is a full day too.
    assert!(!session(d(2027, 12, 23)).unwrap().unwrap().half_day);
    assert!(!session(d(2021, 12, 23)).unwrap().unwrap().half_day);
}

#[test]
fn one_off_closures() {
    for day in [
        d(2001, 9, 11),
        d(2001, 9, 12),
        d(2001, 9, 13),
        d(2001, 9, 14),
        d(2004, 6, 11),
        d(2007, 1, 2),
        d(2012, 10, 29),
        d(2012, 10, 30),
        d(2018, 12, 5),
        d(2025, 1, 9),
    ] {
        assert_eq!(session(day).unwrap(), None, "{day} is closed");
    }
    assert_eq!(
        session_on_or_before(d(2001, 9, 16)).unwrap().date,
        d(2001, 9, 10)
    );
    assert_eq!(session_after(d(2001, 9, 10)).unwrap().date, d(2001, 9, 17));
    assert_eq!(
        sessions_between(d(2025, 1, 6), d(2025, 1, 10))
            .unwrap()
            .iter()
            .map(|s| s.date)
            .collect::<Vec<_>>(),
        [d(2025, 1, 6), d(2025, 1, 7), d(2025, 1, 8), d(2025, 1, 10)]
    );
}

#[test]
fn early_closes_are_at_13_00_new_york() {
    for day in [
        d(2003, 12, 26),
        d(2013, 7, 3),
        d(2026, 11, 27),
        d(2026, 12, 24),
        d(2035, 11, 23),
    ] {
        let s = session(day).unwrap().unwrap();
        assert!(s.half_day, "{day}");
        assert_eq!(to_ny(s.close).time(), HALF_DAY_CLOSE, "{day}");
        assert_eq!(to_ny(s.open).time(), RTH_OPEN, "{day}");
    }
}

/// Every day 2000-01-01..2035-12-31 against `data/xnys_sessions.txt`, the sessions of
/// `exchange_calendars`' XNYS calendar written by `scripts/nyse_calendar.py`.
#[test]
fn every_day_matches_exchange_calendars_xnys() {
    const XNYS: &str = include_str!("../../data/xnys_sessions.txt");
    let hm = |s: &str| NaiveTime::parse_from_str(s, "%H%M").unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for line in XNYS.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "{line}");
        let date = NaiveDate::parse_from_str(f[0], "%Y%m%d").unwrap();
        expected.insert(date, (hm(f[1]), hm(f[2])));
    }
    assert!(expected.len() > 9000, "{} sessions", expected.len());
    let mut days = 0;
    for date in d(MIN_YEAR, 1, 1)
        .iter_days()
        .take_while(|x| *x <= d(MAX_YEAR, 12, 31))
    {
        days += 1;
        let ours = session(date).unwrap();
        match (ours, expected.get(&date)) {
            (None, None) => {}
            (Some(s), Some(&(open, close))) => {
                assert_eq!(s.date, date);
                assert_eq!(s.open, ny_to_utc(date, open), "{date} open");
                assert_eq!(s.close, ny_to_utc(date, close), "{date} close");
                assert_eq!(to_ny(s.close).time(), close, "{date} close (New York)");
                assert_eq!(s.half_day, close < RTH_CLOSE, "{date} half-day flag");
            }
            (ours, theirs) => panic!("{date}: calendar {ours:?}, XNYS {theirs:?}"),
        }
    }
    assert_eq!(days, 13_149);
    assert_eq!(
        sessions_between(d(MIN_YEAR, 1, 1), d(MAX_YEAR, 12, 31))
            .unwrap()
            .len(),
        expected.len()
    );
}

#[test]
fn known_holidays() {
    for h in [
        d(2026, 1, 1),
        d(2026, 4, 3),
        d(2026, 7, 3),
        d(2026, 12, 25),
        d(2026, 6, 19),
    ] {
        assert!(!is_session(h).unwrap(), "{h} should be closed");
    }
    assert!(session(d(2026, 12, 24)).unwrap().unwrap().half_day);
}

#[test]
fn overnight_bars_belong_to_the_next_session() {
    let at = |date: NaiveDate, h: u32, m: u32| {
        ny_to_utc(date, chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap())
    };
    // Tuesday 16:00 (curb) stays Tuesday; 20:15 belongs to Wednesday.
    assert_eq!(trading_date(at(d(2026, 11, 24), 16, 0)), d(2026, 11, 24));
    assert_eq!(trading_date(at(d(2026, 11, 24), 19, 59)), d(2026, 11, 24));
    assert_eq!(trading_date(at(d(2026, 11, 24), 20, 15)), d(2026, 11, 25));
    // Wednesday evening before Thanksgiving: the Friday half day; Sunday evening: Monday.
    assert_eq!(trading_date(at(d(2026, 11, 25), 20, 15)), d(2026, 11, 27));
    assert_eq!(trading_date(at(d(2026, 11, 29), 23, 0)), d(2026, 11, 30));
    assert_eq!(trading_date(at(d(2026, 11, 30), 3, 0)), d(2026, 11, 30));
}
