//! Near-the-money selection: which contracts a `near-atm` phase fetches for one symbol.
//!
//! The strikes depend on the reference close, known only at run time, but the number of
//! requests does not: it is, for each of the E nearest expiries after the end and each right,
//! min(K, contracts there) x windows. [`selected_count`] counts the contracts at compile time and
//! [`select`] picks the same number of contracts for any close, so the dry-run count is exact.

use super::manifest::{CellInfo, Selection};
use super::task::{task_id, FetchTask};
use crate::bars::WhatToShow;
use crate::cache::{OptionContract, Right};
use chrono::NaiveDate;
use std::sync::Arc;

/// The E nearest expiries strictly after `window_end` among `candidates`, ascending.
pub fn nearest_expiries(
    candidates: &[OptionContract],
    window_end: NaiveDate,
    expiries: usize,
) -> Vec<NaiveDate> {
    let mut out: Vec<NaiveDate> = candidates
        .iter()
        .map(|c| c.expiry)
        .filter(|e| *e > window_end)
        .collect();
    out.sort_unstable();
    out.dedup();
    out.truncate(expiries);
    out
}

/// Pick the near-the-money contracts: the E nearest expiries strictly after `window_end`; for
/// each expiry and right, the K contracts with the smallest |strike - close| (ties go to the
/// lower strike, then trading class and conId); merged, deduplicated by conId, in canonical
/// cache order. Pure and deterministic; any `close` (even NaN) is accepted.
pub fn select(
    candidates: &[OptionContract],
    close: f64,
    window_end: NaiveDate,
    strikes: usize,
    expiries: usize,
) -> Vec<OptionContract> {
    let exps = nearest_expiries(candidates, window_end, expiries);
    let mut out: Vec<OptionContract> = Vec::new();
    for e in &exps {
        for right in [Right::C, Right::P] {
            let mut group: Vec<&OptionContract> = candidates
                .iter()
                .filter(|c| c.expiry == *e && c.right == right)
                .collect();
            group.sort_by(|a, b| {
                (a.strike - close)
                    .abs()
                    .total_cmp(&(b.strike - close).abs())
                    .then(a.strike.total_cmp(&b.strike))
                    .then(a.trading_class.cmp(&b.trading_class))
                    .then(a.con_id.cmp(&b.con_id))
            });
            out.extend(group.into_iter().take(strikes).cloned());
        }
    }
    out.sort_by(OptionContract::canonical_cmp);
    out.dedup_by_key(|c| c.con_id);
    out
}

/// The number of contracts [`select`] returns for any close: sum over the E nearest expiries
/// and both rights of min(K, contracts of that expiry and right). Assumes unique conIds (the
/// cache loader enforces it).
pub fn selected_count(
    candidates: &[OptionContract],
    window_end: NaiveDate,
    strikes: usize,
    expiries: usize,
) -> usize {
    nearest_expiries(candidates, window_end, expiries)
        .iter()
        .map(|e| {
            [Right::C, Right::P]
                .iter()
                .map(|r| {
                    candidates
                        .iter()
                        .filter(|c| c.expiry == *e && c.right == *r)
                        .count()
                        .min(strikes)
                })
                .sum::<usize>()
        })
        .sum()
}

/// The fetch tasks of one contract for a phase's cells, in cell then window order. The `all`
/// path and [`expand_selection`] both use it, so a contract gets the same ids either way.
pub fn contract_tasks(
    phase: &str,
    symbol: &str,
    what: WhatToShow,
    use_rth: bool,
    contract: &OptionContract,
    cells: &[CellInfo],
    out: &mut Vec<FetchTask>,
) {
    // One allocation of each per contract, shared by its tasks ([`super::task::share_parts`] shares them
    // across contracts and phases).
    let (phase, symbol): (Arc<str>, Arc<str>) = (phase.into(), symbol.into());
    let shared = Arc::new(contract.clone());
    for cell in cells {
        for (i, w) in cell.windows_for(&contract.trading_class).iter().enumerate() {
            out.push(FetchTask {
                id: task_id(
                    contract.con_id,
                    what.as_str(),
                    cell.size,
                    w.end,
                    w.duration,
                    use_rth,
                ),
                phase: phase.clone(),
                symbol: symbol.clone(),
                contract: shared.clone(),
                what,
                bar_size: cell.size,
                duration: w.duration,
                end: w.end,
                use_rth,
                window: u32::try_from(i).unwrap_or(u32::MAX),
            });
        }
    }
}

