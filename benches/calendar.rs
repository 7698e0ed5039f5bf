//! Calendar lookup benchmark (not a timed test): the plan compiler and the simulator ask the
//! calendar for sessions very often. Prints the time per `session`, `session_on_or_before` and
//! one-month `sessions_between` call over days spread across 2020-2030.
//!
//! Run with `cargo bench --bench calendar`.

use chrono::NaiveDate;
use opt_backfill::calendar;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let first = NaiveDate::from_ymd_opt(2020, 2, 1).unwrap();
    let days: Vec<NaiveDate> = (0..3_900u64)
        .map(|i| first + chrono::Days::new(i))
        .collect();
    let rounds = 100;
    let calls = (days.len() * rounds) as f64;

    let t = Instant::now();
    for _ in 0..rounds {
        for d in &days {
            black_box(calendar::session(black_box(*d)).unwrap());
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / calls;
    println!("session:              {ns:.0} ns/call");

    let t = Instant::now();
    for _ in 0..rounds {
        for d in &days {
            black_box(calendar::session_on_or_before(black_box(*d)).unwrap());
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / calls;
    println!("session_on_or_before: {ns:.0} ns/call");

    let t = Instant::now();
    for _ in 0..rounds / 10 {
        for d in &days {
            let from = *d - chrono::Days::new(30);
            black_box(calendar::sessions_between(from, black_box(*d)).unwrap());
        }
    }
    let us = t.elapsed().as_nanos() as f64 / (calls / 10.0) / 1000.0;
    println!("sessions_between 1 M: {us:.2} us/call");
}
