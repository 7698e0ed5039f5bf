//! The scheduler's queue: tasks grouped into series (one per output file), series released in
//! manifest order once the phases they depend on are finished for their symbol.
//!
//! Why a series per file: two phases writing the same file (same contract, what-to-show and
//! bar size) must never merge into it at once, and a file's windows must run in order so each
//! merge sees the previous one. Why per symbol: a phase such as near-ATM minutes depends on the
//! same symbol's hours, not on the whole universe's.

use crate::bars::{BarSize, WhatToShow};
use crate::compile::task::FetchTask;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Everything that writes one output file, in phase (depends-on) then window order.
pub(super) struct Series {
    /// The phases whose tasks the series holds (shared with the tasks: a queue holds one
    /// series per file, hundreds of thousands on a weekend).
    pub phases: Vec<Arc<str>>,
    /// The underlying.
    pub symbol: Arc<str>,
    /// The tasks, in the order they run.
    pub tasks: Vec<FetchTask>,
}

/// Series not yet started: those ready to run, and those waiting for a phase they depend on.
pub(super) struct Queue {
    ready: VecDeque<Series>,
    /// Per symbol, series waiting for a phase of that symbol to finish.
    waiting: HashMap<String, Vec<Series>>,
    /// Per (phase, symbol), series not finished yet.
    remaining: HashMap<(String, String), usize>,
    deps: BTreeMap<String, Vec<String>>,
    /// Tasks in all series.
    pub tasks: u64,
}

impl Queue {
    /// Group `tasks` into series (manifest order kept), order each series' tasks by phase rank
    /// then window, and hold back the series whose dependencies are open.
    pub fn build(tasks: Vec<FetchTask>, deps: &BTreeMap<String, Vec<String>>) -> Queue {
        let rank = phase_ranks(deps);
        let mut order: Vec<(i64, WhatToShow, BarSize)> = Vec::new();
        let mut groups: HashMap<(i64, WhatToShow, BarSize), Series> = HashMap::new();
        for t in tasks {
            let key = (t.contract.con_id, t.what, t.bar_size);
            let s = groups.entry(key).or_insert_with(|| {
                order.push(key);
                Series {
                    phases: Vec::new(),
                    symbol: t.symbol.clone(),
                    tasks: Vec::new(),
                }
            });
            if !s.phases.iter().any(|p| **p == *t.phase) {
                s.phases.push(t.phase.clone());
            }
            s.tasks.push(t);
        }
        let mut q = Queue {
            ready: VecDeque::new(),
            waiting: HashMap::new(),
            remaining: HashMap::new(),
            deps: deps.clone(),
            tasks: 0,
        };
        let mut series = Vec::with_capacity(order.len());
        for key in order {
            if let Some(mut s) = groups.remove(&key) {
                s.tasks.sort_by(|a, b| {
                    let ra = rank.get(&*a.phase).copied().unwrap_or(0);
                    let rb = rank.get(&*b.phase).copied().unwrap_or(0);
                    (ra, &a.phase, a.window).cmp(&(rb, &b.phase, b.window))
                });
                q.tasks += s.tasks.len() as u64;
                for p in &s.phases {
                    *q.remaining
                        .entry((p.to_string(), s.symbol.to_string()))
                        .or_default() += 1;
                }
                series.push(s);
            }
        }
        for s in series {
            if q.blocked(&s) {
                q.waiting.entry(s.symbol.to_string()).or_default().push(s);
            } else {
                q.ready.push_back(s);
            }
        }
        q
    }

    /// A series waits while a phase it holds depends on a phase with unfinished series of the
    /// symbol other than itself (its own tasks run in depends-on order).
    fn blocked(&self, s: &Series) -> bool {
        s.phases.iter().any(|phase| {
            self.deps.get(&**phase).is_some_and(|ds| {
                ds.iter().any(|d| {
                    let open = self
                        .remaining
                        .get(&(d.clone(), s.symbol.to_string()))
                        .copied()
                        .unwrap_or(0);
                    open > usize::from(s.phases.iter().any(|p| **p == **d))
                })
            })
        })
    }

    /// The next ready series.
    pub fn pop(&mut self) -> Option<Series> {
        self.ready.pop_front()
    }