/// The fetch tasks of a selection once its contracts are chosen (normally
/// `select(&selection.candidates, close, selection.window_end, K, E)`), sorted by conId, cell and
/// window like the manifest's tasks.
pub fn expand_selection(selection: &Selection, chosen: &[OptionContract]) -> Vec<FetchTask> {
    let mut chosen: Vec<&OptionContract> = chosen.iter().collect();
    chosen.sort_by_key(|c| c.con_id);
    chosen.dedup_by_key(|c| c.con_id);
    let mut out = Vec::new();
    for c in chosen {
        contract_tasks(
            &selection.phase,
            &selection.symbol,
            selection.what,
            selection.use_rth,
            c,
            &selection.cells,
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn c(id: i64, expiry: NaiveDate, right: Right, strike: f64) -> OptionContract {
        OptionContract {
            con_id: id,
            local_symbol: format!("X {id}"),
            trading_class: "X".into(),
            expiry,
            strike,
            right,
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
        }
    }

    fn chain() -> Vec<OptionContract> {
        let mut v = Vec::new();
        let mut id = 1;
        for e in [
            d(2026, 11, 27),
            d(2026, 12, 4),
            d(2026, 12, 11),
            d(2026, 12, 18),
        ] {
            for r in [Right::C, Right::P] {
                for k in [90.0, 95.0, 100.0, 105.0, 110.0] {
                    v.push(c(id, e, r, k));
                    id += 1;
                }
            }
        }
        v
    }

    #[test]
    fn picks_nearest_strikes_of_nearest_expiries_after_end() {
        let s = select(&chain(), 101.0, d(2026, 11, 27), 2, 2);
        // 2026-11-27 is not after the end: expiries 12-04 and 12-11; strikes 100 and 105.
        assert_eq!(s.len(), 2 * 2 * 2);
        assert!(s
            .iter()
            .all(|x| x.expiry == d(2026, 12, 4) || x.expiry == d(2026, 12, 11)));
        assert!(s.iter().all(|x| x.strike == 100.0 || x.strike == 105.0));
        // Canonical order.
        assert_eq!(s[0].expiry, d(2026, 12, 4));
        assert_eq!(s[0].right, Right::C);
        assert_eq!(s[0].strike, 100.0);
    }

    #[test]
    fn ties_go_to_the_lower_strike() {
        // 102.5 is as far from 100 as from 105.
        let s = select(&chain(), 102.5, d(2026, 11, 27), 1, 1);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|x| x.strike == 100.0), "{s:?}");
        // Three strikes around 100: 100 first, then the tie 95/105 goes to 95.
        let s = select(&chain(), 100.0, d(2026, 11, 27), 2, 1);
        let calls: Vec<f64> = s
            .iter()
            .filter(|x| x.right == Right::C)
            .map(|x| x.strike)
            .collect();
        assert_eq!(calls, vec![95.0, 100.0]);
    }

    #[test]
    fn fewer_strikes_than_k_takes_all() {
        let s = select(&chain(), 100.0, d(2026, 11, 27), 50, 12);
        assert_eq!(s.len(), 3 * 10);
        assert_eq!(selected_count(&chain(), d(2026, 11, 27), 50, 12), 30);
    }

    #[test]
    fn nothing_after_end_selects_nothing() {
        assert!(select(&chain(), 100.0, d(2027, 1, 1), 5, 4).is_empty());
        assert!(select(&[], 100.0, d(2026, 1, 1), 5, 4).is_empty());
        assert!(select(&chain(), f64::NAN, d(2026, 11, 27), 1, 1).len() == 2);
    }

    proptest! {
        #[test]
        fn count_matches_selection_for_any_close(
            strikes in proptest::collection::vec((0usize..5, any::<bool>(), 1u32..40), 0..80),
            close in 0.0f64..100.0,
            k in 1usize..6,
            e in 1usize..5,
        ) {
            let exps = [d(2026, 11, 20), d(2026, 11, 27), d(2026, 12, 4), d(2026, 12, 11), d(2026, 12, 18)];
            let cands: Vec<OptionContract> = strikes.iter().enumerate().map(|(i, (x, call, k))| {
                c(i as i64 + 1, exps[*x], if *call { Right::C } else { Right::P }, f64::from(*k) * 2.5)
            }).collect();
            let end = d(2026, 11, 27);
            let s = select(&cands, close, end, k, e);
            prop_assert_eq!(s.len(), selected_count(&cands, end, k, e));
            prop_assert!(s.iter().all(|x| x.expiry > end));
            // Brute force: every selected contract has at most k-1 closer ones in its group.
            for x in &s {
                let better = cands.iter().filter(|y| y.expiry == x.expiry && y.right == x.right && {
                    let (dy, dx) = ((y.strike - close).abs(), (x.strike - close).abs());
                    dy < dx || (dy == dx && (y.strike, y.con_id) < (x.strike, x.con_id))
                }).count();
                prop_assert!(better < k);
            }
        }
    }
}