    /// No series ready (some may still wait).
    pub fn nothing_ready(&self) -> bool {
        self.ready.is_empty()
    }

    /// A series of `phases` of `symbol` finished (or stopped): release what waited for it.
    pub fn series_done(&mut self, phases: Vec<Arc<str>>, symbol: &str) {
        for phase in phases {
            if let Some(n) = self
                .remaining
                .get_mut(&(phase.to_string(), symbol.to_string()))
            {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(list) = self.waiting.remove(symbol) {
            let (now, later): (Vec<Series>, Vec<Series>) =
                list.into_iter().partition(|s| !self.blocked(s));
            self.ready.extend(now);
            if !later.is_empty() {
                self.waiting.insert(symbol.to_string(), later);
            }
        }
    }
}

/// Each phase's depth in the depends-on graph (0: depends on nothing).
fn phase_ranks(deps: &BTreeMap<String, Vec<String>>) -> HashMap<String, usize> {
    fn rank(
        p: &str,
        deps: &BTreeMap<String, Vec<String>>,
        memo: &mut HashMap<String, usize>,
        depth: usize,
    ) -> usize {
        if let Some(r) = memo.get(p) {
            return *r;
        }
        let r = if depth > deps.len() {
            0 // a cycle (refused by the plan compiler): do not recurse forever
        } else {
            deps.get(p)
                .map(|ds| {
                    ds.iter()
                        .map(|d| rank(d, deps, memo, depth + 1) + 1)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        };
        memo.insert(p.to_string(), r);
        r
    }
    let mut memo = HashMap::new();
    for p in deps.keys() {
        rank(p, deps, &mut memo, 0);
    }
    memo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::Duration;
    use crate::cache::Right;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn task(phase: &str, symbol: &str, con_id: i64, bar: BarSize, window: u32) -> FetchTask {
        FetchTask {
            id: format!("{phase}-{con_id}-{window}"),
            phase: phase.into(),
            symbol: symbol.into(),
            contract: std::sync::Arc::new(crate::cache::OptionContract {
                con_id,
                local_symbol: String::new(),
                trading_class: String::new(),
                expiry: NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
                strike: 100.0,
                right: Right::C,
                multiplier: 100.0,
                exchange: "SMART".into(),
                currency: "USD".into(),
            }),
            what: crate::bars::WhatToShow::Trades,
            bar_size: bar,
            duration: "1 M".parse::<Duration>().unwrap(),
            end: Utc.with_ymd_and_hms(2026, 11, 30, 21, 0, 0).unwrap(),
            use_rth: true,
            window,
        }
    }

    #[test]
    fn one_series_per_file_in_depends_on_order_released_per_symbol() {
        let deps = BTreeMap::from([("minutes".to_string(), vec!["hours".to_string()])]);
        let tasks = vec![
            // Same file from two phases: one series, the phase depended on first.
            task("minutes", "AAA", 1, BarSize::Hours8, 0),
            task("hours", "AAA", 1, BarSize::Hours8, 1),
            task("hours", "AAA", 1, BarSize::Hours8, 0),
            task("hours", "AAA", 2, BarSize::Hours8, 0),
            task("minutes", "AAA", 3, BarSize::Mins30, 0),
            task("minutes", "BBB", 4, BarSize::Mins30, 0),
        ];
        let mut q = Queue::build(tasks, &deps);
        assert_eq!(q.tasks, 6);
        // Ready: AAA's other hours file, and BBB's minutes (BBB has no hours series). The file
        // written by both phases waits for AAA's other hours series, not for itself.
        let hours = q.pop().unwrap();
        assert_eq!(hours.tasks[0].contract.con_id, 2);
        assert_eq!(q.pop().unwrap().tasks[0].contract.con_id, 4);
        assert!(q.nothing_ready());
        q.series_done(hours.phases, "AAA");
        let shared = q.pop().unwrap();
        let order: Vec<(&str, u32)> = shared.tasks.iter().map(|t| (&*t.phase, t.window)).collect();
        assert_eq!(order, [("hours", 0), ("hours", 1), ("minutes", 0)]);
        assert!(q.nothing_ready(), "AAA's hours are still open");
        q.series_done(shared.phases, "AAA");
        assert_eq!(q.pop().unwrap().tasks[0].contract.con_id, 3);
        assert!(q.pop().is_none());
    }
}
